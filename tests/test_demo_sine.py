"""The sine demo, tiny: its result, figures, reproducibility, race, streaming and command line."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import minigru as mg
from minigru.cli import main
from minigru.demos import sine as demo
from demo_helpers import COMMON, is_png

TINY = {"train_waves": 16, "test_waves": 8, "steps": 12, "warmup": 2, "hidden_size": 4,
        "epochs": 2, "batch_size": 8, "prefix": 5, "generate": 6}
PER_MODEL = ("relative_mse", "relative_mse_noisy", "noise_floor", "free_run_relative_mse",
             "final_loss")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))



def test_run_returns_both_models_figures_and_is_reproducible(tmp_path):
    first = demo.run(out=str(tmp_path / "a"), seed=2, progress=False, settings=TINY)
    assert next(iter(first)) == "demo" and first["demo"] == demo.NAME == "sine"
    assert set(first["models"]) == {"gru", "lstm"}
    for name, m in first["models"].items():
        for key in PER_MODEL:
            assert isinstance(m[key], float) and m[key] >= 0, (name, key)
        assert isinstance(m["params"], int) and m["params"] > 0
    assert first["relative_mse"] == max(m["relative_mse"] for m in first["models"].values())
    assert first["relative_mse_target"] == "clean wave"
    assert len(first["figures"]) == 2
    for path in first["figures"]:
        assert path.startswith(str(tmp_path / "a")) and is_png(path), path
    json.loads(json.dumps(first))

    again = demo.run(out=str(tmp_path / "b"), seed=2, progress=False, settings=TINY)
    for name in ("gru", "lstm"):
        assert ({k: again["models"][name][k] for k in PER_MODEL}
                == {k: first["models"][name][k] for k in PER_MODEL}), name


@pytest.mark.parametrize("variant", ["gru", "lstm"])
def test_free_run_over_the_prefix_is_the_one_step_prediction(variant):
    """rnn.step with the state carried gives what one forward over the prefix gives."""
    rng = np.random.default_rng(0)
    model = mg.Model(rnn=mg.RNN(variant, 1, 5, seed=0), head=mg.Linear(5, 1, seed=1)).eval()
    noisy, _ = demo.waves(rng, 3, 9, 0.05)
    out = demo.free_run(model, noisy, generate=4)
    assert out.shape == (9 + 4 - 1, 3, 1)
    np.testing.assert_allclose(out[:8], demo.predict_next(model, noisy[:8]), rtol=1e-5,
                               atol=1e-6, err_msg=variant)


def test_train_variant_gives_the_race_fields():
    r = demo.train_variant("mgu", seed=1, progress=False, settings=TINY)
    for key, kind in COMMON.items():
        assert isinstance(r[key], kind), (key, type(r[key]))
    assert r["metric"] == "relative_mse" and r["higher_is_better"] is False
    assert len(r["loss"]) == TINY["epochs"]
    again = demo.train_variant("mgu", seed=1, progress=False, settings=TINY)
    assert (again["value"], again["loss"]) == (r["value"], r["loss"])


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="epochs"):
        demo.configure(settings={"epoch": 3})
    with pytest.raises(ValueError, match="warmup"):
        demo.configure(settings={"steps": 10, "warmup": 9})


def test_cli_prints_the_json_line_last(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEFAULTS", {**demo.DEFAULTS, **TINY})
    out = io.StringIO()
    rc = main(["demo", "sine", "--out", str(tmp_path), "--no-progress"], out=out)
    assert rc == 0
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["demo"] == "sine" and all(map(os.path.exists, result["figures"]))


def test_runs_as_a_script():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "demos", "sine.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "relative_mse" in proc.stdout and "--quick" in proc.stdout
