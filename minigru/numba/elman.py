"""rnn compiled with Numba: a checked copy of ``minigru/cells/elman.py`` (same cache)."""

import numpy as np

from ._math import ONE, column_sums, input_projection, kernel, matmul, matmul_acc, pointwise, tanh
from ._scratch import scratch
from ._step import stepper


def rnn_point(a):
    return tanh(a)


def rnn_point_backward(dh, h_new):
    return dh * (ONE - h_new * h_new)                 # through tanh, from its output


_rnn_point = pointwise(rnn_point)
_rnn_point_backward = pointwise(rnn_point_backward)


@kernel
def forward_loop(xw, bias, U, hs):
    """xw (T, B, H) = x W, precomputed; the bias is added here."""
    T, B, H = xw.shape
    hu = np.empty((B, H), xw.dtype)
    for t in range(T):
        matmul(hs[t], U, hu)
        for b in range(B):
            for j in range(H):
                hs[t + 1, b, j] = _rnn_point(xw[t, b, j] + bias[j] + hu[b, j])


@kernel
def backward_loop(UT, hs, dys, dh_next, da):
    T, B, H = da.shape
    for t in range(T - 1, -1, -1):
        for b in range(B):
            for j in range(H):
                da[t, b, j] = _rnn_point_backward(dys[t, b, j] + dh_next[b, j], hs[t + 1, b, j])
                dh_next[b, j] = 0
        matmul_acc(da[t], UT, dh_next)                # through h U


def forward(p, x, h0, training=True):
    T, B, I = x.shape
    H = h0.shape[1]
    xw = input_projection(x, p["W"], scratch("xw", (T, B, H), x.dtype))
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    forward_loop(xw, p["b"], np.ascontiguousarray(p["U"]), hs)
    return hs[1:].copy(), hs[T].copy(), {"x": x, "hs": hs}


def backward(p, cache, dys, dh_T):
    x, hs = cache["x"], cache["hs"]
    T, B, H = dys.shape
    I = x.shape[2]
    da = scratch("dxw", (T, B, H), x.dtype)
    dh_next = np.array(dh_T, copy=True)
    backward_loop(np.ascontiguousarray(p["U"].T), hs, np.ascontiguousarray(dys), dh_next, da)
    dA = da.reshape(T * B, H)
    grads = {"W": x.reshape(T * B, I).T @ dA, "U": hs[:-1].reshape(T * B, H).T @ dA,
             "b": column_sums(dA)}
    return (dA @ p["W"].T).reshape(T, B, I), dh_next, grads


@kernel
def step_kernel(x, W, b, U, h, h_new):
    B, H = h.shape
    xw = np.empty((B, H), x.dtype)
    matmul(x, W, xw)
    matmul_acc(h, U, xw)
    for i in range(B):
        for j in range(H):
            h_new[i, j] = _rnn_point(xw[i, j] + b[j])


step, prepare_step = stepper(step_kernel, lambda p, h: (p["W"], p["b"], p["U"]))

FUNCTIONS = {"rnn": (forward, backward, step, prepare_step)}
