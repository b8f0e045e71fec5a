"""The compiled loops of a ``Gated`` cell (``cells/_gated_structure.py``): one forward, one
backward and one step for every cell of that structure, each cell's row body its glue
(``_glue.py``). The same loop structure as the NumPy reference, and the same cache:

- ``x @ W`` for all steps in one BLAS product before the loop (the bias is added in the loop, as
  the row is read); a normalisation of ``x W`` (layer or batch norm) also before it;
- inside the loop only ``h U`` (``_math.matmul``), the layer norm of its rows where the cell
  has one, and the row body: the point function for every unit, its results into a small local
  array ``out``, then copied to where they belong. (Written straight into several arrays at
  strided offsets, the stores were more possible overlaps than LLVM checks at run time, and it
  left the loop scalar; into a local array it vectorises.)
- after the reverse loop, the weight gradients and ``dx`` as single BLAS products.

The glue, for ``GRU``::

    def forward_row(out, xw, bias, u, vecs, S, saves, t, b):
        H = out.shape[1]
        for j in range(H):
            out[0, j], out[1, j], out[2, j], out[3, j], out[4, j] = point(
                xw[0 * H + j] + bias[0 * H + j], xw[1 * H + j] + bias[1 * H + j], ...,
                u[0 * H + j], u[1 * H + j], u[2 * H + j], vecs[0][j], S[0][t, b, j])
        for j in range(H):
            S[0][t + 1, b, j] = out[0, j]
        ...
"""

import inspect
from types import SimpleNamespace

import numpy as np

from .._aligned import huge_arrays
from ..cells._gated_structure import EPS, require_batch_statistics
from ..cells._point import reads
from ..cells._scan import refuse_zoneout
from ._glue import Entries, cell_function, compiled_cell
from ._math import column_sums, input_projection, kernel, matmul, matmul_acc
from ._norms import (batch_norm_columns, batch_norm_columns_backward, layer_norm_row,
                     layer_norm_row_backward, layer_norm_rows, layer_norm_rows_backward)
from ._scratch import one_block, scratch

forward_row = cell_function("forward_row", "H, out, xw, bias, u, c, vecs, S, saves, t, b")
backward_row = cell_function("backward_row",
                             "H, out, dys, d_next, S, saves, vecs, da, du, dvecs, t, b")
forward_row_zoneout = cell_function(
    "forward_row_zoneout", "H, out, xw, bias, u, c, vecs, S, saves, keep, S_new, t, b")
forward_row_zoneout_mixed = cell_function(
    "forward_row_zoneout_mixed", "H, out, xw, bias, u, c, vecs, S, saves, keep, t, b")
backward_row_zoneout = cell_function(
    "backward_row_zoneout", "H, out, dys, d_next, S, S_new, saves, vecs, keep, da, du, dvecs, t, b")
backward_row_zoneout_mixed = cell_function(
    "backward_row_zoneout_mixed", "H, out, dys, d_next, S, saves, vecs, keep, da, du, dvecs, t, b")
step_row = cell_function("step_row", "H, xw, bias, u, c, vecs, S, S_new, b")
step_shapes_ok = cell_function("step_shapes_ok", "H, x, W, bias, U, c, vecs, norms, S, S_new")
step_x_norm = cell_function("step_x_norm", "xw, norms, eps")
step_h_norm = cell_function("step_h_norm", "hu, norms, eps")
forward_outputs = cell_function("forward_outputs")
backward_outputs = cell_function("backward_outputs")
has_product = cell_function("has_product")
h_norm = cell_function("h_norm")
x_norm = cell_function("x_norm")


# ============================================================================ the loops

@kernel
def forward_loop(cell, xw, bias, U, g_h, c, eps, vecs, S, saves, uhat, u_inv_std, m_h, keep,
                 S_new):
    """xw (T, B, Gx·H) = x W (or its normalised form); fills S[k][1:], saves, uhat, u_inv_std.
    The biases ``bias`` of x W and ``c`` of h U are added in the row bodies, as they read.

    ``m_h`` (B, H): recurrent dropout's mask, the product then formed from h ⊙ m_h. ``keep``
    (per state component, (T, B, H)): zoneout's k_t; S gets k ⊙ old + (1 − k) ⊙ new, and the
    point's new state goes to ``S_new``, unless that is None (one component, k drawn 0 or 1:
    ``zoneout_source``). Each is None when off: Numba drops the branches of an argument that
    is None before it compiles, so the plain loop is unchanged."""
    T, B, _ = xw.shape
    H = S[0].shape[2]
    hu = np.empty((B, U.shape[1]), xw.dtype)          # h U, one step
    u = np.empty((B, U.shape[1]), xw.dtype) if h_norm(cell) else hu   # normalised: g_h LN
    out = np.empty((forward_outputs(cell), H), xw.dtype)
    hm = np.empty((B, H), xw.dtype)                   # h ⊙ m_h, one step
    for t in range(T):
        if has_product(cell):
            if m_h is None:
                matmul(S[0][t], U, hu)
            else:
                for b in range(B):
                    for j in range(H):
                        hm[b, j] = S[0][t, b, j] * m_h[b, j]
                matmul(hm, U, hu)
        for b in range(B):
            if h_norm(cell):
                u_inv_std[t, b, 0] = layer_norm_row(hu[b], uhat[t, b], eps)
                for k in range(u.shape[1]):
                    u[b, k] = g_h[k] * uhat[t, b, k]
            if keep is None:
                forward_row(cell, H, out, xw, bias, u, c, vecs, S, saves, t, b)
            elif S_new is None:                       # zoneout: keep k of the old state
                forward_row_zoneout_mixed(cell, H, out, xw, bias, u, c, vecs, S, saves, keep,
                                          t, b)
            else:
                forward_row_zoneout(cell, H, out, xw, bias, u, c, vecs, S, saves, keep, S_new,
                                    t, b)


