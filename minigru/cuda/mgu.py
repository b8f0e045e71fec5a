"""The MGU family on the GPU: a checked copy of ``minigru/cells/mgu.py`` (same cache keys).

mgu, mgu1, mgu2, mgu3 share one forward and one backward, as in the reference; each parameter is
split into its gate part (absent where the variant has none) and its candidate part (``_split``,
``_gated.split`` for device arrays), and the kernels take a flag and a stand-in array for an
absent part, as the CPU backend does. The gate acts on h before the product ``(f ⊙ h) U_n``, so
a step needs the whole row of f first: two launches per step, one thread per (row b, unit j) in
each:

- before the loop, ``x @ W + b`` for all steps as one tiled GEMM (``[x W_f + b_f |] x W_n + b_n``:
  only mgu's gate sees x; mgu1's and mgu3's gate bias is added by the gate kernel);
- forward step t: the gate kernel, ``h_t · U_f[:, j]`` then ``mgu_gate_point`` (the CPU
  backend's function, compiled for the GPU); then the candidate kernel, ``(f ⊙ h_t) · U_n[:, j]``
  then ``mgu_point``. mgu3's gate sees no h: its gate kernel runs once, for every step at once,
  before the loop, and its steps are one launch each;
- backward step t: ``dh`` = the gradient from above + the direct part + ``daf[t+1, b] ·
  U_f^T[:, j]`` (the gate's recurrent product of the step after, fused here), then
  ``mgu_point_backward``; then ``dfh = dan[t, b] · U_n^T[:, j]`` and ``mgu_gate_point_backward``;
- after the loop, ``dW``, ``dU``, ``db`` and ``dx`` as single GEMMs and column sums over
  ``[daf | dan]``: each parameter holds the last columns of mgu's full layout, so its gradient
  is the product over the last columns of ``[daf | dan]``.

The parameters and every activation stay on the device from the first step to the last.
"""

from numba import cuda

from ..numba.mgu import (mgu_gate_point, mgu_gate_point_backward, mgu_point,
                         mgu_point_backward)
from ._blas import colsum, copy, empty, gemm, grid_rows
from ._math import ZERO, device_function

MAX_GRID_Z = 65535   # the most blocks a grid may have along z

_mgu_gate_point = device_function(mgu_gate_point)
_mgu_point = device_function(mgu_point)
_mgu_point_backward = device_function(mgu_point_backward)
_mgu_gate_point_backward = device_function(mgu_gate_point_backward)


def _split(p):
    """``_gated.split`` for device arrays, which take neither ``...`` nor negative indices."""
    H = p["U"].shape[0]
    gW, gU, gb = p["W"].shape[1] - H, p["U"].shape[1] - H, p["b"].shape[0] - H
    return {"W": (p["W"][:, :gW] if gW else None, p["W"][:, gW:]),
            "U": (p["U"][:, :gU] if gU else None, p["U"][:, gU:]),
            "b": (p["b"][:gb] if gb else None, p["b"][gb:])}


@cuda.jit
def mgu_gate_step(t0, xw, sees_x, bf, has_bf, Uf, has_uf, hs, f):
    """f of step t0 + blockIdx.z (a grid T deep runs every step: only when the gate sees no h)."""
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    t = t0 + cuda.blockIdx.z
    H = hs.shape[2]
    if j < H:
        af = xw[t, b, j] if sees_x else ZERO          # x W_f + b_f, from the product before
        if has_bf:
            af += bf[j]
        if has_uf:
            uf = ZERO                                 # (h_t U_f)[b, j]
            for k in range(H):
                uf += hs[t, b, k] * Uf[k, j]
            af += uf
        f[t, b, j] = _mgu_gate_point(af)


@cuda.jit
def mgu_forward_step(t, xw, kx, Un, hs, f, n):
    """kx: where the candidate's columns start in xw (H for mgu, 0 for the others)."""
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = hs.shape[2]
    if j < H:
        un = ZERO                                     # ((f ⊙ h_t) U_n)[b, j]
        for k in range(H):
            un += f[t, b, k] * hs[t, b, k] * Un[k, j]
        hs[t + 1, b, j], n[t, b, j] = _mgu_point(xw[t, b, kx + j], un, hs[t, b, j], f[t, b, j])


