"""minigru.text: vocabularies, stream batches for stateful truncated BPTT, sampling, metrics, and
weight tying (finite differences in float64, and PyTorch where it helps).

Expected values are written out by hand or computed by an independent route (PyTorch, a plain
formula), never by the function under test.
"""

import json
import math

import numpy as np
import pytest

import minigru as mg
from minigru import text as mt
from minigru.gradcheck import numeric_gradient, relative_error
from minigru.layers import Embedding, Linear

TOL = 1e-7                  # centred differences in float64, as tests/test_layers.py


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is the test-time oracle: pip install torch")


# ---------------------------------------------------------------- vocabularies
def test_char_vocab_round_trip_and_the_unknown_symbol():
    v = mt.CharVocab.from_text("hello world")
    assert v.symbols == ("\ufffd", " ", "d", "e", "h", "l", "o", "r", "w")
    ids = v.encode("hello")
    assert ids.dtype == np.int64 and ids.tolist() == [4, 3, 5, 5, 6]
    assert v.decode(ids) == "hello"
    assert v.encode("help!").tolist() == [4, 3, 5, 0, 0]          # p and ! were never seen
    assert v.decode(v.encode("help!")) == "hel\ufffd\ufffd"
    assert len(v) == 9 and v.unknown_id == 0
    assert v.encode("").shape == (0,) and v.decode([]) == ""


def test_char_vocab_min_count_sends_rare_characters_to_unknown():
    v = mt.CharVocab.from_text("aaab", min_count=2)
    assert v.symbols == ("\ufffd", "a") and v.encode("ab").tolist() == [1, 0]


def test_char_vocab_without_unknown_refuses_unseen_characters():
    v = mt.CharVocab.from_text("abc", unknown=None)
    assert v.encode("cab").tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match=r"outside the vocabulary: 'xz'"):
        v.encode("axbz")
    with pytest.raises(ValueError, match="min_count"):
        mt.CharVocab.from_text("abc", min_count=2, unknown=None)


def test_char_vocab_config_rebuilds_it():
    v = mt.CharVocab.from_text("the cat")
    again = mt.CharVocab(**json.loads(json.dumps(v.config())))
    assert again.symbols == v.symbols


def test_byte_vocab_has_no_unknowns():
    v = mt.ByteVocab()
    assert v.encode("né").tolist() == [110, 195, 169] and len(v) == 256
    assert v.decode([110, 195, 169]) == "né"
    assert v.decode([110, 195]) == "n\ufffd"                      # cut inside a character


@pytest.mark.parametrize("call, error, words", [
    (lambda: mt.CharVocab.from_text(b"bytes"), TypeError, "text must be a str"),
    (lambda: mt.CharVocab("aba"), ValueError, "distinct"),
    (lambda: mt.CharVocab(["ab"]), TypeError, "single characters"),
    (lambda: mt.CharVocab("ab", unknown="??"), ValueError, "one character"),
    (lambda: mt.CharVocab("ab").decode([1, 5]), ValueError, r"\[0, 2\].*ids\[1\] = 5"),
    (lambda: mt.CharVocab("ab").decode([0.5]), TypeError, "integers"),
    (lambda: mt.ByteVocab().decode([256]), ValueError, r"\[0, 255\]"),
])
def test_vocab_errors_name_the_argument(call, error, words):
    with pytest.raises(error, match=words):
        call()


# ---------------------------------------------------------------- streams
def test_stream_rows_continue_across_chunks():
    N, B, T = 103, 4, 5
    ids = np.arange(N) * 10                                      # id = 10 x its position
    s = mt.Stream(ids, B, T)
    n = N // B                                                   # 25 tokens per row, 3 dropped
    assert s.rows.shape == (n, B) and s.dropped == 3 and s.tokens == (n - 1) * B
    assert len(s) == math.ceil((n - 1) / T) == 5
    for k, (x, y) in enumerate(s):
        t = np.arange(k * T, min(k * T + T, n - 1))[:, None]     # steps of this chunk
        b = np.arange(B)[None, :]
        np.testing.assert_array_equal(x, 10 * (b * n + t))        # row b reads ids[b n + t]
        np.testing.assert_array_equal(y, 10 * (b * n + t + 1))    # and predicts the next one
        if k + 1 < len(s):                                        # the next chunk starts where
            np.testing.assert_array_equal(s[k + 1][0][0], y[-1])  # this one's targets end
    assert s[-1][0].shape == (4, B)                               # 24 steps: 5+5+5+5+4


