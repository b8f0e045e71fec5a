"""The adding problem: can a recurrent network remember two numbers for a hundred steps?

Hochreiter & Schmidhuber's (1997) test of long-range memory. Each step of a sequence brings two
inputs: a value drawn uniformly from [0, 1) and a marker, 0 or 1. Exactly two steps are marked;
the network reads the whole sequence and must then output the sum of the two marked values. We
follow the formulation of Arjovsky, Shah & Bengio (2016, "Unitary evolution recurrent neural
networks"), used by most later papers: one marker falls uniformly in the first half of the
sequence, the other uniformly in the second half, so the first value must be carried across at
least T/2 steps. The loss is the mean squared error of the last output, read through a linear
head. Predicting 1 for every sequence (the mean of the target) scores the variance of a sum of
two U(0, 1) values, 2/12 = 0.167: that is the baseline, and a network that has not learned to
remember stays on it. What this shows: the plain tanh RNN sits on the baseline (its gradient
vanishes over T steps, see the gradient-flow demo), the gated GRU and LSTM and the linear minGRU
leave it, and the longer the sequence, the longer they wait before they do.

Training uses fresh sequences at every step (an endless supply, no overfitting), Adam with
lr 1e-2, gradients clipped to norm 1, batches of 50, float32, hidden size 64; the test MSE is
measured on 1000 held-out sequences before training and every 50 steps (one "epoch"; 25 with
``--quick``). A variant *beats the baseline* when its final test MSE is below half of it, 0.083;
``steps_to_threshold`` is the number of training steps at the first evaluation where the test
MSE is under 0.05 (null if it never was).

Run it:

    python -m minigru demo adding [--quick] [--out DIR] [--seed S] [--no-progress]
    python demos/adding.py --quick
    minigru race --task adding --variants rnn,gru,lstm,mingru

Default: T = 100 (1000 steps) and T = 200 (1200 steps) for rnn, gru, lstm and mingru: 172 s
measured on 2 idle cores (numpy backend). ``--quick``: T = 50 only, 400 steps: 9 s. (With
other programs busy on the same cores, multithreaded BLAS can make it several times slower.)

``settings`` (a dict given to ``run`` or ``train_variant``) overrides any of these keys:

    lengths      sequence lengths T to run (run only; train_variant uses the first)
    steps        training steps for each T, a list as long as ``lengths`` (or one int for all)
    variants     the variants to compare (run only)
    hidden       hidden size H (64)
    batch        sequences per step (50)
    eval_every   steps between test evaluations, one "epoch" (50)
    test_size    held-out sequences (1000)
    lr, clip     Adam's learning rate (1e-2) and the gradient-norm clip (1.0)
    threshold    the test MSE counted as "solved" (0.05)
"""

import sys
import time

import numpy as np

import minigru as mg

try:
    from ._common import main, merge_settings, pyplot, save_figure, say, single_blas_thread
except ImportError:                                   # run as a script: python demos/adding.py
    from minigru.demos._common import (
        main, merge_settings, pyplot, save_figure, say, single_blas_thread)

NAME = "adding"
BASELINE = 2 / 12           # Var(u1 + u2) for u ~ U(0, 1): the MSE of always predicting 1

DEFAULTS = {"lengths": [100, 200], "steps": [1000, 1200],
            "variants": ["rnn", "gru", "lstm", "mingru"], "hidden": 64, "batch": 50,
            "eval_every": 50, "test_size": 1000, "lr": 1e-2, "clip": 1.0, "threshold": 0.05}
QUICK = {**DEFAULTS, "lengths": [50], "steps": [400], "eval_every": 25}


def config(quick=False, settings=None):
    """The defaults (or the quick ones), with ``settings`` on top; unknown keys are an error."""
    cfg = merge_settings(NAME, DEFAULTS, QUICK, quick, settings)
    steps = cfg["steps"]
    cfg["steps"] = [int(steps)] * len(cfg["lengths"]) if np.ndim(steps) == 0 else list(steps)
    if len(cfg["steps"]) != len(cfg["lengths"]):
        raise ValueError(f"steps must be one int or one per length {cfg['lengths']}, "
                         f"got {cfg['steps']}")
    return cfg


