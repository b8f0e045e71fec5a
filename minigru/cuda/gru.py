"""The GRU family on the GPU: a checked copy of ``minigru/cells/gru.py`` (its cache keys, and
``rh`` for the reset-before variants).

The loop structure of the other backends, per time step one kernel launch that fuses the
recurrent product with the pointwise math:

- before the loop, ``x @ W + b`` for all steps as one tiled GEMM;
- forward step t, one thread per (row b, unit j): the three dot products of ``h_t[b]`` with
  ``U``'s columns j, H+j, 2H+j, then ``gru_point`` (the CPU backend's function, compiled for the
  GPU), writing what the backward needs;
- backward step t, one thread per (b, j): ``dh`` = the gradient from above + the direct part +
  ``dhu[t+1, b] · UT[:, j]`` (the recurrent product of the step after, fused here), then
  ``gru_point_backward``;
- after the loop, ``dW``, ``dU``, ``db``, ``dc`` and ``dx`` as single GEMMs and column sums.

Where it fits, the gru's loop is instead one *persistent* launch each way: the blocks keep their
slices of ``U`` in shared memory for all T steps and wait for each other at a grid-wide barrier
between steps (``_persistent_kernels``, ``_blas.persistent_launch``; docs/cuda.md has the
design and its expected cost).

gru_v3, gru1..gru3 (reset before the product) need the whole row ``r_t ⊙ h_t`` before
``(r_t ⊙ h_t) U_n``, so each step is two launches, with the same loop structure otherwise:

- before the loop, ``x @ W`` for all steps as one GEMM (``[x W_g |] x W_n``);
- forward step t: (1) the gates, ``r``, ``z`` and ``r ⊙ h`` (the dot products with ``U_g``'s
  columns where the variant has them, ``v3_gate_point``); (2) the dot product of ``(r ⊙ h)[b]``
  with ``U_n``'s column j, then ``v3_point``;
- backward step t, with ``da`` (T, B, 3H) = ``[dar | daz | dan]``: (1) ``dh`` = the gradient
  from above + the direct part + ``da[t+1, b, :2H] · U_gT[:, j]`` (the gates' recurrent product
  of the step after, fused here), then ``v3_point_backward`` and ``v3_z_backward``;
  (2) ``drh = da[t, b, 2H:] · U_nT[:, j]``, then ``v3_r_backward``;
- after the loop, the gradients as GEMMs and column sums over ``da``: the columns of W, U and b
  are the last blocks of ``[r | z | n]`` (``cells/_gated.py``), so each gradient but ``dU``
  (``h`` for the gates, ``r ⊙ h`` for the candidate) is one product. The cache keeps ``rh``
  (T, B, H) = ``r ⊙ h_t`` besides the reference's keys: the forward writes it between its two
  launches, and ``dU_n`` needs it.

Each variant's parts are found by their widths, as in ``v3_step`` on the CPU, rather than with
``_gated.split``: device arrays take no ``...`` index outside the simulator.

The parameters and every activation stay on the device from the first step to the last.
"""

from functools import lru_cache

import numpy as np
from numba import cuda, from_dtype

from ..numba.gru import (gru_point, gru_point_backward, v3_gate_point, v3_point,
                         v3_point_backward, v3_r_backward, v3_z_backward)
from ._blas import (colsum, copy, empty, gemm, grid_rows, load_columns, load_rows,
                    time_loop)
from ._math import ZERO, device_function

# ============================================================================ gru (reset after)

_gru_point = device_function(gru_point)
_gru_point_backward = device_function(gru_point_backward)


@cuda.jit
def gru_forward_step(t, xw, U, c, hs, r, z, n, hn):
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = hs.shape[2]
    if j < H:
        ur = uz = un = ZERO                           # (h_t U)[b, j], [b, H+j], [b, 2H+j]
        for k in range(H):
            h = hs[t, b, k]
            ur += h * U[k, j]
            uz += h * U[k, H + j]
            un += h * U[k, 2 * H + j]
        hs[t + 1, b, j], r[t, b, j], z[t, b, j], n[t, b, j], hn[t, b, j] = _gru_point(
            xw[t, b, j], xw[t, b, H + j], xw[t, b, 2 * H + j], ur, uz, un, c[j], hs[t, b, j])


