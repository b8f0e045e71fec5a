"""The variants of VARIANTS.md, one module per cell family, and the backends that run them.

Each family module exposes ``VARIANTS``, a tuple of ``Variant`` records (see ``_variant.py``).
"""

from dataclasses import replace
from importlib import import_module

from ._gated_structure import Gated
from ._point import (HALF, ONE, ZERO, exp, log, log_sigmoid, logaddexp, maximum, positive, relu,
                     sigmoid, softplus, sqrt, tanh)
from ._two_stage import TwoStage
from ._variant import Variant

__all__ = ["Gated", "TwoStage", "Variant", "register", "get_variant", "REGISTRY", "VARIANTS",
           "BackendUnavailableError", "ONE", "ZERO", "HALF", "sigmoid", "tanh", "relu",
           "positive", "exp", "log", "sqrt", "maximum", "softplus", "log_sigmoid", "logaddexp"]

# Family modules, in the order VARIANTS.md presents them.
FAMILIES = ("elman", "lstm", "gru", "lngru", "ligru", "mgu", "rru", "mingru", "minlstm",
            "indrnn", "janet", "sru", "libru", "slstm")

# The order of mg.VARIANTS (and of `minigru variants`).
ORDER = ("rnn", "lstm", "gru", "gru_v3", "gru1", "gru2", "gru3", "lngru", "ligru",
         "mgu", "mgu1", "mgu2", "mgu3", "rru", "mingru",
         "minlstm", "indrnn", "janet", "sru", "libru", "slstm")

REGISTRY = {}
for _family in FAMILIES:
    for _v in import_module(f"{__name__}.{_family}").VARIANTS:
        REGISTRY[_v.name] = replace(_v, family=_family)
assert set(REGISTRY) == set(ORDER), sorted(set(REGISTRY) ^ set(ORDER))

VARIANTS = ORDER


def register(variant, family="user"):
    """Add a cell so that ``mg.cell``, ``mg.RNN``, ``mg.gradcheck`` and ``minigru gradcheck``
    know it by name: a declaration (``Gated``, ``TwoStage``: then every backend runs it, compiled)
    or a ``Variant`` of NumPy functions (the NumPy backend only). Returns its ``Variant``.
    ``mg.VARIANTS`` keeps listing the 21 of VARIANTS.md; docs/custom-cells.md shows the way."""
    if isinstance(variant, (Gated, TwoStage)):
        variant = variant.variant()
    if not isinstance(variant, Variant):
        raise TypeError(f"variant must be a Gated or TwoStage declaration or a minigru Variant, "
                        f"got {type(variant).__name__}")
    if variant.name in REGISTRY:
        raise ValueError(f"a variant named {variant.name!r} exists already")
    REGISTRY[variant.name] = replace(variant, family=family)
    return REGISTRY[variant.name]


def get_variant(name):
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"unknown variant {name!r}; the variants are {', '.join(REGISTRY)}")
    return REGISTRY[name]


class BackendUnavailableError(RuntimeError):
    """A backend that cannot run here (no GPU, no numba-cuda); the message says what is missing."""


def _numpy_backend(variant):
    return variant


def _numba_backend(variant):
    from ..numba import backend      # compiles on first use only
    return backend(variant)


def _cuda_backend(variant):
    from ..cuda import backend       # raises a clear error without a GPU or the simulator
    return backend(variant)


# backend name -> function(variant) returning an object with forward, backward, step.
BACKENDS = {"numpy": _numpy_backend, "numba": _numba_backend, "cuda": _cuda_backend}
