"""Each variant's forward written in PyTorch straight from VARIANTS.md: the autograd oracle.

One module per cell family, each exposing ``REFERENCE = {variant: fn}`` with

    fn(p, x, state0, *, training, cell, cache) -> ys, state

``p`` maps the parameter names of VARIANTS.md to float64 tensors, ``x`` is (T, B, I) and
``state0`` an (B, H) tensor or an (h, c) tuple. ``cell`` is the minigru ``Cell`` (its options and
buffers) and ``cache`` minigru's forward cache, read only for what is random (rru's dropout mask).
Nothing here imports minigru's mathematics: the references are independent transcriptions.
"""

import importlib
import pkgutil

REFERENCE = {}
for _info in pkgutil.iter_modules(__path__):
    REFERENCE.update(importlib.import_module(f"{__name__}.{_info.name}").REFERENCE)
