"""The parameter layout shared by the reset-before GRU family (gru_v3, gru1..3) and the MGU
family (mgu, mgu1..3): a gate part and a candidate part in each of W, U, b.

In these variants the candidate ``ñ = tanh(x W_n + (gate ⊙ h) U_n + b_n)`` is always present,
and the gates see some of ``x W_g``, ``h U_g`` and ``b_g``. Each of W, U, b holds the gate blocks
(if the gates see that term) followed by the candidate's H columns, so a variant is described by
the number of gate blocks ``k`` (2 for r, z; 1 for f) and what the gates see.
"""

import numpy as np

from ._variant import Variant, uniform_init


def sizes(p):
    return {"input_size": p["W"].shape[0], "hidden_size": p["U"].shape[0]}


def split(p):
    """Each of W, U, b as (gate part or None, candidate part): the last H columns are ñ's."""
    H = p["U"].shape[0]
    return {k: (p[k][..., :-H] if p[k].shape[-1] > H else None, p[k][..., -H:]) for k in "WUb"}


def merge(g):
    """Inverse of ``split`` for gradients: {k: (gate part or None, candidate)} -> {k: array}."""
    return {k: np.concatenate([a for a in parts if a is not None], axis=-1)
            for k, parts in g.items()}


def gate_inputs(x, parts, width):
    """x W_g + b_g for all steps, (T, B, width), whichever of the two the variant has."""
    (Wg, _), (bg, _) = parts["W"], parts["b"]
    ag = np.zeros((), x.dtype)
    if Wg is not None:
        ag = x @ Wg
    if bg is not None:
        ag = ag + bg
    return np.broadcast_to(ag, x.shape[:2] + (width,))


def variant(name, paper, equations, *, gates, sees, forward, backward, step):
    """A ``Variant`` with ``gates`` gate blocks that see (x W_g, h U_g, b_g) as ``sees`` says."""
    sees_x, sees_h, has_bias = sees

    def shapes(input_size, hidden_size):
        I, H = input_size, hidden_size
        return {"W": (I, ((gates if sees_x else 0) + 1) * H),
                "U": (H, ((gates if sees_h else 0) + 1) * H),
                "b": (((gates if has_bias else 0) + 1) * H,)}

    def init(input_size, hidden_size, rng, dtype):
        return uniform_init(shapes(input_size, hidden_size), hidden_size, rng, dtype)

    return Variant(name=name, paper=paper, equations=equations, shapes=shapes, sizes=sizes,
                   init=init, forward=forward, backward=backward, step=step)
