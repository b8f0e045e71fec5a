"""minigru.optim against torch.optim, step for step: trajectories, schedules, clipping, resuming.

Each optimiser runs side by side with its torch.optim twin from the same float64 parameters on
the same gradients (a quartic loss plus per-step noise, each side evaluating it at its own
parameters), and every parameter must agree to 1e-10 at every step.
"""

import json

import numpy as np
import pytest

from minigru import optim

STEPS = 300
SHAPES = {"W": (4, 3), "b": (3,), "rnn.U_l0": (2, 5)}   # keys are arbitrary strings


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="torch.optim is the oracle for these tests")


def _params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s).astype(dtype) for k, s in SHAPES.items()}


def _grad(p, noise):
    """The gradient of sum((p - 0.3)²/2 + (p - 0.3)⁴/8) plus noise: convex, not quadratic."""
    d = p - 0.3
    return d + 0.5 * d ** 3 + noise


def _noise(rng, dtype):
    return {k: (0.1 * rng.normal(size=s)).astype(dtype) for k, s in SHAPES.items()}


def _grad_sequence(n, dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    return [{k: rng.normal(size=s).astype(dtype) for k, s in SHAPES.items()} for _ in range(n)]


def _run_side_by_side(torch, label, ours, theirs, schedule=None, steps=STEPS,
                      dtype=np.float64, tol=1e-10):
    """Run ``ours(params)`` and ``theirs(tensors)`` (optimisers; ``schedule(module, opt)`` a
    schedule stepped after each step) and return the largest parameter difference seen."""
    rng = np.random.default_rng(2)
    p0 = _params(dtype)
    mine = {k: v.copy() for k, v in p0.items()}
    ref = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in p0.items()}
    opt, topt = ours(mine), theirs(list(ref.values()))
    if schedule is not None:
        sched, tsched = schedule(optim, opt), schedule(torch.optim.lr_scheduler, topt)
    worst = 0.0
    for t in range(1, steps + 1):
        noise = _noise(rng, dtype)
        opt.step({k: _grad(mine[k], noise[k]) for k in mine})
        for k, q in ref.items():
            q.grad = torch.from_numpy(_grad(q.detach().numpy(), noise[k]))
        topt.step()
        if schedule is not None:
            sched.step()
            tsched.step()
        for k in mine:
            d = float(np.max(np.abs(mine[k] - ref[k].detach().numpy())))
            assert d <= tol, f"{label}, step {t}: params[{k!r}] differs from torch by {d:.3g}"
            worst = max(worst, d)
    for k, p in mine.items():
        assert p.dtype == dtype, f"{label}: params[{k!r}] became {p.dtype}"
    return worst


# -- optimisers: every option against torch.optim

OPTIMISERS = [
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.02, "momentum": 0.95, "nesterov": True, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.03, "betas": (0.3, 0.9), "eps": 1e-3}),     # torch's other lerp branch
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.3}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.0}),
]


def _label(name, kwargs):
    return f"{name}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"


@pytest.mark.parametrize("name, kwargs", OPTIMISERS,
                         ids=[_label(n, kw) for n, kw in OPTIMISERS])
def test_trajectory_matches_torch(torch, name, kwargs):
    _run_side_by_side(torch, _label(name, kwargs),
                      lambda p: getattr(optim, name)(p, **kwargs),
                      lambda p: getattr(torch.optim, name)(p, foreach=False, **kwargs))


@pytest.mark.parametrize("name, kwargs", [OPTIMISERS[5], OPTIMISERS[10], OPTIMISERS[14]],
                         ids=["SGD", "Adam", "AdamW"])
def test_float32_stays_float32_and_matches_torch(torch, name, kwargs):
    label = f"{_label(name, kwargs)} float32"
    _run_side_by_side(torch, label, lambda p: getattr(optim, name)(p, **kwargs),
                      lambda p: getattr(torch.optim, name)(p, foreach=False, **kwargs),
                      steps=100, dtype=np.float32, tol=1e-5)
    p = _params(np.float32)
    opt = getattr(optim, name)(p, **kwargs)
    for g in _grad_sequence(3, np.float32):
        opt.step(g)
    for buf, arrays in opt.state.items():
        for k, a in arrays.items():
            assert a.dtype == np.float32, f"{label}: state[{buf!r}][{k!r}] is {a.dtype}"


