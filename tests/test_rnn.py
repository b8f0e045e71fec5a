"""mg.RNN: stacked, bidirectional, variable-length layers; routing proven by finite differences
for every variant, and equality with torch.nn.GRU/LSTM/RNN over their configurations."""

import itertools

import numpy as np
import pytest

import minigru as mg
from backend_helpers import cuda_runs_here
from minigru.gradcheck import numeric_gradient, relative_error

T, B, I, H = 5, 4, 3, 4
LENGTHS = np.array([5, 2, 1, 5])


def _multi(rnn):
    """Whether the state is a tuple of components (lstm's (h, c), slstm's four)."""
    return len(rnn.state_names) > 1


def _states(rnn, rng, B=B):
    shape = (rnn.num_layers * rnn.num_directions, B, rnn.hidden_size)
    positive = rnn._cells[0].variant.nonnegative_state          # slstm's n ≥ 0
    states = tuple(np.abs(rng.normal(0, 0.5, shape)) + 0.5 if k in positive
                   else rng.normal(0, 0.5, shape) for k in rnn.state_names)
    return states if _multi(rnn) else states[0]


def _loss(rnn, x, state0, R, S, lengths, rng_state):
    rnn.rng.bit_generator.state = rng_state           # the same dropout masks every time
    ys, state = rnn.forward(x, state0, lengths)
    states, Ss = (state, S) if _multi(rnn) else ((state,), (S,))
    return float(np.sum(ys * R) + sum(np.sum(s * w) for s, w in zip(states, Ss)))


CONFIGS = {  # name: RNN keywords, lengths
    "2 layers bidirectional, dropout, lengths": (dict(num_layers=2, bidirectional=True,
                                                      dropout=0.3), LENGTHS),
    "batch_first, lengths": (dict(batch_first=True), LENGTHS),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_rnn_gradients_by_finite_differences(variant, config):
    """Every parameter, x and state0 of a whole RNN against centred differences (float64)."""
    kwargs, lengths = CONFIGS[config]
    if variant in ("ligru", "libru") and lengths is not None:
        lengths = None                                # batch statistics need equal lengths
    options = {"output_size": 3} if variant == "rru" else {}
    rnn = mg.RNN(variant, I, H, dtype=np.float64, seed=0, **kwargs, **options)
    rng = np.random.default_rng(1)
    for k in rnn.params:                              # move off the initialisation (rru's Z = 0)
        rnn.params[k] += rng.normal(0, 0.3, rnn.params[k].shape)
    x = rng.normal(size=(B, T, I) if rnn.batch_first else (T, B, I))
    state0 = _states(rnn, rng)
    rng_state = rnn.rng.bit_generator.state
    ys, state = rnn.forward(x, state0, lengths)
    R = rng.normal(size=ys.shape)
    S = tuple(rng.normal(size=s.shape) for s in state) if _multi(rnn) \
        else rng.normal(size=state.shape)

    rnn.rng.bit_generator.state = rng_state
    rnn.forward(x, state0, lengths)
    dx = rnn.backward(R, S)

    def f():
        return _loss(rnn, x, state0, R, S, lengths, rng_state)

    errors = {f"d{k}": relative_error(rnn.grads[k], numeric_gradient(f, rnn.params[k]))
              for k in rnn.params}
    errors["dx"] = relative_error(dx, numeric_gradient(f, x))
    for name, s0, d in zip([f"d{k}0" for k in rnn.state_names],
                           state0 if _multi(rnn) else (state0,),
                           rnn.dstate0 if _multi(rnn) else (rnn.dstate0,)):
        errors[name] = relative_error(d, numeric_gradient(f, s0))
    bad = {k: e for k, e in errors.items() if not e <= 1e-6}
    assert not bad, f"{variant} RNN [{config}]: " + ", ".join(f"{k} {e:.1e}"
                                                             for k, e in bad.items())


def test_parameter_names_follow_pytorch():
    rnn = mg.RNN("gru", I, H, num_layers=2, bidirectional=True)
    assert sorted(rnn.params) == sorted(f"{k}_l{layer}{s}" for k in "WUbc" for layer in (0, 1)
                                        for s in ("", "_reverse"))
    assert rnn.params["W_l1"].shape == (2 * H, 3 * H)   # layer 1 reads both directions
    assert set(rnn.grads) == set(rnn.params)


def test_outputs_past_a_sequence_end_are_zero_and_its_state_is_its_last_real_one():
    rnn = mg.RNN("lstm", I, H, bidirectional=True, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).normal(size=(T, B, I))
    ys, (h, c) = rnn.forward(x, lengths=LENGTHS)
    for b, n in enumerate(LENGTHS):
        assert not ys[n:, b].any()
        alone, (h_b, c_b) = rnn.forward(x[:n, b:b + 1])     # the row on its own, unpadded
        np.testing.assert_allclose(ys[:n, b], alone[:, 0], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(h[:, b], h_b[:, 0], rtol=1e-13, atol=1e-15)


def test_backward_accumulates_and_zero_grad_resets():
    rnn = mg.RNN("gru", I, H, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).normal(size=(T, B, I))
    ys, _ = rnn.forward(x)
    rnn.backward(np.ones_like(ys))
    once = {k: g.copy() for k, g in rnn.grads.items()}
    ys, _ = rnn.forward(x)
    rnn.backward(np.ones_like(ys))
    for k in once:
        np.testing.assert_allclose(rnn.grads[k], 2 * once[k], rtol=1e-14, err_msg=k)
    rnn.zero_grad()
    assert not any(g.any() for g in rnn.grads.values())
    with pytest.raises(RuntimeError, match="backward needs a forward first"):
        rnn.backward(np.ones_like(ys))


def test_dropout_is_seeded_and_training_only():
    def run(seed, training=True):
        rnn = mg.RNN("gru", I, H, num_layers=3, dropout=0.5, dtype=np.float64, seed=seed)
        rnn.train(training)
        return rnn.forward(np.ones((T, B, I)))[0]

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))
    plain = mg.RNN("gru", I, H, num_layers=3, dtype=np.float64, seed=1).forward(np.ones((T, B, I)))
    np.testing.assert_array_equal(run(1, training=False), plain[0])
    assert not np.array_equal(run(1), plain[0])