@cuda.jit
def gru_backward_step(t, UT, hs, r, z, n, hn, dys, dh_direct, dxw, dhu):
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    T, _, H = r.shape
    if j < H:
        dh = dys[t, b, j] + dh_direct[b, j]
        if t + 1 < T:                                 # through h_{t+1} U, the step after
            for k in range(3 * H):
                dh += dhu[t + 1, b, k] * UT[k, j]
        dar, daz, dan, dhn, dh_direct[b, j] = _gru_point_backward(
            dh, hs[t, b, j], r[t, b, j], z[t, b, j], n[t, b, j], hn[t, b, j])
        dxw[t, b, j], dxw[t, b, H + j], dxw[t, b, 2 * H + j] = dar, daz, dan
        dhu[t, b, j], dhu[t, b, H + j], dhu[t, b, 2 * H + j] = dar, daz, dhn


# ------------------------------------------------ gru, persistent: one launch for the whole loop
# (see ``_blas.persistent_launch``): the same per-element math, U's slice in shared memory.


@lru_cache(maxsize=None)
def _persistent_kernels(dtype):
    nbtype = from_dtype(np.dtype(dtype))

    @cuda.jit
    def gru_forward_persistent(units, xw, U, c, hs, r, z, n, hn):
        sU = cuda.shared.array(0, nbtype)           # (H, 3·units): this block's columns of U
        load_columns(U, sU, units, 3)
        T, B, H = r.shape
        j0 = cuda.blockIdx.x * units
        grid = cuda.cg.this_grid()
        for t in range(T):
            for q in range(cuda.threadIdx.x, B * units, cuda.blockDim.x):
                b, jj = q // units, q % units
                j = j0 + jj
                if j < H:
                    ur = uz = un = ZERO
                    for k in range(H):
                        h = hs[t, b, k]
                        row = k * 3 * units
                        ur += h * sU[row + jj]
                        uz += h * sU[row + units + jj]
                        un += h * sU[row + 2 * units + jj]
                    hs[t + 1, b, j], r[t, b, j], z[t, b, j], n[t, b, j], hn[t, b, j] = \
                        _gru_point(xw[t, b, j], xw[t, b, H + j], xw[t, b, 2 * H + j],
                                   ur, uz, un, c[j], hs[t, b, j])
            grid.sync()                               # h_{t+1} complete before step t+1

    @cuda.jit
    def gru_backward_persistent(units, U, hs, r, z, n, hn, dys, dh_direct, dxw, dhu):
        sU = cuda.shared.array(0, nbtype)           # (units, 3H): this block's rows of U
        load_rows(U, sU, units)
        T, B, H = r.shape
        j0 = cuda.blockIdx.x * units
        grid = cuda.cg.this_grid()
        for t in range(T - 1, -1, -1):
            for q in range(cuda.threadIdx.x, B * units, cuda.blockDim.x):
                b, jj = q // units, q % units
                j = j0 + jj
                if j < H:
                    dh = dys[t, b, j] + dh_direct[b, j]
                    if t + 1 < T:                     # through h_{t+1} U, the step after
                        for k in range(3 * H):
                            dh += dhu[t + 1, b, k] * sU[jj * 3 * H + k]
                    dar, daz, dan, dhn, dh_direct[b, j] = _gru_point_backward(
                        dh, hs[t, b, j], r[t, b, j], z[t, b, j], n[t, b, j], hn[t, b, j])
                    dxw[t, b, j], dxw[t, b, H + j], dxw[t, b, 2 * H + j] = dar, daz, dan
                    dhu[t, b, j], dhu[t, b, H + j], dhu[t, b, 2 * H + j] = dar, daz, dhn
            grid.sync()                               # dhu[t] complete before step t-1

    return gru_forward_persistent, gru_backward_persistent


