"""The functional cell API of API.md, for every variant: shapes, dtypes, step, state handling."""

import numpy as np
import pytest

import minigru as mg

I, H = 3, 4
M = round(2 * (I + H))      # rru's hidden units with the default multiplier 2

# Parameter shapes transcribed from VARIANTS.md for I=3, H=4 (rru: O=H, M=14).
SHAPES = {
    "rnn": {"W": (I, H), "U": (H, H), "b": (H,)},
    "lstm": {"W": (I, 4 * H), "U": (H, 4 * H), "b": (4 * H,)},
    "gru": {"W": (I, 3 * H), "U": (H, 3 * H), "b": (3 * H,), "c": (H,)},
    "gru_v3": {"W": (I, 3 * H), "U": (H, 3 * H), "b": (3 * H,)},
    "gru1": {"W": (I, H), "U": (H, 3 * H), "b": (3 * H,)},
    "gru2": {"W": (I, H), "U": (H, 3 * H), "b": (H,)},
    "gru3": {"W": (I, H), "U": (H, H), "b": (3 * H,)},
    "lngru": {"W": (I, 3 * H), "U": (H, 3 * H), "g_x": (3 * H,), "g_h": (3 * H,),
              "b": (3 * H,), "c": (3 * H,)},
    "ligru": {"W": (I, 2 * H), "U": (H, 2 * H), "gamma": (2 * H,), "beta": (2 * H,)},
    "mgu": {"W": (I, 2 * H), "U": (H, 2 * H), "b": (2 * H,)},
    "mgu1": {"W": (I, H), "U": (H, 2 * H), "b": (2 * H,)},
    "mgu2": {"W": (I, H), "U": (H, 2 * H), "b": (H,)},
    "mgu3": {"W": (I, H), "U": (H, H), "b": (2 * H,)},
    "rru": {"J": (I + H, M), "j": (M,), "V": (M, 2 * H), "v": (2 * H,), "s": (H,), "Z": (H,)},
    "mingru": {"W": (I, 2 * H), "b": (2 * H,)},
    "minlstm": {"W": (I, 3 * H), "b": (3 * H,)},
    "indrnn": {"W": (I, H), "u": (H,), "b": (H,)},
    "janet": {"W": (I, 2 * H), "U": (H, 2 * H), "b": (2 * H,)},
    "sru": {"W": (I, 4 * H), "v": (2 * H,), "b": (2 * H,)},
    "libru": {"W": (I, 2 * H), "U": (H, 2 * H), "gamma": (2 * H,), "beta": (2 * H,)},
    "slstm": {"W": (I, 4 * H), "U": (H, 4 * H), "b": (4 * H,)},
}

# The parameter-count table of VARIANTS.md, as written there.
COUNTS = {
    "rnn": lambda I, H: H * (I + H + 1),
    "lstm": lambda I, H: 4 * H * (I + H + 1),
    "gru": lambda I, H: 3 * H * (I + H + 1) + H,
    "gru_v3": lambda I, H: 3 * H * (I + H + 1),
    "gru1": lambda I, H: H * I + 3 * H ** 2 + 3 * H,
    "gru2": lambda I, H: H * I + 3 * H ** 2 + H,
    "gru3": lambda I, H: H * I + H ** 2 + 3 * H,
    "lngru": lambda I, H: 3 * H * (I + H) + 12 * H,
    "ligru": lambda I, H: 2 * H * (I + H) + 4 * H,
    "mgu": lambda I, H: 2 * H * (I + H + 1),
    "mgu1": lambda I, H: H * I + 2 * H ** 2 + 2 * H,
    "mgu2": lambda I, H: H * I + 2 * H ** 2 + H,
    "mgu3": lambda I, H: H * I + H ** 2 + 2 * H,
    "mingru": lambda I, H: 2 * H * (I + 1),
    "rru": lambda I, H: ((I + H) * round(2 * (I + H)) + round(2 * (I + H))
                         + round(2 * (I + H)) * (2 * H) + 2 * H + 2 * H),
    "minlstm": lambda I, H: 3 * H * (I + 1),
    "indrnn": lambda I, H: H * (I + 2),
    "janet": lambda I, H: 2 * H * (I + H + 1),
    "sru": lambda I, H: 4 * H * I + 4 * H,
    "libru": lambda I, H: 2 * H * (I + H) + 4 * H,
    "slstm": lambda I, H: 4 * H * (I + H + 1),
}

DTYPES = [np.float64, np.float32]
dtype_id = lambda d: np.dtype(d).name  # noqa: E731


def test_variants_are_the_twenty_one_of_the_spec():
    assert mg.VARIANTS == ("rnn", "lstm", "gru", "gru_v3", "gru1", "gru2", "gru3", "lngru",
                           "ligru", "mgu", "mgu1", "mgu2", "mgu3", "rru", "mingru",
                           "minlstm", "indrnn", "janet", "sru", "libru", "slstm")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_init_has_the_names_shapes_and_dtype_of_the_spec(variant, dtype):
    p = mg.cell(variant).init(I, H, rng=np.random.default_rng(0), dtype=dtype)
    assert {k: v.shape for k, v in p.items()} == SHAPES[variant], variant
    assert all(v.dtype == dtype for v in p.values()), variant


@pytest.mark.parametrize("variant", mg.VARIANTS)
@pytest.mark.parametrize("sizes", [(3, 4), (1, 1), (10, 7)])
def test_parameter_count_matches_the_spec(variant, sizes):
    assert mg.cell(variant).num_params(*sizes) == COUNTS[variant](*sizes), (variant, sizes)


def _multi(variant):
    """Whether the variant's state is a tuple (lstm's (h, c), slstm's (h, c, n, m))."""
    return mg.cell(variant).variant.n_state > 1


