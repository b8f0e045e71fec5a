"""Bad input raises a ValueError/TypeError that names the argument, the expected and the given."""

import numpy as np
import pytest

import minigru as mg
from backend_helpers import cuda_runs_here

T, B, I, H = 4, 2, 3, 5


@pytest.fixture(params=mg.VARIANTS)
def setup(request):
    variant = request.param
    cell = mg.cell(variant)
    p = cell.init(I, H, rng=np.random.default_rng(0))
    x = np.zeros((T, B, I))
    return variant, cell, p, x


def test_unknown_variant_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown variant 'gru9'.*rnn, lstm, gru, gru_v3"):
        mg.cell("gru9")


def test_unknown_backend_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"backend must be one of \['cuda', 'numba', 'numpy'\], "
                                         r"got 'torch'"):
        mg.cell("gru", backend="torch")


def test_x_of_wrong_ndim(setup):
    variant, cell, p, x = setup
    with pytest.raises(ValueError, match=r"x must be 3-D \(T, B, I\) = \(\?, \?, 3\), "
                                         r"got shape \(4, 2\)"):
        cell.forward(p, x[:, :, 0])


def test_x_of_wrong_input_size(setup):
    variant, cell, p, x = setup
    with pytest.raises(ValueError, match=r"x must have shape \(T, B, I\) = \(\?, \?, 3\), "
                                         r"got \(4, 2, 7\)"):
        cell.forward(p, np.zeros((T, B, 7)))


def test_integer_x(setup):
    variant, cell, p, x = setup
    with pytest.raises(TypeError, match="x must be a float32 or float64 array, got dtype int64"):
        cell.forward(p, x.astype(np.int64))


def test_list_x(setup):
    variant, cell, p, x = setup
    with pytest.raises(TypeError, match="x must be a numpy.ndarray, got list"):
        cell.forward(p, x.tolist())


def test_x_dtype_other_than_the_parameters(setup):
    variant, cell, p, x = setup
    with pytest.raises(TypeError, match=r"x has dtype float32 but the parameters are float64"):
        cell.forward(p, x.astype(np.float32))


def test_empty_sequence(setup):
    variant, cell, p, x = setup
    with pytest.raises(ValueError, match=r"x must have at least one step and one batch row, "
                                         r"got shape \(0, 2, 3\)"):
        cell.forward(p, x[:0])


def test_state_of_wrong_shape(setup):
    variant, cell, p, x = setup
    bad = np.zeros((B + 1, H))
    names = cell.variant.state
    if len(names) > 1:                                # lstm's (h, c), slstm's (h, c, n, m)
        with pytest.raises(ValueError, match=r"state0\[0\] must have shape \(B, H\) = \(2, 5\), "
                                             r"got \(3, 5\)"):
            cell.forward(p, x, (bad,) + tuple(np.zeros((B, H)) for _ in names[1:]))
        with pytest.raises(TypeError, match=rf"state0 of {variant} must be a tuple "
                                            rf"\({', '.join(names)}\)"):
            cell.forward(p, x, np.zeros((B, H)))
    else:
        with pytest.raises(ValueError, match=r"state0 must have shape \(B, H\) = \(2, 5\), "
                                             r"got \(3, 5\)"):
            cell.forward(p, x, bad)
        with pytest.raises(ValueError, match=r"state0 must be 2-D \(B, H\)"):
            cell.forward(p, x, np.zeros(H))


def test_step_input_of_wrong_shape(setup):
    variant, cell, p, x = setup
    with pytest.raises(ValueError, match=r"x_t must be 2-D \(B, I\) = \(\?, 3\), got shape"):
        cell.step(p, x)


def test_params_missing_a_key(setup):
    variant, cell, p, x = setup
    name = sorted(p)[0]
    q = {k: v for k, v in p.items() if k != name}
    with pytest.raises(ValueError, match=rf"p must have exactly the keys .*missing \['{name}'\]"):
        cell.forward(q, x)


def test_params_with_a_wrong_shape(setup):
    variant, cell, p, x = setup
    # the last parameter in the spec's order is never the one sizes are read from
    name = list(p)[-1]
    q = dict(p, **{name: np.zeros(p[name].shape[:-1] + (p[name].shape[-1] + 1,))})
    with pytest.raises(ValueError, match=rf"p\['{name}'\] must have shape"):
        cell.forward(q, x)


def test_params_of_mixed_dtype(setup):
    variant, cell, p, x = setup
    name = list(p)[-1]
    q = dict(p, **{name: p[name].astype(np.float32)})
    with pytest.raises(TypeError, match="p mixes dtypes"):
        cell.forward(q, x)


