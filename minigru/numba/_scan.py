"""scan="parallel" compiled for the CPU: the linear recurrence ``h_t = a_t ⊙ h_{t−1} + b_t`` of a
``linear`` Gated cell (mingru, minlstm) on both cores, as a chunked scan.

The reference (``cells/_scan.py``) forms every h_t at once in log space. On a CPU with a couple
of cores the same associativity is used at the coarsest grain instead: time is cut into one
chunk per thread, and

1. each thread computes its chunk's coefficients ``a, b`` (the cell's ``coefficients``, through
   its glue: the costly part, with its exponentials) and, the first from h_0, runs the
   recurrence over its chunk; each later chunk (from three chunks on) composes its steps into
   one map ``h ↦ A ⊙ h + C``, run from zero;
2. one short serial pass joins the chunks: the state entering chunk c is
   ``A(c−1) ⊙ h_in(c−1) + C(c−1)`` (chunk 1's is chunk 0's end, true already);
3. each later chunk runs its recurrence again from that true state, in parallel.

Exact in the same sense as the log form: the same sums, grouped otherwise. Within a chunk it is
the sequential recurrence (one multiply-add per unit and step, nothing to overflow: a running
product of ``a ∈ (0, 1)`` can only underflow, towards a part of h that is then negligible),
which on a CPU is cheaper than logs and exponentials of every term. Up to ``FUSE_MAX_INPUTS``
inputs the kernels form each step's ``x W`` themselves, so the forward reads x, not an array of
all steps' projections; the backward forms it again. The backward is the same scan in reverse,
``g_t = dy_t + a_{t+1} ⊙ g_{t+1}``, chunked the same way (there the last chunk is the one that
starts true), then the cell's ``coefficients_backward`` for every step at once.

How it is written matters as much as what: inside the parallel loops every array is indexed,
never sliced (``_step``), or the two threads count references on one cache line and the
recurrence is not vectorised; the first version did both, and two threads ran it no faster
than one.

Dimension legend: T steps, B batch, H hidden, C chunks (threads).
"""

import numpy as np
from numba import njit, prange

from ._glue import cell_function

scan_row = cell_function("scan_row", "H, xw, bias, ca, cb, t, b")
scan_row_backward = cell_function("scan_row_backward", "H, g, hs, xw, bias, ca, cb, dxw, t, b")
scan_row_of_row = cell_function("scan_row_of_row", "H, xw, bias, ca, cb, t, b")
scan_row_backward_of_row = cell_function("scan_row_backward_of_row",
                                         "H, g, hs, xw, bias, ca, cb, dxw, t, b")

# Up to this many inputs per row, the kernels form each step's ``x W`` themselves, where they
# read it, instead of reading it from an array of every step's (T, B, Gx·H): that array is the
# largest the forward touches, and at T=10,000, H=64 writing and reading it back took longer
# than the whole recurrence (the loop is bound by memory there, not by arithmetic). Beyond it,
# the library's product of all steps at once wins.
FUSE_MAX_INPUTS = 8

parallel_kernel = njit(cache=True, parallel=True, error_model="numpy")


