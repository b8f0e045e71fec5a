"""Memory for the compiled backend: scratch it reuses from call to call, and caches in one block.

For the temporaries no caller ever sees (``x W + b`` before the loop, the gates' gradients
before the products after it), a fresh array on every call means fresh pages on every call
whenever the heap has been trimmed in between, and that is often, above all in a process that
also runs PyTorch (thousands of page faults per ``medium`` training step: docs/performance.md,
"Measurements behind the code"). So each thread keeps one buffer per name, grown to the largest
size asked for; nothing else is cached.

The cost is memory held between calls: the largest temporaries a thread has needed (about 30 MB
for the ``medium`` gru, 60 MB for ``large``). ``release()`` frees this thread's.

The arrays a forward keeps in its cache are new on every call (the caller holds them until the
backward), but ``one_block`` makes them in one allocation: NumPy asks the kernel for huge pages
(2 MB) for an array of 4 MB or more, so a large cache costs a few faults where its separate
arrays cost thousands; one from 1 MB on is padded to 4 MB for the same reason.
Smaller caches stay separate arrays from malloc's heap.
"""

import math
import threading

import numpy as np

from .._aligned import huge_arrays

_local = threading.local()


MAX_VIEWS = 64          # views kept for reuse, per thread: slicing and reshaping a buffer anew cost
                        # as much as a tenth of a tiny training step's Python


def scratch(name, shape, dtype):
    """An uninitialised C-contiguous array over this thread's buffer ``name``: the same memory on
    every call, so it must not outlive the call that asked for it (never returned, never cached).
    """
    views = _local.__dict__.get("views")
    view = None if views is None else views.get((name, shape, dtype))
    if view is not None:                              # the common case: asked for before
        return view
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    pool = _local.__dict__.setdefault("pool", {})
    views = _local.__dict__.setdefault("views", {})
    buffer = pool.get(name)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = pool[name] = np.empty(nbytes, np.uint8)
        for key in [k for k in views if k[0] == name]:   # views of the smaller buffer go
            del views[key]
    if len(views) > MAX_VIEWS:                       # shapes that keep changing (lengths, say)
        views.clear()
    view = views[(name, tuple(shape), dtype)] = buffer[:nbytes].view(dtype).reshape(shape)
    return view


def release():
    """Free this thread's scratch buffers (they are made again when next needed)."""
    _local.__dict__.pop("pool", None)
    _local.__dict__.pop("views", None)


# NumPy's threshold for huge pages (``_aligned.py``). Below it, one block would be an ``mmap`` of
# its own from 128 KB on, and so fresh pages on every call, where small arrays come from
# malloc's heap.


def one_block(dtype, *shapes):
    """Uninitialised C-contiguous arrays of these shapes: views into one allocation (which lives
    as long as any of them) of at least ``HUGE_PAGE_BYTES`` if they come to 1 MB or more,
    separate arrays below that (``_aligned.huge_arrays``). Between 1 and 4 MB the block is
    padded to 4 MB: the medium rnn's cache (3.4 MB) with zoneout's arrays beside it otherwise
    came from fresh pages on every call, 1,500 faults a training step."""
    return huge_arrays(dtype, *shapes)
