"""The `minigru` command line: variants and gradcheck."""

import io
import subprocess
import sys
from dataclasses import replace

import pytest

import minigru as mg
from minigru.cli import main


def run(*argv):
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_variants_lists_all_fifteen_with_counts():
    rc, text = run("variants", "--input-size", "3", "--hidden-size", "4")
    assert rc == 0
    lines = text.strip().splitlines()
    assert len(lines) == 1 + len(mg.VARIANTS)
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(mg.VARIANTS)
    assert rows["gru"].split()[-1] == str(3 * 4 * (3 + 4 + 1) + 4)  # VARIANTS.md: 3H(I+H+1) + H
    assert "Dey & Salem" in rows["gru2"]


def test_gradcheck_all_passes_and_names_every_tensor():
    rc, text = run("gradcheck", "--variant", "all")
    assert rc == 0, text
    lines = [line.split() for line in text.splitlines()[1:-1]]
    assert {row[0] for row in lines} == set(mg.VARIANTS)
    assert all(row[-1] == "ok" for row in lines)
    assert ("lstm", "dc0") in {(row[0], row[1]) for row in lines}
    assert text.splitlines()[-1].startswith("ok: all")


def test_gradcheck_float32_and_a_list_of_variants():
    rc, text = run("gradcheck", "--variant", "gru,mgu", "--dtype", "float32")
    assert rc == 0, text
    assert {line.split()[0] for line in text.splitlines()[1:-1]} == {"gru", "mgu"}


def test_gradcheck_exits_1_on_a_wrong_gradient(monkeypatch):
    variant = mg.cells.get_variant("rnn")

    def wrong(p, cache, dys, dh):
        dx, dh0, grads = variant.backward(p, cache, dys, dh)
        return dx, dh0 * 0.9, grads

    monkeypatch.setitem(mg.cells.REGISTRY, "rnn", replace(variant, backward=wrong))
    rc, text = run("gradcheck", "--variant", "rnn")
    assert rc == 1
    assert "rnn      dh0" in text and "FAIL" in text
    assert text.splitlines()[-1].startswith("FAILED: 1 of 5 tensors")


def test_unknown_variant_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["gradcheck", "--variant", "gru9"])
    assert e.value.code == 2
    assert "unknown variant 'gru9'" in capsys.readouterr().err


def test_python_dash_m_runs():
    r = subprocess.run([sys.executable, "-m", "minigru", "variants"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "mingru" in r.stdout
