"""minLSTM: an LSTM whose gates see only the input, normalised so that they share one unit.

minlstm -- Feng et al. 2024, "Were RNNs All We Needed?" (arXiv 2410.01201), sequential form::

    f  = σ(x W_f + b_f)
    i  = σ(x W_i + b_i)
    ñ  = x W_n + b_n
    f' = f / (f + i),   i' = i / (f + i)
    h' = f' ⊙ h + i' ⊙ ñ

    W (I,3H)  b (3H);  blocks f, i, n

As in mingru, nothing on the right depends on h but h itself, so the recurrence is linear,

    h_t = a_t ⊙ h_{t−1} + b_t,    a_t = f'_t,  b_t = i'_t ⊙ ñ_t,

and the normalisation f' + i' = 1 makes h a weighted average of the old state and the candidate
(the paper's answer to the LSTM's output growing without bound once c is dropped). The point
functions run the recurrence one step at a time; ``scan="parallel"`` runs it for every step at
once from its coefficients (``_scan.py``). The backward is the same recurrence in reverse,
dh_{t−1} = f'_t ⊙ dh_t, plus what the output adds.

Three blocks of x W and no recurrent product (``_gated_structure.py`` runs the loop). Cache,
T steps, B batch, H hidden:
    x (T, B, I);  hs (T+1, B, H) = h_0 .. h_T;  f, i (T, B, H) after the sigmoid;  n (T, B, H) = ñ.
"""

from ._gated_structure import Gated
from ._point import ONE, sigmoid
from .mingru import CITATION_FENG


def minlstm_point(af, ai, an, h):
    """One unit: the forget and input gates share the step, h' = f'·h + i'·ñ."""
    f = sigmoid(af)
    i = sigmoid(ai)
    s = f + i
    return (f * h + i * an) / s, f, i, an


def minlstm_point_backward(dh, h, h_new, f, i, n):
    """dh (into h') -> daf, dai, dan and the direct part of dh_prev."""
    s = f + i
    fp, ip = f / s, i / s                             # f', i'
    # h' = f'·h + i'·ñ with f' = f/s, i' = i/s:  dh'/df = i(h − ñ)/s²,  dh'/di = f(ñ − h)/s²
    d = dh * (h - n) / s
    df = d * ip
    di = -d * fp
    daf = df * f * (ONE - f)                          # through the sigmoids
    dai = di * i * (ONE - i)
    return daf, dai, dh * ip, dh * fp


def minlstm_coefficients(af, ai, an):
    """a = f' and b = i' ⊙ ñ of h' = a ⊙ h + b, for every step at once (scan="parallel")."""
    f = sigmoid(af)
    i = sigmoid(ai)
    s = f + i
    return f / s, i / s * an


def minlstm_coefficients_backward(da, db, af, ai, an, a, b):
    """da, db (into the coefficients) -> daf, dai, dan."""
    f = sigmoid(af)
    i = sigmoid(ai)
    s = f + i
    dip = db * an                                     # b = i'·ñ
    d = (da - dip) / s                                # f' = f/s, i' = i/s
    return d * (i / s) * f * (ONE - f), -d * (f / s) * i * (ONE - i), db * (i / s)


MINLSTM = Gated(name="minlstm", paper=CITATION_FENG,
                equations="f,i=σ(xW_{f,i}+b); ñ=xW_n+b_n; h'=(f⊙h+i⊙ñ)/(f+i)",
                x_blocks=("f", "i", "n"), saves=("f", "i", "n"), gates=("f", "i"),
                keep=("f", 1), opposite=("i",),
                point=minlstm_point, point_backward=minlstm_point_backward,
                linear=(minlstm_coefficients, minlstm_coefficients_backward))

VARIANTS = (MINLSTM.variant(),)
