"""rru: the Residual Recurrent Unit, a recurrent cell without gates.

Zakovskis, Draguns, Gaile, Ozolins & Freivalds 2021, "Gates are not what you need in RNNs"
(arXiv 2108.00527), as in the official code with one ReLU layer::

    u  = [x | h]                                (I+H)
    a  = relu(RMS(u J + j))                     (M),  M = round(multiplier · (I+H)), multiplier 2
    d  = dropout(a)                             training only, rate `dropout` (default 0)
    [c | o] = d V + v                           (H + O)
    h' = h ⊙ σ(10 · s) + c ⊙ Z                  (ReZero: Z starts at 0)
    output o_t,  state h'
    RMS(v) = v / sqrt(mean(v²) + 1e-6)          over the M features of each row, no gain

    J (I+H, M)  j (M)  V (M, H+O)  v (H+O)  s (H)  Z (H);  O = output_size (default H)

The state is carried by a residual path, ``h ⊙ σ(10 s)``, that no input can close: what the cell
adds, ``c ⊙ Z``, comes from a two-layer ReLU network of ``[x | h]``. The output ``o`` is a second
head of that network, so it has its own width O and is not the state.

Official code (github.com/LUMII-Syslab/RRU, ``cells/RRUCell.py``, ``relu_layers=1``) to these
names: ``J/kernel``, ``J/bias`` are J, j; ``W/kernel``, ``W/bias`` (the paper's ``[W^c | W^o]``)
are V, v; ``S/bias`` is s; ``W_smul/bias`` (ReZero) is Z. Its ``instance_norm`` is RMS above
(no centring, no gain); the 10 is its ``mul_lr_multiplier``, which makes Adam move σ's argument
ten times faster. Initialisation as there: glorot-uniform J, V; zero j, v, Z;
``s = logit(U(0.01, 0.99)) / 10``. Two defaults differ: minigru's initial state is zeros
(VARIANTS.md) where ``RRUCell.zero_state`` sets ``h_0 = (0.25·sqrt(H), 0, ..., 0)`` (pass that as
``state0`` to reproduce it), and the dropout rate defaults to 0 here, 0.5 there.

Dropout is inverted (kept units scaled by 1/(1 − rate), as ``torch.nn.functional.dropout``): the
mask for all T steps is drawn from the ``rng`` given to ``forward`` before the time loop, always
in float64 so that a seed gives the same mask in float32 and float64, and is saved in the cache
for the backward. Evaluation mode and ``step`` use no dropout.

Cache (what the backward needs), T steps, B batch, I input, H hidden, M middle, O output:
    x (T, B, I);  hs (T+1, B, H) = h_0 .. h_T;
    q (T, B, M) = RMS(u J + j), before the relu;  r (T, B, 1) = 1 / sqrt(mean((u J + j)²) + eps);
    a (T, B, M) = relu(q);  c (T, B, H), the candidate;
    mask (T, B, M) = keep / (1 − rate), or None when no dropout was applied.
"""

import numpy as np

from ._point import ONE, positive, relu, sigmoid
from ._init import Layout, glorot
from ._variant import Variant


EPS = 1e-6          # inside RMS's square root, as the official code
S_SCALE = 10.0      # h' = h ⊙ σ(S_SCALE · s): the official mul_lr_multiplier


# ---------------------------------------------------------------- the point functions
# (the per-unit math; the RMS of each row and the two products are the loops', below and in
# the compiled backends, which run these same functions)

def rru_hidden_point(q):
    """One middle unit: a = relu(q), q = RMS(u J + j)."""
    return relu(q)


def rru_hidden_point_backward(dd, keep, a):
    """dL/dq of one middle unit from dL/d(dropout(a)): through the mask (``keep`` the mask's
    entry, 1 without dropout), then through the relu, from its output."""
    return dd * keep * positive(a)


def rru_update_point(cv, v, h, g, Z):
    """One unit of the state: c = (d V)_j + v_j, h' = h*g + c*Z -> h', c."""
    c = cv + v
    return h * g + c * Z, c


def rru_update_point_backward(dh, g, Z):
    """dL/dh' -> dL/dc, and dL/dh by the residual path."""
    return dh * Z, dh * g


def rru_shapes(input_size, hidden_size, output_size=None, multiplier=2):
    I, H = input_size, hidden_size
    O = H if output_size is None else output_size
    M = int(round(multiplier * (I + H)))
    if M < 1:
        raise ValueError(f"rru's middle layer is empty: round(multiplier * (input_size + "
                         f"hidden_size)) = round({multiplier} * {I + H}) = {M}")
    return {"J": (I + H, M), "j": (M,), "V": (M, H + O), "v": (H + O,), "s": (H,), "Z": (H,)}


