"""rru compiled with Numba: a checked copy of ``minigru/cells/rru.py`` (same cache).

``x J_x + j`` for all steps in one BLAS product before the loop; inside the compiled loop
``h J_h``, the RMS of each row (a reduction over its M features), relu, the dropout mask,
``d V + v`` and the update; the weight gradients as single BLAS products after the reverse loop.
The dropout mask is drawn before the loop by the reference's own ``_dropout_mask`` with the same
``rng`` calls, so a generator in a given state gives both backends the same mask. ``σ(10 s)`` is
computed by the reference's NumPy ``sigmoid`` in ``forward``/``backward``, and by the compiled
one inside ``step``'s kernel. The RMS reductions are ``_math.row_kernel`` (any order of
addition, so LLVM vectorises them).
"""

import math

import numpy as np

from .._aligned import huge_arrays
from ..cells._point import sigmoid as np_sigmoid
from ..cells.rru import (EPS, S_SCALE, _dropout_mask, rru_gradients, rru_hidden_point,
                         rru_hidden_point_backward, rru_update_point, rru_update_point_backward)
from ._math import (ONE, ZERO, column_sums, compiled_point, input_projection, kernel, matmul,
                    matmul_acc, row_kernel, sigmoid)
from ._scratch import one_block, scratch

_S_SCALE = np.float32(S_SCALE)    # exact in float32, so one constant serves both dtypes


# the per-unit math, from the cell file
_rru_update_point = compiled_point(rru_update_point)
_rru_update_point_backward = compiled_point(rru_update_point_backward)
_rru_hidden_point = compiled_point(rru_hidden_point)
_rru_hidden_point_backward = compiled_point(rru_hidden_point_backward)


@row_kernel
def _rms_relu_row(pre, q, a, eps):
    """q = pre / sqrt(mean(pre²) + eps), a = relu(q) over one row; returns r = 1/sqrt(...)."""
    M = pre.shape[0]
    ms = ZERO
    for k in range(M):
        ms += pre[k] * pre[k]
    r = ONE / math.sqrt(ms / pre.dtype.type(M) + eps)
    for k in range(M):
        q[k] = pre[k] * r
        a[k] = _rru_hidden_point(q[k])
    return r


@row_kernel
def _rms_row_backward(dq, q, r, dpre):
    """dpre = r * (dq - q * mean(dq * q)): the backward of q = pre * r over one row."""
    M = dq.shape[0]
    m = ZERO
    for k in range(M):
        m += dq[k] * q[k]
    m = m / dq.dtype.type(M)
    for k in range(M):
        dpre[k] = r * (dq[k] - q[k] * m)


@kernel
def rru_forward_loop(xj, j_, Jh, V, v, g, Z, mask, has_mask, eps, ys, hs, q, r, a, c, m_h, keep,
                     hs_new):
    """xj (T, B, M) = x J_x, precomputed (the bias j_ is added here); fills ys, hs[1:], q, r,
    a, c. Recurrent dropout (``m_h`` (B, H)): the product is ``(h ⊙ m_h) J_h``; zoneout
    (``keep`` (T, B, H)): the update's h' goes to ``hs_new``, hs gets k ⊙ h + (1 − k) ⊙ h'.
    Each None when off (their branches are dropped before compiling)."""
    T, B, M = xj.shape
    H = hs.shape[2]
    O = ys.shape[2]
    pre = np.empty((B, M), xj.dtype)                  # u J + j, one step
    dropped = np.empty((B, M), xj.dtype)              # a * mask, one step
    co = np.empty((B, H + O), xj.dtype)               # d V, one step
    hm = np.empty((B, H), xj.dtype)                   # h ⊙ m_h, one step
    for t in range(T):
        for b in range(B):
            for k in range(M):
                pre[b, k] = xj[t, b, k] + j_[k]
        if m_h is None:
            matmul_acc(hs[t], Jh, pre)
        else:
            for b in range(B):
                for j in range(H):
                    hm[b, j] = hs[t, b, j] * m_h[b, j]
            matmul_acc(hm, Jh, pre)
        for b in range(B):
            r[t, b, 0] = _rms_relu_row(pre[b], q[t, b], a[t, b], eps)
        d = a[t]                                      # what V sees
        if has_mask:
            for b in range(B):
                for k in range(M):
                    dropped[b, k] = a[t, b, k] * mask[t, b, k]
            d = dropped
        matmul(d, V, co)
        for b in range(B):
            for j in range(H):
                hs[t + 1, b, j], c[t, b, j] = _rru_update_point(co[b, j], v[j], hs[t, b, j],
                                                                g[j], Z[j])
            if keep is not None:                      # zoneout: keep k of the old state
                for j in range(H):
                    hs_new[t + 1, b, j] = hs[t + 1, b, j]
                    hs[t + 1, b, j] = (keep[t, b, j] * hs[t, b, j]
                                       + (ONE - keep[t, b, j]) * hs_new[t + 1, b, j])
            for k in range(O):
                ys[t, b, k] = co[b, H + k] + v[H + k]


