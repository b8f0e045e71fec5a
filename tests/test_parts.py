"""The compiled parts around the cell (minigru/numba/_parts.py) against their NumPy references,
and the whole-model workloads of ``minigru bench --workload`` that time them."""

import io
import json

import numpy as np
import pytest

import minigru as mg
from minigru import losses, workloads
from minigru.cli import main

DTYPES = [np.float64, np.float32]
TOL = {np.float64: 1e-12, np.float32: 2e-6}


def _rel(ours, ref):
    return float(np.max(np.abs(np.asarray(ours, np.float64) - ref))
                 / max(np.max(np.abs(np.asarray(ref, np.float64))), 1e-300))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("masked", [False, True], ids=["all kept", "masked"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_compiled_cross_entropy_equals_the_reference(dtype, masked, reduction):
    rng = np.random.default_rng(0)
    logits = (4 * rng.normal(size=(7, 5, 33))).astype(dtype)
    target = rng.integers(0, 33, size=(7, 5))
    mask = rng.random((7, 5)) < 0.7 if masked else None
    if masked:
        target[~mask] = -100                          # a padding label, never looked at
    ref = losses.cross_entropy(logits, target, mask, reduction)
    ours = losses.cross_entropy(logits, target, mask, reduction, backend="numba")
    assert ours[0].dtype == dtype and ours[1].dtype == dtype and ours[1].shape == logits.shape
    assert _rel(ours[0], ref[0]) < TOL[dtype] and _rel(ours[1], ref[1]) < TOL[dtype]
    if masked:
        assert np.all(ours[1][~mask] == 0)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_compiled_bce_with_logits_equals_the_reference(dtype, reduction):
    rng = np.random.default_rng(1)
    logits = (5 * rng.normal(size=(9, 4, 11))).astype(dtype)
    target = rng.random((9, 4, 11)).astype(dtype)         # soft labels too
    ref = losses.bce_with_logits(logits, target, reduction)
    ours = losses.bce_with_logits(logits, target, reduction, backend="numba")
    assert ours[0].dtype == dtype and ours[1].dtype == dtype
    assert _rel(ours[0], ref[0]) < TOL[dtype] and _rel(ours[1], ref[1]) < TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_compiled_losses_stay_finite_at_huge_logits(dtype):
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]], dtype)
    target = np.array([1, 2])
    loss, grad = losses.cross_entropy(logits, target, backend="numba")
    ref = losses.cross_entropy(logits, target)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert _rel(loss, ref[0]) < TOL[dtype] and _rel(grad, ref[1]) < TOL[dtype]
    t = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]], dtype)
    loss, grad = losses.bce_with_logits(logits, t, backend="numba")
    ref = losses.bce_with_logits(logits, t)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert _rel(loss, ref[0]) < TOL[dtype] and _rel(grad, ref[1]) < TOL[dtype]


def test_the_compiled_losses_check_their_arguments_as_the_reference_does():
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"target must hold class indices in \[0, 3\]"):
        losses.cross_entropy(logits, np.array([0, 4, 1]), backend="numba")
    with pytest.raises(ValueError, match="target must be in"):
        losses.bce_with_logits(logits, np.full((3, 4), 2.0), backend="numba")
    with pytest.raises(ValueError, match=r"backend must be one of \('numpy', 'numba'\), "
                                         r"got 'cuda'"):
        losses.cross_entropy(logits, np.array([0, 1, 2]), backend="cuda")
    with pytest.raises(ValueError, match="backend must be one of"):
        mg.Embedding(4, 2, backend="torch")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_the_compiled_embedding_backward_adds_the_same_sums(dtype):
    """Repeated indices all count, in the order ``np.add.at`` adds them: equal to the bit."""
    rng = np.random.default_rng(2)
    idx = rng.integers(0, 6, size=(40, 3))               # every row repeated many times
    ref, ours = (mg.Embedding(6, 5, dtype=dtype, seed=0, backend=b) for b in ("numpy", "numba"))
    dy = rng.normal(size=(40, 3, 5)).astype(dtype)
    for emb in (ref, ours):
        assert np.array_equal(emb.forward(idx), ref.params["E"][idx])
        emb.backward(dy)
        emb.backward(dy[::-1].copy())                   # and it accumulates
    assert ours.grads["E"].dtype == dtype
    assert np.array_equal(ours.grads["E"], ref.grads["E"])
    assert ours.config()["backend"] == "numba"


