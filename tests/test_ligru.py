"""ligru's batch normalisation: the running statistics, the two modes, and their edge cases.

The gradients of both modes are covered by test_gradcheck.py and test_torch_parity.py; these
tests check what those cannot see: the buffers and how evaluation mode uses them.
"""

import numpy as np
import pytest

import minigru as mg

I, H = 3, 4


def _setup(dtype=np.float64, seed=0, **options):
    rng = np.random.default_rng(seed)
    cell = mg.cell("ligru", **options)
    p = cell.init(I, H, rng=rng, dtype=dtype)
    p = {k: (v + rng.normal(0.0, 0.3, v.shape)).astype(dtype) for k, v in p.items()}
    return cell, p, rng


def _batch(rng, T=5, B=2, dtype=np.float64, mean=0.0, std=1.0):
    return (mean + std * rng.normal(size=(T, B, I))).astype(dtype)


def _batch_stats(p, x):
    """Mean and biased variance of x W over all T·B rows, per feature."""
    v = (x @ p["W"]).reshape(-1, 2 * H)
    return v.mean(axis=0), v.var(axis=0)


def test_init_and_buffers():
    cell, _, _ = _setup()
    p = cell.init(I, H, rng=np.random.default_rng(1))
    assert list(p) == ["W", "U", "gamma", "beta"]
    assert cell.num_params(I, H) == 2 * H * (I + H) + 4 * H
    k = 1 / np.sqrt(H)
    assert np.all(np.abs(p["W"]) <= k) and np.all(np.abs(p["U"]) <= k)
    np.testing.assert_array_equal(p["gamma"], np.ones(2 * H))
    np.testing.assert_array_equal(p["beta"], np.zeros(2 * H))
    assert set(cell.buffers) == {"running_mean", "running_var"}
    np.testing.assert_array_equal(cell.buffers["running_mean"], np.zeros(2 * H))
    np.testing.assert_array_equal(cell.buffers["running_var"], np.ones(2 * H))


@pytest.mark.parametrize("momentum", [0.1, 0.3])
def test_running_statistics_match_torch_batchnorm(momentum):
    """After training forwards on shifted, scaled data, the buffers are BatchNorm1d's."""
    torch = pytest.importorskip("torch", reason="torch.nn.BatchNorm1d is the oracle here")
    cell, p, rng = _setup(momentum=momentum)
    bn = torch.nn.BatchNorm1d(2 * H, eps=1e-5, momentum=momentum, dtype=torch.float64)
    bn.train()
    for i, (T, B) in enumerate([(5, 2), (3, 4), (1, 7), (6, 1)]):
        x = _batch(rng, T, B, mean=2.0 + i, std=3.0)
        cell.forward(p, x)
        bn(torch.from_numpy((x @ p["W"]).reshape(T * B, 2 * H)))
    for k in ("running_mean", "running_var"):
        np.testing.assert_allclose(cell.buffers[k], getattr(bn, k).numpy(), rtol=1e-12,
                                   err_msg=f"ligru momentum={momentum} {k}")
    # the data's mean of about 2..5 has moved the buffers well away from their start
    assert np.all(np.abs(cell.buffers["running_mean"]) > 1e-3)


def test_training_updates_the_given_buffers_in_place_and_evaluation_does_not():
    cell, p, rng = _setup()
    x = _batch(rng)
    buffers = {k: v.copy() for k, v in cell.buffers.items()}
    arrays = dict(buffers)
    cell.forward(p, x, training=False, buffers=buffers)
    for k in buffers:
        np.testing.assert_array_equal(buffers[k], cell.buffers[k], err_msg=f"eval changed {k}")
    cell.forward(p, x, training=True, buffers=buffers)
    mean, var = _batch_stats(p, x)
    n = x.shape[0] * x.shape[1]
    np.testing.assert_allclose(buffers["running_mean"], 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(buffers["running_var"], 0.9 + 0.1 * var * n / (n - 1), rtol=1e-12)
    assert all(buffers[k] is arrays[k] for k in buffers), "the buffers were replaced, not updated"
    # the cell's own buffers were not touched: buffers= overrides them
    np.testing.assert_array_equal(cell.buffers["running_mean"], np.zeros(2 * H))


def test_evaluation_uses_the_running_statistics():
    """With the running statistics set to the batch's own (biased) ones, the two modes agree.

    Evaluation then computes the same function of x, but holds the statistics constant: the
    gradients that stop at BN's output (dU, dgamma, dbeta, dh0) agree, while dW and dx, which
    in training also flow through μ and σ², differ.
    """
    cell, p, rng = _setup()
    x = _batch(rng, mean=1.5, std=2.0)
    h0 = rng.normal(size=(2, H))
    mean, var = _batch_stats(p, x)
    ys_t, h_t, cache_t = cell.forward(p, x, h0, training=True, buffers={
        "running_mean": np.zeros(2 * H), "running_var": np.ones(2 * H)})
    stats = {"running_mean": mean, "running_var": var}
    ys_e, h_e, cache_e = cell.forward(p, x, h0, training=False, buffers=stats)
    np.testing.assert_allclose(ys_e, ys_t, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_e, h_t, rtol=1e-12, atol=1e-14)

    dys = rng.normal(size=ys_t.shape)
    dx_t, dh0_t, g_t = cell.backward(p, cache_t, dys)
    dx_e, dh0_e, g_e = cell.backward(p, cache_e, dys)
    np.testing.assert_allclose(dh0_e, dh0_t, rtol=1e-10, atol=1e-13)
    for k in ("U", "gamma", "beta"):
        np.testing.assert_allclose(g_e[k], g_t[k], rtol=1e-10, atol=1e-13, err_msg=f"d{k}")
    assert not np.allclose(g_e["W"], g_t["W"]) and not np.allclose(dx_e, dx_t)

    # and evaluation really reads the statistics it is given
    ys_other, _, _ = cell.forward(p, x, h0, training=False, buffers={
        "running_mean": mean + 1.0, "running_var": var})
    assert not np.allclose(ys_other, ys_e)


def test_training_mode_is_blind_to_a_constant_shift_of_x():
    """The batch mean removes any x + c; the running mean of evaluation mode does not."""
    cell, p, rng = _setup()
    x = _batch(rng)
    c = rng.normal(size=I) * 5
    ys, _, cache = cell.forward(p, x)
    ys_shift, _, _ = cell.forward(p, x + c)
    np.testing.assert_allclose(ys_shift, ys, rtol=1e-10, atol=1e-12)
    # hence the training gradient of x has no component along a shift: it sums to zero
    dx, _, _ = cell.backward(p, cache, rng.normal(size=ys.shape))
    np.testing.assert_allclose(dx.sum(axis=(0, 1)), 0.0, atol=1e-12)
    ys_e, _, _ = cell.forward(p, x, training=False)
    ys_e_shift, _, _ = cell.forward(p, x + c, training=False)
    assert not np.allclose(ys_e_shift, ys_e)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: np.dtype(d).name)
