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

gru is a ``Gated`` cell (``_gated_structure.py``: one product, then the point); the four
reset-before variants are ``TwoStage`` cells (``_two_stage.py``: the gates, then the candidate's
product of ``r ⊙ h``), and each one's declaration says what its gates see.

Cache (what the backward needs), T steps, B batch, H hidden:
    x (T, B, I);  hs (T+1, B, H) = h_0 .. h_T;  r, z, n (T, B, H);
    gru only: hn (T, B, H) = h U_n + c, the term the reset gate multiplies.
"""

from ._gated_structure import Gated
from ._point import ONE, ZERO, sigmoid, tanh
from ._two_stage import TwoStage

CITATION_DEY = "Dey & Salem 2017, arXiv 1701.05923"


# ============================================================================ gru (reset after)

def gru_point(ar, az, an, ur, uz, un, h):
    """One unit: the x terms a (x W + b), the h terms u (h U, with c in u_n), the old state h ->
    h' and what the backward needs (r, z, n, and un = h U_n + c, what the reset gate scales)."""
    r = sigmoid(ar + ur)
    z = sigmoid(az + uz)
    n = tanh(an + r * un)                             # reset acts on h U_n + c, after the product
    return z * h + (ONE - z) * n, r, z, n, un


def gru_point_backward(dh, h, h_new, r, z, n, un):
    """dh (into h') -> dar, daz, dan; dun (the h side of n, and c's); the direct part of
    dh_prev."""
    # h' = z*h + (1-z)*n
    dz = dh * (h - n)
    dn = dh * (ONE - z)
    # n = tanh(a_n + r*un)
    dan = dn * (ONE - n * n)                          # through tanh
    dr = dan * un
    dun = dan * r
    dar = dr * r * (ONE - r)                          # through the sigmoids
    daz = dz * z * (ONE - z)
    return dar, daz, dan, dun, dh * z


GRU = Gated(name="gru", paper="Cho et al. 2014 v1 (PyTorch nn.GRU)",
            equations="r,z=σ(xW+hU+b); n=tanh(xW_n+b_n+r⊙(hU_n+c)); h'=z⊙h+(1-z)⊙n",
            x_blocks=("r", "z", "n"), h_blocks=("r", "z", "n"), summed=("r", "z"),
            gates=("r", "z"), keep=("z", 1),
            h_bias=("n",), saves=("r", "z", "n", "hn"),
            point=gru_point, point_backward=gru_point_backward, bias_params=("b", "c"))


# ========================================================== gru_v3, gru1..gru3 (reset before)

def v3_gate_point(ar, az):
    """The gates from their pre-activations (x W_g + h U_g + b_g, whichever the variant has)."""
    return sigmoid(ar), sigmoid(az)


def v3_gate_point_backward(dr, dz, r, z):
    """dr, dz -> dar, daz: through the sigmoids."""
    return dr * r * (ONE - r), dz * z * (ONE - z)


def v3_candidate_point(an, un, h, r, z):
    """Once un = (r ⊙ h) U_n is known: -> h', n."""
    n = tanh(an + un)
    return z * h + (ONE - z) * n, n


def v3_candidate_point_backward(dh, h, h_new, n, r, z):
    """dh (into h') -> dan, the direct part of dh_prev, dr (none: r acts through the product,
    which the loop differentiates), dz."""
    # h' = z*h + (1-z)*n
    dan = dh * (ONE - z) * (ONE - n * n)              # through tanh
    return dan, dh * z, ZERO, dh * (h - n)


def _v3(name, paper, equations, sees_x, sees_h, has_bias):
    return TwoStage(name=name, paper=paper, equations=equations, gates=("r", "z"), reset="r",
                    keep=("z", 1),
                    sees_x=sees_x, sees_h=sees_h, has_bias=has_bias,
                    gate_point=v3_gate_point, gate_point_backward=v3_gate_point_backward,
                    candidate_point=v3_candidate_point,
                    candidate_point_backward=v3_candidate_point_backward)


_UPDATE = "n=tanh(xW_n+(r⊙h)U_n+b_n); h'=z⊙h+(1-z)⊙n"

GRU_V3 = _v3("gru_v3", "Cho et al. 2014 v3 (textbook GRU)", "r,z=σ(xW+hU+b); " + _UPDATE,
             sees_x=True, sees_h=True, has_bias=True)
GRU1 = _v3("gru1", CITATION_DEY, "r,z=σ(hU+b); " + _UPDATE,
           sees_x=False, sees_h=True, has_bias=True)
GRU2 = _v3("gru2", CITATION_DEY, "r,z=σ(hU); " + _UPDATE,
           sees_x=False, sees_h=True, has_bias=False)
GRU3 = _v3("gru3", CITATION_DEY, "r,z=σ(b); " + _UPDATE,
           sees_x=False, sees_h=False, has_bias=True)

VARIANTS = tuple(cell.variant() for cell in (GRU, GRU_V3, GRU1, GRU2, GRU3))
