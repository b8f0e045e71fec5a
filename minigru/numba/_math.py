"""Scalar math for the compiled kernels, written once for every target.

``sigmoid`` and ``tanh`` are plain Python functions (so a reader can run them) that Numba
specialises by the scalar type it sees:

- float64: the exact forms of the NumPy reference (``exp`` only of a non-positive number), so the
  backends agree with it to rounding (1e-10 is the bar; in practice ~1e-15).
- float32: a branch-free rational approximation of tanh (the 13/6 minimax form Eigen and
  TensorFlow use for float32), which LLVM vectorises, where a call to ``tanhf`` would stay scalar.
  Its error is a few float32 ulps (at most 3e-7 relative on [-10, 10]), well inside the
  1e-4 float32 agreement, and ``sigmoid(a) = 0.5 + 0.5 tanh(a / 2)`` inherits it. Every
  constant is a float32, so no float32 kernel is silently promoted to float64.

``matmul``, ``matmul_acc`` and ``matmul_columns`` (a window of the right operand's columns, read
in place) are the products inside the time loop: from ``BLAS_MIN_ROWS`` rows on through the
OpenBLAS NumPy ships (``_blas.py``), below that as loops whose innermost axis is contiguous, so
that LLVM vectorises them; the large products before and after the loop go to
NumPy's ``@``, the same library.

Every kernel compiles with ``error_model="numpy"`` (``kernel`` and ``pointwise`` below): float
division by zero then gives inf/nan as in NumPy instead of raising, and, more to the point here,
the check Python's semantics need would sit in every loop and stop LLVM from vectorising it
(an order of magnitude per element: docs/performance.md).
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

from ._blas import BLAS_MIN_ROWS, dgemm, sgemm

kernel = njit(cache=True, error_model="numpy")            # a compiled loop, cached on disk
pointwise = njit(inline="always", error_model="numpy")   # per-element math, inlined
# Row reductions (mean, variance, RMS over a row) may add in any order, so that LLVM vectorises
# them: 10x faster than the strict left-to-right sum; NumPy's pairwise sum differs from both by
# rounding only.
row_kernel = njit(cache=True, error_model="numpy", fastmath={"reassoc"})

# ------------------------------------------------------------------ float32 tanh, Eigen's form
_CLAMP = np.float32(7.90531110763549805)   # tanh rounds to ±1 in float32 beyond this
_A1 = np.float32(4.89352455891786e-03)
_A3 = np.float32(6.37261928875436e-04)
_A5 = np.float32(1.48572235717979e-05)
_A7 = np.float32(5.12229709037114e-08)
_A9 = np.float32(-8.60467152213735e-11)
_A11 = np.float32(2.00018790482477e-13)
_A13 = np.float32(-2.76076847742355e-16)
_B0 = np.float32(4.89352518554385e-03)
_B2 = np.float32(2.26843463243900e-03)
_B4 = np.float32(1.18534705686654e-04)
_B6 = np.float32(1.19825839466702e-06)
_HALF32 = np.float32(0.5)

# Numba types a Python literal as float64 and ``1 - z`` with a float32 z as float64: the kernels
# write ``ONE - z``. A float32 constant next to a float64 value is promoted exactly (1 and 0 are
# representable), so one set of constants serves both dtypes.
ONE = np.float32(1.0)
ZERO = np.float32(0.0)


def tanh_f32(x):
    """tanh(x) ≈ x·p(x²)/q(x²) on the clamped range; float32 in, float32 out."""
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = x2 * p + _A9
    p = x2 * p + _A7
    p = x2 * p + _A5
    p = x2 * p + _A3
    p = x2 * p + _A1
    q = x2 * _B6 + _B4
    q = x2 * q + _B2
    q = x2 * q + _B0
    return x * p / q


def sigmoid_f32(x):
    return _HALF32 + _HALF32 * tanh(_HALF32 * x)     # tanh is tanh_f32 here (see below)


# ------------------------------------------------------------------ float32 exp, Cephes' form
# exp(x) = 2^n · e^r, n = round(x / ln 2), |r| ≤ ln 2 / 2: e^r by Cephes' expf polynomial (about
# 1 ulp), 2^n made from its bits. Every step is one LLVM vectorises (floor, conversion, shift,
# bitcast), where a call to ``expf`` would leave the loop scalar.
_EXP_MAX = np.float32(88.3762626647949)     # e^x overflows float32 above this
_EXP_MIN = np.float32(-88.3762626647949)    # from here down, 2^n's bits are those of 0
_LOG2E = np.float32(1.44269504088896341)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_P0 = np.float32(1.9875691500e-4)
_P1 = np.float32(1.3981999507e-3)
_P2 = np.float32(8.3334519073e-3)
_P3 = np.float32(4.1665795894e-2)
_P4 = np.float32(1.6666665459e-1)
_P5 = np.float32(5.0000001201e-1)
_TWO32 = np.float32(2.0)
_Q3, _Q5, _Q7, _Q9, _Q11, _Q13 = (np.float32(1 / k) for k in (3, 5, 7, 9, 11, 13))   # atanh's


@intrinsic
def _f32_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the low 32 bits of the integer ``bits``."""
    sig = types.float32(bits)

    def codegen(context, builder, signature, args):
        value = args[0]
        if signature.args[0].bitwidth > 32:
            value = builder.trunc(value, ir.IntType(32))
        return builder.bitcast(value, ir.FloatType())
    return sig, codegen


