"""lngru on the GPU: a checked copy of ``minigru/cells/lngru.py`` (same cache keys).

The loop structure of Haste's ``LayerNormGRU``, with the layer norms' per-row reductions done by
a block per row (threads over the 3H features, a shared-memory tree sum):

- before the loop, ``x @ W`` for all steps as one tiled GEMM, then its layer norm, a block per
  (t, b) row: ``ahat`` and ``a = g_x ⊙ ahat + b``;
- forward step t, a block per row b: ``h_t[b] U`` (one column per thread), its layer norm over
  the row, then ``gru_point`` (the CPU backend's function, compiled for the GPU) per unit with
  ``u = g_h ⊙ uhat + c``, ``c_n`` passed as its ``c``: one launch per step, as a block holds a
  whole row;
- backward step t, a block per row b: ``dh`` = the gradient from above + the direct part +
  ``dhu[t+1, b] · UT[:, j]`` (the recurrent product of the step after, fused here), then
  ``gru_point_backward``, then the layer norm's backward over the row, giving ``dhu[t, b]``;
- after the loop, the layer norm's backward of ``x W`` (a block per row), then ``dW``, ``dU``,
  ``dx`` as single GEMMs and the gains' and biases' gradients as column sums.

The parameters and every activation stay on the device from the first step to the last. The
block sums add in a tree, NumPy's in pairs, so the layer norms agree with the reference to
rounding, not bit for bit. A kernel's shared array takes the data's dtype from an array argument
(``cuda.shared.array(ROW_THREADS, hs.dtype)``), which Numba types at compile time: the kernels
specialise on their arguments' types by themselves, with no factory per dtype.
"""

import math

from numba import cuda

from ..cells.lngru import EPS
from ..numba.gru import gru_point, gru_point_backward
from ._blas import block_sum, copy, empty, gemm, grid_rows, row_threads
from ._math import ONE, ZERO, device_function

ROW_THREADS = 256   # most threads of a block per row (a power of two; the tree sum needs one)

_gru_point = device_function(gru_point)
_gru_point_backward = device_function(gru_point_backward)


# ============================================================================ row reductions

@cuda.jit(device=True)
def _layer_norm_row(v, eps, sh):
    """v = (v - mean(v)) / sqrt(var(v) + eps) in place over one row (biased var); returns 1/std.
    Thread tid owns features tid, tid + blockDim, ...: it reads only what it wrote."""
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    G = v.shape[0]
    nf = v.dtype.type(G)
    part = ZERO
    for k in range(tid, G, nt):
        part += v[k]
    mu = block_sum(part, sh) / nf
    part = ZERO
    for k in range(tid, G, nt):
        part += (v[k] - mu) * (v[k] - mu)
    inv_std = ONE / math.sqrt(block_sum(part, sh) / nf + eps)
    for k in range(tid, G, nt):
        v[k] = (v[k] - mu) * inv_std
    return inv_std


@cuda.jit(device=True)
def _layer_norm_row_backward(dy, g, vhat, inv_std, dv, sh):
    """dv = inv_std * (dvhat - mean(dvhat) - vhat * mean(dvhat * vhat)), dvhat = dy ⊙ g."""
    tid, nt = cuda.threadIdx.x, cuda.blockDim.x
    G = dy.shape[0]
    nf = dy.dtype.type(G)
    part_d = ZERO
    part_dv = ZERO
    for k in range(tid, G, nt):
        part_d += dy[k] * g[k]
        part_dv += dy[k] * g[k] * vhat[k]
    mean_d = block_sum(part_d, sh) / nf
    mean_dv = block_sum(part_dv, sh) / nf
    for k in range(tid, G, nt):
        dv[k] = inv_std * (dy[k] * g[k] - mean_d - vhat[k] * mean_dv)


