"""minGRU on the GPU: a checked copy of ``minigru/cells/mingru.py`` (same cache keys).

There is no recurrent product: unit j of row b at step t depends on the same (b, j) of step t−1
only. So the time loop runs inside one kernel launch, one thread per (row b, unit j) walking
through every step with its state in a register, where the other families launch per step:

- before the loop, ``x @ W + b`` for all steps as one tiled GEMM; ñ is the second half of it
  (a view, as in the reference);
- the forward, one launch: each thread takes ``mingru_point`` (the CPU backend's function,
  compiled for the GPU) at t = 0 .. T−1;
- the backward, one launch: each thread runs the linear recurrence back with
  ``mingru_point_backward``, writing ``dL/d(x W + b)``;
- after it, ``dW``, ``db`` and ``dx`` as single GEMMs and a column sum.

The parameters and every activation stay on the device from the first step to the last.
"""

from numba import cuda

from ..numba.mingru import mingru_point, mingru_point_backward
from ._blas import copy, colsum, empty, gemm, grid_rows
from ._math import device_function

_mingru_point = device_function(mingru_point)
_mingru_point_backward = device_function(mingru_point_backward)


@cuda.jit
def mingru_forward_scan(xw, hs, z):
    """xw (T, B, 2H) = x W + b; every step of unit (b, j)."""
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    T, _, H = z.shape
    if j < H:
        h = hs[0, b, j]
        for t in range(T):
            h, z[t, b, j] = _mingru_point(xw[t, b, j], xw[t, b, H + j], h)
            hs[t + 1, b, j] = h


@cuda.jit
def mingru_backward_scan(hs, z, n, dys, dh_T, dxw, dh0):
    """dxw (T, B, 2H) = dL/d(x W + b): [daz | dan]; every step of unit (b, j), last to first."""
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    T, _, H = z.shape
    if j < H:
        dh_next = dh_T[b, j]
        for t in range(T - 1, -1, -1):                # h_t feeds the output and step t+1
            dxw[t, b, j], dxw[t, b, H + j], dh_next = _mingru_point_backward(
                dys[t, b, j] + dh_next, hs[t, b, j], z[t, b, j], n[t, b, j])
        dh0[b, j] = dh_next


def mingru_forward(p, x, h0, training=True):
    T, B, I = x.shape
    H = h0.shape[1]
    xw = gemm(x.reshape(T * B, I), p["W"], bias=p["b"]).reshape(T, B, 2 * H)
    hs = empty((T + 1, B, H), x.dtype)
    hs[0].copy_to_device(h0)
    z = empty((T, B, H), x.dtype)
    grid, threads = grid_rows(B, H)
    mingru_forward_scan[grid, threads](xw, hs, z)
    cache = {"x": x, "hs": hs, "z": z, "n": xw[:, :, H:]}
    return copy(hs[1:]), copy(hs[T]), cache


def mingru_backward(p, cache, dys, dh_T):
    x, hs, z, n = (cache[k] for k in ("x", "hs", "z", "n"))
    T, B, H = z.shape
    I = x.shape[2]
    dxw = empty((T, B, 2 * H), x.dtype)
    dh0 = empty((B, H), x.dtype)
    grid, threads = grid_rows(B, H)
    mingru_backward_scan[grid, threads](hs, z, n, dys, dh_T, dxw, dh0)
    dXW = dxw.reshape(T * B, 2 * H)
    grads = {"W": gemm(x.reshape(T * B, I), dXW, ta=True), "b": colsum(dXW)}
    return gemm(dXW, p["W"], tb=True).reshape(T, B, I), dh0, grads


FUNCTIONS = {
    "mingru": (mingru_forward, mingru_backward),
}