def test_the_linear_layer_of_any_rank_still_differentiates_its_forward():
    """Linear's products run on (N, I) rows now; its gradients by finite differences."""
    rng = np.random.default_rng(3)
    lin = mg.Linear(4, 3, dtype=np.float64, seed=0)
    x = rng.normal(size=(2, 5, 4))
    R = rng.normal(size=(2, 5, 3))
    y = lin.forward(x)
    assert y.shape == (2, 5, 3) and np.allclose(y, x @ lin.params["W"] + lin.params["b"])
    dx = lin.backward(R)
    eps = 1e-6
    for k in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[k] += eps
        xm[k] -= eps
        num = (np.sum(R * (xp @ lin.params["W"])) - np.sum(R * (xm @ lin.params["W"]))) / (2 * eps)
        assert abs(num - dx[k]) < 1e-8
    one = mg.Linear(4, 3, dtype=np.float64, seed=0).forward(x[0, 0])      # a single row (I,)
    assert one.shape == (3,) and np.allclose(one, y[0, 0])


# ---------------------------------------------------------------- the workloads
@pytest.mark.parametrize("workload", ["bytelm", "music"])
def test_a_workload_row_times_every_part_of_both_sides(workload):
    torch = pytest.importorskip("torch", reason="the PyTorch side needs torch")
    del torch
    row = workloads.workload_row(workload, "gru", "numba", repeats=1, block=1)
    for side in ("minigru", "torch"):
        assert set(row[side]["parts_ms"]) == set(workloads.PARTS)
        assert row[side]["step_ms"] > 0 and row[side]["steps_per_s"] > 0
        assert all(v >= 0 for k, v in row[side]["parts_ms"].items() if k != "rest")
    # minigru's model is made from PyTorch's weights: the same first loss
    assert abs(row["first_loss"]["minigru"] - row["first_loss"]["torch"]) < 1e-4
    assert row["ratio"] > 0
    if workload == "music":
        assert row["minigru"]["parts_ms"]["embedding"] < 0.05     # it has none


def test_a_variant_without_a_pytorch_twin_is_timed_alone():
    row = workloads.workload_row("bytelm", "mingru", "numba", repeats=1, block=1)
    assert "torch" not in row and "ratio" not in row
    assert np.isfinite(row["minigru"]["last_loss"])


def test_the_workload_data_are_real_sequences():
    (x, y), = workloads.bytelm_batches(64, 4, n=1)
    assert x.shape == y.shape == (64, 4) and np.array_equal(x[1:], y[:-1])   # next bytes
    text = bytes(x[:, 0].astype(np.uint8)).decode("utf-8", errors="replace")
    assert sum(ch.isalpha() or ch.isspace() for ch in text) > 50            # English, mostly
    (x, y), = workloads.music_batches(50, 3, n=1)
    assert x.shape == y.shape == (50, 3, 88) and np.array_equal(x[1:], y[:-1])
    assert 2 <= y.sum(axis=2).mean() <= 5                                    # four voices


def test_bench_workload_from_the_command_line(tmp_path):
    out = io.StringIO()
    png = tmp_path / "parts.png"
    rc = main(["bench", "--workload", "music", "--variant", "gru", "--vs", "none", "--quick",
               "--plot", str(png)], out=out)
    assert rc == 0
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["workload"] == "music" and result["rows"][0]["variant"] == "gru"
    assert "cell" in out.getvalue() and "steps/s" in out.getvalue()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