@kernel
def backward_loop(cell, UT, g_h, S, saves, vecs, dys, d_next, da, du, dhu, dvecs, uhat,
                  u_inv_std, m_h, keep, S_new):
    """Fills da = dL/d(x-side a), du = dL/du (u after its norm), dhu = dL/d(h U), dvecs (the
    unit parameters' gradients, summed); d_next ends as dL/d(state_0). ``m_h``, ``keep`` and
    ``S_new`` as the forward's (None when off, or not kept)."""
    T, B, _ = da.shape
    H = S[0].shape[2]
    out = np.empty((backward_outputs(cell), H), da.dtype)
    dvhat = np.empty(du.shape[2], da.dtype)           # dL/duhat, one row
    dh_u = np.empty((B, H), da.dtype)                 # recurrent dropout: d(h ⊙ m_h), one step
    for t in range(T - 1, -1, -1):
        for b in range(B):
            if keep is None:
                backward_row(cell, H, out, dys, d_next, S, saves, vecs, da, du, dvecs, t, b)
            elif S_new is None:                       # s' = k s + (1-k) new: dL/ds' split
                backward_row_zoneout_mixed(cell, H, out, dys, d_next, S, saves, vecs, keep,
                                           da, du, dvecs, t, b)
            else:
                backward_row_zoneout(cell, H, out, dys, d_next, S, S_new, saves, vecs, keep,
                                     da, du, dvecs, t, b)
            if h_norm(cell):                          # u = g_h*uhat + c, uhat = LN(h U)
                for k in range(du.shape[2]):
                    dvhat[k] = du[t, b, k] * g_h[k]
                layer_norm_row_backward(dvhat, uhat[t, b], u_inv_std[t, b, 0], dhu[t, b])
        if has_product(cell):
            if m_h is None:
                matmul_acc(dhu[t], UT, d_next[0])     # through h U
            else:                                     # through (h ⊙ m_h) U
                matmul(dhu[t], UT, dh_u)
                for b in range(B):
                    for j in range(H):
                        d_next[0][b, j] += dh_u[b, j] * m_h[b, j]


@kernel
def step_kernel(cell, W, bias, U, c, vecs, norms, eps, x, S, S_new):
    """One step of evaluation mode: returns False, having computed nothing, when the arrays'
    shapes do not fit together (``Cell.step`` then runs its full checks, which say what is
    wrong), True otherwise. ``norms`` holds the norm parameters a cell has (lngru: g_x, b, g_h;
    ligru: gamma, beta and the running mean and variance; otherwise none)."""
    B, H = S[0].shape
    if not step_shapes_ok(cell, H, x, W, bias, U, c, vecs, norms, S, S_new):
        return False
    xw = np.empty((B, W.shape[1]), x.dtype)
    matmul(x, W, xw)
    step_x_norm(cell, xw, norms, eps)                 # the normalisation of x W, if any
    hu = np.empty((B, U.shape[1]), x.dtype)
    if has_product(cell):
        matmul(S[0], U, hu)
        step_h_norm(cell, hu, norms, eps)             # u = g_h * LN(h U), if the cell has it
    for i in range(B):
        step_row(cell, H, xw, bias, hu, c, vecs, S, S_new, i)
    return True


# ============================================================================ the glue

