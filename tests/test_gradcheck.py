"""Every gradient of every variant against centred finite differences in float64."""

from dataclasses import replace

import numpy as np
import pytest

import minigru as mg

DTYPES = [np.float64, np.float32]


def _assert_all_ok(checks, label):
    bad = [f"{label} {c.tensor}: max relative error {c.error:.2e} > {c.tolerance:.0e}"
           for c in checks if not c.ok]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_gradcheck(variant, dtype):
    checks = mg.gradcheck(variant, dtype=dtype)
    names = {c.tensor for c in checks}
    p = mg.cell(variant).init(3, 4, rng=np.random.default_rng(0))
    states = {"lstm": {"dh0", "dc0"}, "slstm": {"dh0", "dc0", "dn0", "dm0"}, "sru": {"dc0"}}
    assert names == {"d" + k for k in p} | {"dx"} | states.get(variant, {"dh0"})
    _assert_all_ok(checks, f"{variant} {np.dtype(dtype).name}")


@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_gradcheck_evaluation_mode(variant):
    """Evaluation mode differentiates too (ligru through its running statistics)."""
    _assert_all_ok(mg.gradcheck(variant, training=False, seed=1), f"{variant} eval")


def test_gradcheck_catches_a_wrong_gradient(monkeypatch):
    """The check can fail: a backward with one gradient off by 1% is reported, the rest pass."""
    variant = mg.cells.get_variant("gru")

    def wrong(p, cache, dys, dh):
        dx, dh0, grads = variant.backward(p, cache, dys, dh)
        grads["U"] = grads["U"] * 1.01
        return dx, dh0, grads

    monkeypatch.setitem(mg.cells.REGISTRY, "gru", replace(variant, backward=wrong))
    checks = {c.tensor: c for c in mg.gradcheck("gru")}
    assert not checks["dU"].ok and checks["dU"].error > 1e-3
    assert all(c.ok for name, c in checks.items() if name != "dU")
