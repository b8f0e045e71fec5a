"""demos/noise_race.py: a tiny run, reproducibility and the race protocol."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minigru.demos import noise_race
from demo_helpers import COMMON, is_png

ROOT = Path(__file__).resolve().parent.parent
TINY = {"samples": 8, "timesteps": 3, "features": 4, "hidden": 5, "epochs": 2, "batch": 4,
        "heldout": 6, "variants": ["gru_v3", "gru3"]}



def test_make_noise_is_independent_uniform_float32():
    cfg = noise_race.config(settings={"timesteps": 3, "features": 4})
    x, y = noise_race.make_noise(50, cfg, np.random.default_rng(0))
    assert x.shape == (3, 50, 4) and y.shape == (50, 4)
    assert x.dtype == y.dtype == np.float32
    assert 0 <= x.min() and x.max() < 1 and 0 <= y.min() and y.max() < 1


def test_run_tiny(tmp_path):
    r = noise_race.run(out=str(tmp_path), settings=TINY, progress=False)
    assert next(iter(r)) == "demo" and r["demo"] == "noise-race"
    assert r["baseline"] == pytest.approx(1 / 12)
    assert set(r["models"]) == {"gru_v3", "gru3"}
    H, I = 5, 4
    assert r["models"]["gru_v3"]["rnn_params"] == 3 * H * (I + H + 1)       # VARIANTS.md
    assert r["models"]["gru3"]["params"] == H * I + H * H + 3 * H + H * I + I
    for m in r["models"].values():
        for key in ("train_loss", "heldout_mse", "seconds_per_epoch"):
            assert isinstance(m[key], float) and m[key] >= 0
        assert isinstance(m["memorised"], bool)
    assert r["models"]["gru_v3"]["repo_name"] == "GRU0"
    assert len(r["figures"]) == 1 and all(is_png(f) for f in r["figures"])
    json.dumps(r)


def test_same_seed_same_metrics():
    settings = {**TINY, "epochs": 1}
    a = noise_race.train_variant("gru", seed=5, settings=settings)
    b = noise_race.train_variant("gru", seed=5, settings=settings)
    c = noise_race.train_variant("gru", seed=6, settings=settings)
    assert (a["loss"], a["heldout"]) == (b["loss"], b["heldout"])
    assert a["loss"] != c["loss"]


def test_train_variant_has_the_common_fields():
    r = noise_race.train_variant("gru1", settings=TINY)
    for key, kind in COMMON.items():
        assert isinstance(r[key], kind), key
    assert r["metric"] == "heldout_mse" and r["higher_is_better"] is False
    assert len(r["loss"]) == len(r["heldout"]) == 2 and r["value"] == r["heldout"][-1]


def test_unknown_setting_is_an_error():
    with pytest.raises(ValueError, match="unknown setting"):
        noise_race.config(settings={"steps": 3})


def test_runs_as_a_script():
    r = subprocess.run([sys.executable, str(ROOT / "demos" / "noise_race.py"), "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Dey & Salem" in r.stdout
