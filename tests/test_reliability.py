"""Nothing silently wrong: what a careless or hostile user does gets the right result or a clear
error, and no file the user had is lost. One section per kind of defect, as in the issue."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import minigru as mg
from minigru import losses, optim
from minigru.checkpoint import load_checkpoint, save_checkpoint
from minigru.cli import main

T, B, I, H = 5, 3, 2, 4
CPU = ("numpy", "numba")


def _gradients(backward_result):
    dx, dstate0, grads = backward_result
    return [dx, *(dstate0 if isinstance(dstate0, tuple) else (dstate0,)), *grads.values()]


# ---------------------------------------------------------------- mutation after the forward

@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("variant", mg.VARIANTS)
def test_backward_differentiates_the_forward_that_ran(variant, backend):
    """x, state0 and p overwritten between forward and backward (a reused input buffer, an
    optimiser step) do not change the gradients."""
    cell = mg.cell(variant, backend)
    rng = np.random.default_rng(0)
    p = cell.init(I, H, rng=rng)
    x = rng.normal(size=(T, B, I))
    state0 = tuple(np.abs(rng.normal(size=(B, H))) for _ in cell.variant.state)  # (n ≥ 0)
    state0 = state0 if len(state0) > 1 else state0[0]
    ys, _, cache = cell.forward(p, x, state0)
    dys = rng.normal(size=ys.shape)
    expected = _gradients(cell.backward(p, cache, dys))

    ys, _, cache = cell.forward(p, x, state0)
    x[:] = 0
    for s in (state0 if isinstance(state0, tuple) else (state0,)):
        s += 1.0
    for a in p.values():
        a *= 0.5
    got = _gradients(cell.backward(p, cache, dys))
    for i, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_array_equal(a, b, err_msg=f"{variant} {backend}: gradient {i}")


@pytest.mark.parametrize("backend", CPU)
def test_rnn_backward_after_the_input_buffer_is_reused_and_an_optimiser_step(backend):
    rnn = mg.RNN("gru", I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=0,
                 backend=backend)
    x = np.random.default_rng(1).normal(size=(T, B, I))
    ys, _ = rnn.forward(x)
    dys = np.ones_like(ys)
    dx_expected = rnn.backward(dys)
    expected = {k: g.copy() for k, g in rnn.grads.items()}

    rnn.zero_grad()
    ys, _ = rnn.forward(x)
    x[:] = 0                                          # the next batch read into the buffer
    optim.SGD(rnn.params, lr=0.5).step(expected)      # and the parameters moved
    dx = rnn.backward(dys)
    np.testing.assert_array_equal(dx, dx_expected)
    for k, g in rnn.grads.items():
        np.testing.assert_array_equal(g, expected[k], err_msg=k)


@pytest.mark.parametrize("tied", [False, True])
def test_linear_backward_after_its_input_and_weights_change(tied):
    emb = mg.Embedding(3, 4, dtype=np.float64, seed=0)
    head = mg.Linear(4, 3, dtype=np.float64, seed=1, tied_to=emb if tied else None)
    x = np.random.default_rng(2).normal(size=(T, B, 4))
    dy = np.ones((T, B, 3))
    head.forward(x)
    dx_expected = head.backward(dy)
    expected = {k: g.copy() for k, g in (emb.grads if tied else head.grads).items()}
    head.zero_grad()
    emb.zero_grad()
    head.forward(x)
    x[:] = 0
    for a in (*head.params.values(), *emb.params.values()):
        a += 1.0
    np.testing.assert_array_equal(head.backward(dy), dx_expected)
    for k, g in (emb.grads if tied else head.grads).items():
        np.testing.assert_array_equal(g, expected[k], err_msg=k)


# ---------------------------------------------------------------- checks that know the arrays

@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("variant", ["gru", "lstm", "ligru", "rru"])
def test_a_parameter_reshaped_in_place_after_a_checked_step_is_refused(variant, backend):
    cell = mg.cell(variant, backend)
    p = cell.init(12, 8, rng=np.random.default_rng(0))
    x = np.zeros((1, 12))
    state = (np.zeros((1, 8)),) * 2 if variant == "lstm" else np.zeros((1, 8))
    _, state = cell.step(p, x, state)
    _, state = cell.step(p, x, state)                 # the fast path now
    key = "W" if "W" in p else "J"
    rows, cols = p[key].shape
    p[key].shape = (cols, rows)                       # the same data, read as another shape
    with pytest.raises(ValueError, match=r"must have shape"):
        cell.step(p, x, state)
    with pytest.raises(ValueError, match=r"must have shape"):
        cell.forward(p, x[None])


@pytest.mark.parametrize("backend", CPU)
def test_a_renamed_key_after_a_checked_call_is_refused_by_name(backend):
    cell = mg.cell("gru", backend)
    p = cell.init(3, 4, rng=np.random.default_rng(0))
    x = np.zeros((2, 3))
    _, h = cell.step(p, x)
    _, h = cell.step(p, x, h)
    cell.forward(p, x[None])
    p["bias"] = p.pop("c")                            # the last key: the arrays keep their order
    with pytest.raises(ValueError, match=r"p must have exactly the keys \['U', 'W', 'b', 'c'\]; "
                                         r"missing \['c'\], unexpected \['bias'\]"):
        cell.step(p, x, h)
    with pytest.raises(ValueError, match=r"missing \['c'\], unexpected \['bias'\]"):
        cell.forward(p, x[None])


@pytest.mark.parametrize("backend", CPU)
def test_a_dtype_of_another_size_set_in_place_after_a_checked_step_is_refused(backend):
    cell = mg.cell("gru", backend)
    p = cell.init(3, 4, rng=np.random.default_rng(0))
    x = np.zeros((2, 3))
    _, h = cell.step(p, x)
    _, h = cell.step(p, x, h)
    p["U"].dtype = np.float32                         # float64 bits read as twice as many
    with pytest.raises(TypeError, match=r"p mixes dtypes: p\['U'\] is float32"):
        cell.step(p, x, h)


# ---------------------------------------------------------------- the command line

@pytest.mark.parametrize("argv", [
    ["gradcheck", "--variant", ","], ["gradcheck", "--variant", ""],
    ["gradcheck", "--eps", "0"], ["gradcheck", "--eps", "nan"], ["gradcheck", "--eps=inf"],
    ["gradcheck", "--steps", "0"], ["gradcheck", "--batch", "-1"],
    ["gradcheck", "--hidden-size", "0"], ["gradcheck", "--seed", "-1"],
    ["bench", "--variant", ","],
])
def test_cli_arguments_that_would_check_nothing_or_crash_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_cli_demo_out_that_is_a_file_fails_before_training(tmp_path, capsys):
    a_file = tmp_path / "figures"
    a_file.write_text("mine")
    with pytest.raises(SystemExit) as e:
        main(["demo", "binary-addition", "--out", str(a_file), "--no-progress"])
    assert e.value.code == 2
    assert "is a file, not a folder for the figures" in capsys.readouterr().err
    assert a_file.read_text() == "mine"
    with pytest.raises(SystemExit):
        main(["demo", "binary-addition", "--out", str(a_file / "sub"), "--no-progress"])
    assert "cannot make the folder" in capsys.readouterr().err


def test_cli_cuda_without_a_gpu_is_an_error_line_not_a_traceback(capsys):
    from backend_helpers import cuda_runs_here
    if cuda_runs_here():
        pytest.skip("a GPU or the simulator is here: backend='cuda' runs")
    assert main(["gradcheck", "--backend", "cuda", "--variant", "gru"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minigru gradcheck: error: backend='cuda' needs")
    assert "Traceback" not in err


# ---------------------------------------------------------------- fit

def _model(dtype=np.float64, seed=0):
    model = mg.Model(rnn=mg.RNN("gru", I, H, dtype=dtype, seed=seed),
                     head=mg.Linear(H, 1, dtype=dtype, seed=seed + 1))
    return model, optim.Adam(model.params, lr=1e-2)


def _batches(dtype=np.float64, n=4):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(T, 8 * n, I)).astype(dtype)
    y = x.sum(axis=0)[:, :1]
    return [(x[:, i:i + 8], y[i:i + 8]) for i in range(0, 8 * n, 8)]


def _step(model):
    def step(batch):
        x, y = batch
        ys, _ = model.rnn.forward(x)
        loss, dpred = losses.mse(model.head.forward(ys[-1]), y)
        dys = np.zeros_like(ys)
        dys[-1] = model.head.backward(dpred)
        model.rnn.backward(dys)
        return loss
    return step


def test_fit_with_no_batches_names_the_epoch_and_writes_nothing(tmp_path):
    model, opt = _model()
    with pytest.raises(ValueError, match="batches is empty"):
        mg.fit(model, _step(model), [], opt)
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    path = tmp_path / "ck.npz"
    good = _batches()
    with pytest.raises(ValueError, match=r"batches\(1\) gave no batches: epoch 1 would train "
                                         r"nothing"):
        mg.fit(model, _step(model), lambda epoch: good if epoch == 0 else [], opt, epochs=3,
               scheduler=sched, checkpoint=path)
    assert sched.last_epoch == 1                      # stepped after epoch 0 only
    assert load_checkpoint(path)["extra"]["epoch"] == 1


@pytest.mark.parametrize("value", ["0.5", True, None, (0.5,), np.array([0.5]), np.array(0.5)])
def test_fit_refuses_a_step_that_returns_no_float(value):
    model, opt = _model()
    with pytest.raises(TypeError, match=r"step must return the loss as a float, got "
                                        rf"{type(value).__name__}"):
        mg.fit(model, lambda batch: value, _batches(), opt)


def test_fit_takes_numpy_scalar_losses_and_evaluations_with_checkpoints(tmp_path):
    model, opt = _model(np.float32)
    batches = _batches(np.float32)
    step = _step(model)

    def evaluate(m):
        return {"mse": np.float32(0.25), "n": np.int64(3)}

    history = mg.fit(model, lambda b: np.float32(step(b)), batches, opt, epochs=2,
                     evaluate=evaluate, checkpoint=tmp_path / "ck.npz")
    assert history.eval == [{"mse": 0.25, "n": 3.0}] * 2
    assert all(type(v) is float for e in history.eval for v in e.values())
    assert load_checkpoint(tmp_path / "ck.npz")["extra"]["history"]["eval"][1]["mse"] == 0.25


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(checkpoint="no/such/folder/ck.npz"), FileNotFoundError, "does not exist"),
    (dict(clip=-1.0), ValueError, "clip must be a finite number > 0"),
    (dict(clip="1"), TypeError, "clip must be a positive number"),
    (dict(evaluate=3), TypeError, "evaluate must be None or a function"),
    (dict(rng=np.random.RandomState(0)), TypeError, "rng must be None or a numpy.random.Gen"),
    (dict(progress="yes"), TypeError, "progress must be a bool"),
    (dict(resume=1), TypeError, "resume must be a bool"),
])
def test_fit_checks_every_argument_before_the_first_step(kwargs, exc, message):
    model, opt = _model()
    calls = []
    with pytest.raises(exc, match=message):
        mg.fit(model, lambda batch: calls.append(batch) or 0.0, _batches(), opt, **kwargs)
    assert calls == []


def test_fit_checks_the_optimiser_and_schedule_before_the_first_step():
    model, opt = _model()
    other, other_opt = _model(seed=5)
    calls = []

    def step(batch):
        calls.append(batch)
        return 0.0

    with pytest.raises(TypeError, match="optimizer must be an mg.optim optimiser"):
        mg.fit(model, step, _batches(), "adam")
    with pytest.raises(ValueError, match="optimizer must update exactly model.params"):
        mg.fit(model, step, _batches(), other_opt)
    with pytest.raises(ValueError, match="scheduler drives another optimiser"):
        mg.fit(model, step, _batches(), opt, scheduler=optim.StepLR(other_opt, step_size=1))
    assert calls == []


def test_resuming_a_shuffled_run_without_its_generator_warns(tmp_path):
    path = tmp_path / "ck.npz"
    data = _batches()

    def shuffled(epoch):
        order = np.random.default_rng().permutation(len(data))
        return [data[i] for i in order]

    model, opt = _model()
    mg.fit(model, _step(model), shuffled, opt, epochs=1, checkpoint=path)
    model, opt = _model()
    with pytest.warns(RuntimeWarning, match="another data order"):
        mg.fit(model, _step(model), shuffled, opt, epochs=2, checkpoint=path, resume=True)
    model, opt = _model()
    rng = np.random.default_rng(0)
    mg.fit(model, _step(model), data, opt, epochs=1, checkpoint=path, rng=rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                # a list of batches, or rng=: no warning
        mg.fit(model, _step(model), data, opt, epochs=2, checkpoint=path, resume=True, rng=rng)
        mg.fit(model, _step(model), lambda e: data, opt, epochs=3, checkpoint=path,
               resume=True, rng=rng)


def test_resuming_from_a_file_fit_did_not_write_changes_nothing(tmp_path):
    model, opt = _model()
    path = save_checkpoint(tmp_path / "plain.npz", model, opt)
    before = {k: v.copy() for k, v in model.params.items()}
    model.params["head.W"] += 1.0
    moved = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(ValueError, match="was not written by fit"):
        mg.fit(model, _step(model), _batches(), opt, checkpoint=path, resume=True)
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, moved[k])
    assert not np.array_equal(before["head.W"], moved["head.W"])


# ---------------------------------------------------------------- bias=False end to end

@pytest.mark.parametrize("variant", ["gru", "lstm", "rnn"])
def test_bias_false_from_torch_to_torch_is_exact(variant):
    torch = pytest.importorskip("torch", reason="PyTorch is the test-time oracle")
    kind = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}[variant]
    torch.manual_seed(0)
    module = kind(I, H, num_layers=2, bias=False, bidirectional=True).double()
    rnn = mg.RNN.from_torch(module)
    assert rnn.config()["bias"] is False
    assert sorted(rnn.params) == sorted(f"{w}_l{layer}{d}" for w in "WU" for layer in (0, 1)
                                        for d in ("", "_reverse"))
    back = rnn.to_torch()
    assert back.bias is False
    for (name, a), (name_b, b) in zip(module.named_parameters(), back.named_parameters()):
        assert name == name_b and torch.equal(a, b), name

    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    y, _ = module(x)
    y.sum().backward()
    ys, _ = rnn.forward(x.detach().numpy())
    dx = rnn.backward(np.ones_like(ys))
    np.testing.assert_allclose(ys, y.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(dx, x.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(rnn.grads["U_l1_reverse"],
                               module.weight_hh_l1_reverse.grad.numpy().T, atol=1e-12)


@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("variant", ["gru", "lstm", "rnn"])
def test_bias_false_cells_check_their_gradients_and_step(variant, backend):
    checks = mg.gradcheck(variant, backend, options={"bias": False})
    assert [c.tensor for c in checks][:2] == ["dW", "dU"] and "db" not in [c.tensor
                                                                          for c in checks]
    assert all(c.ok for c in checks), [(c.tensor, c.error) for c in checks]
    cell = mg.cell(variant, backend, bias=False)
    p = cell.init(I, H, rng=np.random.default_rng(0))
    assert sorted(p) == ["U", "W"]
    assert cell.num_params(I, H) == sum(a.size for a in p.values())
    x = np.random.default_rng(1).normal(size=(T, 1, I))
    ys, _, _ = cell.forward(p, x)
    state = None
    for t in range(T):                                # the prepared streaming step too
        y, state = cell.step(p, x[t], state)
        np.testing.assert_allclose(y, ys[t], atol=1e-12)


def test_bias_false_round_trips_a_checkpoint(tmp_path):
    model = mg.Model(rnn=mg.RNN("lstm", I, H, bias=False, seed=0), head=mg.Linear(H, 1))
    path = save_checkpoint(tmp_path / "ck.npz", model)
    loaded = load_checkpoint(path)["model"]
    assert loaded.rnn.bias is False and sorted(loaded.params) == sorted(model.params)
    with pytest.raises(ValueError, match=r"model.rnn.bias is False, this model's is True"):
        load_checkpoint(path, mg.Model(rnn=mg.RNN("lstm", I, H), head=mg.Linear(H, 1)))
    with pytest.raises(ValueError, match="mingru has none it can do without"):
        mg.RNN("mingru", I, H, bias=False)


def test_a_checkpoint_from_before_bias_existed_loads_with_bias(tmp_path):
    model = mg.RNN("gru", I, H, seed=0)
    path = save_checkpoint(tmp_path / "ck.npz", model)
    meta, arrays = _read(path)
    del meta["model"]["config"]["bias"]
    _write(path, meta, arrays)
    assert load_checkpoint(path)["model"].bias is True
    load_checkpoint(path, mg.RNN("gru", I, H))


# ---------------------------------------------------------------- checkpoints

def _read(path):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return json.loads(arrays.pop("meta.json").tobytes()), arrays


def _write(path, meta, arrays):
    arrays = {**arrays, "meta.json": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _training_state(tmp_path):
    model, opt = _model()
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    rng = np.random.default_rng(7)
    mg.fit(model, _step(model), _batches(), opt, epochs=1, scheduler=sched, rng=rng,
           checkpoint=tmp_path / "ck.npz")
    return tmp_path / "ck.npz", model, opt, sched, rng


def _snapshot(model, opt, sched, rng):
    return (json.dumps(model.rng_states()), {k: v.copy() for k, v in model.params.items()},
            json.dumps(opt.state_dict(), default=lambda a: a.tolist()),
            json.dumps(sched.state_dict()), json.dumps(rng.bit_generator.state))


@pytest.mark.parametrize("break_it", ["optimizer class", "scheduler class", "no data rng",
                                      "optimizer state shape", "model rng state"])
def test_a_checkpoint_that_does_not_fit_changes_nothing(tmp_path, break_it):
    path, _, _, _, _ = _training_state(tmp_path)
    meta, arrays = _read(path)
    model, opt = _model(seed=9)                       # other weights than the file's
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    rng = np.random.default_rng(11)
    if break_it == "optimizer class":
        opt = optim.SGD(model.params, lr=0.1)
        sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    elif break_it == "scheduler class":
        sched = optim.LinearLR(opt, start_factor=0.5, total_iters=2)
    elif break_it == "no data rng":
        meta["rng"]["data"] = None
    elif break_it == "optimizer state shape":
        key = meta["optimizer"]["state"]["state"]["exp_avg"]["head.W"]["__array__"]
        arrays[key] = np.zeros((1, 1))
    elif break_it == "model rng state":
        meta["rng"]["model"]["rnn"] = {"bit_generator": "PCG64", "state": "garbage"}
    _write(path, meta, arrays)
    before = _snapshot(model, opt, sched, rng)
    with pytest.raises(ValueError):
        load_checkpoint(path, model, opt, sched, rng)
    after = _snapshot(model, opt, sched, rng)
    assert before[0] == after[0] and before[2:] == after[2:]
    for k, v in model.params.items():
        np.testing.assert_array_equal(v, before[1][k], err_msg=k)


def test_every_single_bit_flip_is_refused_or_loads_the_same(tmp_path):
    """A flipped bit anywhere in a checkpoint gives the documented ValueError, or (in the zip's
    unchecked fields: dates, attributes) loads exactly what was saved."""

    def state():
        model = mg.Model(head=mg.Linear(2, 1, dtype=np.float64, seed=0))
        opt = optim.Adam(model.params, lr=0.1)
        return model, opt, optim.StepLR(opt, step_size=1), np.random.default_rng(5)

    model, opt, sched, rng = state()
    for g in model.grads.values():
        g[...] = 1.0
    opt.step(model.grads)
    path = save_checkpoint(tmp_path / "ck.npz", model, opt, sched, rng, extra={"epoch": 1})
    data = open(path, "rb").read()
    want = load_checkpoint(path)
    bad = tmp_path / "flipped.npz"
    outcomes = {"refused": 0, "same": 0}
    m, o, s, r = state()
    for i in range(len(data)):                        # one bit of every byte, all 8 positions
        flipped = bytearray(data)
        flipped[i] ^= 1 << (i % 8)
        bad.write_bytes(bytes(flipped))
        try:
            got = load_checkpoint(bad, m, o, s, r)
        except ValueError:
            outcomes["refused"] += 1
            continue
        assert got["meta"] == want["meta"], f"byte {i}: the metadata differ"
        for k, v in m.params.items():
            np.testing.assert_array_equal(v, model.params[k], err_msg=f"byte {i}: {k}")
        outcomes["same"] += 1
    assert outcomes["refused"] > len(data) // 2, outcomes   # most bytes are checked ones


def test_a_renamed_member_is_refused_not_a_key_error(tmp_path):
    path, model, opt, sched, rng = _training_state(tmp_path)
    meta, arrays = _read(path)
    key = meta["optimizer"]["state"]["state"]["exp_avg"]["head.W"]["__array__"]
    renamed = {**arrays, "state/999": arrays[key]}
    del renamed[key]
    _write(tmp_path / "renamed.npz", meta, renamed)
    with pytest.raises(ValueError, match=rf"refers to arrays it does not hold: {key}"):
        load_checkpoint(tmp_path / "renamed.npz", model, opt)
    arrays["model/rnn.W_m0"] = arrays.pop("model/rnn.W_l0")
    _write(path, meta, arrays)
    with pytest.raises(ValueError, match=r"missing \['rnn.W_l0'\], unexpected \['rnn.W_m0'\]"):
        load_checkpoint(path)


def test_files_that_are_not_checkpoints_say_what_they_are(tmp_path):
    npy = tmp_path / "a.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ValueError, match=r"is a single \.npy array, not a minigru checkpoint"):
        load_checkpoint(npy)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a readable minigru checkpoint"):
        load_checkpoint(text)
    path, _, _, _, _ = _training_state(tmp_path)
    meta, arrays = _read(path)
    for change, message in [
            (lambda m: m.pop("rng"), r"meta.json has the keys"),
            (lambda m: m["rng"].update(data={"bit_generator": "PCG64", "state": 3}),
             "the data generator is not a valid PCG64 state"),
            (lambda m: m["rng"].update(data={"bit_generator": "os.system"}),
             "the data generator has no valid bit-generator state"),
            (lambda m: m.update(model=[1, 2]), r"meta.json's model must be"),
            (lambda m: m.update(extra="x"), r"meta.json's extra must be an object")]:
        broken = json.loads(json.dumps(meta))
        change(broken)
        _write(tmp_path / "broken.npz", broken, arrays)
        with pytest.raises(ValueError, match=message):
            load_checkpoint(tmp_path / "broken.npz")
    garbage = json.loads(json.dumps(meta))
    garbage["model"]["config"]["rnn"]["hidden_size"] = "wide"
    _write(tmp_path / "garbage.npz", garbage, arrays)
    with pytest.raises(ValueError, match="records a model that cannot be built"):
        load_checkpoint(tmp_path / "garbage.npz")


def test_a_checkpoint_from_another_backend_loads_here(tmp_path):
    from backend_helpers import cuda_runs_here
    model = mg.Model(rnn=mg.RNN("gru", I, H, seed=0, backend="numba"), head=mg.Linear(H, 1))
    path = save_checkpoint(tmp_path / "ck.npz", model)
    assert load_checkpoint(path, backend="numpy")["model"].rnn.backend == "numpy"
    meta, arrays = _read(path)
    meta["model"]["config"]["rnn"]["backend"] = "cuda"
    _write(path, meta, arrays)
    if cuda_runs_here():
        assert load_checkpoint(path)["model"].rnn.backend == "cuda"
    else:
        with pytest.warns(RuntimeWarning, match=r"ran on backend 'cuda', which cannot run here"):
            loaded = load_checkpoint(path)["model"]
        assert loaded.rnn.backend == "numba"
    for k, v in model.params.items():
        np.testing.assert_array_equal(load_checkpoint(path, backend="numpy")["model"].params[k],
                                      v)


def test_saving_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    model = mg.Linear(2, 1, seed=0)
    target = tmp_path / "runs" / "ck.npz"
    target.parent.mkdir()
    save_checkpoint(target, model)
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    model.params["W"] += 1.0
    save_checkpoint(link, model)
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(load_checkpoint(target)["model"].params["W"],
                                  model.params["W"])


def test_resaving_keeps_a_private_files_permissions(tmp_path):
    path = save_checkpoint(tmp_path / "ck.npz", mg.Linear(2, 1, seed=0))
    os.chmod(path, 0o600)
    save_checkpoint(path, mg.Linear(2, 1, seed=1))
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_a_save_that_cannot_be_written_names_the_file(tmp_path):
    target = tmp_path / "missing" / "ck.npz"
    with pytest.raises(FileNotFoundError, match=rf"cannot write '{target}'"):
        save_checkpoint(target, mg.Linear(2, 1, seed=0))


def test_a_killed_saves_temporary_file_is_removed_by_the_next_save(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".ck.npz.{dead}.tmp-abc123"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / f".other.npz.{dead}.tmp-abc123"  # another file's: not ours to remove
    other.write_bytes(b"x")
    save_checkpoint(tmp_path / "ck.npz", mg.Linear(2, 1, seed=0))
    assert not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ck.npz", other.name])


# ---------------------------------------------------------------- messages that say what is wrong

@pytest.mark.parametrize("lengths, exc, message", [
    (3, TypeError, r"lengths must hold one length per batch row, .* got the single int 3"),
    ([], ValueError, r"lengths must hold one length per batch row, .* got an empty list"),
    (np.array(3), ValueError, r"got shape \(\)"),
])
def test_lengths_that_are_not_one_per_row(lengths, exc, message):
    rnn = mg.RNN("gru", I, H)
    with pytest.raises(exc, match=message):
        rnn.forward(np.zeros((T, B, I), np.float32), lengths=lengths)


@pytest.mark.parametrize("make", [
    lambda seed: mg.RNN("gru", I, H, seed=seed),
    lambda seed: mg.cell("rru", seed=seed),
    lambda seed: mg.Linear(2, 3, seed=seed),
    lambda seed: mg.Embedding(2, 3, seed=seed),
])
@pytest.mark.parametrize("seed, exc", [("abc", TypeError), (-1, ValueError), (1.5, TypeError)])
def test_bad_seeds_are_named(make, seed, exc):
    with pytest.raises(exc, match=r"seed must be None or an int >= 0"):
        make(seed)


def test_a_subclass_of_nn_gru_is_taken_with_its_weights():
    torch = pytest.importorskip("torch", reason="PyTorch is the test-time oracle")

    class MyGRU(torch.nn.GRU):
        pass

    module = MyGRU(I, H).double()
    rnn = mg.RNN.from_torch(module)
    x = torch.randn(T, B, I, dtype=torch.float64)
    np.testing.assert_allclose(rnn.forward(x.numpy())[0], module(x)[0].detach().numpy(),
                               atol=1e-12)


def test_switching_the_backend_between_forward_and_backward_keeps_the_backward():
    rnn = mg.RNN("gru", I, H, dtype=np.float64, seed=0, backend="numba")
    x = np.random.default_rng(0).normal(size=(T, B, I))
    ys, _ = rnn.forward(x)
    expected = rnn.backward(np.ones_like(ys))
    ys, _ = rnn.forward(x)
    rnn.backend = "numpy"
    np.testing.assert_allclose(rnn.backward(np.ones_like(ys)), expected, atol=1e-12)
    assert rnn.backend == "numpy"


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0, -2])
def test_rru_multiplier_must_be_finite_and_positive(value):
    with pytest.raises(ValueError, match=r"multiplier must be a finite number > 0"):
        mg.cell("rru", multiplier=value)


def test_a_masked_array_is_refused_not_its_mask_ignored():
    cell = mg.cell("gru")
    p = cell.init(I, H, rng=np.random.default_rng(0))
    x = np.ma.masked_array(np.ones((T, B, I)), mask=np.zeros((T, B, I), bool))
    with pytest.raises(TypeError, match=r"x is a numpy.ma.MaskedArray, whose mask minigru would "
                                        r"ignore"):
        cell.forward(p, x)
    with pytest.raises(TypeError, match="is a numpy.ma.MaskedArray"):
        mg.RNN("gru", I, H, dtype=np.float64).forward(x)
    memmap_like = np.lib.stride_tricks.as_strided(np.ones((T, B, I)))   # a plain view: fine
    cell.forward(p, memmap_like)


def test_read_only_ligru_buffers_in_training_are_named():
    cell = mg.cell("ligru")
    p = cell.init(I, H, rng=np.random.default_rng(0))
    for b in cell.buffers.values():
        b.flags.writeable = False
    x = np.random.default_rng(1).normal(size=(T, B, I))
    with pytest.raises(ValueError, match=r"buffers\['running_mean'\] is read-only, but a "
                                         r"training forward updates"):
        cell.forward(p, x)
    cell.forward(p, x, training=False)                # evaluation only reads them


# ---------------------------------------------------------------- the package installs whole

def test_every_package_under_minigru_goes_into_the_wheel():
    """setup.py finds the packages, so a new one cannot be left out of the wheel."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.exists(os.path.join(root, "setup.py")):
        pytest.skip("not run from a source tree")
    on_disk = {os.path.relpath(d, root).replace(os.sep, ".")
               for d, _, files in os.walk(os.path.join(root, "minigru"))
               if "__init__.py" in files}
    listed = subprocess.run(
        [sys.executable, "-c", "import setuptools, sys; sys.argv = ['setup.py', '--name']; "
         "captured = {}; setuptools.setup = lambda **kw: captured.update(kw); "
         "exec(open('setup.py').read()); print('\\n'.join(captured['packages']))"],
        cwd=root, capture_output=True, text=True, check=True).stdout.split()
    assert on_disk | {"minigru.demos"} == set(listed)
    assert "minigru.cuda" in listed
    with open(os.path.join(root, "setup.cfg")) as f:
        assert "packages =" not in f.read()           # one list only: setup.py's


