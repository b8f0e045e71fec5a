"""The char-lm demo, tiny: on a user's text and on the shipped one, its result, reproducibility,
the hidden-unit probe, and the command line."""

import io
import json
import math
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from minigru.cli import main
from minigru.demos import char_lm as demo
from demo_helpers import is_png

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"hidden_size": 8, "batch_size": 4, "bptt": 8, "steps": 6, "eval_every": 3,
        "sample_chars": 25, "held_out": 0.1, "prime": "the "}


@pytest.fixture
def text_file(tmp_path):
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "(and", "then)", "ran", "home"]
    lines = [f"{i} " + " ".join(rng.choice(words, 9)) for i in range(400)]
    path = tmp_path / "mine.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_run_on_a_users_text(tmp_path, text_file):
    r = demo.run(out=str(tmp_path / "a"), seed=1, progress=False, settings=TINY, text=text_file,
                 backend="numpy")
    assert next(iter(r)) == "demo" and r["demo"] == "char-lm" and r["text"] == "mine.txt"
    text = open(text_file, encoding="utf-8").read()
    counts = np.array(list(Counter(text).values())) / len(text)
    assert r["unigram_bits"] == pytest.approx(-(counts * np.log2(counts)).sum(), rel=1e-12)
    assert isinstance(r["bits_per_char"], float) and 0 < r["bits_per_char"] < 10
    assert r["perplexity"] == pytest.approx(2 ** r["bits_per_char"])
    assert len(r["held_out_bits"]) == 2 and r["held_out_bits"][-1] == r["bits_per_char"]
    assert set(r["samples"]) == {"0.2", "0.5", "1.0"}
    assert all(len(s) == 25 for s in r["samples"].values())
    assert 0 <= r["unit"]["unit"] < 8 and -1 <= r["unit"]["correlation"] <= 1
    assert r["unit"]["tracks"] in demo.visible_signals("x")
    assert len(r["figures"]) == 2 and all(is_png(f) for f in r["figures"])
    json.loads(json.dumps(r))

    again = demo.run(out=str(tmp_path / "b"), seed=1, progress=False, settings=TINY,
                     text=text_file, backend="numpy")
    assert again["bits_per_char"] == r["bits_per_char"] and again["samples"] == r["samples"]


def test_the_shipped_text():
    text, source = demo.load_text()
    assert text.startswith("Genesis 1\n\n1 In the beginning God created the heaven and the earth.")
    assert len(text) == 935_680 and "King James" in source
    assert max(len(line) for line in text.splitlines()) <= 72


def test_visible_signals_by_hand():
    s = demo.visible_signals("12 ab (c)\nd")
    assert s["position in the line"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    assert s["inside a word"].tolist() == [0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1]
    assert s["inside parentheses"].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0]
    assert s["in a verse number"].tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]


def test_best_unit_finds_the_unit_that_follows_a_signal():
    text = "ab cd (ef)\n" * 30
    column = demo.visible_signals(text)["position in the line"]
    hs = np.random.default_rng(0).normal(size=(len(text), 5))
    hs[:, 3] = -0.1 * column + 0.01 * hs[:, 3]
    unit, signal, r = demo.best_unit(hs, demo.visible_signals(text))
    assert (unit, signal) == (3, "position in the line") and r < -0.99


def test_too_short_or_missing_text_is_an_error(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("abc" * 100)
    with pytest.raises(ValueError, match="too short"):
        demo.run(out=str(tmp_path), settings=TINY, text=str(short), progress=False)
    with pytest.raises(ValueError, match="no such file"):
        demo.load_text(str(tmp_path / "nope.txt"))
    with pytest.raises(ValueError, match="unknown setting"):
        demo.configure(settings={"hidden": 3})


def test_cli_prints_the_json_line_last(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEFAULTS", {**demo.DEFAULTS, **TINY, "held_out": 0.02})
    out = io.StringIO()
    rc = main(["demo", "char-lm", "--backend", "numpy", "--out", str(tmp_path),
               "--no-progress"], out=out)
    assert rc == 0
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["demo"] == "char-lm" and {"bits_per_char", "unigram_bits"} <= set(result)
    assert result["unigram_bits"] == pytest.approx(4.4504, abs=1e-4)     # the KJV's
    assert all(map(os.path.exists, result["figures"]))


def test_script_takes_text(tmp_path, text_file, monkeypatch, capsys):
    monkeypatch.setattr(demo, "DEFAULTS", {**demo.DEFAULTS, **TINY})
    assert demo.main(["--text", text_file, "--backend", "numpy", "--out", str(tmp_path),
                      "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["text"] == "mine.txt" and math.isfinite(result["bits_per_char"])


def test_minigru_demo_takes_text(tmp_path, text_file, monkeypatch, capsys):
    monkeypatch.setattr(demo, "DEFAULTS", {**demo.DEFAULTS, **TINY})
    out = io.StringIO()
    assert main(["demo", "char-lm", "--text", text_file, "--backend", "numpy", "--out",
                 str(tmp_path), "--no-progress"], out=out) == 0
    assert json.loads(out.getvalue().strip().splitlines()[-1])["text"] == "mine.txt"
    assert main(["demo", "sine", "--text", text_file, "--out", str(tmp_path)]) == 2
    assert "--text is an option of the char-lm demo; sine has no text" in capsys.readouterr().err


def test_runs_as_a_script():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "demos", "char_lm.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--text" in proc.stdout and "bits per character" in proc.stdout
