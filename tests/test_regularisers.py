"""Regularisers (input_dropout, recurrent_dropout, zoneout, weight_dropout): exact gradients with
the masks fixed, the forward they promise, their expectations, reproducibility, and errors."""

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

import minigru as mg
from minigru.cells import ONE, Gated, exp, get_variant, log, sigmoid

ALL = {"input_dropout": 0.2, "recurrent_dropout": 0.3, "zoneout": 0.25, "weight_dropout": 0.3}


def applicable(variant, options):
    layout = get_variant(variant).layout
    if layout is None or not layout.recurrent:        # mingru: no product with h
        return {k: v for k, v in options.items()
                if k not in ("recurrent_dropout", "weight_dropout")}
    return dict(options)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_gradients_with_every_regulariser(variant, training):
    checks = mg.gradcheck(variant, "numpy", options=applicable(variant, ALL), training=training)
    assert all(c.ok for c in checks), [(c.tensor, c.error) for c in checks if not c.ok]


@pytest.mark.parametrize("variant,dtype", [(v, np.float64) for v in mg.VARIANTS]
                         + [(v, np.float32) for v in ("gru", "lstm", "mgu", "rru")])
def test_compiled_gradients_with_every_regulariser(variant, dtype):
    checks = mg.gradcheck(variant, "numba", dtype, options=applicable(variant, ALL))
    assert all(c.ok for c in checks), [(c.tensor, c.error) for c in checks if not c.ok]


@pytest.mark.parametrize("key", ["recurrent_dropout", "zoneout"])
@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_compiled_forward_and_backward_equal_the_reference_with_the_same_masks(variant, key):
    """The loops' own regularisers, one at a time, in training and in evaluation."""
    if key not in applicable(variant, {key: 1}):
        pytest.skip(f"{key} does not apply to {variant}")
    p, x, state0 = problem(variant)
    for training in (True, False):
        results = []
        for backend in ("numpy", "numba"):
            cell = mg.cell(variant, backend, **{key: 0.35})
            ys, state, cache = cell.forward(p, x, state0, training,
                                            rng=np.random.default_rng(7))
            dys = np.random.default_rng(8).normal(size=ys.shape)
            results.append((ys, cell.backward(p, cache, dys)))
        (ys0, (dx0, _, g0)), (ys1, (dx1, _, g1)) = results
        np.testing.assert_allclose(ys1, ys0, rtol=0, atol=1e-10)
        np.testing.assert_allclose(dx1, dx0, rtol=0, atol=1e-10)
        for k in g0:
            np.testing.assert_allclose(g1[k], g0[k], rtol=0, atol=1e-10 * np.abs(g0[k]).max())


def forward(variant, options, x, p, state0=None, training=True, seed=0, backend="numpy"):
    cell = mg.cell(variant, backend, **options)
    return cell.forward(p, x, state0, training, rng=np.random.default_rng(seed))


def problem(variant, T=6, B=3, I=4, H=5, seed=1):
    rng = np.random.default_rng(seed)
    p = mg.cell(variant).init(I, H, rng=rng)
    x = rng.normal(size=(T, B, I))
    v = get_variant(variant)
    state0 = tuple(np.abs(rng.normal(size=(B, H))) + 0.5 if k in v.nonnegative_state
                   else rng.normal(size=(B, H)) for k in v.state)     # (slstm's n > 0)
    state0 = state0 if len(state0) > 1 else state0[0]
    return p, x, state0