@pytest.mark.parametrize("name, kwargs, schedule", [
    ("SGD", {"lr": 0.1, "momentum": 0.9}, lambda m, o: m.StepLR(o, step_size=25, gamma=0.5)),
    ("AdamW", {"lr": 0.02, "weight_decay": 0.1},
     lambda m, o: m.SequentialLR(o, [m.LinearLR(o, 0.01, total_iters=20),
                                      m.CosineAnnealingLR(o, T_max=280)], milestones=[20])),
], ids=["SGD+StepLR", "AdamW+warmup-cosine"])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_trajectory_under_a_schedule_matches_torch(torch, name, kwargs, schedule):
    _run_side_by_side(torch, f"{_label(name, kwargs)} scheduled",
                      lambda p: getattr(optim, name)(p, **kwargs),
                      lambda p: getattr(torch.optim, name)(p, foreach=False, **kwargs),
                      schedule=schedule)


def test_step_updates_in_place_and_leaves_grads_alone():
    p = _params()
    arrays = dict(p)
    for opt in (optim.SGD(p, momentum=0.9, weight_decay=0.1), optim.Adam(p, weight_decay=0.1),
                optim.AdamW(p, amsgrad=True)):
        g = _grad_sequence(1)[0]
        g_before = {k: v.copy() for k, v in g.items()}
        before = {k: v.copy() for k, v in p.items()}
        opt.step(g)
        name = type(opt).__name__
        for k in p:
            assert p[k] is arrays[k] and opt.params[k] is arrays[k], f"{name}: {k} rebound"
            assert np.array_equal(g[k], g_before[k]), f"{name}: grads[{k!r}] was modified"
            assert not np.array_equal(p[k], before[k]), f"{name}: params[{k!r}] did not move"
        assert opt.step_count == 1


def test_lr_zero_leaves_params_unchanged_but_advances_state():
    p = _params()
    before = {k: v.copy() for k, v in p.items()}
    opt = optim.Adam(p, lr=0.0)
    opt.step(_grad_sequence(1)[0])
    for k in p:
        assert np.array_equal(p[k], before[k]), f"Adam lr=0: params[{k!r}] moved"
    assert opt.step_count == 1 and np.any(opt.state["exp_avg"]["W"] != 0)


# -- learning-rate schedules against torch.optim.lr_scheduler

SCHEDULES = {
    "StepLR(30, 0.5)": lambda m, o: m.StepLR(o, step_size=30, gamma=0.5),
    "StepLR(7)": lambda m, o: m.StepLR(o, 7),
    "LinearLR()": lambda m, o: m.LinearLR(o),
    "LinearLR(0.01, 1, 50)": lambda m, o: m.LinearLR(o, start_factor=0.01, total_iters=50),
    "LinearLR(1, 0, 100)": lambda m, o: m.LinearLR(o, 1.0, 0.0, total_iters=100),
    "LinearLR(0.7, 0.2, 3)": lambda m, o: m.LinearLR(o, 0.7, 0.2, total_iters=3),
    "CosineAnnealingLR(100, 1e-4)": lambda m, o: m.CosineAnnealingLR(o, T_max=100, eta_min=1e-4),
    "CosineAnnealingLR(37)": lambda m, o: m.CosineAnnealingLR(o, 37),
    "CosineAnnealingLR(1)": lambda m, o: m.CosineAnnealingLR(o, 1),
    "CosineAnnealingLR(3, 0.01)": lambda m, o: m.CosineAnnealingLR(o, 3, eta_min=0.01),
    "SequentialLR(Linear, Cosine)": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, 0.01, total_iters=10), m.CosineAnnealingLR(o, T_max=90)],
        milestones=[10]),
    "SequentialLR(Step, Cosine, Linear)": lambda m, o: m.SequentialLR(
        o, [m.StepLR(o, 5, gamma=0.7), m.CosineAnnealingLR(o, T_max=50, eta_min=1e-3),
            m.LinearLR(o, 0.5, 0.1, total_iters=40)], milestones=[20, 120]),
    "SequentialLR(Cosine, Step)": lambda m, o: m.SequentialLR(
        o, [m.CosineAnnealingLR(o, T_max=30), m.StepLR(o, 10, gamma=0.5)], milestones=[30]),
}


