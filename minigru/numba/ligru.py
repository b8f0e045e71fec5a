"""ligru compiled with Numba: a checked copy of ``minigru/cells/ligru.py``.

The same cache and the same running-statistics buffers as the reference (so either backward can
follow either forward). The batch norm of ``x W`` over all T·B rows is not sequential: it stays
in NumPy in the wrappers, with the reference's own helpers, before the loop (forward) and after
it (backward). The compiled loops hold only ``h U`` and the pointwise math (the forward's takes
BN's affine ``gamma ⊙ vhat + beta`` as it reads ``vhat``); the weight gradients and ``dx`` are
single BLAS products after the reverse loop. The ``step`` (evaluation mode) is one kernel call,
the running-statistics normalisation included.

The per-element math (``ligru_point``, ``ligru_point_backward``) is plain Python over scalars,
for the CPU here and the GPU in the CUDA backend.
"""

import math

import numpy as np

from ..cells._math import normalize, normalize_backward
from ..cells.ligru import EPS, _normalize_running, _update_running, require_batch_statistics
from ._math import ONE, ZERO, column_sums, kernel, matmul, matmul_acc, pointwise, relu, sigmoid


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


def forward(p, x, h0, training=True, *, momentum, buffers):
    U, gamma, beta = p["U"], p["gamma"], p["beta"]
    T, B, I = x.shape
    H = h0.shape[1]
    v = x.reshape(T * B, I) @ p["W"]                  # (T·B, 2H)
    if training:
        require_batch_statistics(x)
        vhat, inv_std = normalize(v, EPS, axis=0)
        inv_std = inv_std[0]
        if buffers is not None:
            _update_running(buffers, v, momentum)
    else:
        vhat, inv_std = _normalize_running(v, buffers)
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    z, n = (np.empty((T, B, H), x.dtype) for _ in range(2))
    forward_loop(vhat.reshape(T, B, 2 * H), gamma, beta, np.ascontiguousarray(U), hs, z, n)
    cache = {"x": x, "vhat": vhat, "inv_std": inv_std, "training": training,
             "hs": hs, "z": z, "n": n}
    return hs[1:].copy(), hs[T].copy(), cache


def backward(p, cache, dys, dh_T):
    W, U, gamma = p["W"], p["U"], p["gamma"]
    x, vhat, inv_std, hs, z, n = (cache[k] for k in ("x", "vhat", "inv_std", "hs", "z", "n"))
    T, B, H = n.shape
    I = x.shape[2]
    dg = np.empty((T, B, 2 * H), x.dtype)             # dL/d(BN(x W) + h U): [daz | dan]
    dh_next = np.array(dh_T, copy=True)
    backward_loop(np.ascontiguousarray(U.T), hs, z, n, np.ascontiguousarray(dys), dh_next, dg)
    dA = dg.reshape(T * B, 2 * H)
    dvhat = dA * gamma
    if cache["training"]:
        dv = normalize_backward(dvhat, vhat, inv_std, axis=0)
    else:
        dv = dvhat * inv_std
    grads = {
        "W": x.reshape(T * B, I).T @ dv,
        "U": hs[:-1].reshape(T * B, H).T @ dA,
        "gamma": column_sums(dA * vhat),
        "beta": column_sums(dA),
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
