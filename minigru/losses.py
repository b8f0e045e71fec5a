"""Losses as plain functions: each returns ``(loss, grad)``, ``grad = dLoss/d(first argument)``.

``loss`` is a NumPy scalar and ``grad`` an array of the first argument's shape, both of its dtype.
``reduction="mean"`` divides by the number of terms, ``"sum"`` does not; ``c`` below is that
divisor (1 for ``"sum"``). Targets must have exactly the expected shape: nothing is broadcast.

Mean squared error, ``p`` predictions, ``t`` targets, ``N`` elements::

    L = sum (p - t)^2 / c                      c = N
    dL/dp = 2 (p - t) / c

Softmax cross-entropy over the last axis, ``z (..., C)`` logits, ``y (...)`` class indices,
``m (...)`` the mask of kept entries (all ones without ``mask``)::

    log_softmax(z)_j = z_j - logsumexp(z),    logsumexp(z) = max z + log sum_j exp(z_j - max z)
    L = - sum_n m_n log_softmax(z_n)_{y_n} / c    c = sum_n m_n   (PyTorch's ignore_index mean)
    dL/dz_n = m_n (softmax(z_n) - onehot(y_n)) / c

Binary cross-entropy with logits, ``x`` logits, ``t`` targets in [0, 1]::

    L = sum [ -t log s(x) - (1 - t) log(1 - s(x)) ] / c,   s = sigmoid,   c = N
      = sum [ max(x, 0) - x t + log1p(exp(-|x|)) ] / c      (the same, and never overflows)
    dL/dx = (s(x) - t) / c

Subtracting the maximum (log-sum-exp) and using ``exp(-|x|) <= 1`` keep every exponential in
[0, 1]: logits of ±1000 give finite losses and gradients. An exponential that underflows to 0
there is the right answer, so underflow is not reported even under ``np.errstate(all="raise")``.
"""

import numpy as np

from ._check import FLOAT_DTYPES

REDUCTIONS = ("mean", "sum")


# ---------------------------------------------------------------- argument checks
def _float_array(name, a):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {a.dtype}")
    return a


