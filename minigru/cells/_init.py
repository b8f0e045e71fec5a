"""Initialisations (``init=`` of ``Cell.init`` and ``mg.RNN``): where each scheme puts its numbers.

A scheme needs to know little of a cell: which matrices multiply x (Glorot), which multiply h
(orthogonal, one ``H × H`` block at a time), which vectors are biases and which of their ``H``-wide
blocks belong to sigmoid gates, and the gate whose σ is the share of the old state that a step
keeps. A cell's ``Layout`` says exactly that; the schemes below read nothing else, so they serve
every declared cell, built in or your own.

- ``"pytorch"`` (the default): each cell's own initialisation, unchanged (PyTorch's
  ``U(±1/√H)`` for the gated cells, the papers' for rru, lngru, ligru, indrnn and janet; janet's
  paper draws its forget bias as chrono does, so there ``t_max`` applies too).
- ``"keras"``: Glorot-uniform x weights, orthogonal recurrent blocks, zero biases; a cell with a
  forget gate in the LSTM sense (``unit_forget_bias``) starts it at 1, as Keras does.
- ``"orthogonal"``: Glorot-uniform x weights, orthogonal recurrent blocks, zero biases.
- ``"chrono"`` (Tallec & Ollivier 2018): the weights as ``"orthogonal"``, and the bias of the gate
  that keeps the old state drawn as ``log U(1, t_max − 1)`` per unit (with the sign that makes
  it *keep*: ``−log U`` where the gate is the share of the candidate, mgu's f, mingru's z), so that
  the units' memory spans characteristic times up to ``t_max``; gates named ``opposite`` (lstm's
  input gate) get minus that draw.

``forget_bias=v`` then sets the keeping gate's bias to ``±v`` (the sign as for chrono: ``v > 0``
keeps more), ``gate_bias=v`` every sigmoid gate's bias to ``v`` (``forget_bias`` wins for the
keeping gate when both are given).
"""

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

SCHEMES = ("pytorch", "keras", "orthogonal", "chrono")
T_MAX = 100                      # chrono's default longest characteristic time (VARIANTS.md)


@dataclass(frozen=True)
class Layout:
    """Where a cell's parameters sit, as the initialisation schemes see them.

    ``recurrent`` names the matrices whose last ``H`` rows multiply h (all of ``U``'s; rru's
    ``J`` multiplies ``[x | h]``); ``blocks`` says whether its columns are ``H``-wide blocks, each
    made orthogonal on its own (otherwise the rows are made orthonormal, Keras's rule for a
    non-square matrix). ``biases`` maps each bias vector to the names of its ``H``-wide blocks
    (None: no gate in it); ``keep`` is ``(gate, sign)``; ``scale`` what a gate's pre-activation
    multiplies its bias by where that is not 1 (rru's ``σ(10·s)``)."""
    input_weights: tuple = ()
    recurrent: tuple = ()
    blocks: bool = True
    biases: dict = field(default_factory=dict)
    gates: tuple = ()
    keep: Optional[tuple] = None
    opposite: tuple = ()
    unit_forget_bias: bool = False
    scale: dict = field(default_factory=dict)
    chrono: bool = False          # the cell's own init ("pytorch") draws the keeping gate's bias
                                  # as chrono does, with t_max (janet)


def glorot(shape, rng):
    """Glorot (Xavier) uniform over the whole matrix: ``U(±√(6 / (fan_in + fan_out)))``."""
    limit = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, size=shape)


def orthogonal(rows, cols, rng):
    """A ``(rows, cols)`` matrix with orthonormal rows (``rows <= cols``) or columns: the Q of a
    Gaussian matrix's QR, its signs fixed by R's diagonal so that Q is uniformly (Haar)
    distributed (Saxe et al. 2014; the rule of Keras and ``torch.nn.init.orthogonal_``)."""
    a = rng.normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    return q if rows >= cols else q.T


def _bias_block(layout, p, gate):
    """(parameter name, slice) of ``gate``'s bias, or None when the cell has no bias for it."""
    for name, blocks in layout.biases.items():
        if blocks is not None and gate in blocks and name in p:
            H = p[name].shape[0] // len(blocks)
            k = blocks.index(gate)
            return name, slice(k * H, (k + 1) * H)
    return None