def glue_source(cell):
    """The Python text of ``cell``'s row bodies (a ``Gated`` declaration), as compiled."""
    Gx, Gh, n_state = cell.Gx, cell.Gh, len(cell.state)
    bias = {g: k for k, g in enumerate(cell.bias_blocks)} if cell.x_norm is None else {}
    h_bias = {g: k for k, g in enumerate(cell.h_bias_blocks)}
    def a_args(row):                                  # row: "t, b" in the loop, "b" in a step
        return [f"xw[{row}, {g} * H + j]" + (f" + bias[{bias[name]} * H + j]" if name in bias
                                             else "") for g, name in enumerate(cell.x_blocks)]
    u_args = [f"u[b, {g} * H + j]" + (f" + c[{h_bias[name]} * H + j]" if name in h_bias else "")
              for g, name in enumerate(cell.h_blocks)]
    vec_args = [f"vecs[{k}][j]" for k in range(len(cell.vectors))]   # unit params, constants
    n_fwd = n_state + len(cell.saves)

    def copies(pairs):
        return "".join(f"    for j in range(H):\n        {dst} = {src}\n" for dst, src in pairs)

    def point_call(state_args, row="b"):
        """The point for every unit of a row, its results into ``out``: in one loop, or for more
        than ``STORES_PER_LOOP`` results in several, each storing its share of them."""
        args = ",\n            ".join(a_args(row) + u_args + vec_args + state_args)
        loops = []
        for lo in range(0, n_fwd, STORES_PER_LOOP):
            share = range(lo, min(lo + STORES_PER_LOOP, n_fwd))
            targets = ", ".join(f"out[{k}, j]" if k in share else "_" for k in range(n_fwd))
            loops.append(f"    for j in range(H):\n        {targets} = point(\n"
                         f"            {args})\n")
        return "".join(loops)

    def point_call_t(state_args):
        return point_call(state_args, "t, b")

    fwd_dst = ([f"S[{k}][t + 1, b, j]" for k in range(n_state)]
               + [f"saves[{k}][t, b, j]" for k in range(len(cell.saves))])
    if n_fwd <= DIRECT_MAX_FORWARD:                   # straight into the arrays
        forward = ("def forward_row(H, out, xw, bias, u, c, vecs, S, saves, t, b):\n"
                   ""
                   f"    for j in range(H):\n        {', '.join(fwd_dst)} = point(\n"
                   "            " + ",\n            ".join(
                       a_args("t, b") + u_args + vec_args
                       + [f"S[{k}][t, b, j]" for k in range(n_state)]) + ")\n")
    else:                                             # through ``out``
        forward = ("def forward_row(H, out, xw, bias, u, c, vecs, S, saves, t, b):\n"
                   ""
                   + point_call_t([f"S[{k}][t, b, j]" for k in range(n_state)])
                   + copies([(dst, f"out[{k}, j]") for k, dst in enumerate(fwd_dst)]))
    step_dst = ", ".join([f"S_new[{k}][b, j]" for k in range(n_state)]
                         + ["_"] * len(cell.saves))
    step = ("def step_row(H, xw, bias, u, c, vecs, S, S_new, b):\n"
            f"    for j in range(H):\n        {step_dst} = point(\n"
            "            " + ",\n            ".join(
                a_args("b") + u_args + vec_args + [f"S[{k}][b, j]" for k in range(n_state)])
            + ")\n\n\n" + step_checks(cell))
    # the backward's results: d_a (Gx) | d_u of the blocks not summed | d_vecs | d_state, into
    # their arrays (d_state into d_next: each unit reads its own entry first) or via ``out``
    n_sep, n_vec = len(cell.separate), len(cell.unit_params)
    n_bwd = Gx + n_sep + n_vec
    d_args = (["dys[t, b, j] + d_next[0][b, j]"] + [f"d_next[{k}][b, j]"
                                                     for k in range(1, n_state)]
              + [f"S[{k}][t, b, j]" for k in range(n_state)]
              + [f"S[{k}][t + 1, b, j]" for k in range(n_state)]
              + [f"saves[{k}][t, b, j]" for k in range(len(cell.saves))] + vec_args)
    direct = ((du_in_da(cell) is not None or not Gh) and not n_vec
              and Gx + n_state <= DIRECT_MAX_BACKWARD)
    d_results = [f"da[t, b, {g} * H + j]" if direct else f"out[{g}, j]" for g in range(n_bwd)]
    d_state = [f"d_next[{k}][b, j]" if direct else f"out[{n_bwd + k}, j]" for k in range(n_state)]
    d_outs = ", ".join(d_results + d_state)
    du_pairs = ([] if du_in_da(cell) is not None else
                [(f"du[t, b, {g} * H + j]", f"out[{src}, j]")
                 for g, src in enumerate(du_sources(cell))])
    rest = (copies([] if direct else [(f"da[t, b, {g} * H + j]", f"out[{g}, j]")
                                      for g in range(Gx)])
                + copies(du_pairs)
                + copies([(f"dvecs[{k}, j]", f"dvecs[{k}, j] + out[{Gx + n_sep + k}, j]")
                          for k in range(n_vec)])
                + copies([(f"dvecs[{n_vec + k}, j]", f"dvecs[{n_vec + k}, j] + {src}")
                          for k, src in enumerate(bias_sources(cell, direct))])
                + copies([] if direct else [(f"d_next[{k}][b, j]", f"out[{n_bwd + k}, j]")
                                            for k in range(n_state)]))
    backward = ("def backward_row(H, out, dys, d_next, S, saves, vecs, da, du, dvecs, t, b):\n"
                f"    for j in range(H):\n        {d_outs} = "
                f"point_backward(\n            " + ",\n            ".join(d_args) + ")\n"
                + rest)
    parts = SimpleNamespace(point_call_t=point_call_t, copies=copies, a_args=a_args,
                            u_args=u_args, vec_args=vec_args, fwd_dst=fwd_dst, d_args=d_args,
                            d_results=d_results, d_state=d_state, n_bwd=n_bwd, rest=rest)
    sources = [forward, backward, zoneout_source(cell, parts), step, constants(cell, n_fwd, n_bwd)]
    if cell.linear is not None:                       # scan="parallel" (_scan.py)
        d_a = ", ".join(f"dxw[t, b, {g} * H + j]" for g in range(Gx))
        for suffix, row in (("", "t, b"), ("_of_row", "b")):    # xw (T, B, ·) or one row's
            a = ",\n            ".join(a_args(row))
            sources.append(
                f"def scan_row{suffix}(H, xw, bias, ca, cb, t, b):\n"
                "    for j in range(H):\n"
                f"        ca[t, b, j], cb[t, b, j] = coefficients(\n            {a})\n\n\n"
                f"def scan_row_backward{suffix}(H, g, hs, xw, bias, ca, cb, dxw, t, b):\n"
                "    for j in range(H):\n"                # dL/da_t = g_t h_{t-1}, dL/db_t = g_t
                f"        {d_a} = coefficients_backward(\n"
                "            g[t, b, j] * hs[t, b, j], g[t, b, j],\n"
                f"            {a},\n            ca[t, b, j], cb[t, b, j])\n")
    return "\n\n".join(sources)


