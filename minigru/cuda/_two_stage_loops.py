"""The GPU loops of a ``TwoStage`` cell (``cells/_two_stage.py``: gru_v3, gru1..gru3, mgu,
mgu1..mgu3, a cell of yours): written once for all of them, with the loop structure and cache
of the NumPy reference.

The reset gate acts on ``h`` before the candidate's product, so the whole row ``reset ⊙ h_t``
must exist before ``(reset ⊙ h_t) U_n``: each step is two launches, a thread per (row b,
unit j) in each.

- before the loop, ``x @ W`` for all steps as one tiled GEMM (the gates' columns, where they
  see x, then the candidate's); the biases are added in the unit bodies, as they read;
- forward step t: (1) ``gate_step``: the gates (their dot products with ``U_g``'s columns
  where they see h); (2) ``candidate_step``: the dot product of
  ``(reset ⊙ h)[b]`` with ``U_n``'s column j, then the candidate. Where the gates see no h,
  one launch computes the gates of every step at once (a grid T deep, in chunks of
  ``MAX_GRID_Z``);
- backward step t: (1) ``candidate_back_step``: ``dh`` = the gradient from above + the carry
  ``dh_next`` + ``dag[t+1, b] · U_gᵀ[:, j]`` (the gates' recurrent product of the step after,
  fused here), then the candidate's backward, writing ``dan`` and what reaches h and the gates
  directly; (2) ``gate_back_step``: ``drh = dan[t, b] · U_nᵀ[:, j]``, the reset gate's part
  through the product, then the gates' backward, writing ``dag``;
- after the loop, the gradients as GEMMs and column sums into their column blocks.

The candidate's product reads ``reset ⊙ h`` as it goes (``dot_scaled``) and the backward
writes it for ``dU_n``, so the cache holds the reference's keys and nothing more. ``U`` is read
flat, its gate columns before the candidate's last H; ``U_n``'s columns start at ``NU - H``.
The unit bodies are the cell's glue, made from its declaration (``glue_source``).
"""

from types import SimpleNamespace

from numba import cuda

from ._blas import colsum, copy, empty, gemm, grid_rows, loop_masks, mul_cyclic
from ._gated_loops import dot, dot_h, zone_mix
from ._math import ONE, ZERO, compiled_point

MAX_GRID_Z = 65535   # the most blocks a grid may have along z


# ============================================================================ the loops

@cuda.jit(device=True)
def dot_scaled(s, v, m, masked, M, stride, offset):
    """sum_k s[k] · v[k] · M[k·stride + offset]: ``dot`` of the row s ⊙ v (⊙ m, recurrent
    dropout's mask, where ``masked``)."""
    acc = ZERO
    for k in range(v.shape[0]):
        acc += s[k] * (v[k] * m[k] if masked else v[k]) * M[k * stride + offset]
    return acc


