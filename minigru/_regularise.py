"""The regularisers of training (``Cell`` options, and ``mg.RNN``'s for every layer).

    input_dropout=p      x_t ← x_t ⊙ m_x / (1−p)        one mask m_x (B, I) per sequence
    recurrent_dropout=p  every product with U sees      one mask m_h (B, H) per sequence
                         h ⊙ m_h / (1−p); the direct uses of h (z ⊙ h, residual paths) do not
    zoneout=p            s_t = k_t ⊙ s_{t−1} + (1 − k_t) ⊙ cell(s_{t−1}, x_t)
                         k_t ~ Bernoulli(p) per step, row and unit, for every state component
                         (lstm: zoneout=(p_h, p_c)); evaluation: k_t = p
    weight_dropout=p     U ← U ⊙ M / (1−p)              one mask M of U's shape per forward
                         (DropConnect, AWD-LSTM; the rows of U that multiply h)

Gal & Ghahramani 2016 (variational dropout), Krueger et al. 2017 (zoneout), Merity et al. 2018
(weight dropout). All but zoneout are off in evaluation; zoneout then keeps the expected share
``p`` of the old state. The masks of a forward are drawn from the cell's generator (its ``seed``
option, or ``rng=`` of the forward, mg.RNN's own), kept in its cache, and the backward
differentiates exactly that forward: the same masks, scaled the same way.

Where each acts:

- ``input_dropout`` and ``weight_dropout`` change what the cell is given, not the cell: ``Cell``
  multiplies its copies of ``x`` and ``U`` by their masks before the forward, and the gradients
  ``dx`` and ``dU`` by the same masks after the backward (``d(U ⊙ M) / dU = M``). Every backend
  and structure gets them for free.
- ``recurrent_dropout`` and ``zoneout`` change the recurrence itself, so they live in the
  structures' loops (``masks=`` of their forwards): the product is formed from ``h ⊙ m_h``, and
  zoneout mixes each new state with the old one. Derivations: docs/regularisers.md.
"""

from dataclasses import dataclass
from typing import Optional


import numpy as np

from . import _check
from ._aligned import huge_arrays

OPTIONS = ("input_dropout", "recurrent_dropout", "zoneout", "weight_dropout")
DEFAULTS = {"input_dropout": 0.0, "recurrent_dropout": 0.0, "zoneout": 0.0,
            "weight_dropout": 0.0}


@dataclass(frozen=True)
class Masks:
    """What one forward drew (or, in evaluation, zoneout's constant share), kept in its cache.

    ``x`` (B, I) and ``h`` (B, H) are already scaled by ``1/(1−p)``; ``keep`` holds, per state
    component, k_t (T, B, H): 1 where the old value is kept; ``weights`` maps each recurrent
    matrix to the mask of its last H rows, scaled. ``binary``: keep's entries are 0 or 1 (drawn,
    in training), not evaluation's share p."""
    x: Optional[np.ndarray] = None
    h: Optional[np.ndarray] = None
    keep: Optional[tuple] = None
    weights: Optional[dict] = None
    binary: bool = True

    @property
    def in_loop(self):
        """The part the loops apply (recurrent dropout, zoneout), or None if neither is on."""
        if self.h is None and self.keep is None:
            return None
        return LoopMasks(self.h, self.keep, self.binary)


@dataclass(frozen=True)
class LoopMasks:
    """What a structure's loop applies: ``h`` the (B, H) mask of the products' h (or None),
    ``keep`` zoneout's k_t per state component (or None), ``binary`` as ``Masks``'."""
    h: Optional[np.ndarray]
    keep: Optional[tuple]
    binary: bool = True


def components(variant):
    """How many state components the variant has (lstm's h and c: 2), one zoneout rate each."""
    return variant.n_state


def check(variant, key, value):
    """The option's value, checked against the variant: a rate in [0, 1) (zoneout: [0, 1], or
    one per state component)."""
    n_state = components(variant)
    if key == "zoneout":
        values = value if isinstance(value, tuple) else (value,) * n_state
        if len(values) != n_state:
            raise ValueError(f"zoneout must be one rate or {n_state} (one per state "
                             f"component) for {variant.name}, got {value!r}")
        values = tuple(_check.in_range("zoneout", v, 0.0, 1.0) for v in values)
        return values if isinstance(value, tuple) else values[0]
    value = _check.probability(key, value)
    layout = variant.layout
    if value and key in ("recurrent_dropout", "weight_dropout") and (
            layout is None or not layout.recurrent):
        raise ValueError(f"{key} acts on the recurrent weights' product with h, and "
                         f"{variant.name} has none (its gates and candidate see only x): "
                         f"it does not apply; input_dropout and zoneout do")
    return value


