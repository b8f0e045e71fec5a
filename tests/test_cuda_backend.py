"""backend="cuda" against the NumPy reference, for every variant, in both dtypes.

These run on a GPU when there is one, and otherwise in Numba's CUDA simulator, which must be
switched on before numba is imported, so in a pytest process of its own (``.ci/run`` and the
README's test command do this):

    NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/test_cuda_backend.py

The simulator runs every GPU thread as a Python thread: the shapes here are tiny. That the same
kernels compile for a real GPU is checked by ``test_cuda_ptx.py``.
"""

import numpy as np
import pytest

import minigru as mg
from backend_helpers import check_against_reference, check_same_training_step

cuda = pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")
if not cuda.is_available():
    pytest.skip("no GPU here and not in the simulator: run this file with "
                "NUMBA_ENABLE_CUDASIM=1 (as .ci/run does)", allow_module_level=True)

CUDA_VARIANTS = list(mg.VARIANTS)
SMALL = {"input_size": 3, "hidden_size": 5, "steps": 4, "batch": 3}


def test_every_variant_has_cuda():
    from minigru.cells import get_variant
    from minigru.cuda import loops
    for name in mg.VARIANTS:                          # raises for a variant it does not have
        loops(get_variant(name))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("variant", CUDA_VARIANTS)
def test_cuda_equals_numpy(variant, dtype):
    check_against_reference("cuda", variant, dtype, **SMALL)


@pytest.mark.parametrize("variant", CUDA_VARIANTS)
def test_cuda_takes_and_returns_device_arrays(variant):
    check_against_reference("cuda", variant, np.float64, to_backend=cuda.to_device,
                            from_backend=lambda a: a.copy_to_host(),
                            **{**SMALL, "steps": 2, "batch": 2})


@pytest.mark.parametrize("sizes", [{"steps": 1, "batch": 1, "hidden_size": 1},
                                   {"steps": 2, "batch": 2, "hidden_size": 33}],
                         ids=["T1-B1-H1", "H33"])
@pytest.mark.parametrize("variant", ["gru", "lstm", "mgu", "rru"])
def test_cuda_edge_shapes(variant, sizes):
    """One unit, one step, one row; and H past one warp (two blocks of threads)."""
    check_against_reference("cuda", variant, np.float64, **{**SMALL, **sizes})


def test_device_array_of_the_wrong_shape_is_named():
    cell = mg.cell("gru", backend="cuda")
    p = cell.init(3, 4, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"x must have shape \(T, B, I\) = \(\?, \?, 3\), "
                                         r"got \(2, 1, 4\)"):
        cell.forward(p, cuda.to_device(np.zeros((2, 1, 4))))
    with pytest.raises(TypeError, match="x has dtype float32 but the parameters are float64"):
        cell.forward(p, cuda.to_device(np.zeros((2, 1, 3), np.float32)))
    with pytest.raises(TypeError, match=r"x must be a numpy.ndarray or a device array, got list"):
        cell.forward(p, [[[0.0] * 3]])


def test_device_arrays_are_refused_by_the_cpu_backends():
    cell = mg.cell("gru", backend="numba")
    p = cell.init(3, 4, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"x must be a numpy.ndarray, got"):
        cell.forward(p, cuda.to_device(np.zeros((2, 1, 3))))


def test_backward_leaves_its_inputs_alone():
    cell = mg.cell("gru", backend="cuda")
    rng = np.random.default_rng(0)
    p = {k: cuda.to_device(v) for k, v in cell.init(3, 4, rng=rng).items()}
    x = cuda.to_device(rng.normal(size=(3, 2, 3)))
    ys, h, cache = cell.forward(p, x)
    dys, dh = rng.normal(size=(3, 2, 4)), rng.normal(size=(2, 4))
    d_dys, d_dh = cuda.to_device(dys), cuda.to_device(dh)
    cell.backward(p, cache, d_dys, d_dh)
    np.testing.assert_array_equal(d_dys.copy_to_host(), dys)
    np.testing.assert_array_equal(d_dh.copy_to_host(), dh)