def test_carrying_the_state_over_chunks_equals_one_long_forward():
    """Stateful training sees each row as one sequence: chunked forwards carrying the state
    give the logits of a single forward over the whole rows."""
    ids = np.random.default_rng(0).integers(0, 7, 61)
    s = mt.Stream(ids, 3, 4)
    lm = mt.LanguageModel("lstm", 7, 5, dtype=np.float64, seed=1)
    whole, _ = lm.forward(s.rows[:-1])                           # (n - 1, B, V)
    state, parts = None, []
    for x, _ in s:
        logits, state = lm.forward(x, state)
        parts.append(logits)
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize("call, error, words", [
    (lambda: mt.Stream([1, 2, 3], 1, 2), TypeError, "numpy.ndarray"),
    (lambda: mt.Stream(np.ones(9), 1, 2), TypeError, "integer array"),
    (lambda: mt.Stream(np.ones((3, 3), int), 1, 2), ValueError, r"1-D \(N,\)"),
    (lambda: mt.Stream(np.arange(7), 4, 2), ValueError, "7 tokens: too few for batch_size=4"),
    (lambda: mt.Stream(np.arange(9), 0, 2), ValueError, "batch_size"),
    (lambda: mt.Stream(np.arange(9), 1, 2.5), TypeError, "bptt"),
    (lambda: mt.Stream(np.arange(9), 1, 2)[4], IndexError, "4 chunks"),
])
def test_stream_errors_name_the_argument(call, error, words):
    with pytest.raises(error, match=words):
        call()


# ---------------------------------------------------------------- sampling
def test_temperature_zero_is_argmax():
    logits = np.array([[0.1, 2.0, -1.0], [5.0, 4.0, 5.5]])
    np.testing.assert_array_equal(mt.next_token_probs(logits, 0), [[0, 1, 0], [0, 0, 1]])
    for seed in range(5):
        assert mt.sample_next(logits, seed, temperature=0).tolist() == [1, 2]


@pytest.mark.parametrize("temperature", [1e-8, 1e-30, 1e-300])
def test_tiny_temperatures_give_argmax_and_no_nan(temperature):
    logits = np.array([[1e30, -1e30, 3.0], [0.5, 0.25, 0.75]])    # huge and ordinary rows
    with np.errstate(all="raise"):                                # no warning may slip through
        p = mt.next_token_probs(logits, temperature)
    assert not np.isnan(p).any()
    np.testing.assert_array_equal(p, [[1, 0, 0], [0, 0, 1]])
    assert mt.sample_next(logits, 0, temperature=temperature).tolist() == [0, 2]


def test_temperature_scales_the_logits():
    z = np.array([0.3, -1.2, 2.0, 0.0])
    for t in (1.0, 0.5, 3.0):
        want = np.exp(z / t) / np.exp(z / t).sum()                 # the textbook formula
        np.testing.assert_allclose(mt.next_token_probs(z, t), want, rtol=1e-13)


def test_temperature_matches_torch_softmax():
    torch = _torch()
    z = np.random.default_rng(0).normal(size=(3, 11)) * 4
    want = torch.softmax(torch.from_numpy(z) / 0.7, dim=-1).numpy()
    np.testing.assert_allclose(mt.next_token_probs(z, 0.7), want, rtol=1e-12)


