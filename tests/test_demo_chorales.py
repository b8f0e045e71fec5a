"""The chorales demo, tiny: the shipped data, the batches and their loss (against PyTorch), the
best-validation protocol, the race's JSON, and the conversion script's quantisation."""

import importlib.util
import io
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from minigru import data
from minigru.cli import main
from minigru.demos import chorales as demo
from demo_helpers import COMMON, is_png

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"variants": ["gru", "rru"], "seeds": 2, "jobs": 1, "hidden_size": 4, "epochs": 2,
        "batch_size": 64, "prime": 8, "generate": 8}


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is the test-time oracle: pip install torch")


def test_the_shipped_chorales():
    c = data.chorales()
    assert [len(c[s]) for s in data.SPLITS] == [209, 70, 69]
    names = [n for s in data.SPLITS for n in c["names"][s]]
    assert len(set(names)) == 348 and "bwv269" in names            # each piece in one split
    rolls = [r for s in data.SPLITS for r in c[s]]
    assert all(r.dtype == bool and r.ndim == 2 and r.shape[1] == 88 for r in rolls)
    steps = np.concatenate(rolls)
    assert len(steps) == 37911 and 3.7 < steps.sum(1).mean() < 4.0   # four voices, some rests
    keys = np.flatnonzero(steps.any(0)) + c["lowest_midi"]
    assert keys.min() >= 36 and keys.max() <= 84                    # C2 .. C6: voices, not piano
    assert c["step_quarters"] == 0.5 and c["lowest_midi"] == 21


def test_pairs_predict_every_frame_from_the_ones_before():
    roll = np.zeros((4, 88), bool)
    roll[0, 40], roll[1, 41], roll[2, 42], roll[3, 43] = True, True, True, True
    x, y = demo.pairs(roll)
    assert not x[0].any() and (x[1:] == roll[:-1]).all() and (y == roll).all()
    assert x.dtype == y.dtype == np.float32


def test_batches_pad_at_the_end_and_mask_the_padding():
    rolls = [np.ones((n, 88), bool) for n in (5, 3, 9, 4)]
    out = demo.batches(rolls, 2)
    assert [x.shape[:2] for x, _, _ in out] == [(4, 2), (9, 2)]     # by length: 3, 4 | 5, 9
    x, y, mask = out[0]
    assert mask[:, 0].sum() == 3 and mask[:, 1].sum() == 4 and not y[3:, 0].any()
    assert sum(m.sum() for _, _, m in out) == 21


def test_nll_is_the_summed_bce_of_the_real_steps():
    torch = _torch()
    rolls = data.chorales()["valid"][:3]
    model = demo.build("gru", 6, backend="numpy", seed=0)
    (x, y, mask), = demo.batches(rolls, 3)
    loss, n, dlogits = demo.nll(model, x, y, mask)
    ys, _ = model.rnn.forward(x)
    logits = torch.from_numpy(model.head.forward(ys).astype(np.float64))
    m = torch.from_numpy(mask)
    want = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[m], torch.from_numpy(y.astype(np.float64))[m], reduction="sum").item()
    assert loss == pytest.approx(want, rel=1e-5) and n == sum(len(r) for r in rolls)
    assert not dlogits[~mask].any()
    # padding changes nothing: each chorale alone gives the same sum
    alone = sum(demo.nll(model, *demo.batches([r], 1)[0])[0] for r in rolls)
    assert alone == pytest.approx(loss, rel=1e-5)


def test_train_variant_keeps_the_best_validation_epoch():
    r = demo.train_variant("gru", backend="numpy", seed=1, settings={**TINY, "epochs": 3})
    for key, kind in COMMON.items():
        assert isinstance(r[key], kind), key
    assert r["metric"] == "test_nll" and r["higher_is_better"] is False
    best = int(np.argmin(r["valid"]))
    assert r["best_epoch"] == best + 1 and r["valid_nll"] == r["valid"][best]
    assert r["value"] == r["test"][best]
    assert 0 < r["value"] < 88 * np.log(2) + 1                     # below knowing nothing, 61


def test_run_races_the_variants(tmp_path):
    r = demo.run(out=str(tmp_path), backend="numpy", progress=False, settings=TINY)
    assert next(iter(r)) == "demo" and r["demo"] == "chorales"
    assert set(r["models"]) == {"gru", "rru"} and r["best"] in r["models"]
    for v, m in r["models"].items():
        assert isinstance(m["test_nll"], float) and len(m["test_nll_values"]) == 2, v
        assert m["test_nll"] == pytest.approx(np.mean(m["test_nll_values"]))
        assert m["test_nll_std"] == pytest.approx(np.std(m["test_nll_values"], ddof=1))
        assert m["seeds"] == [0, 1]
    assert len(r["figures"]) == 2 and all(is_png(f) for f in r["figures"])
    json.loads(json.dumps(r))


def test_continuation_starts_with_the_prime():
    model = demo.build("gru", 5, backend="numpy", seed=0)
    roll = data.chorales()["test"][0]
    written, probs = demo.continue_chorale(model, roll, 10, 6, np.random.default_rng(0))
    assert written.shape == (16, 88) and (written[:10] == roll[:10]).all()
    assert probs.shape == roll.shape and ((0 < probs) & (probs < 1)).all()


def test_cli_prints_the_models_last(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEFAULTS", {**demo.DEFAULTS, **TINY, "seeds": 1})
    out = io.StringIO()
    rc = main(["demo", "chorales", "--backend", "numpy", "--out", str(tmp_path),
               "--no-progress"], out=out)
    assert rc == 0
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert set(result["models"]) == {"gru", "rru"}
    assert all("test_nll" in m for m in result["models"].values())


def _make_chorales():
    spec = importlib.util.spec_from_file_location(
        "make_chorales", os.path.join(ROOT, "tools", "make_chorales.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)                 # imports music21 only when converting
    return module


def _note(offset, length, *midi):
    return SimpleNamespace(offset=offset, quarterLength=length,
                           pitches=[SimpleNamespace(midi=m) for m in midi])


def _part(*notes):
    return SimpleNamespace(highestTime=max(n.offset + n.quarterLength for n in notes),
                           flatten=lambda: SimpleNamespace(notes=list(notes)))


def test_conversion_samples_the_sounding_keys_every_eighth():
    make = _make_chorales()
    roll = make.piano_roll([_part(_note(0, 1.0, 60), _note(1.0, 0.25, 62), _note(1.25, 0.75, 64)),
                            _part(_note(0.75, 1.25, 48, 52))])
    assert roll.shape == (4, 88)                                    # 2 quarter notes = 4 steps
    on = {t: sorted(np.flatnonzero(roll[t]) + 21) for t in range(4)}
    # the sixteenth at 1.0 sounds at step 2 (time 1.0); the note from 1.25 at step 3 (1.5);
    # the chord from 0.75 at steps 2 and 3 (times 1.0 and 1.5), not at step 1 (0.5)
    assert on == {0: [60], 1: [60], 2: [48, 52, 62], 3: [48, 52, 64]}
    split = make.split_by_piece(10)
    assert np.bincount(split).tolist() == [6, 2, 2]
    assert make.four_voices(SimpleNamespace(parts=[SimpleNamespace(partName=n, id=n) for n in
                            ("Horn", "Soprano", "Alto", "Tenor", "Bass")]))[0].partName == \
        "Soprano"


def test_runs_as_a_script():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "demos", "chorales.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Bach" in proc.stdout and "--quick" in proc.stdout