def zoneout_source(cell, parts):
    """The row bodies with zoneout: s' = k s + (1 - k) n, n the point's new state, mixed as the
    row is made; in the backward g = dL/ds' splits into (1 - k) g, the point's, and k g,
    straight to the old s (added to what the point gives it).

    The point's backward may need the n it made: ``forward_row_zoneout`` keeps them in
    ``S_new``. ``..._mixed`` keeps none, where that is exact: when the point's backward does not
    read them (lstm's), or for one state component with k drawn 0 or 1: where k = 0 the mixed
    state is n, and where k = 1 the point gets no gradient, so its results there are zero,
    selected (not computed from the mixed state, which there is not what the point made).
    ``parts``: the pieces of ``glue_source``'s text that these bodies share with the plain
    ones."""
    n_state, n_bwd, d_args = len(cell.state), parts.n_bwd, parts.d_args
    keeps = [f"keep[{k}][t, b, j]" for k in range(n_state)]
    mix = [f"S[{k}][t + 1, b, j] = {keeps[k]} * S[{k}][t, b, j] + (ONE - {keeps[k]}) * {{}}"
           for k in range(n_state)]
    news = [f"S_new[{k}][t + 1, b, j]" for k in range(n_state)]
    state_now = [f"S[{k}][t, b, j]" for k in range(n_state)]

    def forward(name, keep_new):
        head = (f"def {name}(H, out, xw, bias, u, c, vecs, S, saves, keep"
                f"{', S_new' if keep_new else ''}, t, b):\n")
        kept = news if keep_new else []
        # stores straight, as the plain body's, counting each mix as two (it reads the old
        # state and k too): lstm's seven stores and two mixes straight were twice as slow
        if len(kept) + 2 * n_state + len(cell.saves) <= DIRECT_MAX_FORWARD:
            names = [f"n{k}" for k in range(n_state)] + [f"v{k}" for k in range(len(cell.saves))]
            return (head + f"    for j in range(H):\n        {', '.join(names)} = point(\n"
                    "            " + ",\n            ".join(
                        parts.a_args("t, b") + parts.u_args + parts.vec_args + state_now) + ")\n"
                    + "".join(f"        {dst} = {src}\n" for dst, src in
                              zip(kept + parts.fwd_dst[n_state:],
                                  names[:len(kept)] + names[n_state:]))
                    + "".join(f"        {m.format(f'n{k}')}\n" for k, m in enumerate(mix)))
        return (head + parts.point_call_t(state_now)
                + "".join("    for j in range(H):\n"
                          + (f"        {news[k]} = out[{k}, j]\n" if keep_new else "")
                          + f"        {m.format(f'out[{k}, j]')}\n" for k, m in enumerate(mix))
                + parts.copies([(dst, f"out[{n_state + k}, j]")
                          for k, dst in enumerate(parts.fwd_dst[n_state:])]))

    gs = [f"g{k}" for k in range(n_state)]
    shown = [f"(ONE - {keeps[k]}) * g{k}" for k in range(n_state)] + d_args[n_state:2 * n_state]
    splits = "".join(f"        {gk} = {a}\n" for gk, a in zip(gs, d_args[:n_state]))

    def backward(name, with_new):
        """The point differentiated at the states in ``S_new``, or (``with_new`` False, for a
        point whose backward does not read them) at the mixed ones in S."""
        new_args = news if with_new else d_args[2 * n_state:3 * n_state]
        return (f"def {name}(H, out, dys, d_next, S{', S_new' if with_new else ''}, saves, "
                "vecs, keep, da, du, dvecs, t, b):\n    for j in range(H):\n" + splits
                + f"        {', '.join(parts.d_results + [f'e{k}' for k in range(n_state)])}"
                f" = point_backward(\n            "
                + ",\n            ".join(shown + new_args + d_args[3 * n_state:]) + ")\n"
                + "".join(f"        {dst} = e{k} + {keeps[k]} * g{k}\n"
                          for k, dst in enumerate(parts.d_state))
                + parts.rest)

    sources = [forward("forward_row_zoneout", True), forward("forward_row_zoneout_mixed", False),
               backward("backward_row_zoneout", True)]
    if not reads_new_state(cell):                     # the states shown are not read
        sources.append(backward("backward_row_zoneout_mixed", False))
    elif n_state == 1:
        r = [f"r{i}" for i in range(n_bwd)]
        sources.append(
            "def backward_row_zoneout_mixed(H, out, dys, d_next, S, saves, vecs, keep, da, du, "
            "dvecs, t, b):\n    for j in range(H):\n" + splits
            + f"        {', '.join(r + ['e0'])} = point_backward(\n            "
            + ",\n            ".join(shown + d_args[2:]) + ")\n"
            + f"        kept = {keeps[0]} == ONE\n"
            + "".join(f"        {dst} = ZERO if kept else {src}\n"
                      for dst, src in zip(parts.d_results, r))
            + f"        {parts.d_state[0]} = {keeps[0]} * g0 + (ZERO if kept else e0)\n"
            + parts.rest)
    else:                                             # never called (the forward keeps S_new),
        sources.append(                              # but typed: Numba prunes only the
            "def backward_row_zoneout_mixed(H, out, dys, d_next, S, saves, vecs, keep, da, du, "
            "dvecs, t, b):\n"                        # branches of an argument that is None
            "    raise NotImplementedError('zoneout of several state components keeps the "
            "points\\' states')\n")
    return "\n\n".join(sources)


def reads_new_state(cell):
    """Whether the cell's ``point_backward`` reads the new state it is given (rnn's does:
    tanh' = 1 − h'²; lstm's reads only its saves)."""
    n_state = len(cell.state)
    names = list(inspect.signature(cell.point_backward).parameters)[2 * n_state:3 * n_state]
    return reads(cell.point_backward, *names)


def constants(cell, n_fwd, n_bwd):
    """The glue's constants: what the loops size and branch on."""
    n_state, Gh = len(cell.state), cell.Gh
    return (f"def forward_outputs():\n    return {n_fwd}\n\n"
            f"def backward_outputs():\n    return {n_bwd + n_state}\n\n"
            f"def has_product():\n    return {bool(Gh)}\n\n"
            f"def h_norm():\n    return {cell.h_norm == 'layer'}\n\n"
            f"def x_norm():\n    return {(None, 'layer', 'batch').index(cell.x_norm)}\n")