@cuda.jit
def mgu_backward_step(t, UfT, has_uf, hs, f, n, dys, dh_direct, da, fh):
    """da (T, B, 2H) = [daf | dan]; daf[t] holds df's update part until mgu_backward_gate."""
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    T, _, H = n.shape
    if j < H:
        dh = dys[t, b, j] + dh_direct[b, j]
        if has_uf and t + 1 < T:                      # the gate of the step after saw h_{t+1}
            for k in range(H):
                dh += da[t + 1, b, k] * UfT[k, j]
        da[t, b, j], da[t, b, H + j], dh_direct[b, j] = _mgu_point_backward(
            dh, hs[t, b, j], f[t, b, j], n[t, b, j])
        fh[t, b, j] = f[t, b, j] * hs[t, b, j]        # for dU_n after the loop


@cuda.jit
def mgu_backward_gate(t, UnT, hs, f, da, dh_direct):
    b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    H = hs.shape[2]
    if j < H:
        dfh = ZERO                                    # (dan_t U_n^T)[b, j]: through (f*h) U_n
        for k in range(H):
            dfh += da[t, b, H + k] * UnT[k, j]
        da[t, b, j], dhf = _mgu_gate_point_backward(da[t, b, j], dfh, hs[t, b, j], f[t, b, j])
        dh_direct[b, j] += dhf


def mgu_forward(p, x, h0, training=True):
    parts = _split(p)
    (Wf, _), (Uf, Un), (bf, bn) = parts["W"], parts["U"], parts["b"]
    T, B, I = x.shape
    H = h0.shape[1]
    G = p["W"].shape[1]                               # 2H for mgu, H for the others
    # [x W_f + b_f |] x W_n + b_n: where the gate sees x (mgu), it has a bias too
    xw = gemm(x.reshape(T * B, I), p["W"], bias=bn if Wf is None else p["b"]).reshape(T, B, G)
    bg = bf if Wf is None else None                   # a gate bias the product did not add
    hs = empty((T + 1, B, H), x.dtype)
    hs[0].copy_to_device(h0)
    f, n = (empty((T, B, H), x.dtype) for _ in range(2))
    gate = (xw, Wf is not None, bn if bg is None else bg, bg is not None,
            Un if Uf is None else Uf, Uf is not None, hs, f)
    grid, threads = grid_rows(B, H)
    if Uf is None:                                    # mgu3: f = σ(b_f), every step at once
        for t0 in range(0, T, MAX_GRID_Z):            # (a grid is at most 65535 deep)
            mgu_gate_step[grid + (min(MAX_GRID_Z, T - t0),), threads](t0, *gate)
    for t in range(T):
        if Uf is not None:
            mgu_gate_step[grid, threads](t, *gate)
        mgu_forward_step[grid, threads](t, xw, G - H, Un, hs, f, n)
    cache = {"x": x, "hs": hs, "f": f, "n": n}
    return copy(hs[1:]), copy(hs[T]), cache


def mgu_backward(p, cache, dys, dh_T):
    Uf = _split(p)["U"][0]
    x, hs, f, n = (cache[k] for k in ("x", "hs", "f", "n"))
    T, B, H = n.shape
    I = x.shape[2]
    UT = p["U"].T                                     # a copy: its columns j are read together
    UfT, UnT = UT[:H], UT[UT.shape[0] - H:]           # UfT stands in for an absent U_f^T
    da = empty((T, B, 2 * H), x.dtype)                # dL/d(pre-activations): [daf | dan]
    fh = empty((T, B, H), x.dtype)
    dh = copy(dh_T)
    grid, threads = grid_rows(B, H)
    for t in range(T - 1, -1, -1):
        mgu_backward_step[grid, threads](t, UfT, Uf is not None, hs, f, n, dys, dh, da, fh)
        mgu_backward_gate[grid, threads](t, UnT, hs, f, da, dh)
    if Uf is not None:
        gemm(da[0, :, :H], UfT, dh, accumulate=True)  # dh0: the gate saw h_0 through U_f
    dA = da.reshape(T * B, 2 * H)
    dAW = dA[:, 2 * H - p["W"].shape[1]:]             # the columns W has: [daf |] dan
    dU = empty(p["U"].shape, x.dtype)
    if Uf is not None:
        gemm(hs[:T].reshape(T * B, H), dA[:, :H], dU[:, :H], ta=True)
    gemm(fh.reshape(T * B, H), dA[:, H:], dU[:, dU.shape[1] - H:], ta=True)
    grads = {
        "W": gemm(x.reshape(T * B, I), dAW, ta=True),
        "U": dU,
        "b": colsum(dA[:, 2 * H - p["b"].shape[0]:]),
    }
    return gemm(dAW, p["W"], tb=True).reshape(T, B, I), dh, grads


FUNCTIONS = {
    "mgu": (mgu_forward, mgu_backward),
    "mgu1": (mgu_forward, mgu_backward),
    "mgu2": (mgu_forward, mgu_backward),
    "mgu3": (mgu_forward, mgu_backward),
}
