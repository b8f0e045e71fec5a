"""Arrays whose data start on a 64-byte boundary: a cache line, and one AVX-512 register.

NumPy's arrays start wherever ``malloc`` puts them, on a 16-byte boundary; a compiled loop that
reads such a matrix 64 bytes at a time then splits every load across two cache lines (the
streaming step's product is a third faster aligned: docs/performance.md, "Measurements behind
the code"). ``Cell.init`` makes its parameters with ``aligned_copy``; the
optimisers and ``load_state_dict`` write into them in place, so they stay aligned.
"""

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
    inputs (``Cell.forward``)."""
    dtype = arrays[0].dtype
    step = ALIGNMENT // dtype.itemsize                # elements per ALIGNMENT bytes
    offsets, total = [], 0
    for a in arrays:
        offsets.append(total)
        total += -(-a.size // step) * step            # the next one starts aligned too
    buffer = np.empty(total + step, dtype)
    start = (-buffer.__array_interface__["data"][0] % ALIGNMENT) // dtype.itemsize
    copies = []
    for a, offset in zip(arrays, offsets):
        copy = buffer[start + offset:start + offset + a.size].reshape(a.shape)
        np.copyto(copy, a)
        copies.append(copy)
    return copies
