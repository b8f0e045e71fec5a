"""ligru on the GPU: a checked copy of ``minigru/cells/ligru.py`` (same cache keys, same buffers).

The loop structure of the other backends, per time step one kernel launch that fuses the
recurrent product with the pointwise math:

- before the loop, ``v = x @ W`` for all steps as one tiled GEMM; in training mode the batch's
  mean and biased variance of every feature over the T·B rows (one thread per feature), in
  evaluation mode the running statistics; then ``vhat = (v - mean) / sqrt(var + eps)``;
- forward step t, one thread per (row b, unit j): the two dot products of ``h_t[b]`` with
  ``U``'s columns j, H+j, then ``ligru_point`` (the CPU backend's function, compiled for the
  GPU) of ``BN(x W) + h U``, BN's affine ``gamma ⊙ vhat + beta`` taken as ``vhat`` is read;
- backward step t, one thread per (b, j): ``dh`` = the gradient from above + the direct part +
  ``dg[t+1, b] · UT[:, j]`` (the recurrent product of the step after, fused here), then
  ``ligru_point_backward``;
- after the loop, the batch norm's backward (one thread per feature, whose two column sums are
  also ``dgamma`` and ``dbeta``), then ``dW``, ``dU`` and ``dx`` as single GEMMs.

The running statistics are host NumPy arrays, updated in place as the reference does: that is
the only host work, outside the loop. A training forward given buffers copies the batch's mean
and variance (two vectors of 2H) to the host once; an evaluation forward copies the running
statistics to the device once. Everything else stays on the device.
"""

import math

from numba import cuda

from ..cells.ligru import EPS, require_batch_statistics
from ..numba.ligru import ligru_point, ligru_point_backward
from ._blas import copy, empty, gemm, grid_rows, to_device
from ._math import ONE, ZERO, device_function

_ligru_point = device_function(ligru_point)
_ligru_point_backward = device_function(ligru_point_backward)


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


# ============================================================================ ligru

@cuda.jit
def ligru_forward_step(t, vhat, gamma, beta, U, hs, z, n):
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = hs.shape[2]
    if j < H:
        uz = un = ZERO                                # (h_t U)[b, j], [b, H+j]
        for k in range(H):
            h = hs[t, b, k]
            uz += h * U[k, j]
            un += h * U[k, H + j]
        az = gamma[j] * vhat[t, b, j] + beta[j]
        an = gamma[H + j] * vhat[t, b, H + j] + beta[H + j]
        hs[t + 1, b, j], z[t, b, j], n[t, b, j] = _ligru_point(az + uz, an + un, hs[t, b, j])


@cuda.jit
def ligru_backward_step(t, UT, hs, z, n, dys, dh_direct, dg):
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    T, _, H = z.shape
    if j < H:
        dh = dys[t, b, j] + dh_direct[b, j]
        if t + 1 < T:                                 # through h_{t+1} U, the step after
            for k in range(2 * H):
                dh += dg[t + 1, b, k] * UT[k, j]
        dg[t, b, j], dg[t, b, H + j], dh_direct[b, j] = _ligru_point_backward(
            dh, hs[t, b, j], z[t, b, j], n[t, b, j])


def forward(p, x, h0, training=True, *, momentum, buffers):
    T, B, I = x.shape
    H = h0.shape[1]
    v = gemm(x.reshape(T * B, I), p["W"])             # (T·B, 2H), every step in one product
    features, columns = grid_rows(1, 2 * H)
    if training:
        require_batch_statistics(x)
        mean, var = empty(2 * H, x.dtype), empty(2 * H, x.dtype)
        batch_statistics[features, columns](v, mean, var)   # batch μ, biased σ² over T·B rows
        if buffers is not None:                       # PyTorch BatchNorm's rule, in place
            n_rows = T * B
            batch = {"running_mean": mean.copy_to_host(),
                     "running_var": var.copy_to_host() * (n_rows / (n_rows - 1))}  # unbiased
            for key in ("running_mean", "running_var"):
                buffers[key] *= 1 - momentum
                buffers[key] += momentum * batch[key]
    else:
        mean, var = to_device(buffers["running_mean"]), to_device(buffers["running_var"])
    vhat = empty((T * B, 2 * H), x.dtype)
    inv_std = empty(2 * H, x.dtype)
    batch_normalize[features, columns](v, mean, var, x.dtype.type(EPS), vhat, inv_std)
    hs = empty((T + 1, B, H), x.dtype)
    hs[0].copy_to_device(h0)
    z, n = (empty((T, B, H), x.dtype) for _ in range(2))
    grid, threads = grid_rows(B, H)
    for t in range(T):
        ligru_forward_step[grid, threads](t, vhat.reshape(T, B, 2 * H), p["gamma"], p["beta"],
                                          p["U"], hs, z, n)
    cache = {"x": x, "vhat": vhat, "inv_std": inv_std, "training": training,
             "hs": hs, "z": z, "n": n}
    return copy(hs[1:]), copy(hs[T]), cache


def backward(p, cache, dys, dh_T):
    x, vhat, inv_std, hs, z, n = (cache[k] for k in ("x", "vhat", "inv_std", "hs", "z", "n"))
    T, B, H = n.shape
    I = x.shape[2]
    UT = p["U"].T
    dg = empty((T, B, 2 * H), x.dtype)                # dL/d(BN(x W) + h U): [daz | dan]
    dh = copy(dh_T)
    grid, threads = grid_rows(B, H)
    for t in range(T - 1, -1, -1):
        ligru_backward_step[grid, threads](t, UT, hs, z, n, dys, dh, dg)
    gemm(dg[0], UT, dh, accumulate=True)             # dh0: through h_0 U
    dA = dg.reshape(T * B, 2 * H)                     # the sum BN(x W) + h U passes it to both
    # BN(v) = gamma*vhat + beta, v = x W
    dv = empty((T * B, 2 * H), x.dtype)
    dgamma, dbeta = empty(2 * H, x.dtype), empty(2 * H, x.dtype)
    features, columns = grid_rows(1, 2 * H)
    batch_normalize_backward[features, columns](dA, p["gamma"], vhat, inv_std,
                                                bool(cache["training"]), dv, dgamma, dbeta)
    grads = {
        "W": gemm(x.reshape(T * B, I), dv, ta=True),
        "U": gemm(hs[:T].reshape(T * B, H), dA, ta=True),
        "gamma": dgamma,
        "beta": dbeta,
    }
    return gemm(dv, p["W"], tb=True).reshape(T, B, I), dh, grads


FUNCTIONS = {
    "ligru": (forward, backward),
}
