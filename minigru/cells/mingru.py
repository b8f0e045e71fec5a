"""minGRU: a GRU whose gates see only the input, so that its recurrence is linear in h.

Convention (Feng et al.): z is the share of the *new* candidate taken, unlike the GRU family's z.

mingru -- Feng et al. 2024, "Were RNNs All We Needed?" (arXiv 2410.01201), sequential form::

    z  = σ(x W_z + b_z)
    ñ  = x W_n + b_n
    h' = (1 − z) ⊙ h + z ⊙ ñ

    W (I,2H)  b (2H);  blocks z, n

Neither z nor ñ depends on h, so every step's gate and candidate come from one product before
the loop, and what remains is the linear recurrence

    h_t = a_t ⊙ h_{t−1} + b_t,    a_t = 1 − z_t,  b_t = z_t ⊙ ñ_t

which the paper evaluates with a parallel scan (in log space). The point functions run it one
pointwise line per step: the form a reader can follow. ``scan="parallel"`` (a cell option) runs
the same recurrence for every step at once from its coefficients a and b (``_scan.py``): the
same numbers to rounding. The backward is
again a linear recurrence, run in reverse: dh_{t−1} = (1 − z_t) ⊙ dh_t (plus dL/dh_{t−1} from the
output); every other gradient is pointwise or one product after that loop.

Two blocks of x W and no recurrent product (``_gated_structure.py`` runs the loop). Cache (what
the backward needs), T steps, B batch, H hidden:
    x (T, B, I);  hs (T+1, B, H) = h_0 .. h_T;  z, n (T, B, H)  (n is ñ).
"""

from ._gated_structure import Gated
from ._point import ONE, sigmoid

CITATION_FENG = "Feng et al. 2024, arXiv 2410.01201"


def mingru_point(az, an, h):
    """One unit of the linear recurrence h' = (1 − z) ⊙ h + z ⊙ ñ, with z and ñ from x alone."""
    z = sigmoid(az)
    return (ONE - z) * h + z * an, z, an


def mingru_point_backward(dh, h, h_new, z, n):
    """dh (into h') -> daz, dan and the direct part of dh_prev, the only way back in time."""
    dz = dh * (n - h)
    daz = dz * z * (ONE - z)                          # through the sigmoid
    dan = dh * z                                      # ñ is linear: its pre-activation's gradient
    return daz, dan, dh * (ONE - z)


def mingru_coefficients(az, an):
    """a = 1 − z and b = z ⊙ ñ of h' = a ⊙ h + b, for every step at once (scan="parallel")."""
    return sigmoid(-az), sigmoid(az) * an             # 1 − σ(a) = σ(−a), exact for z near 1


def mingru_coefficients_backward(da, db, az, an, a, b):
    """da, db (into the coefficients) -> daz, dan."""
    z = sigmoid(az)
    return -da * a * z + db * an * z * (ONE - z), db * z   # dσ(−a)/da = −σ(−a)σ(a)


MINGRU = Gated(name="mingru", paper=CITATION_FENG,
               equations="z=σ(xW_z+b_z); ñ=xW_n+b_n; h'=(1-z)⊙h+z⊙ñ",
               x_blocks=("z", "n"), saves=("z", "n"), gates=("z",), keep=("z", -1),
               point=mingru_point, point_backward=mingru_point_backward,
               linear=(mingru_coefficients, mingru_coefficients_backward))

VARIANTS = (MINGRU.variant(),)