@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_step_and_chunks_equal_one_forward(variant):
    """Streaming: step by step, or chunk by chunk, gives what one forward gives (eval mode)."""
    rnn = mg.RNN(variant, I, H, num_layers=2, dtype=np.float64, seed=0).eval()
    x = np.random.default_rng(0).normal(size=(8, B, I))
    ys, state_T = rnn.forward(x)
    state, chunks = None, []
    for part in np.split(x, [3, 5]):
        out, state = rnn.forward(part, state)
        chunks.append(out)
    np.testing.assert_allclose(np.concatenate(chunks), ys, rtol=1e-12, atol=1e-14,
                               err_msg=f"{variant}: chunked forward")
    state = None
    for t in range(x.shape[0]):
        y, state = rnn.step(x[t], state)
        np.testing.assert_allclose(y, ys[t], rtol=1e-12, atol=1e-14, err_msg=f"{variant} step {t}")
    pairs = zip(state, state_T) if _multi(rnn) else [(state, state_T)]
    for a, b in pairs:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=f"{variant} state")


def test_step_refuses_a_bidirectional_rnn():
    rnn = mg.RNN("gru", I, H, bidirectional=True)
    with pytest.raises(ValueError, match="step needs a unidirectional RNN"):
        rnn.step(np.zeros((B, I), np.float32))


@pytest.mark.skipif(cuda_runs_here(), reason="backend 'cuda' is available here (a GPU or the "
                                               "simulator), so switching to it succeeds")
def test_switching_to_an_unavailable_backend_keeps_everything():
    rnn = mg.RNN("gru", I, H, dtype=np.float64, seed=0)
    before = {k: v.copy() for k, v in rnn.params.items()}
    x = np.random.default_rng(0).normal(size=(T, B, I))
    ys, _ = rnn.forward(x)
    with pytest.raises(RuntimeError, match="backend='cuda' needs"):
        rnn.backend = "cuda"
    assert rnn.backend == "numpy"
    for k in before:
        np.testing.assert_array_equal(rnn.params[k], before[k])
    np.testing.assert_array_equal(rnn.forward(x)[0], ys)


def test_state_dict_holds_ligru_running_statistics():
    rnn = mg.RNN("ligru", I, H, num_layers=2, dtype=np.float64, seed=0)
    rnn.forward(np.random.default_rng(0).normal(3.0, 2.0, size=(T, B, I)))
    state = rnn.state_dict()
    assert {"running_mean_l0", "running_var_l1"} <= set(state)
    other = mg.RNN("ligru", I, H, num_layers=2, dtype=np.float64, seed=5)
    other.load_state_dict(state)
    x = np.random.default_rng(1).normal(size=(T, B, I))
    np.testing.assert_array_equal(other.eval().forward(x)[0], rnn.eval().forward(x)[0])


