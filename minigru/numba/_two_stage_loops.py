"""The compiled loops of a ``TwoStage`` cell (``cells/_two_stage.py``: gru_v3, gru1..gru3, mgu,
mgu1..mgu3): one forward, one backward and one step for all of them, each cell's row bodies its
glue (``_glue.py``). The loop structure of the NumPy reference, and the same cache:

- ``x @ W`` for all steps before the loop (the gates' part and the candidate's, the candidate's
  bias added as it is read);
- per step: ``h U_g`` where the gates see h, the gates' row body (the gates, and ``reset ⊙ h``),
  the product ``(reset ⊙ h) U_n``, the candidate's row body;
- backward per step: the candidate's row body (``dan``, and what reaches h and the gates
  directly), ``dan U_nᵀ``, the gates' row body (the reset gate's part through the product, then
  through the gates' nonlinearities), ``dag U_gᵀ`` where the gates see h;
- after the reverse loop, the gradients as BLAS products and column sums.

The step reads U's column windows in place (``_math.matmul_columns``): the slices ``U[:, :2H]``
would be strided arrays, and LLVM leaves loops over those scalar.
"""

from types import SimpleNamespace

import numpy as np

from .._aligned import huge_arrays
from ._gated_loops import _dummies_of, _writable
from ._glue import Entries, cell_function, compiled_cell
from ._math import (ONE, column_sums, input_projection, kernel, matmul, matmul_acc,
                    matmul_columns)
from ._scratch import one_block, scratch

gate_row = cell_function("gate_row", "H, ag, hug, gates, rh, hs, t, b")
candidate_row = cell_function("candidate_row", "H, xn, bn, un, gates, hs, n, t, b")
candidate_back_row = cell_function("candidate_back_row",
                                   "H, dg, dys, dh_next, hs, gates, n, dan, t, b")
candidate_back_row_zoneout = cell_function(
    "candidate_back_row_zoneout", "H, dg, dnew, dh_next, hs, hs_new, gates, n, dan, t, b")
gate_back_row = cell_function("gate_back_row", "H, dg, drh, hs, gates, dh_next, dag, t, b")
step_gate_row = cell_function("step_gate_row", "H, xw, bias, hug, gates, rh, h, b")
step_candidate_row = cell_function("step_candidate_row", "H, xw, bias, un, gates, h, h_new, b")
step_shapes_ok = cell_function("step_shapes_ok", "H, x, W, U, bias, h, h_new")
gates_see_h = cell_function("gates_see_h")
n_gates = cell_function("n_gates")


# ============================================================================ the loops

@kernel
def forward_loop(cell, ag, xn, bn, Ug, Un, hs, gates, n, m_h, hp, keep, hs_new):
    """ag (T, B, Gg·H): the gates' x and bias terms; xn (T, B, H) = x W_n, whose bias bn is
    added here; Ug (H, Gg·H), where the gates see h. Fills hs[1:], gates, n.

    Recurrent dropout (``m_h`` (B, H), else None): both products see ``hp[t] = hs[t] ⊙ m_h``
    (filled here, kept for the backward). Zoneout (``keep`` (T, B, H), else None): the
    candidate's h' goes to ``hs_new``, and hs gets k ⊙ h + (1 − k) ⊙ h'. As in the Gated
    loops, a None argument's branches are dropped before compiling."""
    T, B, H = xn.shape
    hug = np.zeros((B, ag.shape[2]), xn.dtype)        # h U_g, one step
    rh = np.empty((B, H), xn.dtype)                   # reset ⊙ h
    un = np.empty((B, H), xn.dtype)                   # (reset ⊙ h) U_n
    for t in range(T):
        if m_h is None:
            if gates_see_h(cell):
                matmul(hs[t], Ug, hug)
            for b in range(B):
                gate_row(cell, H, ag, hug, gates, rh, hs, t, b)
        else:
            for b in range(B):
                for j in range(H):
                    hp[t, b, j] = hs[t, b, j] * m_h[b, j]
            if gates_see_h(cell):
                matmul(hp[t], Ug, hug)
            for b in range(B):
                gate_row(cell, H, ag, hug, gates, rh, hp, t, b)
        matmul(rh, Un, un)                            # reset before the product
        for b in range(B):
            candidate_row(cell, H, xn, bn, un, gates, hs, n, t, b)
            if keep is not None:                      # zoneout: keep k of the old state
                for j in range(H):
                    hs_new[t + 1, b, j] = hs[t + 1, b, j]
                    hs[t + 1, b, j] = (keep[t, b, j] * hs[t, b, j]
                                       + (ONE - keep[t, b, j]) * hs_new[t + 1, b, j])


