"""demos/gradient_flow.py: dL/dh_t is exact, a tiny run, reproducibility."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigru as mg
from minigru.demos import adding, gradient_flow
from demo_helpers import is_png

ROOT = Path(__file__).resolve().parent.parent
TINY = {"T": 6, "steps": 2, "variants": ["rnn", "lstm"], "probe": 5, "hidden": 4, "batch": 4,
        "eval_every": 1, "test_size": 8}



@pytest.mark.parametrize("variant", ["rnn", "gru", "lstm"])
def test_state_gradients_are_those_of_bptt(variant):
    """dh[0] is the layer's dstate0 after one backward; dh[t] the dstate0 over x[t:] from h_t."""
    T, B, H = 7, 3, 5
    x, y = adding.make_adding(B, T, np.random.default_rng(0), dtype=np.float64)
    model = adding.build(variant, H, seed=1, dtype=np.float64)
    dh, dc = gradient_flow.state_gradients(model, x, y)
    assert dh.shape == (T + 1, B, H) and (dc is not None) == (variant == "lstm")

    ys, _ = model.rnn.forward(x)
    dpred = 2 * (model.head.forward(ys[-1]) - y)          # per-sequence squared error
    dys = np.zeros_like(ys)
    dys[-1] = model.head.backward(dpred)
    model.rnn.backward(dys)
    d0 = model.rnn.dstate0
    np.testing.assert_allclose(dh[0], (d0[0] if variant == "lstm" else d0)[0], rtol=1e-10,
                               atol=1e-14)

    t = 3                                                 # the suffix method, from state h_t
    cell, p = mg.cell(variant), gradient_flow.layer_params(model.rnn)
    _, state_t, _ = cell.forward(p, x[:t])
    ys_s, _, cache = cell.forward(p, x[t:], state_t)
    dys_s = np.zeros_like(ys_s)
    dys_s[-1] = dpred @ model.head.params["W"].T
    _, dstate0, _ = cell.backward(p, cache, dys_s)
    np.testing.assert_allclose(dh[t], dstate0[0] if variant == "lstm" else dstate0,
                               rtol=1e-10, atol=1e-14)


def test_run_tiny(tmp_path):
    r = gradient_flow.run(out=str(tmp_path), settings=TINY, progress=False)
    assert next(iter(r)) == "demo" and r["demo"] == "gradient-flow"
    assert r["T"] == 6 and set(r["variants"]) == {"rnn", "lstm"}
    for v, res in r["variants"].items():
        for key in ("ratio_init", "ratio_trained", "test_mse"):
            assert isinstance(res[key], float) and res[key] > 0, (v, key)
    assert "ratio_c_init" in r["variants"]["lstm"] and "ratio_c_init" not in r["variants"]["rnn"]
    assert len(r["figures"]) == 1 and all(is_png(f) for f in r["figures"])
    json.dumps(r)


def test_same_seed_same_metrics(tmp_path):
    settings = {**TINY, "variants": ["gru"]}
    a = gradient_flow.run(out=str(tmp_path), seed=2, settings=settings, progress=False)
    b = gradient_flow.run(out=str(tmp_path), seed=2, settings=settings, progress=False)
    assert a["variants"] == b["variants"]


def test_unknown_setting_is_an_error():
    with pytest.raises(ValueError, match="unknown setting"):
        gradient_flow.config(settings={"lengths": [3]})


def test_runs_as_a_script():
    r = subprocess.run([sys.executable, str(ROOT / "demos" / "gradient_flow.py"), "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "vanishing gradient" in r.stdout