@cuda.jit
def layer_norm_rows(ahat, g, bias, eps, inv_std, a):
    """A block per row i: ahat[i] (x W on entry) normalised in place; a[i] = g ⊙ ahat[i] + bias."""
    sh = cuda.shared.array(ROW_THREADS, ahat.dtype)
    i, tid, nt = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    s = _layer_norm_row(ahat[i], eps, sh)
    if tid == 0:
        inv_std[i] = s
    for k in range(tid, ahat.shape[1], nt):
        a[i, k] = g[k] * ahat[i, k] + bias[k]


@cuda.jit
def layer_norm_rows_backward(da, g, ahat, inv_std, dxw):
    """A block per row i: dxw[i] = the layer norm's backward of da[i] ⊙ g."""
    sh = cuda.shared.array(ROW_THREADS, da.dtype)
    i = cuda.blockIdx.x
    _layer_norm_row_backward(da[i], g, ahat[i], inv_std[i], dxw[i], sh)


@cuda.jit
def gain_bias_grads(d, vhat, dg, db):
    """dg = (d ⊙ vhat).sum(axis=0), db = d.sum(axis=0); one thread per column."""
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k < d.shape[1]:
        sg = sb = ZERO
        for i in range(d.shape[0]):
            sg += d[i, k] * vhat[i, k]
            sb += d[i, k]
        dg[k], db[k] = sg, sb


# ============================================================================ lngru

@cuda.jit
def lngru_forward_step(t, a, U, g_h, c, eps, hs, uhat, u_inv_std, r, z, n):
    sh = cuda.shared.array(ROW_THREADS, hs.dtype)
    b, tid, nt = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    H = hs.shape[2]
    for k in range(tid, 3 * H, nt):                   # (h_t U)[b, k], normalised in place below
        hu = ZERO
        for i in range(H):
            hu += hs[t, b, i] * U[i, k]
        uhat[t, b, k] = hu
    s = _layer_norm_row(uhat[t, b], eps, sh)
    if tid == 0:
        u_inv_std[t, b, 0] = s
    cuda.syncthreads()                                # unit j reads features other threads wrote
    for j in range(tid, H, nt):
        # u = g_h*uhat + c; gru_point adds c_n to the candidate's term itself
        hs[t + 1, b, j], r[t, b, j], z[t, b, j], n[t, b, j], _ = _gru_point(
            a[t, b, j], a[t, b, H + j], a[t, b, 2 * H + j],
            g_h[j] * uhat[t, b, j] + c[j], g_h[H + j] * uhat[t, b, H + j] + c[H + j],
            g_h[2 * H + j] * uhat[t, b, 2 * H + j], c[2 * H + j], hs[t, b, j])


@cuda.jit
def lngru_backward_step(t, UT, g_h, c, hs, uhat, u_inv_std, r, z, n, dys, dh_direct, da, du,
                        dhu):
    sh = cuda.shared.array(ROW_THREADS, hs.dtype)
    b, tid, nt = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    T, _, H = n.shape
    for j in range(tid, H, nt):
        dh = dys[t, b, j] + dh_direct[b, j]
        if t + 1 < T:                                 # through h_{t+1} U, the step after
            for k in range(3 * H):
                dh += dhu[t + 1, b, k] * UT[k, j]
        un = g_h[2 * H + j] * uhat[t, b, 2 * H + j] + c[2 * H + j]  # what r multiplied
        dar, daz, dan, dun, dh_direct[b, j] = _gru_point_backward(
            dh, hs[t, b, j], r[t, b, j], z[t, b, j], n[t, b, j], un)
        da[t, b, j], da[t, b, H + j], da[t, b, 2 * H + j] = dar, daz, dan
        du[t, b, j], du[t, b, H + j], du[t, b, 2 * H + j] = dar, daz, dun
    cuda.syncthreads()                                # the row's reductions read every unit's du
    # u = g_h*uhat + c, uhat = (h U - mean) * inv_std
    _layer_norm_row_backward(du[t, b], g_h, uhat[t, b], u_inv_std[t, b, 0], dhu[t, b], sh)


