"""backend="numba" against the NumPy reference, for every variant it has, in both dtypes
(the comparison is ``backend_helpers.check_against_reference``, shared with the cuda tests).
Shapes are kept small and few so that the suite compiles each kernel once per dtype.
"""

import numpy as np
import pytest

import minigru as mg
from backend_helpers import check_against_reference
from minigru.numba import FUNCTIONS

NUMBA_VARIANTS = [v for v in mg.VARIANTS if v in FUNCTIONS]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("variant", NUMBA_VARIANTS)
def test_numba_equals_numpy(variant, dtype):
    check_against_reference("numba", variant, dtype)


@pytest.mark.parametrize("variant", NUMBA_VARIANTS)
def test_numba_gradcheck(variant):
    checks = mg.gradcheck(variant, backend="numba")
    bad = [f"{c.tensor} {c.error:.1e}" for c in checks if not c.ok]
    assert not bad, f"{variant} numba: " + ", ".join(bad)


def test_numba_rnn_layer_switches_backend_and_agrees():
    rnn = mg.RNN("gru", 3, 5, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).normal(size=(6, 4, 3))
    ys, _ = rnn.forward(x, lengths=np.array([6, 2, 4, 1]))
    dx = rnn.backward(np.ones_like(ys))
    grads = {k: g.copy() for k, g in rnn.grads.items()}
    rnn.zero_grad()
    rnn.backend = "numba"
    ys2, _ = rnn.forward(x, lengths=np.array([6, 2, 4, 1]))
    dx2 = rnn.backward(np.ones_like(ys2))
    np.testing.assert_allclose(ys2, ys, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx2, dx, rtol=1e-10, atol=1e-13)
    for k in grads:
        np.testing.assert_allclose(rnn.grads[k], grads[k], rtol=1e-10, atol=1e-13, err_msg=k)