def gru_forward(p, x, h0, training=True):
    T, B, I = x.shape
    H = h0.shape[1]
    xw = gemm(x.reshape(T * B, I), p["W"], bias=p["b"]).reshape(T, B, 3 * H)
    hs = empty((T + 1, B, H), x.dtype)
    hs[0].copy_to_device(h0)
    r, z, n, hn = (empty((T, B, H), x.dtype) for _ in range(4))
    args = (xw, p["U"], p["c"], hs, r, z, n, hn)
    time_loop(_persistent_kernels(x.dtype)[0], args, gru_forward_step, lambda: args, range(T),
              B, H, 3)
    cache = {"x": x, "hs": hs, "r": r, "z": z, "n": n, "hn": hn}
    return copy(hs[1:]), copy(hs[T]), cache


def gru_backward(p, cache, dys, dh_T):
    x, hs, r, z, n, hn = (cache[k] for k in ("x", "hs", "r", "z", "n", "hn"))
    T, B, H = n.shape
    I = x.shape[2]
    dxw = empty((T, B, 3 * H), x.dtype)
    dhu = empty((T, B, 3 * H), x.dtype)
    dh = copy(dh_T)
    args = (hs, r, z, n, hn, dys, dh, dxw, dhu)
    # the per-step kernels read a copy of Uᵀ, whose columns j are read together
    time_loop(_persistent_kernels(x.dtype)[1], (p["U"], *args), gru_backward_step,
              lambda: (p["U"].T, *args), range(T - 1, -1, -1), B, H, 3)
    gemm(dhu[0], p["U"], dh, accumulate=True, tb=True)   # dh0: through h_0 U
    dXW, dHU = dxw.reshape(T * B, 3 * H), dhu.reshape(T * B, 3 * H)
    grads = {
        "W": gemm(x.reshape(T * B, I), dXW, ta=True),
        "U": gemm(hs[:T].reshape(T * B, H), dHU, ta=True),
        "b": colsum(dXW),
        "c": colsum(dHU[:, 2 * H:]),
    }
    return gemm(dXW, p["W"], tb=True).reshape(T, B, I), dh, grads


# ============================================================ gru_v3, gru1..gru3 (reset before)

_v3_gate_point = device_function(v3_gate_point)
_v3_point = device_function(v3_point)
_v3_point_backward = device_function(v3_point_backward)
_v3_z_backward = device_function(v3_z_backward)
_v3_r_backward = device_function(v3_r_backward)


@cuda.jit
def v3_forward_gates(t, xw, U, bias, sees_x, sees_h, has_bias, hs, r, z, rh):
    """r, z and r ⊙ h of step t. The gates' blocks come first in xw, U and bias, where the
    variant has them (the flags say which)."""
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = hs.shape[2]
    if j < H:
        ar = az = ZERO                                # x W_g + b_g
        if sees_x:
            ar, az = xw[t, b, j], xw[t, b, H + j]
        if has_bias:
            ar, az = ar + bias[j], az + bias[H + j]
        ur = uz = ZERO                                # (h_t U_g)[b, j], [b, H+j]
        if sees_h:
            for k in range(H):
                h = hs[t, b, k]
                ur += h * U[k, j]
                uz += h * U[k, H + j]
        r[t, b, j], z[t, b, j] = _v3_gate_point(ar + ur, az + uz)
        rh[t, b, j] = r[t, b, j] * hs[t, b, j]       # reset before the product


@cuda.jit
def v3_forward_update(t, xn, Un, bn, hs, z, rh, n):
    """n and h_{t+1} of step t, once the whole row r ⊙ h_t is known."""
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = hs.shape[2]
    if j < H:
        un = ZERO                                     # ((r ⊙ h_t) U_n)[b, j]
        for k in range(H):
            un += rh[t, b, k] * Un[k, j]
        hs[t + 1, b, j], n[t, b, j] = _v3_point(xn[t, b, j] + bn[j], un, hs[t, b, j],
                                                z[t, b, j])


@cuda.jit
def v3_backward_update(t, UT, sees_h, hs, z, n, dys, dh_direct, da):
    """daz, dan of step t and the direct part of dh; da (T, B, 3H) = [dar | daz | dan]."""
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    T, _, H = z.shape
    if j < H:
        dh = dys[t, b, j] + dh_direct[b, j]
        if sees_h and t + 1 < T:                      # the gates of the step after saw h U_g
            for k in range(2 * H):
                dh += da[t + 1, b, k] * UT[k, j]
        dz, da[t, b, 2 * H + j], dh_direct[b, j] = _v3_point_backward(
            dh, hs[t, b, j], z[t, b, j], n[t, b, j])
        da[t, b, H + j] = _v3_z_backward(dz, z[t, b, j])