def exp_f32(x):
    """e^x for a float32 x, to about 1 ulp down to −87.3 (where float32's normal numbers end),
    0 from about −88 down (2^n is then made from the bits of 0: no branch), and 2.4e38 from 88.4
    on (not inf: the cells' exponents are ≤ 0 by construction)."""
    xc = min(max(x, _EXP_MIN), _EXP_MAX)
    n = np.floor(xc * _LOG2E + _HALF32)               # (a float32: math.floor gives an int)
    r = xc - n * _LN2_HI - n * _LN2_LO
    p = r * _P0 + _P1
    p = r * p + _P2
    p = r * p + _P3
    p = r * p + _P4
    p = r * p + _P5
    e = p * r * r + r + ONE
    return e * _f32_from_bits((np.int32(n) + np.int32(127)) << np.int32(23))


def softplus_f32(x):
    """log(1 + e^x) = max(x, 0) + log1p(u), u = e^(−|x|) in (0, 1]: log1p(u) = 2 atanh(s) with
    s = u / (2 + u) in (0, 1/3], a series in s² whose terms after s¹³ are below float32's
    rounding (no cancellation for a small u, as log(1 + u) would have)."""
    u = exp(-abs(x))                                  # exp_f32 here (see below)
    s = u / (_TWO32 + u)
    s2 = s * s
    q = s2 * _Q13 + _Q11
    q = s2 * q + _Q9
    q = s2 * q + _Q7
    q = s2 * q + _Q5
    q = s2 * q + _Q3
    q = s2 * q + ONE
    return max(x, ZERO) + _TWO32 * s * q


def sigmoid_f64(x):
    """The reference's overflow-free form: exp is only taken of a non-positive number."""
    if x >= 0:
        return ONE / (ONE + math.exp(-x))
    e = math.exp(x)
    return e / (ONE + e)


# ------------------------------------------------------------------ the dispatching stubs

def sigmoid(x):
    """σ(x) = 1 / (1 + exp(−x)); compiled per dtype as described above."""
    return sigmoid_f64(x)


def tanh(x):
    return math.tanh(x)


def relu(x):
    return x if x > ZERO else ZERO


def _is_f32(x):
    return isinstance(x, types.Float) and x.bitwidth == 32


@overload(sigmoid, inline="always")
def _sigmoid(x):
    if _is_f32(x):
        return sigmoid_f32
    return sigmoid_f64


@overload(tanh, inline="always")
def _tanh(x):
    if _is_f32(x):
        return tanh_f32
    return lambda x: math.tanh(x)


@overload(relu, inline="always")
def _relu(x):
    return lambda x: x if x > ZERO else ZERO


def positive(x):
    return (x > ZERO) * ONE