def test_step_is_one_step_of_the_evaluation_forward(dtype):
    cell, p, rng = _setup(dtype)
    cell.forward(p, _batch(rng, dtype=dtype, mean=1.0, std=2.0))   # non-trivial buffers
    x = _batch(rng, T=6, B=3, dtype=dtype)
    h0 = rng.normal(size=(3, H)).astype(dtype)
    ys, h_T, _ = cell.forward(p, x, h0, training=False)
    h = h0
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for t in range(x.shape[0]):
        y, h = cell.step(p, x[t], h)
        assert y.dtype == dtype
        np.testing.assert_allclose(y, ys[t], rtol=tol, atol=tol, err_msg=f"step {t}")
    np.testing.assert_allclose(h, h_T, rtol=tol, atol=tol)


def test_a_single_value_per_feature_cannot_train():
    """T·B == 1 leaves the unbiased variance undefined, as in PyTorch's BatchNorm."""
    cell, p, rng = _setup()
    x = _batch(rng, T=1, B=1)
    with pytest.raises(ValueError, match=r"\(1, 1, 3\)"):
        cell.forward(p, x)
    np.testing.assert_array_equal(cell.buffers["running_var"], np.ones(2 * H))
    ys, _, _ = cell.forward(p, x, training=False)          # evaluation is fine
    y, _ = cell.step(p, x[0])
    np.testing.assert_allclose(y, ys[0], rtol=1e-12)
    cell.forward(p, _batch(rng, T=2, B=1))                  # and so is T·B == 2
    cell.forward(p, _batch(rng, T=1, B=2))


def test_a_cell_never_initialised_makes_its_buffers_from_p():
    """Like a fresh torch BatchNorm: running mean 0 and variance 1 until training updates them."""
    _, p, rng = _setup()
    fresh = mg.cell("ligru")
    x = _batch(rng)
    fresh.forward(p, x, training=False)
    np.testing.assert_array_equal(fresh.buffers["running_mean"], np.zeros(2 * H))
    np.testing.assert_array_equal(fresh.buffers["running_var"], np.ones(2 * H))
    fresh.forward(p, x)                                     # training updates them
    assert not np.array_equal(fresh.buffers["running_mean"], np.zeros(2 * H))


def test_buffers_are_checked():
    cell, p, rng = _setup()
    x = _batch(rng)
    good = {k: v.copy() for k, v in cell.buffers.items()}
    with pytest.raises(ValueError, match=r"buffers must have exactly the keys \['running_mean', "
                                         r"'running_var'\], got \['running_mean'\]"):
        cell.forward(p, x, buffers={"running_mean": good["running_mean"]})
    with pytest.raises(ValueError, match=r"buffers\['running_var'\] must have shape"):
        cell.forward(p, x, buffers=dict(good, running_var=np.ones(2 * H + 1)))
    with pytest.raises(TypeError, match=r"buffers\['running_mean'\] has dtype float32 but the "
                                        r"parameters are float64"):
        cell.step(p, x[0], buffers=dict(good, running_mean=good["running_mean"].astype(np.float32)))


def test_float32_stays_float32():
    cell, p, rng = _setup(np.float32)
    assert all(b.dtype == np.float32 for b in cell.buffers.values())
    x = _batch(rng, dtype=np.float32, mean=3.0)
    for training in (True, False):
        ys, h, cache = cell.forward(p, x, training=training)
        dx, dh0, grads = cell.backward(p, cache, np.ones_like(ys))
        arrays = {"ys": ys, "h": h, "dx": dx, "dh0": dh0, **{"d" + k: g for k, g in grads.items()},
                  **{k: v for k, v in cache.items() if isinstance(v, np.ndarray)}}
        wrong = {k: a.dtype for k, a in arrays.items() if a.dtype != np.float32}
        assert not wrong, f"ligru float32 training={training}: upcast {wrong}"
    assert all(b.dtype == np.float32 for b in cell.buffers.values()), \
        f"buffers became {[b.dtype for b in cell.buffers.values()]}"
    assert not np.allclose(cell.buffers["running_mean"], 0.0)