def _torch_warmup_cosine(m, o, warmup, total, start_factor=1e-3, eta_min=0.0):
    return m.SequentialLR(o, [m.LinearLR(o, start_factor, 1.0, total_iters=warmup),
                              m.CosineAnnealingLR(o, T_max=total - warmup, eta_min=eta_min)],
                          milestones=[warmup])


@pytest.mark.parametrize("label", list(SCHEDULES) + ["warmup_cosine"])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_schedule_matches_torch(torch, label):
    base = 0.1
    opt = optim.SGD({"w": np.zeros(1)}, lr=base)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    if label == "warmup_cosine":
        sched = optim.warmup_cosine(opt, warmup_steps=25, total_steps=400, eta_min=1e-5)
        tsched = _torch_warmup_cosine(torch.optim.lr_scheduler, topt, 25, 400, eta_min=1e-5)
    else:
        sched = SCHEDULES[label](optim, opt)
        tsched = SCHEDULES[label](torch.optim.lr_scheduler, topt)
    for epoch in range(500):
        lr, want = sched.get_last_lr()[0], tsched.get_last_lr()[0]
        assert abs(lr - want) <= 1e-12 * base, \
            f"{label}, epoch {epoch}: lr {lr!r}, torch {want!r}"
        assert opt.lr == lr, f"{label}, epoch {epoch}: opt.lr {opt.lr!r} != get_last_lr {lr!r}"
        topt.step()
        tsched.step()
        sched.step()


def test_schedule_values_by_hand():
    opt = optim.SGD({"w": np.zeros(1)}, lr=1.0)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(6):
        lrs.append(sched.get_last_lr()[0])
        sched.step()
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25], f"StepLR(2, 0.5): {lrs}"
    opt = optim.SGD({"w": np.zeros(1)}, lr=1.0)
    sched = optim.CosineAnnealingLR(opt, T_max=4)
    lrs = [sched.get_last_lr()[0]] + [(sched.step(), opt.lr)[1] for _ in range(4)]
    want = [0.5 * (1 + np.cos(np.pi * e / 4)) for e in range(5)]
    np.testing.assert_allclose(lrs, want, atol=1e-15, err_msg="CosineAnnealingLR(4)")


# -- clip_grad_norm against torch.nn.utils.clip_grad_norm_

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3, 0.0], ids=["clips", "no-clip", "zero"])
def test_clip_grad_norm_matches_torch(torch, dtype, max_norm):
    grads = _grad_sequence(1, dtype)[0]
    before = {k: g.copy() for k, g in grads.items()}
    ps = [torch.zeros(s, dtype=torch.from_numpy(grads[k]).dtype, requires_grad=True)
          for k, s in SHAPES.items()]
    for q, k in zip(ps, SHAPES):
        q.grad = torch.from_numpy(grads[k].copy())
    want = float(torch.nn.utils.clip_grad_norm_(ps, max_norm))
    total = optim.clip_grad_norm(grads, max_norm)
    rtol = 1e-14 if dtype == np.float64 else 1e-6
    label = f"clip_grad_norm({max_norm}) {np.dtype(dtype)}"
    assert isinstance(total, float)
    assert abs(total - want) <= rtol * want, f"{label}: norm {total!r}, torch {want!r}"
    for q, k in zip(ps, SHAPES):
        assert grads[k].dtype == dtype, f"{label}: grads[{k!r}] became {grads[k].dtype}"
        np.testing.assert_allclose(grads[k], q.grad.numpy(), rtol=rtol, atol=0,
                                   err_msg=f"{label}: grads[{k!r}]")
        if max_norm == 1e3:
            assert np.array_equal(grads[k], before[k]), f"{label}: grads[{k!r}] changed"


def test_clip_grad_norm_nan_and_empty(torch):
    grads = _grad_sequence(1)[0]
    grads["b"][0] = np.nan
    q = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    q.grad = torch.from_numpy(grads["b"].copy())
    want = torch.nn.utils.clip_grad_norm_([q], 1.0)
    total = optim.clip_grad_norm({"b": grads["b"]}, 1.0)
    assert np.isnan(total) and np.isnan(float(want))
    np.testing.assert_array_equal(grads["b"], q.grad.numpy(), err_msg="NaN grads")
    with pytest.raises(ValueError, match="grads have a non-finite total norm"):
        optim.clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    assert optim.clip_grad_norm({}, 1.0) == 0.0


