"""The GPU loops of a ``Gated`` cell (``cells/_gated_structure.py``): written once, for every
cell of that structure, with the cache and loop structure of the NumPy reference.

- before the loop, ``x @ W`` for all steps as one tiled GEMM (``_blas.gemm``), and the
  normalisation of ``x W`` where the cell has one (``_norms.py``); the biases are added in the
  unit bodies, as they read;
- the loop, in one of three shapes the declaration decides:

  * a recurrent product (rnn, lstm, gru, ligru, a cell of yours): per step one launch with a
    thread per (row b, unit j), ``forward_step``/``backward_step``, or, where it fits, one
    *persistent* launch for the whole loop, ``forward_persistent``/``backward_persistent``:
    the blocks keep their slice of ``U`` in shared memory for all T steps and wait for each
    other at a grid-wide barrier between steps (``_blas.time_loop``; docs/cuda.md);
  * a layer norm of ``h U`` (lngru): per step one launch with a *block* per row b, since the
    norm's reductions need the whole row (``forward_row``/``backward_row``);
  * no recurrent product (mingru): one launch, each thread taking its unit through every step
    (``forward_free``/``backward_free``);

  every one of them calls the same two *unit bodies*, ``forward_unit`` and ``backward_unit``;
- after the reverse loop, ``dW``, ``dU`` and ``dx`` as single GEMMs, the biases' gradients as
  column sums.

The unit bodies are the cell's glue: a few lines made from its declaration that read one unit's
entries of ``x W`` and ``h U``, call the cell's point function (compiled for the GPU by
``_math.compiled_point``) and store its results (``print(glue_source(GRU))`` shows them). So
the only per-cell code here is generated from the cell file, as on the CPU (``numba/_glue.py``).

The backward's carry ``d_next`` is the reference's, with one difference of timing: the kernel
of step t adds the part through ``h_{t+1} U`` (``dhu[t+1] · Uᵀ``) as it reads ``d_next[0]``,
fusing the recurrent product of the step after into this step's launch; after the loop one GEMM
adds ``dhu[0] · Uᵀ`` to make ``d_next[0]`` the gradient of ``h_0``.

The parameters and every activation stay on the device from the first step to the last.
"""

from types import SimpleNamespace

from numba import cuda

from ..cells._gated_structure import EPS, require_batch_statistics
from ..cells._scan import refuse_zoneout
from ._blas import (colsum, copy, empty, gemm, grid_rows, load_columns, load_rows, loop_masks,
                    mul_cyclic, row_threads)
from ._blas import time_loop, to_device
from ._math import ONE, ZERO, compiled_point
from ._norms import (ROW_THREADS, affine_columns, batch_normalize, batch_normalize_backward,
                     batch_statistics, gain_bias_grads, layer_norm_row,
                     layer_norm_row_backward, layer_norm_rows, layer_norm_rows_backward)


@cuda.jit(device=True)
def dot(v, M, stride, offset):
    """sum_k v[k] · M[k·stride + offset]: one column of a matrix laid out flat, read from
    global memory (``U`` or ``Uᵀ``) or from a block's shared slice of it."""
    acc = ZERO
    for k in range(v.shape[0]):
        acc += v[k] * M[k * stride + offset]
    return acc


@cuda.jit(device=True)
def dot_h(h, m, masked, M, stride, offset):
    """``dot`` of the state h, or, for recurrent dropout (``masked``), of h ⊙ m."""
    acc = ZERO
    for k in range(h.shape[0]):
        acc += (h[k] * m[k] if masked else h[k]) * M[k * stride + offset]
    return acc


@cuda.jit(device=True)
def zone_mix(t, b, j, S, keep, S_new):
    """Zoneout after a unit's step: S_new takes the point's new state, S k ⊙ old + (1 − k) ⊙
    new, for every component."""
    for k in range(len(S)):
        n = S[k][t + 1, b, j]
        S_new[k][t + 1, b, j] = n
        S[k][t + 1, b, j] = keep[k][t, b, j] * S[k][t, b, j] + (ONE - keep[k][t, b, j]) * n


