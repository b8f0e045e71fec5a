"""One test body for every compiled backend: the backend against the NumPy reference.

API.md: results agree with "numpy" to 1e-10 (float64) and 1e-4 relative (float32); here
"relative" is to each tensor's largest magnitude, as in gradcheck.
"""

import numpy as np

import minigru as mg
from minigru.gradcheck import random_problem

TOL = {np.float64: 1e-10, np.float32: 1e-4}


def cuda_runs_here():
    """Whether backend="cuda" works in this process (a GPU, or the simulator switched on)."""
    try:
        from numba import cuda
    except ImportError:
        return False
    return cuda.is_available()


def close(label, ours, ref, dtype):
    ours = np.asarray(ours)
    assert ours.dtype == dtype, f"{label}: dtype {ours.dtype}"
    scale = max(np.max(np.abs(ref)), 1e-30)
    err = np.max(np.abs(ours.astype(np.float64) - ref)) / scale
    assert err <= TOL[dtype], f"{label}: relative error {err:.2e} > {TOL[dtype]:.0e}"


def check_same_training_step(ref, ours, p, x, h0, dys, dh_T, tol, p_ours=None):
    """Two cells (a reference and ours) given the same problem: outputs, final state, dx,
    dh0 and every gradient within ``tol`` of the reference's, relative to each one's largest
    entry, in ``ours``'s dtype. ``p_ours``: ours's own copy of p (another dtype, say)."""
    def rel(a, b):
        a = np.asarray(a)
        return np.max(np.abs(a.astype(np.float64) - b)) / max(np.max(np.abs(b)), 1e-300)
    q = p if p_ours is None else p_ours
    dtype = next(iter(q.values())).dtype
    cast = (lambda a: a.astype(dtype))
    ys, h_T, cache = ref.forward(p, x, h0)
    yp, hp, cache_p = ours.forward(q, cast(x), cast(h0))
    assert np.asarray(yp).dtype == dtype and rel(yp, ys) < tol and rel(hp, h_T) < tol
    dx, dh0, grads = ref.backward(p, cache, dys, dh_T)
    dxp, dh0p, gradsp = ours.backward(q, cache_p, cast(dys), cast(dh_T))
    assert rel(dxp, dx) < tol and rel(dh0p, dh0) < tol
    for k in p:
        assert np.asarray(gradsp[k]).dtype == dtype and rel(gradsp[k], grads[k]) < tol, k
    return cache_p


def _tuple(s):
    return s if isinstance(s, tuple) else (s,)


def check_against_reference(backend, variant, dtype, to_backend=None, from_backend=None,
                            stream=False, **sizes):
    """forward (training mode), backward (every gradient, dx, dstate0) and step of ``variant``
    on ``backend`` equal the reference's. ``to_backend``/``from_backend`` convert arrays (for
    device arrays in and out). ``stream``: also step through the whole sequence, as a streaming
    loop does (see ``check_stream``)."""
    sizes = {"input_size": 5, "hidden_size": 6, "steps": 7, "batch": 3, **sizes}
    ref, p, x, state0, R, S = random_problem(variant, seed=1, **sizes)
    cast = (lambda a: tuple(map(cast, a)) if isinstance(a, tuple) else a.astype(dtype))
    p, x, state0, R, S = ({k: cast(v) for k, v in p.items()}, cast(x), cast(state0), cast(R),
                          cast(S))
    ours = mg.cell(variant, backend=backend, **{k: ref.options[k] for k in ("dropout", "seed")
                                                 if k in ref.options})
    if ref.buffers is not None:                       # ligru: the same running statistics
        ref.buffers = {k: cast(v) for k, v in ref.buffers.items()}
        ours.buffers = {k: v.copy() for k, v in ref.buffers.items()}
    put = to_backend or (lambda a: a)
    get = from_backend or (lambda a: a)
    put_all = (lambda a: tuple(map(put, a)) if isinstance(a, tuple) else put(a))
    dp = {k: put(v) for k, v in p.items()}
    label = f"{variant} {backend} {np.dtype(dtype).name}"

    ys_r, s_r, cache_r = ref.forward(p, x, state0)
    ys_n, s_n, cache_n = ours.forward(dp, put(x), put_all(state0))
    close(f"{label} ys", get(ys_n), ys_r, dtype)
    for i, (a, b) in enumerate(zip(_tuple(s_n), _tuple(s_r))):
        close(f"{label} final state[{i}]", get(a), b, dtype)
    dx_r, ds_r, g_r = ref.backward(p, cache_r, R, S)
    dx_n, ds_n, g_n = ours.backward(dp, cache_n, put(R), put_all(S))
    close(f"{label} dx", get(dx_n), dx_r, dtype)
    for i, (a, b) in enumerate(zip(_tuple(ds_n), _tuple(ds_r))):
        close(f"{label} dstate0[{i}]", get(a), b, dtype)
    assert set(g_n) == set(p), f"{label}: grads has keys {sorted(g_n)}"
    for k in p:
        close(f"{label} d{k}", get(g_n[k]), g_r[k], dtype)
    y_r, st_r = ref.step(p, x[0], state0)
    y_n, st_n = ours.step(dp, put(x[0]), put_all(state0))
    close(f"{label} step y", get(y_n), y_r, dtype)
    for i, (a, b) in enumerate(zip(_tuple(st_n), _tuple(st_r))):
        close(f"{label} step state[{i}]", get(a), b, dtype)
    if stream:
        check_stream(ref, ours, p, dp, x, label, dtype)


def check_stream(ref, ours, p, dp, x, label, dtype):
    """Step after step from state None, as a streaming loop calls ``Cell.step``: after the first
    step a cell takes its fast path (a step prepared for these arrays, on the numba backend),
    which must give the reference's states with C- and Fortran-ordered inputs and states alike,
    and see parameters updated in place, as an optimiser updates them."""
    s_r = s_n = None
    for t in range(x.shape[0]):
        x_t = x[t] if t % 2 else np.asfortranarray(x[t])
        if t == 3:
            s_n = tuple(map(np.asfortranarray, _tuple(s_n)))
            s_n = s_n if isinstance(s_r, tuple) else s_n[0]
        if t == 4:
            for v in p.values():                      # dp holds the same arrays
                v *= v.dtype.type(0.9)
        y_r, s_r = ref.step(p, x[t], s_r)
        y_n, s_n = ours.step(dp, x_t, s_n)
        close(f"{label} stream step {t} y", y_n, y_r, dtype)
        for i, (a, b) in enumerate(zip(_tuple(s_n), _tuple(s_r))):
            close(f"{label} stream step {t} state[{i}]", a, b, dtype)