def test_recurrent_dropout_masks_only_what_the_product_sees():
    """gru and gru_v3 written out with the cache's mask: the products see h ⊙ m, the
    interpolation with z sees h itself."""
    sig = lambda a: 1 / (1 + np.exp(-a))              # noqa: E731
    for variant in ("gru", "gru_v3"):
        p, x, h0 = problem(variant)
        ys, _, cache = forward(variant, {"recurrent_dropout": 0.4}, x, p, h0)
        m = cache["masks"].h
        assert set(np.unique(m)) <= {0.0, 1 / 0.6} and (m == 0).any()
        W, U, b = p["W"], p["U"], p["b"]
        H = h0.shape[1]
        h, expected = h0, []
        for t in range(x.shape[0]):
            a = x[t] @ W + b
            if variant == "gru":
                u = (h * m) @ U
                r, z = sig(a[:, :H] + u[:, :H]), sig(a[:, H:2 * H] + u[:, H:2 * H])
                n = np.tanh(a[:, 2 * H:] + r * (u[:, 2 * H:] + p["c"]))
            else:
                g = (h * m) @ U[:, :2 * H]
                r, z = sig(a[:, :H] + g[:, :H]), sig(a[:, H:2 * H] + g[:, H:])
                n = np.tanh(a[:, 2 * H:] + (r * h * m) @ U[:, 2 * H:])
            h = z * h + (1 - z) * n
            expected.append(h)
        np.testing.assert_allclose(ys, np.array(expected), rtol=0, atol=1e-12)


@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_zoneout_one_keeps_the_state_and_zero_is_the_plain_cell(variant):
    p, x, state0 = problem(variant)
    plain, final, _ = forward(variant, {}, x, p, state0)
    ys, state, _ = forward(variant, {"zoneout": 0.0}, x, p, state0)
    np.testing.assert_array_equal(ys, plain)
    _, kept, _ = forward(variant, {"zoneout": 1.0}, x, p, state0)
    for s, s0 in zip(*(v if isinstance(v, tuple) else (v,) for v in (kept, state0))):
        np.testing.assert_array_equal(s, s0)
    if get_variant(variant).output_is_state:
        ys1, _, _ = forward(variant, {"zoneout": 1.0}, x, p, state0)
        h0 = state0[0] if isinstance(state0, tuple) else state0
        np.testing.assert_array_equal(ys1, np.broadcast_to(h0, ys1.shape))


def test_zoneout_per_component_and_its_masks():
    p, x, state0 = problem("lstm", T=40, B=8, H=16)
    _, _, cache = forward("lstm", {"zoneout": (0.1, 0.6)}, x, p, state0)
    k_h, k_c = cache["masks"].keep
    assert set(np.unique(k_h)) == {0.0, 1.0} and set(np.unique(k_c)) == {0.0, 1.0}
    # per step, row and unit: drawn anew each step; rates to sampling error (4 sigma)
    for k, rate in ((k_h, 0.1), (k_c, 0.6)):
        assert abs(k.mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / k.size)
        assert not all((k[t] == k[0]).all() for t in range(1, k.shape[0]))
    with pytest.raises(ValueError, match="one per state component"):
        mg.cell("gru", zoneout=(0.1, 0.2))


@pytest.mark.parametrize("n", [1, 4, 7, 4099])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_compiled_zoneout_stream_is_its_numpy_text(n, dtype):
    from minigru._bits import bernoulli_fill, bernoulli_reference, threshold
    for seed in (0, 2**64 - 1, 0x0123456789ABCDEF):
        for rate in (0.0, 1 / 65536, 0.1, 0.5, 1.0):
            out = np.full(n, 7, dtype)
            bernoulli_fill(np.uint64(seed), threshold(rate), out)
            np.testing.assert_array_equal(out, bernoulli_reference(seed, threshold(rate), n,
                                                                   dtype))
            if rate in (0.0, 1.0):
                assert (out == rate).all()
    # SplitMix64's first two outputs from seed 0 (its published test values), so the NumPy text
    # is the generator it says it is: entry 4w + l is lane l (bits 16 l to 16 l + 15) of word w
    lanes = [(word >> (16 * lane)) & 0xFFFF
             for word in (0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4) for lane in range(4)]
    for i, lane in enumerate(lanes):
        assert bernoulli_reference(0, lane, 8, np.float64)[i] == 1.0
        assert bernoulli_reference(0, lane + 1, 8, np.float64)[i] == 0.0


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_evaluation_zoneout_in_step_equals_the_forward(backend):
    """Through the checked step and the streaming fast path (the same arrays again)."""
    for variant in ("gru", "lstm", "rru", "mgu"):
        p, x, state0 = problem(variant)
        cell = mg.cell(variant, backend, zoneout=0.3)
        ys, final, _ = cell.forward(p, x, state0, training=False)
        s = state0
        for t in range(x.shape[0]):
            y, s = cell.step(p, x[t], s)
            np.testing.assert_allclose(y, ys[t], rtol=0, atol=1e-12)
        for a, b in zip(*(v if isinstance(v, tuple) else (v,) for v in (s, final))):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