@kernel
def rru_backward_loop(VT, JhT, g, Z, q, r, a, mask, has_mask, dys, dh_next, dh_all, dco, dpre,
                      m_h, keep):
    T, B, M = q.shape
    H = dh_next.shape[1]
    O = dys.shape[2]
    dd = np.empty((B, M), q.dtype)                    # dL/d(dropout(a)), one step
    dq = np.empty(M, q.dtype)                         # dL/dq, one row
    kept = np.empty((B, H), q.dtype)                  # zoneout: k of dL/dh', to the old h
    dh_j = np.empty((B, H), q.dtype)                  # recurrent dropout: d(h ⊙ m_h), one step
    for t in range(T - 1, -1, -1):
        for b in range(B):
            if keep is not None:                      # h' = k h + (1-k) new
                for j in range(H):
                    kept[b, j] = keep[t, b, j] * dh_next[b, j]
                    dh_next[b, j] = (ONE - keep[t, b, j]) * dh_next[b, j]
            for j in range(H):                        # h' = h*g + c*Z
                dh_all[t, b, j] = dh_next[b, j]       # h_t feeds only step t+1
                dco[t, b, j], dh_next[b, j] = _rru_update_point_backward(dh_next[b, j], g[j],
                                                                         Z[j])
            for k in range(O):
                dco[t, b, H + k] = dys[t, b, k]
        matmul(dco[t], VT, dd)                        # [c|o] = d V + v
        for b in range(B):
            for k in range(M):                        # backprop through the mask and relu
                kept_unit = mask[t, b, k] if has_mask else ONE
                dq[k] = _rru_hidden_point_backward(dd[b, k], kept_unit, a[t, b, k])
            _rms_row_backward(dq, q[t, b], r[t, b, 0], dpre[t, b])
        if m_h is None:
            matmul_acc(dpre[t], JhT, dh_next)         # through h J_h
        else:                                         # through (h ⊙ m_h) J_h
            matmul(dpre[t], JhT, dh_j)
            for b in range(B):
                for j in range(H):
                    dh_next[b, j] += dh_j[b, j] * m_h[b, j]
        if keep is not None:
            for b in range(B):
                for j in range(H):
                    dh_next[b, j] += kept[b, j]


def _dummy(dtype):
    return np.zeros((1, 1, 1), dtype)


