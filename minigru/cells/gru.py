"""The GRU family: gru (reset after the product), gru_v3 (reset before), gru1, gru2, gru3.

Convention (Cho et al. 2014, PyTorch, Keras, cuDNN): z is the share of the old state kept.

gru -- Cho et al. 2014 (arXiv 1406.1078 v1); PyTorch ``nn.GRU``, cuDNN, Keras
``reset_after=True``; the seed comparison's "GRU4 / native"::

    r  = σ(x W_r + h U_r + b_r)
    z  = σ(x W_z + h U_z + b_z)
    n  = tanh(x W_n + b_n + r ⊙ (h U_n + c))
    h' = z ⊙ h + (1 − z) ⊙ n

    W (I,3H)  U (H,3H)  b (3H)  c (H);  blocks r, z, n

gru_v3 -- Cho et al. 2014 (v3), reset *before* the product: the textbook GRU (d2l), Keras
``reset_after=False``, the seed comparison's "GRU0"::

    r  = σ(x W_r + h U_r + b_r)
    z  = σ(x W_z + h U_z + b_z)
    n  = tanh(x W_n + (r ⊙ h) U_n + b_n)
    h' = z ⊙ h + (1 − z) ⊙ n

    W (I,3H)  U (H,3H)  b (3H)

gru1, gru2, gru3 -- Dey & Salem 2017, "Gate-variants of Gated Recurrent Unit (GRU) neural
networks". gru_v3's candidate and update; only what the gates see changes, and the parameters
the gates no longer use are gone (``W`` is ``W_n`` in all three)::

    gru1:  r = σ(h U_r + b_r),  z = σ(h U_z + b_z)     W (I,H)  U (H,3H)  b (3H)
    gru2:  r = σ(h U_r),        z = σ(h U_z)           W (I,H)  U (H,3H)  b (H)  (b is b_n)
    gru3:  r = σ(b_r),          z = σ(b_z)             W (I,H)  U (H,H)   b (3H) (U is U_n)

The four reset-before variants share one forward and one backward: each parameter is split into
its gate part (absent where the variant has none) and its candidate part ``W_n, U_n, b_n``
(``_gated.py``, a layout the MGU family shares); each variant's record at the end of this file
says what its gates see: (x W_g, h U_g, b_g).

Cache (what the backward needs), T steps, B batch, H hidden:
    x (T, B, I);  hs (T+1, B, H) = h_0 .. h_T;  r, z, n (T, B, H);
    gru only: hn (T, B, H) = h U_n + c, the term the reset gate multiplies.
"""

import numpy as np

from . import _gated
from ._math import sigmoid
from ._variant import Variant, uniform_init

CITATION_CHO = "Cho et al. 2014, arXiv 1406.1078"
CITATION_DEY = "Dey & Salem 2017, arXiv 1701.05923"


# ============================================================================ gru (reset after)

def gru_shapes(input_size, hidden_size):
    I, H = input_size, hidden_size
    return {"W": (I, 3 * H), "U": (H, 3 * H), "b": (3 * H,), "c": (H,)}


def gru_init(input_size, hidden_size, rng, dtype):
    return uniform_init(gru_shapes(input_size, hidden_size), hidden_size, rng, dtype)


def _gru_cell(xw_t, h, U, c):
    """One step from the precomputed x W + b: returns h' and what the backward needs."""
    H = h.shape[1]
    hu = h @ U                                        # (B, 3H)
    r = sigmoid(xw_t[:, :H] + hu[:, :H])
    z = sigmoid(xw_t[:, H:2 * H] + hu[:, H:2 * H])
    hn = hu[:, 2 * H:] + c                            # reset acts on h U_n + c, after the product
    n = np.tanh(xw_t[:, 2 * H:] + r * hn)
    return z * h + (1 - z) * n, r, z, n, hn


