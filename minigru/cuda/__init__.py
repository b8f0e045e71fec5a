"""backend="cuda": every cell's time loop on an NVIDIA GPU through Numba's CUDA target.

A declared cell (``Gated``, ``TwoStage``) runs the kernels of its structure
(``_gated_loops.py``, ``_two_stage_loops.py``) around its own point functions; rru has its own
(``rru.py``, ``FUNCTIONS``). All work on device arrays only. This file puts the front on them
that every backend shares: NumPy arrays in, NumPy arrays out, or device arrays in,
device arrays out (decided by ``x`` for forward and step, by ``dys`` for backward). Parameters
given as NumPy arrays are copied to the device once per call; pass device arrays
(``numba.cuda.to_device``) to keep them there. The cache of a forward stays on the device.

``step`` is a forward of one time step in evaluation mode.

Without a GPU, Numba's simulator runs the same kernels on the CPU (slowly) when the environment
has ``NUMBA_ENABLE_CUDASIM=1`` before numba is first imported; the tests use it.
"""

import os
import pkgutil
from importlib import import_module
from types import SimpleNamespace

SIMULATOR_HINT = ("To run the CUDA kernels without a GPU, in Numba's CUDA simulator (slow; for "
                  "testing and reading), set NUMBA_ENABLE_CUDASIM=1 in the environment before "
                  "Python starts, e.g. `NUMBA_ENABLE_CUDASIM=1 python train.py`.")


def _require_cuda():
    """Raise a ``BackendUnavailableError`` (a RuntimeError) that says what is missing when the
    CUDA target cannot run."""
    from ..cells import BackendUnavailableError
    try:
        from numba import cuda
    except ImportError as e:
        raise BackendUnavailableError(f"backend='cuda' needs the numba-cuda package "
                                      f"(pip install 'minigru[cuda]'): {e}") from None
    if not cuda.is_available():
        raise BackendUnavailableError(
            "backend='cuda' needs an NVIDIA GPU with a working driver, and numba.cuda found "
            "none (numba.cuda.is_available() is False). " + SIMULATOR_HINT)
    return cuda


def simulated():
    """True when the CUDA target is Numba's simulator (timings there mean nothing)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


_functions = None


def functions():
    """``{variant: (forward, backward)}`` of every family module here (imported on first use,
    since importing compiles nothing but needs a working CUDA target)."""
    global _functions
    if _functions is None:
        _functions = {}
        for m in pkgutil.iter_modules(__path__):
            if not m.name.startswith("_"):
                _functions.update(import_module(f"{__name__}.{m.name}").FUNCTIONS)
    return _functions


def _quiet_about_small_grids():
    """A recurrent network's per-step kernels have one block per row of the batch, so their grids
    are small by design (docs/cuda.md says what that costs); Numba would warn at each of them."""
    try:
        from numba.cuda.core import config
    except ImportError:                               # older numba-cuda: numba's own config
        from numba.core import config
    config.CUDA_LOW_OCCUPANCY_WARNINGS = 0


_BACKENDS = {}


def loops(variant):
    """``(forward, backward)`` on device arrays of ``variant``: made from its declaration when it
    has one (``_gated_loops.py``, ``_two_stage_loops.py``: the loops of its structure around its
    own point functions), else from its family module here (rru)."""
    from ..cells._gated_structure import Gated
    from ..cells._two_stage import TwoStage
    cell = variant.structure
    if isinstance(cell, (Gated, TwoStage)):
        if cell not in _BACKENDS:
            if isinstance(cell, Gated):
                from ._gated_loops import GatedBackend as make
            else:
                from ._two_stage_loops import TwoStageBackend as make
            _BACKENDS[cell] = make(cell)
        return _BACKENDS[cell].forward, _BACKENDS[cell].backward
    fns = functions()
    if variant.name not in fns:
        raise NotImplementedError(
            f"backend 'cuda' cannot compile {variant.name!r}: it is a bare Variant of NumPy "
            f"functions, and the kernels need a declaration of its structure and point "
            f"functions (minigru.cells.Gated or TwoStage, docs/custom-cells.md); declared cells "
            f"and {', '.join(sorted(fns))} run here. Use backend='numpy' for it")
    return fns[variant.name]


def backend(variant):
    """The cuda forward, backward and step of ``variant`` (a ``Variant``)."""
    _require_cuda()
    _quiet_about_small_grids()
    forward_d, backward_d = loops(variant)
    from .._aligned import aligned_copies
    from ._blas import copy as device_copy
    from ._blas import is_device, to_device, to_host

    def each(f, state):                               # a state is h, or (h, c) for lstm
        return tuple(map(f, state)) if isinstance(state, tuple) else f(state)

    def put(name, a):
        if isinstance(a, tuple):
            return tuple(to_device(s, f"{name}[{i}]") for i, s in enumerate(a))
        return to_device(a, name)

    def forward(p, x, state0, training=True, **kw):
        on_host = not is_device(x)
        dp = {k: to_device(v, f"p[{k!r}]") for k, v in p.items()}
        ys, state, cache = forward_d(dp, put("x", x), put("state0", state0), training, **kw)
        if on_host:
            ys, state = to_host(ys), each(to_host, state)
        return ys, state, cache

    def backward(p, cache, dys, dstate):
        on_host = not is_device(dys)
        dp = {k: to_device(v, f"p[{k!r}]") for k, v in p.items()}
        dx, dstate0, grads = backward_d(dp, cache, put("dys", dys), put("dstate", dstate))
        if on_host:
            dx, dstate0 = to_host(dx), each(to_host, dstate0)
            grads = {k: to_host(g) for k, g in grads.items()}
        return dx, dstate0, grads

    def step(p, x_t, state, **kw):
        on_host = not is_device(x_t)
        x_t = put("x_t", x_t)
        ys, state, _ = forward(p, x_t.reshape(1, *x_t.shape), state, False, **kw)
        if on_host:
            ys, state = to_host(ys), each(to_host, state)
        return ys[0], state

    def snapshot(arrays):
        """Copies of what a forward keeps for its backward: NumPy arrays on the host, device
        arrays on the device (a strided one as it is: to_device refuses it, by name)."""
        host = [a for a in arrays if not is_device(a)]
        copies = iter(aligned_copies(host) if host else ())
        return [next(copies) if not is_device(a) else
                device_copy(a) if a.is_c_contiguous() else a for a in arrays]

    # (a bound method's object: the backend, whose kernels may apply the loop regularisers)
    applies = (getattr(forward_d, "loop_regularisers", False)
               or getattr(getattr(forward_d, "__self__", None), "loop_regularisers", False))
    return SimpleNamespace(forward=forward, backward=backward, step=step, is_device=is_device,
                           loop_regularisers=applies,
                           snapshot=snapshot)
