"""Minimal gated units: mgu, and its simplified variants mgu1, mgu2, mgu3.

Convention (Zhou et al. and Heck & Salem, unlike the GRU family's z): f is the share of the *new*
candidate taken, h' = (1 − f) ⊙ h + f ⊙ ñ. The one gate f does the work of the GRU's r and z.

mgu -- Zhou et al. 2016, "Minimal gated unit for recurrent neural networks" (arXiv 1603.09420)::

    f  = σ(x W_f + h U_f + b_f)
    ñ  = tanh(x W_n + (f ⊙ h) U_n + b_n)
    h' = (1 − f) ⊙ h + f ⊙ ñ

    W (I,2H)  U (H,2H)  b (2H);  blocks f, n

mgu1, mgu2, mgu3 -- Heck & Salem 2017, "Simplified minimal gated unit variations for recurrent
neural networks". mgu's candidate and update; only what the gate sees changes, and the parameters
the gate no longer uses are gone (``W`` is ``W_n`` in all three)::

    mgu1:  f = σ(h U_f + b_f)     W (I,H)  U (H,2H)  b (2H)
    mgu2:  f = σ(h U_f)           W (I,H)  U (H,2H)  b (H)    (b is b_n)
    mgu3:  f = σ(b_f)             W (I,H)  U (H,H)   b (2H)   (U is U_n)

All four share one forward and one backward, as gru.py's reset-before family does: each
parameter is split into its gate part (absent where the variant has none) and its candidate part
``W_n, U_n, b_n`` (``_gated.py``); each variant's record at the end of this file says what its
gate sees: (x W_f, h U_f, b_f).

Cache (what the backward needs), T steps, B batch, H hidden:
    x (T, B, I);  hs (T+1, B, H) = h_0 .. h_T;  f, n (T, B, H)  (n is ñ).
"""

import numpy as np

from . import _gated
from ._math import sigmoid

CITATION_ZHOU = "Zhou et al. 2016, arXiv 1603.09420"
CITATION_HECK = "Heck & Salem 2017, arXiv 1701.03452"

def _mgu_cell(af_t, xn_t, h, Uf, Un):
    """One step given the gate's and the candidate's input terms; returns h', f, ñ."""
    if Uf is not None:
        af_t = af_t + h @ Uf                          # (B, H)
    f = sigmoid(af_t)
    n = np.tanh(xn_t + (f * h) @ Un)                  # the gate acts on h, before the product
    return (1 - f) * h + f * n, f, n


def mgu_forward(p, x, h0, training=True):
    parts = _gated.split(p)
    (Uf, Un), (_, Wn), (_, bn) = parts["U"], parts["W"], parts["b"]
    T, B, _ = x.shape
    H = h0.shape[1]
    af = _gated.gate_inputs(x, parts, H)              # (T, B, H)
    xn = x @ Wn + bn                                  # (T, B, H)
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    f, n = (np.empty((T, B, H), x.dtype) for _ in range(2))
    for t in range(T):
        hs[t + 1], f[t], n[t] = _mgu_cell(af[t], xn[t], hs[t], Uf, Un)
    cache = {"x": x, "hs": hs, "f": f, "n": n}
    return hs[1:].copy(), hs[T].copy(), cache


def mgu_backward(p, cache, dys, dh_T):
    parts = _gated.split(p)
    (Wf, Wn), (Uf, Un), (bf, _) = parts["W"], parts["U"], parts["b"]
    x, hs, f, n = (cache[k] for k in ("x", "hs", "f", "n"))
    T, B, H = n.shape
    daf = np.empty((T, B, H), x.dtype)                # dL/d(gate pre-activation)
    dan = np.empty((T, B, H), x.dtype)                # dL/d(candidate pre-activation)
    dh_next = dh_T.copy()
    for t in reversed(range(T)):
        dh = dys[t] + dh_next                         # h_t feeds the output and step t+1
        # h' = (1-f)*h + f*n
        df = dh * (n[t] - hs[t])
        dn = dh * f[t]
        dh_next = dh * (1 - f[t])
        # n = tanh(a_n + (f*h) U_n)
        dan[t] = dn * (1 - n[t] ** 2)                 # backprop through tanh
        dfh = dan[t] @ Un.T                           # through the product (f*h) U_n
        df += dfh * hs[t]                             # f reaches h' twice: the update and ñ
        dh_next += dfh * f[t]
        daf[t] = df * f[t] * (1 - f[t])               # backprop through sigmoid
        if Uf is not None:
            dh_next += daf[t] @ Uf.T                  # the gate saw h through U_f
    I = x.shape[2]
    X = x.reshape(T * B, I)
    Hp = hs[:-1].reshape(T * B, H)                    # h_{t-1} for every step
    dA_f, dA_n = daf.reshape(T * B, H), dan.reshape(T * B, H)
    g = {  # gate part, candidate part of each gradient
        "W": (X.T @ dA_f if Wf is not None else None, X.T @ dA_n),
        "U": (Hp.T @ dA_f if Uf is not None else None, (f * hs[:-1]).reshape(T * B, H).T @ dA_n),
        "b": (dA_f.sum(axis=0) if bf is not None else None, dA_n.sum(axis=0)),
    }
    grads = _gated.merge(g)
    dx = dan @ Wn.T
    if Wf is not None:
        dx += daf @ Wf.T
    return dx, dh_next, grads


def mgu_step(p, x_t, h):
    parts = _gated.split(p)
    af = _gated.gate_inputs(x_t[None], parts, p["U"].shape[0])[0]
    (Uf, Un), (_, Wn), (_, bn) = parts["U"], parts["W"], parts["b"]
    h, *_ = _mgu_cell(af, x_t @ Wn + bn, h, Uf, Un)
    return h, h


def _variant(name, paper, equations, sees):
    return _gated.variant(name, paper, equations, gates=1, sees=sees,
                          forward=mgu_forward, backward=mgu_backward, step=mgu_step)


_UPDATE = "ñ=tanh(xW_n+(f⊙h)U_n+b_n); h'=(1-f)⊙h+f⊙ñ"

VARIANTS = (
    _variant("mgu", CITATION_ZHOU, "f=σ(xW_f+hU_f+b_f); " + _UPDATE, (True, True, True)),
    _variant("mgu1", CITATION_HECK, "f=σ(hU_f+b_f); " + _UPDATE, (False, True, True)),
    _variant("mgu2", CITATION_HECK, "f=σ(hU_f); " + _UPDATE, (False, True, False)),
    _variant("mgu3", CITATION_HECK, "f=σ(b_f); " + _UPDATE, (False, False, True)),
)
