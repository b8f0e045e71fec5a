"""What the family modules share on the GPU: the products before and after the time loop,
the host/device helpers, the launch shapes, a block's row reduction (``block_sum``), and the
persistent kernels' machinery (``time_loop``: one launch for the whole loop where it fits).

``gemm`` is the tiled shared-memory matrix product: each block of TILE×TILE threads computes one
TILE×TILE block of the output, stepping along the inner dimension one TILE-wide slab at a time;
each slab of A and of B is read from global memory once into shared memory and then used TILE
times from there. Flags read either operand transposed, so ``xᵀ dA`` needs no copy.

Kernels that need a shared array of the data's dtype are made per dtype (``_kernels(dtype)``);
the others specialise on their arguments' types by themselves.
"""

from functools import lru_cache

import numpy as np
from numba import cuda, from_dtype
from numba.cuda import devicearray

from ._math import ZERO

TILE = 16        # 16×16 = 256 threads per block, two 1 KiB (float32) shared tiles
THREADS = 128    # threads per block of the element-wise and per-step kernels


def is_device(a):
    """True for a Numba device array (the simulator's included)."""
    return devicearray.is_cuda_ndarray(a)


def to_device(a, name="array"):
    """``a`` on the device: a device array is used as it is (it must be C-contiguous: the
    kernels reshape it, and a device array cannot be reshaped by copying), a NumPy array is
    copied over."""
    if is_device(a):
        if not a.is_c_contiguous():
            raise ValueError(f"{name} must be a C-contiguous device array, got one with shape "
                             f"{a.shape} and strides {a.strides}: copy it into a new device "
                             f"array first (or pass a NumPy array)")
        return a
    return cuda.to_device(np.ascontiguousarray(a))


def to_host(a):
    return a.copy_to_host()


def empty(shape, dtype):
    return cuda.device_array(shape, dtype)


def blocks(n, threads=THREADS):
    return (n + threads - 1) // threads


@lru_cache(maxsize=None)
def _kernels(dtype):
    nbtype = from_dtype(np.dtype(dtype))

    @cuda.jit
    def gemm_kernel(A, B, C, bias, accumulate, has_bias, ta, tb):
        """C = op(A) @ op(B) (+ C if accumulate) (+ bias as a row if has_bias), where op
        transposes when ta / tb: the product reads a transposed operand where it lies."""
        sA = cuda.shared.array((TILE, TILE), nbtype)
        sB = cuda.shared.array((TILE, TILE), nbtype)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        row = cuda.blockIdx.y * TILE + ty
        col = cuda.blockIdx.x * TILE + tx
        m, n = C.shape
        k = A.shape[0] if ta else A.shape[1]
        acc = ZERO
        for k0 in range(0, k, TILE):
            ka, kb = k0 + tx, k0 + ty
            if row < m and ka < k:
                sA[ty, tx] = A[ka, row] if ta else A[row, ka]
            else:
                sA[ty, tx] = ZERO
            if kb < k and col < n:
                sB[ty, tx] = B[col, kb] if tb else B[kb, col]
            else:
                sB[ty, tx] = ZERO
            cuda.syncthreads()
            for kk in range(TILE):
                acc += sA[ty, kk] * sB[kk, tx]
            cuda.syncthreads()
        if row < m and col < n:
            if accumulate:
                acc += C[row, col]
            if has_bias:
                acc += bias[col]
            C[row, col] = acc

    @cuda.jit
    def colsum_kernel(A, out, accumulate):
        """out[j] = sum_i A[i, j] (+ out[j]); one thread per column, coalesced across them."""
        j = cuda.grid(1)
        if j < A.shape[1]:
            acc = ZERO
            for i in range(A.shape[0]):
                acc += A[i, j]
            out[j] = acc + out[j] if accumulate else acc

    return gemm_kernel, colsum_kernel