def test_cli_cells_of_your_own_are_checked_on_every_cpu_backend(tmp_path, capsys):
    """``--cells FILE`` registers a user's cells before the variant names are read."""
    cells = tmp_path / "mycells.py"
    cells.write_text(
        "import minigru as mg\n"
        "from minigru.cells import ONE, Gated, sigmoid, tanh\n"
        "def point(an, af, uf, h):\n"
        "    n, f = tanh(an), sigmoid(af + uf)\n"
        "    return (ONE - f) * h + f * n, n, f\n"
        "def point_backward(dh, h, h_new, n, f):\n"
        "    return (dh * f * (ONE - n * n), dh * (n - h) * f * (ONE - f), dh * (ONE - f))\n"
        "if 'leaky' not in mg.cells.REGISTRY:\n"
        "    mg.cells.register(Gated(name='leaky', paper='a test', equations='-',\n"
        "        x_blocks=('n', 'f'), h_blocks=('f',), summed=('f',), saves=('n', 'f'),\n"
        "        point=point, point_backward=point_backward))\n")
    for backend in CPU:
        assert main(["gradcheck", "--cells", str(cells), "--variant", "leaky",
                     "--backend", backend]) == 0
        assert "ok: all 5 tensors of 1 variant(s)" in capsys.readouterr().out, backend
    assert main(["variants", "--cells", str(cells)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("leaky")
    assert main(["gradcheck", "--cells", str(tmp_path / "none.py"), "--variant", "gru"]) == 2
    assert "no such file" in capsys.readouterr().err
