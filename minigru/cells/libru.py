"""liBRU: the light Bayesian recurrent unit, the Light GRU read as a probabilistic model, with
its state a log-probability.

libru -- Bittar & Garner 2021, "A Bayesian interpretation of the light gated recurrent unit"
(ICASSP 2021), in the form its authors' code calls ``logprobs``::

    [a_z|a_n] = BN(x W)            (2H; exactly ligru's batch norm, statistics and buffers)
    s  = a_z + h U_z
    z  = σ(s)
    ñ  = softplus(a_n + h U_n)     softplus(v) = log(1 + e^v)
    h' = log(z ⊙ e^h + (1 − z) ⊙ e^ñ)  = logaddexp(h + log σ(s), ñ + log σ(−s))

    W (I,2H)  U (H,2H)  gamma (2H)  beta (2H);  blocks z, n

The paper reads the Light GRU's update ``h' = z h + (1 − z) ñ`` as the mixture of two
probabilities, the old state's and the candidate's, with z the probability of keeping the old
one. Carried in log space the mixture becomes the second line: a log of a sum of exponentials,
and the candidate (a ReLU in ligru) becomes the softplus, the smooth log of a positive number.

Why it does not overflow. ``e^h`` and ``e^ñ`` overflow a float32 from 89 on, and ``log σ(s)``
is ``−inf`` once σ(s) rounds to 0. The code evaluates neither: ``log σ(s) = −softplus(−s)``,
finite for any s, and ``logaddexp(a, b) = max(a, b) + log(1 + e^(−|a − b|))`` takes exp of
a number ≤ 0 only (``_point.py``). So |s|, h and ñ up to 1e4 give finite states and gradients.

The backward, with p = e^(h + log σ(s) − h') the share of h' from the old state and
q = e^(ñ + log σ(−s) − h') = 1 − p the candidate's (both in [0, 1], both saved):
dh_prev = p ⊙ dh', dñ = q ⊙ dh', ds = (p − z) ⊙ dh' (``d log σ(s)/ds = σ(−s)``), and through
the softplus ``d a_n = σ(a_n + h U_n) ⊙ dñ``.

Two blocks of x W, batch-normalised, and two of h U, summed (``_gated_structure.py`` runs the
loop and the batch norm). Cache, T steps, B batch, H hidden:
    x (T, B, I);  vhat (T·B, 2H), inv_std (2H,), training: as ligru's;
    hs (T+1, B, H) = h_0 .. h_T;  z, p, q, sn = σ(a_n + h U_n) (T, B, H).
"""

from ._gated_structure import Gated
from ._point import exp, log_sigmoid, logaddexp, sigmoid, softplus
from .ligru import init

CITATION_BITTAR = "Bittar & Garner 2021, ICASSP 2021"


def libru_point(az, an, uz, un, h):
    """One unit: the normalised x terms a, the h terms u, the old state -> h' and its saves."""
    s = az + uz
    v = an + un
    n = softplus(v)                                   # ñ
    kept = h + log_sigmoid(s)                         # log(z e^h)
    taken = n + log_sigmoid(-s)                       # log((1 − z) e^ñ)
    h_new = logaddexp(kept, taken)
    return h_new, sigmoid(s), exp(kept - h_new), exp(taken - h_new), sigmoid(v)


def libru_point_backward(dh, h, h_new, z, p, q, sn):
    """dh (into h') -> daz, dan and the direct part of dh_prev."""
    return dh * (p - z), dh * q * sn, dh * p


LIBRU = Gated(name="libru", paper=CITATION_BITTAR,
              equations="[a_z|a_n]=BN(xW); z=σ(a_z+hU_z); ñ=softplus(a_n+hU_n); "
                        "h'=log(z⊙e^h+(1-z)⊙e^ñ)",
              x_blocks=("z", "n"), h_blocks=("z", "n"), summed=("z", "n"), x_norm="batch",
              gates=("z",), keep=("z", 1), saves=("z", "p", "q", "sn"),
              point=libru_point, point_backward=libru_point_backward, init=init)

VARIANTS = (LIBRU.variant(),)
