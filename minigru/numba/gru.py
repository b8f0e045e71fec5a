"""The GRU family compiled with Numba: a checked copy of ``minigru/cells/gru.py``.

The same loop structure as the NumPy reference, and the same cache (so either backward can
follow either forward): ``x @ W`` for all steps in one BLAS product before the loop; inside the
loop only the recurrent product and one fused pointwise pass that writes what the backward needs;
after the reverse loop, the weight gradients and ``dx`` as single BLAS products.

The per-element math (``gru_point``, ``gru_point_backward``, ...) is plain Python over scalars:
this file compiles it for the CPU, the CUDA backend compiles the same functions for the GPU.
"""

import numpy as np

from ..cells import _gated
from ._math import (ONE, ZERO, column_sums, input_projection, kernel, matmul, matmul_acc,
                    matmul_columns,
                    pointwise, sigmoid, tanh)
from ._scratch import one_block, scratch
from ._step import gates_params, stepper

# ============================================================ gru_v3, gru1..gru3 (reset before)


def v3_gate_point(ar, az):
    return sigmoid(ar), sigmoid(az)


def v3_point(an, un, h, z):
    """Candidate and update once (r ⊙ h) U_n is known: -> h', n."""
    n = tanh(an + un)
    return z * h + (ONE - z) * n, n


def v3_point_backward(dh, h, z, n):
    """-> dz, dan and the direct part of dh_prev."""
    dz = dh * (h - n)
    dan = dh * (ONE - z) * (ONE - n * n)
    return dz, dan, dh * z


def v3_z_backward(dz, z):
    """Through z's sigmoid: dz -> daz."""
    return dz * z * (ONE - z)


def v3_r_backward(drh, h, r):
    """Once drh = dL/d(r ⊙ h) is known: -> dar (through r's sigmoid), the part of dh_prev."""
    return drh * h * r * (ONE - r), drh * r


_v3_gate_point = pointwise(v3_gate_point)
_v3_point = pointwise(v3_point)
_v3_point_backward = pointwise(v3_point_backward)
_v3_z_backward = pointwise(v3_z_backward)
_v3_r_backward = pointwise(v3_r_backward)


@kernel
def v3_forward_loop(ag, xn, bn, Ug, has_ug, Un, hs, r, z, n):
    """ag (T, B, 2H): the gates' x and bias terms; xn (T, B, H) = x W_n, the candidate's, whose
    bias bn is added here."""
    T, B, H = xn.shape
    hug = np.zeros((B, 2 * H), xn.dtype)
    rh = np.empty((B, H), xn.dtype)
    un = np.empty((B, H), xn.dtype)
    for t in range(T):
        if has_ug:
            matmul(hs[t], Ug, hug)
        for b in range(B):
            for j in range(H):
                r[t, b, j], z[t, b, j] = _v3_gate_point(ag[t, b, j] + hug[b, j],
                                                        ag[t, b, H + j] + hug[b, H + j])
                rh[b, j] = r[t, b, j] * hs[t, b, j]
        matmul(rh, Un, un)                            # reset before the product
        for b in range(B):
            for j in range(H):
                hs[t + 1, b, j], n[t, b, j] = _v3_point(xn[t, b, j] + bn[j], un[b, j], hs[t, b, j],
                                                        z[t, b, j])


@kernel
def v3_backward_loop(UgT, has_ug, UnT, hs, r, z, n, dys, dh_next, dag, dan):
    T, B, H = n.shape
    drh = np.empty((B, H), n.dtype)
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for j in range(H):
                dz, dan[t, b, j], dh_next[b, j] = _v3_point_backward(
                    dys[t, b, j] + dh_next[b, j], hs[t, b, j], z[t, b, j], n[t, b, j])
                dag[t, b, H + j] = _v3_z_backward(dz, z[t, b, j])
        matmul(dan[t], UnT, drh)                      # through (r*h) U_n
        for b in range(B):
            for j in range(H):
                dag[t, b, j], dh_r = _v3_r_backward(drh[b, j], hs[t, b, j], r[t, b, j])
                dh_next[b, j] += dh_r
        if has_ug:
            matmul_acc(dag[t], UgT, dh_next)          # the gates saw h through U_g


def _dummy(dtype):
    return np.zeros((1, 1), dtype)


