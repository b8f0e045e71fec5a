"""``Gated``: a cell whose step is one recurrent product, then pointwise math.

rnn, lstm, gru, ligru, lngru and mingru have this shape, and so can a cell of your own. A cell
file declares its blocks and its *point functions* (the math of one unit, ``_point.py``); this
file holds the NumPy loops that run them, the reference for every backend::

    a = x W + b                 (T, B, Gx·H): every step at once, before the loop
    for t:                      the only sequential part
        u = h_t U + c           (B, Gh·H): the recurrent product (none when Gh = 0: mingru)
        new state, saves = point(a_t blocks, u blocks, unit params, state_t)

``b`` holds the biases of the x blocks named in ``bias`` (all by default), ``c`` those of the h
blocks named in ``h_bias`` (none by default; gru's ``c`` is its n block's). Two normalisations
sit around the products where a cell asks for them: ``x_norm="layer"`` (``a = g_x ⊙ LN(x W) +
b``, per row) or ``"batch"`` (``a = gamma ⊙ BN(x W) + beta``, over all T·B rows, with running
statistics for evaluation), and ``h_norm="layer"`` (``u = g_h ⊙ LN(h U) + c``, per row, inside
the loop); with a layer norm the bias covers every block.

The point functions' signatures (positional; the blocks in the order declared)::

    point(*a_blocks, *u_blocks, *unit_params, *constants, *state) -> (*new_state, *saves)
    point_backward(*d_new_state, *state, *new_state, *saves, *unit_params, *constants)
        -> (*d_a_blocks, *d_u_blocks_not_summed, *d_unit_params, *d_state)

A block of ``u`` named in ``summed`` enters the point only as ``a_g + u_g`` (gru's r and z, every
block of lstm's), so its gradient is its ``a`` block's and the backward does not return it
again. ``d_state`` is the gradient that reaches the old state directly (``z ⊙ dh`` for a GRU);
the loop adds what reaches it through ``h U``. ``y_t`` is the new ``state[0]``.

Three more things a declaration may say. ``packed``: unit parameters stored side by side in one
vector (sru's ``v = [v_f | v_r]``, each part given to the point on its own). ``constants``:
per-unit numbers fixed by a cell option rather than trained (janet's ``beta``), given to the
point after the unit parameters and differentiated by nobody. ``output_only``: ``state[0]`` is
the cell's output and not fed back (sru's h): the loops carry it like a state component, so
dL/dy reaches the point's backward the same way, but the point must not read it, and the state a
user passes and gets is the rest of ``state``.

Dimension legend: T steps, B batch, I input, H hidden, Gx / Gh blocks of x W / h U.
"""

from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Optional

import numpy as np

from ._init import Layout
from ._math import normalize, normalize_backward
from ._point import reads as _reads
from ._scan import linear_scan, linear_scan_backward, refuse_zoneout
from ._variant import Variant, uniform_init

EPS = 1e-5           # the normalisations' epsilon (PyTorch's LayerNorm and BatchNorm default)
X_NORMS = (None, "layer", "batch")
H_NORMS = (None, "layer")


