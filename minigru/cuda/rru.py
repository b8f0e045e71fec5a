"""rru on the GPU: a checked copy of ``minigru/cells/rru.py`` (same cache keys).

Every step of a row needs the whole row twice over (the RMS of ``u J + j`` over its M features,
then ``d V`` over them), and rows never mix, so each step is one kernel launch with one block
per row b (``blockIdx.x = b``), its threads striding over the features:

- before the loop, ``x J_x + j`` for all steps as one tiled GEMM;
- forward step t, block b: ``pre = xj[t, b] + h_t[b] J_h`` (a thread per middle unit k), the
  sum of ``pre²`` over the row (a tree reduction in shared memory), ``q = pre·r``,
  ``a = relu(q)``; then, after a barrier, a thread per column of ``d V`` with ``d = a·mask``,
  finished by ``rru_update_point`` (the cell file's point function, compiled for the GPU) for the
  state's columns and ``+ v`` for the output's;
- backward step t, block b: ``dh = dh_next + dpre[t+1, b] · JhT[:, j]`` (the recurrent
  product of the step after, fused here), ``rru_update_point_backward`` into ``dco`` and the
  residual part of the next ``dh``; after a barrier ``dd = dco[t, b] · VT[:, k]``,
  ``rru_hidden_point_backward``, and the backward of the RMS (a second tree reduction);
- after the loop, ``dJ`` (two GEMMs, into its x rows and its h rows), ``dV``, ``dj``, ``dv``,
  ``dx`` as GEMMs and column sums, and ``ds``, ``dZ`` as one column reduction.

The only host work is the dropout mask: drawn before the loop by the reference's own
``_dropout_mask`` with the same ``rng`` calls (so a generator in a given state gives every backend
the same mask), then uploaded once. Everything else stays on the device.
"""

import math
from functools import lru_cache

import numpy as np
from numba import cuda, from_dtype

from ..cells.rru import EPS, S_SCALE, _dropout_mask
from ..cells.rru import (rru_hidden_point, rru_hidden_point_backward, rru_update_point,
                         rru_update_point_backward)
from ._blas import (THREADS, block_sum, blocks, colsum, copy, empty, gemm, loop_masks,
                    mul_cyclic, row_threads, to_device)
from ._math import ONE, ZERO, compiled_point, sigmoid

_S_SCALE = np.float32(S_SCALE)    # exact in float32, so one constant serves both dtypes

_rru_update_point = compiled_point(rru_update_point)
_rru_update_point_backward = compiled_point(rru_update_point_backward)
_rru_hidden_point = compiled_point(rru_hidden_point)
_rru_hidden_point_backward = compiled_point(rru_hidden_point_backward)


