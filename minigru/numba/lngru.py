"""lngru compiled with Numba: a checked copy of ``minigru/cells/lngru.py`` (same cache).

The layer norm of ``x W`` covers every step at once: one compiled pass over all T·B rows before
the loop (``layer_norm_rows``), and its backward after the reverse loop.
Inside the compiled loop: ``h U``, its layer norm over the 3H features of each row, and the gates,
which are ``gru``'s with ``u = LN(h U; g_h) + c`` for the recurrent terms: the per-element math is
``gru_point`` / ``gru_point_backward`` from ``gru.py``, the bias ``c_n`` passed as their ``c``.
The reverse loop runs the layer norm's backward per row before ``dhu @ U.T``. The per-row
reductions (``_math.row_kernel``, also rru's) may add in any order, so they agree with NumPy's
pairwise sums to rounding, not bit for bit.
"""

import math

import numpy as np

from ..cells.lngru import EPS
from ._math import ONE, ZERO, column_sums, kernel, matmul, matmul_acc, row_kernel
from ._scratch import one_block, scratch
from ._step import stepper
from .gru import _gru_point, _gru_point_backward



@row_kernel
def _layer_norm_row(v, vhat, eps):
    """vhat = (v - mean(v)) / sqrt(var(v) + eps) over one row (biased var); returns 1/std."""
    G = v.shape[0]
    nf = v.dtype.type(G)
    mu = ZERO
    for k in range(G):
        mu += v[k]
    mu = mu / nf
    var = ZERO
    for k in range(G):
        var += (v[k] - mu) * (v[k] - mu)
    inv_std = ONE / math.sqrt(var / nf + eps)
    for k in range(G):
        vhat[k] = (v[k] - mu) * inv_std
    return inv_std


@row_kernel
def _layer_norm_row_backward(dvhat, vhat, inv_std, dv):
    """dv = inv_std * (dvhat - mean(dvhat) - vhat * mean(dvhat * vhat)) over one row."""
    G = dvhat.shape[0]
    nf = dvhat.dtype.type(G)
    mean_d = ZERO
    mean_dv = ZERO
    for k in range(G):
        mean_d += dvhat[k]
        mean_dv += dvhat[k] * vhat[k]
    mean_d = mean_d / nf
    mean_dv = mean_dv / nf
    for k in range(G):
        dv[k] = inv_std * (dvhat[k] - mean_d - vhat[k] * mean_dv)


@kernel
def layer_norm_rows(v, g, b, eps, vhat, inv_std, a):
    """a = g ⊙ LN(v) + b for every row of v (T, B, G) at once; fills vhat and inv_std too."""
    T, B, G = v.shape
    for t in range(T):
        for i in range(B):
            inv_std[t, i, 0] = _layer_norm_row(v[t, i], vhat[t, i], eps)
            for k in range(G):
                a[t, i, k] = g[k] * vhat[t, i, k] + b[k]


@kernel
def layer_norm_rows_backward(da, g, vhat, inv_std, dv):
    """dv = dL/dv for every row, from da = dL/da of ``layer_norm_rows``."""
    T, B, G = da.shape
    dvhat = np.empty(G, da.dtype)                     # dL/dvhat, one row
    for t in range(T):
        for i in range(B):
            for k in range(G):
                dvhat[k] = da[t, i, k] * g[k]
            _layer_norm_row_backward(dvhat, vhat[t, i], inv_std[t, i, 0], dv[t, i])


@kernel
def lngru_forward_loop(a, U, g_h, c, eps, hs, uhat, u_inv_std, r, z, n):
    """a (T, B, 3H) = LN(x W; g_x) + b, precomputed; fills hs[1:], uhat, u_inv_std, r, z, n."""
    T, B, G = a.shape
    H = G // 3
    hu = np.empty((B, G), a.dtype)                    # h U, one step
    for t in range(T):
        matmul(hs[t], U, hu)
        for b in range(B):
            u_inv_std[t, b, 0] = _layer_norm_row(hu[b], uhat[t, b], eps)
            for j in range(H):
                # u = g_h*uhat + c; gru_point adds c_n to the candidate's term itself
                hs[t + 1, b, j], r[t, b, j], z[t, b, j], n[t, b, j], _ = _gru_point(
                    a[t, b, j], a[t, b, H + j], a[t, b, 2 * H + j],
                    g_h[j] * uhat[t, b, j] + c[j], g_h[H + j] * uhat[t, b, H + j] + c[H + j],
                    g_h[2 * H + j] * uhat[t, b, 2 * H + j], c[2 * H + j], hs[t, b, j])