# -- resuming: state_dict round trips, through .npz + JSON as a checkpoint stores them

def _save(path, sd):
    """A checkpoint: the arrays in an .npz as "buffer/param_key", the rest in JSON."""
    np.savez(path / "opt.npz", **{f"{buf}/{k}": a for buf, arrays in sd["state"].items()
                                  for k, a in arrays.items()})
    (path / "opt.json").write_text(json.dumps({k: v for k, v in sd.items() if k != "state"}))


def _load(path):
    sd = json.loads((path / "opt.json").read_text())
    sd["state"] = {}
    with np.load(path / "opt.npz") as npz:
        for name in npz.files:
            buf, key = name.split("/", 1)
            sd["state"].setdefault(buf, {})[key] = npz[name]
    return sd


RESUMABLE = [OPTIMISERS[4], OPTIMISERS[6], OPTIMISERS[10], OPTIMISERS[14]]


@pytest.mark.parametrize("name, kwargs", RESUMABLE, ids=[_label(n, kw) for n, kw in RESUMABLE])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_state_dict_round_trip_is_bitwise(tmp_path, name, kwargs, dtype):
    label, N, M = f"{_label(name, kwargs)} {np.dtype(dtype)}", 17, 23
    grads = _grad_sequence(N + M, dtype)
    p = _params(dtype)
    opt = getattr(optim, name)(p, **kwargs)
    for g in grads[:N]:
        opt.step(g)
    _save(tmp_path, opt.state_dict())
    saved = {k: v.copy() for k, v in p.items()}
    for g in grads[N:]:
        opt.step(g)

    resumed = getattr(optim, name)(saved, lr=0.123)         # other hyperparameters: restored
    resumed.load_state_dict(_load(tmp_path))
    assert resumed.hyperparams() == getattr(optim, name)(_params(), **kwargs).hyperparams()
    assert resumed.step_count == N
    for g in grads[N:]:
        resumed.step(g)
    for k in p:
        assert np.array_equal(p[k], saved[k]), f"{label}: params[{k!r}] differ after resuming"
    for buf, arrays in opt.state.items():
        for k, a in arrays.items():
            assert np.array_equal(a, resumed.state[buf][k]), f"{label}: state[{buf!r}][{k!r}]"


