"""rnn -- the Elman network with tanh (Elman 1990; PyTorch ``nn.RNN``, nonlinearity tanh)::

    h' = tanh(x W + h U + b)

    W (I,H)  U (H,H)  b (H)
    From PyTorch: W = weight_ih.T, U = weight_hh.T, b = bias_ih + bias_hh.

The baseline every gate was invented to fix: its gradient through time is a product of
``diag(1 − h'²) U.T`` factors, which vanish or explode (see docs/bptt.md).

Cache, T steps, B batch, H hidden:
    x (T, B, I);  hs (T+1, B, H) = h_0 .. h_T  (tanh' = 1 − h'² comes from the saved output)
"""

import numpy as np

from ._variant import Variant, uniform_init



def shapes(input_size, hidden_size):
    I, H = input_size, hidden_size
    return {"W": (I, H), "U": (H, H), "b": (H,)}


def sizes(p):
    return {"input_size": p["W"].shape[0], "hidden_size": p["U"].shape[0]}


def init(input_size, hidden_size, rng, dtype):
    return uniform_init(shapes(input_size, hidden_size), hidden_size, rng, dtype)


def forward(p, x, h0, training=True):
    U = p["U"]
    T, B, _ = x.shape
    H = h0.shape[1]
    xw = x @ p["W"] + p["b"]                          # (T, B, H), every step in one product
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    for t in range(T):
        hs[t + 1] = np.tanh(xw[t] + hs[t] @ U)
    cache = {"x": x, "hs": hs}
    return hs[1:].copy(), hs[T].copy(), cache


def backward(p, cache, dys, dh_T):
    W, U = p["W"], p["U"]
    x, hs = cache["x"], cache["hs"]
    T, B, H = dys.shape
    da = np.empty((T, B, H), x.dtype)                 # dL/d(x W + h U + b)
    dh_next = dh_T.copy()
    for t in reversed(range(T)):
        dh = dys[t] + dh_next                         # h_t feeds the output and step t+1
        da[t] = dh * (1 - hs[t + 1] ** 2)             # backprop through tanh
        dh_next = da[t] @ U.T                         # through h U
    I = x.shape[2]
    dA = da.reshape(T * B, H)
    grads = {
        "W": x.reshape(T * B, I).T @ dA,
        "U": hs[:-1].reshape(T * B, H).T @ dA,
        "b": dA.sum(axis=0),
    }
    return da @ W.T, dh_next, grads


def step(p, x_t, h):
    h = np.tanh(x_t @ p["W"] + h @ p["U"] + p["b"])
    return h, h


VARIANTS = (
    Variant(name="rnn", paper="Elman 1990 (PyTorch nn.RNN)", equations="h'=tanh(xW+hU+b)",
            shapes=shapes, sizes=sizes, init=init, forward=forward, backward=backward, step=step,
            bias_params=("b",)),
)
