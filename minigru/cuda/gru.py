"""The GRU family on the GPU: a checked copy of ``minigru/cells/gru.py`` (same cache keys).

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

The parameters and every activation stay on the device from the first step to the last.
"""

from numba import cuda

from ..cells import _gated
from ..numba.gru import (gru_point, gru_point_backward, v3_gate_point, v3_point,
                         v3_point_backward)
from ._blas import colsum, copy, empty, gemm, grid_rows, zeros
from ._math import ONE, ZERO, device_function

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


def gru_forward(p, x, h0, training=True):
    T, B, I = x.shape
    H = h0.shape[1]
    xw = gemm(x.reshape(T * B, I), p["W"], bias=p["b"]).reshape(T, B, 3 * H)
    hs = empty((T + 1, B, H), x.dtype)
    hs[0].copy_to_device(h0)
    r, z, n, hn = (empty((T, B, H), x.dtype) for _ in range(4))
    grid, threads = grid_rows(B, H)
    for t in range(T):
        gru_forward_step[grid, threads](t, xw, p["U"], p["c"], hs, r, z, n, hn)
    cache = {"x": x, "hs": hs, "r": r, "z": z, "n": n, "hn": hn}
    return copy(hs[1:]), copy(hs[T]), cache


def gru_backward(p, cache, dys, dh_T):
    x, hs, r, z, n, hn = (cache[k] for k in ("x", "hs", "r", "z", "n", "hn"))
    T, B, H = n.shape
    I = x.shape[2]
    UT = p["U"].T
    dxw = empty((T, B, 3 * H), x.dtype)
    dhu = empty((T, B, 3 * H), x.dtype)
    dh = copy(dh_T)
    grid, threads = grid_rows(B, H)
    for t in range(T - 1, -1, -1):
        gru_backward_step[grid, threads](t, UT, hs, r, z, n, hn, dys, dh, dxw, dhu)
    gemm(dhu[0], UT, dh, accumulate=True)            # dh0: through h_0 U
    dXW, dHU = dxw.reshape(T * B, 3 * H), dhu.reshape(T * B, 3 * H)
    grads = {
        "W": gemm(x.reshape(T * B, I).T, dXW),
        "U": gemm(hs[:T].reshape(T * B, H).T, dHU),
        "b": colsum(dXW),
        "c": colsum(dHU[:, 2 * H:]),
    }
    return gemm(dXW, p["W"].T).reshape(T, B, I), dh, grads


FUNCTIONS = {
    "gru": (gru_forward, gru_backward),
}