def rates(options, n_state):
    """(input, recurrent, zoneout per component, weight) rates from a cell's options."""
    z = options["zoneout"]
    return (options["input_dropout"], options["recurrent_dropout"],
            z if isinstance(z, tuple) else (z,) * n_state, options["weight_dropout"])


def _bernoulli_keep(rng, rate, shape, dtype):
    """keep / (1 − rate), keep ~ Bernoulli(1 − rate); drawn in float64 whatever the dtype."""
    return ((rng.random(shape) >= rate) / (1.0 - rate)).astype(dtype)


def _bernoulli(rng, rate, shapes, dtype):
    """k ~ Bernoulli(rate) as 0 and 1 of ``dtype``, one array per shape, each from a seed of 64
    bits drawn from ``rng``: 16 bits of a counter-based stream per entry (``_bits.py``; the rate
    is so resolved to 1/65536, 7.6e-6 at worst). Zoneout draws one k per step, row and unit, so
    this is on the hot path: compiled, and the results in one block of at least
    ``HUGE_PAGE_BYTES`` (fresh arrays of a few MB per forward cost the medium rnn 1,600 page
    faults a step). The same bits whatever the dtype, so a float32 run and its float64 check see
    the same masks."""
    from ._bits import bernoulli_fill, threshold
    out = huge_arrays(dtype, *shapes)
    for k in out:
        bernoulli_fill(np.uint64(rng.bit_generator.random_raw()), threshold(rate), k.reshape(-1))
    return out


def draw(variant, options, rng, T, B, I, H, p, training, dtype):
    """The ``Masks`` of one forward, or None when no regulariser acts on it."""
    n_state = components(variant)
    p_x, p_h, p_z, p_w = rates(options, n_state)
    # an output the loops carry before the state (sru's h) is never kept: k = 0 there
    hidden = tuple(np.zeros((variant.hidden_outputs, T, B, H), dtype)) if any(p_z) else ()
    if not training:
        if not any(p_z):
            return None
        return Masks(keep=hidden + tuple(np.full((T, B, H), z, dtype) for z in p_z),
                     binary=False)
    if not (p_x or p_h or any(p_z) or p_w):
        return None
    return Masks(
        x=_bernoulli_keep(rng, p_x, (B, I), dtype) if p_x else None,
        h=_bernoulli_keep(rng, p_h, (B, H), dtype) if p_h else None,
        keep=(hidden + tuple(k for z in p_z for k in _bernoulli(rng, z, [(T, B, H)], dtype))
              if any(p_z) else None),
        weights=({w: _bernoulli_keep(rng, p_w, (H, p[w].shape[1]), dtype)
                  for w in variant.layout.recurrent} if p_w else None))


def _on_host(arrays, what):
    if not all(isinstance(a, np.ndarray) for a in arrays):
        raise NotImplementedError(f"{what} multiplies NumPy arrays by their masks, and device "
                                  f"arrays were given: pass host arrays to a forward or "
                                  f"backward with input_dropout or weight_dropout")


def apply_to_inputs(masks, seen, x, H):
    """Multiply the forward's own copies of ``x`` and the recurrent weights by their masks."""
    _on_host([x] * (masks.x is not None) + [seen[w] for w in (masks.weights or {})],
             "input and weight dropout")
    if masks.x is not None:
        x *= masks.x                                  # (T, B, I) ⊙ (B, I)
    for w, m in (masks.weights or {}).items():
        seen[w][-H:] *= m


def apply_to_gradients(masks, dx, grads, H):
    """The chain rule through ``apply_to_inputs``: the same masks on dx and dU."""
    _on_host([dx] * (masks.x is not None) + [grads[w] for w in (masks.weights or {})],
             "input and weight dropout")
    if masks.x is not None:
        dx *= masks.x
    for w, m in (masks.weights or {}).items():
        grads[w][-H:] *= m


def zoneout_step(options, n_state, state, new):
    """Evaluation-mode zoneout of one step: ``p · s + (1 − p) · new`` per component."""
    z = rates(options, n_state)[2]
    if n_state == 1:
        return z[0] * state + (1 - z[0]) * new
    return tuple(p * s + (1 - p) * n for p, s, n in zip(z, state, new))