def _like(name, a, ref_name, ref):
    """``a`` must be a float array of exactly the shape and dtype of ``ref``."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.shape != ref.shape:
        raise ValueError(f"{name} must have the shape of {ref_name} {ref.shape}, got {a.shape} "
                         f"(nothing is broadcast)")
    if a.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {a.dtype} but {ref_name} is {ref.dtype}: "
                        f"cast one of them (e.g. {name}.astype(np.{ref.dtype}))")
    return a


def _reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def _nonempty(name, a):
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape}): its mean is undefined")


# ---------------------------------------------------------------- softmax
def log_softmax(logits, axis=-1):
    """``logits - logsumexp(logits)`` along ``axis``, stable for any finite logits."""
    _float_array("logits", logits)
    shifted = logits - np.max(logits, axis=axis, keepdims=True)    # <= 0, max is 0
    with np.errstate(under="ignore"):
        lse = np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))   # sum >= 1
    return shifted - lse


def softmax(logits, axis=-1):
    """``exp(logits) / sum exp(logits)`` along ``axis``, stable for any finite logits."""
    _float_array("logits", logits)
    with np.errstate(under="ignore"):
        e = np.exp(logits - np.max(logits, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def sigmoid(x):
    """``1 / (1 + exp(-x))`` without overflow: ``e = exp(-|x|)`` is in (0, 1]."""
    _float_array("x", x)
    with np.errstate(under="ignore"):
        e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


# ---------------------------------------------------------------- losses
def mse(pred, target, reduction="mean"):
    """Mean squared error; ``(loss, dL/dpred)``. ``target`` of the shape and dtype of ``pred``."""
    _float_array("pred", pred)
    _like("target", target, "pred", pred)
    c = _divisor(reduction, pred.size, "pred", pred)
    diff = pred - target
    loss = np.sum(diff * diff) / c
    grad = (2 / c) * diff                                      # d(diff^2)/dp = 2 diff
    return pred.dtype.type(loss), grad.astype(pred.dtype, copy=False)


def cross_entropy(logits, target, mask=None, reduction="mean", backend="numpy"):
    """Softmax cross-entropy over the last axis; ``(loss, dL/dlogits)``.

    ``logits (..., C)`` float, ``target (...)`` integer class indices in [0, C). ``mask (...)``,
    bool or 0/1 numbers, keeps the entries where it is true: padded steps of a batch are left out
    of the sum and of the count, like PyTorch's ``ignore_index`` (their targets are not looked at
    and their gradient is 0). With ``reduction="mean"`` at least one entry must be kept.
    ``backend="numba"`` computes the same in one compiled pass per row
    (``minigru/numba/_parts.py``); the code below is the reference it is tested against.
    """
    numba = _backend(backend)
    _float_array("logits", logits)
    if logits.ndim == 0:
        raise ValueError("logits must have shape (..., C), got a 0-d array")
    _class_target(target, logits)
    keep = np.ones(target.shape, bool) if mask is None else _mask(mask, logits)
    _class_range(target, keep, logits.shape[-1])
    c = _divisor(reduction, int(np.count_nonzero(keep)), "logits", logits)
    if c == 0:
        raise ValueError("every entry is masked: the mean cross-entropy over no entries is "
                         "undefined (keep at least one, or use reduction='sum')")

    if numba:
        from .numba import _parts
        return _parts.cross_entropy(logits, np.where(keep, target, 0), keep, c)

    y = np.where(keep, target, 0)[..., None]                   # masked entries: any valid class
    logp = log_softmax(logits)                                 # (..., C)
    nll = -np.take_along_axis(logp, y, axis=-1)[..., 0]        # (...,)
    loss = np.sum(np.where(keep, nll, 0)) / c                  # where, not *: NaN padding stays out

    # d(-log_softmax_y)/dz = softmax - onehot(y)
    with np.errstate(under="ignore"):
        grad = np.exp(logp)                                    # softmax, (..., C)
    np.put_along_axis(grad, y, np.take_along_axis(grad, y, axis=-1) - 1, axis=-1)
    grad = np.where(keep[..., None], grad / c, 0)
    return logits.dtype.type(loss), grad.astype(logits.dtype, copy=False)


def bce_with_logits(logits, target, reduction="mean", backend="numpy"):
    """Binary cross-entropy of ``sigmoid(logits)``; ``(loss, dL/dlogits)``.

    ``target`` of the shape and dtype of ``logits``, values in [0, 1] (soft labels allowed).
    ``backend="numba"``: the same, compiled, in one pass (``minigru/numba/_parts.py``).
    """
    numba = _backend(backend)
    _float_array("logits", logits)
    _like("target", target, "logits", logits)
    if target.size and not (np.all(target >= 0) and np.all(target <= 1)):
        bad = target[(target < 0) | (target > 1) | np.isnan(target)][0]
        raise ValueError(f"target must be in [0, 1], got {bad}")
    c = _divisor(reduction, logits.size, "logits", logits)
    if numba:
        from .numba import _parts
        return _parts.bce_with_logits(logits, target, c)
    with np.errstate(under="ignore"):
        softplus = np.log1p(np.exp(-np.abs(logits)))           # log(1 + e^-|x|), in [0, log 2]
    loss = np.sum(np.maximum(logits, 0) - logits * target + softplus) / c
    grad = (sigmoid(logits) - target) / c
    return logits.dtype.type(loss), grad.astype(logits.dtype, copy=False)


# ---------------------------------------------------------------- helpers
BACKENDS = ("numpy", "numba")


def parts_backend(backend):
    """The backend of the parts around a cell of ``backend`` (the losses, the embedding):
    compiled with a compiled cell, the NumPy reference with the NumPy cell."""
    return "numpy" if backend == "numpy" else "numba"


def _backend(backend):
    """True for the compiled twin, False for the NumPy reference."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend == "numba"


def _divisor(reduction, count, name, a):
    if _reduction(reduction) == "sum":
        return 1
    _nonempty(name, a)
    return count


def _class_target(target, logits):
    """Integer class indices of shape ``logits.shape[:-1]``."""
    if not isinstance(target, np.ndarray):
        raise TypeError(f"target must be a numpy.ndarray of class indices, "
                        f"got {type(target).__name__}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"target must be an integer array of class indices, "
                        f"got dtype {target.dtype}")
    if target.shape != logits.shape[:-1]:
        raise ValueError(f"target must have shape logits.shape[:-1] = {logits.shape[:-1]} "
                         f"(logits {logits.shape}), got {target.shape}")


def _class_range(target, keep, C):
    """Every kept target in [0, C); masked entries may hold anything (a padding label)."""
    bad = ((target < 0) | (target >= C)) & keep
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"target must hold class indices in [0, {C - 1}] (C = {C}), got "
                         f"target[{', '.join(map(str, where))}] = {target[where]}")


def _mask(mask, logits):
    """The mask as bool, shape ``logits.shape[:-1]``; numbers must all be 0 or 1."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a numpy.ndarray (bool or 0/1), got {type(mask).__name__}")
    if mask.shape != logits.shape[:-1]:
        raise ValueError(f"mask must have shape logits.shape[:-1] = {logits.shape[:-1]}, "
                         f"got {mask.shape}")
    if mask.dtype == bool:
        return mask
    if mask.dtype.kind not in "iuf":
        raise TypeError(f"mask must be bool or 0/1 numbers, got dtype {mask.dtype}")
    if not np.all((mask == 0) | (mask == 1)):
        bad = mask[(mask != 0) & (mask != 1)][0]
        raise ValueError(f"mask must hold only 0 and 1 (or be bool), got {bad}")
    return mask == 1