@pytest.mark.parametrize("bad, exc, message", [
    (dict(lengths=np.array([5, 2, 0, 5])), ValueError, r"lengths must lie in \[1, T\] = \[1, 5\]"),
    (dict(lengths=np.array([5, 2, 6, 5])), ValueError, r"lengths must lie in \[1, T\]"),
    (dict(lengths=np.array([5.0, 2, 1, 5])), TypeError,
     r"lengths must hold one length per batch row, an integer array \(B,\) = \(4,\), "
     r"got float64"),
    (dict(lengths=np.array([5, 2, 1])), ValueError,
     r"lengths must hold one length per batch row, an integer array \(B,\) = \(4,\), "
     r"got shape \(3,\)"),
    (dict(state0=np.zeros((1, B, H), np.float32)), ValueError,
     r"state0 must have shape \(L·D, B, H\) = \(2, 4, 4\), got \(1, 4, 4\)"),
])
def test_bad_forward_arguments(bad, exc, message):
    rnn = mg.RNN("gru", I, H, num_layers=2)
    with pytest.raises(exc, match=message):
        rnn.forward(np.zeros((T, B, I), np.float32), **bad)


def test_bad_input_and_dys():
    rnn = mg.RNN("gru", I, H, batch_first=True)
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, I\) = \(\?, \?, 3\)"):
        rnn.forward(np.zeros((B, T, I + 1), np.float32))
    with pytest.raises(TypeError, match="x has dtype float64 but the parameters are float32"):
        rnn.forward(np.zeros((B, T, I)))
    ys, _ = rnn.forward(np.zeros((B, T, I), np.float32))
    with pytest.raises(ValueError, match=r"dys must have shape \(B, T, D·O\) = \(4, 5, 4\)"):
        rnn.backward(ys.transpose(1, 0, 2))


def test_ligru_refuses_unequal_lengths_in_training_only():
    rnn = mg.RNN("ligru", I, H)
    x = np.zeros((T, B, I), np.float32)
    with pytest.raises(ValueError, match="statistics of the whole batch"):
        rnn.forward(x, lengths=LENGTHS)
    rnn.eval().forward(x, lengths=LENGTHS)


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="num_layers must be a positive int, got 0"):
        mg.RNN("gru", I, H, num_layers=0)
    with pytest.raises(TypeError, match="bidirectional must be a bool, got int 1"):
        mg.RNN("gru", I, H, bidirectional=1)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.5"):
        mg.RNN("gru", I, H, dropout=1.5)
    with pytest.raises(ValueError, match="unknown variant 'gruu'"):
        mg.RNN("gruu", I, H)


# ====================================================================== against torch.nn

TORCH_CASES = list(itertools.product(
    ["gru", "lstm", "rnn"], [1, 2, 3], [False, True], [False, True], [True, False],
    [False, True]))


def _case_id(case):
    variant, layers, bidir, batch_first, bias, lengths = case
    return (f"{variant}-L{layers}{'-bidir' if bidir else ''}{'-bf' if batch_first else ''}"
            f"{'' if bias else '-nobias'}{'-lengths' if lengths else ''}")


@pytest.mark.parametrize("case", TORCH_CASES, ids=_case_id)
def test_equals_torch_module(case):
    torch = pytest.importorskip("torch", reason="PyTorch is the test-time oracle")
    variant, layers, bidir, batch_first, bias, use_lengths = case
    kind = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}[variant]
    torch.manual_seed(layers)
    module = kind(I, H, num_layers=layers, bias=bias, batch_first=batch_first,
                  bidirectional=bidir).double()
    rnn = mg.RNN.from_torch(module)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, I) if batch_first else (T, B, I))
    state0 = _states(rnn, rng)
    lengths = LENGTHS if use_lengths else None

    xt = torch.tensor(x, requires_grad=True)
    s0t = tuple(torch.tensor(s, requires_grad=True) for s in
                (state0 if _multi(rnn) else (state0,)))
    inp = xt
    if use_lengths:
        inp = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths),
                                                      batch_first=batch_first,
                                                      enforce_sorted=False)
    out, st = module(inp, s0t if _multi(rnn) else s0t[0])
    if use_lengths:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first,
                                                        total_length=T)
    sts = st if _multi(rnn) else (st,)
    R = rng.normal(size=tuple(out.shape))
    S = tuple(rng.normal(size=tuple(s.shape)) for s in sts)
    loss = (out * torch.tensor(R)).sum() + sum((s * torch.tensor(w)).sum() for s, w in zip(sts, S))
    loss.backward()

    ys, state = rnn.forward(x, state0, lengths)
    dx = rnn.backward(R, S if _multi(rnn) else S[0])

    label = _case_id(case)

    def close(what, ours, theirs):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=f"{label} {what}")

    close("ys", ys, out)
    for i, (s, ts) in enumerate(zip(state if _multi(rnn) else (state,), sts)):
        close(f"final state[{i}]", s, ts)
    close("dx", dx, xt.grad)
    for i, (d, ts) in enumerate(zip(rnn.dstate0 if _multi(rnn) else (rnn.dstate0,), s0t)):
        close(f"dstate0[{i}]", d, ts.grad)
    for layer in range(layers):
        for sfx in ("", "_reverse") if bidir else ("",):
            tag = f"_l{layer}{sfx}"
            close(f"dW{tag}", rnn.grads["W" + tag], getattr(module, "weight_ih" + tag).grad.T)
            close(f"dU{tag}", rnn.grads["U" + tag], getattr(module, "weight_hh" + tag).grad.T)
            if bias:
                close(f"db{tag}", rnn.grads["b" + tag], getattr(module, "bias_ih" + tag).grad)
                if variant == "gru":
                    close(f"dc{tag}", rnn.grads["c" + tag],
                          getattr(module, "bias_hh" + tag).grad[2 * H:])


