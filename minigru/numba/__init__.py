"""backend="numba": every cell's time loop compiled for the CPU with Numba.

A declared cell (``Gated``, ``TwoStage``) runs the compiled loops of its structure
(``_gated_loops.py``, ``_two_stage_loops.py``) around its own point functions (``_glue.py``);
rru keeps its own loops (``rru.py``, ``FUNCTIONS``). Each gives forward, backward, step and
``prepare_step`` (``Cell.step``'s streaming fast path) with the signatures of the NumPy reference
and the same cache contents. Compiled code is cached on disk (``cache=True``), so only the first
process on a machine pays the compilation.

Developers: Numba checks a cached kernel against its own file only. A kernel compiled into
``rru.py``'s cache carries the ``_math.py`` helpers it called at the time, so after editing
``_math.py`` delete the caches (``find minigru -name '*.nb[ic]' -delete``).
"""

import pkgutil
from importlib import import_module
from types import SimpleNamespace

# every family module here (the files without a leading underscore)
FAMILIES = tuple(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))

FUNCTIONS = {}
for _family in FAMILIES:
    FUNCTIONS.update(import_module(f"{__name__}.{_family}").FUNCTIONS)


_BACKENDS = {}


def backend(variant):
    """The numba forward, backward and step of ``variant`` (a ``Variant``)."""
    from ..cells._gated_structure import Gated
    from ..cells._two_stage import TwoStage
    if isinstance(variant.structure, (Gated, TwoStage)):
        if variant.structure not in _BACKENDS:
            from ._gated_loops import GatedBackend
            from ._two_stage_loops import TwoStageBackend
            make = GatedBackend if isinstance(variant.structure, Gated) else TwoStageBackend
            _BACKENDS[variant.structure] = make(variant.structure)
        b = _BACKENDS[variant.structure]
        return SimpleNamespace(forward=b.forward, backward=b.backward, step=b.step,
                               prepare_step=b.prepare_step,
                               loop_regularisers=b.loop_regularisers)
    if variant.name not in FUNCTIONS:
        raise NotImplementedError(
            f"backend 'numba' cannot compile {variant.name!r}: it is a bare Variant of NumPy "
            f"functions, and the compiled loops need a declaration of its structure and point "
            f"functions (minigru.cells.Gated or TwoStage, docs/custom-cells.md); declared cells "
            f"and {', '.join(sorted(FUNCTIONS))} run here. Use backend='numpy' for it")
    forward, backward, step, *prepare = FUNCTIONS[variant.name]
    return SimpleNamespace(forward=forward, backward=backward, step=step,
                           prepare_step=prepare[0] if prepare else None,
                           loop_regularisers=True)    # rru's loops apply masks= too