def loops(glue, Gg, R, sees_h):
    """The kernels of one cell, around its unit bodies; ``Gg`` gates, the reset the R-th.

    Every kernel ends with the regularisers' arguments ``m_h, masked, keep, hs_new, zoned``
    (as the Gated loops': stand-ins of the right types when off)."""
    gate_unit, candidate_unit = glue["gate_unit"], glue["candidate_unit"]
    candidate_back_unit, gate_back_unit = glue["candidate_back_unit"], glue["gate_back_unit"]

    @cuda.jit
    def gate_step(t0, xw, bias, U, hs, gates, m_h, masked, keep, hs_new, zoned):
        """The gates of step t0 + blockIdx.z; U flat (H·NU)."""
        b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        t = t0 + cuda.blockIdx.z
        H = hs.shape[2]
        if j < H:
            u = cuda.local.array(Gg, xw.dtype)        # (h_t U_g)[b, g·H + j], where they see h
            m = m_h[b if masked else 0]
            for g in range(Gg):
                u[g] = (dot_h(hs[t, b], m, masked, U, U.shape[0] // H, g * H + j) if sees_h
                        else ZERO)
            gate_unit(t, b, j, xw, bias, u, gates, hs)

    @cuda.jit
    def candidate_step(t, xw, bias, U, hs, gates, n, m_h, masked, keep, hs_new, zoned):
        b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        H = hs.shape[2]
        if j < H:
            NU = U.shape[0] // H                      # U's columns; U_n the last H
            m = m_h[b if masked else 0]
            un = dot_scaled(gates[R][t, b], hs[t, b], m, masked, U, NU, NU - H + j)
            candidate_unit(t, b, j, xw, bias, un, gates, hs, n)   # ((r ⊙ h_t) U_n)[b, j] in
            if zoned:
                zone_mix(t, b, j, (hs,), keep, (hs_new,))

    @cuda.jit
    def candidate_back_step(t, UT, dys, hs, gates, n, dh_next, dag, dan, dg, rh, m_h, masked,
                            keep, hs_new, zoned):
        """UT = Uᵀ flat (NU·H)."""
        b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        T, _, H = n.shape
        if j < H:
            mh = m_h[b, j] if masked else ONE         # what the products saw of h_t[b, j]
            dh = dys[t, b, j] + dh_next[b, j]         # h_{t+1} feeds y_t and step t+1
            if sees_h and t + 1 < T:                  # the gates of the step after saw h_{t+1}
                through = dot(dag[t + 1, b], UT, H, j)
                dh += through * m_h[b, j] if masked else through
            kept = ZERO
            if zoned:                                 # h' = k h + (1-k) new
                kept = keep[0][t, b, j] * dh
                dh = (ONE - keep[0][t, b, j]) * dh
            candidate_back_unit(t, b, j, dh, hs, hs_new if zoned else hs, gates, n, dan, dg,
                                dh_next, rh, mh)
            if zoned:
                dh_next[b, j] += kept

    @cuda.jit
    def gate_back_step(t, UT, hs, gates, dg, dh_next, dag, dan, m_h, masked, keep, hs_new,
                       zoned):
        b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        H = hs.shape[2]
        if j < H:
            NU = UT.shape[0] // H
            mh = m_h[b, j] if masked else ONE
            drh = dot(dan[t, b], UT, H, (NU - H) * H + j)   # (dan_t U_nᵀ)[b, j]
            gate_back_unit(t, b, j, drh, hs, gates, dg, dh_next, dag, mh)

    return SimpleNamespace(gate_step=gate_step, candidate_step=candidate_step,
                           candidate_back_step=candidate_back_step,
                           gate_back_step=gate_back_step)


# ============================================================================ the glue

def glue_source(cell):
    """The Python text of ``cell``'s unit bodies (a ``TwoStage`` declaration), as compiled."""
    Gg, R = cell.Gg, cell.gates.index(cell.reset)
    kx, kb = Gg if cell.sees_x else 0, Gg if cell.has_bias else 0   # the candidate's columns
    gates = [f"gates[{g}][t, b, j]" for g in range(Gg)]
    pre = []
    for g in range(Gg):                               # the terms the cell's gates see
        terms = ([f"xw[t, b, {g} * H + j]"] if cell.sees_x else []) + [f"u[{g}]"]
        terms += [f"bias[{g} * H + j]"] if cell.has_bias else []
        pre.append(" + ".join(terms))
    d_gates = [f"dg[{g}, b, j]" for g in range(Gg)]

    def unit(signature, lines):
        return (f"def {signature}:\n    H = hs.shape[2]\n"
                + "".join(f"    {line}\n" for line in lines))

    return "\n\n".join([
        unit("gate_unit(t, b, j, xw, bias, u, gates, hs)",
             [f"{', '.join(gates)} = gate_point({', '.join(pre)})"]),
        unit("candidate_unit(t, b, j, xw, bias, un, gates, hs, n)",
             [f"hs[t + 1, b, j], n[t, b, j] = candidate_point(xw[t, b, {kx} * H + j] + "
              f"bias[{kb} * H + j], un, hs[t, b, j], {', '.join(gates)})"]),
        # hn: the new state the point made (hs, or zoneout's hs_new); mh: recurrent dropout's
        # mask of h_t[b, j] (ONE without), the products having seen h ⊙ m_h
        unit("candidate_back_unit(t, b, j, dh, hs, hn, gates, n, dan, dg, dh_next, rh, mh)",
             [f"dan[t, b, j], dh_next[b, j], {', '.join(d_gates)} = candidate_point_backward("
              f"dh, hs[t, b, j], hn[t + 1, b, j], n[t, b, j], {', '.join(gates)})",
              f"rh[t, b, j] = gates[{R}][t, b, j] * hs[t, b, j] * mh"]),   # what U_n saw
        unit("gate_back_unit(t, b, j, drh, hs, gates, dg, dh_next, dag, mh)",
             [f"dg[{R}, b, j] += drh * hs[t, b, j] * mh",       # the reset's way through U_n
              f"dh_next[b, j] += drh * gates[{R}][t, b, j] * mh",
              f"{', '.join(f'dag[t, b, {g} * H + j]' for g in range(Gg))} = "
              f"gate_point_backward({', '.join(d_gates + gates)})"]),
    ]) + "\n"


# ============================================================================ the calls

class TwoStageBackend:
    """The cuda forward and backward of one ``TwoStage`` cell (device arrays in and out)."""

    def __init__(self, cell):
        self.cell = cell
        env = {k: compiled_point(getattr(cell, k)) for k in (
            "gate_point", "gate_point_backward", "candidate_point", "candidate_point_backward")}
        exec(compile(glue_source(cell), f"<CUDA glue of {cell.name}>", "exec"), env)
        glue = {k: cuda.jit(device=True)(env[k]) for k in (
            "gate_unit", "candidate_unit", "candidate_back_unit", "gate_back_unit")}
        self.kernels = loops(glue, cell.Gg, cell.gates.index(cell.reset), cell.sees_h)

    loop_regularisers = True          # its kernels apply recurrent dropout and zoneout (masks=)

    def forward(self, p, x, h0, training=True, *, masks=None):
        cell, k = self.cell, self.kernels
        T, B, I = x.shape
        H = h0.shape[1]
        W, U, bias = p["W"], p["U"], p["b"]
        xw = gemm(x.reshape(T * B, I), W).reshape(T, B, W.shape[1])   # [x W_g |] x W_n
        Uf = U.reshape(U.size)
        hs = empty((T + 1, B, H), x.dtype)
        hs[0].copy_to_device(h0)
        n = empty((T, B, H), x.dtype)
        gates = tuple(empty((T, B, H), x.dtype) for _ in cell.gates)
        grid, threads = grid_rows(B, H)
        m_h, masked, keep, (hs_new,), zoned = loop_masks(masks, 1, T, B, H, x.dtype)
        reg = (m_h, masked, keep, hs_new, zoned)      # (one component: keep a 1-tuple)
        if not cell.sees_h:                           # the gates of every step at once
            for t0 in range(0, T, MAX_GRID_Z):
                k.gate_step[grid + (min(MAX_GRID_Z, T - t0),), threads](
                    t0, xw, bias, Uf, hs, gates, *reg)
        for t in range(T):
            if cell.sees_h:
                k.gate_step[grid, threads](t, xw, bias, Uf, hs, gates, *reg)
            k.candidate_step[grid, threads](t, xw, bias, Uf, hs, gates, n, *reg)
        cache = {"x": x, "hs": hs, **dict(zip(cell.gates, gates)), "n": n,
                 "regularised": reg}
        return copy(hs[1:]), copy(hs[T]), cache

    def backward(self, p, cache, dys, dh_T):
        cell, k = self.cell, self.kernels
        x, hs, n = cache["x"], cache["hs"], cache["n"]
        gates = tuple(cache[g] for g in cell.gates)
        T, B, H = n.shape
        I, GG = x.shape[2], cell.Gg * H
        W, U = p["W"], p["U"]
        UT = U.T                                      # a copy: its columns j are read together
        UTf = UT.reshape(UT.size)
        dag = empty((T, B, GG), x.dtype)              # dL/d(the gates' pre-activations)
        dan = empty((T, B, H), x.dtype)               # dL/d(the candidate's pre-activation)
        dg = empty((cell.Gg, B, H), x.dtype)          # dL/d(the gates), one step
        rh = empty((T, B, H), x.dtype)                # reset ⊙ h_t, what U_n saw
        dh_next = copy(dh_T)
        grid, threads = grid_rows(B, H)
        reg = cache["regularised"]
        m_h, masked = reg[:2]
        for t in range(T - 1, -1, -1):
            k.candidate_back_step[grid, threads](t, UTf, dys, hs, gates, n, dh_next, dag, dan,
                                                 dg, rh, *reg)
            k.gate_back_step[grid, threads](t, UTf, hs, gates, dg, dh_next, dag, dan, *reg)
        if cell.sees_h:                               # the gates saw h_0 (⊙ m_h) through U_g
            if masked:
                mul_cyclic(gemm(dag[0], UT[:GG]), m_h, dh_next, accumulate=True)
            else:
                gemm(dag[0], UT[:GG], dh_next, accumulate=True)
        # each gradient: the gates' column block (where they see that term), the candidate's
        X = x.reshape(T * B, I)
        dA_g, dA_n = dag.reshape(T * B, GG), dan.reshape(T * B, H)
        grads = {name: empty(p[name].shape, x.dtype) for name in ("W", "U", "b")}
        gW, gU, gb = grads["W"], grads["U"], grads["b"]
        gemm(X, dA_n, gW[:, gW.shape[1] - H:], ta=True)
        gemm(rh.reshape(T * B, H), dA_n, gU[:, gU.shape[1] - H:], ta=True)
        colsum(dA_n, gb[gb.shape[0] - H:])
        dx = gemm(dA_n, W[:, W.shape[1] - H:], tb=True)
        if cell.sees_x:
            gemm(X, dA_g, gW[:, :GG], ta=True)
            gemm(dA_g, W[:, :GG], dx, accumulate=True, tb=True)
        if cell.sees_h:
            hp = mul_cyclic(hs[:T], m_h) if masked else hs[:T]   # what U_g saw
            gemm(hp.reshape(T * B, H), dA_g, gU[:, :GG], ta=True)
        if cell.has_bias:
            colsum(dA_g, gb[:GG])
        return dx.reshape(T, B, I), dh_next, grads
