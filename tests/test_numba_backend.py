"""backend="numba" against the NumPy reference, for every variant it has, in both dtypes.

API.md: results agree with "numpy" to 1e-10 (float64) and 1e-4 relative (float32); here
"relative" is to each tensor's largest magnitude, as in gradcheck. Shapes are kept small and few
so that the suite compiles each kernel once per dtype.
"""

import numpy as np
import pytest

import minigru as mg
from minigru.gradcheck import random_problem
from minigru.numba import FUNCTIONS

NUMBA_VARIANTS = [v for v in mg.VARIANTS if v in FUNCTIONS]
TOL = {np.float64: 1e-10, np.float32: 1e-4}


def _close(label, ours, ref, dtype):
    assert ours.dtype == dtype, f"{label}: dtype {ours.dtype}"
    scale = max(np.max(np.abs(ref)), 1e-30)
    err = np.max(np.abs(ours.astype(np.float64) - ref)) / scale
    assert err <= TOL[dtype], f"{label}: relative error {err:.2e} > {TOL[dtype]:.0e}"


def _tuple(s):
    return s if isinstance(s, tuple) else (s,)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("variant", NUMBA_VARIANTS)
def test_numba_equals_numpy(variant, dtype):
    ref, p, x, state0, R, S = random_problem(variant, input_size=5, hidden_size=6, steps=7,
                                             batch=3, seed=1)
    cast = (lambda a: tuple(map(cast, a)) if isinstance(a, tuple) else a.astype(dtype))
    p, x, state0, R, S = ({k: cast(v) for k, v in p.items()}, cast(x), cast(state0), cast(R),
                          cast(S))
    ours = mg.cell(variant, backend="numba")
    if ref.buffers is not None:                       # ligru: the same running statistics
        ref.buffers = {k: cast(v) for k, v in ref.buffers.items()}
        ours.buffers = {k: v.copy() for k, v in ref.buffers.items()}
    ys_r, s_r, cache_r = ref.forward(p, x, state0)
    ys_n, s_n, cache_n = ours.forward(p, x, state0)
    label = f"{variant} numba {np.dtype(dtype).name}"
    _close(f"{label} ys", ys_n, ys_r, dtype)
    for i, (a, b) in enumerate(zip(_tuple(s_n), _tuple(s_r))):
        _close(f"{label} final state[{i}]", a, b, dtype)
    dx_r, ds_r, g_r = ref.backward(p, cache_r, R, S)
    dx_n, ds_n, g_n = ours.backward(p, cache_n, R, S)
    _close(f"{label} dx", dx_n, dx_r, dtype)
    for i, (a, b) in enumerate(zip(_tuple(ds_n), _tuple(ds_r))):
        _close(f"{label} dstate0[{i}]", a, b, dtype)
    for k in p:
        _close(f"{label} d{k}", g_n[k], g_r[k], dtype)
    y_r, st_r = ref.step(p, x[0], state0)
    y_n, st_n = ours.step(p, x[0], state0)
    _close(f"{label} step y", y_n, y_r, dtype)
    for i, (a, b) in enumerate(zip(_tuple(st_n), _tuple(st_r))):
        _close(f"{label} step state[{i}]", a, b, dtype)


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