@dataclass(frozen=True)
class Gated:
    """The declaration of a one-product cell (see the module docstring for the protocol).

    ``x_blocks`` and ``h_blocks`` name the blocks of x W and h U, in the order of W's and U's
    columns; ``bias`` the x blocks that have a bias in ``b`` (None: all of them, (): no ``b``);
    ``h_bias`` the h blocks that have one in ``c``; ``unit_params`` the (H,) parameters given to
    the point unit by unit; ``state`` the state's components (the output is the first);
    ``saves`` what the point keeps for the backward.
    """
    name: str
    paper: str
    equations: str
    x_blocks: tuple
    point: Callable
    point_backward: Callable
    h_blocks: tuple = ()
    summed: tuple = ()
    bias: Optional[tuple] = None
    h_bias: tuple = ()
    unit_params: tuple = ()
    state: tuple = ("h",)
    saves: tuple = ()
    x_norm: Optional[str] = None
    h_norm: Optional[str] = None
    init: Optional[Callable] = None     # (input_size, hidden_size, rng, dtype) -> p
    bias_params: tuple = ()             # what bias=False leaves out (they are zeros then)
    gates: tuple = ()                   # the x blocks that are sigmoid gates (for init=, _init.py)
    keep: Optional[tuple] = None        # (gate, +1 | -1): its σ is the share of the old state
                                        # kept (+1) or of the candidate taken (-1)
    opposite: tuple = ()                # gates chrono starts at minus the keeping gate's bias
    unit_forget_bias: bool = False      # init="keras" starts the keeping gate's bias at 1
    chrono: bool = False                # its own init draws the keeping gate's bias as chrono
    packed: tuple = ()                  # ((vector, (unit params in it, in order)), ...)
    constants: tuple = ()               # ((name, default), ...): per-unit, fixed by an option
    output_only: bool = False           # state[0] is the output, not fed back (sru's h)
    linear: Optional[tuple] = None      # (coefficients, coefficients_backward): h' = a⊙h + b
    nonnegative: tuple = ()             # state components a given state must have ≥ 0

    def __post_init__(self):
        def names(what, value):
            if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                raise TypeError(f"{self.name}: {what} must be a tuple of names, got {value!r}")
        for what in ("x_blocks", "h_blocks", "summed", "h_bias", "unit_params", "state",
                     "saves"):
            names(what, getattr(self, what))
        if not self.x_blocks:
            raise ValueError(f"{self.name}: x_blocks must name at least one block of x W")
        if not set(self.summed) <= set(self.h_blocks) & set(self.x_blocks):
            raise ValueError(f"{self.name}: summed must name blocks in both x_blocks and "
                             f"h_blocks, got {self.summed!r}")
        if self.bias is not None:
            names("bias", self.bias)
            if not set(self.bias) <= set(self.x_blocks):
                raise ValueError(f"{self.name}: bias must name blocks of x_blocks, got "
                                 f"{self.bias!r}")
        if not set(self.h_bias) <= set(self.h_blocks):
            raise ValueError(f"{self.name}: h_bias must name blocks of h_blocks, got "
                             f"{self.h_bias!r}")
        if self.x_norm not in X_NORMS or self.h_norm not in H_NORMS:
            raise ValueError(f"{self.name}: x_norm must be one of {X_NORMS} and h_norm one of "
                             f"{H_NORMS}, got {self.x_norm!r}, {self.h_norm!r}")
        if self.h_norm and not self.h_blocks:
            raise ValueError(f"{self.name}: h_norm needs h_blocks (a product to normalise)")
        if not callable(self.point) or not callable(self.point_backward):
            raise TypeError(f"{self.name}: point and point_backward must be functions")
        if not self.state:
            raise ValueError(f"{self.name}: state must name at least one component")
        names("gates", self.gates)
        names("opposite", self.opposite)
        if not set(self.gates) | set(self.opposite) <= set(self.x_blocks):
            raise ValueError(f"{self.name}: gates and opposite must name blocks of x_blocks, "
                             f"got {self.gates!r}, {self.opposite!r}")
        packed = [u for _, parts in self.packed for u in parts]
        if not (set(packed) <= set(self.unit_params) and len(packed) == len(set(packed))):
            raise ValueError(f"{self.name}: packed must put each of unit_params in at most one "
                             f"vector, got {self.packed!r}")
        if not all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                   for k, v in self.constants):
            raise TypeError(f"{self.name}: constants must be (name, default number) pairs, got "
                            f"{self.constants!r}")
        if self.output_only and len(self.state) < 2:
            raise ValueError(f"{self.name}: output_only needs a state after the output, got "
                             f"state={self.state!r}")
        if self.output_only and _reads(self.point, self.state[0]):
            raise ValueError(f"{self.name}: with output_only, state[0] ({self.state[0]!r}) is "
                             f"the output, which is not fed back: the point must not read it")
        if self.linear is not None and not (
                isinstance(self.linear, tuple) and len(self.linear) == 2
                and all(callable(f) for f in self.linear)):
            raise TypeError(f"{self.name}: linear must be (coefficients, coefficients_backward), "
                            f"two point functions, got {self.linear!r}")
        if self.linear is not None and (self.Gh or len(self.state) > 1 or self.vectors):
            raise ValueError(f"{self.name}: linear (a recurrence h' = a⊙h + b with a, b from x "
                             f"alone) needs no h blocks, one state component and no unit "
                             f"parameters or constants")
        if not set(self.nonnegative) <= set(self.state[1 if self.output_only else 0:]):
            raise ValueError(f"{self.name}: nonnegative must name state components, got "
                             f"{self.nonnegative!r}")
        if self.keep is not None and not (isinstance(self.keep, tuple) and len(self.keep) == 2
                                          and self.keep[0] in self.gates
                                          and self.keep[1] in (1, -1)):
            raise ValueError(f"{self.name}: keep must be (one of gates, +1 or -1), got "
                             f"{self.keep!r}")

    # ------------------------------------------------------------------ layout
    @cached_property
    def Gx(self):
        return len(self.x_blocks)

    @cached_property
    def Gh(self):
        return len(self.h_blocks)

    @cached_property
    def bias_blocks(self):
        """The x blocks ``b`` holds, in order ((): no ``b``; a batch norm has ``beta``)."""
        if self.x_norm == "batch":
            return ()
        return self.x_blocks if self.bias is None or self.x_norm == "layer" else self.bias

    @cached_property
    def h_bias_blocks(self):
        """The h blocks ``c`` holds, in order (all of them after a layer norm)."""
        return self.h_blocks if self.h_norm == "layer" else self.h_bias

    @cached_property
    def separate(self):
        """The h blocks whose gradient the point's backward returns (those not summed)."""
        return tuple(g for g in self.h_blocks if g not in self.summed)

    def shapes(self, input_size, hidden_size):
        """{name: shape} of the parameters, in the order VARIANTS.md lists them."""
        I, H = input_size, hidden_size
        s = {"W": (I, self.Gx * H)}
        if self.h_blocks:
            s["U"] = (H, self.Gh * H)
        if self.x_norm == "layer":
            s["g_x"] = (self.Gx * H,)
        if self.h_norm == "layer":
            s["g_h"] = (self.Gh * H,)
        if self.x_norm == "batch":
            s["gamma"] = s["beta"] = (self.Gx * H,)
        if self.bias_blocks:
            s["b"] = (len(self.bias_blocks) * H,)
        if self.h_bias_blocks:
            s["c"] = (len(self.h_bias_blocks) * H,)
        vectors = dict(self.packed)
        inside = {u for parts in vectors.values() for u in parts}
        for name in self.unit_params:
            if name not in inside:
                s[name] = (H,)
        for name, parts in vectors.items():
            s[name] = (len(parts) * H,)
        return s

    @cached_property
    def fixed(self):
        """The constants' names: in the p the loops are given, never in the gradients."""
        return tuple(name for name, _ in self.constants)

    @cached_property
    def vectors(self):
        """What the point gets unit by unit after the blocks: unit params, then constants."""
        return self.unit_params + self.fixed

    @cached_property
    def _packed_parts(self):
        """{unit parameter: (the packed vector holding it, its place there)}."""
        return {u: (name, k) for name, parts in self.packed for k, u in enumerate(parts)}

    def unit_arrays(self, p, H):
        """The (H,) arrays of ``vectors`` from p (a packed vector's parts are views of it)."""
        where = self._packed_parts
        out = []
        for name in self.vectors:
            if name in where:
                vector, k = where[name]
                out.append(p[vector][k * H:(k + 1) * H])
            else:
                out.append(p[name])
        return out

    def unit_grads(self, dvecs):
        """{parameter: gradient} from the unit params' gradients, (H,) each, in order."""
        grads = dict(zip(self.unit_params, dvecs))
        for name, parts in self.packed:
            grads[name] = np.concatenate([grads.pop(u) for u in parts])
        return grads

    def sizes(self, p):
        W = p["W"]
        return {"input_size": W.shape[0], "hidden_size": W.shape[1] // self.Gx}

    def init_params(self, input_size, hidden_size, rng, dtype):
        if self.init is not None:
            return self.init(input_size, hidden_size, rng, dtype)
        return uniform_init(self.shapes(input_size, hidden_size), hidden_size, rng, dtype)

    def layout(self):
        """Where W, U and the gates' biases are, for the initialisation schemes (``_init.py``)."""
        biases = {"beta": self.x_blocks} if self.x_norm == "batch" else {}
        if self.bias_blocks:
            biases["b"] = self.bias_blocks
        if self.h_bias_blocks:
            biases["c"] = self.h_bias_blocks
        return Layout(input_weights=("W",), recurrent=("U",) if self.h_blocks else (),
                      biases=biases, gates=self.gates, keep=self.keep, opposite=self.opposite,
                      unit_forget_bias=self.unit_forget_bias, chrono=self.chrono)

    def init_buffers(self, p):
        """The running statistics of a batch norm, as a fresh PyTorch BatchNorm has them."""
        dtype, n = p["gamma"].dtype, p["gamma"].shape[0]
        return {"running_mean": np.zeros(n, dtype), "running_var": np.ones(n, dtype)}

    def variant(self):
        """This cell as the rest of minigru knows a variant."""
        batch = self.x_norm == "batch"
        return Variant(
            name=self.name, paper=self.paper, equations=self.equations,
            shapes=self.shapes, sizes=self.sizes, init=self.init_params,
            forward=self.forward, backward=self.backward, step=self.step,
            state=self.state[1:] if self.output_only else self.state, loop_state=self.state,
            nonnegative_state=self.nonnegative, output_is_state=not self.output_only,
            bias_params=self.bias_params,
            run_options={**({"momentum": 0.1} if batch else {}), **dict(self.constants),
                         **({"scan": "sequential"} if self.linear else {})},
            constants=tuple(name for name, _ in self.constants),
            init_buffers=self.init_buffers if batch else None, structure=self,
            layout=self.layout(), loop_regularisers=True)

    # ------------------------------------------------------------------ the NumPy reference
    def forward(self, p, x, state0, training=True, *, momentum=None, buffers=None, masks=None,
                scan="sequential"):
        """``masks`` (``_regularise.LoopMasks``): recurrent dropout's m_h, the products then
        formed from h ⊙ m_h; zoneout's k_t, each new state then k ⊙ old + (1 − k) ⊙ the point's
        (kept as ``new_<component>s`` for the backward, which differentiates the point at the
        state it made). ``scan="parallel"`` (a ``linear`` cell): every step at once, in log
        space (``_scan.py``)."""
        if scan == "parallel":
            return self._scan_forward(p, x, state0, training, momentum, buffers, masks)
        m_h, keep = (None, None) if masks is None else (masks.h, masks.keep)
        T, B, _ = x.shape
        states0 = state0 if isinstance(state0, tuple) else (state0,)
        H = states0[0].shape[1]
        a, cache = self._x_forward(p, x, H, training, momentum, buffers)    # (T, B, Gx·H)
        S = [np.empty((T + 1, B, H), x.dtype) for _ in self.state]     # states 0 .. T
        for s, s0 in zip(S, states0):
            s[0] = s0
        saves = [np.empty((T, B, H), x.dtype) for _ in self.saves]
        if self.h_norm:
            cache["uhat"] = np.empty((T, B, self.Gh * H), x.dtype)
            cache["u_inv_std"] = np.empty((T, B, 1), x.dtype)
        vecs = self.unit_arrays(p, H)
        a_blocks = _blocks(a, self.Gx)                 # views (T, B, H), one per x block
        c = self._h_bias(p, H, x.dtype)
        new = S if keep is None else [np.empty((T + 1, B, H), x.dtype) for _ in S]
        for t in range(T):
            h = S[0][t] if m_h is None else S[0][t] * m_h        # what the product sees
            u = self._h_forward(p, h, c, cache, t)                  # (B, Gh·H) or None
            out = self.point(*(a_g[t] for a_g in a_blocks), *_blocks(u, self.Gh), *vecs,
                             *(s[t] for s in S))
            out = out if isinstance(out, tuple) else (out,)
            for s, o in zip(new, out):
                s[t + 1] = o
            for s, o in zip(saves, out[len(S):]):
                s[t] = o
            if keep is not None:                      # zoneout: keep k of the old state
                for s, n, k in zip(S, new, keep):
                    s[t + 1] = k[t] * s[t] + (1 - k[t]) * n[t + 1]
        cache.update({"x": x, **{k + "s": s for k, s in zip(self.state, S)},
                      **dict(zip(self.saves, saves)), "masks": masks})
        if keep is not None:
            cache.update({"new_" + k + "s": n for k, n in zip(self.state, new)})
        final = tuple(s[T].copy() for s in S)
        return S[0][1:].copy(), final if len(S) > 1 else final[0], cache

    def backward(self, p, cache, dys, dstate):
        if cache.get("scan") == "parallel":
            return self._scan_backward(p, cache, dys, dstate)
        x = cache["x"]
        T, B, H = dys.shape
        Gx, Gh = self.Gx, self.Gh
        S = [cache[k + "s"] for k in self.state]
        saves = [cache[k] for k in self.saves]
        vecs = self.unit_arrays(p, H)
        masks = cache.get("masks")
        m_h, keep = (None, None) if masks is None else (masks.h, masks.keep)
        new = S if keep is None else [cache["new_" + k + "s"] for k in self.state]
        d_next = [d.copy() for d in (dstate if isinstance(dstate, tuple) else (dstate,))]
        da = np.empty((T, B, Gx * H), x.dtype)        # dL/da, a = x W + b: the x side
        du = np.empty((T, B, Gh * H), x.dtype)        # dL/du, u = h U (after its norm)
        dhu = np.empty((T, B, Gh * H), x.dtype) if self.h_norm else du   # dL/d(h U)
        dvecs = [np.zeros(H, x.dtype) for _ in self.unit_params]   # (not the constants')
        n_sep, n_vec = len(self.separate), len(dvecs)
        for t in reversed(range(T)):
            # h_t feeds the output y_t and step t+1; the other components only step t+1
            d_new = [dys[t] + d_next[0], *d_next[1:]]
            if keep is not None:                      # s' = k s + (1-k) new: split the gradient
                d_kept = [k[t] * d for k, d in zip(keep, d_new)]
                d_new = [(1 - k[t]) * d for k, d in zip(keep, d_new)]
            out = self.point_backward(*d_new, *(s[t] for s in S), *(n[t + 1] for n in new),
                                      *(s[t] for s in saves), *vecs)
            # (a result that is a constant, e.g. lstm's ZERO for dh's direct part, as (B, H))
            out = [o if np.shape(o) == (B, H) else np.full((B, H), o, x.dtype) for o in out]
            d_a, d_sep = out[:Gx], out[Gx:Gx + n_sep]
            da[t] = np.concatenate(d_a, axis=1) if Gx > 1 else d_a[0]
            for dv, o in zip(dvecs, out[Gx + n_sep:Gx + n_sep + n_vec]):
                dv += o.sum(axis=0)
            d_next = out[Gx + n_sep + n_vec:]
            if keep is not None:
                d_next = [d + dk for d, dk in zip(d_next, d_kept)]
            if Gh:
                # a summed block's gradient is its x block's; the others the point returned
                sep = iter(d_sep)
                du[t] = np.concatenate([d_a[self.x_blocks.index(g)] if g in self.summed
                                        else next(sep) for g in self.h_blocks], axis=1)
                self._h_backward(p, du, dhu, cache, t)
                dh_u = dhu[t] @ p["U"].T                # through h U (h ⊙ m_h U)
                d_next[0] = d_next[0] + (dh_u if m_h is None else dh_u * m_h)
        grads, dxw = self._x_backward(p, da, cache)
        X = x.reshape(T * B, -1)
        grads["W"] = X.T @ dxw.reshape(T * B, Gx * H)
        if Gh:
            hs = S[0][:-1] if m_h is None else S[0][:-1] * m_h   # what the product saw
            grads["U"] = hs.reshape(T * B, H).T @ dhu.reshape(T * B, Gh * H)
            if self.h_norm:
                grads["g_h"] = (du * cache["uhat"]).sum(axis=(0, 1))
            if self.h_bias_blocks:
                grads["c"] = _select(du.sum(axis=(0, 1)), self.h_blocks, self.h_bias_blocks)
        grads.update(self.unit_grads(dvecs))
        d_state0 = tuple(np.array(d) for d in d_next)     # (its own arrays, whatever the
                                                       # point returned)
        dx = dxw @ p["W"].T
        grads = {k: grads[k] for k in p if k not in self.fixed}      # (not the constants)
        return dx, d_state0 if len(d_state0) > 1 else d_state0[0], grads

    def step(self, p, x_t, state, *, momentum=None, buffers=None):
        states = state if isinstance(state, tuple) else (state,)
        H = states[0].shape[1]
        a, _ = self._x_forward(p, x_t[None], H, False, momentum, buffers)
        u = self._h_forward(p, states[0], self._h_bias(p, H, x_t.dtype), None, 0)
        out = self.point(*_blocks(a[0], self.Gx), *_blocks(u, self.Gh),
                         *self.unit_arrays(p, H), *states)
        out = out if isinstance(out, tuple) else (out,)
        new = tuple(out[:len(self.state)])
        return new[0], new if len(new) > 1 else new[0]

    # ------------------------------------------------------------------ the parallel scan
    def _scan_forward(self, p, x, h0, training, momentum, buffers, masks):
        """The linear recurrence for every step at once: its coefficients a, b from the x side
        (the cell's ``coefficients``, on whole (T, B, H) arrays), then ``linear_scan``."""
        refuse_zoneout(self.name, masks)
        T, B, _ = x.shape
        H = h0.shape[1]
        xa, cache = self._x_forward(p, x, H, training, momentum, buffers)   # (T, B, Gx·H)
        coefficients = self.linear[0]
        a, b = coefficients(*_blocks(xa, self.Gx))
        hs = np.empty((T + 1, B, H), x.dtype)
        hs[0] = h0
        hs[1:] = linear_scan(a, b, h0)
        cache.update({"x": x, "xa": xa, "a": a, "b": b, self.state[0] + "s": hs, "masks": masks,
                      "scan": "parallel"})
        return hs[1:].copy(), hs[T].copy(), cache

    def _scan_backward(self, p, cache, dys, dstate):
        """The reverse scan (``linear_scan_backward``), then the coefficients' backward and the
        x side's, as the sequential backward ends."""
        x, a, b, hs = cache["x"], cache["a"], cache["b"], cache[self.state[0] + "s"]
        T, B, H = dys.shape
        d_coef_a, d_coef_b, dh0 = linear_scan_backward(a, hs, dys, dstate)
        d_blocks = self.linear[1](d_coef_a, d_coef_b, *_blocks(cache["xa"], self.Gx), a, b)
        da = np.concatenate(d_blocks, axis=-1) if self.Gx > 1 else d_blocks[0]
        grads, dxw = self._x_backward(p, da, cache)
        grads["W"] = x.reshape(T * B, -1).T @ dxw.reshape(T * B, self.Gx * H)
        return dxw @ p["W"].T, dh0, {k: grads[k] for k in p if k not in self.fixed}

    # ------------------------------------------------------------------ the x side
    def bias_row(self, p, H, dtype):
        """b spread over all Gx blocks of x W, zeros where a block has none: (Gx·H,)."""
        return _spread(p["b"], self.x_blocks, self.bias_blocks, H, dtype)

    def _x_forward(self, p, x, H, training, momentum, buffers):
        """a (T, B, Gx·H), and what its backward needs."""
        xw = x @ p["W"]                                # every step in one product
        if self.x_norm is None:
            return (xw + self.bias_row(p, H, x.dtype) if self.bias_blocks else xw), {}
        if self.x_norm == "layer":
            ahat, inv_std = normalize(xw, EPS, axis=-1)  # per row, over its Gx·H features
            return p["g_x"] * ahat + p["b"], {"ahat": ahat, "a_inv_std": inv_std}
        T, B, G = xw.shape                             # "batch": over all T·B rows
        v = xw.reshape(T * B, G)
        if training:
            require_batch_statistics(self.name, x)
            vhat, inv_std = normalize(v, EPS, axis=0)
            inv_std = inv_std[0]                       # (1, G) -> (G,), as in evaluation
            if buffers is not None:
                update_running(buffers, v, momentum)
        else:
            inv_std = 1.0 / np.sqrt(buffers["running_var"] + EPS)
            vhat = (v - buffers["running_mean"]) * inv_std
        a = (p["gamma"] * vhat + p["beta"]).reshape(T, B, G)
        return a, {"vhat": vhat, "inv_std": inv_std, "training": training}

    def _x_backward(self, p, da, cache):
        """(gradients of the x side's own parameters, dL/d(x W)) from dL/da."""
        T, B, G = da.shape
        if self.x_norm is None:
            grads = {}
            if self.bias_blocks:
                grads["b"] = _select(da.sum(axis=(0, 1)), self.x_blocks, self.bias_blocks)
            return grads, da
        if self.x_norm == "layer":
            # a = g_x*ahat + b, ahat = (x W - mean) * inv_std, per row
            dxw = normalize_backward(da * p["g_x"], cache["ahat"], cache["a_inv_std"], axis=-1)
            return {"g_x": (da * cache["ahat"]).sum(axis=(0, 1)), "b": da.sum(axis=(0, 1))}, dxw
        dA = da.reshape(T * B, G)                      # a = gamma*vhat + beta
        vhat, inv_std = cache["vhat"], cache["inv_std"]
        if cache["training"]:                          # through the batch's mean and variance
            dv = normalize_backward(dA * p["gamma"], vhat, inv_std, axis=0)
        else:                                          # the running statistics are constants
            dv = dA * p["gamma"] * inv_std
        grads = {"gamma": (dA * vhat).sum(axis=0), "beta": dA.sum(axis=0)}
        return grads, dv.reshape(T, B, G)

    # ------------------------------------------------------------------ the h side
    def _h_bias(self, p, H, dtype):
        """c spread over all Gh blocks of h U (zeros where a block has none), or None."""
        if not self.h_bias_blocks:
            return None
        return _spread(p["c"], self.h_blocks, self.h_bias_blocks, H, dtype)

    def _h_forward(self, p, h, c, cache, t):
        """u = h U (+ c), normalised where the cell asks; None without a recurrent product."""
        if not self.Gh:
            return None
        hu = h @ p["U"]                                # (B, Gh·H)
        if self.h_norm:
            uhat, inv_std = normalize(hu, EPS, axis=-1)
            if cache is not None:
                cache["uhat"][t], cache["u_inv_std"][t] = uhat, inv_std
            hu = p["g_h"] * uhat
        return hu if c is None else hu + c

    def _h_backward(self, p, du, dhu, cache, t):
        """dhu[t] = dL/d(h U) from du[t] = dL/du (the same array without a norm)."""
        if self.h_norm:                                # u = g_h*uhat + c, per row
            dhu[t] = normalize_backward(du[t] * p["g_h"], cache["uhat"][t],
                                        cache["u_inv_std"][t], axis=-1)


def _block(a, g, H):
    return a[..., g * H:(g + 1) * H]


def _spread(bias, blocks, biased, H, dtype):
    """A bias of the ``biased`` blocks spread over all ``blocks``, zeros elsewhere."""
    if biased == blocks:
        return bias
    full = np.zeros(len(blocks) * H, dtype)
    for k, g in enumerate(biased):
        i = blocks.index(g)
        full[i * H:(i + 1) * H] = bias[k * H:(k + 1) * H]
    return full


def _select(v, blocks, biased):
    """The ``biased`` blocks of v (len(blocks)·H,), in order: the gradient of their bias."""
    if biased == blocks:
        return v
    H = v.shape[0] // len(blocks)
    return np.concatenate([_block(v, blocks.index(g), H) for g in biased])


def _blocks(a, G):
    """The G blocks of a's last axis, as views: [a_0, a_1, ...]; none for a None."""
    if a is None:
        return []
    H = a.shape[-1] // G
    return [_block(a, g, H) for g in range(G)]


def require_batch_statistics(name, x):
    """Training mode's batch norm needs more than one value per feature (as PyTorch's)."""
    T, B = x.shape[:2]
    if T * B == 1:
        raise ValueError(
            f"{name} in training mode needs more than one value per feature for its batch "
            f"statistics (T·B > 1, as PyTorch's BatchNorm), got x of shape {x.shape}; "
            f"use training=False or a longer sequence or larger batch")


def update_running(buffers, v, momentum):
    """PyTorch BatchNorm's rule, in place; the variance is the unbiased one."""
    for key, batch in (("running_mean", v.mean(axis=0)), ("running_var", v.var(axis=0, ddof=1))):
        buffers[key] *= 1 - momentum
        buffers[key] += momentum * batch