@kernel
def lngru_backward_loop(UT, g_h, c, hs, uhat, u_inv_std, r, z, n, dys, dh_next, da, du, dhu):
    T, B, H = n.shape
    dvhat = np.empty(3 * H, n.dtype)                  # dL/duhat, one row
    out = np.empty((4, H), n.dtype)                   # one row's dar, daz, dan, dun
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for j in range(H):
                un = g_h[2 * H + j] * uhat[t, b, 2 * H + j] + c[2 * H + j]  # what r multiplied
                out[0, j], out[1, j], out[2, j], out[3, j], dh_next[b, j] = _gru_point_backward(
                    dys[t, b, j] + dh_next[b, j], hs[t, b, j], r[t, b, j], z[t, b, j],
                    n[t, b, j], un)
            # copied out block by block (gru's backward loop says why)
            for k in range(3):
                for j in range(H):
                    da[t, b, k * H + j] = out[k, j]        # [dar | daz | dan]
            for k in range(2):
                for j in range(H):
                    du[t, b, k * H + j] = out[k, j]        # [dar | daz | dun]
            for j in range(H):
                du[t, b, 2 * H + j] = out[3, j]
            # u = g_h*uhat + c, uhat = (h U - mean) * inv_std
            for k in range(3 * H):
                dvhat[k] = du[t, b, k] * g_h[k]
            _layer_norm_row_backward(dvhat, uhat[t, b], u_inv_std[t, b, 0], dhu[t, b])
        matmul_acc(dhu[t], UT, dh_next)               # through h U


def lngru_forward(p, x, h0, training=True):
    U, g_h, c = p["U"], p["g_h"], p["c"]
    T, B, I = x.shape
    H = h0.shape[1]
    xw = scratch("xw", (T, B, 3 * H), x.dtype)
    np.matmul(x.reshape(T * B, I), p["W"], out=xw.reshape(T * B, 3 * H))   # all steps at once
    hs, ahat, a_inv_std, uhat, u_inv_std, r, z, n = one_block(       # the cache
        x.dtype, (T + 1, B, H), (T, B, 3 * H), (T, B, 1), (T, B, 3 * H), (T, B, 1),
        *[(T, B, H)] * 3)
    hs[0] = h0
    a = scratch("a", (T, B, 3 * H), x.dtype)
    layer_norm_rows(xw, p["g_x"], p["b"], x.dtype.type(EPS), ahat, a_inv_std, a)
    lngru_forward_loop(a, np.ascontiguousarray(U), g_h, c, x.dtype.type(EPS), hs, uhat,
                       u_inv_std, r, z, n)
    cache = {"x": x, "hs": hs, "ahat": ahat, "a_inv_std": a_inv_std,
             "uhat": uhat, "u_inv_std": u_inv_std, "r": r, "z": z, "n": n}
    return hs[1:].copy(), hs[T].copy(), cache


def lngru_backward(p, cache, dys, dh_T):
    W, U = p["W"], p["U"]
    x, hs, ahat, a_inv_std, uhat, u_inv_std, r, z, n = (cache[k] for k in (
        "x", "hs", "ahat", "a_inv_std", "uhat", "u_inv_std", "r", "z", "n"))
    T, B, H = n.shape
    I = x.shape[2]
    da = scratch("dxw", (T, B, 3 * H), x.dtype)       # dL/da: [dar | daz | dan]
    du = scratch("du", (T, B, 3 * H), x.dtype)        # dL/du: [dar | daz | dun]
    dhu = scratch("dhu", (T, B, 3 * H), x.dtype)      # dL/d(h U), before the layer norm
    dh_next = np.array(dh_T, copy=True)
    lngru_backward_loop(np.ascontiguousarray(U.T), p["g_h"], p["c"], hs, uhat, u_inv_std, r, z,
                        n, np.ascontiguousarray(dys), dh_next, da, du, dhu)
    # a = g_x*ahat + b, ahat = (x W - mean) * inv_std: every step at once
    dxw = scratch("dv", (T, B, 3 * H), x.dtype)
    layer_norm_rows_backward(da, p["g_x"], ahat, a_inv_std, dxw)
    dXW = dxw.reshape(T * B, 3 * H)
    grads = {
        "W": x.reshape(T * B, I).T @ dXW,
        "U": hs[:-1].reshape(T * B, H).T @ dhu.reshape(T * B, 3 * H),
        "g_x": column_sums(da * ahat),
        "g_h": column_sums(du * uhat),
        "b": column_sums(da),
        "c": column_sums(du),
    }
    return (dXW @ W.T).reshape(T, B, I), dh_next, grads


@kernel
def lngru_step_kernel(x, W, g_x, b, U, g_h, c, eps, h, h_new):
    B, H = h.shape
    xw = np.empty((B, 3 * H), x.dtype)
    hu = np.empty((B, 3 * H), x.dtype)
    ahat = np.empty(3 * H, x.dtype)
    uhat = np.empty(3 * H, x.dtype)
    matmul(x, W, xw)
    matmul(h, U, hu)
    for i in range(B):
        _layer_norm_row(xw[i], ahat, eps)
        _layer_norm_row(hu[i], uhat, eps)
        for j in range(H):
            h_new[i, j], _, _, _, _ = _gru_point(
                g_x[j] * ahat[j] + b[j], g_x[H + j] * ahat[H + j] + b[H + j],
                g_x[2 * H + j] * ahat[2 * H + j] + b[2 * H + j],
                g_h[j] * uhat[j] + c[j], g_h[H + j] * uhat[H + j] + c[H + j],
                g_h[2 * H + j] * uhat[2 * H + j], c[2 * H + j], h[i, j])


lngru_step, lngru_prepare_step = stepper(
    lngru_step_kernel,
    lambda p, h: (p["W"], p["g_x"], p["b"], p["U"], p["g_h"], p["c"], h.dtype.type(EPS)))


FUNCTIONS = {"lngru": (lngru_forward, lngru_backward, lngru_step, lngru_prepare_step)}
