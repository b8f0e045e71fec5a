"""IndRNN: each unit sees only its own past, through one recurrent weight.

indrnn -- Li, Li, Cook, Zhu & Gao 2018, "Independently Recurrent Neural Network (IndRNN):
Building A Longer and Deeper RNN" (CVPR 2018; arXiv 1803.04831)::

    h' = relu(x W + u ⊙ h + b)

    W (I,H)  u (H)  b (H)
    Init: W, b ~ U(−1/sqrt(H), 1/sqrt(H)) (PyTorch's);  u ~ U(0, 1)

The recurrent matrix of the Elman RNN becomes a diagonal ``u``: unit j's next value depends on
its own value only, ``h'_j = relu(a_j + u_j h_j)``. So the gradient through time of one unit is
the product of its own ``u_j · relu'`` over the steps, which the paper keeps in range by bounding
``|u_j|`` (for T steps, ``|u_j| ≤ 2^(1/T)`` keeps it from exploding). The units mix only
between layers, through W. With no product inside the loop a step costs O(B·H): a CPU runs it
about as fast as it reads and writes the states.

One block of x W, no recurrent product, one unit parameter u (``_gated_structure.py`` runs the
loop). Cache, T steps, B batch, H hidden:
    x (T, B, I);  hs (T+1, B, H) = h_0 .. h_T.
"""

from ._gated_structure import Gated
from ._point import positive, relu
from ._variant import uniform_init

CITATION_LI = "Li et al. 2018, arXiv 1803.04831"


def init(input_size, hidden_size, rng, dtype):
    I, H = input_size, hidden_size
    p = uniform_init({"W": (I, H)}, H, rng, dtype)
    p["u"] = rng.uniform(0.0, 1.0, size=H).astype(dtype)
    p["b"] = uniform_init({"b": (H,)}, H, rng, dtype)["b"]
    return p


def indrnn_point(an, u, h):
    """One unit: its input term, its own recurrent weight, its own old value -> h'."""
    return relu(an + u * h)


def indrnn_point_backward(dh, h, h_new, u):
    """dh (into h') -> dan, du (this row's part) and the direct part of dh_prev."""
    da = dh * positive(h_new)                         # relu' from its output
    return da, da * h, da * u


INDRNN = Gated(name="indrnn", paper=CITATION_LI, equations="h'=relu(xW+u⊙h+b)",
               x_blocks=("n",), unit_params=("u",), init=init, bias_params=("b",),
               point=indrnn_point, point_backward=indrnn_point_backward)

VARIANTS = (INDRNN.variant(),)