def gru_forward(p, x, h0, training=True):
    W, U, c = p["W"], p["U"], p["c"]
    T, B, _ = x.shape
    H = h0.shape[1]
    xw = x @ W + p["b"]                               # (T, B, 3H), every step in one product
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    r, z, n, hn = (np.empty((T, B, H), x.dtype) for _ in range(4))
    for t in range(T):
        hs[t + 1], r[t], z[t], n[t], hn[t] = _gru_cell(xw[t], hs[t], U, c)
    cache = {"x": x, "hs": hs, "r": r, "z": z, "n": n, "hn": hn}
    return hs[1:].copy(), hs[T].copy(), cache


def gru_backward(p, cache, dys, dh_T):
    W, U = p["W"], p["U"]
    x, hs, r, z, n, hn = (cache[k] for k in ("x", "hs", "r", "z", "n", "hn"))
    T, B, H = n.shape
    dxw = np.empty((T, B, 3 * H), x.dtype)            # dL/d(x W + b): [dar | daz | dan]
    dhu = np.empty((T, B, 3 * H), x.dtype)            # dL/d(h U):     [dar | daz | dhn]
    dh_next = dh_T.copy()
    for t in reversed(range(T)):
        dh = dys[t] + dh_next                         # h_t feeds the output and step t+1
        # h' = z*h + (1-z)*n
        dz = dh * (hs[t] - n[t])
        dn = dh * (1 - z[t])
        # n = tanh(a_n + r*hn)
        dan = dn * (1 - n[t] ** 2)                    # backprop through tanh
        dr = dan * hn[t]
        dhn = dan * r[t]
        dar = dr * r[t] * (1 - r[t])                  # backprop through sigmoid
        daz = dz * z[t] * (1 - z[t])
        dxw[t] = np.concatenate([dar, daz, dan], axis=1)
        dhu[t] = np.concatenate([dar, daz, dhn], axis=1)
        dh_next = dh * z[t] + dhu[t] @ U.T            # direct path + through h U
    # parameter gradients: one product each over all T*B rows
    I = x.shape[2]
    grads = {
        "W": x.reshape(T * B, I).T @ dxw.reshape(T * B, 3 * H),
        "U": hs[:-1].reshape(T * B, H).T @ dhu.reshape(T * B, 3 * H),
        "b": dxw.sum(axis=(0, 1)),
        "c": dhu[:, :, 2 * H:].sum(axis=(0, 1)),
    }
    return dxw @ W.T, dh_next, grads


def gru_step(p, x_t, h):
    h, *_ = _gru_cell(x_t @ p["W"] + p["b"], h, p["U"], p["c"])
    return h, h


# ========================================================== gru_v3, gru1..gru3 (reset before)

def _v3_cell(ag_t, xn_t, h, Ug, Un):
    """One step given the gates' and the candidate's input terms; returns h', r, z, n."""
    H = h.shape[1]
    if Ug is not None:
        ag_t = ag_t + h @ Ug                          # (B, 2H)
    rz = sigmoid(ag_t)
    r, z = rz[..., :H], rz[..., H:]
    n = np.tanh(xn_t + (r * h) @ Un)                  # reset acts on h, before the product
    return z * h + (1 - z) * n, r, z, n


def v3_forward(p, x, h0, training=True):
    parts = _gated.split(p)
    (Ug, Un), (_, Wn), (_, bn) = parts["U"], parts["W"], parts["b"]
    T, B, _ = x.shape
    H = h0.shape[1]
    ag = _gated.gate_inputs(x, parts, 2 * H)         # (T, B, 2H)
    xn = x @ Wn + bn                                  # (T, B, H)
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    r, z, n = (np.empty((T, B, H), x.dtype) for _ in range(3))
    for t in range(T):
        hs[t + 1], r[t], z[t], n[t] = _v3_cell(ag[t], xn[t], hs[t], Ug, Un)
    cache = {"x": x, "hs": hs, "r": r, "z": z, "n": n}
    return hs[1:].copy(), hs[T].copy(), cache


