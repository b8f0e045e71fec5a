"""The MGU family compiled with Numba: a checked copy of ``minigru/cells/mgu.py``.

mgu, mgu1, mgu2, mgu3 share one forward and one backward, as in the reference; each parameter is
split into its gate part (absent where the variant has none) and its candidate part
(``_gated.py``), and the kernels take a flag and a dummy array for an absent ``U_f``, as
``gru.py``'s reset-before family does. The same cache as the reference (so either backward can
follow either forward): ``x @ W`` for all steps before the loop; inside it the products
``h U_f`` and ``(f ⊙ h) U_n`` and the pointwise math; the weight gradients and ``dx`` as single
BLAS products after the reverse loop. Nothing differs but compilation and the ``step``, which is
one kernel call on the unsplit parameters.

The per-element math (``mgu_point``, ``mgu_point_backward``, ...) is plain Python over scalars,
for the CPU here and the GPU in the CUDA backend.
"""

import numpy as np

from ..cells import _gated
from ._math import (ONE, ZERO, column_sums, input_projection, kernel, matmul, matmul_acc,
                    matmul_columns,
                    pointwise, sigmoid, tanh)
from ._scratch import one_block, scratch
from ._step import gates_params, stepper


def mgu_gate_point(af):
    return sigmoid(af)


def mgu_point(an, un, h, f):
    """Candidate and update once (f ⊙ h) U_n is known: -> h', n."""
    n = tanh(an + un)
    return (ONE - f) * h + f * n, n


def mgu_point_backward(dh, h, f, n):
    """-> the update's part of df, dan and the direct part of dh_prev."""
    df = dh * (n - h)
    dan = dh * f * (ONE - n * n)                      # through tanh
    return df, dan, dh * (ONE - f)


def mgu_gate_point_backward(df, dfh, h, f):
    """The rest once dfh = dan U_n^T is known: -> daf and dfh's part of dh_prev."""
    df = df + dfh * h                                 # f reaches h' twice: the update and ñ
    return df * f * (ONE - f), dfh * f                # through sigmoid


_mgu_gate_point = pointwise(mgu_gate_point)
_mgu_point = pointwise(mgu_point)
_mgu_point_backward = pointwise(mgu_point_backward)
_mgu_gate_point_backward = pointwise(mgu_gate_point_backward)


@kernel
def mgu_forward_loop(af, xn, bn, Uf, has_uf, Un, hs, f, n):
    """af (T, B, H): the gate's x and bias terms; xn (T, B, H) = x W_n, the candidate's, whose
    bias bn is added here."""
    T, B, H = xn.shape
    huf = np.zeros((B, H), xn.dtype)
    fh = np.empty((B, H), xn.dtype)
    un = np.empty((B, H), xn.dtype)
    for t in range(T):
        if has_uf:
            matmul(hs[t], Uf, huf)
        for b in range(B):
            for j in range(H):
                f[t, b, j] = _mgu_gate_point(af[t, b, j] + huf[b, j])
                fh[b, j] = f[t, b, j] * hs[t, b, j]
        matmul(fh, Un, un)                            # the gate acts before the product
        for b in range(B):
            for j in range(H):
                hs[t + 1, b, j], n[t, b, j] = _mgu_point(xn[t, b, j] + bn[j], un[b, j], hs[t, b, j],
                                                         f[t, b, j])


@kernel
def mgu_backward_loop(UfT, has_uf, UnT, hs, f, n, dys, dh_next, daf, dan):
    T, B, H = n.shape
    dfh = np.empty((B, H), n.dtype)
    for t in range(T - 1, -1, -1):
        for b in range(B):                            # daf[t] holds df's update part for now
            for j in range(H):
                daf[t, b, j], dan[t, b, j], dh_next[b, j] = _mgu_point_backward(
                    dys[t, b, j] + dh_next[b, j], hs[t, b, j], f[t, b, j], n[t, b, j])
        matmul(dan[t], UnT, dfh)                      # through (f*h) U_n
        for b in range(B):
            for j in range(H):
                daf[t, b, j], dhf = _mgu_gate_point_backward(daf[t, b, j], dfh[b, j],
                                                             hs[t, b, j], f[t, b, j])
                dh_next[b, j] += dhf
        if has_uf:
            matmul_acc(daf[t], UfT, dh_next)          # the gate saw h through U_f


