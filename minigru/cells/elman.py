"""rnn -- the Elman network with tanh (Elman 1990; PyTorch ``nn.RNN``, nonlinearity tanh)::

    h' = tanh(x W + h U + b)

    W (I,H)  U (H,H)  b (H)
    From PyTorch: W = weight_ih.T, U = weight_hh.T, b = bias_ih + bias_hh.

The baseline every gate was invented to fix: its gradient through time is a product of
``diag(1 − h'²) U.T`` factors, which vanish or explode (see docs/bptt.md).

One block of x W and one of h U, summed (``_gated_structure.py`` runs the loop). Cache, T
steps, B batch, H hidden:
    x (T, B, I);  hs (T+1, B, H) = h_0 .. h_T  (tanh' = 1 − h'² comes from the saved output)
"""

from ._gated_structure import Gated
from ._point import ONE, ZERO, tanh


def rnn_point(a, u, h):
    """One unit: a = (x W + b)_j, u = (h U)_j -> h'."""
    return tanh(a + u)


def rnn_point_backward(dh, h, h_new):
    """-> da (u's is the same: a + u), and the direct part of dh_prev: none, h reaches h'
    only through h U."""
    da = dh * (ONE - h_new * h_new)                   # through tanh, from its output
    return da, ZERO

RNN = Gated(name="rnn", paper="Elman 1990 (PyTorch nn.RNN)", equations="h'=tanh(xW+hU+b)",
            x_blocks=("h",), h_blocks=("h",), summed=("h",),
            point=rnn_point, point_backward=rnn_point_backward, bias_params=("b",))

VARIANTS = (RNN.variant(),)
