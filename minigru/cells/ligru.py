"""ligru: the Light GRU, batch-normalised input projections, no reset gate, ReLU candidate.

Convention (Cho et al. 2014, PyTorch, Keras, cuDNN): z is the share of the old state kept.

ligru -- Ravanelli, Brakel, Omologo & Bengio 2018, "Light Gated Recurrent Units for Speech
Recognition" (IEEE TETCI; arXiv 1803.10225), as in SpeechBrain's ``LiGRU``::

    [a_z|a_n] = BN(x W)            (2H; statistics over all T·B rows, per feature)
    z  = σ(a_z + h U_z)
    n  = relu(a_n + h U_n)
    h' = z ⊙ h + (1 − z) ⊙ n
    BN(v) = gamma ⊙ (v − μ) / sqrt(σ² + 1e-5) + beta

    W (I,2H)  U (H,2H)  gamma (2H)  beta (2H);  blocks z, n

Training mode normalises with the batch's mean μ and biased variance σ² over all T·B rows of
x W, and the backward differentiates through them. Evaluation mode (``training=False`` and
``step``) uses the running statistics instead, which are then constants. They are buffers, not
parameters: ``{"running_mean": (2H,), "running_var": (2H,)}``, zeros and ones to start, in p's
dtype. A training forward given buffers updates them in place with PyTorch BatchNorm's rule,
``running = (1 − momentum) · running + momentum · batch``, where the batch variance is the
unbiased one (divided by T·B − 1); hence T·B = 1 is refused in training mode.

The paper and SpeechBrain write the update the same way, ``h_t = z_t ⊙ h_{t−1} +
(1 − z_t) ⊙ h̃_t``, so z here is their z. This is SpeechBrain's ``LiGRU_Layer`` with its
defaults ``normalization="batchnorm"``, ``nonlinearity="relu"``, except that there the blocks
are ordered candidate first (``at, zt = gates.chunk(2, 1)``), here z first as in the rest of
the GRU family; there the BatchNorm momentum is 0.05, here 0.1 (PyTorch's default, an option);
there W is initialised as ``nn.Linear`` does and U orthogonally, here both U(−1/sqrt(H),
1/sqrt(H)); and there a recurrent dropout mask multiplies the candidate, which is not part of
this cell. Neither has a bias besides BN's beta, and neither normalises h U.

Cache (what the backward needs), T steps, B batch, H hidden:
    x (T, B, I);  vhat (T·B, 2H) = (x W − μ) / sqrt(σ² + eps), the normalised projections;
    inv_std (2H,) = 1 / sqrt(σ² + eps) of the statistics used;  training (bool);
    hs (T+1, B, H) = h_0 .. h_T;  z, n (T, B, H).
"""

import numpy as np

from ._math import normalize, normalize_backward, sigmoid
from ._variant import Variant, uniform_init

CITATION = "Ravanelli et al. 2018, arXiv 1803.10225"
EPS = 1e-5


def shapes(input_size, hidden_size):
    I, H = input_size, hidden_size
    return {"W": (I, 2 * H), "U": (H, 2 * H), "gamma": (2 * H,), "beta": (2 * H,)}


def sizes(p):
    return {"input_size": p["W"].shape[0], "hidden_size": p["U"].shape[0]}


def init(input_size, hidden_size, rng, dtype):
    s = shapes(input_size, hidden_size)
    p = uniform_init({"W": s["W"], "U": s["U"]}, hidden_size, rng, dtype)
    p["gamma"] = np.ones(s["gamma"], dtype)           # BN starts as the identity
    p["beta"] = np.zeros(s["beta"], dtype)
    return p


def init_buffers(p):
    """The running statistics of evaluation mode, as a fresh PyTorch BatchNorm has them."""
    dtype, H2 = p["gamma"].dtype, p["gamma"].shape[0]
    return {"running_mean": np.zeros(H2, dtype), "running_var": np.ones(H2, dtype)}


def _normalize_running(v, buffers):
    """Evaluation mode's (v − running_mean) / sqrt(running_var + eps); returns vhat, 1/std."""
    inv_std = 1.0 / np.sqrt(buffers["running_var"] + EPS)
    return (v - buffers["running_mean"]) * inv_std, inv_std


def _update_running(buffers, v, momentum):
    """PyTorch BatchNorm's rule, in place; the variance is the unbiased one."""
    for key, batch in (("running_mean", v.mean(axis=0)), ("running_var", v.var(axis=0, ddof=1))):
        buffers[key] *= 1 - momentum
        buffers[key] += momentum * batch