def rru_sizes(p):
    H, IH, M, HO = p["s"].shape[0], p["J"].shape[0], p["J"].shape[1], p["V"].shape[1]
    if IH <= H or HO <= H:
        raise ValueError(f"p['J'] must have more than H = {H} rows (I + H) and p['V'] more than "
                         f"H columns (H + O); got J {p['J'].shape}, V {p['V'].shape}")
    # M / (I+H) gives back M under round(multiplier * (I+H)): the error of the division is an ulp
    return {"input_size": IH - H, "hidden_size": H, "output_size": HO - H, "multiplier": M / IH}


def rru_init(input_size, hidden_size, rng, dtype, output_size=None, multiplier=2):
    shapes = rru_shapes(input_size, hidden_size, output_size, multiplier)
    keep = rng.uniform(0.01, 0.99, size=shapes["s"])  # σ(10 s): the share of h kept, at init
    p = {"J": glorot(shapes["J"], rng),
         "j": np.zeros(shapes["j"]),
         "V": glorot(shapes["V"], rng),
         "v": np.zeros(shapes["v"]),
         "s": np.log(keep / (1 - keep)) / S_SCALE,
         "Z": np.zeros(shapes["Z"])}                  # ReZero: the cell starts as h' = h ⊙ σ(10 s)
    return {k: a.astype(dtype) for k, a in p.items()}


def _dropout_mask(rng, rate, shape, dtype):
    """keep / (1 − rate) with keep ~ Bernoulli(1 − rate); drawn in float64 whatever the dtype."""
    keep = rng.random(shape) >= rate
    return (keep / (1.0 - rate)).astype(dtype)


def _rru_cell(xj_t, h, Jh, V, v, g, Z, mask_t, m_h=None):
    """One step from the precomputed x J_x + j: returns o, h' and what the backward needs.
    ``m_h``: recurrent dropout's mask of the h that the product sees (the residual path's h
    is the state itself)."""
    H = h.shape[1]
    pre = xj_t + (h if m_h is None else h * m_h) @ Jh   # (B, M), u J + j
    r = 1.0 / np.sqrt(np.mean(pre ** 2, axis=1, keepdims=True) + EPS)  # (B, 1)
    q = pre * r                                       # RMS, no gain
    a = rru_hidden_point(q)
    d = a if mask_t is None else a * mask_t
    cv = d @ V                                        # (B, H+O): [c | o] before their bias
    h_new, c = rru_update_point(cv[:, :H], v[:H], h, g, Z)
    return cv[:, H:] + v[H:], h_new, q, r, a, c


def rru_forward(p, x, h0, training=True, *, dropout, rng, masks=None):
    J, V, v, Z = p["J"], p["V"], p["v"], p["Z"]
    T, B, I = x.shape
    H, M = h0.shape[1], J.shape[1]
    O = V.shape[1] - H
    Jx, Jh = J[:I], J[I:]                             # u J = x J_x + h J_h
    xj = x @ Jx + p["j"]                              # (T, B, M), every step in one product
    g = sigmoid(S_SCALE * p["s"])                     # (H,), the residual weight
    mask = _dropout_mask(rng, dropout, (T, B, M), x.dtype) if training and dropout > 0 else None
    ys = np.empty((T, B, O), x.dtype)
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    q, a = np.empty((T, B, M), x.dtype), np.empty((T, B, M), x.dtype)
    r = np.empty((T, B, 1), x.dtype)
    c = np.empty((T, B, H), x.dtype)
    m_h, keep = (None, None) if masks is None else (masks.h, masks.keep)
    for t in range(T):
        ys[t], hs[t + 1], q[t], r[t], a[t], c[t] = _rru_cell(
            xj[t], hs[t], Jh, V, v, g, Z, None if mask is None else mask[t], m_h)
        if keep is not None:                          # zoneout: keep k of the old state
            hs[t + 1] = keep[0][t] * hs[t] + (1 - keep[0][t]) * hs[t + 1]
    cache = {"x": x, "hs": hs, "q": q, "r": r, "a": a, "c": c, "mask": mask, "masks": masks}
    return ys, hs[T].copy(), cache