@njit(inline="always")
def _bounds(c, C, T):
    return max(c * T // C, 0), (c + 1) * T // C          # (max: LLVM then knows it is ≥ 0)


@njit(inline="always")
def _step(ca, cb, hs, t, b):
    """hs[t + 1, b] = a_t ⊙ hs[t, b] + b_t. (Indices into the shared arrays, no slices or local
    rows: a slice is a reference the threads count, atomically, on one cache line, and a local
    row might alias the arrays for all LLVM knows, which keeps the loop from being vectorised.)"""
    for j in range(hs.shape[2]):
        hs[t + 1, b, j] = ca[t, b, j] * hs[t, b, j] + cb[t, b, j]


@njit(inline="always")
def _from_zero(ca, cb, hs, prods, c, lo, t, b):
    """Chunk c's map h ↦ A ⊙ h + C one step on, for row b: A = prods[c], C run in hs's own rows
    of the chunk (from zero at its first step, which must not read the row before it: that is
    the chunk before's)."""
    for j in range(hs.shape[2]):
        if t == lo:
            hs[t + 1, b, j] = cb[t, b, j]
            prods[c, b, j] = ca[t, b, j]
        else:
            hs[t + 1, b, j] = ca[t, b, j] * hs[t, b, j] + cb[t, b, j]
            prods[c, b, j] *= ca[t, b, j]


@njit(inline="always")
def _project_row(x, W, t, row):
    """row (B, Gx·H) = x_t W: one step's inputs through W."""
    for b in range(row.shape[0]):
        for k in range(row.shape[1]):
            row[b, k] = 0
        for i in range(x.shape[2]):
            s = x[t, b, i]
            for k in range(row.shape[1]):
                row[b, k] += s * W[i, k]


@njit(inline="always")
def _compose(ca, cb, A, h, t, b):
    """Row b of a chunk's map h ↦ A ⊙ h + C after one more step: A ⊙= a_t, C = a_t ⊙ C + b_t
    (C kept in ``h``: the chunk run from zero)."""
    for j in range(h.shape[1]):
        a = ca[t, b, j]
        A[b, j] *= a
        h[b, j] = a * h[b, j] + cb[t, b, j]


@parallel_kernel
def scan_forward(cell, C, x, W, xw, bias, ca, cb, hs):
    """hs (T+1, B, H), hs[0] = h_0 given: fills hs[1:] and the coefficients ca, cb (T, B, H).
    ``xw`` (T, B, Gx·H) = x W for every step, or None: then each step's is formed here."""
    T, B, H = ca.shape
    C = max(min(C, T), 1)
    prods = np.empty((C, B, H), hs.dtype)             # each chunk's A (from 3 chunks on)
    for c in prange(C):                               # 1. the chunks' coefficients, and maps
        lo, hi = _bounds(c, C, T)
        row = np.empty((B, W.shape[1]), hs.dtype)     # this step's x W (xw None)
        for t in range(lo, hi):
            if xw is None:
                _project_row(x, W, t, row)
            for b in range(B):
                if xw is None:
                    scan_row_of_row(cell, H, row, bias, ca, cb, t, b)
                else:
                    scan_row(cell, H, xw, bias, ca, cb, t, b)
                if c == 0:                            # the first chunk from h_0: true
                    _step(ca, cb, hs, t, b)
                elif C > 2:                           # (chunk 1 starts where chunk 0 ends)
                    _from_zero(ca, cb, hs, prods, c, lo, t, b)
    for c in range(2, C):                             # 2. the true state entering each chunk
        lo, _ = _bounds(c, C, T)
        lo1, _ = _bounds(c - 1, C, T)
        hs[lo] = prods[c - 1] * hs[lo1] + hs[lo]      # (hs[lo]: chunk c−1's map from zero)
    for c in prange(C):                               # 3. each later chunk from its true start
        if c > 0:
            lo, hi = _bounds(c, C, T)
            last = hi if c == C - 1 else hi - 1       # (its last row: step 2's, true)
            for t in range(lo, last):
                for b in range(B):
                    _step(ca, cb, hs, t, b)


@njit(inline="always")
def _x_side_backward(x, W, dxw, dx, dW_parts, db_parts, c, t, b):
    """Through x_t W + b for row b: dx = dxw W^T, and chunk c's dW += x^T dxw, db += dxw (the
    library's products of all steps would spin its threads against these kernels')."""
    G = dxw.shape[2]
    for k in range(G):
        db_parts[c, k] += dxw[t, b, k]
    for i in range(x.shape[2]):
        xi = x[t, b, i]
        for k in range(G):
            dW_parts[c, i, k] += xi * dxw[t, b, k]
        s0, s1, s2, s3 = dxw.dtype.type(0), dxw.dtype.type(0), dxw.dtype.type(0), dxw.dtype.type(0)
        k = 0
        while k + 4 <= G:                             # (four sums: a dot product in order
            s0 += dxw[t, b, k] * W[i, k]              #  is one long chain of additions)
            s1 += dxw[t, b, k + 1] * W[i, k + 1]
            s2 += dxw[t, b, k + 2] * W[i, k + 2]
            s3 += dxw[t, b, k + 3] * W[i, k + 3]
            k += 4
        for k in range(k, G):
            s0 += dxw[t, b, k] * W[i, k]
        dx[t, b, i] = (s0 + s1) + (s2 + s3)


@njit(inline="always")
def _back_step(ca, dys, g, t, b):
    """g[t, b] = dy_t + a_{t+1} ⊙ g[t + 1, b]: dL/dh through one step back."""
    for j in range(g.shape[2]):
        g[t, b, j] = dys[t, b, j] + ca[t + 1, b, j] * g[t + 1, b, j]


@njit(inline="always")
def _back_from_zero(ca, dys, g, prods, c, hi, t, b):
    """``_from_zero`` backwards in time: chunk c's map from the g entering it at its end."""
    for j in range(g.shape[2]):
        if t == hi - 1:
            g[t, b, j] = dys[t, b, j]
            prods[c, b, j] = ca[t + 1, b, j]
        else:
            g[t, b, j] = dys[t, b, j] + ca[t + 1, b, j] * g[t + 1, b, j]
            prods[c, b, j] *= ca[t + 1, b, j]


@parallel_kernel
def scan_backward(cell, C, x, W, xw, bias, ca, cb, hs, dys, dh_T, g, dxw, dx, dW_parts,
                  db_parts):
    """g (T, B, H) = dL/dh_1 .. dL/dh_T through every later step, and dxw (T, B, Gx·H) = dL/d(the
    x side) from the coefficients' backward (dL/dh_0 is then a_1 ⊙ g_1). The forward's steps
    mirrored: the last chunk is the one that starts true. ``xw`` as the forward's; where it is
    None, the x side's gradients too: dx (T, B, I), and each chunk's share of dL/dW and dL/db in
    dW_parts (C, I, Gx·H) and db_parts (C, Gx·H), zeros given."""
    T, B, H = dys.shape
    C = max(min(C, T), 1)
    prods = np.empty((C, B, H), dys.dtype)            # chunk c: a_{lo+1} ⊙ ... ⊙ a_{hi}
    for c in prange(C):                               # 1. the last chunk from dL/dh_T: true
        lo, hi = _bounds(c, C, T)
        if c == C - 1:
            for b in range(B):
                for j in range(H):
                    g[T - 1, b, j] = dys[T - 1, b, j] + dh_T[b, j]
            for t in range(T - 2, lo - 1, -1):
                for b in range(B):
                    _back_step(ca, dys, g, t, b)
        elif C > 2 and c > 0:                         # the middle ones' maps, from zero
            for t in range(hi - 1, lo - 1, -1):
                for b in range(B):
                    _back_from_zero(ca, dys, g, prods, c, hi, t, b)
    for c in range(C - 2, 0, -1):                     # 2. the true g where each chunk starts
        lo, hi = _bounds(c, C, T)
        g[lo] = prods[c] * g[hi] + g[lo]              # (g[lo]: chunk c's map from zero)
    for c in prange(C):                               # 3. each earlier chunk from its true end
        if c < C - 1:
            lo, hi = _bounds(c, C, T)
            first = lo if c == 0 else lo + 1          # (row lo of the others: step 2's, true)
            for t in range(hi - 1, first - 1, -1):
                for b in range(B):
                    _back_step(ca, dys, g, t, b)
    for c in prange(C):                               # 4. the coefficients' backward
        lo, hi = _bounds(c, C, T)
        row = np.empty((B, W.shape[1]), dys.dtype)
        for t in range(lo, hi):
            if xw is None:
                _project_row(x, W, t, row)
            for b in range(B):                        # (dL/da_t = g_t ⊙ h_{t−1}, in the glue)
                if xw is None:
                    scan_row_backward_of_row(cell, H, g, hs, row, bias, ca, cb, dxw, t, b)
                    _x_side_backward(x, W, dxw, dx, dW_parts, db_parts, c, t, b)
                else:
                    scan_row_backward(cell, H, g, hs, xw, bias, ca, cb, dxw, t, b)