def test_dys_of_wrong_shape(setup):
    variant, cell, p, x = setup
    ys, _, cache = cell.forward(p, x)
    with pytest.raises(ValueError, match=r"dys must have shape \(T, B, O\) = \(4, 2, 5\), "
                                         r"got \(4, 2, 6\)"):
        cell.backward(p, cache, np.zeros((T, B, H + 1)))


def test_dstate_of_wrong_shape(setup):
    variant, cell, p, x = setup
    ys, _, cache = cell.forward(p, x)
    bad = np.zeros((B, H + 1))
    with pytest.raises(ValueError, match=r"dstate(\[0\])? must have shape \(B, H\)"):
        n = cell.variant.n_state
        cell.backward(p, cache, ys, (bad,) * n if n > 1 else bad)


def test_cache_from_another_variant():
    p_gru = mg.cell("gru").init(I, H, rng=np.random.default_rng(0))
    p_rnn = mg.cell("rnn").init(I, H, rng=np.random.default_rng(0))
    ys, _, cache = mg.cell("rnn").forward(p_rnn, np.zeros((T, B, I)))
    with pytest.raises(ValueError, match="cache comes from a rnn forward, not gru"):
        mg.cell("gru").backward(p_gru, cache, ys)


def test_unknown_option():
    regularisers = "'input_dropout', 'recurrent_dropout', 'seed', 'weight_dropout', 'zoneout'"
    mingru_options = ("'input_dropout', 'recurrent_dropout', 'scan', 'seed', "
                      "'weight_dropout', 'zoneout'")
    with pytest.raises(TypeError, match=rf"mingru has no option 'dropout'; its options are "
                                        rf"\[{mingru_options}\]"):
        mg.cell("mingru", dropout=0.1)
    with pytest.raises(TypeError, match=rf"gru has no option 'dropout'; its options are "
                                        rf"\['bias', {regularisers}\]"):
        mg.cell("gru", dropout=0.1)
    with pytest.raises(TypeError, match=r"rru has no option 'momentum'; its options are "
                                        r"\['dropout', 'input_dropout', 'multiplier', "
                                        r"'output_size', 'recurrent_dropout', 'seed', "
                                        r"'weight_dropout', 'zoneout'\]"):
        mg.cell("rru", momentum=0.1)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2])
def test_dropout_out_of_range(bad):
    with pytest.raises(ValueError, match=rf"dropout must be in \[0, 1\), got {bad}"):
        mg.cell("rru", dropout=bad)


@pytest.mark.parametrize("arg, value, exc", [
    ("input_size", 0, ValueError), ("hidden_size", -3, ValueError),
    ("hidden_size", 2.5, TypeError), ("input_size", True, TypeError)])
def test_init_sizes(arg, value, exc):
    sizes = {"input_size": 3, "hidden_size": 4, arg: value}
    with pytest.raises(exc, match=rf"{arg} must be a positive int, got"):
        mg.cell("gru").init(**sizes)


def test_init_dtype():
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got float16"):
        mg.cell("gru").init(3, 4, dtype=np.float16)


def test_init_rng():
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator, got int"):
        mg.cell("gru").init(3, 4, rng=0)


def test_training_flag_must_be_bool():
    cell = mg.cell("gru")
    p = cell.init(I, H, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="training must be a bool, got str"):
        cell.forward(p, np.zeros((T, B, I)), None, "no")


def test_params_of_wrong_rank_name_the_rank():
    cell = mg.cell("rru")
    p = cell.init(I, H, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"p\['J'\] must be 2-D, got shape \(7,\)"):
        cell.forward(dict(p, J=np.zeros(7)), np.zeros((T, B, I)))


def test_backward_with_params_other_than_the_forward_had():
    cell = mg.cell("rru")
    p = cell.init(I, H, rng=np.random.default_rng(0))
    q = mg.cell("rru").init(I, H, rng=np.random.default_rng(0), output_size=2)
    ys, _, cache = cell.forward(p, np.zeros((T, B, I)))
    with pytest.raises(ValueError, match="but the cache was made with parameters of shapes"):
        cell.backward(q, cache, ys[..., :2])