def _parts(variant, state):
    return state if _multi(variant) else (state,)


def _problem(variant, dtype=np.float64, T=6, B=3, seed=0):
    rng = np.random.default_rng(seed)
    cell = mg.cell(variant)
    p = cell.init(I, H, rng=rng, dtype=dtype)
    x = rng.normal(size=(T, B, I)).astype(dtype)
    v = cell.variant
    state0 = tuple((np.abs(rng.normal(0, 0.5, (B, H))) if k in v.nonnegative_state
                    else rng.normal(0, 0.5, (B, H))).astype(dtype) for k in v.state)
    state0 = state0 if len(state0) > 1 else state0[0]
    if cell.buffers is not None:
        cell.forward(p, x, state0)      # give ligru running statistics that are not the defaults
    return cell, p, x, state0


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_forward_backward_shapes_and_dtypes(variant, dtype):
    cell, p, x, state0 = _problem(variant, dtype)
    T, B, _ = x.shape
    ys, state, cache = cell.forward(p, x, state0)
    assert ys.shape == (T, B, H) and ys.dtype == dtype
    states = _parts(variant, state)
    assert isinstance(state, tuple) == _multi(variant)
    assert all(s.shape == (B, H) and s.dtype == dtype for s in states)
    dx, dstate0, grads = cell.backward(p, cache, np.ones_like(ys))
    assert dx.shape == x.shape and dx.dtype == dtype
    assert set(grads) == set(p)
    for k in p:
        assert grads[k].shape == p[k].shape and grads[k].dtype == dtype, (variant, k)
    dstates = _parts(variant, dstate0)
    assert all(d.shape == (B, H) and d.dtype == dtype for d in dstates)


@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_final_state_and_outputs_agree(variant):
    """The final state is the state after the last step; for O = H cells ys[-1] is h_T."""
    cell, p, x, state0 = _problem(variant)
    # ligru's and libru's training statistics are those of the whole batch, so only their
    # evaluation mode (running statistics) can be computed in chunks
    training = cell.buffers is None
    ys, state, _ = cell.forward(p, x, state0, training)
    h_T = _parts(variant, state)[0]
    if cell.variant.output_is_state:                 # (not rru's nor sru's: their outputs)
        np.testing.assert_array_equal(ys[-1], h_T)
    ys2, state2, _ = cell.forward(p, x[:3], state0, training)
    ys3, state3, _ = cell.forward(p, x[3:], state2, training)
    np.testing.assert_allclose(np.concatenate([ys2, ys3]), ys, rtol=1e-12, atol=1e-14,
                               err_msg=f"{variant}: chunked forward differs from one forward")


@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_default_state_is_zeros_and_default_dstate_is_zeros(variant):
    cell, p, x, _ = _problem(variant)
    B = x.shape[1]
    zeros = tuple(np.zeros((B, H)) for _ in range(cell.variant.n_state))
    zeros = zeros if _multi(variant) else zeros[0]
    ys_default, _, cache = cell.forward(p, x)
    ys_zero, _, _ = cell.forward(p, x, zeros)
    np.testing.assert_array_equal(ys_default, ys_zero)
    dys = np.random.default_rng(1).normal(size=ys_default.shape)
    a = cell.backward(p, cache, dys)
    b = cell.backward(p, cache, dys, zeros)
    np.testing.assert_array_equal(a[0], b[0])
    for k in p:
        np.testing.assert_array_equal(a[2][k], b[2][k])


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_step_equals_one_step_of_forward(variant, dtype):
    """Stepping through x one step at a time reproduces forward in evaluation mode."""
    cell, p, x, state0 = _problem(variant, dtype)
    ys, state_T, _ = cell.forward(p, x, state0, training=False)
    state = state0
    tol = dict(rtol=1e-12, atol=1e-13) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for t in range(x.shape[0]):
        y, state = cell.step(p, x[t], state)
        assert y.dtype == dtype
        np.testing.assert_allclose(y, ys[t], err_msg=f"{variant} step {t}", **tol)
    for s, s_T in zip(_parts(variant, state), _parts(variant, state_T)):
        np.testing.assert_allclose(s, s_T, err_msg=f"{variant} final state", **tol)


@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_forward_does_not_modify_its_inputs(variant):
    cell, p, x, state0 = _problem(variant)
    copies = ({k: v.copy() for k, v in p.items()}, x.copy(),
              tuple(s.copy() for s in state0) if _multi(variant) else state0.copy())
    ys, _, cache = cell.forward(p, x, state0)
    dys = np.ones_like(ys)
    cell.backward(p, cache, dys)
    for k in p:
        np.testing.assert_array_equal(p[k], copies[0][k])
    np.testing.assert_array_equal(x, copies[1])
    np.testing.assert_array_equal(dys, np.ones_like(ys))


@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_nan_propagates_only_where_it_flows(variant):
    """A NaN in x[t, b] makes row b NaN from step t on and leaves everything before and every
    other row finite (ligru and libru are checked in evaluation mode: their training
    statistics mix rows)."""
    cell, p, x, state0 = _problem(variant)
    x = x.copy()
    x[2, 1, 0] = np.nan
    ys, _, _ = cell.forward(p, x, state0, training=cell.buffers is None)
    assert np.isfinite(ys[:2]).all(), variant
    assert np.isfinite(ys[:, [0, 2]]).all(), variant
    assert np.isnan(ys[2:, 1]).any(axis=-1).all(), variant


def test_ligru_training_nan_reaches_every_row():
    cell, p, x, state0 = _problem("ligru")
    x = x.copy()
    x[2, 1, 0] = np.nan
    ys, _, _ = cell.forward(p, x, state0, training=True)
    assert np.isnan(ys).any(axis=(0, 2)).all()
