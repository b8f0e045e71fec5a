"""backend="numba" against the NumPy reference, for every variant it has, in both dtypes
(the comparison is ``backend_helpers.check_against_reference``, shared with the cuda tests).
Shapes are kept small and few so that the suite compiles each kernel once per dtype.
"""

import os
from pathlib import Path

import numpy as np
import pytest

import minigru as mg
from backend_helpers import check_against_reference
from minigru.numba._blas import BLAS_MIN_ROWS

NUMBA_VARIANTS = list(mg.VARIANTS)


def test_every_variant_has_numba():
    """Every variant has its compiled loops: the declared cells those of their structure,
    rru its own (``minigru.numba.backend``)."""
    for name in mg.VARIANTS:
        assert mg.cell(name, backend="numba").backend == "numba"


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("variant", NUMBA_VARIANTS)
def test_numba_equals_numpy(variant, dtype):
    check_against_reference("numba", variant, dtype, stream=True)


@pytest.mark.parametrize("variant", ["gru", "lstm"])
def test_a_stream_may_start_from_read_only_arrays(variant):
    """The step is prepared from the first call's arrays; read-only ones (a memory-mapped input,
    a frozen initial state) must not make the new state's type read-only."""
    cell = mg.cell(variant, backend="numba")
    p = cell.init(3, 4, rng=np.random.default_rng(0))
    x_t = np.ones((2, 3))
    h0 = mg.cell(variant).step(p, x_t)[1]
    for a in (x_t, *(h0 if isinstance(h0, tuple) else (h0,))):
        a.flags.writeable = False
    y, state = cell.step(p, x_t, h0)                  # the first call: prepared from these
    y2, _ = cell.step(p, x_t, state)
    np.testing.assert_allclose(y2, mg.cell(variant).step(p, x_t, state)[0], rtol=1e-12)


@pytest.mark.parametrize("variant", NUMBA_VARIANTS)
def test_a_stream_of_steps_is_prepared_once(variant):
    """The streaming fast path prepares its step on the first call (state None) and keeps it
    while p, its arrays and the shapes stay; a new array in p prepares it again."""
    cell = mg.cell(variant, backend="numba")
    p = cell.init(3, 4, rng=np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(4, 2, 3))
    _, state = cell.step(p, xs[0])
    prepared = cell._step_record.run
    for x_t in xs[1:]:
        _, state = cell.step(p, x_t, state)
    assert cell._step_record.run is prepared
    key = next(iter(p))
    p[key] = p[key].copy()
    y, _ = cell.step(p, xs[0], state)
    assert cell._step_record.run is not prepared
    np.testing.assert_allclose(y, mg.cell(variant).step(p, xs[0], state)[0], rtol=1e-12)


