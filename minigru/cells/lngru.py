"""lngru: the layer-normalised GRU as Haste's ``LayerNormGRU`` (reset after the product).

Convention (Cho et al. 2014, PyTorch, Keras, cuDNN): z is the share of the old state kept.

lngru -- Ba, Kiros & Hinton 2016, "Layer Normalization" (arXiv 1607.06450), applied to the GRU
as in Haste's ``LayerNormGRU`` (lmnt-com/haste): the input and the recurrent projections are
each normalised over their 3H features, then the gates are ``gru``'s, reset after the product::

    a  = LN(x W; g_x) + b          (3H)
    u  = LN(h U; g_h) + c          (3H)
    r  = σ(a_r + u_r),  z = σ(a_z + u_z)
    n  = tanh(a_n + r ⊙ u_n)
    h' = z ⊙ h + (1 − z) ⊙ n
    LN(v; g) = g ⊙ (v − mean(v)) / sqrt(var(v) + 1e-5)
               over the 3H features of each row, biased var

    W (I,3H)  U (H,3H)  g_x (3H)  g_h (3H)  b (3H)  c (3H);  blocks r, z, n

The layer norms have no shift of their own: ``b`` and ``c`` play that part. The reset gate
multiplies the whole of ``u_n``, its bias ``c_n`` included, as ``gru``'s multiplies ``h U_n + c``.

From Haste (``haste_pytorch.LayerNormGRU``, gate layout z, r, n): ``W = kernel``,
``U = recurrent_kernel``, ``b = bias``, ``c = recurrent_bias`` with the blocks reordered to
r, z, n; ``g_x = gamma[0]``, ``g_h = gamma[1]`` reordered the same way. Haste's DropConnect and
zoneout are not part of the cell. Initialisation: ``W``, ``U`` ~ U(-1/sqrt(H), 1/sqrt(H)) as
PyTorch's recurrent layers (Haste uses Xavier and orthogonal); gains ones, biases zeros (as Haste).

Cache (what the backward needs), T steps, B batch, H hidden:
    x (T, B, I);  hs (T+1, B, H) = h_0 .. h_T;
    ahat (T, B, 3H), a_inv_std (T, B, 1): x W normalised, and 1/sqrt(var + eps) per row;
    uhat (T, B, 3H), u_inv_std (T, B, 1): h U normalised, and 1/sqrt(var + eps) per row;
    r, z, n (T, B, H).
``u_n``, the term the reset gate multiplies, is rebuilt from ``uhat`` in the backward.
"""

import numpy as np

from ._math import normalize, normalize_backward, sigmoid
from ._variant import Variant, uniform_init

EPS = 1e-5


def lngru_shapes(input_size, hidden_size):
    I, H = input_size, hidden_size
    return {"W": (I, 3 * H), "U": (H, 3 * H), "g_x": (3 * H,), "g_h": (3 * H,),
            "b": (3 * H,), "c": (3 * H,)}


def lngru_sizes(p):
    return {"input_size": p["W"].shape[0], "hidden_size": p["U"].shape[0]}


def lngru_init(input_size, hidden_size, rng, dtype):
    I, H = input_size, hidden_size
    p = uniform_init({"W": (I, 3 * H), "U": (H, 3 * H)}, H, rng, dtype)
    p["g_x"], p["g_h"] = np.ones(3 * H, dtype), np.ones(3 * H, dtype)
    p["b"], p["c"] = np.zeros(3 * H, dtype), np.zeros(3 * H, dtype)
    return p


def _lngru_cell(a_t, h, U, g_h, c):
    """One step from the precomputed a = LN(x W; g_x) + b: returns h' and what backward needs."""
    H = h.shape[1]
    uhat, u_inv_std = normalize(h @ U, EPS, axis=-1)  # (B, 3H), (B, 1)
    u = g_h * uhat + c                                # (B, 3H)
    r = sigmoid(a_t[:, :H] + u[:, :H])
    z = sigmoid(a_t[:, H:2 * H] + u[:, H:2 * H])
    n = np.tanh(a_t[:, 2 * H:] + r * u[:, 2 * H:])    # reset acts on u_n, after the product
    return z * h + (1 - z) * n, uhat, u_inv_std, r, z, n


