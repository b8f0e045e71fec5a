"""The digits demo, tiny: its result, figures, reproducibility, race and command line."""

import io
import json
import os
import subprocess
import sys

import pytest

from minigru.cli import main
from minigru.demos import digits as demo   # imports without scikit-learn; its data needs it
from demo_helpers import COMMON, is_png

TINY = {"hidden_size": 8, "epochs": 2, "train_images": 128}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def sklearn():
    return pytest.importorskip("sklearn", reason='the digits demo needs scikit-learn: '
                                                 'pip install "minigru[demos]"')



def test_run_returns_metrics_figures_and_is_reproducible(tmp_path, sklearn):
    first = demo.run(out=str(tmp_path / "a"), seed=4, progress=False, settings=TINY)
    assert next(iter(first)) == "demo" and first["demo"] == demo.NAME == "digits"
    assert isinstance(first["test_accuracy"], float) and 0 <= first["test_accuracy"] <= 1
    assert first["train_images"] == 128 and first["test_images"] == 450   # 25% of 1,797
    assert isinstance(first["params"], int) and first["params"] > 0
    assert len(first["figures"]) == 3
    for path in first["figures"]:
        assert path.startswith(str(tmp_path / "a")) and is_png(path), path
    json.loads(json.dumps(first))

    again = demo.run(out=str(tmp_path / "b"), seed=4, progress=False, settings=TINY)
    for key in ("test_accuracy", "final_loss"):
        assert again[key] == first[key], key


def test_the_split_is_stratified_and_seeded(sklearn):
    x, y, tx, ty = demo.load(0, 0.25)
    assert x.shape == (8, 1347, 8) and tx.shape == (8, 450, 8)   # (T, N, I): rows as steps
    assert 0 <= x.min() and x.max() <= 1
    assert all(abs((ty == d).mean() - (y == d).mean()) < 0.01 for d in range(10))
    assert (demo.load(0, 0.25)[3] == ty).all() and not (demo.load(1, 0.25)[3] == ty).all()


def test_train_variant_gives_the_race_fields(sklearn):
    r = demo.train_variant("rnn", seed=1, progress=False, settings=TINY)
    for key, kind in COMMON.items():
        assert isinstance(r[key], kind), (key, type(r[key]))
    assert r["metric"] == "test_accuracy" and r["higher_is_better"] is True
    assert len(r["loss"]) == TINY["epochs"]


def test_missing_scikit_learn_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)             # import fails, installed or not
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r'pip install "minigru\[demos\]"'):
        demo.load(0, 0.25)


def test_cli_prints_the_json_line_last(tmp_path, monkeypatch, sklearn):
    monkeypatch.setattr(demo, "DEFAULTS", {**demo.DEFAULTS, **TINY})
    out = io.StringIO()
    rc = main(["demo", "digits", "--out", str(tmp_path), "--no-progress"], out=out)
    assert rc == 0
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["demo"] == "digits" and all(map(os.path.exists, result["figures"]))


def test_runs_as_a_script():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "demos", "digits.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "scikit-learn" in proc.stdout and "--quick" in proc.stdout
