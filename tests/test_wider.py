"""What the six cells of "the wider family" add beyond the shared parametrised tests: the
stabilised and log-space forms at extreme inputs, sru's state that is not its output, janet's
fixed shift, slstm's four-part state, and the float32 math they compile to."""

import warnings

import numpy as np
import pytest

import minigru as mg

T, B, I, H = 6, 3, 4, 5
CPU = ["numpy", "numba"]


def _extreme_problem(variant, dtype, scale=1e4, seed=0):
    """Inputs, weights and state entries up to ``scale`` in magnitude, of both signs."""
    rng = np.random.default_rng(seed)
    cell = mg.cell(variant)
    p = cell.init(I, H, rng=rng, dtype=np.float64)
    p = {k: (v + rng.normal(0, 1, v.shape)).astype(dtype) for k, v in p.items()}
    x = (scale * rng.uniform(-1, 1, (T, B, I))).astype(dtype)
    v = cell.variant
    state0 = tuple((scale * rng.uniform(0 if k in v.nonnegative_state else -1, 1, (B, H)))
                   .astype(dtype) for k in v.state)
    return p, x, state0 if len(state0) > 1 else state0[0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("variant", ["libru", "slstm"])
def test_inputs_up_to_1e4_give_finite_outputs_and_gradients_without_warnings(variant, backend,
                                                                               dtype):
    """VARIANTS.md: libru's logaddexp form and slstm's stabiliser must not overflow for |s|, h,
    ñ (libru) or the pre-activations (slstm) up to 1e4; in training and evaluation mode."""
    p, x, state0 = _extreme_problem(variant, dtype)
    cell = mg.cell(variant, backend)
    for training in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("error")            # an overflow or invalid value fails
            ys, state, cache = cell.forward(p, x, state0, training)
            dys = np.ones_like(ys)
            dstate = tuple(np.ones_like(s) for s in state) if isinstance(state, tuple) \
                else np.ones_like(state)
            dx, dstate0, grads = cell.backward(p, cache, dys, dstate)
        parts = [ys, dx, *grads.values(),
                 *(state if isinstance(state, tuple) else (state,)),
                 *(dstate0 if isinstance(dstate0, tuple) else (dstate0,))]
        assert all(np.isfinite(a).all() for a in parts), (variant, backend, training)
    assert np.abs(x.reshape(-1, I) @ p["W"].astype(np.float64)).max() > 1e3   # extreme indeed


def test_libru_state_is_the_log_of_the_probability_mixture():
    """At moderate values h' = log(z e^h + (1 − z) e^ñ), computed the plain way."""
    sig = lambda a: 1 / (1 + np.exp(-a))              # noqa: E731
    softplus = lambda a: np.log1p(np.exp(a))          # noqa: E731
    cell = mg.cell("libru")
    rng = np.random.default_rng(1)
    p = cell.init(I, H, rng=rng)
    x, h = rng.normal(size=(1, B, I)), rng.normal(size=(B, H))
    buffers = {k: v.copy() for k, v in cell.buffers.items()}
    ys, _, cache = cell.forward(p, x, h, training=False, buffers=buffers)
    a = (x[0] @ p["W"] - buffers["running_mean"]) / np.sqrt(buffers["running_var"] + 1e-5)
    a = p["gamma"] * a + p["beta"]
    s = a[:, :H] + h @ p["U"][:, :H]
    n = softplus(a[:, H:] + h @ p["U"][:, H:])
    z = sig(s)
    np.testing.assert_allclose(ys[0], np.log(z * np.exp(h) + (1 - z) * np.exp(n)), rtol=1e-12)


@pytest.mark.parametrize("backend", CPU)
def test_slstm_outputs_do_not_depend_on_the_stabilisers_scale(backend):
    """h = o ⊙ c / n: adding a constant k to m (c and n then stand for c·e^m, n·e^m) and
    scaling c and n by e^(−k) leaves every output the same."""
    cell = mg.cell("slstm", backend)
    rng = np.random.default_rng(2)
    p = cell.init(I, H, rng=rng)
    x = rng.normal(size=(T, B, I))
    h, c = rng.normal(size=(B, H)), rng.normal(size=(B, H))
    n, m = np.abs(rng.normal(size=(B, H))) + 0.5, rng.normal(size=(B, H))
    ys, state, _ = cell.forward(p, x, (h, c, n, m))
    k = 3.0
    ys2, state2, _ = cell.forward(p, x, (h, c * np.exp(-k), n * np.exp(-k), m + k))
    np.testing.assert_allclose(ys2, ys, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(state2[1] / state2[2], state[1] / state[2], rtol=1e-12)


@pytest.mark.parametrize("backend", CPU)
def test_slstm_gradient_through_m_cancels_for_a_loss_on_the_outputs(backend):
    """h' does not depend on the scale m, so with dL/dys alone: dc0·c0 + dn0·n0 = dm0 (the
    change of L under m0 += ε, c0 and n0 scaled by e^(−ε), is zero)."""
    cell = mg.cell("slstm", backend)
    rng = np.random.default_rng(3)
    p = cell.init(I, H, rng=rng)
    x = rng.normal(size=(T, B, I))
    s0 = (rng.normal(size=(B, H)), rng.normal(size=(B, H)), np.abs(rng.normal(size=(B, H))) + .5,
          rng.normal(size=(B, H)))
    ys, _, cache = cell.forward(p, x, s0)
    _, (dh0, dc0, dn0, dm0), _ = cell.backward(p, cache, rng.normal(size=ys.shape))
    np.testing.assert_allclose(dc0 * s0[1] + dn0 * s0[2], dm0, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backend", CPU)
def test_slstm_refuses_a_negative_normaliser_and_takes_zeros(backend):
    cell = mg.cell("slstm", backend)
    p = cell.init(I, H, rng=np.random.default_rng(0))
    x = np.zeros((T, B, I))
    zeros = tuple(np.zeros((B, H)) for _ in range(4))
    np.testing.assert_array_equal(cell.forward(p, x, zeros)[0], cell.forward(p, x)[0])
    bad = (zeros[0], zeros[1], -np.ones((B, H)), zeros[3])
    with pytest.raises(ValueError, match=r"state0\[2\] \(n\) of slstm must be ≥ 0"):
        cell.forward(p, x, bad)
    with pytest.raises(ValueError, match=r"state\[2\] \(n\) of slstm must be ≥ 0"):
        cell.step(p, x[0], bad)


@pytest.mark.parametrize("backend", CPU)
def test_sru_state_is_c_and_its_output_is_the_highway(backend):
    """The state a user passes and gets is c alone; the outputs are h' = r c' + (1 − r) s."""
    sig = lambda a: 1 / (1 + np.exp(-a))              # noqa: E731
    cell = mg.cell("sru", backend)
    rng = np.random.default_rng(4)
    p = cell.init(I, H, rng=rng)
    p = {k: v + rng.normal(0, 0.3, v.shape) for k, v in p.items()}
    x, c = rng.normal(size=(T, B, I)), rng.normal(size=(B, H))
    ys, c_T, _ = cell.forward(p, x, c)
    assert isinstance(c_T, np.ndarray) and c_T.shape == (B, H)
    n, af, ar, s = np.split(x @ p["W"], 4, axis=-1)
    vf, vr = np.split(p["v"], 2)
    bf, br = np.split(p["b"], 2)
    for t in range(T):
        f, r = sig(af[t] + vf * c + bf), sig(ar[t] + vr * c + br)
        c = f * c + (1 - f) * n[t]
        np.testing.assert_allclose(ys[t], r * c + (1 - r) * s[t], rtol=1e-12)
    np.testing.assert_allclose(c_T, c, rtol=1e-12)
    y, c1 = cell.step(p, x[0], c_T)
    assert y.shape == (B, H) and c1.shape == (B, H)
    rnn = mg.RNN("sru", I, H, num_layers=2, backend=backend, dtype=np.float64, seed=0)
    ys, state = rnn.forward(x)
    assert ys.shape == (T, B, H) and state.shape == (2, B, H)


@pytest.mark.parametrize("backend", CPU)
def test_janets_shift_is_an_option_and_not_trained(backend):
    rng = np.random.default_rng(5)
    p = mg.cell("janet").init(I, H, rng=rng)
    x = rng.normal(size=(T, B, I))
    one = mg.cell("janet", backend)
    two = mg.cell("janet", backend, beta=2.0)
    ys1, _, cache = one.forward(p, x)
    ys2, _, _ = two.forward(p, x)
    assert not np.allclose(ys1, ys2)
    assert set(one.backward(p, cache, np.ones_like(ys1))[2]) == set(p) == {"W", "U", "b"}
    for beta in (0.0, 2.0):                           # the reference's own numbers
        ref, ours = mg.cell("janet", beta=beta), mg.cell("janet", backend, beta=beta)
        np.testing.assert_allclose(ours.forward(p, x)[0], ref.forward(p, x)[0], rtol=1e-12)
    with pytest.raises(TypeError, match="beta must be a real number"):
        mg.cell("janet", beta="1")


def test_janet_draws_its_forget_bias_as_chrono_does():
    H2 = 400
    p = mg.cell("janet").init(I, H2, rng=np.random.default_rng(6))
    b_f, b_n = p["b"][:H2], p["b"][H2:]
    assert (b_n == 0).all()
    assert 0 <= b_f.min() and b_f.max() <= np.log(99)  # log U(1, t_max − 1), t_max = 100
    q = mg.cell("janet").init(I, H2, rng=np.random.default_rng(6), t_max=10)
    assert q["b"][:H2].max() <= np.log(9)
    with pytest.raises(ValueError, match="t_max is chrono's option"):
        mg.cell("gru").init(I, H, t_max=10)


def test_indrnn_starts_its_recurrent_weights_in_0_1():
    p = mg.cell("indrnn").init(I, 1000, rng=np.random.default_rng(7))
    assert 0 <= p["u"].min() and p["u"].max() <= 1 and p["u"].std() > 0.25


def test_the_compiled_float32_exp_and_softplus_are_accurate():
    """The vectorisable float32 forms (numba/_math.py) against float64 NumPy."""
    import numba

    from minigru.numba._math import exp, softplus

    @numba.njit(error_model="numpy")
    def run(f, x, out):
        for i in range(x.shape[0]):
            out[i] = f(x[i])

    @numba.njit
    def e(v):
        return exp(v)

    @numba.njit
    def s(v):
        return softplus(v)

    x = np.concatenate([np.linspace(-87, 88, 100_001), np.linspace(-3, 3, 10_001),
                        [0.0, 1e-30, -1e-30]]).astype(np.float32)
    out = np.empty_like(x)
    run(e, x, out)
    ref = np.exp(x.astype(np.float64))
    assert out.dtype == np.float32
    assert np.max(np.abs(out - ref) / ref) < 2e-7        # about 1 ulp
    run(s, x, out)
    ref = np.logaddexp(0.0, x.astype(np.float64))
    assert np.max(np.abs(out - ref) / ref) < 5e-7
    far = np.array([-1e4, -100.0, 100.0, 1e4], np.float32)
    out = np.empty_like(far)
    run(e, far, out)
    assert out[0] == 0 and out[1] == 0 and np.isfinite(out).all()
    run(s, far, out)
    np.testing.assert_array_equal(out, [0, 0, 100, 1e4])         # (e^-100 is below float32)