def rru_backward(p, cache, dys, dh_T):
    J, V, Z = p["J"], p["V"], p["Z"]
    x, hs, q, r, a, c, mask = (cache[k] for k in ("x", "hs", "q", "r", "a", "c", "mask"))
    T, B, I = x.shape
    H, M = hs.shape[2], q.shape[2]
    Jh = J[I:]
    g = sigmoid(S_SCALE * p["s"])
    dh_all = np.empty((T, B, H), x.dtype)             # dL/dh_t, for dZ and ds
    dco = np.empty((T, B, H + dys.shape[2]), x.dtype)  # dL/d(d V + v) = [dc | do]
    dpre = np.empty((T, B, M), x.dtype)               # dL/d(u J + j)
    masks = cache.get("masks")
    m_h, keep = (None, None) if masks is None else (masks.h, masks.keep)
    dh_next = dh_T.copy()
    for t in reversed(range(T)):
        dh = dh_next                                  # h_t feeds only step t+1: the output is o_t
        if keep is not None:                          # h' = k h + (1-k) new: split the gradient
            dh, d_kept = (1 - keep[0][t]) * dh, keep[0][t] * dh
        dh_all[t] = dh                                # dL/d(the cell's h'), for dZ and ds
        # h' = h*g + c*Z;  [c|o] = d V + v
        dco[t, :, :H], dh_res = rru_update_point_backward(dh, g, Z)
        dco[t, :, H:] = dys[t]
        dd = dco[t] @ V.T
        # through the forward's mask (kept units rescaled), then the relu
        dq = rru_hidden_point_backward(dd, ONE if mask is None else mask[t], a[t])
        # RMS: q = pre*r, r = (mean(pre²)+eps)^(-1/2)  =>  dpre = r*(dq - q*mean(dq*q))
        dpre[t] = r[t] * (dq - q[t] * np.mean(dq * q[t], axis=1, keepdims=True))
        dh_j = dpre[t] @ Jh.T                         # through h J_h (h ⊙ m_h J_h)
        dh_next = dh_res + (dh_j if m_h is None else dh_j * m_h)   # + the residual path
        if keep is not None:
            dh_next = dh_next + d_kept
    dx, grads = rru_gradients(p, cache, dpre, dco, dh_all, g)
    return dx, dh_next, grads


def _sums(a):
    """The sum of ``a`` over every axis but the last (over all steps and rows)."""
    return a.reshape(-1, a.shape[-1]).sum(axis=0)


def rru_gradients(p, cache, dpre, dco, dh_all, g, sums=_sums):
    """dx and every parameter's gradient once the reverse loop has filled dpre = dL/d(u J + j),
    dco = dL/d(d V + v) and dh_all = dL/dh_t: one product or sum each over all T·B rows.
    ``sums`` sums over the rows (the compiled backend passes a faster one)."""
    J = p["J"]
    x, hs, a, c, mask = (cache[k] for k in ("x", "hs", "a", "c", "mask"))
    T, B, I = x.shape
    H, M = hs.shape[2], a.shape[2]
    masks = cache.get("masks")
    hp = hs[:-1] if masks is None or masks.h is None else hs[:-1] * masks.h   # what J_h saw
    U = np.concatenate([x, hp], axis=2).reshape(T * B, I + H)   # u_t = [x_t | h_{t-1}]
    D = a if mask is None else a * mask               # what V saw
    dPre = dpre.reshape(T * B, M)
    grads = {
        "J": U.T @ dPre,
        "j": sums(dPre),
        "V": D.reshape(T * B, M).T @ dco.reshape(T * B, -1),
        "v": sums(dco),
        "s": sums(dh_all * hs[:-1]) * g * (1 - g) * S_SCALE,  # through σ(10 s)
        "Z": sums(dh_all * c),
    }
    return (dPre @ J[:I].T).reshape(T, B, I), grads


def rru_step(p, x_t, h, *, dropout, rng):
    """Evaluation mode: the Cell passes dropout=0.0, and no mask is drawn."""
    I = x_t.shape[1]
    J = p["J"]
    g = sigmoid(S_SCALE * p["s"])
    o, h, *_ = _rru_cell(x_t @ J[:I] + p["j"], h, J[I:], p["V"], p["v"], g, p["Z"], None)
    return o, h


VARIANTS = (
    Variant(name="rru", paper="Zakovskis et al. 2021, arXiv 2108.00527",
            equations="a=relu(RMS([x|h]J+j)); [c|o]=dropout(a)V+v; h'=h⊙σ(10s)+c⊙Z; y=o",
            shapes=rru_shapes, sizes=rru_sizes, init=rru_init,
            forward=rru_forward, backward=rru_backward, step=rru_step,
            init_options={"output_size": None, "multiplier": 2},
            run_options={"dropout": 0.0}, output_is_state=False, loop_regularisers=True,
            # for init=: J multiplies [x | h], its h rows from row I on (orthonormal rows under
            # "keras" and "orthogonal"); σ(10·s) is the share of h kept
            layout=Layout(input_weights=("J", "V"), recurrent=("J",),
                          blocks=False, biases={"j": None, "v": None, "s": ("s",)},
                          gates=("s",), keep=("s", 1), scale={"s": S_SCALE})),
)
