"""Initialisation schemes (``init=``, ``forget_bias``, ``gate_bias``, ``t_max``): the
distributions they promise, checked on every variant that has the parts they set."""

import numpy as np
import pytest

import minigru as mg
from minigru.cells import get_variant

I, H = 6, 5
SCHEMES = ("keras", "orthogonal", "chrono")


def make(variant, **kw):
    return mg.cell(variant).init(I, H, rng=np.random.default_rng(0), **kw)


def has_keep_bias(variant):
    p = make(variant)
    layout = get_variant(variant).layout
    return layout is not None and layout.keep is not None and any(
        name in p and blocks is not None and layout.keep[0] in blocks
        for name, blocks in layout.biases.items())


def keep_bias(variant, p):
    """The keeping gate's bias block and the sign, read from the layout."""
    layout = get_variant(variant).layout
    gate, sign = layout.keep
    for name, blocks in layout.biases.items():
        if name in p and blocks is not None and gate in blocks:
            k = blocks.index(gate)
            width = p[name].shape[0] // len(blocks)
            return p[name][k * width:(k + 1) * width] * layout.scale.get(name, 1.0), sign
    raise AssertionError("no keep bias")


@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_the_default_is_each_cells_own_initialisation(variant):
    own = get_variant(variant).init(I, H, np.random.default_rng(0), np.float64,
                                    **get_variant(variant).init_options)
    p = make(variant)
    assert p.keys() == own.keys()
    for k in p:
        np.testing.assert_array_equal(p[k], own[k])


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_recurrent_blocks_are_orthogonal(variant, scheme):
    if scheme == "chrono" and not has_keep_bias(variant):
        pytest.skip(f"{variant} has no bias of a keeping gate for chrono to set")
    p = make(variant, init=scheme)
    layout = get_variant(variant).layout
    if not layout.recurrent:
        pytest.skip(f"{variant} has no recurrent matrix (no product with h)")
    for w in layout.recurrent:
        Uh = p[w][-H:]
        if layout.blocks:
            for k in range(Uh.shape[1] // H):
                block = Uh[:, k * H:(k + 1) * H]
                np.testing.assert_allclose(block.T @ block, np.eye(H), rtol=0, atol=1e-12)
                np.testing.assert_allclose(block @ block.T, np.eye(H), rtol=0, atol=1e-12)
        else:                                         # rru: orthonormal rows of J's h part
            np.testing.assert_allclose(Uh @ Uh.T, np.eye(H), rtol=0, atol=1e-12)


@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_keras_input_weights_are_glorot_and_biases_zero(variant):
    p = mg.cell(variant).init(40, 30, rng=np.random.default_rng(1), init="keras")
    layout = get_variant(variant).layout
    for w in layout.input_weights:
        W = p[w] if w not in layout.recurrent else p[w][:-30]
        limit = np.sqrt(6.0 / sum(p[w].shape))
        assert np.abs(W).max() <= limit
        # uniform on ±limit: variance limit²/3, to sampling error (thousands of entries)
        assert abs(W.var() / (limit ** 2 / 3) - 1) < 0.1
    for name in layout.biases:
        if name not in p:
            continue
        expected = np.zeros_like(p[name])
        if layout.unit_forget_bias:                   # lstm: Keras's unit_forget_bias
            gate = layout.biases[name].index(layout.keep[0])
            expected[gate * 30:(gate + 1) * 30] = 1.0
        np.testing.assert_array_equal(p[name], expected)


def test_keras_starts_only_lstms_forget_gate_at_one():
    p = make("lstm", init="keras")
    np.testing.assert_array_equal(p["b"], np.repeat([0.0, 1.0, 0.0, 0.0], H))
    assert not make("gru", init="keras")["b"].any()
    assert not make("lstm", init="orthogonal")["b"].any()


@pytest.mark.parametrize("variant", [v for v in mg.VARIANTS if v not in ("rnn",)])
def test_chrono_draws_the_keeping_gate_from_log_uniform(variant):
    if not has_keep_bias(variant):
        with pytest.raises(ValueError, match="chrono"):
            make(variant, init="chrono")
        return
    t_max = 40
    p = mg.cell(variant).init(I, 400, rng=np.random.default_rng(2), init="chrono",
                              t_max=t_max)
    bias, sign = keep_bias(variant, p)
    draws = sign * bias                               # log U(1, t_max - 1), per unit
    assert draws.min() >= 0 and draws.max() <= np.log(t_max - 1)
    # e^draw is uniform on (1, t_max - 1): its mean is t_max / 2, to sampling error
    assert abs(np.exp(draws).mean() / (t_max / 2) - 1) < 0.1
    # the kept share σ(sign * bias) spans characteristic times up to t_max
    kept = 1 / (1 + np.exp(-draws))
    assert kept.max() <= 1 - 1 / t_max


def test_chrono_gives_lstms_input_gate_minus_the_forget_gates_bias():
    p = make("lstm", init="chrono")
    b_i, b_f, b_g, b_o = np.split(p["b"], 4)
    np.testing.assert_array_equal(b_i, -b_f)
    assert (b_f > 0).all() and not b_g.any() and not b_o.any()


def test_chrono_keeps_by_the_sign_of_the_gate():
    # mgu's f and mingru's z are the share of the candidate: their bias is -log U
    assert (make("mgu", init="chrono")["b"][:H] < 0).all()
    assert (make("mingru", init="chrono")["b"][:H] < 0).all()
    assert (make("gru", init="chrono")["b"][H:2 * H] > 0).all()


def test_forget_and_gate_bias():
    p = make("gru", gate_bias=-1.5)
    np.testing.assert_array_equal(p["b"][:2 * H], -1.5)
    p = make("gru", gate_bias=-1.5, forget_bias=2.0)
    np.testing.assert_array_equal(p["b"][:H], -1.5)
    np.testing.assert_array_equal(p["b"][H:2 * H], 2.0)
    np.testing.assert_array_equal(make("mgu", forget_bias=2.0)["b"][:H], -2.0)
    np.testing.assert_array_equal(make("lstm", forget_bias=1.0)["b"][H:2 * H], 1.0)
    s = make("rru", forget_bias=3.0)["s"]
    np.testing.assert_allclose(10 * s, 3.0)           # σ(10 s) = σ(3)


def test_bad_init_options_say_what_is_wrong():
    with pytest.raises(ValueError, match="init must be one of 'pytorch', 'keras'"):
        make("gru", init="xavier")
    with pytest.raises(ValueError, match="t_max is chrono's option"):
        make("gru", init="keras", t_max=50)
    with pytest.raises(ValueError, match="t_max must be a number above 2"):
        make("gru", init="chrono", t_max=1)
    with pytest.raises(ValueError, match="rnn has no such gate"):
        make("rnn", init="chrono")
    with pytest.raises(ValueError, match="rnn has no gates"):
        make("rnn", gate_bias=1.0)
    with pytest.raises(ValueError, match="bias=False"):
        mg.cell("gru", bias=False).init(I, H, rng=np.random.default_rng(0), init="chrono")
    with pytest.raises(TypeError, match="forget_bias must be a real number"):
        make("gru", forget_bias="1")


def test_rnn_layers_take_the_init_options_and_record_them():
    rnn = mg.RNN("lstm", I, H, num_layers=2, bidirectional=True, init="chrono", t_max=30,
                 dtype=np.float64, seed=0)
    for name, b in rnn.params.items():
        if name.startswith("b_"):
            b_i, b_f = np.split(b, 4)[:2]
            np.testing.assert_array_equal(b_i, -b_f)
            assert (b_f > 0).all() and (b_f <= np.log(29)).all()
    config = rnn.config()
    assert config["init"] == "chrono" and config["t_max"] == 30
    again = mg.RNN(**config)
    for k in rnn.params:
        np.testing.assert_array_equal(again.params[k], rnn.params[k])
    assert mg.RNN("gru", I, H).config()["init"] == "pytorch"
