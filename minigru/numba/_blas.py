"""The products inside the compiled loops through the BLAS that NumPy itself ships.

Numba's compiled code cannot call NumPy's ``@`` (``np.dot`` there needs SciPy, which minigru
does not depend on). NumPy's wheels carry their own OpenBLAS, ``scipy_openblas64_``: at import
we find its ``cblas_sgemm``/``cblas_dgemm`` and register them with LLVM under fixed names,
``minigru_sgemm`` and ``minigru_dgemm``. Compiled kernels call those names, so the kernels and
their on-disk cache are the same whatever lies behind them. Where NumPy has no such library (a
build against MKL or Accelerate, say), the names are bound to a plain loop compiled here instead:
correct everywhere, fast where NumPy's OpenBLAS is.

From a few rows on the library beats the hand-written loops of ``_math.py``; for fewer, its call
overhead loses to them, so ``_math.matmul`` uses the library from ``BLAS_MIN_ROWS`` rows on
(the figures: docs/performance.md, "Measurements behind the code").
"""

import ctypes
import glob
import os

import llvmlite.binding as ll
import numpy as np
from numba import carray, cfunc, types

BLAS_MIN_ROWS = 8

_ROW_MAJOR, _NO_TRANS = 101, 111
_I32, _I64 = types.int32, types.int64


def _signature(ptr, real):
    """order, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc (ILP64 sizes)."""
    return types.void(_I32, _I32, _I32, _I64, _I64, _I64, real, ptr, _I64, ptr, _I64, real, ptr,
                      _I64)


# what the kernels call: pointers passed as integers (the same in every 64-bit calling convention)
sgemm = types.ExternalFunction("minigru_sgemm", _signature(_I64, types.float32))
dgemm = types.ExternalFunction("minigru_dgemm", _signature(_I64, types.float64))


def _numpy_openblas():
    """(sgemm, dgemm) ctypes functions of NumPy's bundled ILP64 OpenBLAS, or None."""
    root = os.path.dirname(os.path.dirname(np.__file__))
    for pattern in ("numpy.libs/libscipy_openblas64_*", "numpy/.dylibs/libscipy_openblas64_*"):
        for path in sorted(glob.glob(os.path.join(root, pattern))):
            try:
                lib = ctypes.CDLL(path)
                return lib.scipy_cblas_sgemm64_, lib.scipy_cblas_dgemm64_
            except (OSError, AttributeError):
                continue
    return None


def _loop_gemm(real):
    """The fallback: C = alpha·A @ B + beta·C, row-major, no transposes (all minigru asks)."""
    @cfunc(_signature(types.CPointer(real), real), cache=True)
    def gemm(order, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
        a = carray(A, (m, lda))
        b = carray(B, (k, ldb))
        c = carray(C, (m, ldc))
        for i in range(m):
            for j in range(n):                        # beta 0: C is not read (BLAS's rule)
                c[i, j] = c[i, j] * beta if beta != 0 else 0
            for p in range(k):
                s = alpha * a[i, p]
                for j in range(n):
                    c[i, j] += s * b[p, j]
    return gemm.address


def _register():
    found = _numpy_openblas()
    if found is not None:
        addresses = [ctypes.cast(f, ctypes.c_void_p).value for f in found]
    else:
        addresses = [_loop_gemm(types.float32), _loop_gemm(types.float64)]
    ll.add_symbol("minigru_sgemm", addresses[0])
    ll.add_symbol("minigru_dgemm", addresses[1])
    return found is not None


HAVE_OPENBLAS = _register()
