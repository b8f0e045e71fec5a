"""lngru: the layer-normalised GRU as Haste's ``LayerNormGRU`` (reset after the product).

Convention (Cho et al. 2014, PyTorch, Keras, cuDNN): z is the share of the old state kept.

lngru -- Ba, Kiros & Hinton 2016, "Layer Normalization" (arXiv 1607.06450), applied to the GRU
as in Haste's ``LayerNormGRU`` (lmnt-com/haste): the input and the recurrent projections are
each normalised over their 3H features, then the gates are ``gru``'s, reset after the product::

    a  = LN(x W; g_x) + b          (3H)
    u  = LN(h U; g_h) + c          (3H)
    r  = σ(a_r + u_r),  z = σ(a_z + u_z)
    n  = tanh(a_n + r ⊙ u_n)
    h' = z ⊙ h + (1 − z) ⊙ n
    LN(v; g) = g ⊙ (v − mean(v)) / sqrt(var(v) + 1e-5)
               over the 3H features of each row, biased var

    W (I,3H)  U (H,3H)  g_x (3H)  g_h (3H)  b (3H)  c (3H);  blocks r, z, n

The layer norms have no shift of their own: ``b`` and ``c`` play that part. The reset gate
multiplies the whole of ``u_n``, its bias ``c_n`` included, as ``gru``'s multiplies ``h U_n + c``.

From Haste (``haste_pytorch.LayerNormGRU``, gate layout z, r, n): ``W = kernel``,
``U = recurrent_kernel``, ``b = bias``, ``c = recurrent_bias`` with the blocks reordered to
r, z, n; ``g_x = gamma[0]``, ``g_h = gamma[1]`` reordered the same way. Haste's DropConnect and
zoneout are not part of the cell. Initialisation: ``W``, ``U`` ~ U(-1/sqrt(H), 1/sqrt(H)) as
PyTorch's recurrent layers (Haste uses Xavier and orthogonal); gains ones, biases zeros (as Haste).

Cache (what the backward needs), T steps, B batch, H hidden:
    x (T, B, I);  hs (T+1, B, H) = h_0 .. h_T;
    ahat (T, B, 3H), a_inv_std (T, B, 1): x W normalised, and 1/sqrt(var + eps) per row;
    uhat (T, B, 3H), u_inv_std (T, B, 1): h U normalised, and 1/sqrt(var + eps) per row;
    r, z, n (T, B, H).
    un (T, B, H): u_n, the term the reset gate multiplies.
gru's point functions, c (after the norm) in u as gru's c is in u_n; ``_gated_structure.py``
runs the loop and both layer norms.
"""

import numpy as np

from ._gated_structure import EPS, Gated  # noqa: F401 (EPS: the layer norms' epsilon)
from ._variant import uniform_init
from .gru import gru_point, gru_point_backward


def lngru_init(input_size, hidden_size, rng, dtype):
    I, H = input_size, hidden_size
    p = uniform_init({"W": (I, 3 * H), "U": (H, 3 * H)}, H, rng, dtype)
    p["g_x"], p["g_h"] = np.ones(3 * H, dtype), np.ones(3 * H, dtype)
    p["b"], p["c"] = np.zeros(3 * H, dtype), np.zeros(3 * H, dtype)
    return p


LNGRU = Gated(name="lngru", paper="Ba et al. 2016 (Haste LayerNormGRU)",
              equations="a=LN(xW;g_x)+b; u=LN(hU;g_h)+c; r,z=σ(a+u); n=tanh(a_n+r⊙u_n); "
                        "h'=z⊙h+(1-z)⊙n",
              x_blocks=("r", "z", "n"), h_blocks=("r", "z", "n"), summed=("r", "z"),
              gates=("r", "z"), keep=("z", 1),
              x_norm="layer", h_norm="layer", saves=("r", "z", "n", "un"),
              point=gru_point, point_backward=gru_point_backward, init=lngru_init)

VARIANTS = (LNGRU.variant(),)
