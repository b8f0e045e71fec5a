"""minigru bench runs and reports (its figures are measurements, never asserted here)."""

import io
import json
from types import SimpleNamespace

import pytest

import minigru.bench as bench
from minigru.cli import main


def test_bench_quick_prints_a_table_and_a_json_line(tmp_path):
    out = io.StringIO()
    png = tmp_path / "ratios.png"
    rc = main(["bench", "--variant", "rnn", "--vs", "none", "--quick", "--plot", str(png)],
              out=out)
    assert rc == 0
    lines = out.getvalue().strip().splitlines()
    result = json.loads(lines[-1])
    assert result["backend"] == "numba" and result["quick"] is True
    assert [r["variant"] for r in result["streaming_step"]] == ["rnn"]
    assert result["vs_numpy"][0]["size"] == "tiny" and result["vs_numpy"][0]["ratio"] > 0
    assert "vs_torch" not in result
    assert isinstance(result["missed_targets"], list)
    assert f"below BENCH.md's targets: {len(result['missed_targets'])}" in out.getvalue()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "validated: 1 variant(s) on numba equal the NumPy reference" in out.getvalue()
    assert result["validated_max_error"] <= bench.VALIDATE_TOL


def test_a_backend_that_disagrees_with_the_reference_is_not_timed(monkeypatch):
    """A forward one part in a million off (a float32 rounding in float64 code, say) is caught
    before any timing."""
    from minigru import cells
    real = cells.BACKENDS["numba"]

    def slightly_off(variant):
        fns = real(variant)

        def forward(*args, **kw):
            ys, state, cache = fns.forward(*args, **kw)
            return ys * (1 + 1e-6), state, cache
        return SimpleNamespace(forward=forward, backward=fns.backward, step=fns.step,
                               prepare_step=None)

    assert bench.validate("gru", "numba") <= bench.VALIDATE_TOL
    monkeypatch.setitem(cells.BACKENDS, "numba", slightly_off)
    with pytest.raises(RuntimeError, match=r"backend=numba disagrees with the NumPy reference, "
                                           r"so it is not timed: gru relative error 1\.0e-06"):
        bench.validate_all(["gru"], "numba", io.StringIO())


def test_missed_targets_lists_the_figures_below_bench_md():
    result = {"vs_torch": [{"variant": "gru", "size": "large", "train_ratio": 1.3,
                            "forward_ratio": 1.1, "train_gemm_efficiency": 0.5}],
              "streaming_step": [{"variant": "gru", "step_us": 1.0, "ratio": 12.0},
                                 {"variant": "mgu", "step_us": 3.0}],
              "vs_numpy": [{"variant": "rru", "size": "medium", "ratio": 1.4},
                           {"variant": "rru", "size": "tiny", "ratio": 11.0}]}
    assert bench.missed_targets(result) == [
        "gru large forward vs PyTorch: 1.10 (target 1.2)",
        "gru large share of the GEMM peak: 0.50 (target 0.65)",
        "rru medium training step vs the reference: 1.40 (target 1.5)"]


def test_alternate_runs_each_side_in_blocks():
    calls = []
    times = bench.alternate({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                            repeats=2, block=2)
    assert set(times) == {"a", "b"}
    # one warm-up each, then per round a block of 1 + 2 calls per side
    assert calls == ["a", "b"] + (["a"] * 3 + ["b"] * 3) * 2


def test_flop_equivalent_follows_bench_md():
    T, B, I, H = bench.SIZES["large"]
    assert bench.flop_equivalent("gru", "large", False) == 6 * T * B * H * (I + H) * 3 / 3
    assert bench.flop_equivalent("lstm", "large", True) == 3 * 6 * T * B * H * (I + H) * 4 / 3


def test_the_plot_draws_the_streaming_step_beside_the_forwards(tmp_path, monkeypatch):
    """The inference panel has one more group of bars, the streaming step, marked with its
    target; a step without a PyTorch ratio (a variant PyTorch lacks) draws none."""
    import matplotlib.axes
    drawn = []
    monkeypatch.setattr(matplotlib.axes.Axes, "bar",
                        lambda self, x, vals, *a, label=None, **k: drawn.append((label, vals)))
    result = {"backend": "numba", "threads": 2,
              "vs_torch": [{"variant": "gru", "size": "tiny", "train_ratio": 20.0,
                            "forward_ratio": 6.0}],
              "streaming_step": [{"variant": "gru", "step_us": 2.0, "ratio": 9.0},
                                 {"variant": "mgu", "step_us": 3.0}]}
    bench.plot(result, tmp_path / "ratios.png")
    assert drawn == [("tiny", [20.0]), ("tiny", [6.0]), ("streaming step", [9.0])]
    assert (tmp_path / "ratios.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_regularisers_row_measures_each_one_the_variant_has():
    row = bench.regulariser_row("mingru", "numba", "tiny", repeats=1, block=1)
    assert row["variant"] == "mingru" and row["train_ms"] > 0
    assert set(k for k in row if k.endswith("_cost")) == {"input_dropout_cost", "zoneout_cost"}
    row = bench.regulariser_row("gru", "numba", "tiny", repeats=1, block=1)
    assert set(k for k in row if k.endswith("_cost")) == {
        f"{k}_cost" for k in bench.REGULARISER_RATES}
    assert all(v > 0 for k, v in row.items() if k.endswith("_cost"))


def test_the_scan_row_times_both_forms_of_the_linear_recurrence(monkeypatch):
    monkeypatch.setitem(bench.SCAN_SIZES, "stream", (20, 1, 1, 4))
    row = bench.scan_row("mingru", "numba", "stream", repeats=1, block=1)
    assert row["T"] == 20 and row["forward_ratio"] > 0 and row["train_ratio"] > 0
    assert {"seq_fwd_ms", "par_fwd_ms", "seq_train_ms", "par_train_ms"} <= set(row)