def gemm(A, B, out=None, *, bias=None, accumulate=False, ta=False, tb=False):
    """``out = op(A) @ op(B)`` (``+=`` with ``accumulate``), plus ``bias`` (n,) on every row;
    ``op`` transposes where ``ta``/``tb`` say so. (A device array's ``.T`` is a copy made by a
    kernel of its own; these flags read the operand transposed where it lies.)"""
    m, k = A.shape[::-1] if ta else A.shape
    k2, n = B.shape[::-1] if tb else B.shape
    assert k == k2, (A.shape, B.shape, ta, tb)
    if out is None:
        out = empty((m, n), A.dtype)
    gemm_kernel, _ = _kernels(A.dtype)
    grid = ((n + TILE - 1) // TILE, (m + TILE - 1) // TILE)
    gemm_kernel[grid, (TILE, TILE)](A, B, out, out[0] if bias is None else bias,
                                    accumulate, bias is not None, ta, tb)
    return out


def colsum(A, out=None, *, accumulate=False):
    """``out = A.sum(axis=0)`` for a 2-D A (``+=`` with ``accumulate``): bias gradients."""
    if out is None:
        out = empty(A.shape[1], A.dtype)
    _, colsum_kernel = _kernels(A.dtype)
    colsum_kernel[blocks(A.shape[1]), THREADS](A, out, accumulate)
    return out


@cuda.jit
def _mul_cyclic(a, m, out, accumulate):
    i = cuda.grid(1)
    if i < a.shape[0]:
        v = a[i] * m[i % m.shape[0]]
        out[i] = out[i] + v if accumulate else v


def mul_cyclic(a, m, out=None, *, accumulate=False):
    """``out = a ⊙ m`` (``+=`` with ``accumulate``), ``m`` repeated along a's leading axes:
    (T, B, H) ⊙ (B, H), recurrent dropout's mask on every step's h."""
    if out is None:
        out = empty(a.shape, a.dtype)
    n = a.size
    _mul_cyclic[blocks(n), THREADS](a.reshape(n), m.reshape(m.size), out.reshape(n),
                                    accumulate)
    return out


def loop_masks(masks, n, T, B, H, dtype):
    """The loop regularisers' kernel arguments for ``masks`` (``_regularise.LoopMasks`` or
    None) and ``n`` state components: ``m_h, masked, keep, S_new, zoned``, recurrent dropout's
    mask on the device and whether it is on, zoneout's k_t per component, arrays for the
    states the points make, and whether it is on; stand-ins of the same types when off, so
    one compiled kernel serves both."""
    m_h = None if masks is None else masks.h
    keep = None if masks is None else masks.keep
    dummy2, dummy3 = empty((1, 1), dtype), empty((1, 1, 1), dtype)
    return (dummy2 if m_h is None else to_device(m_h), m_h is not None,
            (dummy3,) * n if keep is None else tuple(to_device(k) for k in keep),
            (dummy3,) * n if keep is None else tuple(empty((T + 1, B, H), dtype)
                                                     for _ in range(n)),
            keep is not None)


def copy(a):
    """A new contiguous device array with the contents of the device array ``a``."""
    out = empty(a.shape, a.dtype)
    out.copy_to_device(a)
    return out


def grid_rows(B, H):
    """Launch shape of the per-step kernels: one thread per (row b, unit j), ``blockIdx.y = b``.
    Blocks are a whole number of warps and no wider than needed, so small H wastes no threads."""
    threads = min(THREADS, 32 * ((H + 31) // 32))
    return (blocks(H, threads), B), threads


SHARED_BYTES = 48 * 1024    # shared memory a block may have without opting in to more


def co_resident_blocks(kernel, args, threads, shared_bytes):
    """How many blocks of ``kernel`` (compiled for ``args``) the GPU holds at once: the largest
    grid of a cooperative launch, the only kind in which a grid-wide barrier is allowed.
    Numba's simulator runs cooperative grids of one block only."""
    from . import simulated
    if simulated():
        return 1
    compiled = kernel.compile(tuple(kernel.typeof_pyval(a) for a in args))
    return compiled.max_cooperative_grid_blocks(threads, shared_bytes)


def multiprocessors():
    """The GPU's streaming multiprocessors (1 in the simulator, which runs one block at a time)."""
    from . import simulated
    if simulated():
        return 1
    return cuda.get_current_device().MULTIPROCESSOR_COUNT


# ------------------------------------------------------------------ row reductions in a block

@cuda.jit(device=True)
def block_sum(x, sh):
    """The sum of every thread's ``x`` over the block (blockDim.x a power of two), returned to
    each; ``sh`` is a shared array of blockDim.x elements."""
    tid = cuda.threadIdx.x
    sh[tid] = x
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:                                      # tree: halve the live threads each round
        if tid < s:
            sh[tid] += sh[tid + s]
        cuda.syncthreads()
        s //= 2
    total = sh[0]
    cuda.syncthreads()                                # all have read sh[0] before its next use
    return total


def row_threads(n, most=THREADS):
    """Threads of a block that strides over a row of n features: a power of two (for
    ``block_sum``), a whole warp at least, no more than n needs and at most ``most``."""
    return min(most, max(32, 1 << (n - 1).bit_length()))


# ------------------------------------------------------------------ persistent kernels
#
# Where the grid fits on the GPU at once (a cooperative launch), one kernel runs every step of
# the loop: each block owns `units` hidden units and loads their part of U into shared memory
# once, for all T steps (the "persistent RNN" of Diamos et al. 2016); between steps the whole
# grid waits at a grid-wide barrier, since step t+1 reads every unit of h_t. gru, rnn and lstm
# have them; the per-step launches are the fallback where they do not fit.

PERSISTENT = True    # use the persistent kernels where they fit (the tests switch this off too)


@cuda.jit(device=True)
def load_columns(U, sU, units, G):
    """sU (H, G·units) = the columns g·H + j0 + jj of U (H, G·H), j0 = this block's first unit:
    what the forward's product h U needs for this block's units."""
    H = U.shape[0]
    j0 = cuda.blockIdx.x * units
    for q in range(cuda.threadIdx.x, H * G * units, cuda.blockDim.x):
        k, g, jj = q // (G * units), (q // units) % G, q % units
        sU[q] = U[k, g * H + j0 + jj] if j0 + jj < H else ZERO
    cuda.syncthreads()


@cuda.jit(device=True)
def load_rows(U, sU, units):
    """sU (units, G·H) = the rows j0 + jj of U: what the backward's product da Uᵀ needs."""
    H, GH = U.shape
    j0 = cuda.blockIdx.x * units
    for q in range(cuda.threadIdx.x, units * GH, cuda.blockDim.x):
        jj, k = q // GH, q % GH
        sU[q] = U[j0 + jj, k] if j0 + jj < H else ZERO
    cuda.syncthreads()


def persistent_launch(kernel, args, B, H, G, itemsize):
    """(the configured launch, units per block) of a persistent kernel taking
    ``(units, *args)``, or None where it does not fit: its slice of U (G·H·units values) must
    fit in a block's shared memory and its grid on the GPU at once.

    Units are spread over all multiprocessors (one block each where H allows), so that every SM
    works on every step; fewer units per block means a smaller U slice per block."""
    if not PERSISTENT:
        return None
    units = -(-H // multiprocessors())
    nblocks = -(-H // units)
    threads = min(THREADS, 32 * ((B * units + 31) // 32))
    shared = G * H * units * itemsize
    if shared > SHARED_BYTES or nblocks > co_resident_blocks(kernel, (units, *args), threads,
                                                             shared):
        return None
    return kernel[nblocks, threads, 0, shared], units


def time_loop(persistent_kernel, persistent_args, step_kernel, step_args, steps, B, H, G):
    """Run a time loop: one launch of ``persistent_kernel(units, *persistent_args)`` where it
    fits (``persistent_launch``), else ``step_kernel(t, *step_args())`` for each t of ``steps``.
    ``step_args`` is a function, so that what only the per-step kernels read (the backward's
    copy of Uᵀ) is made only when they run."""
    itemsize = persistent_args[0].dtype.itemsize       # every loop's first array is U
    fits = persistent_launch(persistent_kernel, persistent_args, B, H, G, itemsize)
    if fits:
        launch, units = fits
        launch(units, *persistent_args)
        return
    args = step_args()
    grid, threads = grid_rows(B, H)
    for t in steps:
        step_kernel[grid, threads](t, *args)