def test_a_ligru_stream_sees_its_running_statistics_updated_or_replaced():
    """ligru's fast step holds the cell's buffers by identity, like p's arrays: an update in
    place (as a training forward makes) is seen, a replaced dict or array is noticed."""
    cell = mg.cell("ligru", backend="numba")
    p = cell.init(3, 4, rng=np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(5, 2, 3))
    _, state = cell.step(p, xs[0])
    _, state = cell.step(p, xs[1], state)             # the fast path from here

    def changed(t, change):
        nonlocal state
        change()
        y, new = cell.step(p, xs[t], state)
        # buffers given explicitly are checked and used every time: the expected value
        expected = mg.cell("ligru").step(p, xs[t], state, buffers=dict(cell.buffers))[0]
        np.testing.assert_allclose(y, expected, rtol=1e-12)
        state = new
    changed(2, lambda: cell.buffers["running_mean"].__iadd__(0.5))
    changed(3, lambda: setattr(cell, "buffers", {k: 2 * v for k, v in cell.buffers.items()}))
    changed(4, lambda: cell.buffers.__setitem__("running_var", cell.buffers["running_var"] + 1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("variant", NUMBA_VARIANTS)
def test_numba_equals_numpy_with_the_in_loop_blas(variant, dtype):
    """A batch of BLAS_MIN_ROWS rows or more sends the in-loop products to the BLAS."""
    check_against_reference("numba", variant, dtype, batch=BLAS_MIN_ROWS + 1)


def _arrays(obj):
    """Every ndarray in a nest of tuples, lists and dicts."""
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        return [a for o in obj for a in _arrays(o)]
    return []


@pytest.mark.parametrize("variant", NUMBA_VARIANTS)
def test_nothing_returned_lives_in_the_scratch_buffers(variant):
    """The temporaries reuse per-thread scratch memory: no output, cache entry or gradient may
    be a view of it, or the next call would overwrite it."""
    from minigru.numba import _scratch
    cell = mg.cell(variant, backend="numba")
    rng = np.random.default_rng(0)
    p = cell.init(3, 5, rng=rng, dtype=np.float64)
    x = rng.normal(size=(4, 2, 3))
    ys, state, cache = cell.forward(p, x)
    out = cell.backward(p, cache, np.ones_like(ys))
    kept = _arrays((ys, state, cache, out))
    copies = [a.copy() for a in kept]
    ys2, _, cache2 = cell.forward(p, 2 * x + 1)        # the same scratch, other values
    cell.backward(p, cache2, -ys2)
    pool = _scratch._local.pool
    assert pool, "the backend used no scratch buffer"
    for a, c in zip(kept, copies):
        np.testing.assert_array_equal(a, c)
        assert not any(np.shares_memory(a, b) for b in pool.values())


def test_scratch_buffers_are_reused_and_released():
    from minigru.numba._scratch import _local, release, scratch
    a = scratch("test", (3, 4), np.float32)
    b = scratch("test", (2, 2), np.float64)           # smaller: the same memory
    assert np.shares_memory(a, b) and b.shape == (2, 2) and b.dtype == np.float64
    c = scratch("test", (10, 10), np.float64)         # larger: a new buffer, kept
    assert not np.shares_memory(a, c) and _local.pool["test"].nbytes == 800
    release()
    assert "pool" not in _local.__dict__


def test_one_block_shares_an_allocation_of_huge_pages_from_a_megabyte_on():
    from minigru._aligned import HUGE_PAGE_BYTES
    from minigru.numba._scratch import one_block
    n = HUGE_PAGE_BYTES // 8                          # float32: two arrays of half the size
    a, b = one_block(np.float32, (n,), (2, n // 2))
    assert a.base is b.base and a.base.nbytes == HUGE_PAGE_BYTES
    assert a.flags.c_contiguous and b.shape == (2, n // 2) and b.dtype == np.float32
    a[:] = 1
    b[:] = 2                                          # no overlap
    assert (a == 1).all() and (b == 2).all()
    c, d = one_block(np.float32, (n // 2,), (n // 4,))   # 1.5 MB: one block, padded to 4 MB
    assert c.base is d.base and c.base.nbytes == HUGE_PAGE_BYTES
    e, f = one_block(np.float32, (1000,), (500,))    # under a megabyte: separate arrays
    assert e.base is None and f.base is None


@pytest.mark.parametrize("rows", [1, 3, 4, 6, BLAS_MIN_ROWS + 1])   # row, 4-row loop, BLAS
@pytest.mark.parametrize("real", [np.float32, np.float64])
def test_a_window_of_columns_is_multiplied_in_place(real, rows):
    """matmul_columns(A, B, c0, out) = A @ B[:, c0:c0 + n], on every path of the products."""
    from minigru.numba._math import matmul, matmul_acc, matmul_columns
    rng = np.random.default_rng(rows)
    A = rng.normal(size=(rows, 11)).astype(real)
    B = rng.normal(size=(11, 15)).astype(real)
    tol = 1e-5 if real == np.float32 else 1e-12
    for c0, n in [(0, 15), (0, 10), (5, 10), (9, 6), (14, 1)]:
        out = np.full((rows, n), np.nan, real)
        matmul_columns(A, B, c0, out)
        np.testing.assert_allclose(out, A @ B[:, c0:c0 + n], rtol=tol, atol=tol)
    out = np.full((rows, 15), np.nan, real)
    matmul(A, B, out)
    np.testing.assert_allclose(out, A @ B, rtol=tol, atol=tol)
    matmul_acc(A, B, out)
    np.testing.assert_allclose(out, 2 * (A @ B), rtol=tol, atol=tol)


@pytest.mark.parametrize("real", [np.float32, np.float64])
def test_the_fallback_gemm_is_a_gemm(real):
    """Where NumPy ships no OpenBLAS, the kernels' BLAS calls land in a compiled loop."""
    import ctypes

    from minigru.numba._blas import _loop_gemm
    from numba import from_dtype
    f = ctypes.CFUNCTYPE(None, *[ctypes.c_int32] * 3, *[ctypes.c_int64] * 3,
                         np.ctypeslib.as_ctypes_type(real), ctypes.c_void_p, ctypes.c_int64,
                         ctypes.c_void_p, ctypes.c_int64, np.ctypeslib.as_ctypes_type(real),
                         ctypes.c_void_p, ctypes.c_int64)(_loop_gemm(from_dtype(real)))
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(5, 7)).astype(real), rng.normal(size=(4, 6)).astype(real)
    C = rng.normal(size=(5, 9)).astype(real)
    expected = C.copy()
    expected[:, :6] = A[:, 1:5] @ B + 1.0 * C[:, :6]
    # A[:, 1:5] and C[:, :6]: views with leading dimensions 7 and 9
    f(101, 111, 111, 5, 6, 4, 1.0, A[:, 1:].ctypes.data, 7, B.ctypes.data, 6, 1.0,
      C.ctypes.data, 9)
    np.testing.assert_allclose(C, expected, rtol=1e-5)
    C[:, :6] = np.nan                                 # beta 0: C is not read, as in BLAS
    f(101, 111, 111, 5, 6, 4, 1.0, A[:, 1:].ctypes.data, 7, B.ctypes.data, 6, 0.0,
      C.ctypes.data, 9)
    np.testing.assert_allclose(C[:, :6], A[:, 1:5] @ B, rtol=1e-5)


@pytest.mark.parametrize("variant", NUMBA_VARIANTS)
def test_numba_gradcheck(variant):
    checks = mg.gradcheck(variant, backend="numba")
    bad = [f"{c.tensor} {c.error:.1e}" for c in checks if not c.ok]
    assert not bad, f"{variant} numba: " + ", ".join(bad)


def test_numba_rnn_layer_switches_backend_and_agrees():
    rnn = mg.RNN("gru", 3, 5, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).normal(size=(6, 4, 3))
    ys, _ = rnn.forward(x, lengths=np.array([6, 2, 4, 1]))
    dx = rnn.backward(np.ones_like(ys))
    grads = {k: g.copy() for k, g in rnn.grads.items()}
    rnn.zero_grad()
    rnn.backend = "numba"
    ys2, _ = rnn.forward(x, lengths=np.array([6, 2, 4, 1]))
    dx2 = rnn.backward(np.ones_like(ys2))
    np.testing.assert_allclose(ys2, ys, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx2, dx, rtol=1e-10, atol=1e-13)
    for k in grads:
        np.testing.assert_allclose(rnn.grads[k], grads[k], rtol=1e-10, atol=1e-13, err_msg=k)


def test_without_numpys_openblas_the_kernels_run_on_the_fallback_loop():
    """A NumPy without its own OpenBLAS (MKL, Accelerate builds): the names the kernels call
    are bound to the compiled loop, and results still equal the reference. A fresh process,
    since the names are bound at import; it hides NumPy's library from the search."""
    import subprocess
    import sys
    code = """if True:
        import glob
        glob.glob = lambda *args, **kwargs: []         # no NumPy OpenBLAS to be found
        import numpy as np
        import minigru.numba._blas as blas
        assert not blas.HAVE_OPENBLAS
        from backend_helpers import check_against_reference
        for dtype in (np.float64, np.float32):
            check_against_reference("numba", "gru", dtype, batch=blas.BLAS_MIN_ROWS + 1)
        print("fallback ok")
    """
    tests = str(Path(__file__).resolve().parent)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tests, env={**os.environ, "PYTHONPATH": tests})
    assert out.returncode == 0 and "fallback ok" in out.stdout, out.stderr[-2000:]


@pytest.mark.parametrize("backend", ["numba", "cuda"])
def test_a_bare_variant_on_a_compiled_backend_says_what_is_missing(backend, monkeypatch):
    """A variant registered as plain NumPy functions has no structure to compile: the error
    says so, and what would make it compile."""
    from dataclasses import replace

    from minigru import cells
    if backend == "cuda":
        pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")
        from minigru.cuda import loops as build
    else:
        from minigru.numba import backend as build
    bare = replace(cells.get_variant("gru"), name="gru_bare", structure=None)
    monkeypatch.setitem(cells.REGISTRY, "gru_bare", bare)
    with pytest.raises(NotImplementedError, match=rf"backend '{backend}' cannot compile "
                       r"'gru_bare': it is a bare Variant .* \(minigru.cells.Gated or TwoStage, "
                       r"docs/custom-cells.md\).* Use backend='numpy' for it"):
        build(bare)