@kernel
def backward_loop(cell, UgT, UnT, hs, gates, n, dys, dh_next, dag, dan, m_h, hp, keep, hs_new):
    """Fills dag (T, B, Gg·H) and dan (T, B, H), the gradients of the gates' and the candidate's
    pre-activations; dh_next ends as dL/dh_0. ``m_h``, ``hp``, ``keep``, ``hs_new`` as the
    forward's (None when off)."""
    T, B, H = n.shape
    dg = np.empty((n_gates(cell), B, H), n.dtype)     # dL/d(the gates), one step
    drh = np.empty((B, H), n.dtype)                   # dL/d(reset ⊙ h)
    dnew = np.empty((1, H), n.dtype)                  # zoneout: (1-k) of the gradient into h'
    kept = np.empty(H, n.dtype)                       # and k of it, straight to the old h
    dhp = np.empty((B, H), n.dtype)                   # recurrent dropout: d(h ⊙ m_h), one step
    for t in range(T - 1, -1, -1):
        for b in range(B):
            if keep is None:
                candidate_back_row(cell, H, dg, dys, dh_next, hs, gates, n, dan, t, b)
            else:                                     # h' = k h + (1-k) new
                for j in range(H):
                    g = dys[t, b, j] + dh_next[b, j]
                    dnew[0, j] = (ONE - keep[t, b, j]) * g
                    kept[j] = keep[t, b, j] * g
                candidate_back_row_zoneout(cell, H, dg, dnew, dh_next, hs, hs_new, gates, n,
                                           dan, t, b)
                for j in range(H):
                    dh_next[b, j] += kept[j]
        matmul(dan[t], UnT, drh)                      # through (reset ⊙ h) U_n
        if m_h is None:
            for b in range(B):
                gate_back_row(cell, H, dg, drh, hs, gates, dh_next, dag, t, b)
            if gates_see_h(cell):
                matmul_acc(dag[t], UgT, dh_next)      # the gates saw h through U_g
        else:                                         # what reaches h ⊙ m_h, then through m_h
            dhp[:] = 0
            for b in range(B):
                gate_back_row(cell, H, dg, drh, hp, gates, dhp, dag, t, b)
            if gates_see_h(cell):
                matmul_acc(dag[t], UgT, dhp)
            for b in range(B):
                for j in range(H):
                    dh_next[b, j] += dhp[b, j] * m_h[b, j]


@kernel
def step_kernel(cell, x, W, U, bias, h, h_new):
    """One step on the unsplit parameters (the gates' blocks first, the candidate's last H);
    returns False, computing nothing, when the shapes do not fit together."""
    B, H = h.shape
    if not step_shapes_ok(cell, H, x, W, U, bias, h, h_new):
        return False
    xw = np.empty((B, W.shape[1]), x.dtype)          # [x W_g |] x W_n
    matmul(x, W, xw)
    GG = n_gates(cell) * H
    hug = np.zeros((B, GG), x.dtype)
    if gates_see_h(cell):
        matmul_columns(h, U, 0, hug)                  # U[:, :Gg·H], read in place
    gates = np.empty((n_gates(cell), B, H), x.dtype)
    rh = np.empty((B, H), x.dtype)
    for i in range(B):
        step_gate_row(cell, H, xw, bias, hug, gates, rh, h, i)
    un = np.empty((B, H), x.dtype)
    matmul_columns(rh, U, U.shape[1] - H, un)         # reset before the product
    for i in range(B):
        step_candidate_row(cell, H, xw, bias, un, gates, h, h_new, i)
    return True


