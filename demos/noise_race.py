"""The noise race: Dey & Salem's GRU-variant comparison, and what a loss on pure noise means.

Dey & Salem (2017, "Gate-variants of gated recurrent unit neural networks") proposed GRU1, GRU2
and GRU3, which feed the gates less (no input; no input and no bias; the bias alone) and so have
fewer parameters. A popular TensorFlow repository compared them with a benchmark that is easy to
run and easy to misread: the inputs are ``rand(1000, 20, 500)`` (1000 sequences of 20 steps of
500 features, uniform on [0, 1)), the targets ``rand(1000, 500)`` are drawn *independently* of
them, and the model (hidden size 500; the last output through a linear layer, 500 -> 500, no
activation, as Keras' ``Dense(500)``) is trained with the mean squared error, Adam lr 5e-4,
batches of 50, for 50 epochs. We run it for ``gru_v3`` (the repository's "GRU0", the textbook
GRU), ``gru1``, ``gru2``, ``gru3`` and ``gru`` (the framework-native cuDNN/PyTorch GRU, its
"GRU4"), in float32, and report for each its parameter count, its time per epoch and its
training loss, which falls for all of them.

The lesson is in the column the benchmark did not have. Since the targets are independent of the
inputs, no model can predict them: the best possible prediction is the mean 0.5, whose MSE is
the variance of U(0, 1), 1/12 = 0.0833. A training loss below 1/12 therefore measures
*memorisation* of the 1000 training targets (the models have 0.75 to 1.75 million parameters
for 500,000 target numbers), and the loss on fresh noise (new inputs, new targets), shown next
to it, stays at or above 1/12. On this task, "lower training loss" means "memorises faster", not
"a better recurrent cell". With seed 0 the five end with training losses from 0.053 (gru1) to
0.066 (gru) and held-out losses from 0.094 to 0.105, all worse than predicting 0.5: every model
memorised, none predicts, and the held-out loss rises as the training loss falls.

Run it:

    python -m minigru demo noise-race [--quick] [--out DIR] [--seed S] [--no-progress]
    python demos/noise_race.py --quick
    minigru race --task noise --variants gru_v3,gru1,gru2,gru3,gru

Duration on the development machine (2 idle cores, numpy backend, float32), measured per epoch
of 1000 sequences: gru_v3 1.48 s, gru 1.36 s, gru1 0.89 s, gru2 0.85 s, gru3 0.51 s, plus about
a third of that for the held-out evaluation after each epoch; the whole default run (50 epochs
of the five) took 346 s. ``--quick`` (200 sequences of 20 steps of 100 features, hidden size
200, batches of 10, 60 epochs) took 25 s.

``settings`` (a dict given to ``run`` or ``train_variant``) overrides any of these keys:

    samples      training sequences (1000)          heldout    fresh sequences for the test (1000)
    timesteps    steps per sequence (20)            features   input and output features (500)
    hidden       hidden size H (500)                epochs     training epochs (50)
    batch        sequences per step (50)            lr         Adam's learning rate (5e-4)
    variants     the variants to compare (run only)
    seeds        seeds per variant (1): with more, ``run`` reports each figure as the mean ± std
                 over seeds, through ``minigru race``, so that a gap between two variants can be
                 set against the spread a change of seed alone makes (run only)
    jobs         runs in parallel, processes (1) (run only)
"""

import sys
import time

import numpy as np

import minigru as mg

try:
    from ._common import main, merge_settings, pyplot, save_figure, say
    from .race import race_runs, summarise
except ImportError:                                   # run as a script: python demos/noise_race.py
    from minigru.demos._common import main, merge_settings, pyplot, save_figure, say
    from minigru.demos.race import race_runs, summarise

NAME = "noise-race"
BASELINE = 1 / 12           # Var(U(0, 1)): the MSE of predicting 0.5, the best one can do
REPO_NAMES = {"gru_v3": "GRU0", "gru1": "GRU1", "gru2": "GRU2", "gru3": "GRU3", "gru": "GRU4"}

DEFAULTS = {"samples": 1000, "timesteps": 20, "features": 500, "hidden": 500, "epochs": 50,
            "batch": 50, "lr": 5e-4, "heldout": 1000, "variants": list(REPO_NAMES), "seeds": 1,
            "jobs": 1}
QUICK = {**DEFAULTS, "samples": 200, "features": 100, "hidden": 200, "epochs": 60, "batch": 10,
         "heldout": 200}


def config(quick=False, settings=None):
    """The defaults (or the quick ones), with ``settings`` on top; unknown keys are an error."""
    return merge_settings(NAME, DEFAULTS, QUICK, quick, settings)


