"""sLSTM: xLSTM's scalar-memory LSTM, with an exponential input gate kept in range by a
stabiliser state.

slstm -- Beck, Pöppel, Spanring, Auer, Prudnikova, Kopp, Klambauer, Brandstetter & Hochreiter
2024, "xLSTM: Extended Long Short-Term Memory" (arXiv 2405.04517), one head, sigmoid forget
gate::

    [ĩ | f̃ | z̃ | õ] = x W + h U + b            (4H)
    lf = log σ(f̃)
    m' = max(lf + m, ĩ)                         the stabiliser
    i  = exp(ĩ − m'),   f = exp(lf + m − m')
    c' = f ⊙ c + i ⊙ tanh(z̃)
    n' = f ⊙ n + i                              the normaliser
    h' = σ(õ) ⊙ c' / n'

    state (h, c, n, m), zeros at the start;  W (I,4H)  U (H,4H)  b (4H);  blocks i, f, z, o

A state given to the cell must have n ≥ 0, which every state it makes has: each step adds
i > 0 to f ⊙ n, so from n ≥ 0 (zeros included, as at the start) n' > 0 and c' / n' is defined.
A negative n could make n' zero, and is refused by name.

Why the stabiliser. The input gate is ``exp(ĩ)``, which overflows a float32 from ĩ ≈ 89. The
paper's cure carries ``m``, the log of the scale that c and n are kept at: the true cell state
is ``c · e^m`` and the true normaliser ``n · e^m``. Each step picks the new scale m' as the
larger of the two log-weights (``lf + m`` for the old memory, ĩ for the new input), so both
exponentials above are of a number ≤ 0, and both lie in (0, 1]. The output ``c' / n'`` does not
depend on the scale at all: it is the same with or without m, which is why the trick is exact.
``lf = log σ(f̃)`` is computed as ``−softplus(−f̃)``, finite for any f̃.

The backward is the exact gradient of this stabilised forward, with ``max`` differentiated
towards the argument it took (ties go to ĩ). Because h' does not depend on m, the gradients
through m cancel when the loss reads only the outputs; with a loss on the final c, n or m they
do not, and the backward carries them (dm is a state gradient like any other).

Four blocks of x W and of h U, each pair summed (``_gated_structure.py`` runs the loop). Cache,
T steps, B batch, H hidden:
    x (T, B, I);  hs, cs, ns, ms (T+1, B, H) = states 0 .. T;
    i, f (T, B, H) the stabilised gates;  z = tanh(z̃), o = σ(õ);  sf = σ(−f̃) (for lf's
    derivative);  took = 1 where m' took lf + m (else 0: it took ĩ).
"""

from ._gated_structure import Gated
from ._point import ONE, ZERO, exp, log_sigmoid, maximum, positive, sigmoid, tanh

CITATION_BECK = "Beck et al. 2024, arXiv 2405.04517"


def slstm_point(ai, af, az, ao, ui, uf, uz, uo, h, c, n, m):
    """One unit: the four pre-activations' x and h parts, the old state -> (h', c', n', m')
    and what the backward needs."""
    gi = ai + ui                                      # ĩ
    gf = af + uf                                      # f̃
    lf = log_sigmoid(gf)
    m_new = maximum(lf + m, gi)
    i = exp(gi - m_new)                               # both exponents ≤ 0
    f = exp(lf + m - m_new)
    z = tanh(az + uz)
    o = sigmoid(ao + uo)
    c_new = f * c + i * z
    n_new = f * n + i
    took = positive(lf + m - gi)                      # 1: m' = lf + m; 0: m' = ĩ (ties too)
    return o * c_new / n_new, c_new, n_new, m_new, i, f, z, o, sigmoid(-gf), took


def slstm_point_backward(dh, dc, dn, dm, h, c, n, m, h_new, c_new, n_new, m_new,
                         i, f, z, o, sf, took):
    """The gradients into (h', c', n', m') -> dĩ, df̃, dz̃, dõ and the direct parts of
    (dh, dc, dn, dm) of the old state (h reaches the new state only through U: ZERO)."""
    # h' = o · c'/n'
    r = dh * o / n_new
    do = dh * c_new / n_new
    dc = dc + r                                       # c' feeds h' and the next step
    dn = dn - r * c_new / n_new                       # so does n'
    # c' = f·c + i·z,  n' = f·n + i
    df = dc * c + dn * n
    di = dc * z + dn
    dz = dc * i
    # i = exp(ĩ − m'),  f = exp(lf + m − m'): each derivative is the value itself
    dgi = di * i
    dlf = df * f
    dm_prev = df * f
    dm_new = dm - di * i - df * f                     # m' is subtracted in both exponents
    # m' = max(lf + m, ĩ): its gradient goes to the argument it took
    dlf = dlf + took * dm_new
    dm_prev = dm_prev + took * dm_new
    dgi = dgi + (ONE - took) * dm_new
    dgf = dlf * sf                                    # d log σ(f̃)/df̃ = σ(−f̃)
    daz = dz * (ONE - z * z)
    dao = do * o * (ONE - o)
    return dgi, dgf, daz, dao, ZERO, dc * f, dn * f, dm_prev


SLSTM = Gated(name="slstm", paper=CITATION_BECK,
              equations="m'=max(logσ(f̃)+m,ĩ); i,f=exp(·-m'); c'=f⊙c+i⊙tanh(z̃); "
                        "n'=f⊙n+i; h'=σ(õ)⊙c'/n'",
              x_blocks=("i", "f", "z", "o"), h_blocks=("i", "f", "z", "o"),
              summed=("i", "f", "z", "o"), state=("h", "c", "n", "m"), nonnegative=("n",),
              saves=("i", "f", "z", "o", "sf", "took"), gates=("f", "o"), keep=("f", 1),
              bias_params=("b",), point=slstm_point, point_backward=slstm_point_backward)

VARIANTS = (SLSTM.variant(),)