# A linear cell, h' = x W + h U + b: its outputs are linear in x, U and (for one step) h, so the
# mean over many masks of a dropped forward must equal the undropped forward exactly in
# expectation; only sampling error is left.
def _linear_point(ah, uh, h):
    return ah + uh


def _linear_point_backward(dh, h, h_new):
    return dh, dh * (ONE - ONE)


LINEAR = Gated(name="linear_test_cell", paper="(a test)", equations="h'=xW+hU+b",
               x_blocks=("h",), h_blocks=("h",), summed=("h",), point=_linear_point,
               point_backward=_linear_point_backward)
if LINEAR.name not in mg.cells.REGISTRY:
    mg.cells.register(LINEAR)


# A cell whose backward reads the new state it is shown, and is not finite at states outside
# (0, 1): h' = σ(x W + h U + b), σ' written as exp(log h' + log(1 − h')). A point kept by
# zoneout (k = 1) is shown the old state, which the test makes negative.
def _logistic_point(a, u, h):
    return sigmoid(a + u)


def _logistic_point_backward(dh, h, h_new):
    return dh * exp(log(h_new) + log(ONE - h_new)), dh * (ONE - ONE)


LOGISTIC = Gated(name="logistic_test_cell", paper="(a test)", equations="h'=σ(xW+hU+b)",
                 x_blocks=("h",), h_blocks=("h",), summed=("h",), point=_logistic_point,
                 point_backward=_logistic_point_backward)
if LOGISTIC.name not in mg.cells.REGISTRY:
    mg.cells.register(LOGISTIC)


def test_zoneout_differentiates_each_point_at_the_state_it_made():
    """The compiled loop keeps no new states for a one-component cell in training (where k = 0
    the mixed state is the new one; where k = 1 the point's results are zero, selected): exact
    even for a backward that is not finite at the old state it would otherwise be shown."""
    from minigru.numba._gated_loops import reads_new_state
    from minigru.cells.elman import RNN
    from minigru.cells.lstm import LSTM
    assert reads_new_state(LOGISTIC) and reads_new_state(RNN) and not reads_new_state(LSTM)
    p, x, _ = problem(LOGISTIC.name, T=8, B=4, H=6)
    h0 = -np.ones((4, 6))                             # outside (0, 1): log(h0) is NaN
    results = []
    for backend in ("numpy", "numba"):
        cell = mg.cell(LOGISTIC.name, backend, zoneout=0.5)
        ys, _, cache = cell.forward(p, x, h0, rng=np.random.default_rng(3))
        assert (cache["masks"].keep[0][0] == 1).any()
        results.append((ys, cell.backward(p, cache, np.ones_like(ys))))
    (ys0, (dx0, dh0, g0)), (ys1, (dx1, dh1, g1)) = results
    for a, b in [(ys1, ys0), (dx1, dx0), (dh1, dh0)] + [(g1[k], g0[k]) for k in g0]:
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("key,T", [("input_dropout", 1), ("recurrent_dropout", 1),
                                   ("weight_dropout", 1), ("zoneout", 6)])
def test_the_mean_over_masks_is_the_undropped_forward(key, T):
    """Dropout is unbiased (the 1/(1-p) scale), one step through a linear cell; zoneout's
    expectation is evaluation's p·s + (1-p)·cell(s) at every step."""
    name, rate, n = LINEAR.name, 0.3, 4000
    p, x, h0 = problem(name, T=T)
    reference, _, _ = forward(name, {key: rate}, x, p, h0, training=False)
    cell = mg.cell(name, **{key: rate}, seed=0)
    runs = np.array([cell.forward(p, x, h0)[0] for _ in range(n)])
    error = np.abs(runs.mean(axis=0) - reference)
    assert (error < 5 * runs.std(axis=0) / np.sqrt(n) + 1e-12).all()
    assert runs.std(axis=0).max() > 0                 # the masks did act