def lngru_forward(p, x, h0, training=True):
    U, g_h, c = p["U"], p["g_h"], p["c"]
    T, B, _ = x.shape
    H = h0.shape[1]
    ahat, a_inv_std = normalize(x @ p["W"], EPS, axis=-1)   # (T, B, 3H), (T, B, 1): one product
    a = p["g_x"] * ahat + p["b"]                      # (T, B, 3H)
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    uhat = np.empty((T, B, 3 * H), x.dtype)
    u_inv_std = np.empty((T, B, 1), x.dtype)
    r, z, n = (np.empty((T, B, H), x.dtype) for _ in range(3))
    for t in range(T):
        hs[t + 1], uhat[t], u_inv_std[t], r[t], z[t], n[t] = _lngru_cell(a[t], hs[t], U, g_h, c)
    cache = {"x": x, "hs": hs, "ahat": ahat, "a_inv_std": a_inv_std,
             "uhat": uhat, "u_inv_std": u_inv_std, "r": r, "z": z, "n": n}
    return hs[1:].copy(), hs[T].copy(), cache


def lngru_backward(p, cache, dys, dh_T):
    W, U, g_h = p["W"], p["U"], p["g_h"]
    x, hs, ahat, a_inv_std, uhat, u_inv_std, r, z, n = (cache[k] for k in (
        "x", "hs", "ahat", "a_inv_std", "uhat", "u_inv_std", "r", "z", "n"))
    T, B, H = n.shape
    un = g_h[2 * H:] * uhat[:, :, 2 * H:] + p["c"][2 * H:]  # (T, B, H), what r multiplied
    da = np.empty((T, B, 3 * H), x.dtype)             # dL/da: [dar | daz | dan]
    du = np.empty((T, B, 3 * H), x.dtype)             # dL/du: [dar | daz | dun]
    dhu = np.empty((T, B, 3 * H), x.dtype)            # dL/d(h U), before the layer norm
    dh_next = dh_T.copy()
    for t in reversed(range(T)):
        dh = dys[t] + dh_next                         # h_t feeds the output and step t+1
        # h' = z*h + (1-z)*n
        dz = dh * (hs[t] - n[t])
        dn = dh * (1 - z[t])
        # n = tanh(a_n + r*u_n)
        dan = dn * (1 - n[t] ** 2)                    # backprop through tanh
        dr = dan * un[t]
        dun = dan * r[t]
        dar = dr * r[t] * (1 - r[t])                  # backprop through sigmoid
        daz = dz * z[t] * (1 - z[t])
        da[t] = np.concatenate([dar, daz, dan], axis=1)
        du[t] = np.concatenate([dar, daz, dun], axis=1)
        # u = g_h*uhat + c, uhat = (h U - mean) * inv_std
        dhu[t] = normalize_backward(du[t] * g_h, uhat[t], u_inv_std[t], axis=-1)
        dh_next = dh * z[t] + dhu[t] @ U.T            # direct path + through h U
    # a = g_x*ahat + b, ahat = (x W - mean) * inv_std: every step at once
    dxw = normalize_backward(da * p["g_x"], ahat, a_inv_std, axis=-1)   # (T, B, 3H)
    # parameter gradients: one product or sum each over all T*B rows
    I = x.shape[2]
    grads = {
        "W": x.reshape(T * B, I).T @ dxw.reshape(T * B, 3 * H),
        "U": hs[:-1].reshape(T * B, H).T @ dhu.reshape(T * B, 3 * H),
        "g_x": (da * ahat).sum(axis=(0, 1)),
        "g_h": (du * uhat).sum(axis=(0, 1)),
        "b": da.sum(axis=(0, 1)),
        "c": du.sum(axis=(0, 1)),
    }
    return dxw @ W.T, dh_next, grads


def lngru_step(p, x_t, h):
    ahat, _ = normalize(x_t @ p["W"], EPS, axis=-1)
    h, *_ = _lngru_cell(p["g_x"] * ahat + p["b"], h, p["U"], p["g_h"], p["c"])
    return h, h


VARIANTS = (
    Variant(name="lngru", paper="Ba et al. 2016 (Haste LayerNormGRU)",
            equations="a=LN(xW;g_x)+b; u=LN(hU;g_h)+c; r,z=σ(a+u); n=tanh(a_n+r⊙u_n); "
                      "h'=z⊙h+(1-z)⊙n",
            shapes=lngru_shapes, sizes=lngru_sizes, init=lngru_init,
            forward=lngru_forward, backward=lngru_backward, step=lngru_step),
)