@cuda.jit(device=True)
def zone_split(t, b, j, dh, dnew, kept, d_next, keep, zoned):
    """The gradients into the new state's components (dh for h, d_next for the others),
    split for zoneout: (1 − k) to the point (``dnew``), k straight to the old state
    (``kept``); all to the point without it."""
    dnew[0] = dh
    for k in range(1, len(d_next)):
        dnew[k] = d_next[k][b, j]
    for k in range(len(d_next)):
        if zoned:
            kept[k] = keep[k][t, b, j] * dnew[k]
            dnew[k] = (ONE - keep[k][t, b, j]) * dnew[k]
        else:
            kept[k] = ZERO


# ============================================================================ the loops

def loops(forward_unit, backward_unit, Gh, n_state):
    """The kernels of one cell, around its unit bodies; ``Gh`` blocks in ``h U``, ``n_state``
    state components.

    Every kernel ends with the regularisers' arguments ``m_h, masked, keep, S_new, zoned``:
    recurrent dropout's mask (B, H) and whether it is on, zoneout's k_t per component, the
    points' own new states, and whether it is on (stand-ins of the right types when off, so
    that one compiled kernel serves both)."""
    G = max(Gh, 1)                                    # (a local array has at least one entry)
    N = n_state

    @cuda.jit(device=True)
    def backward_unit_split(t, b, j, dh, S, saves, vecs, d_next, da, du, dvecs, keep, S_new,
                            zoned):
        """The unit body's backward, given dh (into h_{t+1}); with zoneout, on the share
        1 − k of each component's gradient, the share k added straight to the old state."""
        dnew = cuda.local.array(N, da.dtype)
        kept = cuda.local.array(N, da.dtype)
        zone_split(t, b, j, dh, dnew, kept, d_next, keep, zoned)
        backward_unit(t, b, j, dnew, S, S_new if zoned else S, saves, vecs, d_next, da, du,
                      dvecs)
        if zoned:
            for k in range(N):
                d_next[k][b, j] += kept[k]

    @cuda.jit
    def forward_step(t, U, xw, bias, c, vecs, S, saves, m_h, masked, keep, S_new, zoned):
        """Step t, a thread per (row b, unit j); U flat (H·Gh·H)."""
        b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        H = S[0].shape[2]
        if j < H:
            u = cuda.local.array(G, xw.dtype)         # (h_t U)[b, g·H + j] for each block g
            m = m_h[b if masked else 0]
            for g in range(Gh):
                u[g] = dot_h(S[0][t, b], m, masked, U, Gh * H, g * H + j)
            forward_unit(t, b, j, u, xw, bias, c, vecs, S, saves)
            if zoned:
                zone_mix(t, b, j, S, keep, S_new)

    @cuda.jit
    def backward_step(t, UT, dys, S, saves, vecs, d_next, da, du, dvecs, m_h, masked, keep,
                      S_new, zoned):
        """Step t backwards, a thread per (b, j); UT = Uᵀ flat (Gh·H·H), du = dL/d(h U)."""
        b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        T, _, H = dys.shape
        if j < H:
            dh = dys[t, b, j] + d_next[0][b, j]       # h_{t+1} feeds y_t and step t+1
            if t + 1 < T:                             # through h_{t+1} U, the step after
                through = dot(du[t + 1, b], UT, H, j)
                dh += through * m_h[b, j] if masked else through
            backward_unit_split(t, b, j, dh, S, saves, vecs, d_next, da, du, dvecs, keep,
                                S_new, zoned)

    @cuda.jit
    def forward_persistent(units, U, xw, bias, c, vecs, S, saves, m_h, masked, keep, S_new,
                           zoned):
        """Every step in one launch: this block's ``units`` units, their columns of U in shared
        memory (H, Gh·units), the grid at a barrier between steps."""
        sU = cuda.shared.array(0, xw.dtype)
        load_columns(U, sU, units, Gh)
        T, B, _ = xw.shape
        H = S[0].shape[2]
        j0 = cuda.blockIdx.x * units
        grid = cuda.cg.this_grid()
        u = cuda.local.array(G, xw.dtype)
        for t in range(T):
            for q in range(cuda.threadIdx.x, B * units, cuda.blockDim.x):
                b, jj = q // units, q % units
                if j0 + jj < H:
                    m = m_h[b if masked else 0]
                    for g in range(Gh):
                        u[g] = dot_h(S[0][t, b], m, masked, sU, Gh * units, g * units + jj)
                    forward_unit(t, b, j0 + jj, u, xw, bias, c, vecs, S, saves)
                    if zoned:
                        zone_mix(t, b, j0 + jj, S, keep, S_new)
            grid.sync()                               # h_{t+1} complete before step t+1

    @cuda.jit
    def backward_persistent(units, U, dys, S, saves, vecs, d_next, da, du, dvecs, m_h, masked,
                            keep, S_new, zoned):
        """The reverse loop in one launch: this block's rows of U in shared memory (units,
        Gh·H)."""
        sU = cuda.shared.array(0, dys.dtype)
        load_rows(U, sU, units)
        T, B, H = dys.shape
        j0 = cuda.blockIdx.x * units
        grid = cuda.cg.this_grid()
        for t in range(T - 1, -1, -1):
            for q in range(cuda.threadIdx.x, B * units, cuda.blockDim.x):
                b, jj = q // units, q % units
                j = j0 + jj
                if j < H:
                    dh = dys[t, b, j] + d_next[0][b, j]
                    if t + 1 < T:                     # through h_{t+1} U, the step after
                        through = dot(du[t + 1, b], sU, 1, jj * Gh * H)
                        dh += through * m_h[b, j] if masked else through
                    backward_unit_split(t, b, j, dh, S, saves, vecs, d_next, da, du, dvecs,
                                        keep, S_new, zoned)
            grid.sync()                               # du[t] complete before step t-1

    @cuda.jit
    def forward_row(t, U, g_h, eps, xw, bias, c, vecs, S, saves, uhat, u_inv_std, m_h, masked,
                    keep, S_new, zoned):
        """Step t with a layer norm of h U, a block per row b: u = g_h ⊙ LN(h_t U)[b]."""
        sh = cuda.shared.array(ROW_THREADS, xw.dtype)
        b, tid, nt = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        H, GH = S[0].shape[2], uhat.shape[2]
        m = m_h[b if masked else 0]
        for k in range(tid, GH, nt):                  # (h_t U)[b, k], normalised in place next
            uhat[t, b, k] = dot_h(S[0][t, b], m, masked, U, GH, k)
        s = layer_norm_row(uhat[t, b], eps, sh)
        if tid == 0:
            u_inv_std[t, b, 0] = s
        cuda.syncthreads()                            # unit j reads features others wrote
        u = cuda.local.array(G, xw.dtype)
        for j in range(tid, H, nt):
            for g in range(Gh):
                u[g] = g_h[g * H + j] * uhat[t, b, g * H + j]
            forward_unit(t, b, j, u, xw, bias, c, vecs, S, saves)
            if zoned:
                zone_mix(t, b, j, S, keep, S_new)

    @cuda.jit
    def backward_row(t, UT, g_h, dys, S, saves, vecs, d_next, da, du, dvecs, dhu, uhat,
                     u_inv_std, m_h, masked, keep, S_new, zoned):
        """Step t backwards with a layer norm of h U, a block per row b: the unit bodies give
        du = dL/du, the norm's backward over the row dhu = dL/d(h U)."""
        sh = cuda.shared.array(ROW_THREADS, dys.dtype)
        b, tid, nt = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        T, _, H = dys.shape
        for j in range(tid, H, nt):
            dh = dys[t, b, j] + d_next[0][b, j]
            if t + 1 < T:                             # through h_{t+1} U, the step after
                through = dot(dhu[t + 1, b], UT, H, j)
                dh += through * m_h[b, j] if masked else through
            backward_unit_split(t, b, j, dh, S, saves, vecs, d_next, da, du, dvecs, keep,
                                S_new, zoned)
        cuda.syncthreads()                            # the row's reductions read every unit
        # u = g_h*uhat + c, uhat = (h U - mean) * inv_std
        layer_norm_row_backward(du[t, b], g_h, uhat[t, b], u_inv_std[t, b, 0], dhu[t, b], sh)

    @cuda.jit
    def forward_free(xw, bias, c, vecs, S, saves, m_h, masked, keep, S_new, zoned):
        """No recurrent product: a thread per (b, j) takes its unit through every step."""
        b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        if j < S[0].shape[2]:
            u = cuda.local.array(G, xw.dtype)         # (unused: there is no h U)
            for t in range(xw.shape[0]):
                forward_unit(t, b, j, u, xw, bias, c, vecs, S, saves)
                if zoned:
                    zone_mix(t, b, j, S, keep, S_new)

    @cuda.jit
    def backward_free(dys, S, saves, vecs, d_next, da, du, dvecs, m_h, masked, keep, S_new,
                      zoned):
        b, j = cuda.blockIdx.y, cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        if j < dys.shape[2]:
            for t in range(dys.shape[0] - 1, -1, -1):
                dh = dys[t, b, j] + d_next[0][b, j]
                backward_unit_split(t, b, j, dh, S, saves, vecs, d_next, da, du, dvecs, keep,
                                    S_new, zoned)

    return SimpleNamespace(**{k: v for k, v in locals().items() if hasattr(v, "py_func")})