def test_cuda_rnn_layer_agrees_with_numpy():
    rnn = mg.RNN("gru", 3, 5, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).normal(size=(4, 3, 3))
    lengths = np.array([4, 1, 3])
    ys, _ = rnn.forward(x, lengths=lengths)
    dx = rnn.backward(np.ones_like(ys))
    grads = {k: g.copy() for k, g in rnn.grads.items()}
    rnn.zero_grad()
    rnn.backend = "cuda"
    ys2, _ = rnn.forward(x, lengths=lengths)
    dx2 = rnn.backward(np.ones_like(ys2))
    np.testing.assert_allclose(ys2, ys, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx2, dx, rtol=1e-10, atol=1e-13)
    for k in grads:
        np.testing.assert_allclose(rnn.grads[k], grads[k], rtol=1e-10, atol=1e-13, err_msg=k)


def test_bench_in_the_simulator_says_its_timings_mean_nothing():
    import io
    import json

    from minigru.bench import run
    out = io.StringIO()
    result = run(["gru"], backend="cuda", vs_torch=False, quick=True, out=out)
    text = out.getvalue()
    assert "timings below mean nothing about a GPU" in text
    assert result["simulated"] is True
    assert json.loads(text.strip().splitlines()[-1])["streaming_step"][0]["step_us"] > 0


def test_the_cuda_page_examples_run():
    from test_docs import NEEDS_CUDA, ROOT, run_python_blocks
    for name in NEEDS_CUDA:
        run_python_blocks(ROOT / "docs" / name)


class _Recorder:
    """Stands in for a kernel in its module, noting each launch and passing it on."""

    def __init__(self, kernel, log):
        self.kernel, self.log = kernel, log

    def __getitem__(self, config):
        self.log.append(self.kernel.__name__ if hasattr(self.kernel, "__name__") else "kernel")
        return self.kernel[config]


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent", "per-step"])
@pytest.mark.parametrize("variant", ["gru", "rnn", "lstm", "ligru"])
def test_persistent_and_per_step_kernels_both_agree(variant, persistent, monkeypatch):
    """The simulator is a GPU of one multiprocessor that runs cooperative grids of one block:
    there the persistent kernels take all H units in one block, where they fit."""
    from minigru.cells import get_variant
    from minigru.cuda import _BACKENDS, _blas, loops
    loops(get_variant(variant))                       # builds the cell's kernels
    kernels = _BACKENDS[get_variant(variant).structure].kernels
    monkeypatch.setattr(_blas, "PERSISTENT", persistent)
    per_step = []
    for name in ("forward_step", "backward_step"):
        monkeypatch.setattr(kernels, name, _Recorder(getattr(kernels, name), per_step))
    check_against_reference("cuda", variant, np.float64, **{**SMALL, "hidden_size": 33})
    # forward, backward and the one-step forward of step(): T + T + 1 launches, or none
    assert len(per_step) == (0 if persistent else 2 * SMALL["steps"] + 1), per_step


def test_mgu3_gate_grid_deeper_than_the_gpu_allows_runs_in_chunks(monkeypatch):
    """mgu3's gate sees no h, so one launch takes every step (a grid T deep); a GPU allows
    65535 there, so longer sequences go in chunks: here chunks of 3 steps of 4."""
    import minigru.cuda._two_stage_loops as module
    monkeypatch.setattr(module, "MAX_GRID_Z", 3)
    check_against_reference("cuda", "mgu3", np.float64, **SMALL)


@pytest.mark.parametrize("variant", CUDA_VARIANTS)
def test_cuda_gradcheck(variant):
    """The cuda backward against float64 centred differences (``minigru gradcheck --backend
    cuda``)."""
    checks = mg.gradcheck(variant, backend="cuda")
    bad = [f"{c.tensor} {c.error:.1e}" for c in checks if not c.ok]
    assert not bad, f"{variant} cuda: " + ", ".join(bad)


def test_a_strided_device_array_is_refused_by_name():
    """The kernels reshape their inputs, which a device array can do only when contiguous."""
    cell = mg.cell("gru", backend="cuda")
    p = cell.init(3, 4, rng=np.random.default_rng(0))
    wide = cuda.to_device(np.zeros((2, 1, 6)))
    with pytest.raises(ValueError, match=r"x must be a C-contiguous device array, got one with "
                                         r"shape \(2, 1, 3\)"):
        cell.forward(p, wide[:, :, ::2])
    with pytest.raises(ValueError, match=r"x_t must be a C-contiguous device array"):
        cell.step(p, cuda.to_device(np.zeros((1, 6)))[:, ::2])


