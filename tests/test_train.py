"""mg.fit and checkpoints: training, stopping at NaN, atomic saves, exact resumption."""

import functools
import json
import os

import numpy as np
import pytest

import minigru as mg
from minigru import losses, optim
from minigru.checkpoint import load_checkpoint, save_checkpoint

T, B, I, H = 6, 8, 2, 8


def make(seed=0, variant="gru", dtype=np.float64, **options):
    """A 2-layer RNN with dropout and a linear head; its optimiser and schedule."""
    model = mg.Model(rnn=mg.RNN(variant, I, H, num_layers=2, dropout=0.2, dtype=dtype,
                                seed=seed, **options),
                     head=mg.Linear(H, 1, dtype=dtype, seed=seed + 1))
    opt = optim.Adam(model.params, lr=1e-2)
    return model, opt, optim.StepLR(opt, step_size=2, gamma=0.5)


def data(dtype=np.float64):
    """Sum of the inputs: 64 sequences, targets (N, 1)."""
    rng = np.random.default_rng(42)
    x = rng.uniform(-1, 1, size=(T, 64, I)).astype(dtype)
    return x, x.sum(axis=(0, 2))[:, None] / 4


def step_fn(model):
    def step(batch):
        x, y = batch
        ys, _ = model.rnn.forward(x)
        pred = model.head.forward(ys[-1])
        loss, dpred = losses.mse(pred, y)
        dys = np.zeros_like(ys)
        dys[-1] = model.head.backward(dpred)
        model.rnn.backward(dys)
        return loss
    return step


def shuffled(rng, dtype=np.float64):
    x, y = data(dtype)

    def batches(epoch):
        order = rng.permutation(x.shape[1])
        for start in range(0, len(order), B):
            rows = order[start:start + B]
            yield x[:, rows], y[rows]
    return batches


def test_fit_learns_and_reports():
    model, opt, _ = make()
    rng = np.random.default_rng(0)
    seen = []
    history = mg.fit(model, step_fn(model), shuffled(rng), opt, epochs=6, rng=rng,
                     evaluate=lambda m: seen.append(m.training) or 1.0, progress=False)
    assert len(history.loss) == 6 * 8 and len(history.epoch_loss) == 6
    baseline = data()[1].var()                               # predicting the mean: MSE = var
    assert history.epoch_loss[-1] < 0.5 * baseline < history.epoch_loss[0]
    assert seen == [False] * 6 and model.training           # evaluated in eval mode
    assert history.eval == [1.0] * 6


def test_fit_steps_the_schedule_once_per_epoch():
    model, opt, sched = make()
    x, y = data()
    history = mg.fit(model, step_fn(model), [(x[:, :8], y[:8])] * 2, opt, epochs=6,
                     scheduler=sched, progress=False)
    assert history.lr == [1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3, 2.5e-3]


def test_fit_stops_at_a_nan_loss_naming_the_step():
    model, opt, _ = make()
    x, y = data()
    calls = []

    def step(batch):
        calls.append(1)
        return np.nan if len(calls) == 4 else step_fn(model)(batch)

    batches = [(x[:, :8], y[:8])] * 3
    with pytest.raises(FloatingPointError, match=r"the loss is nan at epoch 1, step 0 "
                                                 r"\(step 3 overall\)"):
        mg.fit(model, step, batches, opt, epochs=2, progress=False)


def test_fit_stops_at_an_infinite_gradient_naming_it():
    model, opt, _ = make()
    x, y = data()

    def step(batch):
        loss = step_fn(model)(batch)
        model.grads["head.b"][0] = np.inf
        return loss

    before = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(FloatingPointError, match=r"gradient of 'head.b' is not finite at "
                                                 r"epoch 0, step 0"):
        mg.fit(model, step, [(x[:, :8], y[:8])], opt, progress=False)
    for k in before:                                         # nothing was applied
        np.testing.assert_array_equal(model.params[k], before[k])


def test_progress_bar_on_request_and_quiet_otherwise(capsys):
    model, opt, _ = make()
    x, y = data()
    mg.fit(model, step_fn(model), [(x[:, :8], y[:8])] * 3, opt, progress=False)
    assert capsys.readouterr().err == ""
    mg.fit(model, step_fn(model), [(x[:, :8], y[:8])] * 3, opt, progress=True, desc="toy")
    err = capsys.readouterr().err
    assert "toy" in err and "loss=" in err


REGULARISED = {"input_dropout": 0.1, "recurrent_dropout": 0.2, "zoneout": 0.1,
               "weight_dropout": 0.2}


@pytest.mark.parametrize("variant,options", [("gru", {}), ("rru", {}), ("ligru", {}),
                                             ("lstm", REGULARISED), ("mgu", REGULARISED)])