# ============================================================================ the glue

def glue_source(cell):
    """The Python text of ``cell``'s unit bodies (a ``Gated`` declaration), as compiled."""
    n_state, n_saves, n_vec = len(cell.state), len(cell.saves), len(cell.unit_params)
    n_vectors = len(cell.vectors)                     # the unit params, then the constants
    bias = {g: k for k, g in enumerate(cell.bias_blocks)} if cell.x_norm is None else {}
    h_bias = {g: k for k, g in enumerate(cell.h_bias_blocks)}
    a = [f"xw[t, b, {g} * H + j]" + (f" + bias[{bias[n]} * H + j]" if n in bias else "")
         for g, n in enumerate(cell.x_blocks)]
    u = [f"u[{g}]" + (f" + c[{h_bias[n]} * H + j]" if n in h_bias else "")
         for g, n in enumerate(cell.h_blocks)]
    vecs = [f"vecs[{k}][j]" for k in range(n_vectors)]
    old = [f"S[{k}][t, b, j]" for k in range(n_state)]
    new = [f"S[{k}][t + 1, b, j]" for k in range(n_state)]
    saved = [f"saves[{k}][t, b, j]" for k in range(n_saves)]

    def call(results, f, args):
        return f"    {', '.join(results)} = {f}(\n        " + ",\n        ".join(args) + ")\n"

    forward = ("def forward_unit(t, b, j, u, xw, bias, c, vecs, S, saves):\n"
               "    H = S[0].shape[2]\n" + call(new + saved, "point", a + u + vecs + old))
    # the backward's results: d_a (Gx) | d_u of the blocks not summed | d_vecs | d_state
    d_a = [f"d_a{g}" for g in range(cell.Gx)]
    d_u = {g: f"d_u{g}" for g in cell.separate}
    d_vec = [f"d_vec{k}" for k in range(n_vec)]
    d_old = [f"d_next[{k}][b, j]" for k in range(n_state)]
    stores = [f"da[t, b, {g} * H + j] = {d}" for g, d in enumerate(d_a)]
    if not du_is_da(cell):                            # du holds every h block's gradient
        stores += [f"du[t, b, {g} * H + j] = "
                   + (d_a[cell.x_blocks.index(n)] if n in cell.summed else d_u[n])
                   for g, n in enumerate(cell.h_blocks)]
    stores += [f"dvecs[{k}][t, b, j] = {d}" for k, d in enumerate(d_vec)]
    # dnew: the gradients into the new state's components (zoneout's share 1 - k of them);
    # Sn: the new state the point made (S itself, or zoneout's S_new)
    d_new = [f"dnew[{k}]" for k in range(n_state)]
    made = [f"Sn[{k}][t + 1, b, j]" for k in range(n_state)]
    backward = ("def backward_unit(t, b, j, dnew, S, Sn, saves, vecs, d_next, da, du, dvecs):\n"
                "    H = S[0].shape[2]\n"
                + call(d_a + list(d_u.values()) + d_vec + d_old, "point_backward",
                       d_new + old + made + saved + vecs)
                + "".join(f"    {s}\n" for s in stores))
    return forward + "\n\n" + backward