@lru_cache(maxsize=None)
def _kernels(dtype):
    nbtype = from_dtype(np.dtype(dtype))

    @cuda.jit
    def rru_forward_step(t, xj, Jh, V, v, s, Z, mask, has_mask, eps, width, ys, hs, q, r, a, c,
                         m_h, masked, keep, hs_new, zoned):
        """xj (T, B, M) = x J_x + j, precomputed; ``width`` is M in the data's dtype. The last
        five: recurrent dropout's mask of the product's h, and zoneout's k_t and the update's
        own h' (stand-ins when off, as in the Gated loops)."""
        sh = cuda.shared.array(THREADS, nbtype)
        b, i0, di = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        H, M, O = hs.shape[2], q.shape[2], ys.shape[2]
        ss = ZERO                                     # this thread's share of sum(pre²)
        for k in range(i0, M, di):                    # pre = u J + j, kept in q until r is known
            pre = xj[t, b, k]
            for i in range(H):
                pre += (hs[t, b, i] * m_h[b, i] if masked else hs[t, b, i]) * Jh[i, k]
            q[t, b, k] = pre
            ss += pre * pre
        rb = ONE / math.sqrt(block_sum(ss, sh) / width + eps)     # RMS, no gain
        for k in range(i0, M, di):
            q[t, b, k] *= rb
            a[t, b, k] = _rru_hidden_point(q[t, b, k])
        if i0 == 0:
            r[t, b, 0] = rb
        cuda.syncthreads()                            # all of a[t, b] before d V
        for k in range(i0, H + O, di):                # [c|o] = d V + v
            co = ZERO
            for i in range(M):
                d = a[t, b, i] * mask[t, b, i] if has_mask else a[t, b, i]   # what V sees
                co += d * V[i, k]
            if k < H:
                hs[t + 1, b, k], c[t, b, k] = _rru_update_point(
                    co, v[k], hs[t, b, k], sigmoid(_S_SCALE * s[k]), Z[k])
                if zoned:                             # keep k of the old state
                    hs_new[t + 1, b, k] = hs[t + 1, b, k]
                    hs[t + 1, b, k] = (keep[t, b, k] * hs[t, b, k]
                                       + (ONE - keep[t, b, k]) * hs_new[t + 1, b, k])
            else:
                ys[t, b, k - H] = co + v[k]

    @cuda.jit
    def rru_backward_step(t, VT, JhT, s, Z, q, r, a, mask, has_mask, width, dys,
                          dh_next, dh_all, dco, dpre, m_h, masked, keep, hs_new, zoned):
        sh = cuda.shared.array(THREADS, nbtype)
        b, i0, di = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        T, _, M = q.shape
        H, O = dh_next.shape[1], dys.shape[2]
        for j in range(i0, H, di):                    # h' = h*g + c*Z
            dh = dh_next[b, j]
            if t + 1 < T:                             # through h_{t+1} J_h, the step after
                through = ZERO
                for k in range(M):
                    through += dpre[t + 1, b, k] * JhT[k, j]
                dh += through * m_h[b, j] if masked else through
            kept = ZERO
            if zoned:                                 # h' = k h + (1-k) new
                kept = keep[t, b, j] * dh
                dh = (ONE - keep[t, b, j]) * dh
            dh_all[t, b, j] = dh                      # h_t feeds only step t+1
            dco[t, b, j], dh_next[b, j] = _rru_update_point_backward(
                dh, sigmoid(_S_SCALE * s[j]), Z[j])
            if zoned:
                dh_next[b, j] += kept
        for k in range(i0, O, di):
            dco[t, b, H + k] = dys[t, b, k]
        cuda.syncthreads()                            # all of dco[t, b] before dco V.T
        part = ZERO                                   # this thread's share of sum(dq·q)
        for k in range(i0, M, di):
            dd = ZERO                                 # [c|o] = d V + v
            for i in range(H + O):
                dd += dco[t, b, i] * VT[i, k]
            keep = mask[t, b, k] if has_mask else ONE
            dq = _rru_hidden_point_backward(dd, keep, a[t, b, k])
            dpre[t, b, k] = dq                        # dq, until the mean is known
            part += dq * q[t, b, k]
        mean = block_sum(part, sh) / width
        for k in range(i0, M, di):                    # RMS: dpre = r*(dq - q*mean(dq*q))
            dpre[t, b, k] = r[t, b, 0] * (dpre[t, b, k] - q[t, b, k] * mean)

    return rru_forward_step, rru_backward_step


@cuda.jit
def _product(a, mask, out):
    """out = a * mask, element-wise over flat arrays: what V saw, for dV."""
    i = cuda.grid(1)
    if i < out.size:
        out[i] = a[i] * mask[i]


@cuda.jit
def rru_residual_grads(hs, c, dh_all, s, ds, dZ):
    """ds, dZ: one thread per unit j, summing over every (t, b) of h' = h*σ(10 s) + c*Z."""
    j = cuda.grid(1)
    T, B, H = c.shape
    if j < H:
        dg = dz = ZERO
        for t in range(T):
            for b in range(B):
                dg += dh_all[t, b, j] * hs[t, b, j]
                dz += dh_all[t, b, j] * c[t, b, j]
        g = sigmoid(_S_SCALE * s[j])
        ds[j] = dg * g * (ONE - g) * _S_SCALE        # through σ(10 s)
        dZ[j] = dz