def _ligru_cell(a_t, h, U):
    """One step from the normalised projection a_t = BN(x W)_t: returns h' and z, n."""
    H = h.shape[1]
    g = a_t + h @ U                                   # (B, 2H): [a_z + h U_z | a_n + h U_n]
    z = sigmoid(g[:, :H])
    n = np.maximum(g[:, H:], 0)
    return z * h + (1 - z) * n, z, n


def require_batch_statistics(x):
    """Training mode's batch norm needs more than one value per feature (as PyTorch's)."""
    T, B = x.shape[:2]
    if T * B == 1:
        raise ValueError(
            f"ligru in training mode needs more than one value per feature for its batch "
            f"statistics (T·B > 1, as PyTorch's BatchNorm), got x of shape {x.shape}; "
            f"use training=False or a longer sequence or larger batch")


def forward(p, x, h0, training=True, *, momentum, buffers):
    U, gamma, beta = p["U"], p["gamma"], p["beta"]
    T, B, _ = x.shape
    H = h0.shape[1]
    v = (x @ p["W"]).reshape(T * B, 2 * H)            # (T·B, 2H), every step in one product
    if training:
        require_batch_statistics(x)
        vhat, inv_std = normalize(v, EPS, axis=0)     # batch μ, biased σ² over all T·B rows
        inv_std = inv_std[0]                          # (1, 2H) -> (2H,), as in evaluation
        if buffers is not None:
            _update_running(buffers, v, momentum)
    else:
        vhat, inv_std = _normalize_running(v, buffers)
    a = (gamma * vhat + beta).reshape(T, B, 2 * H)   # (T, B, 2H): [a_z | a_n]
    hs = np.empty((T + 1, B, H), x.dtype)
    hs[0] = h0
    z, n = (np.empty((T, B, H), x.dtype) for _ in range(2))
    for t in range(T):
        hs[t + 1], z[t], n[t] = _ligru_cell(a[t], hs[t], U)
    cache = {"x": x, "vhat": vhat, "inv_std": inv_std, "training": training,
             "hs": hs, "z": z, "n": n}
    return hs[1:].copy(), hs[T].copy(), cache


def backward(p, cache, dys, dh_T):
    W, U, gamma = p["W"], p["U"], p["gamma"]
    x, vhat, inv_std, hs, z, n = (cache[k] for k in ("x", "vhat", "inv_std", "hs", "z", "n"))
    T, B, H = n.shape
    dg = np.empty((T, B, 2 * H), x.dtype)             # dL/d(BN(x W) + h U): [daz | dan]
    dh_next = dh_T.copy()
    for t in reversed(range(T)):
        dh = dys[t] + dh_next                         # h_t feeds the output and step t+1
        # h' = z*h + (1-z)*n
        dz = dh * (hs[t] - n[t])
        dn = dh * (1 - z[t])
        # z = σ(a_z + h U_z),  n = relu(a_n + h U_n)
        dg[t, :, :H] = dz * z[t] * (1 - z[t])         # backprop through sigmoid
        dg[t, :, H:] = dn * (n[t] > 0)                # backprop through relu
        dh_next = dh * z[t] + dg[t] @ U.T             # direct path + through h U
    dA = dg.reshape(T * B, 2 * H)                     # the sum BN(x W) + h U passes it to both
    # BN(v) = gamma*vhat + beta, v = x W
    dvhat = dA * gamma
    if cache["training"]:
        dv = normalize_backward(dvhat, vhat, inv_std, axis=0)   # through μ and σ² of the batch
    else:
        dv = dvhat * inv_std                          # the running statistics are constants
    # parameter gradients: one product each over all T*B rows
    I = x.shape[2]
    grads = {
        "W": x.reshape(T * B, I).T @ dv,
        "U": hs[:-1].reshape(T * B, H).T @ dA,
        "gamma": (dA * vhat).sum(axis=0),
        "beta": dA.sum(axis=0),
    }
    return (dv @ W.T).reshape(T, B, I), dh_next, grads


def step(p, x_t, h, *, momentum, buffers):
    """One step of evaluation mode (running statistics); ``momentum`` is not used."""
    vhat, _ = _normalize_running(x_t @ p["W"], buffers)
    h, *_ = _ligru_cell(p["gamma"] * vhat + p["beta"], h, p["U"])
    return h, h


VARIANTS = (
    Variant(name="ligru", paper=CITATION,
            equations="[a_z|a_n]=BN(xW); z=σ(a_z+hU_z); n=relu(a_n+hU_n); h'=z⊙h+(1-z)⊙n",
            shapes=shapes, sizes=sizes, init=init, forward=forward, backward=backward,
            step=step, run_options={"momentum": 0.1}, init_buffers=init_buffers),
)
