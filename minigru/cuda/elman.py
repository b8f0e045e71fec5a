"""rnn on the GPU: a checked copy of ``minigru/cells/elman.py`` (same cache keys).

The loop structure of the other backends, per time step one kernel launch that fuses the
recurrent product with the pointwise math:

- before the loop, ``x @ W + b`` for all steps as one tiled GEMM;
- forward step t, one thread per (row b, unit j): the dot product of ``h_t[b]`` with ``U``'s
  column j, then ``rnn_point`` (the CPU backend's function, compiled for the GPU);
- backward step t, one thread per (b, j): ``dh`` = the gradient from above +
  ``da[t+1, b] · UT[:, j]`` (the recurrent product of the step after, fused here; ``dh_T`` at
  the last step), then ``rnn_point_backward`` from the saved output ``h_{t+1}``;
- after the loop, ``dh0``, ``dW``, ``dU``, ``db`` and ``dx`` as single GEMMs and column sums.

Where it fits, the loop is instead one *persistent* launch each way (``_persistent_kernels``):
the blocks keep their slices of ``U`` in shared memory for all T steps and wait for each other
at a grid-wide barrier between steps (``_blas.persistent_launch``; docs/cuda.md).

The parameters and every activation stay on the device from the first step to the last.
"""

from functools import lru_cache

import numpy as np
from numba import cuda, from_dtype

from ..numba.elman import rnn_point, rnn_point_backward
from ._blas import colsum, copy, empty, gemm, load_columns, load_rows, time_loop
from ._math import ZERO, device_function

_rnn_point = device_function(rnn_point)
_rnn_point_backward = device_function(rnn_point_backward)


@cuda.jit
def rnn_forward_step(t, xw, U, hs):
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = hs.shape[2]
    if j < H:
        u = ZERO                                      # (h_t U)[b, j]
        for k in range(H):
            u += hs[t, b, k] * U[k, j]
        hs[t + 1, b, j] = _rnn_point(xw[t, b, j] + u)


@cuda.jit
def rnn_backward_step(t, UT, hs, dys, dh_T, da):
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    T, _, H = da.shape
    if j < H:
        dh = dys[t, b, j]                             # h_{t+1} feeds the output and step t+1
        if t + 1 < T:                                 # through h_{t+1} U, the step after
            for k in range(H):
                dh += da[t + 1, b, k] * UT[k, j]
        else:
            dh += dh_T[b, j]
        da[t, b, j] = _rnn_point_backward(dh, hs[t + 1, b, j])



# ------------------------------------------------ persistent: one launch for the whole loop
# (see ``_blas.persistent_launch``): the same per-element math, U's slice in shared memory.


@lru_cache(maxsize=None)
def _persistent_kernels(dtype):
    nbtype = from_dtype(np.dtype(dtype))

    @cuda.jit
    def rnn_forward_persistent(units, xw, U, hs):
        sU = cuda.shared.array(0, nbtype)           # (H, units): this block's columns of U
        load_columns(U, sU, units, 1)
        T, B, H = xw.shape
        j0 = cuda.blockIdx.x * units
        grid = cuda.cg.this_grid()
        for t in range(T):
            for q in range(cuda.threadIdx.x, B * units, cuda.blockDim.x):
                b, jj = q // units, q % units
                j = j0 + jj
                if j < H:
                    u = ZERO                          # (h_t U)[b, j]
                    for k in range(H):
                        u += hs[t, b, k] * sU[k * units + jj]
                    hs[t + 1, b, j] = _rnn_point(xw[t, b, j] + u)
            grid.sync()                               # h_{t+1} complete before step t+1

    @cuda.jit
    def rnn_backward_persistent(units, U, hs, dys, dh_T, da):
        sU = cuda.shared.array(0, nbtype)           # (units, H): this block's rows of U
        load_rows(U, sU, units)
        T, B, H = da.shape
        j0 = cuda.blockIdx.x * units
        grid = cuda.cg.this_grid()
        for t in range(T - 1, -1, -1):
            for q in range(cuda.threadIdx.x, B * units, cuda.blockDim.x):
                b, jj = q // units, q % units
                j = j0 + jj
                if j < H:
                    dh = dys[t, b, j]
                    if t + 1 < T:                     # through h_{t+1} U, the step after
                        for k in range(H):
                            dh += da[t + 1, b, k] * sU[jj * H + k]
                    else:
                        dh += dh_T[b, j]
                    da[t, b, j] = _rnn_point_backward(dh, hs[t + 1, b, j])
            grid.sync()                               # da[t] complete before step t-1

    return rnn_forward_persistent, rnn_backward_persistent

def forward(p, x, h0, training=True):
    T, B, I = x.shape
    H = h0.shape[1]
    xw = gemm(x.reshape(T * B, I), p["W"], bias=p["b"]).reshape(T, B, H)
    hs = empty((T + 1, B, H), x.dtype)
    hs[0].copy_to_device(h0)
    args = (xw, p["U"], hs)
    time_loop(_persistent_kernels(x.dtype)[0], args, rnn_forward_step, lambda: args, range(T),
              B, H, 1)
    return copy(hs[1:]), copy(hs[T]), {"x": x, "hs": hs}


def backward(p, cache, dys, dh_T):
    x, hs = cache["x"], cache["hs"]
    T, B, H = dys.shape
    I = x.shape[2]
    da = empty((T, B, H), x.dtype)                    # dL/d(x W + h U + b)
    args = (hs, dys, dh_T, da)
    # the per-step kernels read a copy of Uᵀ, whose columns j are read together
    time_loop(_persistent_kernels(x.dtype)[1], (p["U"], *args), rnn_backward_step,
              lambda: (p["U"].T, *args), range(T - 1, -1, -1), B, H, 1)
    dA = da.reshape(T * B, H)
    grads = {"W": gemm(x.reshape(T * B, I), dA, ta=True),
             "U": gemm(hs[:T].reshape(T * B, H), dA, ta=True),
             "b": colsum(dA)}
    dh0 = gemm(da[0], p["U"], tb=True)                # through h_0 U
    return gemm(dA, p["W"], tb=True).reshape(T, B, I), dh0, grads


FUNCTIONS = {"rnn": (forward, backward)}
