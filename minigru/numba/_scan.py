"""scan="parallel" compiled for the CPU: the linear recurrence ``h_t = a_t ⊙ h_{t−1} + b_t`` of a
``linear`` Gated cell (mingru, minlstm) on both cores, as a chunked scan.

The reference (``cells/_scan.py``) forms every h_t at once in log space. On a CPU with a couple
of cores the same associativity is used at the coarsest grain instead: time is cut into one
chunk per thread, and

1. each thread computes its chunk's coefficients ``a, b`` (the cell's ``coefficients``, through
   its glue) and runs the recurrence over the chunk from a zero state (the first chunk from h_0),
   keeping ``A`` = the product of the chunk's ``a``;
2. one short serial pass joins the chunks: the state entering chunk c is
   ``h_in(c) = A(c−1) ⊙ h_in(c−1) + (chunk c−1's last local value)``;
3. the threads, now splitting the units between them, add each chunk's correction
   ``(a_lo ⊙ ... ⊙ a_t) ⊙ h_in(c)`` to its local values.

Exact in the same sense as the log form: the same sums, grouped otherwise. Within a chunk it is
the sequential recurrence (one multiply-add per unit and step, nothing to overflow: a running
product of ``a ∈ (0, 1)`` can only underflow, towards a correction that is then negligible),
which on a CPU is cheaper than logs and exponentials of every term. The backward is the same
scan in reverse, ``g_t = dy_t + a_{t+1} ⊙ g_{t+1}``, chunked the same way, then the cell's
``coefficients_backward`` for every step at once.

Dimension legend: T steps, B batch, H hidden, C chunks (threads).
"""

import numpy as np
from numba import njit, prange

from ._glue import cell_function

scan_row = cell_function("scan_row", "H, xw, bias, ca, cb, t, b")
scan_row_backward = cell_function("scan_row_backward", "H, da, db, xw, bias, ca, cb, dxw, t, b")

parallel_kernel = njit(cache=True, parallel=True, error_model="numpy")


@njit(inline="always")
def _bounds(c, C, T):
    return c * T // C, (c + 1) * T // C


@njit(inline="always")
def _step(a, b, h, out):
    """h = a ⊙ h + b for one row, and out = h."""
    for j in range(h.shape[0]):
        v = a[j] * h[j] + b[j]
        h[j] = v
        out[j] = v


@njit(inline="always")
def _times(A, a):
    for j in range(A.shape[0]):
        A[j] *= a[j]


@parallel_kernel
def scan_forward(cell, C, xw, bias, ca, cb, hs):
    """hs (T+1, B, H), hs[0] = h_0 given: fills hs[1:] and the coefficients ca, cb (T, B, H)."""
    T, B, _ = xw.shape
    H = hs.shape[2]
    C = max(min(C, T), 1)
    prods = np.empty((C, B, H), hs.dtype)             # each chunk's product of a
    for c in prange(C):                               # 1. the chunks, each from zero
        lo, hi = _bounds(c, C, T)
        h = np.zeros((B, H), hs.dtype)
        if c == 0:
            h[:] = hs[0]
        for t in range(lo, hi):
            for b in range(B):
                scan_row(cell, H, xw, bias, ca, cb, t, b)
                _step(ca[t, b], cb[t, b], h[b], hs[t + 1, b])
        if C > 2:                                     # (step 2 needs them from 3 chunks on)
            A = prods[c]
            A[:] = 1
            for t in range(lo, hi):
                for b in range(B):
                    _times(A[b], ca[t, b])
    starts = np.empty((C, B, H), hs.dtype)            # 2. the state entering each chunk
    starts[0] = hs[0]
    for c in range(1, C):
        lo, _ = _bounds(c, C, T)
        starts[c] = hs[lo]                            # (chunk c−1's end: exact for c = 1)
        if c > 1:
            starts[c] += prods[c - 1] * starts[c - 1]
        hs[lo] = starts[c]                            # now the true h there
    n = B * H                                         # 3. the corrections, units split
    a2, h2, s2 = ca.reshape(T, n), hs.reshape(T + 1, n), starts.reshape(C, n)
    for part in prange(C):
        k0, k1 = _bounds(part, C, n)
        for c in range(1, C):
            lo, hi = _bounds(c, C, T)
            Q = np.ones(k1 - k0, hs.dtype)
            # (the chunk's last entry is step 2's, except for the last chunk's)
            last = hi if c == C - 1 else hi - 1
            for t in range(lo, last):
                for k in range(k0, k1):
                    Q[k - k0] *= a2[t, k]
                    h2[t + 1, k] += Q[k - k0] * s2[c, k]


@parallel_kernel
def scan_backward(cell, C, xw, bias, ca, cb, hs, dys, dh_T, g, dxw):
    """g (T, B, H) = dL/dh_1 .. dL/dh_T through every later step, and dxw (T, B, Gx·H) = dL/d(the
    x side) from the coefficients' backward (dL/dh_0 is then a_1 ⊙ g_1)."""
    T, B, H = dys.shape
    C = max(min(C, T), 1)
    prods = np.empty((C, B, H), dys.dtype)            # chunk c: a_{lo+1} ⊙ ... ⊙ a_hi
    for c in prange(C):                               # 1. the chunks, in reverse, from zero
        lo, hi = _bounds(c, C, T)
        carry = np.zeros((B, H), dys.dtype)
        A = prods[c]
        if c == C - 1:
            carry[:] = dh_T                           # (the last chunk's: exact)
            A[:] = 1
        else:
            A[:] = ca[hi]
        for t in range(hi - 1, lo - 1, -1):
            for b in range(B):
                for j in range(H):
                    if t < hi - 1:                    # g_t = dy_t + a_{t+1} g_{t+1}
                        carry[b, j] = dys[t, b, j] + ca[t + 1, b, j] * carry[b, j]
                        if t > lo:
                            A[b, j] *= ca[t, b, j]
                    else:
                        carry[b, j] = dys[t, b, j] + carry[b, j]
                        if t > lo:
                            A[b, j] *= ca[t, b, j]
                    g[t, b, j] = carry[b, j]
    for c in range(C - 2, -1, -1):                    # 2. the true g where each chunk starts
        lo, hi = _bounds(c, C, T)
        g[lo] += prods[c] * g[hi]                     # (g[hi]: the next chunk's, true)
    n = B * H                                         # 3. the corrections, units split
    a2, g2 = ca.reshape(T, n), g.reshape(T, n)
    for part in prange(C):
        k0, k1 = _bounds(part, C, n)
        for c in range(C - 1):
            lo, hi = _bounds(c, C, T)
            Q = np.ones(k1 - k0, dys.dtype)
            for t in range(hi - 1, lo, -1):
                for k in range(k0, k1):
                    Q[k - k0] *= a2[t + 1, k]
                    g2[t, k] += Q[k - k0] * g2[hi, k]
    for c in prange(C):                               # 4. the coefficients' backward
        lo, hi = _bounds(c, C, T)
        da = np.empty((B, H), dys.dtype)
        for t in range(lo, hi):
            for b in range(B):
                for j in range(H):
                    da[b, j] = g[t, b, j] * hs[t, b, j]     # dL/da_t = g_t ⊙ h_{t−1}
                scan_row_backward(cell, H, da, g[t], xw, bias, ca, cb, dxw, t, b)