def rru_forward(p, x, h0, training=True, *, dropout, rng, masks=None):
    J, V = p["J"], p["V"]
    T, B, I = x.shape
    H, M = h0.shape[1], J.shape[1]
    O = V.shape[1] - H
    xj = gemm(x.reshape(T * B, I), J[:I], bias=p["j"]).reshape(T, B, M)   # u J = x J_x + h J_h
    if training and dropout > 0:                      # the host's rng, as the other backends
        mask = to_device(_dropout_mask(rng, dropout, (T, B, M), x.dtype))
    else:
        mask = None
    ys = empty((T, B, O), x.dtype)
    hs = empty((T + 1, B, H), x.dtype)
    hs[0].copy_to_device(h0)
    q, a = empty((T, B, M), x.dtype), empty((T, B, M), x.dtype)
    r = empty((T, B, 1), x.dtype)
    c = empty((T, B, H), x.dtype)
    keep = empty((1, 1, 1), x.dtype) if mask is None else mask    # never read without a mask
    forward_step, _ = _kernels(x.dtype)
    threads = row_threads(max(M, H + O))
    m_h, masked, (keep_h,), (hs_new,), zoned = loop_masks(masks, 1, T, B, H, x.dtype)
    reg = (m_h, masked, keep_h, hs_new, zoned)
    for t in range(T):
        forward_step[B, threads](t, xj, J[I:], V, p["v"], p["s"], p["Z"], keep, mask is not None,
                                 x.dtype.type(EPS), x.dtype.type(M), ys, hs, q, r, a, c, *reg)
    cache = {"x": x, "hs": hs, "q": q, "r": r, "a": a, "c": c, "mask": mask, "regularised": reg}
    return ys, copy(hs[T]), cache


def rru_backward(p, cache, dys, dh_T):
    J, V = p["J"], p["V"]
    x, hs, q, r, a, c, mask = (cache[k] for k in ("x", "hs", "q", "r", "a", "c", "mask"))
    T, B, I = x.shape
    H, M = hs.shape[2], q.shape[2]
    O = dys.shape[2]
    JhT = J[I:].T
    dh_all = empty((T, B, H), x.dtype)                # dL/dh_t, for dZ and ds
    dco = empty((T, B, H + O), x.dtype)               # dL/d(d V + v) = [dc | do]
    dpre = empty((T, B, M), x.dtype)                  # dL/d(u J + j)
    dh = copy(dh_T)
    keep = empty((1, 1, 1), x.dtype) if mask is None else mask    # never read without a mask
    _, backward_step = _kernels(x.dtype)
    threads = row_threads(max(M, H + O))
    reg = cache["regularised"]
    m_h, masked = reg[:2]
    for t in range(T - 1, -1, -1):
        backward_step[B, threads](t, V.T, JhT, p["s"], p["Z"], q, r, a, keep, mask is not None,
                                  x.dtype.type(M), dys, dh, dh_all, dco, dpre, *reg)
    if masked:                                        # dh0: through (h_0 ⊙ m_h) J_h
        mul_cyclic(gemm(dpre[0], JhT), m_h, dh, accumulate=True)
    else:                                             # dh0: through h_0 J_h
        gemm(dpre[0], JhT, dh, accumulate=True)
    # parameter gradients: one product each over all T*B rows
    dPre, dCo = dpre.reshape(T * B, M), dco.reshape(T * B, H + O)
    D = a                                             # what V saw
    if mask is not None:
        D = empty((T, B, M), x.dtype)
        _product[blocks(D.size), THREADS](a.reshape(a.size), mask.reshape(mask.size),
                                          D.reshape(D.size))
    dJ = empty((I + H, M), x.dtype)                   # u_t = [x_t | h_{t-1}]
    gemm(x.reshape(T * B, I).T, dPre, dJ[:I])
    hp = mul_cyclic(hs[:T], m_h) if masked else hs[:T]    # what J_h saw
    gemm(hp.reshape(T * B, H).T, dPre, dJ[I:])
    ds, dZ = empty(H, x.dtype), empty(H, x.dtype)
    rru_residual_grads[blocks(H), THREADS](hs, c, dh_all, p["s"], ds, dZ)
    grads = {
        "J": dJ,
        "j": colsum(dPre),
        "V": gemm(D.reshape(T * B, M).T, dCo),
        "v": colsum(dCo),
        "s": ds,
        "Z": dZ,
    }
    return gemm(dPre, J[:I].T).reshape(T, B, I), dh, grads


rru_forward.loop_regularisers = True   # its kernels apply recurrent dropout and zoneout

FUNCTIONS = {
    "rru": (rru_forward, rru_backward),
}