def v3_backward(p, cache, dys, dh_T):
    parts = _gated.split(p)
    (Wg, Wn), (Ug, Un), (bg, _) = parts["W"], parts["U"], parts["b"]
    x, hs, r, z, n = (cache[k] for k in ("x", "hs", "r", "z", "n"))
    T, B, H = n.shape
    dag = np.empty((T, B, 2 * H), x.dtype)            # dL/d(gate pre-activations): [dar | daz]
    dan = np.empty((T, B, H), x.dtype)                # dL/d(candidate pre-activation)
    dh_next = dh_T.copy()
    for t in reversed(range(T)):
        dh = dys[t] + dh_next
        # h' = z*h + (1-z)*n
        dz = dh * (hs[t] - n[t])
        dn = dh * (1 - z[t])
        dh_next = dh * z[t]
        # n = tanh(a_n + (r*h) U_n)
        dan[t] = dn * (1 - n[t] ** 2)                 # backprop through tanh
        drh = dan[t] @ Un.T                           # through the product (r*h) U_n
        dr = drh * hs[t]
        dh_next += drh * r[t]
        dag[t, :, :H] = dr * r[t] * (1 - r[t])        # backprop through sigmoid
        dag[t, :, H:] = dz * z[t] * (1 - z[t])
        if Ug is not None:
            dh_next += dag[t] @ Ug.T                  # the gates saw h through U_g
    I = x.shape[2]
    X = x.reshape(T * B, I)
    Hp = hs[:-1].reshape(T * B, H)                    # h_{t-1} for every step
    dA_g, dA_n = dag.reshape(T * B, 2 * H), dan.reshape(T * B, H)
    g = {  # gate part, candidate part of each gradient
        "W": (X.T @ dA_g if Wg is not None else None, X.T @ dA_n),
        "U": (Hp.T @ dA_g if Ug is not None else None, (r * hs[:-1]).reshape(T * B, H).T @ dA_n),
        "b": (dA_g.sum(axis=0) if bg is not None else None, dA_n.sum(axis=0)),
    }
    grads = _gated.merge(g)
    dx = dan @ Wn.T
    if Wg is not None:
        dx += dag @ Wg.T
    return dx, dh_next, grads


def v3_step(p, x_t, h):
    parts = _gated.split(p)
    ag = _gated.gate_inputs(x_t[None], parts, 2 * p["U"].shape[0])[0]
    (Ug, Un), (_, Wn), (_, bn) = parts["U"], parts["W"], parts["b"]
    h, *_ = _v3_cell(ag, x_t @ Wn + bn, h, Ug, Un)
    return h, h


def _v3_variant(name, paper, equations, sees):
    return _gated.variant(name, paper, equations, gates=2, sees=sees,
                          forward=v3_forward, backward=v3_backward, step=v3_step)


_UPDATE = "n=tanh(xW_n+(r⊙h)U_n+b_n); h'=z⊙h+(1-z)⊙n"

VARIANTS = (
    Variant(name="gru", paper="Cho et al. 2014 v1 (PyTorch nn.GRU)",
            equations="r,z=σ(xW+hU+b); n=tanh(xW_n+b_n+r⊙(hU_n+c)); h'=z⊙h+(1-z)⊙n",
            shapes=gru_shapes, sizes=_gated.sizes, init=gru_init,
            forward=gru_forward, backward=gru_backward, step=gru_step, bias_params=("b", "c")),
    _v3_variant("gru_v3", "Cho et al. 2014 v3 (textbook GRU)", "r,z=σ(xW+hU+b); " + _UPDATE,
                (True, True, True)),
    _v3_variant("gru1", CITATION_DEY, "r,z=σ(hU+b); " + _UPDATE, (False, True, True)),
    _v3_variant("gru2", CITATION_DEY, "r,z=σ(hU); " + _UPDATE, (False, True, False)),
    _v3_variant("gru3", CITATION_DEY, "r,z=σ(b); " + _UPDATE, (False, False, True)),
)
