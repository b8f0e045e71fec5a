"""lstm on the GPU: a checked copy of ``minigru/cells/lstm.py`` (same cache keys).

The loop structure of the other backends, per time step one kernel launch that fuses the
recurrent product with the pointwise math:

- before the loop, ``x @ W + b`` for all steps as one tiled GEMM;
- forward step t, one thread per (row b, unit j): the four dot products of ``h_t[b]`` with
  ``U``'s columns j, H+j, 2H+j, 3H+j, then ``lstm_point`` (the CPU backend's function, compiled
  for the GPU), writing the gates and ``tanh(c')`` the backward needs;
- backward step t, one thread per (b, j): ``dh`` = the gradient from above +
  ``da[t+1, b] · UT[:, j]`` (the recurrent product of the step after, fused here; ``dh_T`` at
  the last step), then ``lstm_point_backward``, which carries ``dc`` back in place (each thread
  reads and writes only its own unit);
- after the loop, ``dh0``, ``dW``, ``dU``, ``db`` and ``dx`` as single GEMMs and column sums.

Where it fits, the loop is instead one *persistent* launch each way (``_persistent_kernels``):
the blocks keep their slices of ``U`` in shared memory for all T steps and wait for each other
at a grid-wide barrier between steps (``_blas.persistent_launch``; docs/cuda.md).

The parameters and every activation stay on the device from the first step to the last.
"""

from functools import lru_cache

import numpy as np
from numba import cuda, from_dtype

from ..numba.lstm import lstm_point, lstm_point_backward
from ._blas import colsum, copy, empty, gemm, load_columns, load_rows, time_loop
from ._math import ZERO, device_function

_lstm_point = device_function(lstm_point)
_lstm_point_backward = device_function(lstm_point_backward)


@cuda.jit
def lstm_forward_step(t, xw, U, hs, cs, gates, tc):
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = hs.shape[2]
    if j < H:
        ui = uf = ug = uo = ZERO                      # (h_t U)[b, j], [b, H+j], [b, 2H+j], ...
        for k in range(H):
            h = hs[t, b, k]
            ui += h * U[k, j]
            uf += h * U[k, H + j]
            ug += h * U[k, 2 * H + j]
            uo += h * U[k, 3 * H + j]
        (hs[t + 1, b, j], cs[t + 1, b, j], gates[t, b, j], gates[t, b, H + j],
         gates[t, b, 2 * H + j], gates[t, b, 3 * H + j], tc[t, b, j]) = _lstm_point(
            xw[t, b, j] + ui, xw[t, b, H + j] + uf, xw[t, b, 2 * H + j] + ug,
            xw[t, b, 3 * H + j] + uo, cs[t, b, j])


@cuda.jit
def lstm_backward_step(t, UT, cs, gates, tc, dys, dh_T, dc_next, da):
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    T, _, H = tc.shape
    if j < H:
        dh = dys[t, b, j]
        if t + 1 < T:                                 # through h_{t+1} U, the step after
            for k in range(4 * H):
                dh += da[t + 1, b, k] * UT[k, j]
        else:
            dh += dh_T[b, j]
        (da[t, b, j], da[t, b, H + j], da[t, b, 2 * H + j], da[t, b, 3 * H + j],
         dc_next[b, j]) = _lstm_point_backward(
            dh, dc_next[b, j], cs[t, b, j], gates[t, b, j], gates[t, b, H + j],
            gates[t, b, 2 * H + j], gates[t, b, 3 * H + j], tc[t, b, j])



# ------------------------------------------------ persistent: one launch for the whole loop
# (see ``_blas.persistent_launch``): the same per-element math, U's slice in shared memory.


