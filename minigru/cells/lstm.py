"""lstm -- Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000
(PyTorch ``nn.LSTM``, gate order i, f, g, o)::

    [a_i|a_f|a_g|a_o] = x W + h U + b
    i, f, o = σ(a_i), σ(a_f), σ(a_o);   g = tanh(a_g)
    c' = f ⊙ c + i ⊙ g
    h' = o ⊙ tanh(c')

    state (h, c);  W (I,4H)  U (H,4H)  b (4H)
    From PyTorch: W = weight_ih.T, U = weight_hh.T, b = bias_ih + bias_hh (no proj_size).

The cell state c is carried by addition, so its gradient through time is multiplied only by f:
the "constant error carousel" that lets the LSTM learn long dependencies.

Cache, T steps, B batch, H hidden:
    x (T, B, I);  hs, cs (T+1, B, H) = states 0 .. T;
    gates (T, B, 4H) = [i | f | g | o] after their nonlinearities;  tc (T, B, H) = tanh(c')
"""

import numpy as np

from ._math import sigmoid
from ._variant import Variant, uniform_init



def shapes(input_size, hidden_size):
    I, H = input_size, hidden_size
    return {"W": (I, 4 * H), "U": (H, 4 * H), "b": (4 * H,)}


def sizes(p):
    return {"input_size": p["W"].shape[0], "hidden_size": p["U"].shape[0]}


def init(input_size, hidden_size, rng, dtype):
    return uniform_init(shapes(input_size, hidden_size), hidden_size, rng, dtype)


def _cell(xw_t, h, c, U):
    """One step from the precomputed x W + b: returns h', c', the gates and tanh(c')."""
    H = h.shape[1]
    a = xw_t + h @ U                                  # (B, 4H)
    gates = np.empty_like(a)
    gates[:, :2 * H] = sigmoid(a[:, :2 * H])          # i, f
    gates[:, 2 * H:3 * H] = np.tanh(a[:, 2 * H:3 * H])  # g
    gates[:, 3 * H:] = sigmoid(a[:, 3 * H:])          # o
    i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
    c_new = f * c + i * g
    tc = np.tanh(c_new)
    return o * tc, c_new, gates, tc


def forward(p, x, state0, training=True):
    U = p["U"]
    h0, c0 = state0
    T, B, _ = x.shape
    H = h0.shape[1]
    xw = x @ p["W"] + p["b"]                          # (T, B, 4H), every step in one product
    hs, cs = np.empty((T + 1, B, H), x.dtype), np.empty((T + 1, B, H), x.dtype)
    hs[0], cs[0] = h0, c0
    gates = np.empty((T, B, 4 * H), x.dtype)
    tc = np.empty((T, B, H), x.dtype)
    for t in range(T):
        hs[t + 1], cs[t + 1], gates[t], tc[t] = _cell(xw[t], hs[t], cs[t], U)
    cache = {"x": x, "hs": hs, "cs": cs, "gates": gates, "tc": tc}
    return hs[1:].copy(), (hs[T].copy(), cs[T].copy()), cache


def backward(p, cache, dys, dstate):
    W, U = p["W"], p["U"]
    x, hs, cs, gates, tc = (cache[k] for k in ("x", "hs", "cs", "gates", "tc"))
    T, B, H = tc.shape
    da = np.empty((T, B, 4 * H), x.dtype)             # dL/d(x W + h U + b): [dai|daf|dag|dao]
    dh_next, dc_next = dstate[0].copy(), dstate[1].copy()
    for t in reversed(range(T)):
        i, f, g, o = (gates[t, :, k * H:(k + 1) * H] for k in range(4))
        dh = dys[t] + dh_next                         # h_t feeds the output and step t+1
        # h' = o * tanh(c')
        do = dh * tc[t]
        dc = dc_next + dh * o * (1 - tc[t] ** 2)      # c_t feeds h_t and c_{t+1}
        # c' = f*c + i*g
        di, df, dg = dc * g, dc * cs[t], dc * i
        dc_next = dc * f
        da[t, :, :H] = di * i * (1 - i)               # backprop through the sigmoids and tanh
        da[t, :, H:2 * H] = df * f * (1 - f)
        da[t, :, 2 * H:3 * H] = dg * (1 - g ** 2)
        da[t, :, 3 * H:] = do * o * (1 - o)
        dh_next = da[t] @ U.T                         # through h U
    I = x.shape[2]
    dA = da.reshape(T * B, 4 * H)
    grads = {
        "W": x.reshape(T * B, I).T @ dA,
        "U": hs[:-1].reshape(T * B, H).T @ dA,
        "b": dA.sum(axis=0),
    }
    return da @ W.T, (dh_next, dc_next), grads


def step(p, x_t, state):
    h, c, _, _ = _cell(x_t @ p["W"] + p["b"], state[0], state[1], p["U"])
    return h, (h, c)


VARIANTS = (
    Variant(name="lstm", paper="Hochreiter & Schmidhuber 1997 (PyTorch nn.LSTM)",
            equations="i,f,o=σ(·), g=tanh(xW+hU+b); c'=f⊙c+i⊙g; h'=o⊙tanh(c')",
            shapes=shapes, sizes=sizes, init=init, forward=forward, backward=backward, step=step,
            lstm_state=True, bias_params=("b",)),
)
