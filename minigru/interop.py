"""Weights to and from PyTorch's ``nn.RNN`` (tanh), ``nn.LSTM`` and ``nn.GRU``, per VARIANTS.md.

PyTorch stores ``weight_ih (G·H, I)``, ``weight_hh (G·H, H)`` and two biases for one layer and
direction; minigru stores row-vector projections ``W (I, G·H)``, ``U (H, G·H)``. Plain NumPy in,
plain NumPy out: torch itself is never imported here.

    rnn, lstm:  W = weight_ih.T,  U = weight_hh.T,  b = bias_ih + bias_hh
    gru:        W = weight_ih.T,  U = weight_hh.T,  b = bias_ih + [bias_hr, bias_hz, 0],
                c = bias_hn   (the n-gate's hidden bias sits inside r ⊙ (h U_n + c))
"""

import numpy as np

MAPPED_TO_TORCH = ("rnn", "lstm", "gru")      # the variants whose weights map to a torch.nn module
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _check_variant(variant):
    if variant not in MAPPED_TO_TORCH:
        raise ValueError(f"variant must be one of {MAPPED_TO_TORCH} to map PyTorch weights, "
                         f"got {variant!r}")


def params_from_torch(variant, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """minigru parameters of ``variant`` from one layer-direction of a PyTorch module.

    Arrays are NumPy (``tensor.detach().numpy()``). Without biases (``bias=False``: both None)
    the result has none either, as a minigru cell with ``bias=False``.
    """
    _check_variant(variant)
    weight_ih, weight_hh = np.asarray(weight_ih), np.asarray(weight_hh)
    G = _GATES[variant]
    if weight_hh.ndim != 2 or weight_hh.shape[0] != G * weight_hh.shape[1]:
        raise ValueError(f"weight_hh of {variant} must have shape ({G}·H, H), "
                         f"got {weight_hh.shape}")
    H = weight_hh.shape[1]
    if weight_ih.ndim != 2 or weight_ih.shape[0] != G * H:
        raise ValueError(f"weight_ih of {variant} must have shape ({G * H}, I), "
                         f"got {weight_ih.shape}")
    if bias_ih is None and bias_hh is None:
        return {"W": weight_ih.T.copy(), "U": weight_hh.T.copy()}
    zeros = np.zeros(G * H, weight_hh.dtype)
    bias_ih = zeros if bias_ih is None else np.asarray(bias_ih)
    bias_hh = zeros if bias_hh is None else np.asarray(bias_hh)
    for name, b in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if b.shape != (G * H,):
            raise ValueError(f"{name} of {variant} must have shape ({G * H},), got {b.shape}")
    p = {"W": weight_ih.T.copy(), "U": weight_hh.T.copy()}
    if variant == "gru":
        p["b"] = bias_ih + np.concatenate([bias_hh[:2 * H], np.zeros(H, bias_hh.dtype)])
        p["c"] = bias_hh[2 * H:].copy()
    else:
        p["b"] = bias_ih + bias_hh
    return p


def params_to_torch(variant, p):
    """``{weight_ih, weight_hh, bias_ih, bias_hh}`` (NumPy) equal in effect to minigru's ``p``.

    The split of a summed bias between ``bias_ih`` and ``bias_hh`` is not unique: the whole of
    ``b`` goes to ``bias_ih``, and ``bias_hh`` holds only what must be there (gru's ``c``).
    A ``p`` without biases (``bias=False``) gives the two weights only.
    """
    _check_variant(variant)
    if "b" not in p:
        return {"weight_ih": p["W"].T.copy(), "weight_hh": p["U"].T.copy()}
    H = p["U"].shape[0]
    bias_hh = np.zeros_like(p["b"])
    if variant == "gru":
        bias_hh[2 * H:] = p["c"]
    return {"weight_ih": p["W"].T.copy(), "weight_hh": p["U"].T.copy(),
            "bias_ih": p["b"].copy(), "bias_hh": bias_hh}
