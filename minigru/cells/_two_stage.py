"""``TwoStage``: a cell whose gates act on h *before* the candidate's product, so that each step
is two stages around it.

gru_v3 (the textbook GRU), Dey & Salem's gru1..gru3 and the minimal gated units mgu, mgu1..mgu3
have this shape. A cell file declares its gates, what they see and its point functions
(``_point.py``); this file holds the NumPy loops that run them, the reference for every
backend::

    a_g = x W_g + b_g,  a_n = x W_n + b_n        every step at once, before the loop
    for t:
        gates = gate_point(a_g + h_t U_g)         stage 1: the gates (r, z; or f)
        u_n   = (gate_reset ⊙ h_t) U_n            the product the reset gate acts before
        h_{t+1}, n = candidate_point(a_n, u_n, h_t, *gates)          stage 2

What the gates see is three switches: ``sees_x`` (a ``W_g`` block in ``W``), ``sees_h`` (a
``U_g`` block in ``U``), ``has_bias`` (a ``b_g`` block in ``b``). Each of W, U, b holds the gate
blocks where the gates see that term, followed by the candidate's H columns. The point
functions' signatures (positional)::

    gate_point(*pre) -> gates                       pre_g = x W_g + h U_g + b_g, whichever apply
    gate_point_backward(*d_gates, *gates) -> d_pre  (through the gates' nonlinearities)
    candidate_point(an, un, h, *gates) -> (h', n)
    candidate_point_backward(dh, h, h_new, n, *gates) -> (dan, d_h, *d_gates)

``candidate_point_backward`` gives the gradient that reaches h and the gates directly; the loop
adds what reaches them through the product: with ``drh = dan U_nᵀ``, ``d_reset += drh ⊙ h`` and
``d_h += drh ⊙ reset``.

Cache, T steps, B batch, H hidden: x (T, B, I); hs (T+1, B, H) = h_0 .. h_T; each gate and n
(T, B, H).
"""

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ._init import Layout
from ._variant import Variant, uniform_init