def _dummy(dtype):
    return np.zeros((1, 1), dtype)


def mgu_forward(p, x, h0, training=True):
    parts = _gated.split(p)
    (Uf, Un), (_, Wn), (_, bn) = parts["U"], parts["W"], parts["b"]
    T, B, I = x.shape
    H = h0.shape[1]
    af = np.ascontiguousarray(_gated.gate_inputs(x, parts, H))
    xn = input_projection(x, Wn, scratch("xw", (T, B, H), x.dtype))
    hs, f, n = one_block(x.dtype, (T + 1, B, H), (T, B, H), (T, B, H))     # the cache
    hs[0] = h0
    mgu_forward_loop(af, xn, bn, _dummy(x.dtype) if Uf is None else np.ascontiguousarray(Uf),
                     Uf is not None, np.ascontiguousarray(Un), hs, f, n)
    cache = {"x": x, "hs": hs, "f": f, "n": n}
    return hs[1:].copy(), hs[T].copy(), cache


def mgu_backward(p, cache, dys, dh_T):
    parts = _gated.split(p)
    (Wf, Wn), (Uf, Un), (bf, _) = parts["W"], parts["U"], parts["b"]
    x, hs, f, n = (cache[k] for k in ("x", "hs", "f", "n"))
    T, B, H = n.shape
    I = x.shape[2]
    daf = scratch("dxw", (T, B, H), x.dtype)
    dan = scratch("dhu", (T, B, H), x.dtype)
    dh_next = np.array(dh_T, copy=True)
    mgu_backward_loop(_dummy(x.dtype) if Uf is None else np.ascontiguousarray(Uf.T),
                      Uf is not None, np.ascontiguousarray(Un.T), hs, f, n,
                      np.ascontiguousarray(dys), dh_next, daf, dan)
    X = x.reshape(T * B, I)
    Hp = hs[:-1].reshape(T * B, H)
    dA_f, dA_n = daf.reshape(T * B, H), dan.reshape(T * B, H)
    g = {
        "W": (X.T @ dA_f if Wf is not None else None, X.T @ dA_n),
        "U": (Hp.T @ dA_f if Uf is not None else None, (f * hs[:-1]).reshape(T * B, H).T @ dA_n),
        "b": (column_sums(dA_f) if bf is not None else None, column_sums(dA_n)),
    }
    dx = dA_n @ Wn.T
    if Wf is not None:
        dx += dA_f @ Wf.T
    return dx.reshape(T, B, I), dh_next, _gated.merge(g)


@kernel
def mgu_step_kernel(x, W, U, b, sees_x, sees_h, has_bias, h, h_new):
    """One step on the unsplit parameters: the gate's blocks first, the candidate's last H."""
    B, H = h.shape
    xw = np.empty((B, W.shape[1]), x.dtype)          # [x W_f |] x W_n
    matmul(x, W, xw)
    huf = np.zeros((B, H), x.dtype)
    if sees_h:
        matmul_columns(h, U, 0, huf)                  # U[:, :H], read in place
    f = np.empty((B, H), x.dtype)
    fh = np.empty((B, H), x.dtype)
    for i in range(B):
        for j in range(H):
            af = xw[i, j] if sees_x else ZERO
            if has_bias:
                af = af + b[j]
            f[i, j] = _mgu_gate_point(af + huf[i, j])
            fh[i, j] = f[i, j] * h[i, j]
    un = np.empty((B, H), x.dtype)
    matmul_columns(fh, U, U.shape[1] - H, un)
    kx, kb = W.shape[1] - H, b.shape[0] - H          # where the candidate's columns start
    for i in range(B):
        for j in range(H):
            h_new[i, j], _ = _mgu_point(xw[i, kx + j] + b[kb + j], un[i, j], h[i, j], f[i, j])


mgu_step, mgu_prepare_step = stepper(mgu_step_kernel, gates_params)


FUNCTIONS = {
    "mgu": (mgu_forward, mgu_backward, mgu_step, mgu_prepare_step),
    "mgu1": (mgu_forward, mgu_backward, mgu_step, mgu_prepare_step),
    "mgu2": (mgu_forward, mgu_backward, mgu_step, mgu_prepare_step),
    "mgu3": (mgu_forward, mgu_backward, mgu_step, mgu_prepare_step),
}
