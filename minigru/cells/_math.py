"""The normalisations of the NumPy reference (the point functions' vocabulary is ``_point.py``):
a mean and variance over an axis, and its backward."""

import numpy as np


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
