"""scan="parallel" on the GPU: the linear recurrence ``h_t = a_t ⊙ h_{t−1} + b_t`` of a
``linear`` Gated cell (mingru, minlstm) as a block-level scan over time.

One block per unit column (b, j); its ``SCAN_THREADS`` threads cut time into chunks:

1. each thread computes its chunk's coefficients (the cell's ``coefficients``, through its
   glue) and composes the chunk's steps into one affine map ``h ↦ A h + C``;
2. the block scans those maps in shared memory (Hillis & Steele: log2(threads) rounds, each
   thread composing its map with the one ``offset`` threads before it), so that thread k holds
   the composition of chunks 0 .. k;
3. each thread applies the composition of the chunks before its own to h_0, and runs its chunk
   from that state, storing h.

The maps compose as ``(A2, C2) ∘ (A1, C1) = (A2 A1, A2 C1 + C2)``: associative, which is all a
scan needs; ``A`` is a product of numbers in (0, 1), which can only underflow, towards a part of
``h`` that is then negligible. The backward is the same scan in reverse order of time,
``g_t = dy_t + a_{t+1} g_{t+1}``, then the cell's ``coefficients_backward`` unit by unit. The
CPU's form of the same idea is ``numba/_scan.py``; the log-space reference ``cells/_scan.py``.
"""

from functools import lru_cache

import numba
import numpy as np
from numba import cuda

from ._math import ONE, ZERO

SCAN_THREADS = 32           # chunks of time per unit column: one warp


def glue_source(cell):
    """The unit bodies of the scan: the coefficients of one unit at one step, and their
    backward, from the cell's ``linear`` point functions."""
    bias = {g: k for k, g in enumerate(cell.bias_blocks)} if cell.x_norm is None else {}
    a = ",\n        ".join(f"xw[t, b, {g} * H + j]" + (f" + bias[{bias[n]} * H + j]"
                                                    if n in bias else "")
                           for g, n in enumerate(cell.x_blocks))
    d = ", ".join(f"dxw[t, b, {g} * H + j]" for g in range(cell.Gx))
    return ("def coefficients_unit(t, b, j, xw, bias, ca, cb):\n"
            "    H = ca.shape[2]\n"
            f"    ca[t, b, j], cb[t, b, j] = coefficients(\n        {a})\n\n\n"
            "def coefficients_backward_unit(t, b, j, da, db, xw, bias, ca, cb, dxw):\n"
            "    H = ca.shape[2]\n"
            f"    {d} = coefficients_backward(\n        da, db,\n        {a},\n"
            "        ca[t, b, j], cb[t, b, j])\n")


@cuda.jit(device=True)
def _block_scan(sA, sC, A, C, k, n):
    """Thread k's map composed with those of threads 0 .. k−1 (inclusive scan over the block's
    maps in shared memory); returns the composition (A, C)."""
    sA[k], sC[k] = A, C
    cuda.syncthreads()
    offset = 1
    while offset < n:
        pa, pc = ONE, ZERO
        if k >= offset:
            pa, pc = sA[k - offset], sC[k - offset]
        cuda.syncthreads()                            # every read before any write
        if k >= offset:
            A, C = A * pa, A * pc + C                 # (mine) ∘ (the earlier ones)
            sA[k], sC[k] = A, C
        cuda.syncthreads()
        offset *= 2
    return A, C


@cuda.jit(device=True)
def _column(H):
    """This block's unit column (b, j) and this thread's place k among the block's n."""
    col = cuda.blockIdx.x
    return col // H, col % H, cuda.threadIdx.x, cuda.blockDim.x


@lru_cache(maxsize=None)
def kernels(coefficients_unit, coefficients_backward_unit, dtype):
    """The forward and backward scan kernels of one cell, for one dtype (shared memory is
    typed)."""
    nbtype = numba.from_dtype(np.dtype(dtype))

    @cuda.jit
    def scan_forward(xw, bias, ca, cb, hs):
        """Fills hs[1:] (hs[0] = h_0 given) and the coefficients ca, cb (T, B, H)."""
        sA = cuda.shared.array(SCAN_THREADS, nbtype)
        sC = cuda.shared.array(SCAN_THREADS, nbtype)
        T, B, H = ca.shape
        b, j, k, n = _column(H)
        lo, hi = k * T // n, (k + 1) * T // n
        A, C = ONE, ZERO                              # 1. this chunk's map
        for t in range(lo, hi):
            coefficients_unit(t, b, j, xw, bias, ca, cb)
            A, C = ca[t, b, j] * A, ca[t, b, j] * C + cb[t, b, j]
        A, C = _block_scan(sA, sC, A, C, k, n)         # 2. chunks 0 .. k composed
        h = hs[0, b, j]                               # 3. from the chunks before this one
        if k > 0:
            h = sA[k - 1] * h + sC[k - 1]
        for t in range(lo, hi):
            h = ca[t, b, j] * h + cb[t, b, j]
            hs[t + 1, b, j] = h

    @cuda.jit
    def scan_backward(xw, bias, ca, cb, hs, dys, dh_T, g, dxw, dh0):
        """g (T, B, H) = dL/dh_1 .. dL/dh_T, dxw = dL/d(the x side), dh0 = dL/dh_0; thread k
        takes the k-th chunk from the end, so that the scan runs in reverse time."""
        sA = cuda.shared.array(SCAN_THREADS, nbtype)
        sC = cuda.shared.array(SCAN_THREADS, nbtype)
        T, B, H = ca.shape
        b, j, k, n = _column(H)
        lo, hi = (n - 1 - k) * T // n, (n - k) * T // n
        A, C = ONE, ZERO                              # g_t = α_t g_{t+1} + dy_t
        for t in range(hi - 1, lo - 1, -1):
            alpha = ca[t + 1, b, j] if t + 1 < T else ONE
            A, C = alpha * A, alpha * C + dys[t, b, j]
        A, C = _block_scan(sA, sC, A, C, k, n)
        carry = dh_T[b, j]                            # g_T: the final state's gradient
        if k > 0:
            carry = sA[k - 1] * carry + sC[k - 1]
        for t in range(hi - 1, lo - 1, -1):
            alpha = ca[t + 1, b, j] if t + 1 < T else ONE
            carry = alpha * carry + dys[t, b, j]
            g[t, b, j] = carry
            coefficients_backward_unit(t, b, j, carry * hs[t, b, j], carry, xw, bias, ca, cb,
                                       dxw)
        if lo == 0 and hi > 0:
            dh0[b, j] = ca[0, b, j] * g[0, b, j]

    return scan_forward, scan_backward
