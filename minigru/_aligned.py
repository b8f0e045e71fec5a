"""Arrays whose data start on a 64-byte boundary: a cache line, and one AVX-512 register.

NumPy's arrays start wherever ``malloc`` puts them, on a 16-byte boundary; a compiled loop that
reads such a matrix 64 bytes at a time then splits every load across two cache lines (the
streaming step's product is a third faster aligned: docs/performance.md, "Measurements behind
the code"). ``Cell.init`` makes its parameters with ``aligned_copy``; the
optimisers and ``load_state_dict`` write into them in place, so they stay aligned.
"""

import math

import numpy as np

ALIGNMENT = 64


def aligned_empty(shape, dtype):
    """An uninitialised C-contiguous array whose data start on an ``ALIGNMENT`` boundary."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buffer = np.empty(nbytes + ALIGNMENT, np.uint8)
    start = -buffer.ctypes.data % ALIGNMENT
    return buffer[start:start + nbytes].view(dtype).reshape(shape)


def aligned_copy(a):
    """A C-contiguous, aligned copy of ``a``."""
    out = aligned_empty(a.shape, a.dtype)
    out[...] = a
    return out


def aligned_copies(arrays):
    """C-contiguous copies of ``arrays`` (all of one dtype), each starting on an ``ALIGNMENT``
    boundary, all in one allocation: one call to the allocator however many arrays (and huge
    pages, few page faults, once the total reaches NumPy's 4 MB). What a forward keeps of its
    inputs (``Cell.forward``). The copying is one ``np.concatenate`` of the arrays and the
    padding between them: at the ``tiny`` size a copy per array cost more in NumPy's calls than
    in bytes (docs/performance.md)."""
    dtype = arrays[0].dtype
    step = ALIGNMENT // dtype.itemsize                # elements per ALIGNMENT bytes
    pieces, offsets, total = [], [], 0
    for a in arrays:
        offsets.append(total)
        pieces.append(a.reshape(-1))
        size = -(-a.size // step) * step              # the next one starts aligned too
        if size > a.size:
            pieces.append(_padding(dtype, size - a.size))
        total += size
    buffer = np.empty(total + step, dtype)
    start = (-buffer.__array_interface__["data"][0] % ALIGNMENT) // dtype.itemsize
    np.concatenate(pieces, out=buffer[start:start + total])
    return [buffer[start + offset:start + offset + a.size].reshape(a.shape)
            for a, offset in zip(arrays, offsets)]


_pads = {}


def _padding(dtype, n):
    """n zeros of ``dtype`` (n < ALIGNMENT), to fill the gaps between aligned copies."""
    pad = _pads.get(dtype)
    if pad is None:
        pad = _pads[dtype] = np.zeros(ALIGNMENT, dtype)
    return pad[:n]


# NumPy asks the kernel for huge pages (2 MB) for an allocation of 4 MB or more.
HUGE_PAGE_BYTES = 4 << 20


def huge_arrays(dtype, *shapes):
    """Uninitialised C-contiguous arrays of these shapes in one allocation of at least
    ``HUGE_PAGE_BYTES`` when they come to 1 MB or more (so a few page faults, not one per 4 KB
    page, for memory that is new on every call: a forward's zoneout masks, say), else separate
    arrays from malloc's heap."""
    dtype = np.dtype(dtype)
    sizes = [math.prod(s) for s in shapes]           # (np.prod: 4 µs a shape, on the hot path)
    total = sum(sizes)
    if total * dtype.itemsize < 1 << 20:
        return [np.empty(s, dtype) for s in shapes]
    flat = np.empty(max(total, -(-HUGE_PAGE_BYTES // dtype.itemsize)), dtype)
    arrays, start = [], 0
    for shape, size in zip(shapes, sizes):
        arrays.append(flat[start:start + size].reshape(shape))
        start += size
    return arrays