def test_seeded_runs_repeat_and_the_masks_change_between_forwards():
    p, x, h0 = problem("gru")
    a = mg.cell("gru", seed=3, **ALL)
    b = mg.cell("gru", seed=3, **ALL)
    first = a.forward(p, x, h0)[0]
    np.testing.assert_array_equal(first, b.forward(p, x, h0)[0])
    assert not np.array_equal(first, a.forward(p, x, h0)[0])
    # evaluation: no masks, only zoneout's constant share
    np.testing.assert_array_equal(a.forward(p, x, h0, training=False)[0],
                                  mg.cell("gru", zoneout=0.25).forward(p, x, h0, False)[0])


def test_the_backward_uses_the_forwards_masks_whatever_came_between():
    p, x, h0 = problem("lstm")
    cell = mg.cell("lstm", seed=1, **ALL)
    dys = np.random.default_rng(2).normal(size=(x.shape[0], x.shape[1], 5))
    _, _, cache = cell.forward(p, x, h0)
    expected = cell.backward(p, cache, dys)
    cell.forward(p, x, h0)                             # other masks drawn in between
    again = cell.backward(p, cache, dys)
    np.testing.assert_array_equal(expected[0], again[0])
    for k in expected[2]:
        np.testing.assert_array_equal(expected[2][k], again[2][k])


def test_rnn_layers_take_the_regularisers():
    rnn = mg.RNN("gru", 4, 5, num_layers=2, dtype=np.float64, seed=0, **ALL)
    x = np.random.default_rng(0).normal(size=(6, 3, 4))
    ys, _ = rnn.forward(x)
    rnn.backward(np.ones_like(ys))
    assert all(np.isfinite(g).all() for g in rnn.grads.values())
    assert {k: rnn.config()[k] for k in ALL} == ALL
    rnn.eval()
    np.testing.assert_array_equal(rnn.forward(x)[0], rnn.forward(x)[0])


def test_bad_regulariser_options_say_what_is_wrong():
    with pytest.raises(ValueError, match="recurrent_dropout acts on the recurrent weights"):
        mg.cell("mingru", recurrent_dropout=0.2)
    with pytest.raises(ValueError, match="weight_dropout"):
        mg.cell("mingru", weight_dropout=0.2)
    with pytest.raises(ValueError, match="input_dropout"):
        mg.cell("gru", input_dropout=1.0)
    with pytest.raises(TypeError, match="has no option 'zonout'"):
        mg.cell("gru", zonout=0.1)
    # a bare Variant of NumPy functions whose forward takes no masks
    if "gru_without_masks" not in mg.cells.REGISTRY:
        mg.cells.register(replace(get_variant("gru"), name="gru_without_masks",
                                  loop_regularisers=False, structure=None))
    p, x, h0 = problem("gru")
    with pytest.raises(NotImplementedError, match="zoneout acts inside the time loop"):
        mg.cell("gru_without_masks", zoneout=0.1).forward(p, x, h0)
    mg.cell("gru_without_masks", input_dropout=0.1).forward(p, x, h0)   # outside: runs


def test_the_command_line_checks_the_regularisers():
    done = subprocess.run(
        [sys.executable, "-m", "minigru", "gradcheck", "--variant", "gru,mingru,rru",
         "--zoneout", "0.2", "--recurrent-dropout", "0.3", "--input-dropout", "0.2",
         "--weight-dropout", "0.3"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mingru   recurrent_dropout, weight_dropout: does not apply" in done.stdout
    assert "zoneout=0.2" in done.stdout
    compiled = subprocess.run(
        [sys.executable, "-m", "minigru", "gradcheck", "--variant", "lstm,mgu", "--backend",
         "numba", "--zoneout", "0.2", "--recurrent-dropout", "0.3", "--eval"],
        capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    assert "evaluation mode" in compiled.stdout
