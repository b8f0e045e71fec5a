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

All four are ``TwoStage`` cells (``_two_stage.py``), as gru.py's reset-before family: f is both
the reset gate (it scales h before U_n) and the update; each declaration says what f sees.

Cache (what the backward needs), T steps, B batch, H hidden:
    x (T, B, I);  hs (T+1, B, H) = h_0 .. h_T;  f, n (T, B, H)  (n is ñ).
"""

from ._point import ONE, sigmoid, tanh
from ._two_stage import TwoStage

CITATION_ZHOU = "Zhou et al. 2016, arXiv 1603.09420"
CITATION_HECK = "Heck & Salem 2017, arXiv 1701.03452"


def mgu_gate_point(af):
    """The forget gate from its pre-activation."""
    return sigmoid(af)


def mgu_gate_point_backward(df, f):
    """df -> daf: through the sigmoid."""
    return df * f * (ONE - f)


def mgu_candidate_point(an, un, h, f):
    """Once un = (f ⊙ h) U_n is known: -> h', ñ."""
    n = tanh(an + un)
    return (ONE - f) * h + f * n, n


def mgu_candidate_point_backward(dh, h, h_new, n, f):
    """dh (into h') -> dan, the direct part of dh_prev, and df through the update (the loop adds
    f's part through the product: f reaches h' twice)."""
    # h' = (1-f)*h + f*n
    dan = dh * f * (ONE - n * n)                      # through tanh
    return dan, dh * (ONE - f), dh * (n - h)


def _mgu(name, paper, equations, sees_x, sees_h, has_bias):
    return TwoStage(name=name, paper=paper, equations=equations, gates=("f",), reset="f",
                    keep=("f", -1),
                    sees_x=sees_x, sees_h=sees_h, has_bias=has_bias,
                    gate_point=mgu_gate_point, gate_point_backward=mgu_gate_point_backward,
                    candidate_point=mgu_candidate_point,
                    candidate_point_backward=mgu_candidate_point_backward)


_UPDATE = "ñ=tanh(xW_n+(f⊙h)U_n+b_n); h'=(1-f)⊙h+f⊙ñ"

MGU = _mgu("mgu", CITATION_ZHOU, "f=σ(xW_f+hU_f+b_f); " + _UPDATE,
           sees_x=True, sees_h=True, has_bias=True)
MGU1 = _mgu("mgu1", CITATION_HECK, "f=σ(hU_f+b_f); " + _UPDATE,
            sees_x=False, sees_h=True, has_bias=True)
MGU2 = _mgu("mgu2", CITATION_HECK, "f=σ(hU_f); " + _UPDATE,
            sees_x=False, sees_h=True, has_bias=False)
MGU3 = _mgu("mgu3", CITATION_HECK, "f=σ(b_f); " + _UPDATE,
            sees_x=False, sees_h=False, has_bias=True)

VARIANTS = tuple(cell.variant() for cell in (MGU, MGU1, MGU2, MGU3))
