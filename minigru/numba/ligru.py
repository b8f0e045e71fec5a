"""ligru compiled with Numba: a checked copy of ``minigru/cells/ligru.py``.

The same cache and the same running-statistics buffers as the reference (so either backward can
follow either forward). The batch norm of ``x W`` over all T·B rows is not sequential: it is
compiled as passes over all rows before the loop (``batch_norm_columns``) and after the reverse
loop (its backward, which also sums the gradients of gamma and beta). The time loops hold only
``h U`` and the pointwise math (the forward's takes BN's affine ``gamma ⊙ vhat + beta`` as it
reads ``vhat``); the weight gradients and ``dx`` are single BLAS products after the reverse loop.
The ``step`` (evaluation mode) is one kernel call, the running-statistics normalisation included.

The per-element math (``ligru_point``, ``ligru_point_backward``) is plain Python over scalars,
for the CPU here and the GPU in the CUDA backend.
"""

import math

import numpy as np

from ..cells.ligru import EPS, _normalize_running, require_batch_statistics
from ._math import ONE, ZERO, column_sums, kernel, matmul, matmul_acc, pointwise, relu, sigmoid
from ._scratch import one_block, scratch


def ligru_point(az, an, h):
    """One unit: the full pre-activations (BN(x W) + h U) and the old state -> h', z, n."""
    z = sigmoid(az)
    n = relu(an)
    return z * h + (ONE - z) * n, z, n


def ligru_point_backward(dh, h, z, n):
    """dh (into h') -> daz, dan and the direct part of dh_prev."""
    dz = dh * (h - n)
    dn = dh * (ONE - z)
    daz = dz * z * (ONE - z)                          # through sigmoid
    dan = dn if n > ZERO else ZERO                    # through relu, from its output
    return daz, dan, dh * z


_ligru_point = pointwise(ligru_point)
_ligru_point_backward = pointwise(ligru_point_backward)


@kernel
def forward_loop(vhat, gamma, beta, U, hs, z, n):
    """vhat (T, B, 2H): the normalised x W; BN(x W) = gamma ⊙ vhat + beta is taken as it is read."""
    T, B, H = z.shape
    hu = np.empty((B, 2 * H), vhat.dtype)
    for t in range(T):
        matmul(hs[t], U, hu)
        for b in range(B):
            for j in range(H):
                az = gamma[j] * vhat[t, b, j] + beta[j]
                an = gamma[H + j] * vhat[t, b, H + j] + beta[H + j]
                hs[t + 1, b, j], z[t, b, j], n[t, b, j] = _ligru_point(
                    az + hu[b, j], an + hu[b, H + j], hs[t, b, j])


@kernel
def backward_loop(UT, hs, z, n, dys, dh_next, dg):
    T, B, H = z.shape
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for j in range(H):
                dg[t, b, j], dg[t, b, H + j], dh_next[b, j] = _ligru_point_backward(
                    dys[t, b, j] + dh_next[b, j], hs[t, b, j], z[t, b, j], n[t, b, j])
        matmul_acc(dg[t], UT, dh_next)                # through h U


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


def forward(p, x, h0, training=True, *, momentum, buffers):
    U, gamma, beta = p["U"], p["gamma"], p["beta"]
    T, B, I = x.shape
    H = h0.shape[1]
    v = x.reshape(T * B, I) @ p["W"]                  # (T·B, 2H)
    if training:
        require_batch_statistics(x)
        vhat, (inv_std, mean, var) = np.empty_like(v), np.empty((3, 2 * H), x.dtype)
        batch_norm_columns(v, x.dtype.type(EPS), vhat, inv_std, mean, var)
        for key, batch in (("running_mean", mean), ("running_var", var)):   # PyTorch's rule
            buffers[key] *= 1 - momentum
            buffers[key] += momentum * batch
    else:
        vhat, inv_std = _normalize_running(v, buffers)
    hs, z, n = one_block(x.dtype, (T + 1, B, H), (T, B, H), (T, B, H))     # the cache
    hs[0] = h0
    forward_loop(vhat.reshape(T, B, 2 * H), gamma, beta, np.ascontiguousarray(U), hs, z, n)
    cache = {"x": x, "vhat": vhat, "inv_std": inv_std, "training": training,
             "hs": hs, "z": z, "n": n}
    return hs[1:].copy(), hs[T].copy(), cache


def backward(p, cache, dys, dh_T):
    W, U, gamma = p["W"], p["U"], p["gamma"]
    x, vhat, inv_std, hs, z, n = (cache[k] for k in ("x", "vhat", "inv_std", "hs", "z", "n"))
    T, B, H = n.shape
    I = x.shape[2]
    dg = scratch("dxw", (T, B, 2 * H), x.dtype)       # dL/d(BN(x W) + h U): [daz | dan]
    dh_next = np.array(dh_T, copy=True)
    backward_loop(np.ascontiguousarray(U.T), hs, z, n, np.ascontiguousarray(dys), dh_next, dg)
    dA = dg.reshape(T * B, 2 * H)
    if cache["training"]:
        dv = scratch("dv", dA.shape, x.dtype)
        dgamma, dbeta = np.empty_like(gamma), np.empty_like(gamma)
        batch_norm_columns_backward(dA, gamma, vhat, inv_std, dv, dgamma, dbeta)
    else:
        dv = dA * gamma * inv_std
        dgamma, dbeta = column_sums(dA * vhat), column_sums(dA)
    grads = {
        "W": x.reshape(T * B, I).T @ dv,
        "U": hs[:-1].reshape(T * B, H).T @ dA,
        "gamma": dgamma,
        "beta": dbeta,
    }
    return (dv @ W.T).reshape(T, B, I), dh_next, grads


@kernel
def step_kernel(x, W, U, gamma, beta, running_mean, running_var, eps, h, h_new):
    """Evaluation mode: BN(x W) with the running statistics, then one step."""
    B, H = h.shape
    a = np.empty((B, 2 * H), x.dtype)
    matmul(x, W, a)
    for k in range(2 * H):
        inv_std = ONE / math.sqrt(running_var[k] + eps)
        for i in range(B):
            a[i, k] = gamma[k] * ((a[i, k] - running_mean[k]) * inv_std) + beta[k]
    matmul_acc(h, U, a)
    for i in range(B):
        for j in range(H):
            h_new[i, j], _, _ = _ligru_point(a[i, j], a[i, H + j], h[i, j])


def step(p, x_t, h, *, momentum, buffers):
    """One step of evaluation mode (running statistics); ``momentum`` is not used."""
    h_new = np.empty_like(h)
    step_kernel(np.ascontiguousarray(x_t), p["W"], p["U"], p["gamma"], p["beta"],
                buffers["running_mean"], buffers["running_var"], h.dtype.type(EPS),
                np.ascontiguousarray(h), h_new)
    return h_new, h_new


FUNCTIONS = {"ligru": (forward, backward, step)}
