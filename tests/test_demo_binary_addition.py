"""The binary-addition demo, tiny: its result, figures, reproducibility, race and command line."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minigru.cli import main
from minigru.demos import binary_addition as demo
from demo_helpers import COMMON, is_png

TINY = {"train_pairs": 64, "test_pairs": 256, "hidden_size": 4, "epochs": 2, "batch_size": 32,
        "long_pairs": 50}
METRICS = ("test_accuracy", "bit_accuracy", "accuracy_16bit", "accuracy_32bit", "final_loss",
           "carry_unit", "carry_correlation")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))



def test_run_returns_metrics_figures_and_is_reproducible(tmp_path):
    first = demo.run(out=str(tmp_path / "a"), seed=3, progress=False, settings=TINY)
    assert next(iter(first)) == "demo" and first["demo"] == demo.NAME == "binary-addition"
    for key in ("test_accuracy", "bit_accuracy", "accuracy_16bit", "accuracy_32bit"):
        assert isinstance(first[key], float) and 0 <= first[key] <= 1, key
    assert first["test_pairs"] == 256 and first["train_pairs"] == 64
    assert isinstance(first["params"], int) and first["params"] > 0
    assert len(first["figures"]) == 2
    for path in first["figures"]:
        assert path.startswith(str(tmp_path / "a")) and is_png(path), path
    json.loads(json.dumps(first))                      # the JSON line needs no help

    again = demo.run(out=str(tmp_path / "b"), seed=3, progress=False, settings=TINY)
    assert {k: again[k] for k in METRICS} == {k: first[k] for k in METRICS}


def test_data_is_the_sum_bit_by_bit_and_held_out_pairs_are_unseen():
    a, b = np.array([5, 255, 0]), np.array([3, 255, 0])
    x, y = demo.additions(a, b, 8)
    assert x.shape == (9, 3, 2) and y.shape == (9, 3, 1)
    powers = 2 ** np.arange(9)
    assert list(y[..., 0].T @ powers) == [8, 510, 0]
    assert list(x[..., 0].T @ powers) == [5, 255, 0]
    (ta, tb), (ha, hb) = demo.split_pairs(np.random.default_rng(0), demo.configure())
    assert len(ta) == 2048 and len(ha) == 2 ** 16 - 2048
    assert not set(zip(ta.tolist(), tb.tolist())) & set(zip(ha.tolist(), hb.tolist()))


def test_train_variant_gives_the_race_fields():
    r = demo.train_variant("lstm", seed=1, progress=False, settings=TINY)
    for key, kind in COMMON.items():
        assert isinstance(r[key], kind), (key, type(r[key]))
    assert r["metric"] == "test_accuracy" and r["higher_is_better"] is True
    assert len(r["loss"]) == TINY["epochs"]
    assert r == demo.train_variant("lstm", seed=1, progress=False, settings=TINY) | {
        "seconds_per_epoch": r["seconds_per_epoch"]}


def test_unknown_setting_is_named():
    with pytest.raises(ValueError, match="hidden"):
        demo.configure(settings={"hiden_size": 8})


def test_cli_prints_the_json_line_last(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEFAULTS", {**demo.DEFAULTS, **TINY})
    out = io.StringIO()
    rc = main(["demo", "binary-addition", "--out", str(tmp_path), "--no-progress"], out=out)
    assert rc == 0
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["demo"] == "binary-addition" and all(map(os.path.exists, result["figures"]))


def test_runs_as_a_script():
    """``python demos/binary_addition.py`` has no package: the import falls back."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "demos", "binary_addition.py"),
                           "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "carry" in proc.stdout and "--quick" in proc.stdout
