"""demos/adding.py: the data, a tiny run, reproducibility, the race protocol and the CLI."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minigru.cli import main
from minigru.demos import adding
from demo_helpers import COMMON, is_png

ROOT = Path(__file__).resolve().parent.parent
TINY = {"lengths": [6, 8], "steps": 4, "variants": ["rnn", "mingru"], "hidden": 4, "batch": 5,
        "eval_every": 2, "test_size": 20}



def metrics(result):
    """The result without what depends on the clock or the folder."""
    return {T: {v: {k: x for k, x in r.items() if k != "seconds_per_epoch"}
                for v, r in per_T.items()} for T, per_T in result["results"].items()}


def test_make_adding_marks_one_value_in_each_half():
    x, y = adding.make_adding(200, 10, np.random.default_rng(0))
    assert x.shape == (10, 200, 2) and y.shape == (200, 1) and x.dtype == np.float32
    marks = x[:, :, 1]
    assert (marks.sum(axis=0) == 2).all()
    assert (marks[:5].sum(axis=0) == 1).all() and (marks[5:].sum(axis=0) == 1).all()
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * marks).sum(axis=0), rtol=1e-6)
    assert ((0 <= x[:, :, 0]) & (x[:, :, 0] < 1)).all()


def test_run_tiny(tmp_path):
    r = adding.run(out=str(tmp_path), settings=TINY, progress=False)
    assert next(iter(r)) == "demo" and r["demo"] == "adding"
    assert r["baseline"] == pytest.approx(1 / 6)
    assert set(r["results"]) == {"T=6", "T=8"}
    for per_T in r["results"].values():
        assert set(per_T) == {"rnn", "mingru"}
        for res in per_T.values():
            assert isinstance(res["test_mse"], float) and res["test_mse"] > 0
            assert isinstance(res["beats_baseline"], bool)
            assert res["steps_to_threshold"] is None or res["steps_to_threshold"] % 2 == 0
            assert isinstance(res["params"], int)
    assert r["results"]["T=6"]["mingru"]["params"] == 2 * 4 * (2 + 1) + 4 + 1  # 2H(I+1) + head
    assert len(r["figures"]) == 1 and all(is_png(f) for f in r["figures"])
    json.dumps(r)


def test_same_seed_same_metrics(tmp_path):
    settings = {**TINY, "lengths": [6], "variants": ["gru"]}
    a = adding.run(out=str(tmp_path), seed=3, settings=settings, progress=False)
    b = adding.run(out=str(tmp_path), seed=3, settings=settings, progress=False)
    c = adding.run(out=str(tmp_path), seed=4, settings=settings, progress=False)
    assert metrics(a) == metrics(b)
    assert metrics(a) != metrics(c)


def test_train_variant_has_the_common_fields():
    r = adding.train_variant("lstm", seed=1, settings={**TINY, "lengths": [5]})
    for key, kind in COMMON.items():
        assert isinstance(r[key], kind), key
    assert r["metric"] == "test_mse" and r["higher_is_better"] is False
    assert len(r["loss"]) == 2 and r["T"] == 5


def test_unknown_setting_is_an_error():
    with pytest.raises(ValueError, match="unknown setting"):
        adding.config(settings={"epochs": 3})


def test_race_command_on_a_tiny_quick_setting(tmp_path, monkeypatch):
    monkeypatch.setattr(adding, "QUICK", {**adding.QUICK, **TINY, "lengths": [6]})
    out = io.StringIO()
    rc = main(["race", "--task", "adding", "--variants", "rnn,gru", "--out", str(tmp_path),
               "--quick", "--no-progress"], out=out)
    assert rc == 0
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["race"] == "adding" and result["metric"] == "test_mse"
    assert set(result["models"]) == {"rnn", "gru"}
    assert all(is_png(f) for f in result["figures"])


def test_runs_as_a_script():
    r = subprocess.run([sys.executable, str(ROOT / "demos" / "adding.py"), "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "adding problem" in r.stdout