def make_adding(n, T, rng, dtype=np.float32):
    """``n`` adding-problem sequences of length ``T``: x (T, n, 2) and targets y (n, 1).

    Channel 0 is the value, U[0, 1); channel 1 the marker: one 1 in steps [0, T/2), one in
    [T/2, T), zeros elsewhere. y is the sum of the two marked values.
    """
    x = np.zeros((T, n, 2), dtype)
    x[:, :, 0] = rng.random((T, n))
    rows = np.arange(n)
    first = rng.integers(0, T // 2, size=n)
    second = rng.integers(T // 2, T, size=n)
    x[first, rows, 1] = 1
    x[second, rows, 1] = 1
    y = x[first, rows, 0] + x[second, rows, 0]
    return x, y[:, None].astype(dtype)


def build(variant, hidden, backend="numba", seed=0, dtype=np.float32):
    """A one-layer ``variant`` RNN reading (value, marker) and a linear head on its last output."""
    return mg.Model(rnn=mg.RNN(variant, 2, hidden, backend=backend, dtype=dtype, seed=seed),
                    head=mg.Linear(hidden, 1, dtype=dtype, seed=seed + 1))


def predict(model, x):
    ys, _ = model.rnn.forward(x)
    return model.head.forward(ys[-1])


def train(variant, T, steps, cfg, *, backend="numba", seed=0, progress=None):
    """Train one variant on sequences of length ``T``; return the model and what was measured.

    Every variant of a run sees the same sequences: the training and test generators are seeded
    from (seed, T) alone.
    """
    model = build(variant, cfg["hidden"], backend, seed)
    opt = mg.optim.Adam(model.params, lr=cfg["lr"])
    data_rng = np.random.default_rng([seed, T, 0])
    x_test, y_test = make_adding(cfg["test_size"], T, np.random.default_rng([seed, T, 1]))

    def step(_):                    # a fresh batch each step, drawn from the seeded generator
        xb, yb = make_adding(cfg["batch"], T, data_rng)
        ys, _ = model.rnn.forward(xb)
        loss, dpred = mg.losses.mse(model.head.forward(ys[-1]), yb)
        dys = np.zeros_like(ys)
        dys[-1] = model.head.backward(dpred)          # only the last output feeds the loss
        model.rnn.backward(dys)
        return loss

    eval_seconds = []

    def evaluate(m):
        start = time.perf_counter()
        mse = float(mg.losses.mse(predict(m, x_test), y_test)[0])
        eval_seconds.append(time.perf_counter() - start)
        return mse

    every = cfg["eval_every"]
    epochs = max(1, -(-steps // every))
    model.eval()                                      # fit switches it back to training
    before = float(mg.losses.mse(predict(model, x_test), y_test)[0])     # step 0: untrained
    start = time.perf_counter()
    history = mg.fit(model, step, list(range(every)), opt, epochs=epochs, clip=cfg["clip"],
                     evaluate=evaluate, rng=data_rng, progress=progress,
                     desc=f"adding T={T} {variant}")
    seconds = time.perf_counter() - start - sum(eval_seconds)
    test = history.eval
    at = [every * (e + 1) for e in range(epochs)]
    solved = next((s for s, v in zip(at, test) if v < cfg["threshold"]), None)
    at, curve = [0] + at, [before] + test
    return model, {"test_mse": test[-1], "best_test_mse": min(test),
                   "beats_baseline": bool(test[-1] < BASELINE / 2),
                   "steps_to_threshold": solved, "params": int(model.num_params()),
                   "seconds_per_epoch": seconds / epochs, "steps": at, "test_curve": curve,
                   "loss": history.epoch_loss}


@single_blas_thread
def train_variant(variant, backend="numba", seed=0, quick=False, progress=None, settings=None):
    """``minigru race --task adding``: one variant at the first length (T = 100, quick: 50)."""
    cfg = config(quick, settings)
    T, steps = cfg["lengths"][0], cfg["steps"][0]
    _, r = train(variant, T, steps, cfg, backend=backend, seed=seed, progress=progress)
    return {"metric": "test_mse", "value": r["test_mse"], "higher_is_better": False,
            "params": r["params"], "seconds_per_epoch": r["seconds_per_epoch"],
            "loss": r["loss"], "T": T, "steps_to_threshold": r["steps_to_threshold"],
            "beats_baseline": r["beats_baseline"]}


@single_blas_thread
def run(backend="numba", out="out", seed=0, quick=False, progress=None, settings=None):
    """Train every variant at every length; plot the test MSE against the training steps."""
    cfg = config(quick, settings)
    start = time.perf_counter()
    results = {}
    for T, steps in zip(cfg["lengths"], cfg["steps"]):
        say(f"adding problem, T = {T}: {steps} steps of {cfg['batch']} fresh sequences; "
            f"baseline (always predict 1) = {BASELINE:.3f}")
        per_T = {}
        for variant in cfg["variants"]:
            _, r = train(variant, T, steps, cfg, backend=backend, seed=seed, progress=progress)
            per_T[variant] = r
            when = (f"below {cfg['threshold']} after {r['steps_to_threshold']} steps"
                    if r["steps_to_threshold"] else f"never below {cfg['threshold']}")
            say(f"  {variant:<7} test MSE {r['test_mse']:.4f} "
                f"({'beats' if r['beats_baseline'] else 'does not beat'} the baseline), {when}; "
                f"{r['params']} params, {r['seconds_per_epoch']:.2f} s per {cfg['eval_every']} "
                "steps")
        results[T] = per_T
    figure = plot(results, cfg, out)
    seconds = time.perf_counter() - start
    say(f"adding: {seconds:.0f} s in all; figure {figure}")
    keep = ("test_mse", "best_test_mse", "beats_baseline", "steps_to_threshold", "params",
            "seconds_per_epoch")
    return {"demo": NAME, "baseline": BASELINE, "threshold": cfg["threshold"],
            "results": {f"T={T}": {v: {k: r[k] for k in keep} for v, r in per_T.items()}
                        for T, per_T in results.items()},
            "backend": backend, "seed": seed, "quick": quick, "seconds": seconds,
            "figures": [figure]}


def plot(results, cfg, out):
    plt = pyplot()
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.2), squeeze=False,
                             sharey=True)
    for ax, (T, per_T) in zip(axes[0], results.items()):
        for variant, r in per_T.items():
            ax.plot(r["steps"], r["test_curve"], marker=".", label=variant)
        ax.axhline(BASELINE, color="black", ls="--", lw=1,
                   label="baseline 0.167 (predict 1)")
        ax.axhline(cfg["threshold"], color="gray", ls=":", lw=1,
                   label=f"threshold {cfg['threshold']}")
        ax.set(xlabel="training steps (batches of fresh sequences)", yscale="log",
               title=f"adding problem, T = {T}")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel(f"test MSE ({cfg['test_size']} held-out sequences)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8,
               bbox_to_anchor=(0.5, -0.06))
    fig.suptitle("Who remembers two numbers across T steps? Below the dashed line = learned")
    fig.tight_layout()
    return save_figure(fig, out, "adding.png")


if __name__ == "__main__":
    sys.exit(main(run, NAME, __doc__))