def test_a_checked_dict_is_checked_again_when_an_array_is_replaced():
    cell = mg.cell("gru")
    p = cell.init(I, H, rng=np.random.default_rng(0))
    cell.step(p, np.zeros((B, I)))                    # checked and remembered
    p["U"] = np.zeros((H + 1, 3 * H))
    with pytest.raises(ValueError, match=r"p\['U'\] must have shape \(5, 15\), got \(6, 15\)"):
        cell.step(p, np.zeros((B, I)))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("variant", ["gru", "lstm"])
def test_a_streaming_step_is_checked_again_when_anything_changes(variant, backend):
    """Step after step with the same p and shapes skips the full checks (the streaming path);
    any change of an array, a shape or a dtype goes through them again."""
    cell = mg.cell(variant, backend=backend)
    p = cell.init(I, H, rng=np.random.default_rng(0))
    x_t = np.zeros((B, I))
    _, state = cell.step(p, x_t, None)
    _, state = cell.step(p, x_t, state)               # now remembered
    h = state[0] if variant == "lstm" else state

    def with_h(new_h):
        return (new_h, state[1]) if variant == "lstm" else new_h
    state_name = "state\\[0\\]" if variant == "lstm" else "state"
    with pytest.raises(TypeError, match=r"x_t has dtype float32 but the parameters are float64"):
        cell.step(p, x_t.astype(np.float32), state)
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, I\) = \(\?, 3\), got \(2, 4\)"):
        cell.step(p, np.zeros((B, I + 1)), state)
    with pytest.raises(ValueError, match=rf"{state_name} must have shape \(B, H\) = \(3, 5\), "
                                         r"got \(2, 5\)"):
        cell.step(p, np.zeros((B + 1, I)), state)
    with pytest.raises(TypeError, match=rf"{state_name} has dtype float32"):
        cell.step(p, x_t, with_h(h.astype(np.float32)))
    with pytest.raises(TypeError, match=rf"{state_name} must be a numpy.ndarray, got list"):
        cell.step(p, x_t, with_h(h.tolist()))
    b = p.pop("b")
    with pytest.raises(ValueError, match=r"p must have exactly the keys .*; missing \['b'\]"):
        cell.step(p, x_t, state)
    p["b"], p["extra"] = b, b
    with pytest.raises(ValueError, match=r"missing \[\], unexpected \['extra'\]"):
        cell.step(p, x_t, state)
    del p["extra"]
    cell.step(p, x_t, state)                          # remembered again
    key = "U"
    p[key] = np.zeros((H, p[key].shape[1] + 1))
    with pytest.raises(ValueError, match=r"p\['[WU]'\] must have shape"):
        cell.step(p, x_t, state)


def test_init_aligns_parameters_for_the_compiled_loops():
    p = mg.cell("gru").init(I, H, rng=np.random.default_rng(0), dtype=np.float32)
    for k, a in p.items():
        assert a.ctypes.data % 64 == 0, k
        assert a.flags.c_contiguous and a.flags.writeable, k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_forwards_copies_are_aligned_and_equal_whatever_the_layout(dtype):
    from minigru._aligned import aligned_copies
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=s).astype(dtype) for s in [(8, 64), (3,), (5, 7), (0, 4), (2, 3, 5)]]
    arrays += [np.asfortranarray(rng.normal(size=(6, 5)).astype(dtype)),
               rng.normal(size=(10, 10)).astype(dtype)[::2, 1::3]]
    copies = aligned_copies(arrays)
    for a, c in zip(arrays, copies):
        assert c.shape == a.shape and c.flags.c_contiguous
        assert c.size == 0 or c.ctypes.data % 64 == 0
        np.testing.assert_array_equal(c, a)
    copies[1][:] = 7                                  # each its own memory, apart from the rest
    for a, c in zip(arrays[2:], copies[2:]):
        np.testing.assert_array_equal(c, a)


@pytest.mark.skipif(cuda_runs_here(), reason="a GPU or the simulator is here: cuda works")
def test_cuda_without_a_gpu_says_how_to_use_the_simulator():
    with pytest.raises(RuntimeError) as e:
        mg.cell("gru", backend="cuda")
    assert "needs an NVIDIA GPU" in str(e.value)
    assert "NUMBA_ENABLE_CUDASIM=1" in str(e.value)


def test_cuda_without_numba_cuda_says_what_to_install(monkeypatch):
    import sys

    import numba
    monkeypatch.setitem(sys.modules, "numba.cuda", None)    # as if not installed
    monkeypatch.delattr(numba, "cuda", raising=False)
    with pytest.raises(RuntimeError, match=r"needs the numba-cuda package \(pip install "
                                           r"'minigru\[cuda\]'\)"):
        mg.cell("gru", backend="cuda")