def test_resumed_run_equals_the_uninterrupted_one_bit_for_bit(tmp_path, variant, options):
    """Stop after 2 of 5 epochs, rebuild everything from scratch with other seeds, resume: the
    losses are identical, bit for bit, to a run that never stopped (with the regularisers too:
    their masks come from the RNN's generator, which the checkpoint holds)."""
    make_ = functools.partial(make, **options)
    model, opt, sched = make_(variant=variant)
    rng = np.random.default_rng(0)
    whole = mg.fit(model, step_fn(model), shuffled(rng), opt, epochs=5, scheduler=sched,
                   rng=rng, checkpoint=tmp_path / "a.npz", progress=False)

    model, opt, sched = make_(variant=variant)
    rng = np.random.default_rng(0)
    mg.fit(model, step_fn(model), shuffled(rng), opt, epochs=2, scheduler=sched, rng=rng,
           checkpoint=tmp_path / "b.npz", progress=False)

    model, opt, sched = make_(seed=7, variant=variant)       # a fresh process, in effect
    rng = np.random.default_rng(123)
    resumed = mg.fit(model, step_fn(model), shuffled(rng), opt, epochs=5, scheduler=sched,
                     rng=rng, checkpoint=tmp_path / "b.npz", resume=True, progress=False)
    assert resumed.loss == whole.loss                        # exact float equality
    assert resumed.lr == whole.lr
    final_a = load_checkpoint(tmp_path / "a.npz")["model"].state_dict()
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, final_a[k], err_msg=k)


def test_checkpoint_round_trip_builds_the_model(tmp_path):
    model, opt, _ = make(dtype=np.float32)
    path = save_checkpoint(tmp_path / "m.npz", model, opt, extra={"note": "hello"})
    loaded = load_checkpoint(path)
    again = loaded["model"]
    assert isinstance(again, mg.Model) and again.rnn.dtype == np.float32
    assert loaded["extra"] == {"note": "hello"}
    x = data(np.float32)[0][:, :4]
    np.testing.assert_array_equal(again.rnn.eval().forward(x)[0], model.rnn.eval().forward(x)[0])


def test_a_crash_mid_save_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    model, opt, _ = make()
    path = tmp_path / "run.npz"
    save_checkpoint(path, model, opt, extra={"epoch": 1})
    good = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"half a zip file")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, opt, extra={"epoch": 2})
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["run.npz"]               # no temporary file left behind


def test_loading_another_variant_or_shape_is_refused(tmp_path):
    model, opt, _ = make()
    path = save_checkpoint(tmp_path / "m.npz", model, opt)
    other, _, _ = make(variant="lstm")
    with pytest.raises(ValueError, match="the checkpoint's model.rnn.variant is 'gru', "
                                         "this model's is 'lstm'"):
        load_checkpoint(path, other)
    bigger = mg.Model(rnn=mg.RNN("gru", I, H + 1, num_layers=2, dropout=0.2, dtype=np.float64),
                      head=mg.Linear(H + 1, 1, dtype=np.float64))
    with pytest.raises(ValueError, match="model.head.in_features is 8, this model's is 9"):
        load_checkpoint(path, bigger)
    with pytest.raises(ValueError, match="the checkpoint holds a Model, not a RNN"):
        load_checkpoint(path, mg.RNN("gru", I, H))
    with pytest.raises(ValueError, match="checkpoint's optimizer is a Adam, not a SGD"):
        load_checkpoint(path, model, optim.SGD(model.params, lr=0.1))


def test_truncated_corrupted_and_foreign_files_are_refused(tmp_path):
    model, opt, _ = make()
    path = save_checkpoint(tmp_path / "m.npz", model, opt)
    data_ = path.read_bytes() if hasattr(path, "read_bytes") else open(path, "rb").read()

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data_[: len(data_) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_checkpoint(truncated)

    corrupted = tmp_path / "corrupted.npz"
    flipped = bytearray(data_)
    for i in range(len(flipped) // 3, len(flipped) // 3 + 64):
        flipped[i] ^= 0xFF
    corrupted.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_checkpoint(corrupted)

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(ValueError, match=r"is an \.npz archive but not a minigru checkpoint: "
                                         r"it has no meta.json \(it holds a\)"):
        load_checkpoint(foreign)

    future = tmp_path / "future.npz"
    meta = {"format": "minigru-checkpoint", "version": 99}
    np.savez(future, **{"meta.json": np.frombuffer(json.dumps(meta).encode(), np.uint8)})
    with pytest.raises(ValueError, match="format version 99; this minigru reads version 1"):
        load_checkpoint(future)

    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.npz")


def test_resume_needs_a_path():
    model, opt, _ = make()
    with pytest.raises(ValueError, match="resume=True needs the checkpoint= path"):
        mg.fit(model, step_fn(model), [None], opt, resume=True)


def test_a_checkpoint_gets_ordinary_file_permissions(tmp_path):
    model, opt, _ = make()
    umask = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "m.npz", model, opt)
    finally:
        os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o644        # not the temporary file's 0o600
