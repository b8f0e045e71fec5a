"""Sine waves: predict the next sample, then let the network dream on.

Each sequence is a sine wave with its own frequency, phase and amplitude, plus a little noise.
Shown the wave so far, the network must predict its next sample. No single sequence tells it the
frequency up front: it has to infer the wave from the samples it has read and keep it in its
hidden state, filtering the noise as it goes. A GRU and an LSTM of the same hidden size learn
the same data side by side, so you can compare the two gated designs on equal terms.

Then the streaming path: a trained network reads a real prefix one sample at a time with
``rnn.step`` (the state carried from call to call, as in a real-time system) and, when the
prefix ends, is fed its own predictions. Does the wave it generates keep its frequency, its
amplitude, its phase? The figures show both: the one-step predictions on test waves, and the
free-running continuations against the true wave.

The score, ``relative_mse``, is the mean squared error of the next-step predictions on held-out
waves measured against the *clean* wave (without its noise), divided by the variance of the
clean wave, over all steps after the first ``warmup`` (no one can know a wave's phase and
frequency from its first sample or two). The network only ever trains on the noisy wave. For
comparison the JSON also gives ``relative_mse_noisy`` (against the noisy next sample, divided by
the noisy wave's variance) and ``noise_floor``, the part of it that even a perfect predictor of
the clean wave cannot avoid. The top-level ``relative_mse`` is the worse of the two models'.

Run it::

    minigru demo sine [--out DIR] [--seed S] [--quick]
    python demos/sine.py --out DIR
    minigru race --task sine --variants gru,lstm,mgu,mingru

``settings`` (a dict, for ``run`` and ``train_variant``) overrides these defaults:

    train_waves   1024    training sequences
    test_waves    512     held-out sequences
    steps         50      T, samples per training sequence (the network predicts T - 1 of them)
    warmup        10      steps left out of the score
    noise         0.05    standard deviation of the additive Gaussian noise
    hidden_size   32      H, the same for every model
    epochs        40
    batch_size    32
    lr            0.01    Adam's learning rate, annealed to 0 along a cosine
    prefix        30      free running: real samples read before the network takes over
    generate      70      free running: samples generated from its own predictions

``--quick`` trains for 15 epochs.
"""

import sys

import numpy as np

import minigru as mg

try:
    from ._common import Timer, main, merge_settings, one_blas_thread, pyplot, save_figure, say
except ImportError:  # run as a file (python demos/sine.py): there is no package
    from minigru.demos._common import (
        Timer, main, merge_settings, one_blas_thread, pyplot, save_figure, say)

NAME = "sine"
MODELS = ("gru", "lstm")
PERIODS = (10.0, 40.0)      # steps per cycle, drawn uniformly in frequency between these
AMPLITUDES = (0.5, 1.5)
DEFAULTS = {"train_waves": 1024, "test_waves": 512, "steps": 50, "warmup": 10, "noise": 0.05,
            "hidden_size": 32, "epochs": 40, "batch_size": 32, "lr": 1e-2, "prefix": 30,
            "generate": 70}
QUICK = {"epochs": 15}


def configure(quick=False, settings=None):
    """The defaults, with ``QUICK`` when ``quick``, then ``settings`` on top."""
    cfg = merge_settings(NAME, DEFAULTS, QUICK, quick, settings)
    if not 0 <= cfg["warmup"] < cfg["steps"] - 1:
        raise ValueError(f"warmup must be in [0, steps - 1), got {cfg['warmup']} with "
                         f"steps={cfg['steps']}")
    return cfg