def rru_forward(p, x, h0, training=True, *, dropout, rng, masks=None):
    J, V, v, Z = p["J"], p["V"], p["v"], p["Z"]
    T, B, I = x.shape
    H, M = h0.shape[1], J.shape[1]
    O = V.shape[1] - H
    Jx, Jh = J[:I], J[I:]                             # u J = x J_x + h J_h
    xj = input_projection(x, Jx, scratch("xj", (T, B, M), x.dtype))   # all steps at once
    g = np_sigmoid(S_SCALE * p["s"])                  # (H,), the residual weight
    mask = _dropout_mask(rng, dropout, (T, B, M), x.dtype) if training and dropout > 0 else None
    ys = np.empty((T, B, O), x.dtype)
    hs, q, a, r, c = one_block(x.dtype, (T + 1, B, H), (T, B, M), (T, B, M), (T, B, 1),
                               (T, B, H))                             # the cache
    hs[0] = h0
    m_h, keep = (None, None) if masks is None else (masks.h, masks.keep)
    hs_new = None if keep is None else huge_arrays(x.dtype, (T + 1, B, H))[0]   # the update's h'
    rru_forward_loop(xj, p["j"], np.ascontiguousarray(Jh), np.ascontiguousarray(V), v, g, Z,
                     _dummy(x.dtype) if mask is None else mask, mask is not None,
                     x.dtype.type(EPS), ys, hs, q, r, a, c, m_h,
                     None if keep is None else keep[0], hs_new)
    cache = {"x": x, "hs": hs, "q": q, "r": r, "a": a, "c": c, "mask": mask, "masks": masks}
    return ys, hs[T].copy(), cache


def rru_backward(p, cache, dys, dh_T):
    J, V, Z = p["J"], p["V"], p["Z"]
    x, hs, q, r, a, c, mask = (cache[k] for k in ("x", "hs", "q", "r", "a", "c", "mask"))
    T, B, I = x.shape
    H, M = hs.shape[2], q.shape[2]
    g = np_sigmoid(S_SCALE * p["s"])
    dh_all = scratch("dh_all", (T, B, H), x.dtype)        # dL/dh_t, for dZ and ds
    dco = scratch("dco", (T, B, H + dys.shape[2]), x.dtype)  # dL/d(d V + v) = [dc | do]
    dpre = scratch("dpre", (T, B, M), x.dtype)         # dL/d(u J + j)
    dh_next = np.array(dh_T, copy=True)
    masks = cache.get("masks")
    m_h, keep = (None, None) if masks is None else (masks.h, masks.keep)
    rru_backward_loop(np.ascontiguousarray(V.T), np.ascontiguousarray(J[I:].T), g, Z, q, r, a,
                      _dummy(x.dtype) if mask is None else mask, mask is not None,
                      np.ascontiguousarray(dys), dh_next, dh_all, dco, dpre, m_h,
                      None if keep is None else keep[0])
    dx, grads = rru_gradients(p, cache, dpre, dco, dh_all, g, sums=column_sums)
    return dx, dh_next, grads


@kernel
def rru_step_kernel(x, Jx, Jh, j, V, v, s, Z, eps, o, h, h_new):
    B, H = h.shape
    M = Jx.shape[1]
    O = o.shape[1]
    pre = np.empty((B, M), x.dtype)
    q = np.empty(M, x.dtype)
    a = np.empty((B, M), x.dtype)
    co = np.empty((B, H + O), x.dtype)
    matmul(x, Jx, pre)
    matmul_acc(h, Jh, pre)
    for i in range(B):
        for k in range(M):
            pre[i, k] += j[k]
        _rms_relu_row(pre[i], q, a[i], eps)
    matmul(a, V, co)                                  # evaluation mode: no dropout
    for i in range(B):
        for k in range(H):
            h_new[i, k], _ = _rru_update_point(co[i, k], v[k], h[i, k],
                                               sigmoid(_S_SCALE * s[k]), Z[k])
        for k in range(O):
            o[i, k] = co[i, H + k] + v[H + k]


def rru_step(p, x_t, h, *, dropout, rng):
    """Evaluation mode: the Cell passes dropout=0.0, and no mask is drawn."""
    I = x_t.shape[1]
    J = p["J"]
    B, H = h.shape
    o = np.empty((B, p["V"].shape[1] - H), h.dtype)
    h_new = np.empty_like(h)
    rru_step_kernel(np.ascontiguousarray(x_t), J[:I], J[I:], p["j"], p["V"], p["v"], p["s"],
                    p["Z"], x_t.dtype.type(EPS), o, np.ascontiguousarray(h), h_new)
    return o, h_new


FUNCTIONS = {"rru": (rru_forward, rru_backward, rru_step)}