@lru_cache(maxsize=None)
def _persistent_kernels(dtype):
    nbtype = from_dtype(np.dtype(dtype))

    @cuda.jit
    def lstm_forward_persistent(units, xw, U, hs, cs, gates, tc):
        sU = cuda.shared.array(0, nbtype)           # (H, 4·units): this block's columns of U
        load_columns(U, sU, units, 4)
        T, B, H = tc.shape
        j0 = cuda.blockIdx.x * units
        grid = cuda.cg.this_grid()
        for t in range(T):
            for q in range(cuda.threadIdx.x, B * units, cuda.blockDim.x):
                b, jj = q // units, q % units
                j = j0 + jj
                if j < H:
                    ui = uf = ug = uo = ZERO
                    for k in range(H):
                        h = hs[t, b, k]
                        row = k * 4 * units
                        ui += h * sU[row + jj]
                        uf += h * sU[row + units + jj]
                        ug += h * sU[row + 2 * units + jj]
                        uo += h * sU[row + 3 * units + jj]
                    (hs[t + 1, b, j], cs[t + 1, b, j], gates[t, b, j], gates[t, b, H + j],
                     gates[t, b, 2 * H + j], gates[t, b, 3 * H + j], tc[t, b, j]) = _lstm_point(
                        xw[t, b, j] + ui, xw[t, b, H + j] + uf, xw[t, b, 2 * H + j] + ug,
                        xw[t, b, 3 * H + j] + uo, cs[t, b, j])
            grid.sync()                               # h_{t+1} complete before step t+1

    @cuda.jit
    def lstm_backward_persistent(units, U, cs, gates, tc, dys, dh_T, dc_next, da):
        sU = cuda.shared.array(0, nbtype)           # (units, 4H): this block's rows of U
        load_rows(U, sU, units)
        T, B, H = tc.shape
        j0 = cuda.blockIdx.x * units
        grid = cuda.cg.this_grid()
        for t in range(T - 1, -1, -1):
            for q in range(cuda.threadIdx.x, B * units, cuda.blockDim.x):
                b, jj = q // units, q % units
                j = j0 + jj
                if j < H:
                    dh = dys[t, b, j]
                    if t + 1 < T:                     # through h_{t+1} U, the step after
                        for k in range(4 * H):
                            dh += da[t + 1, b, k] * sU[jj * 4 * H + k]
                    else:
                        dh += dh_T[b, j]
                    (da[t, b, j], da[t, b, H + j], da[t, b, 2 * H + j], da[t, b, 3 * H + j],
                     dc_next[b, j]) = _lstm_point_backward(
                        dh, dc_next[b, j], cs[t, b, j], gates[t, b, j], gates[t, b, H + j],
                        gates[t, b, 2 * H + j], gates[t, b, 3 * H + j], tc[t, b, j])
            grid.sync()                               # da[t] complete before step t-1

    return lstm_forward_persistent, lstm_backward_persistent

def forward(p, x, state0, training=True):
    h0, c0 = state0
    T, B, I = x.shape
    H = h0.shape[1]
    xw = gemm(x.reshape(T * B, I), p["W"], bias=p["b"]).reshape(T, B, 4 * H)
    hs, cs = empty((T + 1, B, H), x.dtype), empty((T + 1, B, H), x.dtype)
    hs[0].copy_to_device(h0)
    cs[0].copy_to_device(c0)
    gates = empty((T, B, 4 * H), x.dtype)             # [i | f | g | o] after their nonlinearities
    tc = empty((T, B, H), x.dtype)                    # tanh(c')
    args = (xw, p["U"], hs, cs, gates, tc)
    time_loop(_persistent_kernels(x.dtype)[0], args, lstm_forward_step, lambda: args, range(T),
              B, H, 4)
    cache = {"x": x, "hs": hs, "cs": cs, "gates": gates, "tc": tc}
    return copy(hs[1:]), (copy(hs[T]), copy(cs[T])), cache


def backward(p, cache, dys, dstate):
    x, hs, cs, gates, tc = (cache[k] for k in ("x", "hs", "cs", "gates", "tc"))
    T, B, H = tc.shape
    I = x.shape[2]
    da = empty((T, B, 4 * H), x.dtype)                # dL/d(x W + h U + b): [dai|daf|dag|dao]
    dc_next = copy(dstate[1])
    args = (cs, gates, tc, dys, dstate[0], dc_next, da)
    # the per-step kernels read a copy of Uᵀ, whose columns j are read together
    time_loop(_persistent_kernels(x.dtype)[1], (p["U"], *args), lstm_backward_step,
              lambda: (p["U"].T, *args), range(T - 1, -1, -1), B, H, 4)
    dA = da.reshape(T * B, 4 * H)
    grads = {"W": gemm(x.reshape(T * B, I), dA, ta=True),
             "U": gemm(hs[:T].reshape(T * B, H), dA, ta=True),
             "b": colsum(dA)}
    dh0 = gemm(da[0], p["U"], tb=True)                # through h_0 U
    return gemm(dA, p["W"], tb=True).reshape(T, B, I), (dh0, dc_next), grads


FUNCTIONS = {"lstm": (forward, backward)}