@pytest.mark.parametrize("variant", ["gru", "lstm", "rnn"])
def test_to_torch_round_trip(variant):
    torch = pytest.importorskip("torch", reason="PyTorch is the test-time oracle")
    rnn = mg.RNN(variant, I, H, num_layers=2, bidirectional=True, batch_first=True,
                 dtype=np.float64, seed=0)
    module = rnn.to_torch()
    assert module.batch_first and module.bidirectional and module.num_layers == 2
    x = np.random.default_rng(0).normal(size=(B, T, I))
    with torch.no_grad():
        out = module(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(rnn.forward(x)[0], out, rtol=1e-12, atol=1e-14)
    back = mg.RNN.from_torch(module)
    for k in rnn.params:
        np.testing.assert_array_equal(back.params[k], rnn.params[k], err_msg=k)


def test_from_torch_refuses_what_has_no_equivalent():
    torch = pytest.importorskip("torch", reason="PyTorch is the test-time oracle")
    with pytest.raises(ValueError, match="nonlinearity='tanh'"):
        mg.RNN.from_torch(torch.nn.RNN(I, H, nonlinearity="relu"))
    with pytest.raises(ValueError, match="proj_size=2"):
        mg.RNN.from_torch(torch.nn.LSTM(I, H, proj_size=2))
    with pytest.raises(TypeError, match=r"module must be a torch.nn.GRU, LSTM or RNN \(or a "
                                        r"subclass of one\), got Linear"):
        mg.RNN.from_torch(torch.nn.Linear(I, H))
    with pytest.raises(ValueError, match="only rnn, lstm, gru have a PyTorch module"):
        mg.RNN("mgu", I, H).to_torch()


def test_truncated_bptt_equals_torch_with_detached_state():
    """Truncated BPTT over a stream: chunks of k steps, state carried forward but cut for the
    gradient; the accumulated gradients equal PyTorch's with h.detach() between chunks."""
    torch = pytest.importorskip("torch", reason="PyTorch is the test-time oracle")
    torch.manual_seed(0)
    module = torch.nn.GRU(I, H, num_layers=2).double()
    rnn = mg.RNN.from_torch(module)
    x = np.random.default_rng(0).normal(size=(12, B, I))
    R = np.random.default_rng(1).normal(size=(12, B, H))
    state, h = None, None
    for start in range(0, 12, 4):
        ys, state = rnn.forward(x[start:start + 4], state)
        rnn.backward(R[start:start + 4])             # no dstate: the gradient stops here
        out, h = module(torch.from_numpy(x[start:start + 4]), h)
        (out * torch.from_numpy(R[start:start + 4])).sum().backward()
        h = h.detach()
    for k in ("W_l0", "U_l1"):
        name = ("weight_ih" if k[0] == "W" else "weight_hh") + k[1:]
        np.testing.assert_allclose(rnn.grads[k], getattr(module, name).grad.numpy().T,
                                   rtol=1e-10, atol=1e-12, err_msg=k)


def test_rru_dropout_inside_the_cell_is_cell_dropout():
    rnn = mg.RNN("rru", I, H, cell_dropout=0.5, dtype=np.float64, seed=0)
    assert rnn.config()["cell_dropout"] == 0.5 and rnn.dropout == 0.0
    x = np.ones((T, B, I))
    a, _ = rnn.forward(x)
    b, _ = rnn.forward(x)
    assert not np.array_equal(a, b)                   # fresh masks each training forward
    np.testing.assert_array_equal(rnn.eval().forward(x)[0], rnn.forward(x)[0])
    again = mg.RNN(**rnn.config())                    # the config rebuilds it
    assert again._cells[0].options["dropout"] == 0.5
