"""SRU: the Simple Recurrent Unit, every product before the loop and an elementwise recurrence.

sru -- Lei, Zhang, Wang, Dai & Artzi 2018, "Simple Recurrent Units for Highly Parallelizable
Recurrence" (EMNLP 2018; arXiv 1709.02755), with the projected highway of the official code::

    [ñ | a_f | a_r | s] = x W                  (4H)
    f  = σ(a_f + v_f ⊙ c + b_f)
    r  = σ(a_r + v_r ⊙ c + b_r)
    c' = f ⊙ c + (1 − f) ⊙ ñ
    h' = r ⊙ c' + (1 − r) ⊙ s
    output h',  state c'

    W (I,4H) (blocks n, f, r, s)  v (2H) = [v_f | v_r]  b (2H) = [b_f | b_r]

The state c sees no matrix: the gates read it through the vectors v only (one weight per unit),
so every product of a step is x's and runs for all steps at once before the loop. What is left
inside is a few multiply-adds per unit: on a CPU, an SRU step costs about what reading and
writing its states does. The output h is a highway mix of c' and the projected input s, and is
not fed back. (The paper's highway uses x itself where I = H; the official code projects x when
the sizes differ, which this file does for every size, so that W has the same four blocks.)

h is the output and not the state, so the declaration says ``output_only``: the loops carry h
beside c as the first of their components, which the point does not read, and the state a user
passes and gets is c alone. dL/dh' then reaches the point's backward as a state gradient does.

Four blocks of x W, two unit parameters v_f, v_r packed in v, biases on f and r only, no
recurrent product (``_gated_structure.py`` runs the loop). Cache, T steps, B batch, H hidden:
    x (T, B, I);  hs (T+1, B, H) = outputs (hs[0] zeros);  cs (T+1, B, H) = c_0 .. c_T;
    f, r (T, B, H) after the sigmoids;  n, s (T, B, H) = ñ and s of x W.
"""

from ._gated_structure import Gated
from ._point import ONE, ZERO, sigmoid

CITATION_LEI = "Lei et al. 2018, arXiv 1709.02755"


def sru_point(an, af, ar, a_s, v_f, v_r, h, c):
    """One unit: its four x terms, its two weights on c, the last output h (not read: it is not
    fed back) and the state c -> h', c' and what the backward needs."""
    f = sigmoid(af + v_f * c)
    r = sigmoid(ar + v_r * c)
    c_new = f * c + (ONE - f) * an
    return r * c_new + (ONE - r) * a_s, c_new, f, r, an, a_s


def sru_point_backward(dh, dc, h, c, h_new, c_new, f, r, n, s, v_f, v_r):
    """dh (into h'), dc (into c') -> dñ, da_f, da_r, ds, dv_f, dv_r (this row's parts) and the
    direct parts of dh_prev (none: h is not fed back) and dc_prev."""
    # h' = r·c' + (1 − r)·s
    dr = dh * (c_new - s)
    dc = dc + dh * r
    # c' = f·c + (1 − f)·ñ
    df = dc * (c - n)
    dpf = df * f * (ONE - f)                          # through the sigmoids, whose
    dpr = dr * r * (ONE - r)                          # pre-activations also read c
    return (dc * (ONE - f), dpf, dpr, dh * (ONE - r), dpf * c, dpr * c,
            ZERO, dc * f + dpf * v_f + dpr * v_r)


SRU = Gated(name="sru", paper=CITATION_LEI,
            equations="[ñ|a_f|a_r|s]=xW; f,r=σ(a+v⊙c+b); c'=f⊙c+(1-f)⊙ñ; h'=r⊙c'+(1-r)⊙s",
            x_blocks=("n", "f", "r", "s"), bias=("f", "r"), unit_params=("v_f", "v_r"),
            packed=(("v", ("v_f", "v_r")),), state=("h", "c"), output_only=True,
            saves=("f", "r", "n", "s"), gates=("f", "r"), keep=("f", 1), bias_params=("b",),
            point=sru_point, point_backward=sru_point_backward)

VARIANTS = (SRU.variant(),)