@overload(positive, inline="always")
def _positive(x):
    # a product, not ``ONE if x > ZERO else ZERO``: that conditional, inlined twice into one
    # loop (slstm's forward, whose point two loops call), trips Numba's SSA checks
    return lambda x: (x > ZERO) * ONE


def exp(x):
    return math.exp(x)


@overload(exp, inline="always")
def _exp(x):
    if _is_f32(x):
        return exp_f32
    return lambda x: math.exp(x)


def maximum(a, b):
    return max(a, b)


@overload(maximum, inline="always")
def _maximum(a, b):
    return lambda a, b: max(a, b)


def softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^(−|x|)), as the reference (float32: ``softplus_f32``)."""
    return max(x, ZERO) + math.log1p(math.exp(-abs(x)))


@overload(softplus, inline="always")
def _softplus(x):
    if _is_f32(x):
        return softplus_f32
    return lambda x: max(x, ZERO) + math.log1p(math.exp(-abs(x)))


# What the names a point function may use (``cells/_point.py``) mean in compiled CPU code:
# scalar functions, inlined, with float32 kept float32 (the constants are float32; exp, log and
# sqrt of a float32 are float32 in Numba).
NAMES = {"sigmoid": sigmoid, "tanh": tanh, "relu": relu, "positive": positive, "exp": exp,
         "log": math.log, "sqrt": math.sqrt, "maximum": maximum, "softplus": softplus,
         "ONE": ONE, "ZERO": ZERO, "HALF": _HALF32}


_compiled_points = {}


def compiled_point(f):
    """The point function ``f`` of a cell file, compiled for scalars (``cells/_point.py``)."""
    from ..cells._point import on_target
    return on_target(f, NAMES, pointwise, _compiled_points)


# ------------------------------------------------------------------ small products

@njit(inline="always")
def _rows_contiguous(a):
    return a.strides[1] == a.itemsize


@njit(inline="always")
def _blas_gemm(A, B, out, beta, c0=0):
    """out = A @ B[:, c0:c0 + n] + beta·out through the registered BLAS (``_blas.py``); beta 0
    or 1, n = out's columns."""
    m, k = A.shape
    n = out.shape[1]
    s = A.itemsize
    b = B.ctypes.data + c0 * s
    if s == 4:
        sgemm(101, 111, 111, m, n, k, ONE, A.ctypes.data, A.strides[0] // s, b,
              B.strides[0] // s, ONE if beta else ZERO, out.ctypes.data, out.strides[0] // s)
    else:
        dgemm(101, 111, 111, m, n, k, 1.0, A.ctypes.data, A.strides[0] // s, b,
              B.strides[0] // s, 1.0 if beta else 0.0, out.ctypes.data, out.strides[0] // s)


@njit(inline="always")
def _use_blas(A, B, out):
    return (A.shape[0] >= BLAS_MIN_ROWS and _rows_contiguous(A) and _rows_contiguous(B)
            and _rows_contiguous(out))


@kernel
def matmul_acc(A, B, out):
    """out += A @ B for A (m, k), B (k, n), C-contiguous rows.

    Below ``BLAS_MIN_ROWS`` rows: four rows of A share each load of a row of B (four FMAs per
    load instead of one), and the innermost loop runs along contiguous rows, so LLVM vectorises
    it.
    """
    if _use_blas(A, B, out):
        _blas_gemm(A, B, out, 1)
        return
    m, k = A.shape
    n = B.shape[1]
    i = 0
    while i + 4 <= m:
        for p in range(k):
            a0, a1, a2, a3 = A[i, p], A[i + 1, p], A[i + 2, p], A[i + 3, p]
            for j in range(n):
                b = B[p, j]
                out[i, j] += a0 * b
                out[i + 1, j] += a1 * b
                out[i + 2, j] += a2 * b
                out[i + 3, j] += a3 * b
        i += 4
    for i in range(i, m):                             # the rows left, one at a time
        _row_acc(A, B, out, i)


@njit(inline="always")
def _row_acc(A, B, out, i):
    """out[i] += A[i] @ B, eight rows of B per pass over out[i]: a lone row has no other rows to
    share B's loads with, so it saves on its own loads and stores instead (the streaming step's
    products)."""
    k, n = B.shape
    p = 0
    while p + 8 <= k:
        a0, a1, a2, a3 = A[i, p], A[i, p + 1], A[i, p + 2], A[i, p + 3]
        a4, a5, a6, a7 = A[i, p + 4], A[i, p + 5], A[i, p + 6], A[i, p + 7]
        for j in range(n):
            out[i, j] += ((a0 * B[p, j] + a1 * B[p + 1, j] + a2 * B[p + 2, j] + a3 * B[p + 3, j])
                          + (a4 * B[p + 4, j] + a5 * B[p + 5, j] + a6 * B[p + 6, j]
                             + a7 * B[p + 7, j]))
        p += 8
    for p in range(p, k):
        a = A[i, p]
        for j in range(n):
            out[i, j] += a * B[p, j]


@kernel
def matmul(A, B, out):
    """out = A @ B."""
    if _use_blas(A, B, out):
        _blas_gemm(A, B, out, 0)
        return
    out[:] = 0
    matmul_acc(A, B, out)


@kernel
def matmul_columns(A, B, c0, out):
    """out = A @ B[:, c0:c0 + n], n = out's columns: a window of B's columns read in place.

    The slice ``B[:, c0:c0 + n]`` itself would be typed as a strided array, and LLVM leaves
    loops over it scalar (the reset-before cells' steps, whose products take the gates' and the
    candidate's columns of U). Kept apart from ``matmul``: one loop body for every product made
    the kernels compile seconds slower per variant.
    """
    if _use_blas(A, B, out):
        _blas_gemm(A, B, out, 0, c0)
        return
    m, k = A.shape
    n = out.shape[1]
    c0 = max(c0, 0)          # known >= 0, so is c0 + j: no wraparound check, and LLVM vectorises
    for i in range(m):
        for j in range(n):
            out[i, j] = 0
        p = 0
        while p + 4 <= k:                             # four rows of B per pass over out[i]
            a0, a1, a2, a3 = A[i, p], A[i, p + 1], A[i, p + 2], A[i, p + 3]
            for j in range(n):
                q = c0 + j
                out[i, j] += (a0 * B[p, q] + a1 * B[p + 1, q]) + (a2 * B[p + 2, q]
                                                                  + a3 * B[p + 3, q])
            p += 4
        for p in range(p, k):
            a = A[i, p]
            for j in range(n):
                out[i, j] += a * B[p, c0 + j]


# ------------------------------------------------------------------ products outside the loop

# Below this many inputs per row, ``x W`` goes through a compiled loop: NumPy's ``@`` with one
# input per row is an outer product it computes slowly (the ``stream`` size: ten times slower than
# the loop); from 4 inputs on the two are even, and from 16 on the library wins.
PROJECTION_LOOP_MAX_INPUTS = 2


@kernel
def _project_rows(X, W, out):
    """out = X @ W, row by row (for few columns of X)."""
    n = W.shape[1]
    for i in range(X.shape[0]):
        for j in range(n):
            out[i, j] = 0
        _row_acc(X, W, out, i)


def input_projection(x, W, out=None):
    """``x @ W`` for every step at once: x (T, B, I) -> (T, B, k), into ``out`` if given (a
    ``_scratch`` array, say). The loops add the bias as they read it: ``y += b`` here would be
    one more pass over the whole array, and ``x @ W + b`` a second array."""
    T, B, I = x.shape
    k = W.shape[1]
    X = x.reshape(T * B, I)
    y = np.empty((T * B, k), x.dtype) if out is None else out.reshape(T * B, k)
    if I <= PROJECTION_LOOP_MAX_INPUTS:
        _project_rows(np.ascontiguousarray(X), np.ascontiguousarray(W), y)
    else:
        np.matmul(X, W, out=y)
    return y.reshape(T, B, k)


def column_sums(a):
    """The sum of ``a`` over every axis but the last (a bias gradient over all steps and rows),
    as one BLAS product ``ones @ a``: NumPy adds the rows one after another, three times
    slower."""
    rows = a.reshape(-1, a.shape[-1])
    return np.ones(rows.shape[0], a.dtype) @ rows