def du_is_da(cell):
    """Whether dL/du is dL/da itself (every h block summed, in the order of the x blocks, no
    norm between, or no h U at all): then the backward writes one array, not two."""
    return not cell.Gh or (cell.h_blocks == cell.x_blocks and cell.summed == cell.h_blocks
                           and not cell.h_norm)


# ============================================================================ the calls

def _select(v, blocks, chosen, H):
    """The ``chosen`` blocks of the device vector v (len(blocks)·H,), in order."""
    if chosen == blocks:
        return v
    out = empty(len(chosen) * H, v.dtype)
    for k, g in enumerate(chosen):
        i = blocks.index(g)
        out[k * H:(k + 1) * H].copy_to_device(v[i * H:(i + 1) * H])
    return out


class GatedBackend:
    """The cuda forward and backward of one ``Gated`` cell (device arrays in and out)."""

    def __init__(self, cell):
        self.cell = cell
        env = {"point": compiled_point(cell.point),
               "point_backward": compiled_point(cell.point_backward)}
        exec(compile(glue_source(cell), f"<CUDA glue of {cell.name}>", "exec"), env)
        self.kernels = loops(cuda.jit(device=True)(env["forward_unit"]),
                             cuda.jit(device=True)(env["backward_unit"]), cell.Gh,
                             len(cell.state))

    # ------------------------------------------------------------------ x side
    def _x_forward(self, p, x, H, training, momentum, buffers):
        """a (T, B, Gx·H) before its biases (those are added as the loop reads), and what
        the backward of the x side needs."""
        cell = self.cell
        T, B, I = x.shape
        G = cell.Gx * H
        xw = gemm(x.reshape(T * B, I), p["W"])        # every step in one product
        if cell.x_norm is None:
            return xw.reshape(T, B, G), {}
        eps = x.dtype.type(EPS)
        a = empty((T * B, G), x.dtype)
        if cell.x_norm == "layer":                    # per row: a = g_x ⊙ LN(x W) + b
            a_inv_std = empty((T, B, 1), x.dtype)
            layer_norm_rows[T * B, row_threads(G, ROW_THREADS)](
                xw, p["g_x"], p["b"], eps, a_inv_std.reshape(T * B), a)   # xw -> ahat
            return a.reshape(T, B, G), {"ahat": xw.reshape(T, B, G), "a_inv_std": a_inv_std}
        features, columns = grid_rows(1, G)           # "batch": over all T·B rows
        if training:
            require_batch_statistics(cell.name, x)
            mean, var = empty(G, x.dtype), empty(G, x.dtype)
            batch_statistics[features, columns](xw, mean, var)   # μ, biased σ² over the rows
            if buffers is not None:                   # PyTorch's rule, the unbiased variance
                n = T * B
                batch = {"running_mean": mean.copy_to_host(),
                         "running_var": var.copy_to_host() * (n / (n - 1))}
                for key in ("running_mean", "running_var"):
                    buffers[key] *= 1 - momentum
                    buffers[key] += momentum * batch[key]
        else:
            mean, var = to_device(buffers["running_mean"]), to_device(buffers["running_var"])
        vhat, inv_std = empty((T * B, G), x.dtype), empty(G, x.dtype)
        batch_normalize[features, columns](xw, mean, var, eps, vhat, inv_std)
        affine_columns[features, columns](vhat, p["gamma"], p["beta"], a)
        return a.reshape(T, B, G), {"vhat": vhat, "inv_std": inv_std, "training": training}

    def _x_backward(self, p, da, cache):
        """(the x side's own gradients, dL/d(x W) as (T·B, Gx·H)) from dL/da."""
        cell = self.cell
        T, B, G = da.shape
        dA = da.reshape(T * B, G)
        if cell.x_norm is None:
            grads = {}
            if cell.bias_blocks:
                grads["b"] = _select(colsum(dA), cell.x_blocks, cell.bias_blocks, G // cell.Gx)
            return grads, dA
        dxw = empty((T * B, G), da.dtype)
        g1, g2 = empty(G, da.dtype), empty(G, da.dtype)
        features, columns = grid_rows(1, G)
        if cell.x_norm == "layer":
            ahat = cache["ahat"].reshape(T * B, G)
            layer_norm_rows_backward[T * B, row_threads(G, ROW_THREADS)](
                dA, p["g_x"], ahat, cache["a_inv_std"].reshape(T * B), dxw)
            gain_bias_grads[features, columns](dA, ahat, g1, g2)
            return {"g_x": g1, "b": g2}, dxw
        batch_normalize_backward[features, columns](dA, p["gamma"], cache["vhat"],
                                                    cache["inv_std"], bool(cache["training"]),
                                                    dxw, g1, g2)
        return {"gamma": g1, "beta": g2}, dxw

    # ------------------------------------------------------------------ forward, backward
    loop_regularisers = True          # its kernels apply recurrent dropout and zoneout (masks=)

    def forward(self, p, x, state0, training=True, *, momentum=None, buffers=None,
                masks=None, scan="sequential"):
        cell, k = self.cell, self.kernels
        if scan == "parallel":
            return self._scan_forward(p, x, state0, training, momentum, buffers, masks)
        T, B, _ = x.shape
        states0 = state0 if isinstance(state0, tuple) else (state0,)
        H = states0[0].shape[1]
        GH = cell.Gh * H
        dtype = x.dtype
        xw, cache = self._x_forward(p, x, H, training, momentum, buffers)
        S = tuple(empty((T + 1, B, H), dtype) for _ in cell.state)    # states 0 .. T
        for s, s0 in zip(S, states0):
            s[0].copy_to_device(s0)
        saves = tuple(empty((T, B, H), dtype) for _ in cell.saves)
        none = empty(1, dtype)                        # for a bias the cell does not have
        bias = p["b"] if cell.x_norm is None and cell.bias_blocks else none
        c = p["c"] if cell.h_bias_blocks else none
        reg = loop_masks(masks, len(cell.state), T, B, H, dtype)
        args = (xw, bias, c, tuple(cell.unit_arrays(p, H)), S, saves)
        if not cell.Gh:
            grid, threads = grid_rows(B, H)
            k.forward_free[grid, threads](*args, *reg)
        elif cell.h_norm:
            uhat, u_inv_std = empty((T, B, GH), dtype), empty((T, B, 1), dtype)
            U, eps, threads = p["U"].reshape(H * GH), dtype.type(EPS), row_threads(GH, ROW_THREADS)
            for t in range(T):
                k.forward_row[B, threads](t, U, p["g_h"], eps, *args, uhat, u_inv_std, *reg)
            cache.update(uhat=uhat, u_inv_std=u_inv_std)
        else:
            time_loop(k.forward_persistent, (p["U"], *args, *reg), k.forward_step,
                      lambda: (p["U"].reshape(H * GH), *args, *reg), range(T), B, H, cell.Gh)
        cache["x"] = x
        cache["regularised"] = reg                    # the device masks, for the backward
        cache.update({n + "s": s for n, s in zip(cell.state, S)})
        cache.update(zip(cell.saves, saves))
        final = tuple(copy(s[T]) for s in S)
        return copy(S[0][1:]), final if len(S) > 1 else final[0], cache

    def backward(self, p, cache, dys, dstate):
        if cache.get("scan") == "parallel":
            return self._scan_backward(p, cache, dys, dstate)
        cell, k = self.cell, self.kernels
        x = cache["x"]
        T, B, H = dys.shape
        I, GH = x.shape[2], cell.Gh * H
        dtype = dys.dtype
        S = tuple(cache[n + "s"] for n in cell.state)
        saves = tuple(cache[n] for n in cell.saves)
        vecs = tuple(cell.unit_arrays(p, H))
        d_next = tuple(copy(d) for d in (dstate if isinstance(dstate, tuple) else (dstate,)))
        da = empty((T, B, cell.Gx * H), dtype)        # dL/da, a the x side of the point
        du = da if du_is_da(cell) else empty((T, B, max(GH, 1)), dtype)   # dL/du
        dhu = empty((T, B, GH), dtype) if cell.h_norm else du              # dL/d(h U)
        dvecs = tuple(empty((T, B, H), dtype) for _ in cell.unit_params)   # per row; summed
        reg = cache["regularised"]
        m_h, masked = reg[:2]
        args = (dys, S, saves, vecs, d_next, da, du, dvecs)
        if not cell.Gh:
            grid, threads = grid_rows(B, H)
            k.backward_free[grid, threads](*args, *reg)
        elif cell.h_norm:
            UT, threads = p["U"].T.reshape(GH * H), row_threads(GH, ROW_THREADS)
            for t in range(T - 1, -1, -1):
                k.backward_row[B, threads](t, UT, p["g_h"], *args, dhu, cache["uhat"],
                                           cache["u_inv_std"], *reg)
        else:
            # the per-step kernels read a copy of Uᵀ, whose columns j are read together
            time_loop(k.backward_persistent, (p["U"], *args, *reg), k.backward_step,
                      lambda: (p["U"].T.reshape(GH * H), *args, *reg), range(T - 1, -1, -1),
                      B, H, cell.Gh)
        grads, dXW = self._x_backward(p, da, cache)
        grads["W"] = gemm(x.reshape(T * B, I), dXW, ta=True)
        if cell.Gh:
            if masked:                                # through (h_0 ⊙ m_h) U
                mul_cyclic(gemm(dhu[0], p["U"], tb=True), m_h, d_next[0], accumulate=True)
                hs = mul_cyclic(S[0][:T], m_h)         # what the product saw
            else:
                gemm(dhu[0], p["U"], d_next[0], accumulate=True, tb=True)   # through h_0 U
                hs = S[0][:T]
            grads["U"] = gemm(hs.reshape(T * B, H), dhu.reshape(T * B, GH), ta=True)
            dU = du.reshape(T * B, GH)
            if cell.h_norm:                           # u = g_h ⊙ uhat + c, every block
                grads["g_h"], grads["c"] = empty(GH, dtype), empty(GH, dtype)
                features, columns = grid_rows(1, GH)
                gain_bias_grads[features, columns](dU, cache["uhat"].reshape(T * B, GH),
                                                   grads["g_h"], grads["c"])
            elif cell.h_bias_blocks:
                grads["c"] = _select(colsum(dU), cell.h_blocks, cell.h_bias_blocks, H)
        units = {name: colsum(dv.reshape(T * B, H)) for name, dv in zip(cell.unit_params, dvecs)}
        for name, parts in cell.packed:               # one vector of several parts (sru's v)
            grads[name] = empty(len(parts) * H, dtype)
            for i, part in enumerate(parts):
                grads[name][i * H:(i + 1) * H].copy_to_device(units.pop(part))
        grads.update(units)
        dx = gemm(dXW, p["W"], tb=True).reshape(T, B, I)
        grads = {n: grads[n] for n in p if n not in cell.fixed}       # (not the constants)
        return dx, d_next if len(d_next) > 1 else d_next[0], grads

    # ------------------------------------------------------------------ scan="parallel"
    def _scan_kernels(self, dtype):
        """The block-level scan's kernels for this cell and dtype (``_scan.py``)."""
        from . import _scan
        if not hasattr(self, "_scan_units"):
            cell = self.cell
            env = {"coefficients": compiled_point(cell.linear[0]),
                   "coefficients_backward": compiled_point(cell.linear[1])}
            exec(compile(_scan.glue_source(cell), f"<CUDA scan glue of {cell.name}>", "exec"),
                 env)
            self._scan_units = (cuda.jit(device=True)(env["coefficients_unit"]),
                                cuda.jit(device=True)(env["coefficients_backward_unit"]))
        return _scan.kernels(*self._scan_units, dtype)

    def _scan_forward(self, p, x, h0, training, momentum, buffers, masks):
        from ._scan import SCAN_THREADS
        cell = self.cell
        refuse_zoneout(cell.name, masks)
        T, B, _ = x.shape
        H = h0.shape[1]
        dtype = x.dtype
        xw, cache = self._x_forward(p, x, H, training, momentum, buffers)
        bias = p["b"] if cell.x_norm is None and cell.bias_blocks else empty(1, dtype)
        ca, cb, hs = empty((T, B, H), dtype), empty((T, B, H), dtype), empty((T + 1, B, H), dtype)
        hs[0].copy_to_device(h0)
        forward, _ = self._scan_kernels(dtype)
        forward[B * H, SCAN_THREADS](xw, bias, ca, cb, hs)
        cache.update({"x": x, "xw": xw, "a": ca, "b": cb, cell.state[0] + "s": hs,
                      "scan": "parallel", "regularised": None})
        return copy(hs[1:]), copy(hs[T]), cache

    def _scan_backward(self, p, cache, dys, dstate):
        from ._scan import SCAN_THREADS
        cell = self.cell
        x, xw, ca, cb = cache["x"], cache["xw"], cache["a"], cache["b"]
        T, B, H = dys.shape
        I, dtype = x.shape[2], dys.dtype
        bias = p["b"] if cell.x_norm is None and cell.bias_blocks else empty(1, dtype)
        g, dh0 = empty((T, B, H), dtype), empty((B, H), dtype)
        dxw = empty((T, B, cell.Gx * H), dtype)
        _, backward = self._scan_kernels(dtype)
        backward[B * H, SCAN_THREADS](xw, bias, ca, cb, cache[cell.state[0] + "s"], dys, dstate,
                                      g, dxw, dh0)
        grads, dXW = self._x_backward(p, dxw, cache)
        grads["W"] = gemm(x.reshape(T * B, I), dXW, ta=True)
        dx = gemm(dXW, p["W"], tb=True).reshape(T, B, I)
        return dx, dh0, {n: grads[n] for n in p if n not in cell.fixed}