def lngru_forward(p, x, h0, training=True):
    T, B, I = x.shape
    H = h0.shape[1]
    eps = x.dtype.type(EPS)
    threads = row_threads(3 * H, ROW_THREADS)
    ahat = gemm(x.reshape(T * B, I), p["W"])          # (T·B, 3H) x W, normalised in place next
    a_inv_std = empty((T, B, 1), x.dtype)
    a = empty((T, B, 3 * H), x.dtype)                 # LN(x W; g_x) + b
    layer_norm_rows[T * B, threads](ahat, p["g_x"], p["b"], eps, a_inv_std.reshape(T * B),
                                    a.reshape(T * B, 3 * H))
    hs = empty((T + 1, B, H), x.dtype)
    hs[0].copy_to_device(h0)
    uhat = empty((T, B, 3 * H), x.dtype)
    u_inv_std = empty((T, B, 1), x.dtype)
    r, z, n = (empty((T, B, H), x.dtype) for _ in range(3))
    for t in range(T):
        lngru_forward_step[B, threads](t, a, p["U"], p["g_h"], p["c"], eps, hs, uhat, u_inv_std,
                                       r, z, n)
    cache = {"x": x, "hs": hs, "ahat": ahat.reshape(T, B, 3 * H), "a_inv_std": a_inv_std,
             "uhat": uhat, "u_inv_std": u_inv_std, "r": r, "z": z, "n": n}
    return copy(hs[1:]), copy(hs[T]), cache


def lngru_backward(p, cache, dys, dh_T):
    x, hs, ahat, a_inv_std, uhat, u_inv_std, r, z, n = (cache[k] for k in (
        "x", "hs", "ahat", "a_inv_std", "uhat", "u_inv_std", "r", "z", "n"))
    T, B, H = n.shape
    I = x.shape[2]
    threads = row_threads(3 * H, ROW_THREADS)
    UT = p["U"].T
    da = empty((T, B, 3 * H), x.dtype)                # dL/da: [dar | daz | dan]
    du = empty((T, B, 3 * H), x.dtype)                # dL/du: [dar | daz | dun]
    dhu = empty((T, B, 3 * H), x.dtype)               # dL/d(h U), before the layer norm
    dh = copy(dh_T)
    for t in range(T - 1, -1, -1):
        lngru_backward_step[B, threads](t, UT, p["g_h"], p["c"], hs, uhat, u_inv_std, r, z, n,
                                        dys, dh, da, du, dhu)
    gemm(dhu[0], UT, dh, accumulate=True)            # dh0: through h_0 U
    # a = g_x*ahat + b, ahat = (x W - mean) * inv_std: every step at once
    da2, du2, ahat2, uhat2 = (v.reshape(T * B, 3 * H) for v in (da, du, ahat, uhat))
    dXW = empty((T * B, 3 * H), x.dtype)
    layer_norm_rows_backward[T * B, threads](da2, p["g_x"], ahat2, a_inv_std.reshape(T * B), dXW)
    # parameter gradients: one product or column sum each over all T*B rows
    grads = {"W": gemm(x.reshape(T * B, I), dXW, ta=True),
             "U": gemm(hs[:T].reshape(T * B, H), dhu.reshape(T * B, 3 * H), ta=True)}
    grads.update((k, empty(3 * H, x.dtype)) for k in ("g_x", "g_h", "b", "c"))
    grid, columns = grid_rows(1, 3 * H)
    gain_bias_grads[grid, columns](da2, ahat2, grads["g_x"], grads["b"])
    gain_bias_grads[grid, columns](du2, uhat2, grads["g_h"], grads["c"])
    return gemm(dXW, p["W"], tb=True).reshape(T, B, I), dh, grads


FUNCTIONS = {
    "lngru": (lngru_forward, lngru_backward),
}