def make_noise(n, cfg, rng):
    """x (T, n, I) and y (n, I), independent U[0, 1) noise; x drawn as rand(n, T, I)."""
    x = rng.random((n, cfg["timesteps"], cfg["features"]), dtype=np.float32)
    y = rng.random((n, cfg["features"]), dtype=np.float32)
    return np.ascontiguousarray(x.transpose(1, 0, 2)), y     # time-major, as minigru wants


def predict(model, x, chunk=250):
    """The head on the last output, ``chunk`` sequences at a time (the caches stay small)."""
    return np.concatenate([model.head.forward(model.rnn.forward(x[:, i:i + chunk])[0][-1])
                           for i in range(0, x.shape[1], chunk)])


def train_variant(variant, backend="numba", seed=0, quick=False, progress=None, settings=None):
    """Train one variant on the noise task; its held-out MSE is the race metric.

    Every variant gets the same data (seeded by ``seed`` alone) and the same batch order.
    """
    cfg = config(quick, settings)
    x, y = make_noise(cfg["samples"], cfg, np.random.default_rng([seed, 0]))
    x_new, y_new = make_noise(cfg["heldout"], cfg, np.random.default_rng([seed, 1]))
    H, I = cfg["hidden"], cfg["features"]
    model = mg.Model(rnn=mg.RNN(variant, I, H, backend=backend, dtype=np.float32, seed=seed),
                     head=mg.Linear(H, I, dtype=np.float32, seed=seed + 1))
    opt = mg.optim.Adam(model.params, lr=cfg["lr"])
    shuffle = np.random.default_rng([seed, 2])
    B, N = cfg["batch"], cfg["samples"]
    order = []

    def step(i):                    # batch i of the epoch; a new shuffle at the first batch
        if i == 0:
            order[:] = shuffle.permutation(N)
        rows = order[i * B:(i + 1) * B]
        ys, _ = model.rnn.forward(x[:, rows])
        loss, dpred = mg.losses.mse(model.head.forward(ys[-1]), y[rows])
        dys = np.zeros_like(ys)
        dys[-1] = model.head.backward(dpred)          # only the last output feeds the loss
        model.rnn.backward(dys)
        return loss

    eval_seconds = []

    def evaluate(m):
        start = time.perf_counter()
        mse = float(mg.losses.mse(predict(m, x_new), y_new)[0])
        eval_seconds.append(time.perf_counter() - start)
        return mse

    start = time.perf_counter()
    history = mg.fit(model, step, list(range(-(-N // B))), opt, epochs=cfg["epochs"],
                     evaluate=evaluate, rng=shuffle, progress=progress,
                     desc=f"noise {variant}")
    seconds = time.perf_counter() - start - sum(eval_seconds)
    return {"metric": "heldout_mse", "value": history.eval[-1], "higher_is_better": False,
            "params": int(model.num_params()), "rnn_params": int(model.rnn.num_params()),
            "seconds_per_epoch": seconds / cfg["epochs"], "loss": history.epoch_loss,
            "heldout": history.eval}


def run(backend="numba", out="out", seed=0, quick=False, progress=None, settings=None):
    """Race the variants on noise; plot training and held-out losses against 1/12."""
    cfg = config(quick, settings)
    start = time.perf_counter()
    say(f"noise race: {cfg['samples']} sequences of rand({cfg['timesteps']}, {cfg['features']}) "
        f"-> rand({cfg['features']}) drawn independently; hidden {cfg['hidden']}, "
        f"{cfg['epochs']} epochs; head: linear {cfg['hidden']} -> {cfg['features']} on the last "
        f"output. Best possible MSE on new noise: 1/12 = {BASELINE:.4f}")
    runs = race_runs("noise", cfg["variants"], cfg["seeds"], backend=backend, seed=seed,
                     quick=quick, settings=cfg, jobs=cfg["jobs"], progress=progress)
    models = {}
    for variant, spread in summarise(runs).items():      # one variant's seeds, averaged
        rs = [r for r in runs if r["variant"] == variant]
        r = models[variant] = {**rs[0], "seeds": spread["seeds"], "loss": spread["loss"],
                               "seconds_per_epoch": spread["seconds_per_epoch"],
                               "heldout": np.mean([x["heldout"] for x in rs], axis=0).tolist(),
                               "loss_end": [x["loss"][-1] for x in rs],
                               "heldout_end": [x["heldout"][-1] for x in rs]}
        say(f"  {variant:<7} ({REPO_NAMES.get(variant, variant)}) {r['params']:>9} params "
            f"{r['seconds_per_epoch']:6.2f} s/epoch  training loss {_spread(r['loss_end'])}  "
            f"held-out {_spread(r['heldout_end'])}"
            + ("  <- below 1/12 on the training set: memorised" if r["loss"][-1] < BASELINE
               else ""))
    figure = plot(models, cfg, out)
    seconds = time.perf_counter() - start
    say(f"noise race: {seconds:.0f} s in all; figure {figure}")
    return {"demo": NAME, "baseline": BASELINE,
            "models": {v: {"repo_name": REPO_NAMES.get(v, v), "params": r["params"],
                           "rnn_params": r["rnn_params"],
                           "seconds_per_epoch": r["seconds_per_epoch"],
                           "train_loss": r["loss"][-1], "heldout_mse": r["heldout"][-1],
                           "memorised": bool(r["loss"][-1] < BASELINE), "seeds": r["seeds"],
                           "train_loss_std": _std(r["loss_end"]),
                           "heldout_mse_std": _std(r["heldout_end"])}
                       for v, r in models.items()},
            "settings": {k: v for k, v in cfg.items() if k != "variants"},
            "backend": backend, "seed": seed, "quick": quick, "seconds": seconds,
            "figures": [figure]}


def _std(values):
    """The sample standard deviation over seeds (0 for one seed)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _spread(values):
    return f"{np.mean(values):.4f}" + (f" ± {_std(values):.4f}" if len(values) > 1 else "")


def plot(models, cfg, out):
    plt = pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FormatStrFormatter

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    epochs = np.arange(1, cfg["epochs"] + 1)
    handles = []
    for i, (v, r) in enumerate(models.items()):
        color = f"C{i}"
        ax1.plot(epochs, r["loss"], color=color)
        ax1.plot(epochs, r["heldout"], color=color, ls="--")
        handles.append(Line2D([], [], color=color, label=f"{v} ({REPO_NAMES.get(v, v)})"))
    ax1.axhline(BASELINE, color="black", lw=1.2)
    handles += [Line2D([], [], color="gray", label="training loss (targets seen in training)"),
                Line2D([], [], color="gray", ls="--", label="held-out MSE (fresh noise)"),
                Line2D([], [], color="black", lw=1.2, label="1/12: predict 0.5, the best possible")]
    ax1.set(xlabel="epoch", ylabel="MSE (log scale)", yscale="log",
            title=f"Independent noise: {cfg['samples']} sequences of {cfg['timesteps']} x "
                  f"{cfg['features']}, hidden {cfg['hidden']}")
    ax1.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
    ax1.yaxis.set_minor_formatter(FormatStrFormatter("%.2f"))
    ax1.tick_params(axis="y", which="minor", labelsize=7)
    ax1.grid(alpha=0.3, which="both")
    ax1.legend(handles=handles, fontsize=7.5, loc="lower left")

    names = list(models)
    at = np.arange(len(names))
    train = [models[v]["loss"][-1] for v in names]
    held = [models[v]["heldout"][-1] for v in names]
    n_seeds = len(models[names[0]]["seeds"])
    spread = {"capsize": 4} if n_seeds > 1 else {}      # error bars: ± std over the seeds
    ax2.bar(at - 0.2, train, 0.4, label="training loss", color="tab:blue",
            yerr=[_std(models[v]["loss_end"]) for v in names] if n_seeds > 1 else None, **spread)
    ax2.bar(at + 0.2, held, 0.4, label="held-out MSE", color="tab:orange",
            yerr=[_std(models[v]["heldout_end"]) for v in names] if n_seeds > 1 else None,
            **spread)
    ax2.axhline(BASELINE, color="black", lw=1.2, label="1/12")
    for i, v in enumerate(names):
        ax2.annotate(f"{models[v]['params'] / 1e6:.2f}M\n{models[v]['seconds_per_epoch']:.2f} s/ep",
                     (i, max(train[i], held[i])), ha="center", va="bottom", fontsize=7)
    ax2.set_xticks(at, [f"{v}\n{REPO_NAMES.get(v, v)}" for v in names])
    ax2.set(ylabel="MSE after the last epoch", title="Final: memorised vs new noise\n"
            "(parameters, seconds per epoch)" + (f"; mean ± std of {n_seeds} seeds"
                                                 if n_seeds > 1 else ""),
            ylim=(0, 1.45 * max(train + held + [BASELINE])))
    ax2.legend(fontsize=7.5, loc="upper center", ncol=3)
    return save_figure(fig, out, "noise-race.png")


if __name__ == "__main__":
    sys.exit(main(run, NAME, __doc__))