@dataclass(frozen=True)
class TwoStage:
    """The declaration of a reset-before cell (see the module docstring for the protocol)."""
    name: str
    paper: str
    equations: str
    gates: tuple                # the gate blocks' names, in order (("r", "z"), ("f",))
    reset: str                  # the gate that multiplies h before U_n
    sees_x: bool
    sees_h: bool
    has_bias: bool
    gate_point: Callable
    gate_point_backward: Callable
    candidate_point: Callable
    candidate_point_backward: Callable
    init: Optional[Callable] = None
    keep: Optional[tuple] = None  # (gate, +1 | -1): its σ is the share of the old state kept
                                  # (+1) or of the candidate taken (-1), for init= (_init.py)

    def __post_init__(self):
        if not isinstance(self.gates, tuple) or not self.gates:
            raise TypeError(f"{self.name}: gates must be a tuple of names, got {self.gates!r}")
        if self.reset not in self.gates:
            raise ValueError(f"{self.name}: reset must be one of the gates {self.gates}, got "
                             f"{self.reset!r}")
        for name in ("gate_point", "gate_point_backward", "candidate_point",
                     "candidate_point_backward"):
            if not callable(getattr(self, name)):
                raise TypeError(f"{self.name}: {name} must be a function")

    # ------------------------------------------------------------------ layout
    @property
    def Gg(self):
        return len(self.gates)

    def shapes(self, input_size, hidden_size):
        I, H, G = input_size, hidden_size, self.Gg
        return {"W": (I, ((G if self.sees_x else 0) + 1) * H),
                "U": (H, ((G if self.sees_h else 0) + 1) * H),
                "b": (((G if self.has_bias else 0) + 1) * H,)}

    def sizes(self, p):
        return {"input_size": p["W"].shape[0], "hidden_size": p["U"].shape[0]}

    def init_params(self, input_size, hidden_size, rng, dtype):
        if self.init is not None:
            return self.init(input_size, hidden_size, rng, dtype)
        return uniform_init(self.shapes(input_size, hidden_size), hidden_size, rng, dtype)

    def layout(self):
        """Where W, U and the gates' biases are, for the initialisation schemes (``_init.py``):
        the gate blocks (where the gates see that term), then the candidate's."""
        gates = self.gates if self.has_bias else ()
        return Layout(input_weights=("W",), recurrent=("U",),
                      biases={"b": gates + ("n",)}, gates=self.gates, keep=self.keep)

    def variant(self):
        return Variant(name=self.name, paper=self.paper, equations=self.equations,
                       shapes=self.shapes, sizes=self.sizes, init=self.init_params,
                       forward=self.forward, backward=self.backward, step=self.step,
                       structure=self, layout=self.layout(), loop_regularisers=True)

    def split(self, p):
        """(gate part or None, candidate part) of each of W, U, b: the last H columns are the
        candidate's, the gate blocks (where the gates see that term) before them."""
        H = p["U"].shape[0]
        sees = {"W": self.sees_x, "U": self.sees_h, "b": self.has_bias}
        return {k: (p[k][..., :-H] if sees[k] else None, p[k][..., -H:]) for k in "WUb"}

    # ------------------------------------------------------------------ the NumPy reference
    def _inputs(self, p, x):
        """The gates' x and bias terms (T, B, Gg·H) (zeros where they see neither) and the
        candidate's, x W_n + b_n (T, B, H): every step at once."""
        parts = self.split(p)
        (Wg, Wn), (bg, bn) = parts["W"], parts["b"]
        T, B = x.shape[:2]
        H = bn.shape[0]
        ag = np.zeros((T, B, self.Gg * H), x.dtype)
        if Wg is not None:
            ag += x @ Wg
        if bg is not None:
            ag += bg
        return ag, x @ Wn + bn

    def _stages(self, ag_t, an_t, h, Ug, Un, m_h=None):
        """One step: gates, the reset-scaled h, the candidate -> h', n, gates. With recurrent
        dropout both products see h ⊙ m_h; the candidate's direct use of h does not."""
        H = h.shape[1]
        hp = h if m_h is None else h * m_h            # what the products see
        pre = ag_t + hp @ Ug if Ug is not None else ag_t
        gates = self.gate_point(*(pre[:, g * H:(g + 1) * H] for g in range(self.Gg)))
        gates = gates if isinstance(gates, tuple) else (gates,)
        rh = gates[self.gates.index(self.reset)] * hp  # the reset acts on h, before the product
        h_new, n = self.candidate_point(an_t, rh @ Un, h, *gates)
        return h_new, n, gates

    def forward(self, p, x, h0, training=True, *, masks=None):
        """``masks``: recurrent dropout and zoneout (as ``Gated.forward``)."""
        m_h, keep = (None, None) if masks is None else (masks.h, masks.keep)
        parts = self.split(p)
        (Ug, Un) = parts["U"]
        T, B, _ = x.shape
        H = h0.shape[1]
        ag, an = self._inputs(p, x)
        hs = np.empty((T + 1, B, H), x.dtype)
        hs[0] = h0
        n = np.empty((T, B, H), x.dtype)
        gates = [np.empty((T, B, H), x.dtype) for _ in self.gates]
        new = hs if keep is None else np.empty((T + 1, B, H), x.dtype)   # the point's h'
        for t in range(T):
            new[t + 1], n[t], g_t = self._stages(ag[t], an[t], hs[t], Ug, Un, m_h)
            for g, v in zip(gates, g_t):
                g[t] = v
            if keep is not None:                      # zoneout: keep k of the old state
                hs[t + 1] = keep[0][t] * hs[t] + (1 - keep[0][t]) * new[t + 1]
        cache = {"x": x, "hs": hs, **dict(zip(self.gates, gates)), "n": n, "masks": masks}
        if keep is not None:
            cache["new_hs"] = new
        return hs[1:].copy(), hs[T].copy(), cache

    def backward(self, p, cache, dys, dh_T):
        parts = self.split(p)
        (Wg, Wn), (Ug, Un), (bg, _) = parts["W"], parts["U"], parts["b"]
        x, hs, n = cache["x"], cache["hs"], cache["n"]
        gates = [cache[g] for g in self.gates]
        reset = gates[self.gates.index(self.reset)]
        T, B, H = n.shape
        k = self.gates.index(self.reset)
        masks = cache.get("masks")
        m_h, keep = (None, None) if masks is None else (masks.h, masks.keep)
        new = hs if keep is None else cache["new_hs"]
        hp = hs if m_h is None else hs * m_h          # what the products saw
        dag = np.empty((T, B, self.Gg * H), x.dtype)  # dL/d(the gates' pre-activations)
        dan = np.empty((T, B, H), x.dtype)            # dL/d(the candidate's pre-activation)
        dh_next = dh_T.copy()
        for t in reversed(range(T)):
            dh = dys[t] + dh_next                     # h_t feeds the output and step t+1
            if keep is not None:                      # h' = k h + (1-k) new: split the gradient
                dh, d_kept = (1 - keep[0][t]) * dh, keep[0][t] * dh
            g_t = [g[t] for g in gates]
            dan[t], d_h, *d_g = self.candidate_point_backward(dh, hs[t], new[t + 1], n[t], *g_t)
            drh = dan[t] @ Un.T                       # through the product (reset ⊙ h) U_n
            d_g[k] = d_g[k] + drh * hp[t]
            d_hp = drh * reset[t]                     # reaching h through the products
            d_pre = self.gate_point_backward(*d_g, *g_t)
            d_pre = d_pre if isinstance(d_pre, tuple) else (d_pre,)
            dag[t] = np.concatenate([np.broadcast_to(d, (B, H)) for d in d_pre], axis=1)
            if Ug is not None:                        # the gates saw h
                d_hp = d_hp + dag[t] @ Ug.T
            dh_next = d_h + (d_hp if m_h is None else d_hp * m_h)
            if keep is not None:
                dh_next = dh_next + d_kept
        I = x.shape[2]
        X = x.reshape(T * B, I)
        dA_g, dA_n = dag.reshape(T * B, self.Gg * H), dan.reshape(T * B, H)
        g = {  # gate part, candidate part of each gradient
            "W": (X.T @ dA_g if Wg is not None else None, X.T @ dA_n),
            "U": (hp[:-1].reshape(T * B, H).T @ dA_g if Ug is not None else None,
                  (reset * hp[:-1]).reshape(T * B, H).T @ dA_n),
            "b": (dA_g.sum(axis=0) if bg is not None else None, dA_n.sum(axis=0)),
        }
        grads = {k: np.concatenate([a for a in parts if a is not None], axis=-1)
                 for k, parts in g.items()}
        dx = dan @ Wn.T
        if Wg is not None:
            dx += dag @ Wg.T
        return dx, dh_next, grads

    def step(self, p, x_t, h):
        parts = self.split(p)
        ag, an = self._inputs(p, x_t[None])
        h, _, _ = self._stages(ag[0], an[0], h, *parts["U"])
        return h, h
