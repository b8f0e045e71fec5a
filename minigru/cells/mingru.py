"""minGRU: a GRU whose gates see only the input, so that its recurrence is linear in h.

Convention (Feng et al.): z is the share of the *new* candidate taken, unlike the GRU family's z.

mingru -- Feng et al. 2024, "Were RNNs All We Needed?" (arXiv 2410.01201), sequential form::

    z  = σ(x W_z + b_z)
    ñ  = x W_n + b_n
    h' = (1 − z) ⊙ h + z ⊙ ñ

    W (I,2H)  b (2H);  blocks z, n

Neither z nor ñ depends on h, so every step's gate and candidate come from one product before
the loop, and what remains is the linear recurrence

    h_t = a_t ⊙ h_{t−1} + b_t,    a_t = 1 − z_t,  b_t = z_t ⊙ ñ_t

which the paper evaluates with a parallel scan (in log space). This file runs it sequentially,
one pointwise line per step: the same numbers, and the form a reader can follow. The backward is
again a linear recurrence, run in reverse: dh_{t−1} = (1 − z_t) ⊙ dh_t (plus dL/dh_{t−1} from the
output); every other gradient is pointwise or one product after that loop.

Cache (what the backward needs), T steps, B batch, H hidden:
    x (T, B, I);  hs (T+1, B, H) = h_0 .. h_T;  z, n (T, B, H)  (n is ñ).
"""

import numpy as np

from ._math import sigmoid
from ._variant import Variant, uniform_init

CITATION_FENG = "Feng et al. 2024, arXiv 2410.01201"


def mingru_shapes(input_size, hidden_size):
    I, H = input_size, hidden_size
    return {"W": (I, 2 * H), "b": (2 * H,)}


def _sizes(p):
    return {"input_size": p["W"].shape[0], "hidden_size": p["W"].shape[1] // 2}


def mingru_init(input_size, hidden_size, rng, dtype):
    return uniform_init(mingru_shapes(input_size, hidden_size), hidden_size, rng, dtype)


def _gates(xw):
    """z and ñ from x W + b, for one step (B, 2H) or all of them at once (T, B, 2H)."""
    H = xw.shape[-1] // 2
    return sigmoid(xw[..., :H]), xw[..., H:]


def _mingru_cell(z_t, n_t, h):
    """One step of the linear recurrence h' = a ⊙ h + b, with a = 1 − z and b = z ⊙ ñ."""
    return (1 - z_t) * h + z_t * n_t


def mingru_forward(p, x, h0, training=True):
    T, B, _ = x.shape
    H = h0.shape[1]
    z, n = _gates(x @ p["W"] + p["b"])                # (T, B, H) each, every step in one product
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    for t in range(T):
        hs[t + 1] = _mingru_cell(z[t], n[t], hs[t])
    cache = {"x": x, "hs": hs, "z": z, "n": n}
    return hs[1:].copy(), hs[T].copy(), cache


def mingru_backward(p, cache, dys, dh_T):
    x, hs, z, n = (cache[k] for k in ("x", "hs", "z", "n"))
    T, B, H = z.shape
    dh = np.empty((T, B, H), x.dtype)                 # dL/dh_t, t = 1 .. T
    dh_next = dh_T.copy()
    for t in reversed(range(T)):
        dh[t] = dys[t] + dh_next                      # h_t feeds the output and step t+1
        dh_next = dh[t] * (1 - z[t])                  # h' = (1-z)*h + ...: the only way back
    # h' = (1-z)*h + z*n, for all steps at once
    dz = dh * (n - hs[:-1])
    dan = dh * z                                      # ñ is linear: its pre-activation's gradient
    daz = dz * z * (1 - z)                            # backprop through sigmoid
    dxw = np.concatenate([daz, dan], axis=-1)         # (T, B, 2H), dL/d(x W + b)
    I = x.shape[2]
    grads = {
        "W": x.reshape(T * B, I).T @ dxw.reshape(T * B, 2 * H),
        "b": dxw.sum(axis=(0, 1)),
    }
    return dxw @ p["W"].T, dh_next, grads


def mingru_step(p, x_t, h):
    z, n = _gates(x_t @ p["W"] + p["b"])
    h = _mingru_cell(z, n, h)
    return h, h


VARIANTS = (
    Variant(name="mingru", paper=CITATION_FENG,
            equations="z=σ(xW_z+b_z); ñ=xW_n+b_n; h'=(1-z)⊙h+z⊙ñ",
            shapes=mingru_shapes, sizes=_sizes, init=mingru_init,
            forward=mingru_forward, backward=mingru_backward, step=mingru_step),
)