@cuda.jit
def v3_backward_reset(t, UnT, hs, r, dh_direct, da):
    """dar of step t and the part of dh through r ⊙ h, once the whole row dan_t is known."""
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = r.shape[2]
    if j < H:
        drh = ZERO                                    # (dan_t U_n^T)[b, j]: through (r*h) U_n
        for k in range(H):
            drh += da[t, b, 2 * H + k] * UnT[k, j]
        da[t, b, j], dh_r = _v3_r_backward(drh, hs[t, b, j], r[t, b, j])
        dh_direct[b, j] += dh_r


def v3_forward(p, x, h0, training=True):
    W, U, bias = p["W"], p["U"], p["b"]
    T, B, I = x.shape
    H = h0.shape[1]
    Wc, Uc, bc = W.shape[1], U.shape[1], bias.shape[0]    # 3H where the gates see it, else H
    xw = gemm(x.reshape(T * B, I), W).reshape(T, B, Wc)   # [x W_g |] x W_n
    hs = empty((T + 1, B, H), x.dtype)
    hs[0].copy_to_device(h0)
    r, z, n, rh = (empty((T, B, H), x.dtype) for _ in range(4))
    xn, Un, bn = xw[:, :, Wc - H:], U[:, Uc - H:], bias[bc - H:]   # the candidate's blocks
    grid, threads = grid_rows(B, H)
    for t in range(T):
        v3_forward_gates[grid, threads](t, xw, U, bias, Wc > H, Uc > H, bc > H, hs, r, z, rh)
        v3_forward_update[grid, threads](t, xn, Un, bn, hs, z, rh, n)
    cache = {"x": x, "hs": hs, "r": r, "z": z, "n": n, "rh": rh}
    return copy(hs[1:]), copy(hs[T]), cache


def v3_backward(p, cache, dys, dh_T):
    W, U = p["W"], p["U"]
    x, hs, r, z, n, rh = (cache[k] for k in ("x", "hs", "r", "z", "n", "rh"))
    T, B, H = n.shape
    I = x.shape[2]
    Wc, Uc, bc = W.shape[1], U.shape[1], p["b"].shape[0]
    UT = U.T                                          # the gates' rows first, then U_n^T
    da = empty((T, B, 3 * H), x.dtype)                # dL/d(pre-activations): [dar | daz | dan]
    dh = copy(dh_T)
    grid, threads = grid_rows(B, H)
    for t in range(T - 1, -1, -1):
        v3_backward_update[grid, threads](t, UT, Uc > H, hs, z, n, dys, dh, da)
        v3_backward_reset[grid, threads](t, UT[Uc - H:], hs, r, dh, da)
    dA = da.reshape(T * B, 3 * H)
    dU = empty(U.shape, x.dtype)
    if Uc > H:
        gemm(da[0, :, :2 * H], UT[:2 * H], dh, accumulate=True)   # dh0: through h_0 U_g
        gemm(hs[:T].reshape(T * B, H), dA[:, :2 * H], dU[:, :2 * H], ta=True)
    gemm(rh.reshape(T * B, H), dA[:, 2 * H:], dU[:, Uc - H:], ta=True)
    dXW = dA[:, 3 * H - Wc:]                          # W's columns are the last Wc of [r|z|n]
    grads = {
        "W": gemm(x.reshape(T * B, I), dXW, ta=True),
        "U": dU,
        "b": colsum(dA[:, 3 * H - bc:]),
    }
    return gemm(dXW, W, tb=True).reshape(T, B, I), dh, grads


FUNCTIONS = {
    "gru": (gru_forward, gru_backward),
    "gru_v3": (v3_forward, v3_backward),
    "gru1": (v3_forward, v3_backward),
    "gru2": (v3_forward, v3_backward),
    "gru3": (v3_forward, v3_backward),
}
