"""The normalisations of the normalised cells on the GPU: batch norm of x W over all rows
(ligru; a thread per feature), layer norm of a row (lngru's x W and h U; a block per row, its
threads over the row's features, with ``_blas.block_sum``'s tree sum), and their backwards.

The block sums add in a tree, NumPy's in pairs, so the norms agree with the reference to
rounding, not bit for bit. A kernel's shared array takes the data's dtype from an array
argument (``cuda.shared.array(ROW_THREADS, v.dtype)``), which Numba types at compile time.
"""

import math

from numba import cuda

from ._blas import block_sum
from ._math import ONE, ZERO

ROW_THREADS = 256   # most threads of a block per row (a power of two; the tree sum needs one)


# ============================================================================ batch norm

@cuda.jit
def batch_statistics(v, mean, var):
    """One thread per feature k: mean and biased variance of v[:, k] over the rows."""
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    N, G = v.shape
    if k < G:
        nf = v.dtype.type(N)
        s = ZERO
        for i in range(N):
            s += v[i, k]
        mu = s / nf
        s = ZERO
        for i in range(N):
            s += (v[i, k] - mu) * (v[i, k] - mu)
        mean[k], var[k] = mu, s / nf


@cuda.jit
def batch_normalize(v, mean, var, eps, vhat, inv_std):
    """vhat = (v - mean) * inv_std, inv_std = 1 / sqrt(var + eps); one thread per feature."""
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k < v.shape[1]:
        s = ONE / math.sqrt(var[k] + eps)
        inv_std[k] = s
        for i in range(v.shape[0]):
            vhat[i, k] = (v[i, k] - mean[k]) * s


@cuda.jit
def batch_normalize_backward(dA, gamma, vhat, inv_std, training, dv, dgamma, dbeta):
    """One thread per feature k. BN(v) = gamma*vhat + beta: dgamma = sum(dA*vhat), dbeta =
    sum(dA); in training mode dv = inv_std * (dvhat - mean(dvhat) - vhat * mean(dvhat*vhat))
    with dvhat = dA*gamma (through the batch's mean and variance), else dv = dvhat * inv_std."""
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    N, G = dA.shape
    if k < G:
        sv = sd = ZERO
        for i in range(N):
            sv += dA[i, k] * vhat[i, k]
            sd += dA[i, k]
        dgamma[k], dbeta[k] = sv, sd
        g, s = gamma[k], inv_std[k]
        if training:
            nf = dA.dtype.type(N)
            mean_d, mean_dv = g * sd / nf, g * sv / nf
            for i in range(N):
                dv[i, k] = s * (dA[i, k] * g - mean_d - vhat[i, k] * mean_dv)
        else:                                         # the running statistics are constants
            for i in range(N):
                dv[i, k] = dA[i, k] * g * s



# ============================================================================ layer norm

@cuda.jit(device=True)
def layer_norm_row(v, eps, sh):
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
def layer_norm_row_backward(dy, g, vhat, inv_std, dv, sh):
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
    s = layer_norm_row(ahat[i], eps, sh)
    if tid == 0:
        inv_std[i] = s
    for k in range(tid, ahat.shape[1], nt):
        a[i, k] = g[k] * ahat[i, k] + bias[k]


@cuda.jit
def layer_norm_rows_backward(da, g, ahat, inv_std, dxw):
    """A block per row i: dxw[i] = the layer norm's backward of da[i] ⊙ g."""
    sh = cuda.shared.array(ROW_THREADS, da.dtype)
    i = cuda.blockIdx.x
    layer_norm_row_backward(da[i], g, ahat[i], inv_std[i], dxw[i], sh)


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


@cuda.jit
def affine_columns(vhat, g, bias, a):
    """a = g ⊙ vhat + bias, row by row; one thread per feature k (batch norm's affine part)."""
    k = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if k < vhat.shape[1]:
        for i in range(vhat.shape[0]):
            a[i, k] = g[k] * vhat[i, k] + bias[k]
