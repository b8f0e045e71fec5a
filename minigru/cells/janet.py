"""JANET: an LSTM with only its forget gate, whose input share is tied to it by a fixed shift.

janet -- van der Westhuizen & Lasenby 2018, "The unreasonable effectiveness of the forget gate"
(arXiv 1804.04849), "Just Another NETwork"::

    s  = x W_f + h U_f + b_f
    ñ  = tanh(x W_n + h U_n + b_n)
    h' = σ(s) ⊙ h + (1 − σ(s − β)) ⊙ ñ

    W (I,2H)  U (H,2H)  b (2H);  blocks f, n
    β: a fixed shift (option ``beta``, default 1, not trained)
    Init: W, U ~ U(−1/sqrt(H), 1/sqrt(H));  b_n = 0;  b_f = log U(1, t_max − 1) (chrono,
    option ``t_max``, default 100)

The LSTM's cell state and output gate go, and its input gate becomes ``1 − σ(s − β)``: the same
pre-activation as the forget gate, shifted. With β = 0 the two would sum to one (a GRU-like
convex mix); β > 0 makes the input share 1 − σ(s − β) a little larger than 1 − σ(s), so a unit
takes in slightly more than it forgets (the paper: "allowing slightly more information to
accumulate than the amount forgotten"), which it found to help long memories. The forget bias
starts as chrono draws it (Tallec & Ollivier 2018), so the units' memories start spread over
time scales up to ``t_max`` steps.

Two blocks of x W and of h U, each pair summed (``_gated_structure.py`` runs the loop). Cache,
T steps, B batch, H hidden:
    x (T, B, I);  hs (T+1, B, H) = h_0 .. h_T;  f = σ(s), g = σ(s − β), n = ñ (T, B, H).
"""

import numpy as np

from ._gated_structure import Gated
from ._init import T_MAX
from ._point import ONE, sigmoid, tanh
from ._variant import uniform_init

CITATION_WESTHUIZEN = "van der Westhuizen & Lasenby 2018, arXiv 1804.04849"


def init(input_size, hidden_size, rng, dtype):
    """PyTorch's uniform weights, b_n = 0 and b_f drawn as chrono draws it, with ``t_max``
    100 (``init=..., t_max=`` draws it again with another: ``chrono=True`` below)."""
    I, H = input_size, hidden_size
    p = uniform_init({"W": (I, 2 * H), "U": (H, 2 * H)}, H, rng, dtype)
    p["b"] = np.zeros(2 * H, dtype)
    p["b"][:H] = np.log(rng.uniform(1.0, T_MAX - 1.0, size=H))
    return p


def janet_point(af, an, uf, un, beta, h):
    """One unit: the forget gate's and the candidate's x and h terms, the shift β -> h'."""
    s = af + uf
    f = sigmoid(s)
    g = sigmoid(s - beta)                             # 1 − g is the share of ñ taken
    n = tanh(an + un)
    return f * h + (ONE - g) * n, f, g, n


def janet_point_backward(dh, h, h_new, f, g, n, beta):
    """dh (into h') -> daf, dan and the direct part of dh_prev (β is not trained)."""
    # h' = f·h + (1 − g)·ñ, both gates functions of the same s
    ds = dh * (h * f * (ONE - f) - n * g * (ONE - g))
    dan = dh * (ONE - g) * (ONE - n * n)              # through tanh
    return ds, dan, dh * f


JANET = Gated(name="janet", paper=CITATION_WESTHUIZEN,
              equations="s=xW_f+hU_f+b_f; ñ=tanh(xW_n+hU_n+b_n); h'=σ(s)⊙h+(1-σ(s-β))⊙ñ",
              x_blocks=("f", "n"), h_blocks=("f", "n"), summed=("f", "n"),
              saves=("f", "g", "n"), constants=(("beta", 1.0),), init=init, chrono=True,
              gates=("f",), keep=("f", 1), point=janet_point, point_backward=janet_point_backward)

VARIANTS = (JANET.variant(),)
