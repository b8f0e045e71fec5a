"""lstm -- Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000
(PyTorch ``nn.LSTM``, gate order i, f, g, o)::

    [a_i|a_f|a_g|a_o] = x W + h U + b
    i, f, o = σ(a_i), σ(a_f), σ(a_o);   g = tanh(a_g)
    c' = f ⊙ c + i ⊙ g
    h' = o ⊙ tanh(c')

    state (h, c);  W (I,4H)  U (H,4H)  b (4H)
    From PyTorch: W = weight_ih.T, U = weight_hh.T, b = bias_ih + bias_hh (no proj_size).

The cell state c is carried by addition, so its gradient through time is multiplied only by f:
the "constant error carousel" that lets the LSTM learn long dependencies.

Four blocks of x W and of h U, each pair summed (``_gated_structure.py`` runs the loop). Cache,
T steps, B batch, H hidden:
    x (T, B, I);  hs, cs (T+1, B, H) = states 0 .. T;
    i, f, g, o (T, B, H) after their nonlinearities;  tc (T, B, H) = tanh(c')
"""

from ._gated_structure import Gated
from ._point import ONE, ZERO, sigmoid, tanh


def lstm_point(ai, af, ag, ao, ui, uf, ug, uo, h, c):
    """One unit: the four pre-activations' x and h parts, the old state -> h', c' and what
    the backward needs."""
    i = sigmoid(ai + ui)
    f = sigmoid(af + uf)
    g = tanh(ag + ug)
    o = sigmoid(ao + uo)
    c_new = f * c + i * g
    tc = tanh(c_new)
    return o * tc, c_new, i, f, g, o, tc


def lstm_point_backward(dh, dc_next, h, c, h_new, c_new, i, f, g, o, tc):
    """dh (into h'), dc_next (into c') -> dai, daf, dag, dao and the direct parts of dh_prev
    (none) and dc_prev."""
    # h' = o * tanh(c')
    do = dh * tc
    dc = dc_next + dh * o * (ONE - tc * tc)           # c' feeds h' and the next step's c
    # c' = f*c + i*g
    dai = dc * g * i * (ONE - i)                      # through the sigmoids and tanh
    daf = dc * c * f * (ONE - f)
    dag = dc * i * (ONE - g * g)
    dao = do * o * (ONE - o)
    return dai, daf, dag, dao, ZERO, dc * f


LSTM = Gated(name="lstm", paper="Hochreiter & Schmidhuber 1997 (PyTorch nn.LSTM)",
             equations="i,f,o=σ(·), g=tanh(xW+hU+b); c'=f⊙c+i⊙g; h'=o⊙tanh(c')",
             x_blocks=("i", "f", "g", "o"), h_blocks=("i", "f", "g", "o"),
             summed=("i", "f", "g", "o"), state=("h", "c"), saves=("i", "f", "g", "o", "tc"),
             gates=("i", "f", "o"), keep=("f", 1), opposite=("i",), unit_forget_bias=True,
             point=lstm_point, point_backward=lstm_point_backward, bias_params=("b",))

VARIANTS = (LSTM.variant(),)