def test_the_tutorial_cell_runs_on_cuda_as_on_numpy():
    """docs/custom-cells.md's Light Recurrent Unit, declared once, on the GPU (or simulator):
    the kernels come from its declaration and point functions, nothing written for CUDA."""
    from test_docs import ROOT, python_blocks

    import minigru.cells
    if "lru" not in minigru.cells.REGISTRY:
        exec(python_blocks(ROOT / "docs" / "custom-cells.md")[0], {})
    for dtype in (np.float64, np.float32):
        check_against_reference("cuda", "lru", dtype, **SMALL)
    checks = mg.gradcheck("lru", backend="cuda")
    assert all(c.ok for c in checks), [(c.tensor, c.error) for c in checks]


REGULARISERS = {"input_dropout": 0.2, "recurrent_dropout": 0.3, "zoneout": 0.25,
                "weight_dropout": 0.3}


@pytest.mark.parametrize("variant", CUDA_VARIANTS)
def test_cuda_gradients_with_every_regulariser(variant):
    """The kernels' recurrent dropout and zoneout, and Cell's input and weight dropout around
    them: every gradient against the float64 reference's, the masks fixed."""
    options = dict(REGULARISERS)
    if not mg.cell(variant).variant.layout.recurrent:   # no product with h to act on
        del options["recurrent_dropout"], options["weight_dropout"]
    checks = mg.gradcheck(variant, "cuda", options=options, **SMALL)
    assert all(c.ok for c in checks), [(c.tensor, c.error) for c in checks if not c.ok]


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent", "per-step"])
@pytest.mark.parametrize("variant", ["lstm", "gru_v3"])
def test_cuda_regularisers_in_evaluation_and_both_kernel_shapes(variant, persistent,
                                                                monkeypatch):
    from minigru.cuda import _blas
    monkeypatch.setattr(_blas, "PERSISTENT", persistent)
    checks = mg.gradcheck(variant, "cuda", options={"zoneout": 0.3, "recurrent_dropout": 0.3},
                          training=False, **SMALL)
    assert all(c.ok for c in checks), [(c.tensor, c.error) for c in checks if not c.ok]
    checks = mg.gradcheck(variant, "cuda", options={"zoneout": 0.3, "recurrent_dropout": 0.3},
                          **SMALL)
    assert all(c.ok for c in checks), [(c.tensor, c.error) for c in checks if not c.ok]


def test_input_dropout_refuses_device_arrays_by_name():
    p = mg.cell("gru").init(3, 5, rng=np.random.default_rng(0))
    x = cuda.to_device(np.ones((2, 2, 3)))
    with pytest.raises(NotImplementedError, match="device arrays were given"):
        mg.cell("gru", "cuda", input_dropout=0.2).forward(p, x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("T", [2, 40])
@pytest.mark.parametrize("variant", ["mingru", "minlstm"])
def test_the_block_scan_equals_the_sequential_reference(variant, T, dtype):
    """scan='parallel' on cuda (cuda/_scan.py: one block per unit column, its 32 threads
    chunks of time) against the NumPy sequential loop: outputs, final state, every gradient;
    with fewer steps than threads (T=2) and more (T=40)."""
    rng = np.random.default_rng(T)
    B, I, H = 2, 3, 4
    p = mg.cell(variant).init(I, H, rng=rng)
    x, h0 = rng.standard_normal((T, B, I)), 3.0 * rng.standard_normal((B, H))
    dys, dh_T = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))
    check_same_training_step(mg.cell(variant), mg.cell(variant, "cuda", scan="parallel"), p, x,
                             h0, dys, dh_T, 1e-12 if dtype == np.float64 else 1e-5,
                             p_ours={k: v.astype(dtype) for k, v in p.items()})


def test_the_block_scan_refuses_zoneout_by_name():
    p = mg.cell("mingru").init(3, 4, rng=np.random.default_rng(0))
    with pytest.raises(NotImplementedError, match="zoneout with scan='parallel'"):
        mg.cell("mingru", "cuda", scan="parallel", zoneout=0.2).forward(p, np.zeros((2, 1, 3)))
