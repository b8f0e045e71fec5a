"""ligru: the Light GRU, batch-normalised input projections, no reset gate, ReLU candidate.

Convention (Cho et al. 2014, PyTorch, Keras, cuDNN): z is the share of the old state kept.

ligru -- Ravanelli, Brakel, Omologo & Bengio 2018, "Light Gated Recurrent Units for Speech
Recognition" (IEEE TETCI; arXiv 1803.10225), as in SpeechBrain's ``LiGRU``::

    [a_z|a_n] = BN(x W)            (2H; statistics over all T·B rows, per feature)
    z  = σ(a_z + h U_z)
    n  = relu(a_n + h U_n)
    h' = z ⊙ h + (1 − z) ⊙ n
    BN(v) = gamma ⊙ (v − μ) / sqrt(σ² + 1e-5) + beta

    W (I,2H)  U (H,2H)  gamma (2H)  beta (2H);  blocks z, n

Training mode normalises with the batch's mean μ and biased variance σ² over all T·B rows of
x W, and the backward differentiates through them. Evaluation mode (``training=False`` and
``step``) uses the running statistics instead, which are then constants. They are buffers, not
parameters: ``{"running_mean": (2H,), "running_var": (2H,)}``, zeros and ones to start, in p's
dtype. A training forward given buffers updates them in place with PyTorch BatchNorm's rule,
``running = (1 − momentum) · running + momentum · batch``, where the batch variance is the
unbiased one (divided by T·B − 1); hence T·B = 1 is refused in training mode.

The paper and SpeechBrain write the update the same way, ``h_t = z_t ⊙ h_{t−1} +
(1 − z_t) ⊙ h̃_t``, so z here is their z. This is SpeechBrain's ``LiGRU_Layer`` with its
defaults ``normalization="batchnorm"``, ``nonlinearity="relu"``, except that there the blocks
are ordered candidate first (``at, zt = gates.chunk(2, 1)``), here z first as in the rest of
the GRU family; there the BatchNorm momentum is 0.05, here 0.1 (PyTorch's default, an option);
there W is initialised as ``nn.Linear`` does and U orthogonally, here both U(−1/sqrt(H),
1/sqrt(H)); and there a recurrent dropout mask multiplies the candidate, which is not part of
this cell. Neither has a bias besides BN's beta, and neither normalises h U.

Two blocks of x W, batch-normalised, and two of h U, summed (``_gated_structure.py`` runs the
loop and the batch norm). Cache (what the backward needs), T steps, B batch, H hidden:
    x (T, B, I);  vhat (T·B, 2H) = (x W − μ) / sqrt(σ² + eps), the normalised projections;
    inv_std (2H,) = 1 / sqrt(σ² + eps) of the statistics used;  training (bool);
    hs (T+1, B, H) = h_0 .. h_T;  z, n (T, B, H).
"""

import numpy as np

from ._gated_structure import Gated
from ._point import ONE, positive, relu, sigmoid
from ._variant import uniform_init

CITATION_RAVANELLI = "Ravanelli et al. 2018, arXiv 1803.10225"


def init(input_size, hidden_size, rng, dtype):
    I, H = input_size, hidden_size
    p = uniform_init({"W": (I, 2 * H), "U": (H, 2 * H)}, H, rng, dtype)
    p["gamma"] = np.ones(2 * H, dtype)                # BN starts as the identity
    p["beta"] = np.zeros(2 * H, dtype)
    return p


def ligru_point(az, an, uz, un, h):
    """One unit: the normalised x terms a, the h terms u, the old state -> h', z, n."""
    z = sigmoid(az + uz)
    n = relu(an + un)
    return z * h + (ONE - z) * n, z, n


def ligru_point_backward(dh, h, h_new, z, n):
    """dh (into h') -> daz, dan and the direct part of dh_prev."""
    # h' = z*h + (1-z)*n
    dz = dh * (h - n)
    dn = dh * (ONE - z)
    daz = dz * z * (ONE - z)                          # through the sigmoid
    dan = dn * positive(n)                            # through relu, from its output
    return daz, dan, dh * z


LIGRU = Gated(name="ligru", paper=CITATION_RAVANELLI,
              equations="[a_z|a_n]=BN(xW); z=σ(a_z+hU_z); n=relu(a_n+hU_n); h'=z⊙h+(1-z)⊙n",
              x_blocks=("z", "n"), h_blocks=("z", "n"), summed=("z", "n"), x_norm="batch",
              gates=("z",), keep=("z", 1),
              saves=("z", "n"), point=ligru_point, point_backward=ligru_point_backward,
              init=init)


VARIANTS = (LIGRU.variant(),)
