"""Gradient checking: every analytic gradient against centred finite differences in float64.

For a random loss ``L = sum(ys * R) + sum(state_T * S)`` (R, S fixed random arrays, so that both
``dys`` and ``dstate`` are non-zero), each element ``θ_i`` of every parameter, of ``x`` and of the
initial state is nudged by ``±eps`` and

    numeric_i = (L(θ_i + eps) − L(θ_i − eps)) / (2 eps)

is compared with the analytic gradient of ``cell.backward``. The numeric side always runs the NumPy
reference in float64, whatever backend and dtype are checked: it is the specification. The error
reported per tensor is

    max_i |analytic_i − numeric_i| / max_i max(|analytic_i|, |numeric_i|)

the largest deviation relative to the tensor's largest gradient; an element-wise ratio would
blow up on gradients that are nearly zero, where centred differences keep an absolute error of
about ``eps**2 * L''' + 1e-16 * |L| / eps``. With ``eps = 1e-6`` that leaves about 1e-9 in float64;
a float32 backend is held to the float32 rounding of its own arithmetic.
"""

from dataclasses import dataclass

import numpy as np

from . import _check
from .cell import Cell

TOLERANCE = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-4}


@dataclass
class TensorCheck:
    variant: str
    tensor: str          # "dW", "dx", "dh0", ...
    error: float
    tolerance: float

    @property
    def ok(self):
        return bool(self.error <= self.tolerance)  # NaN fails


def random_problem(name, input_size=3, hidden_size=4, steps=5, batch=2, seed=0, options=None):
    """Parameters, input, initial state and loss weights for a check, all float64.

    The parameters are the variant's own initialisation plus N(0, 0.3) noise, so that tensors
    initialised to zero or one (rru's Z, lngru's gains) still exercise every path.
    """
    rng = np.random.default_rng(_check.seed("seed", seed))
    cell = Cell(name, "numpy", **(options or {}))
    p = cell.init(input_size, hidden_size, rng=rng, dtype=np.float64)
    p = {k: v + rng.normal(0.0, 0.3, v.shape) for k, v in p.items()}
    x = rng.normal(size=(steps, batch, input_size))
    v = cell.variant
    state0 = tuple(np.abs(rng.normal(0.0, 0.5, (batch, hidden_size))) + 0.5    # slstm's n > 0
                   if k in v.nonnegative_state else rng.normal(0.0, 0.5, (batch, hidden_size))
                   for k in v.state)
    state0 = state0 if len(state0) > 1 else state0[0]
    ys, state, _ = cell.forward(p, x, state0)
    R = rng.normal(size=ys.shape)
    S = tuple(rng.normal(size=s.shape) for s in state) if isinstance(state, tuple) \
        else rng.normal(size=state.shape)
    return cell, p, x, state0, R, S


def _loss(cell, p, x, state0, R, S, training, seed):
    buffers = None if cell.buffers is None else {k: v.copy() for k, v in cell.buffers.items()}
    ys, state, _ = cell.forward(p, x, state0, training, buffers=buffers,
                                rng=np.random.default_rng(seed))
    states, Ss = (state, S) if isinstance(state, tuple) else ((state,), (S,))
    return float(np.sum(ys * R) + sum(np.sum(s * w) for s, w in zip(states, Ss)))


def numeric_gradient(f, a, eps=1e-6):
    """Centred differences of the scalar ``f()`` with respect to every element of ``a``.

    ``a`` is nudged in place (and restored), so ``f`` must read it: check your own layer with
    ``relative_error(analytic, numeric_gradient(lambda: loss(x), x))``.
    """
    g = np.zeros(a.shape, np.float64)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        up = f()
        a[i] = old - eps
        down = f()
        a[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def relative_error(analytic, numeric):
    analytic = np.asarray(analytic, np.float64)
    scale = max(np.max(np.abs(analytic)), np.max(np.abs(numeric)))
    if scale == 0:
        return 0.0
    return float(np.max(np.abs(analytic - numeric)) / scale)


def gradcheck(variant, backend="numpy", dtype=np.float64, *, input_size=3, hidden_size=4,
              steps=5, batch=2, seed=0, eps=1e-6, training=True, options=None):
    """Check every gradient of ``variant`` on ``backend`` in ``dtype``; returns ``TensorCheck``s.

    One per parameter (``dW``, ``dU``, ...), then ``dx`` and one per state component: ``dh0``
    (``dh0``, ``dc0`` for lstm; ``dh0``, ``dc0``, ``dn0``, ``dm0`` for slstm; ``dc0`` for sru).
    ``options`` are the variant's options, e.g. ``{"dropout": 0.3}`` for rru (the same dropout
    mask is drawn for every evaluation of the loss).
    """
    dtype = _check.float_dtype("dtype", dtype)
    ref, p, x, state0, R, S = random_problem(variant, input_size, hidden_size, steps, batch,
                                             seed, options)
    # analytic: the checked backend and dtype
    cell = Cell(variant, backend, **(options or {}))
    cell.buffers = ref.buffers
    cast = (lambda a: a.astype(dtype))
    pc = {k: cast(v) for k, v in p.items()}
    sc = tuple(map(cast, state0)) if isinstance(state0, tuple) else cast(state0)
    Sc = tuple(map(cast, S)) if isinstance(S, tuple) else cast(S)
    buffers = None if ref.buffers is None else {k: cast(v) for k, v in ref.buffers.items()}
    _, _, cache = cell.forward(pc, cast(x), sc, training, buffers=buffers,
                               rng=np.random.default_rng(seed))
    dx, dstate0, grads = cell.backward(pc, cache, cast(R), Sc)

    # numeric: the float64 reference
    def f():
        return _loss(ref, p, x, state0, R, S, training, seed)

    def check(name, analytic, wrt):
        return TensorCheck(variant, name, relative_error(analytic, numeric_gradient(f, wrt, eps)),
                           TOLERANCE[dtype])

    checks = [check("d" + k, grads[k], p[k]) for k in p]
    checks.append(check("dx", dx, x))
    names = [f"d{k}0" for k in cell.variant.state]
    if isinstance(state0, tuple):
        checks += [check(name, d, s) for name, s, d in zip(names, state0, dstate0)]
    else:
        checks.append(check(names[0], dstate0, state0))
    return checks
