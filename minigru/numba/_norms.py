"""The normalisations of the normalised cells, compiled: layer norm per row (lngru's ``x W`` and
``h U``) and batch norm over all rows (ligru's ``x W``), each with its backward.

The row reductions (``_math.row_kernel``) may add in any order, so that LLVM vectorises them;
they agree with NumPy's pairwise sums to rounding, not bit for bit.
"""

import math

import numpy as np

from ._math import ONE, ZERO, kernel, row_kernel


@row_kernel
def layer_norm_row(v, vhat, eps):
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
def layer_norm_row_backward(dvhat, vhat, inv_std, dv):
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
            inv_std[t, i, 0] = layer_norm_row(v[t, i], vhat[t, i], eps)
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
            layer_norm_row_backward(dvhat, vhat[t, i], inv_std[t, i, 0], dv[t, i])


@kernel
def batch_norm_columns(v, eps, vhat, inv_std, mean, var):
    """Training mode's batch norm of v (N, G) over its N rows, feature by feature (columns):
    fills vhat, inv_std, and the batch's mean and unbiased variance (for the running ones)."""
    N, G = v.shape
    nf = v.dtype.type(N)                              # (an int would make the loops float64)
    for k in range(G):
        mean[k] = 0
        var[k] = 0
    for i in range(N):                                # row by row: the inner loops vectorise
        for k in range(G):
            mean[k] += v[i, k]
    for k in range(G):
        mean[k] /= nf
    for i in range(N):
        for k in range(G):
            d = v[i, k] - mean[k]
            var[k] += d * d                           # the sum of squares, for now
    for k in range(G):
        inv_std[k] = ONE / math.sqrt(var[k] / nf + eps)
        var[k] /= nf - ONE
    for i in range(N):
        for k in range(G):
            vhat[i, k] = (v[i, k] - mean[k]) * inv_std[k]


@kernel
def batch_norm_columns_backward(dA, gamma, vhat, inv_std, dv, dgamma, dbeta):
    """The backward of ``gamma ⊙ vhat + beta`` with vhat from ``batch_norm_columns``: dv from
    dA = dL/d(BN(v)), and the gradients of gamma and beta (sums over the rows)."""
    N, G = dA.shape
    nf = dA.dtype.type(N)
    for k in range(G):
        dgamma[k] = 0
        dbeta[k] = 0
    for i in range(N):
        for k in range(G):
            dgamma[k] += dA[i, k] * vhat[i, k]
            dbeta[k] += dA[i, k]
    for i in range(N):                                # dv = inv_std (dvhat - mean(dvhat)
        for k in range(G):                            #      - vhat mean(dvhat vhat))
            dv[i, k] = gamma[k] * inv_std[k] * (dA[i, k] - (dbeta[k] + vhat[i, k] * dgamma[k]) / nf)


@kernel
def batch_norm_running(v, gamma, beta, running_mean, running_var, eps, a):
    """Evaluation mode's a = gamma ⊙ (v − running_mean) / sqrt(running_var + eps) + beta, for
    every row of v (N, G)."""
    N, G = v.shape
    for k in range(G):
        inv_std = ONE / math.sqrt(running_var[k] + eps)
        for i in range(N):
            a[i, k] = gamma[k] * ((v[i, k] - running_mean[k]) * inv_std) + beta[k]