def v3_forward(p, x, h0, training=True):
    parts = _gated.split(p)
    (Ug, Un), (_, Wn), (_, bn) = parts["U"], parts["W"], parts["b"]
    T, B, I = x.shape
    H = h0.shape[1]
    ag = np.ascontiguousarray(_gated.gate_inputs(x, parts, 2 * H))
    xn = input_projection(x, Wn, scratch("xw", (T, B, H), x.dtype))
    hs, r, z, n = one_block(x.dtype, (T + 1, B, H), *[(T, B, H)] * 3)     # the cache
    hs[0] = h0
    v3_forward_loop(ag, xn, bn, _dummy(x.dtype) if Ug is None else np.ascontiguousarray(Ug),
                    Ug is not None, np.ascontiguousarray(Un), hs, r, z, n)
    cache = {"x": x, "hs": hs, "r": r, "z": z, "n": n}
    return hs[1:].copy(), hs[T].copy(), cache


def v3_backward(p, cache, dys, dh_T):
    parts = _gated.split(p)
    (Wg, Wn), (Ug, Un), (bg, _) = parts["W"], parts["U"], parts["b"]
    x, hs, r, z, n = (cache[k] for k in ("x", "hs", "r", "z", "n"))
    T, B, H = n.shape
    I = x.shape[2]
    dag = scratch("dxw", (T, B, 2 * H), x.dtype)
    dan = scratch("dhu", (T, B, H), x.dtype)
    dh_next = np.array(dh_T, copy=True)
    v3_backward_loop(_dummy(x.dtype) if Ug is None else np.ascontiguousarray(Ug.T),
                     Ug is not None, np.ascontiguousarray(Un.T), hs, r, z, n,
                     np.ascontiguousarray(dys), dh_next, dag, dan)
    X = x.reshape(T * B, I)
    Hp = hs[:-1].reshape(T * B, H)
    dA_g, dA_n = dag.reshape(T * B, 2 * H), dan.reshape(T * B, H)
    g = {
        "W": (X.T @ dA_g if Wg is not None else None, X.T @ dA_n),
        "U": (Hp.T @ dA_g if Ug is not None else None, (r * hs[:-1]).reshape(T * B, H).T @ dA_n),
        "b": (column_sums(dA_g) if bg is not None else None, column_sums(dA_n)),
    }
    dx = dA_n @ Wn.T
    if Wg is not None:
        dx += dA_g @ Wg.T
    return dx.reshape(T, B, I), dh_next, _gated.merge(g)


@kernel
def v3_step_kernel(x, W, U, b, sees_x, sees_h, has_bias, h, h_new):
    """One step on the unsplit parameters: the gates' blocks r, z first, the candidate's last H."""
    B, H = h.shape
    xw = np.empty((B, W.shape[1]), x.dtype)          # [x W_r | x W_z |] x W_n
    matmul(x, W, xw)
    hug = np.zeros((B, 2 * H), x.dtype)
    if sees_h:
        matmul_columns(h, U, 0, hug)                  # U[:, :2H], read in place
    z = np.empty((B, H), x.dtype)
    rh = np.empty((B, H), x.dtype)
    for i in range(B):
        for j in range(H):
            ar = xw[i, j] if sees_x else ZERO
            az = xw[i, H + j] if sees_x else ZERO
            if has_bias:
                ar, az = ar + b[j], az + b[H + j]
            r, z[i, j] = _v3_gate_point(ar + hug[i, j], az + hug[i, H + j])
            rh[i, j] = r * h[i, j]
    un = np.empty((B, H), x.dtype)
    matmul_columns(rh, U, U.shape[1] - H, un)         # reset before the product
    kx, kb = W.shape[1] - H, b.shape[0] - H          # where the candidate's columns start
    for i in range(B):
        for j in range(H):
            h_new[i, j], _ = _v3_point(xw[i, kx + j] + b[kb + j], un[i, j], h[i, j], z[i, j])


v3_step, v3_prepare_step = stepper(v3_step_kernel, gates_params)


FUNCTIONS = {
    "gru_v3": (v3_forward, v3_backward, v3_step, v3_prepare_step),
    "gru1": (v3_forward, v3_backward, v3_step, v3_prepare_step),
    "gru2": (v3_forward, v3_backward, v3_step, v3_prepare_step),
    "gru3": (v3_forward, v3_backward, v3_step, v3_prepare_step),
}
