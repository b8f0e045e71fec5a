"""minGRU compiled with Numba: a checked copy of ``minigru/cells/mingru.py``.

The same cache as the reference (so either backward can follow either forward). There is no
recurrent product: ``x @ W`` for all steps is one BLAS product before the loop, and the loop is
one pointwise pass per step that adds the bias and takes the gate, the candidate and the new
state together. The reverse loop likewise writes ``dL/d(x W + b)`` and sums it into ``db`` as it
goes, where the reference takes them from all steps at once after its loop; the numbers are the
same up to rounding. ``dW`` and ``dx`` are single BLAS products after it.

The per-element math (``mingru_point``, ``mingru_point_backward``) is plain Python over scalars,
for the CPU here and the GPU in the CUDA backend.
"""

import numpy as np

from ._math import ONE, kernel, matmul, pointwise, sigmoid
from ._scratch import one_block, scratch
from ._step import stepper


def mingru_point(az, n, h):
    """One unit: the gate's pre-activation, the candidate, the old state -> h', z."""
    z = sigmoid(az)
    return (ONE - z) * h + z * n, z


def mingru_point_backward(dh, h, z, n):
    """dh (into h') -> daz, dan and dh_prev (the linear recurrence run backwards)."""
    dz = dh * (n - h)
    return dz * z * (ONE - z), dh * z, dh * (ONE - z)


_mingru_point = pointwise(mingru_point)
_mingru_point_backward = pointwise(mingru_point_backward)


@kernel
def forward_loop(xw, bias, hs, z, n):
    """xw (T, B, 2H) = x W, to which the loop adds the bias as it reads it."""
    T, B, H = z.shape
    for t in range(T):
        for b in range(B):
            for j in range(H):
                n[t, b, j] = xw[t, b, H + j] + bias[H + j]
                hs[t + 1, b, j], z[t, b, j] = _mingru_point(xw[t, b, j] + bias[j], n[t, b, j],
                                                            hs[t, b, j])


@kernel
def backward_loop(hs, z, n, dys, dh_next, dxw, db):
    """Writes dxw = dL/d(x W + b) and sums it over steps and rows into db (zeroed here)."""
    T, B, H = z.shape
    db[:] = 0
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for j in range(H):
                daz, dan, dh_next[b, j] = _mingru_point_backward(
                    dys[t, b, j] + dh_next[b, j], hs[t, b, j], z[t, b, j], n[t, b, j])
                dxw[t, b, j], dxw[t, b, H + j] = daz, dan
                db[j] += daz
                db[H + j] += dan


def forward(p, x, h0, training=True):
    T, B, I = x.shape
    H = h0.shape[1]
    xw = scratch("xw", (T, B, 2 * H), x.dtype)
    np.matmul(x.reshape(T * B, I), p["W"], out=xw.reshape(T * B, 2 * H))
    hs, z, n = one_block(x.dtype, (T + 1, B, H), (T, B, H), (T, B, H))     # the cache
    hs[0] = h0
    forward_loop(xw, p["b"], hs, z, n)
    cache = {"x": x, "hs": hs, "z": z, "n": n}
    return hs[1:].copy(), hs[T].copy(), cache


def backward(p, cache, dys, dh_T):
    x, hs, z, n = (cache[k] for k in ("x", "hs", "z", "n"))
    T, B, H = z.shape
    I = x.shape[2]
    dxw = scratch("dxw", (T, B, 2 * H), x.dtype)      # dL/d(x W + b): [daz | dan]
    db = np.empty(2 * H, x.dtype)
    dh_next = np.array(dh_T, copy=True)
    # the reference's n is a view into x W + b: make it contiguous (a no-op for our own cache)
    backward_loop(hs, np.ascontiguousarray(z), np.ascontiguousarray(n),
                  np.ascontiguousarray(dys), dh_next, dxw, db)
    dXW = dxw.reshape(T * B, 2 * H)
    grads = {"W": x.reshape(T * B, I).T @ dXW, "b": db}
    return (dXW @ p["W"].T).reshape(T, B, I), dh_next, grads


@kernel
def step_kernel(x, W, b, h, h_new):
    B, H = h.shape
    xw = np.empty((B, 2 * H), x.dtype)
    matmul(x, W, xw)
    for i in range(B):
        for j in range(H):
            h_new[i, j], _ = _mingru_point(xw[i, j] + b[j], xw[i, H + j] + b[H + j], h[i, j])


step, prepare_step = stepper(step_kernel, lambda p, h: (p["W"], p["b"]))


FUNCTIONS = {"mingru": (forward, backward, step, prepare_step)}
