"""The parts of a model around the cell, compiled: the losses and the embedding's backward.

Each kernel is the compiled twin of a NumPy function that stays the readable reference
(``minigru/losses.py``, ``minigru/layers.py``), and is tested against it
(``tests/test_parts.py``). They are reached through a ``backend="numba"`` keyword of those
functions and modules; the checks of the arguments stay in the NumPy code, in front of both.

Why they pay: in a byte-level language model (``minigru bench --workload bytelm``) the
reference's cross-entropy, made of NumPy's whole-array passes (max, subtract, exp, sum, log,
take, exp again, put, where, divide), took more of the training step than the GRU did. Here a
row of logits is read once for its maximum and once for its exponentials, and its gradient is
written once.

Dimension legend: N rows (every (t, b) of a batch), C classes, D embedding width.
"""

import math

import numpy as np

from ._math import ZERO, exp, kernel, row_kernel, softplus


@row_kernel
def cross_entropy_rows(z, target, keep, scale, grad):
    """Softmax cross-entropy of each kept row of ``z`` (N, C) against its class ``target[n]``:
    returns the sum of the kept rows' losses, and writes ``grad`` (N, C) = scale ⊙ (softmax −
    onehot) on kept rows, 0 on the others. (Its row sums may add in any order: ``row_kernel``.)

    Per row, as the reference: m = max z, s = Σ e^{z − m}, loss = log s − (z_y − m); the
    gradient of −log softmax_y is softmax − onehot(y), and softmax = e^{z − m} / s."""
    N, C = z.shape
    total = 0.0                                        # (float64, whatever the dtype)
    for n in range(N):
        if not keep[n]:
            for c in range(C):
                grad[n, c] = ZERO
            continue
        m = z[n, 0]
        for c in range(1, C):
            m = max(m, z[n, c])
        s = z.dtype.type(0)
        for c in range(C):                            # e^{z − m} ≤ 1: nothing overflows
            e = exp(z[n, c] - m)
            grad[n, c] = e
            s += e
        y = target[n]
        total += math.log(s) - (z[n, y] - m)
        inv = scale / s
        for c in range(C):
            grad[n, c] *= inv
        grad[n, y] -= scale
    return total


@row_kernel
def bce_with_logits_rows(z, t, scale, grad):
    """Binary cross-entropy of sigmoid(z) against t, elementwise over the flat arrays ``z``,
    ``t`` (n,): returns Σ max(z, 0) − z t + log(1 + e^{−|z|}), and writes ``grad`` = scale ⊙
    (σ(z) − t). softplus(z) = max(z, 0) + log(1 + e^{−|z|}) and σ(z) = e^{z − softplus(z)}:
    one exponential and one logarithm's worth per element, neither of a positive number."""
    total = 0.0
    for k in range(z.shape[0]):
        sp = softplus(z[k])
        total += sp - z[k] * t[k]
        grad[k] = scale * (exp(z[k] - sp) - t[k])
    return total


@kernel
def scatter_add_rows(out, idx, rows):
    """out[idx[n]] += rows[n] for every n, in order (so repeated indices all count, as with
    ``np.add.at``, and in the same order: the sums are the same to the last bit)."""
    D = rows.shape[1]
    for n in range(idx.shape[0]):
        k = idx[n]
        for d in range(D):
            out[k, d] += rows[n, d]


def cross_entropy(logits, target, keep, c):
    """(loss, grad) as ``losses.cross_entropy`` returns them, its arguments checked there."""
    C = logits.shape[-1]
    z = np.ascontiguousarray(logits).reshape(-1, C)
    grad = np.empty(z.shape, logits.dtype)
    total = cross_entropy_rows(z, np.ascontiguousarray(target, np.int64).reshape(-1),
                               np.ascontiguousarray(keep).reshape(-1), logits.dtype.type(1 / c),
                               grad)
    return logits.dtype.type(total / c), grad.reshape(logits.shape)


def bce_with_logits(logits, target, c):
    """(loss, grad) as ``losses.bce_with_logits`` returns them, its arguments checked there."""
    z = np.ascontiguousarray(logits).reshape(-1)
    grad = np.empty(z.shape, logits.dtype)
    total = bce_with_logits_rows(z, np.ascontiguousarray(target, logits.dtype).reshape(-1),
                                 logits.dtype.type(1 / c), grad)
    return logits.dtype.type(total / c), grad.reshape(logits.shape)
