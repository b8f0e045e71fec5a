"""Pointwise functions shared by the NumPy cells.

Derivatives are taken from the saved outputs, as every cell's backward does:
``sigmoid' = s * (1 - s)``, ``tanh' = 1 - t**2``, ``relu' = (out > 0)``.
"""

import numpy as np


def sigmoid(a):
    """Logistic sigmoid without overflow: exp is only ever taken of a non-positive number."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)


def zeros_like_state(state):
    if isinstance(state, tuple):
        return tuple(np.zeros_like(s) for s in state)
    return np.zeros_like(state)


def split(a, sizes):
    """Split the last axis of ``a`` into consecutive blocks of the given sizes."""
    return np.split(a, np.cumsum(sizes)[:-1], axis=-1)


def normalize(v, eps, axis):
    """(v - mean) / sqrt(var + eps) over ``axis`` (biased variance); returns vhat and 1/std."""
    mu = v.mean(axis=axis, keepdims=True)
    var = v.var(axis=axis, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    return (v - mu) * inv_std, inv_std


def normalize_backward(dvhat, vhat, inv_std, axis):
    """Backward of ``normalize``: d/dv of (v - mean) * inv_std, through mean and variance.

    dv = inv_std * (dvhat - mean(dvhat) - vhat * mean(dvhat * vhat))
    """
    mean_d = dvhat.mean(axis=axis, keepdims=True)
    mean_dv = (dvhat * vhat).mean(axis=axis, keepdims=True)
    return inv_std * (dvhat - mean_d - vhat * mean_dv)