def test_state_dict_is_plain_data_and_a_copy():
    opt = optim.Adam(_params(), amsgrad=True)
    opt.step(_grad_sequence(1)[0])
    sd = opt.state_dict()
    json.dumps({k: v for k, v in sd.items() if k != "state"})
    assert sd["hyperparams"] == {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8,
                                 "weight_decay": 0.0, "amsgrad": True}
    assert sd["type"] == "Adam" and sd["step"] == 1 and sd["initial_lr"] is None
    assert set(sd["state"]) == {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    sd["state"]["exp_avg"]["W"][...] = 42.0
    sd["hyperparams"]["betas"][0] = 0.5
    assert not np.any(opt.state["exp_avg"]["W"] == 42.0) and opt.betas[0] == 0.9


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_resume_with_a_schedule_is_bitwise(tmp_path):
    """The PyTorch order: build optimiser and schedule, then load the optimiser's state (which
    holds the current lr) and the schedule's."""
    N, M = 30, 40
    grads = _grad_sequence(N + M)

    def build(p):
        opt = optim.AdamW(p, lr=0.05)
        return opt, optim.warmup_cosine(opt, warmup_steps=20, total_steps=N + M)

    p = _params()
    opt, sched = build(p)
    for g in grads[:N]:
        opt.step(g)
        sched.step()
    _save(tmp_path, opt.state_dict())
    (tmp_path / "sched.json").write_text(json.dumps(sched.state_dict()))
    saved = {k: v.copy() for k, v in p.items()}
    lrs = []
    for g in grads[N:]:
        opt.step(g)
        sched.step()
        lrs.append(opt.lr)

    opt2, sched2 = build(saved)
    opt2.load_state_dict(_load(tmp_path))
    sched2.load_state_dict(json.loads((tmp_path / "sched.json").read_text()))
    lrs2 = []
    for g in grads[N:]:
        opt2.step(g)
        sched2.step()
        lrs2.append(opt2.lr)
    assert lrs == lrs2, "warmup_cosine: lr sequence differs after resuming"
    for k in p:
        assert np.array_equal(p[k], saved[k]), f"AdamW+warmup_cosine: params[{k!r}] differ"


@pytest.mark.parametrize("label", list(SCHEDULES))
def test_schedule_state_dict_round_trip(label):
    def build():
        opt = optim.SGD({"w": np.zeros(1)}, lr=0.1)
        return opt, SCHEDULES[label](optim, opt)

    opt, sched = build()
    for _ in range(57):
        sched.step()
    sd, opt_sd = json.loads(json.dumps(sched.state_dict())), opt.state_dict()
    want = [(sched.step(), opt.lr)[1] for _ in range(100)]
    opt2, sched2 = build()
    opt2.load_state_dict(opt_sd)
    sched2.load_state_dict(sd)
    got = [(sched2.step(), opt2.lr)[1] for _ in range(100)]
    assert got == want, f"{label}: lr sequence differs after load_state_dict"


# -- bad arguments: the right error type, naming the argument

def _module_like():
    class Net:
        params = _params()
    return Net()


def _read_only():
    p = _params()
    p["b"].flags.writeable = False
    return p


def _tied():
    p = _params()
    p["tied"] = p["W"][1]
    return p


CONSTRUCTION_ERRORS = [
    (lambda p: optim.SGD(p, lr=-0.1), ValueError, r"lr must be >= 0, got -0\.1"),
    (lambda p: optim.Adam(p, lr=float("nan")), ValueError, r"lr must be finite, got nan"),
    (lambda p: optim.Adam(p, lr="0.1"), TypeError, r"lr must be a real number, got str"),
    (lambda p: optim.SGD(p, momentum=-0.5), ValueError, r"momentum must be >= 0, got -0\.5"),
    (lambda p: optim.SGD(p, momentum=0.9, dampening=1.5), ValueError,
     r"dampening must be in \[0, 1\], got 1\.5"),
    (lambda p: optim.SGD(p, nesterov=True), ValueError,
     r"nesterov=True needs momentum > 0 and dampening = 0.*momentum=0\.0"),
    (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     r"nesterov=True needs momentum > 0 and dampening = 0.*dampening=0\.1"),
    (lambda p: optim.SGD(p, momentum=0.9, nesterov=1), TypeError,
     r"nesterov must be True or False, got int 1"),
    (lambda p: optim.SGD(p, weight_decay=float("inf")), ValueError, r"weight_decay must be finite"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), ValueError,
     r"betas\[0\] must be in \[0, 1\), got 1\.0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), ValueError, r"betas\[1\] must be in \[0, 1\)"),
    (lambda p: optim.Adam(p, betas=(0.9, 0.99, 0.999)), TypeError, r"betas must be a pair"),
    (lambda p: optim.Adam(p, betas=0.9), TypeError, r"betas must be a pair"),
    (lambda p: optim.Adam(p, eps=-1e-8), ValueError, r"eps must be >= 0"),
    (lambda p: optim.AdamW(p, weight_decay=-0.01), ValueError, r"weight_decay must be >= 0"),
    (lambda p: optim.Adam(p, amsgrad="yes"), TypeError, r"amsgrad must be True or False"),
    (lambda p: optim.SGD(list(p.values())), TypeError,
     r"params must be a dict of parameter arrays, got list"),
    (lambda p: optim.Adam(_module_like()), TypeError, r"params must be a dict.*module\.params"),
    (lambda p: optim.SGD({}), ValueError, r"params must hold at least one array"),
    (lambda p: optim.SGD({"w": np.zeros(3, dtype=np.int64)}), TypeError,
     r"params\['w'\] must be float32 or float64, got dtype int64"),
    (lambda p: optim.SGD({"w": [0.0, 1.0]}), TypeError,
     r"params\['w'\] must be a numpy\.ndarray, got list"),
    (lambda p: optim.SGD(_read_only()), ValueError, r"params\['b'\] is read-only"),
    (lambda p: optim.Adam(_tied()), ValueError, r"params\['W'\] and params\['tied'\] share memory"),
]


@pytest.mark.parametrize("make, error, message", CONSTRUCTION_ERRORS,
                         ids=[m for _, _, m in CONSTRUCTION_ERRORS])
def test_bad_construction(make, error, message):
    with pytest.raises(error, match=message):
        make(_params())


def test_lr_setter_checks():
    opt = optim.SGD(_params())
    opt.lr = 0.5
    assert opt.lr == 0.5
    with pytest.raises(ValueError, match=r"lr must be >= 0, got -1\.0"):
        opt.lr = -1.0
    with pytest.raises(TypeError, match=r"lr must be a real number, got NoneType"):
        opt.lr = None
    assert opt.lr == 0.5


def _without(g, k):
    return {key: v for key, v in g.items() if key != k}


GRAD_ERRORS = [
    (lambda g: _without(g, "b"), ValueError,
     r"grads must have exactly the keys of params; missing \['b'\], unexpected \[\]"),
    (lambda g: {**g, "extra": g["b"]}, ValueError, r"missing \[\], unexpected \['extra'\]"),
    (lambda g: {**g, "W": g["W"].T.copy()}, ValueError,
     r"grads\['W'\] must have shape \(4, 3\) like params\['W'\], got \(3, 4\)"),
    (lambda g: {**g, "W": g["W"].astype(np.float32)}, TypeError,
     r"grads\['W'\] has dtype float32 but params\['W'\] is float64"),
    (lambda g: {**g, "b": g["b"].tolist()}, TypeError,
     r"grads\['b'\] must be a numpy\.ndarray, got list"),
    (lambda g: list(g.values()), TypeError, r"grads must be a dict of arrays.*got list"),
]


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
@pytest.mark.parametrize("bad, error, message", GRAD_ERRORS, ids=[m for _, _, m in GRAD_ERRORS])
def test_bad_grads_raise_and_change_nothing(name, bad, error, message):
    p = _params()
    before = {k: v.copy() for k, v in p.items()}
    opt = getattr(optim, name)(p)
    with pytest.raises(error, match=message):
        opt.step(bad(_grad_sequence(1)[0]))
    assert opt.step_count == 0, f"{name}: a rejected step counted"
    for k in p:
        assert np.array_equal(p[k], before[k]), f"{name}: a rejected step moved params[{k!r}]"


def test_bad_clip_arguments():
    g = _grad_sequence(1)[0]
    with pytest.raises(ValueError, match=r"max_norm must be finite, got inf"):
        optim.clip_grad_norm(g, float("inf"))
    with pytest.raises(ValueError, match=r"max_norm must be >= 0, got -1\.0"):
        optim.clip_grad_norm(g, -1.0)
    with pytest.raises(TypeError, match=r"max_norm must be a real number, got NoneType"):
        optim.clip_grad_norm(g, None)
    with pytest.raises(TypeError, match=r"grads must be a dict of gradient arrays, got list"):
        optim.clip_grad_norm(list(g.values()), 1.0)
    with pytest.raises(TypeError, match=r"grads\['W'\] must be float32 or float64, got dtype"):
        optim.clip_grad_norm({"W": np.ones(3, dtype=np.int32)}, 1.0)


def _opt():
    return optim.SGD({"w": np.zeros(1)}, lr=0.1)


SCHEDULE_ERRORS = [
    (lambda o: optim.StepLR(o, 0), ValueError, r"step_size must be a positive int, got 0"),
    (lambda o: optim.StepLR(o, 2.5), TypeError, r"step_size must be a positive int, got float"),
    (lambda o: optim.StepLR(o, 3, gamma=-0.1), ValueError, r"gamma must be >= 0"),
    (lambda o: optim.StepLR(object(), 3), TypeError,
     r"optimizer must be a minigru\.optim optimiser.*got object"),
    (lambda o: optim.LinearLR(o, start_factor=0.0), ValueError,
     r"start_factor must be in \(0, 1\], got 0\.0"),
    (lambda o: optim.LinearLR(o, end_factor=1.5), ValueError, r"end_factor must be in \[0, 1\]"),
    (lambda o: optim.LinearLR(o, total_iters=0), ValueError, r"total_iters must be a positive"),
    (lambda o: optim.CosineAnnealingLR(o, T_max=0), ValueError, r"T_max must be a positive int"),
    (lambda o: optim.CosineAnnealingLR(o, 10, eta_min=-1.0), ValueError, r"eta_min must be >= 0"),
    (lambda o: optim.SequentialLR(o, [optim.LinearLR(o), optim.StepLR(o, 3)], milestones=[]),
     ValueError, r"milestones must be a list of 1 epochs"),
    (lambda o: optim.SequentialLR(o, [optim.LinearLR(o), optim.StepLR(o, 3),
                                      optim.StepLR(o, 4)], milestones=[10, 5]),
     ValueError, r"milestones must increase strictly, got \[10, 5\]"),
    (lambda o: optim.SequentialLR(o, [optim.LinearLR(o), optim.StepLR(_opt(), 3)], [5]),
     ValueError, r"schedulers\[1\] drives another optimiser"),
    (lambda o: optim.SequentialLR(o, [optim.LinearLR(o), "cosine"], [5]),
     TypeError, r"schedulers\[1\] must be a StepLR, LinearLR or CosineAnnealingLR, got str"),
    (lambda o: optim.SequentialLR(o, [], []), TypeError, r"schedulers must be a non-empty list"),
    (lambda o: optim.warmup_cosine(o, 10, 10), ValueError,
     r"total_steps must exceed warmup_steps \(10\), got 10"),
]


@pytest.mark.parametrize("make, error, message", SCHEDULE_ERRORS,
                         ids=[m for _, _, m in SCHEDULE_ERRORS])
def test_bad_schedule_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make(_opt())


def test_bad_state_dicts_raise_and_change_nothing():
    p = _params()
    opt = optim.Adam(p, lr=0.01)
    opt.step(_grad_sequence(1)[0])
    good = opt.state_dict()

    def variant(**change):
        sd = opt.state_dict()
        for key, value in change.items():
            sd[key] = value
        return sd

    bad_shape = variant()
    bad_shape["state"]["exp_avg"]["W"] = np.zeros((3, 4))
    bad_dtype = variant()
    bad_dtype["state"]["exp_avg_sq"]["b"] = bad_dtype["state"]["exp_avg_sq"]["b"].astype("f4")
    cases = [
        (optim.SGD(_params()).state_dict(), ValueError,
         r"state_dict\['type'\] is 'SGD', this optimiser is 'Adam'"),
        (variant(hyperparams={**good["hyperparams"], "lr": -1.0}), ValueError, r"lr must be >= 0"),
        (variant(hyperparams={"lr": 0.1}), ValueError,
         r"state_dict\['hyperparams'\] must have exactly the keys.*missing \['amsgrad'"),
        (variant(hyperparams={**good["hyperparams"], "amsgrad": True}), ValueError,
         r"state_dict\['state'\] must have exactly the keys.*missing \['max_exp_avg_sq'\]"),
        (variant(step=2.0), TypeError, r"state_dict\['step'\] must be an int, got float"),
        (bad_shape, ValueError, r"state_dict\['state'\]\['exp_avg'\]\['W'\] must have shape"),
        (bad_dtype, TypeError, r"state_dict\['state'\]\['exp_avg_sq'\]\['b'\] has dtype float32"),
        ({"type": "Adam"}, ValueError, r"state_dict must have exactly the keys"),
    ]
    for sd, error, message in cases:
        with pytest.raises(error, match=message):
            opt.load_state_dict(sd)
        after = opt.state_dict()
        assert after["hyperparams"] == good["hyperparams"] and after["step"] == good["step"], \
            f"a rejected load_state_dict ({message}) changed the optimiser"
        for buf in good["state"]:
            for k in good["state"][buf]:
                assert np.array_equal(after["state"][buf][k], good["state"][buf][k])

    sched = optim.StepLR(opt, 3)
    with pytest.raises(ValueError, match=r"state_dict\['type'\] is 'LinearLR', this schedule"):
        sched.load_state_dict(optim.LinearLR(optim.SGD(_params())).state_dict())