# A row body writes its results straight into their arrays when there are at most this many, and
# through the local array ``out`` otherwise: more strided stores than LLVM checks for overlap
# leave a loop scalar. Each result has an array of its own, so the forward's stores stay
# vectorised up to lstm's seven (h', c', i, f, g, o, tanh c': 0.355 -> 0.215 ms at tiny, 17.2 ->
# 16.0 ms at medium, written straight rather than through ``out``); the backward's, which also
# read the carry they overwrite, up to five (lstm's six straight: medium 20.5 -> 23 ms).
DIRECT_MAX_FORWARD = 7
DIRECT_MAX_BACKWARD = 5
# A loop that stores more results than this into ``out`` (each row of it an array of its own to
# LLVM's checks for overlap with the loads) stays scalar: slstm's ten results (its four states and
# six saves) are stored by two loops, each computing the point again and keeping its share (the
# compiler drops the rest). Figures in docs/performance.md.
STORES_PER_LOOP = 7


def step_checks(cell):
    """The glue of the step's shape check and its normalisations (see ``step_kernel``)."""
    Gx, Gh, n_state = cell.Gx, cell.Gh, len(cell.state)
    norm_shapes = {None: [], "layer": [Gx, Gx], "batch": [Gx] * 4}[cell.x_norm]
    if cell.h_norm:
        norm_shapes.append(Gh)
    conds = ["x.shape[0] == S[0].shape[0]", "W.shape[0] == x.shape[1]",
             f"W.shape[1] == {Gx} * H", f"U.shape[0] == {'H' if Gh else 1}",
             f"U.shape[1] == {Gh} * H"]
    if cell.x_norm is None and cell.bias_blocks:
        conds.append(f"bias.shape[0] == {len(cell.bias_blocks)} * H")
    if cell.h_bias_blocks:
        conds.append(f"c.shape[0] == {len(cell.h_bias_blocks)} * H")
    conds += [f"vecs[{k}].shape[0] == H" for k in range(len(cell.vectors))]
    conds += [f"norms[{k}].shape[0] == {g} * H" for k, g in enumerate(norm_shapes)]
    conds += [f"S[{k}].shape == S[0].shape and S_new[{k}].shape == S[0].shape"
              for k in range(n_state)]
    check = ("def step_shapes_ok(H, x, W, bias, U, c, vecs, norms, S, S_new):\n"
             "    return (" + "\n            and ".join(conds) + ")\n")
    if cell.x_norm == "layer":                      # norms: g_x, b[, g_h]
        x_norm = ("def step_x_norm(xw, norms, eps):\n"
                  "    xhat = np.empty(xw.shape[1], xw.dtype)\n"
                  "    for i in range(xw.shape[0]):\n"
                  "        layer_norm_row(xw[i], xhat, eps)\n"
                  "        for k in range(xw.shape[1]):\n"
                  "            xw[i, k] = norms[0][k] * xhat[k] + norms[1][k]\n")
    elif cell.x_norm == "batch":                    # norms: gamma, beta, running mean, var
        x_norm = ("def step_x_norm(xw, norms, eps):\n"
                  "    batch_norm_running(xw, norms[0], norms[1], norms[2], norms[3], eps, xw)\n")
    else:
        x_norm = "def step_x_norm(xw, norms, eps):\n    pass\n"
    if cell.h_norm:                                 # norms: ..., g_h
        g = len(norm_shapes) - 1
        h_norm = ("def step_h_norm(hu, norms, eps):\n"
                  "    uhat = np.empty(hu.shape[1], hu.dtype)\n"
                  "    for i in range(hu.shape[0]):\n"
                  "        layer_norm_row(hu[i], uhat, eps)\n"
                  "        for k in range(hu.shape[1]):\n"
                  f"            hu[i, k] = norms[{g}][k] * uhat[k]\n")
    else:
        h_norm = "def step_h_norm(hu, norms, eps):\n    pass\n"
    return "\n\n".join([check, x_norm, h_norm])


def bias_sources(cell, direct=True):
    """What each bias gradient sums, per unit, as the backward's rows go by: ``b``'s blocks
    (dL/da of their x blocks; a cell that normalises x W sums its ``b`` after the loop) and
    then ``c``'s (dL/du of their h blocks), read from the local ``out`` where the row body
    writes through it (``direct`` False), else from the arrays just written. Summed in the loop
    rather than in a second pass over ``da`` after it (at ``tiny`` that pass and its block
    selection were a tenth of the custom LRU's training step)."""
    x_biased = cell.bias_blocks if cell.x_norm is None else ()
    if direct:
        return ([f"da[t, b, {cell.x_blocks.index(g)} * H + j]" for g in x_biased]
                + [f"du[t, b, {cell.h_blocks.index(g)} * H + j]" for g in cell.h_bias_blocks])
    return ([f"out[{cell.x_blocks.index(g)}, j]" for g in x_biased]
            + [f"out[{du_sources(cell)[cell.h_blocks.index(g)]}, j]"
               for g in cell.h_bias_blocks])


def du_sources(cell):
    """Where the row body's ``out`` holds dL/du of each h block: the row of its x block if
    summed with one, else a row of its own after the x blocks'."""
    sep = iter(range(cell.Gx, cell.Gx + len(cell.separate)))
    return [cell.x_blocks.index(g) if g in cell.summed else next(sep) for g in cell.h_blocks]


def du_in_da(cell):
    """The first x block of the run of x blocks whose gradient dL/du is, or None. dL/du is a
    window of dL/da's columns when every h block is summed with an x block, in the x blocks'
    order and one after another, and no norm comes between: then the backward writes one array,
    not two. All of da for rnn, lstm and ligru (0); the ``f`` block of the tutorial's LRU (1)."""
    if not cell.Gh or cell.summed != cell.h_blocks or cell.h_norm:
        return None
    g0 = cell.x_blocks.index(cell.h_blocks[0])
    return g0 if cell.x_blocks[g0:g0 + cell.Gh] == cell.h_blocks else None


# ============================================================================ the calls

_dummies = {}