def initialise(name, layout, p, H, scheme, rng, forget_bias=None, gate_bias=None, t_max=None):
    """Apply ``scheme`` and the bias options to ``p`` (the cell's own initialisation, float64 or
    float32, ``H`` units) in place; ``name`` is the variant's, for the messages."""
    if scheme not in SCHEMES:
        raise ValueError(f"init must be one of {', '.join(map(repr, SCHEMES))}, got {scheme!r}")
    own_chrono = layout is not None and layout.chrono and scheme == "pytorch"
    if t_max is not None and scheme != "chrono" and not own_chrono:
        raise ValueError(f"t_max is chrono's option, and init is {scheme!r}: give "
                         f"init='chrono' with it, or leave it out")
    if layout is None:
        if scheme != "pytorch" or forget_bias is not None or gate_bias is not None:
            raise ValueError(f"{name} says nothing of where its weights and gates are (a bare "
                             f"Variant with no layout), so init={scheme!r}, forget_bias and "
                             f"gate_bias do not apply to it; declare it as Gated or TwoStage")
        return p
    if own_chrono and t_max is not None:            # janet's own forget bias, another t_max
        _chrono(name, layout, p, rng, t_max)
    if scheme != "pytorch":
        _weights(layout, p, H, rng)
        for bias in layout.biases:
            if bias in p:
                p[bias][...] = 0
        if scheme == "keras" and layout.unit_forget_bias:
            _set_keep(name, layout, p, 1.0, "init='keras'")
        if scheme == "chrono":
            _chrono(name, layout, p, rng, T_MAX if t_max is None else t_max)
    if gate_bias is not None:
        if not layout.gates:
            raise ValueError(f"gate_bias sets the biases of the sigmoid gates, and {name} has "
                             f"no gates")
        found = [_bias_block(layout, p, g) for g in layout.gates]
        if not any(found):
            raise ValueError(f"gate_bias: {name}'s gates have no biases here (bias=False, or "
                             f"a variant whose gates see no bias)")
        for gate, where in zip(layout.gates, found):
            if where is not None:
                p[where[0]][where[1]] = gate_bias / layout.scale.get(where[0], 1.0)
    if forget_bias is not None:
        _set_keep(name, layout, p, forget_bias, "forget_bias")
    return p


def _weights(layout, p, H, rng):
    for w in layout.input_weights:
        p[w][...] = glorot(p[w].shape, rng)
    for w in layout.recurrent:
        h = p[w][-H:]
        if layout.blocks:
            for k in range(h.shape[1] // H):
                h[:, k * H:(k + 1) * H] = orthogonal(H, H, rng)
        else:
            h[...] = orthogonal(*h.shape, rng)


def _keep_block(name, layout, p, what):
    if layout.keep is None:
        raise ValueError(f"{what} sets the bias of the gate that keeps the old state, and "
                         f"{name} has no such gate")
    where = _bias_block(layout, p, layout.keep[0])
    if where is None:
        raise ValueError(f"{what} sets the bias of {name}'s {layout.keep[0]!r} gate, and it "
                         f"has none here (bias=False, or a variant whose gates see no bias)")
    return where


def _set_keep(name, layout, p, value, what):
    bias, rows = _keep_block(name, layout, p, what)
    p[bias][rows] = layout.keep[1] * value / layout.scale.get(bias, 1.0)


def _chrono(name, layout, p, rng, t_max):
    if not (isinstance(t_max, (int, float, np.integer, np.floating))
            and not isinstance(t_max, bool) and t_max > 2):
        raise ValueError(f"t_max must be a number above 2 (the longest characteristic time, "
                         f"in steps), got {t_max!r}")
    bias, rows = _keep_block(name, layout, p, "init='chrono'")
    H = rows.stop - rows.start
    draw = np.log(rng.uniform(1.0, t_max - 1.0, size=H))
    p[bias][rows] = layout.keep[1] * draw / layout.scale.get(bias, 1.0)
    for gate in layout.opposite:
        where = _bias_block(layout, p, gate)
        if where is not None:
            p[where[0]][where[1]] = -layout.keep[1] * draw / layout.scale.get(where[0], 1.0)