# ============================================================================ the glue

def glue_source(cell):
    """The Python text of ``cell``'s row bodies (a ``TwoStage`` declaration), as compiled."""
    Gg, R = cell.Gg, cell.gates.index(cell.reset)

    def loop(lines):
        return "    for j in range(H):\n" + "".join(f"        {line}\n" for line in lines)

    def gates_at(row):
        return [f"gates[{g}][{row}, j]" for g in range(Gg)]

    def pre(source, row, bias):
        """The gates' pre-activations: the terms the cell's gates see."""
        terms = []
        for g in range(Gg):
            t = [f"{source}[{row}, {g} * H + j]"] if source else []
            t += [f"hug[b, {g} * H + j]"] if cell.sees_h else []
            t += [f"bias[{g} * H + j]"] if bias and cell.has_bias else []
            terms.append(" + ".join(t) if t else "ZERO")
        return terms

    def unpack(targets):
        return ", ".join(targets) if len(targets) > 1 else targets[0]

    # the loop's: the gates' x and bias terms are ag's (zeros where they see neither)
    ag_src = "ag" if cell.sees_x or cell.has_bias else None
    forward_gates = (
        "def gate_row(H, ag, hug, gates, rh, hs, t, b):\n"
        + loop([f"{unpack(gates_at('t, b'))} = "
                f"gate_point({', '.join(pre(ag_src, 't, b', False))})"])
        + loop([f"rh[b, j] = gates[{R}][t, b, j] * hs[t, b, j]"]))
    forward_candidate = (
        "def candidate_row(H, xn, bn, un, gates, hs, n, t, b):\n"
        + loop([f"hs[t + 1, b, j], n[t, b, j] = candidate_point("
                f"xn[t, b, j] + bn[j], un[b, j], hs[t, b, j], {', '.join(gates_at('t, b'))})"]))
    d_gates = [f"dg[{g}, b, j]" for g in range(Gg)]
    backward_candidate = (
        "def candidate_back_row(H, dg, dys, dh_next, hs, gates, n, dan, t, b):\n"
        + loop([f"dan[t, b, j], dh_next[b, j], {', '.join(d_gates)} = candidate_point_backward("
                f"dys[t, b, j] + dh_next[b, j], hs[t, b, j], hs[t + 1, b, j], n[t, b, j], "
                f"{', '.join(gates_at('t, b'))})"]))
    backward_candidate_zoneout = (
        "def candidate_back_row_zoneout(H, dg, dnew, dh_next, hs, hs_new, gates, n, dan, t, b):\n"
        + loop([f"dan[t, b, j], dh_next[b, j], {', '.join(d_gates)} = candidate_point_backward("
                f"dnew[0, j], hs[t, b, j], hs_new[t + 1, b, j], n[t, b, j], "
                f"{', '.join(gates_at('t, b'))})"]))
    backward_gates = (
        "def gate_back_row(H, dg, drh, hs, gates, dh_next, dag, t, b):\n"
        + loop([f"dg[{R}, b, j] += drh[b, j] * hs[t, b, j]",      # the reset's other way
                f"dh_next[b, j] += drh[b, j] * gates[{R}][t, b, j]"])
        + loop([f"{unpack([f'dag[t, b, {g} * H + j]' for g in range(Gg)])} = "
                f"gate_point_backward({', '.join(d_gates + gates_at('t, b'))})"]))
    # the step's: x W and b unsplit, the gates' blocks first where they see them
    kx = f"{Gg if cell.sees_x else 0} * H"
    kb = f"{Gg if cell.has_bias else 0} * H"
    step_gates = (
        "def step_gate_row(H, xw, bias, hug, gates, rh, h, b):\n"
        + loop([f"{unpack([f'gates[{g}, b, j]' for g in range(Gg)])} = "
                f"gate_point({', '.join(pre('xw' if cell.sees_x else None, 'b', True))})"])
        + loop([f"rh[b, j] = gates[{R}, b, j] * h[b, j]"]))
    step_candidate = (
        "def step_candidate_row(H, xw, bias, un, gates, h, h_new, b):\n"
        + loop([f"h_new[b, j], _ = candidate_point(xw[b, {kx} + j] + bias[{kb} + j], un[b, j], "
                f"h[b, j], {', '.join(f'gates[{g}, b, j]' for g in range(Gg))})"]))
    n_w = (Gg if cell.sees_x else 0) + 1
    n_u = (Gg if cell.sees_h else 0) + 1
    n_b = (Gg if cell.has_bias else 0) + 1
    checks = (
        "def step_shapes_ok(H, x, W, U, bias, h, h_new):\n"
        f"    return (x.shape[0] == h.shape[0] and W.shape[0] == x.shape[1]\n"
        f"            and W.shape[1] == {n_w} * H and U.shape[0] == H\n"
        f"            and U.shape[1] == {n_u} * H and bias.shape[0] == {n_b} * H\n"
        f"            and h_new.shape == h.shape)\n")
    constants = (f"def gates_see_h():\n    return {cell.sees_h}\n\n"
                 f"def n_gates():\n    return {Gg}\n")
    return "\n\n".join([forward_gates, forward_candidate, backward_candidate,
                         backward_candidate_zoneout, backward_gates,
                        step_gates, step_candidate, checks, constants])