def _dummies_of(dtype):
    """Stand-ins, 1-, 2- and 3-D, for the arrays a cell does not have (its loops never read
    them; the 2-D one is U's, with no columns)."""
    key = dtype.char
    if key not in _dummies:
        _dummies[key] = (np.zeros(1, dtype), np.zeros((1, 0), dtype), np.zeros((1, 1, 1), dtype))
    return _dummies[key]


def _dummy(dtype, ndim):
    return _dummies_of(np.dtype(dtype))[ndim - 1]


def _writable(a):
    """``a`` as a C-contiguous, writable array (the types the prepared calls were made for)."""
    return a if a.flags.c_contiguous and a.flags.writeable else np.array(a, order="C")


class GatedBackend:
    """forward, backward, step and prepare_step of one ``Gated`` cell, compiled."""

    loop_regularisers = True          # its loops apply recurrent dropout and zoneout (masks=)

    def __init__(self, cell):
        self.cell = cell
        points = {"point": cell.point, "point_backward": cell.point_backward}
        if cell.linear is not None:
            points.update(coefficients=cell.linear[0], coefficients_backward=cell.linear[1])
        self.compiled = compiled_cell("gated", cell.name, glue_source(cell), points)
        self.call = Entries()
        self.plan = SimpleNamespace(   # the declaration's answers, looked up once, not per call
            n_state=len(cell.state), n_saves=len(cell.saves), Gh=cell.Gh,
            h_norm=cell.h_norm == "layer", c=bool(cell.h_bias_blocks),
            loop_bias=cell.x_norm is None and bool(cell.bias_blocks),
            unit_params=cell.unit_params, saves=cell.saves,
            state_keys=tuple(k + "s" for k in cell.state),
            du_in_da=du_in_da(cell), reads_new=reads_new_state(cell),
            n_b=len(cell.bias_blocks) if cell.x_norm is None else 0,
            n_summed=len(bias_sources(cell)))

    # ------------------------------------------------------------------ x side
    def _x_forward(self, p, x, H, training, momentum, buffers):
        cell = self.cell
        T, B, I = x.shape
        G = cell.Gx * H
        if cell.x_norm is None:
            return input_projection(x, p["W"], scratch("xw", (T, B, G), x.dtype)), {}
        xw = scratch("xw", (T, B, G), x.dtype)
        np.matmul(x.reshape(T * B, I), p["W"], out=xw.reshape(T * B, G))   # all steps at once
        a = scratch("a", (T, B, G), x.dtype)
        if cell.x_norm == "layer":
            ahat, a_inv_std = one_block(x.dtype, (T, B, G), (T, B, 1))
            layer_norm_rows(xw, p["g_x"], p["b"], x.dtype.type(EPS), ahat, a_inv_std, a)
            return a, {"ahat": ahat, "a_inv_std": a_inv_std}
        v = xw.reshape(T * B, G)
        if training:
            require_batch_statistics(cell.name, x)
            vhat, (inv_std, mean, var) = np.empty_like(v), np.empty((3, G), x.dtype)
            batch_norm_columns(v, x.dtype.type(EPS), vhat, inv_std, mean, var)
            if buffers is not None:                   # PyTorch's rule, the unbiased variance
                for key, batch in (("running_mean", mean), ("running_var", var)):
                    buffers[key] *= 1 - momentum
                    buffers[key] += momentum * batch
        else:
            inv_std = 1.0 / np.sqrt(buffers["running_var"] + x.dtype.type(EPS))
            vhat = (v - buffers["running_mean"]) * inv_std
        a2 = a.reshape(T * B, G)
        np.multiply(p["gamma"], vhat, out=a2)
        a2 += p["beta"]
        return a, {"vhat": vhat, "inv_std": inv_std, "training": training}

    def _x_backward(self, p, da, cache):
        """(the x side's own gradients, dL/d(x W) as (T·B, Gx·H))."""
        cell = self.cell
        T, B, G = da.shape
        dA = da.reshape(T * B, G)
        if cell.x_norm is None:                         # b's gradient: summed in the loop
            return {}, dA
        if cell.x_norm == "layer":
            dxw = scratch("dxw", (T, B, G), da.dtype)
            layer_norm_rows_backward(da, p["g_x"], cache["ahat"], cache["a_inv_std"], dxw)
            return ({"g_x": column_sums(da * cache["ahat"]), "b": column_sums(da)},
                    dxw.reshape(T * B, G))
        vhat, inv_std = cache["vhat"], cache["inv_std"]
        if cache["training"]:
            dv = scratch("dxw", dA.shape, da.dtype)
            dgamma, dbeta = np.empty_like(p["gamma"]), np.empty_like(p["gamma"])
            batch_norm_columns_backward(dA, p["gamma"], vhat, inv_std, dv, dgamma, dbeta)
        else:
            dv = dA * p["gamma"] * inv_std
            dgamma, dbeta = column_sums(dA * vhat), column_sums(dA)
        return {"gamma": dgamma, "beta": dbeta}, dv

    # ------------------------------------------------------------------ the API
    def forward(self, p, x, state0, training=True, *, momentum=None, buffers=None, masks=None,
                scan="sequential"):
        cell, plan = self.cell, self.plan
        if scan == "parallel":
            return self._scan_forward(p, x, state0, training, momentum, buffers, masks)
        m_h, keep = (None, None) if masks is None else (masks.h, masks.keep)
        T, B, I = x.shape
        states0 = state0 if isinstance(state0, tuple) else (state0,)
        H = states0[0].shape[1]
        dtype = x.dtype
        d1, d2, d3 = _dummies_of(dtype)
        xw, cache = self._x_forward(p, x, H, training, momentum, buffers)
        n_state, n_saves = plan.n_state, plan.n_saves
        shapes = [(T + 1, B, H)] * n_state + [(T, B, H)] * n_saves
        if plan.h_norm:
            shapes += [(T, B, cell.Gh * H), (T, B, 1)]
        arrays = one_block(dtype, *shapes)              # the cache
        S, saves = tuple(arrays[:n_state]), tuple(arrays[n_state:n_state + n_saves])
        for s, s0 in zip(S, states0):
            s[0] = s0
        uhat, u_inv_std = arrays[-2:] if plan.h_norm else (d3, d3)
        new = None                                    # the points' states, where zoneout's
        if keep is not None and plan.reads_new and (n_state > 1 or not masks.binary):
            new = tuple(huge_arrays(dtype, *[(T + 1, B, H)] * n_state))   # backward needs them
        self.call(forward_loop, (dtype.char, m_h is None, keep is None, new is None),
                  self.compiled, xw,
                  p["b"] if plan.loop_bias else d1, p["U"] if plan.Gh else d2,
                  p["g_h"] if plan.h_norm else d1, p["c"] if plan.c else d1, dtype.type(EPS),
                  tuple(cell.unit_arrays(p, H)), S, saves, uhat, u_inv_std, m_h, keep, new)
        cache["x"] = x
        cache["masks"] = masks
        if new is not None:                           # what the points made, for the backward
            cache.update(zip(["new_" + k for k in plan.state_keys], new))
        cache.update(zip(plan.state_keys, S))
        cache.update(zip(plan.saves, saves))
        if plan.h_norm:
            cache["uhat"], cache["u_inv_std"] = uhat, u_inv_std
        if n_state == 1:
            return S[0][1:].copy(), S[0][T].copy(), cache
        return S[0][1:].copy(), tuple([s[T].copy() for s in S]), cache

    def backward(self, p, cache, dys, dstate):
        if cache.get("scan") == "parallel":
            return self._scan_backward(p, cache, dys, dstate)
        cell, plan = self.cell, self.plan
        x = cache["x"]
        T, B, H = dys.shape
        I = x.shape[2]
        dtype = dys.dtype
        d1, d2, d3 = _dummies_of(dtype)
        S = tuple([cache[k] for k in plan.state_keys])
        saves = tuple([cache[k] for k in plan.saves])
        masks = cache.get("masks")
        m_h, keep = (None, None) if masks is None else (masks.h, masks.keep)
        new = (None if "new_" + plan.state_keys[0] not in cache
               else tuple([cache["new_" + k] for k in plan.state_keys]))
        d_next = (dstate.copy(),) if plan.n_state == 1 else tuple([d.copy() for d in dstate])
        GH = cell.Gh * H
        da = scratch("da", (T, B, cell.Gx * H), dtype)   # dL/da, a the x side of the point
        if plan.du_in_da == 0 and GH == da.shape[2] or not GH:
            du = da                                   # dL/du: da itself, a window of it,
        elif plan.du_in_da is not None:               # or an array of its own
            du = da[:, :, plan.du_in_da * H:plan.du_in_da * H + GH]
        else:
            du = scratch("du", (T, B, GH), dtype)
        dhu = scratch("dhu", (T, B, GH), dtype) if plan.h_norm else du    # dL/d(h U)
        n_vec = len(plan.unit_params)                    # dvecs: the unit parameters', then
        dvecs = np.zeros((max(n_vec + plan.n_summed, 1), H), dtype)   # b's and c's blocks
        self.call(backward_loop, (dtype.char, m_h is None, keep is None, new is None),
                  self.compiled,
                  np.ascontiguousarray(p["U"].T) if plan.Gh else d2,
                  p["g_h"] if plan.h_norm else d1, S, saves,
                  tuple(cell.unit_arrays(p, H)), _writable(dys), d_next, da, du, dhu,
                  dvecs, cache["uhat"] if plan.h_norm else d3,
                  cache["u_inv_std"] if plan.h_norm else d3, m_h, keep, new)
        grads, dXW = self._x_backward(p, da, cache)
        grads["W"] = x.reshape(T * B, I).T @ dXW
        if plan.loop_bias:
            grads["b"] = dvecs[n_vec:n_vec + plan.n_b].reshape(-1)
        if plan.c:
            grads["c"] = dvecs[n_vec + plan.n_b:n_vec + plan.n_summed].reshape(-1)
        if plan.Gh:
            hs = S[0][:-1] if m_h is None else S[0][:-1] * m_h   # what the product saw
            grads["U"] = hs.reshape(T * B, H).T @ dhu.reshape(T * B, GH)
            if plan.h_norm:
                grads["g_h"] = column_sums(du.reshape(T * B, GH)
                                           * cache["uhat"].reshape(T * B, GH))
        grads.update(cell.unit_grads(list(dvecs[:n_vec])))
        dx = (dXW @ np.ascontiguousarray(p["W"].T)).reshape(T, B, I)   # (faster than W.T's
                                                                       # view at tiny)
        grads = {k: grads[k] for k in p if k not in cell.fixed}       # (not the constants)
        return dx, d_next if plan.n_state > 1 else d_next[0], grads

    # ------------------------------------------------------------------ scan="parallel"
    def _scan_forward(self, p, x, h0, training, momentum, buffers, masks):
        """The recurrence for every step at once, chunked over both cores (``_scan.py``)."""
        from numba import get_num_threads

        from ._scan import FUSE_MAX_INPUTS, scan_forward
        cell, plan = self.cell, self.plan
        refuse_zoneout(cell.name, masks)
        T, B, I = x.shape
        H = h0.shape[1]
        dtype = x.dtype
        x = np.ascontiguousarray(x)
        if I <= FUSE_MAX_INPUTS and cell.x_norm is None:   # each step's x W formed in the kernel
            xw, cache = None, {}
        else:
            xw, cache = self._x_forward(p, x, H, training, momentum, buffers)
            xw = np.array(xw)                         # (out of the scratch: the backward reads it)
        hs, ca, cb = one_block(dtype, (T + 1, B, H), (T, B, H), (T, B, H))
        hs[0] = h0
        bias = p["b"] if plan.loop_bias else _dummy(dtype, 1)
        self.call(scan_forward, (dtype.char, xw is None), self.compiled, get_num_threads(), x,
                  np.ascontiguousarray(p["W"]), xw, bias, ca, cb, hs)
        cache.update({"x": x, "xw": xw, "a": ca, "b": cb, plan.state_keys[0]: hs,
                      "masks": masks, "scan": "parallel"})
        return hs[1:].copy(), hs[T].copy(), cache

    def _scan_backward(self, p, cache, dys, dstate):
        from numba import get_num_threads

        from ._scan import scan_backward
        cell, plan = self.cell, self.plan
        x, xw, ca = cache["x"], cache["xw"], cache["a"]
        T, B, H = dys.shape
        I, dtype = x.shape[2], dys.dtype
        G = cell.Gx * H
        C = get_num_threads()
        g = np.empty((T, B, H), dtype)
        dxw = scratch("da", (T, B, G), dtype)
        fused = xw is None                            # the x side's gradients in the kernel
        dx = np.empty((T, B, I) if fused else (1, 1, 1), dtype)
        dW_parts = np.zeros((C, I, G) if fused else (1, 1, 1), dtype)
        db_parts = np.zeros((C, G) if fused else (1, 1), dtype)
        bias = p["b"] if plan.loop_bias else _dummy(dtype, 1)
        self.call(scan_backward, (dtype.char, fused), self.compiled, C, x,
                  np.ascontiguousarray(p["W"]), xw, bias, ca, cache["b"],
                  cache[plan.state_keys[0]], _writable(dys), np.ascontiguousarray(dstate), g, dxw,
                  dx, dW_parts, db_parts)
        grads, dXW = self._x_backward(p, dxw, cache)
        if fused:
            grads["W"], sums = dW_parts.sum(axis=0), db_parts.sum(axis=0)
        else:
            grads["W"] = x.reshape(T * B, I).T @ dXW
            sums = column_sums(dxw) if plan.loop_bias else None
            dx = (dXW @ np.ascontiguousarray(p["W"].T)).reshape(T, B, I)
        if plan.loop_bias:                            # b's blocks of dL/d(x W + b)
            grads["b"] = np.concatenate([sums[cell.x_blocks.index(k) * H:
                                              (cell.x_blocks.index(k) + 1) * H]
                                         for k in cell.bias_blocks])
        return dx, ca[0] * g[0], {k: grads[k] for k in p if k not in cell.fixed}

    def _step_args(self, p, h, buffers):
        """The step kernel's arguments after x, from p (and ligru's running statistics)."""
        cell, plan = self.cell, self.plan
        d1, d2, _ = _dummies_of(h.dtype)
        norms = {None: (), "layer": ("g_x", "b"), "batch": ("gamma", "beta")}[cell.x_norm]
        norms = [p[k] for k in norms]
        if cell.x_norm == "batch":
            norms += [buffers["running_mean"], buffers["running_var"]]
        if plan.h_norm:
            norms.append(p["g_h"])
        return (p["W"], p["b"] if plan.loop_bias else d1, p["U"] if plan.Gh else d2,
                p["c"] if plan.c else d1, tuple(cell.unit_arrays(p, h.shape[1])),
                tuple(norms), h.dtype.type(EPS))

    def step(self, p, x_t, state, *, momentum=None, buffers=None):
        states = tuple(np.ascontiguousarray(s) for s in
                       (state if isinstance(state, tuple) else (state,)))
        new = tuple(np.empty(s.shape, s.dtype) for s in states)
        fits = step_kernel(self.compiled, *self._step_args(p, states[0], buffers),
                           np.ascontiguousarray(x_t), states, new)
        assert fits, "the step's arrays do not fit together, after Cell's checks"
        return new[0], new if len(new) > 1 else new[0]

    def prepare_step(self, p, x_t, state, *, momentum=None, buffers=None):
        """The step for calls with these arrays of ``p`` and an ``x_t`` and state of this dtype
        and shape: the kernel's machine code for exactly those types, called directly (Numba's
        dispatch by types would cost more than the step itself at B = 1). Only ``Cell.step``'s
        fast path calls it, having checked that a call is such a one (``_step_record.py``)."""
        from functools import partial

        from numba import typeof
        contiguous, empty = np.ascontiguousarray, np.empty
        states = tuple(map(contiguous, state if isinstance(state, tuple) else (state,)))
        args = (self.compiled, *self._step_args(p, states[0], buffers))
        new = tuple(empty(s.shape, s.dtype) for s in states)
        run = step_kernel.compile(tuple(map(typeof, (*args, contiguous(x_t), states, new))))
        run = partial(run, *args)                     # what stays from call to call, bound
        shape, dtype = states[0].shape, states[0].dtype.type   # (the scalar type allocates
                                                              # faster than the dtype)
        # None when the kernel finds the shapes changed, or the machine code's wrapper an
        # array of another item size (an array of p reshaped or retyped in place): Cell.step
        # then runs its checks, which say what is wrong
        if len(states) == 1:
            def prepared(x_t, h):
                h_new = empty(shape, dtype)
                try:
                    if run(contiguous(x_t), (contiguous(h),), (h_new,)):
                        return h_new, h_new
                except TypeError:
                    return None
        else:
            def prepared(x_t, state):
                new = tuple([empty(shape, dtype) for _ in state])
                try:
                    if run(contiguous(x_t), tuple(map(contiguous, state)), new):
                        return new[0], new
                except TypeError:
                    return None
        prepared.checks_shapes = True
        return prepared