def test_top_k_keeps_the_k_largest():
    z = np.log([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(mt.next_token_probs(z, top_k=2), [0, 0, 3 / 7, 4 / 7])
    np.testing.assert_allclose(mt.next_token_probs(z, top_k=4), [0.1, 0.2, 0.3, 0.4])
    tie = np.log([0.3, 0.3, 0.4])
    np.testing.assert_allclose(mt.next_token_probs(tie, top_k=2), [0.3, 0.3, 0.4])  # ties kept


@pytest.mark.parametrize("top_p, want", [
    (0.3, [1, 0, 0, 0]),                         # the most probable token is always kept
    (0.5, [4 / 7, 3 / 7, 0, 0]),                 # 0.4 < 0.5, 0.4 + 0.3 reaches it
    (0.75, [4 / 9, 3 / 9, 2 / 9, 0]),
    (1.0, [0.4, 0.3, 0.2, 0.1]),
])
def test_top_p_keeps_the_nucleus(top_p, want):
    z = np.log([0.3, 0.1, 0.4, 0.2])             # not sorted: order must not matter
    order = [2, 0, 3, 1]                         # 0.4, 0.3, 0.2, 0.1
    p = mt.next_token_probs(z, top_p=top_p)
    np.testing.assert_allclose(p[order], want, rtol=1e-12, atol=1e-15)


def test_top_k_and_top_p_together():
    z = np.log([0.4, 0.3, 0.2, 0.1])
    # top_k=3 renormalises to 4/9, 3/9, 2/9; then top_p=0.6 keeps 4/9 + 3/9 = 0.78
    np.testing.assert_allclose(mt.next_token_probs(z, top_k=3, top_p=0.6), [4 / 7, 3 / 7, 0, 0])


def test_sampled_frequencies_match_the_masses():
    z = np.log([0.05, 0.45, 0.1, 0.4])
    rows = np.tile(z, (40_000, 1))
    draws = mt.sample_next(rows, np.random.default_rng(0), top_p=0.8)   # keeps 0.45 and 0.4
    freq = np.bincount(draws, minlength=4) / len(draws)
    want = np.array([0, 0.45, 0, 0.4]) / 0.85
    sigma = np.sqrt(want * (1 - want) / len(draws))
    assert np.all(np.abs(freq - want) <= 5 * sigma + 1e-12), (freq, want)
    assert freq[0] == freq[2] == 0                                       # never outside the top p


def test_the_seed_decides_the_draws():
    z = np.zeros((200, 5))
    a = mt.sample_next(z, 7)
    assert (a == mt.sample_next(z, np.random.default_rng(7))).all()
    assert (a != mt.sample_next(z, 8)).any()
    assert mt.sample_next(np.zeros(5), 7) == a[0]                          # (V,) gives an int


@pytest.mark.parametrize("kwargs, error, words", [
    ({"temperature": -1}, ValueError, "temperature must be finite and >= 0"),
    ({"temperature": float("nan")}, ValueError, "temperature"),
    ({"temperature": "hot"}, TypeError, "temperature"),
    ({"top_k": 0}, ValueError, "top_k"),
    ({"top_k": 4}, ValueError, "top_k must be at most the vocabulary size V = 3"),
    ({"top_p": 0}, ValueError, r"top_p must be in \(0, 1\]"),
    ({"top_p": 1.5}, ValueError, "top_p"),
])
def test_sampling_options_are_checked(kwargs, error, words):
    with pytest.raises(error, match=words):
        mt.next_token_probs(np.zeros(3), **kwargs)


@pytest.mark.parametrize("logits, error, words", [
    (np.array([1.0, np.nan]), ValueError, "NaN"),
    (np.array([1, 2]), TypeError, "float"),
    (np.full(3, -np.inf), ValueError, "every logit of a row is -inf"),
    (np.zeros((2, 2, 2)), ValueError, r"\(B, V\) or \(V,\)"),
    ([0.0, 1.0], TypeError, "numpy.ndarray"),
])
def test_bad_logits_are_named(logits, error, words):
    with pytest.raises(error, match=words):
        mt.next_token_probs(logits)


def test_greedy_generation_matches_rereading_the_whole_text():
    """generate() feeds each drawn token back through step(); at temperature 0 that must be what
    a fresh forward over the prime and everything written so far would pick."""
    vocab = mt.CharVocab.from_text("abcdefgh ")
    lm = mt.LanguageModel("gru", len(vocab), 6, dtype=np.float64, seed=3)
    got = mt.generate(lm, vocab, "bad cab", 12, temperature=0)
    written = "bad cab"
    for _ in range(12):
        logits, _ = lm.forward(vocab.encode(written)[:, None])
        written += vocab.symbols[int(np.argmax(logits[-1, 0]))]
    assert got == written[len("bad cab"):]
    assert mt.generate(lm, vocab, "bad", 20, rng=5) == mt.generate(lm, vocab, "bad", 20, rng=5)
    with pytest.raises(ValueError, match="prime"):
        mt.generate(lm, vocab, "", 5)


# ---------------------------------------------------------------- metrics
def test_bits_perplexity_and_unigram_entropy():
    assert mt.bits_per_char(math.log(2)) == pytest.approx(1.0)
    assert mt.bits_per_char(math.log(8)) == pytest.approx(3.0)
    assert mt.perplexity(math.log(5)) == pytest.approx(5.0)
    assert mt.unigram_bits(np.array([0, 1, 0, 1])) == pytest.approx(1.0)
    assert mt.unigram_bits(np.array([3, 3, 3])) == 0.0
    assert mt.unigram_bits(np.array([0, 1, 2, 3] * 5)) == pytest.approx(2.0)
    assert mt.unigram_bits(np.array([0, 0, 0, 1])) == pytest.approx(
        -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    with pytest.raises(ValueError, match="nll"):
        mt.bits_per_char(-0.1)
    with pytest.raises(TypeError, match="nll"):
        mt.perplexity("2")


def test_stream_nll_is_the_cross_entropy_of_the_whole_rows():
    torch = _torch()
    ids = np.random.default_rng(1).integers(0, 6, 80)
    s = mt.Stream(ids, 4, 3)
    lm = mt.LanguageModel("gru", 6, 5, dtype=np.float64, seed=2)
    logits, _ = lm.forward(s.rows[:-1])
    want = torch.nn.functional.cross_entropy(torch.from_numpy(logits.reshape(-1, 6)),
                                             torch.from_numpy(s.rows[1:].reshape(-1))).item()
    assert mt.stream_nll(lm, s) == pytest.approx(want, rel=1e-12)
    assert lm.training                                          # left as it was found


# ---------------------------------------------------------------- weight tying
def _tied_problem(tie=True, variant="gru"):
    rng = np.random.default_rng(0)
    lm = mt.LanguageModel(variant, vocab_size=6, hidden_size=4, tie=tie, dtype=np.float64,
                          seed=1)
    idx = rng.integers(0, 6, (5, 3))
    R = rng.normal(size=(5, 3, 6))                               # L = sum(logits * R)
    return lm, idx, R


@pytest.mark.parametrize("variant", ["gru", "lstm"])
def test_tied_gradients_equal_finite_differences(variant):
    lm, idx, R = _tied_problem(variant=variant)
    assert "head.W" not in lm.params and "emb.E" in lm.params
    lm.zero_grad()
    logits, _ = lm.forward(idx)
    lm.backward(R)
    f = lambda: float(np.sum(lm.forward(idx)[0] * R))
    for name, p in lm.params.items():
        err = relative_error(lm.grads[name], numeric_gradient(f, p))
        assert err < TOL, f"tied {variant} d{name}: relative error {err:.2e} > {TOL:.0e}"


def test_tied_gradient_is_the_sum_of_both_uses():
    """dE of the tied model = dE of the lookup + dW^T of the output layer, taken from an untied
    model whose W is set to E^T (the same function, two matrices)."""
    tied, idx, R = _tied_problem(tie=True)
    untied, _, _ = _tied_problem(tie=False)
    untied.load_state_dict({**tied.state_dict(), "head.W": tied.params["emb.E"].T.copy()})
    for m in (tied, untied):
        m.zero_grad()
        m.forward(idx)
        m.backward(R)
    lookup, output = untied.grads["emb.E"], untied.grads["head.W"].T
    assert np.abs(lookup).max() > 0 and np.abs(output).max() > 0     # both uses contribute
    np.testing.assert_allclose(tied.grads["emb.E"], lookup + output, rtol=1e-12, atol=1e-14)
    assert tied.num_params() == untied.num_params() - 6 * 4


def test_tied_model_matches_torch():
    torch = _torch()
    lm, idx, R = _tied_problem()
    gru = lm.rnn.to_torch()
    E = torch.tensor(lm.params["emb.E"], requires_grad=True)
    b = torch.tensor(lm.params["head.b"], requires_grad=True)
    ys, _ = gru(torch.nn.functional.embedding(torch.from_numpy(idx), E))
    logits = torch.nn.functional.linear(ys, E, b)                # weight = E: tied in PyTorch
    (logits * torch.from_numpy(R)).sum().backward()
    lm.zero_grad()
    ours, _ = lm.forward(idx)
    lm.backward(R)
    np.testing.assert_allclose(ours, logits.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lm.grads["emb.E"], E.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(lm.grads["head.b"], b.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_tied_linear_alone():
    emb = Embedding(5, 3, dtype=np.float64, seed=0)
    head = Linear(3, 5, dtype=np.float64, seed=1, tied_to=emb)
    plain = Linear(3, 5, dtype=np.float64, seed=1)
    assert set(head.params) == {"b"}
    np.testing.assert_array_equal(head.params["b"], plain.params["b"])   # same seed, same b
    assert head.weight.base is emb.params["E"] or np.shares_memory(head.weight, emb.params["E"])
    x = np.random.default_rng(2).normal(size=(4, 3))
    np.testing.assert_allclose(head.forward(x), x @ emb.params["E"].T + head.params["b"])
    assert head.config()["tied_to"] == "Embedding(5, 3, dtype=float64)"


@pytest.mark.parametrize("tied_to, error, words", [
    (Embedding(4, 3, dtype=np.float64), ValueError, r"Embedding\(5, 3\).*got Embedding\(4, 3\)"),
    (Embedding(5, 3, dtype=np.float32), TypeError, "dtype float32"),
    (np.zeros((5, 3)), TypeError, "got ndarray"),
    ("Embedding(5, 3, dtype=float64)", TypeError, "load_checkpoint"),
])
def test_tie_errors_name_the_argument(tied_to, error, words):
    with pytest.raises(error, match=words):
        Linear(3, 5, dtype=np.float64, tied_to=tied_to)


def test_tie_needs_embedding_width_equal_to_hidden():
    with pytest.raises(ValueError, match="embedding_dim must equal the RNN's output size 8"):
        mt.LanguageModel("gru", 10, 8, embedding_dim=4, tie=True)


def test_a_tied_model_checkpoints_and_trains(tmp_path):
    lm, idx, R = _tied_problem()
    opt = mg.optim.Adam(lm.params, lr=0.01)
    lm.zero_grad()
    lm.forward(idx)
    lm.backward(R)
    before = lm.params["emb.E"].copy()
    opt.step(lm.grads)
    assert not np.allclose(before, lm.params["emb.E"])
    path = tmp_path / "lm.npz"
    mg.save_checkpoint(path, lm, opt)
    other, _, _ = _tied_problem()
    mg.load_checkpoint(path, other)
    np.testing.assert_array_equal(other.params["emb.E"], lm.params["emb.E"])
    with pytest.raises(ValueError, match="LanguageModel"):    # the tie cannot be rebuilt alone
        mg.load_checkpoint(path)


def test_language_model_step_matches_forward():
    lm = mt.LanguageModel("gru", 9, 5, num_layers=2, dtype=np.float64, seed=4).eval()
    idx = np.random.default_rng(0).integers(0, 9, (6, 2))
    whole, _ = lm.forward(idx)
    state = None
    for t in range(6):
        logits, state = lm.step(idx[t], state)
        np.testing.assert_allclose(logits, whole[t], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"idx_t must be a 1-D \(B,\)"):
        lm.step(idx, state)
    with pytest.raises(ValueError, match=r"idx must be a 2-D \(T, B\)"):
        lm.forward(idx[0])