# ============================================================================ the calls

class TwoStageBackend:
    """forward, backward, step and prepare_step of one ``TwoStage`` cell, compiled."""

    loop_regularisers = True          # its loops apply recurrent dropout and zoneout (masks=)

    def __init__(self, cell):
        self.cell = cell
        self.compiled = compiled_cell("two-stage", cell.name, glue_source(cell), {
            "gate_point": cell.gate_point, "gate_point_backward": cell.gate_point_backward,
            "candidate_point": cell.candidate_point,
            "candidate_point_backward": cell.candidate_point_backward})
        self.call = Entries()
        self.plan = SimpleNamespace(gates=cell.gates, reset=cell.gates.index(cell.reset))

    def _gate_inputs(self, x, Wg, bg, H):
        """x W_g + b_g for every step (T, B, Gg·H), zeros where the gates see neither."""
        T, B, I = x.shape
        GG = self.cell.Gg * H
        ag = scratch("ag", (T, B, GG), x.dtype)
        if Wg is not None:
            np.matmul(x.reshape(T * B, I), Wg, out=ag.reshape(T * B, GG))
            if bg is not None:
                ag += bg
        elif bg is not None:
            ag[...] = bg
        else:
            ag[...] = 0
        return ag

    def forward(self, p, x, h0, training=True, *, masks=None):
        cell = self.cell
        m_h, keep = (None, None) if masks is None else (masks.h, masks.keep)
        parts = cell.split(p)
        (Wg, Wn), (Ug, Un), (bg, bn) = parts["W"], parts["U"], parts["b"]
        T, B, I = x.shape
        H = h0.shape[1]
        dtype = x.dtype
        _, d2, _ = _dummies_of(dtype)
        ag = self._gate_inputs(x, Wg, bg, H)
        xn = input_projection(x, np.ascontiguousarray(Wn), scratch("xn", (T, B, H), dtype))
        hs, n, *gates = one_block(dtype, (T + 1, B, H), *[(T, B, H)] * (1 + cell.Gg))
        hs[0] = h0
        extra = huge_arrays(dtype, *[(T + 1, B, H)] * ((m_h is not None) + (keep is not None)))
        hp = None if m_h is None else extra.pop(0)    # h ⊙ m_h, what the products see
        hs_new = None if keep is None else extra.pop(0)   # the point's h'
        self.call(forward_loop, (dtype.char, m_h is None, keep is None), self.compiled, ag, xn,
                  np.ascontiguousarray(bn), np.ascontiguousarray(Ug) if Ug is not None else d2,
                  np.ascontiguousarray(Un), hs, tuple(gates), n, m_h, hp,
                  None if keep is None else keep[0], hs_new)
        cache = {"x": x, "hs": hs, **dict(zip(cell.gates, gates)), "n": n, "masks": masks,
                 "hp": hp, "new_hs": hs_new}
        return hs[1:].copy(), hs[T].copy(), cache

    def backward(self, p, cache, dys, dh_T):
        cell = self.cell
        parts = cell.split(p)
        (Wg, Wn), (Ug, Un), (bg, _) = parts["W"], parts["U"], parts["b"]
        x, hs, n = cache["x"], cache["hs"], cache["n"]
        gates = tuple(cache[g] for g in cell.gates)
        T, B, H = n.shape
        I = x.shape[2]
        dtype = n.dtype
        _, d2, _ = _dummies_of(dtype)
        GG = cell.Gg * H
        dag = scratch("dag", (T, B, GG), dtype)        # dL/d(the gates' pre-activations)
        dan = scratch("dan", (T, B, H), dtype)         # dL/d(the candidate's pre-activation)
        dh_next = dh_T.copy()
        masks = cache.get("masks")
        m_h, keep = (None, None) if masks is None else (masks.h, masks.keep)
        hp = cache.get("hp")
        self.call(backward_loop, (dtype.char, m_h is None, keep is None), self.compiled,
                  np.ascontiguousarray(Ug.T) if Ug is not None else d2,
                  np.ascontiguousarray(Un.T), hs, gates, n, _writable(dys), dh_next, dag, dan,
                  m_h, hp, None if keep is None else keep[0], cache.get("new_hs"))
        X = x.reshape(T * B, I)
        dA_g, dA_n = dag.reshape(T * B, GG), dan.reshape(T * B, H)
        hp = hs if hp is None else hp                # what the products saw
        reset_h = gates[self.plan.reset] * hp[:-1]   # what U_n saw
        g = {  # gate part, candidate part of each gradient
            "W": (X.T @ dA_g if Wg is not None else None, X.T @ dA_n),
            "U": (hp[:-1].reshape(T * B, H).T @ dA_g if Ug is not None else None,
                  reset_h.reshape(T * B, H).T @ dA_n),
            "b": (column_sums(dA_g) if bg is not None else None, column_sums(dA_n)),
        }
        grads = {k: np.concatenate([a for a in parts if a is not None], axis=-1)
                 for k, parts in g.items()}
        dx = dA_n @ Wn.T
        if Wg is not None:
            dx += dA_g @ Wg.T
        return dx.reshape(T, B, I), dh_next, grads

    def step(self, p, x_t, h):
        h = np.ascontiguousarray(h)
        h_new = np.empty(h.shape, h.dtype)
        fits = step_kernel(self.compiled, np.ascontiguousarray(x_t), p["W"], p["U"], p["b"], h,
                           h_new)
        assert fits, "the step's arrays do not fit together, after Cell's checks"
        return h_new, h_new

    def prepare_step(self, p, x_t, state):
        """As ``GatedBackend.prepare_step``: the step's machine code for these arrays' types,
        called directly; None when the arrays no longer fit (``Cell.step`` then checks)."""
        from numba import typeof
        contiguous, empty = np.ascontiguousarray, np.empty
        h = contiguous(state)
        args = (p["W"], p["U"], p["b"])
        run = step_kernel.compile(tuple(map(typeof, (self.compiled, contiguous(x_t), *args, h,
                                                     empty(h.shape, h.dtype)))))
        cell, shape, dtype = self.compiled, h.shape, h.dtype.type

        def prepared(x_t, h):
            h_new = empty(shape, dtype)
            try:
                if run(cell, contiguous(x_t), *args, contiguous(h), h_new):
                    return h_new, h_new
            except TypeError:
                return None
        prepared.checks_shapes = True
        return prepared