# ---------------------------------------------------------------- the data
def waves(rng, n, steps, noise):
    """n random sine waves of ``steps`` samples: (noisy, clean), each (steps, n, 1) float32."""
    t = np.arange(steps)[:, None]                                       # (T, 1)
    freq = rng.uniform(1 / PERIODS[1], 1 / PERIODS[0], n)               # cycles per step
    amp = rng.uniform(*AMPLITUDES, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    clean = amp * np.sin(2 * np.pi * freq * t + phase)                  # (T, n)
    noisy = clean + noise * rng.standard_normal(clean.shape)
    return noisy.astype(np.float32)[..., None], clean.astype(np.float32)[..., None]


# ---------------------------------------------------------------- the model
def predict_next(model, x):
    """One-step predictions: output t is the model's guess of sample t + 1, (T, N, 1)."""
    ys, _ = model.rnn.forward(x)
    return model.head.forward(ys)


def scores(model, noisy, clean, warmup):
    """relative_mse (against the clean wave), relative_mse_noisy, and the noise floor."""
    pred = predict_next(model, noisy[:-1])[warmup:]
    clean_next, noisy_next = clean[1 + warmup:], noisy[1 + warmup:]
    return {"relative_mse": float(np.mean((pred - clean_next) ** 2) / np.var(clean_next)),
            "relative_mse_noisy": float(np.mean((pred - noisy_next) ** 2) / np.var(noisy_next)),
            "noise_floor": float(np.mean((clean_next - noisy_next) ** 2) / np.var(noisy_next))}


def free_run(model, prefix, generate):
    """Read ``prefix`` (P, N, 1) with ``rnn.step``, then feed back ``generate`` predictions.

    The streaming path: one call per sample, the state carried by the caller. Returns the
    one-step predictions during the prefix and the generated samples, together (P + G - 1, N, 1):
    element t is the model's value for sample t + 1.
    """
    rnn = model.rnn.eval()
    state, out = None, []
    x_t = prefix[0]
    for t in range(len(prefix) + generate - 1):
        y, state = rnn.step(x_t, state)               # y (N, H); state (L, N, H) or (h, c)
        guess = model.head.forward(y)                 # (N, 1): the next sample
        out.append(guess)
        x_t = prefix[t + 1] if t + 1 < len(prefix) else guess   # past the prefix: its own guess
    return np.stack(out)


def train(variant, backend, seed, cfg, progress, evaluate=False):
    """Train ``variant`` on waves drawn from ``seed``; the model, its history and its scores.

    The data and the shuffling depend on the seed only, so every variant sees the same waves
    in the same order.
    """
    data_seed, init_seed, shuffle_seed = (int(s) for s in
                                          np.random.SeedSequence(seed).generate_state(3))
    rng = np.random.default_rng(data_seed)
    noisy, _ = waves(rng, cfg["train_waves"], cfg["steps"], cfg["noise"])
    test = waves(rng, cfg["test_waves"], cfg["steps"], cfg["noise"])

    rnn = mg.RNN(variant, 1, cfg["hidden_size"], backend=backend, seed=init_seed)
    model = mg.Model(rnn=rnn, head=mg.Linear(rnn.output_size, 1, seed=init_seed + 1))
    opt = mg.optim.Adam(model.params, lr=cfg["lr"])
    schedule = mg.optim.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    shuffle = np.random.default_rng(shuffle_seed)

    def step(xb):
        ys, _ = model.rnn.forward(xb[:-1])                             # read samples 0 .. T-2
        loss, dpred = mg.losses.mse(model.head.forward(ys), xb[1:])    # predict 1 .. T-1
        model.rnn.backward(model.head.backward(dpred))
        return loss

    def batches(epoch):
        order = shuffle.permutation(noisy.shape[1])
        return [noisy[:, i] for i in np.array_split(order, -(-len(order) // cfg["batch_size"]))]

    with Timer() as t:
        history = mg.fit(model, step, batches, opt, epochs=cfg["epochs"], scheduler=schedule,
                         rng=shuffle, progress=progress, desc=f"{variant} predicts",
                         evaluate=(lambda m: scores(m, *test, cfg["warmup"])["relative_mse"])
                         if evaluate else None)
    model.eval()
    return {"model": model, "history": history, "seconds": t.seconds, "rng": rng,
            **scores(model, *test, cfg["warmup"])}


# ---------------------------------------------------------------- the figures
def plot_training(runs, noise, out):
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for (name, r), color in zip(runs.items(), ("tab:blue", "tab:orange")):
        h = r["history"]
        epochs = np.arange(1, len(h.epoch_loss) + 1)
        ax1.plot(epochs, h.epoch_loss, color=color, label=name)
        ax2.plot(epochs, h.eval, color=color, label=name)
    ax1.axhline(noise ** 2, color="grey", ls=":", lw=1,
                label="noise variance: no predictor gets below")
    ax1.set(xlabel="epoch", ylabel="MSE against the noisy next sample", yscale="log",
            title="Training loss")
    ax2.axhline(0.01, color="grey", ls="--", lw=1, label="0.01")
    ax2.set(xlabel="epoch", ylabel="MSE / variance, against the clean wave", yscale="log",
            title="Held-out relative MSE (after the warm-up)")
    ax1.legend()
    ax2.legend()
    fig.tight_layout()
    return save_figure(fig, out, "sine-training.png")


def plot_predictions(runs, noisy, clean, cfg, out, n=3):
    """Rows: test waves. Left: one-step predictions. Right: free running after a prefix."""
    plt = pyplot()
    P, T = cfg["prefix"], cfg["steps"]
    fig, axes = plt.subplots(n, 2, figsize=(13, 2.4 * n + 0.8), sharey="row",
                             gridspec_kw={"width_ratios": [T, P + cfg["generate"]]})
    styles = {"gru": ("tab:blue", "-"), "lstm": ("tab:orange", "--")}
    one_step = {name: predict_next(r["model"], noisy[:T - 1, :n]) for name, r in runs.items()}
    dreams = {name: free_run(r["model"], noisy[:P, :n], cfg["generate"])
              for name, r in runs.items()}
    for i in range(n):
        left, right = axes[i]
        t = np.arange(T)
        left.plot(t, noisy[:T, i, 0], ".", color="grey", ms=4, label="noisy samples (read)")
        left.plot(t, clean[:T, i, 0], color="black", lw=1, label="clean wave (the truth)")
        left.axvspan(0, cfg["warmup"], color="grey", alpha=0.15, lw=0,
                     label="warm-up, not scored")
        for name, pred in one_step.items():
            color, ls = styles.get(name, (None, "-"))
            left.plot(t[1:], pred[:, i, 0], color=color, ls=ls, lw=1.4, label=name)

        t = np.arange(P + cfg["generate"])
        right.plot(t[:P], noisy[:P, i, 0], ".", color="grey", ms=4)
        right.plot(t, clean[:len(t), i, 0], color="black", lw=1)
        right.axvspan(P - 0.5, t[-1], color="tab:green", alpha=0.08, lw=0,
                      label="fed its own predictions")
        right.axvline(T - 1, color="tab:red", ls=":", lw=1, label="length seen in training")
        for name, dream in dreams.items():
            color, ls = styles.get(name, (None, "-"))
            right.plot(t[1:], dream[:, i, 0], color=color, ls=ls, lw=1.4)
        left.set_ylabel(f"test wave {i + 1}")
    axes[0, 0].set_title("One-step prediction: sample t+1 from the samples up to t")
    axes[0, 1].set_title(f"Free running with rnn.step: {P} real samples, then its own "
                         "predictions")
    axes[-1, 0].set_xlabel("step t")
    axes[-1, 1].set_xlabel("step t")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    more = axes[0, 1].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.legend(handles + more[0], labels + more[1], loc="lower center", ncol=7, fontsize=9,
               frameon=False)
    return save_figure(fig, out, "sine-predictions.png")


def free_run_score(runs, noisy, clean, cfg, horizon=20):
    """Relative MSE of the first ``horizon`` generated samples against the clean wave."""
    P = cfg["prefix"]
    horizon = min(horizon, cfg["generate"])
    truth = clean[P:P + horizon]
    return {name: float(np.mean((free_run(r["model"], noisy[:P], horizon)[P - 1:] - truth) ** 2)
                        / np.var(truth))
            for name, r in runs.items()}


# ---------------------------------------------------------------- the protocol
def run(backend="numba", out="out", seed=0, quick=False, progress=None, settings=None):
    """Train a GRU and an LSTM on the same waves, score them, draw the figures."""
    cfg = configure(quick, settings)
    runs = {}
    with Timer() as total, one_blas_thread():
        for variant in MODELS:
            say(f"{NAME}: training a {variant} (H={cfg['hidden_size']}) on "
                f"{cfg['train_waves']} noisy waves of {cfg['steps']} steps, {cfg['epochs']} epochs")
            runs[variant] = train(variant, backend, seed, cfg, progress, evaluate=True)
            say(f"{NAME}: {variant} relative MSE {runs[variant]['relative_mse']:.4f} "
                f"against the clean wave ({runs[variant]['seconds']:.1f} s)")
        # longer waves for the figures and the free-running score, from the test distribution
        length = max(cfg["steps"], cfg["prefix"] + cfg["generate"])
        show = waves(np.random.default_rng([seed, 1]), cfg["test_waves"], length, cfg["noise"])
        dream = free_run_score(runs, *show, cfg)
        say(f"{NAME}: free running, first 20 generated samples: "
            + ", ".join(f"{k} {v:.3f}" for k, v in dream.items()))
        figures = [plot_training(runs, cfg["noise"], out), plot_predictions(runs, *show, cfg, out)]
    say(f"{NAME}: figures in {out}")
    keys = ("relative_mse", "relative_mse_noisy", "noise_floor")
    models = {name: {**{k: r[k] for k in keys}, "free_run_relative_mse": dream[name],
                     "final_loss": r["history"].epoch_loss[-1],
                     "params": r["model"].num_params(), "train_seconds": r["seconds"]}
              for name, r in runs.items()}
    return {"demo": NAME, "backend": backend, "seed": seed, "quick": quick,
            "relative_mse": max(m["relative_mse"] for m in models.values()),
            "relative_mse_target": "clean wave", "models": models,
            "seconds": total.seconds, "settings": cfg, "figures": figures}


def train_variant(variant, backend="numba", seed=0, quick=False, progress=None, settings=None):
    """``minigru race``: train ``variant`` on the waves; the common result fields."""
    cfg = configure(quick, settings)
    with one_blas_thread():
        r = train(variant, backend, seed, cfg, progress)
    return {"metric": "relative_mse", "value": r["relative_mse"], "higher_is_better": False,
            "params": r["model"].num_params(), "seconds_per_epoch": r["seconds"] / cfg["epochs"],
            "loss": r["history"].epoch_loss, "relative_mse_noisy": r["relative_mse_noisy"]}


if __name__ == "__main__":
    sys.exit(main(run, NAME, __doc__))
