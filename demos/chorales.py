"""Bach chorales: predict the next chord of four-part harmony, the papers' polyphonic-music task.

A chorale is four voices (soprano, alto, tenor, bass) moving together. As a piano roll it is a
sequence of 88-key frames, one per eighth note, each frame the set of keys sounding (mostly
four; fewer where voices rest or double). The network reads the frames so far and predicts the
next one as 88 independent probabilities, one per key (a sigmoid each); its loss is the
**negative log-likelihood per step, summed over the 88 keys**, the measure of
Boulanger-Lewandowski et al. (2012) that Chung et al. (2014, "Empirical evaluation of gated
recurrent neural networks on sequence modeling") and the RRU paper (Zakovskis et al. 2021,
"Gates are not what you need in RNNs") report for JSB Chorales. Lower is better; a model that
knows nothing pays 88 · ln 2 = 61 nats per step, one that only learnt how often each key is down
11.5 on the test chorales.

The data are the 348 distinct chorales of music21's corpus (``minigru/data/chorales.npz``,
shipped with minigru; ``tools/make_chorales.py`` made it), split by piece into 209 training,
70 validation and 69 test chorales. Each variant is trained on whole chorales for ``epochs``
epochs; after each, the validation NLL decides whether this is the best epoch so far, and the
reported figure is the **test NLL of the best-validation epoch**. gru, lstm and rru race over
``seeds`` seeds (``minigru race`` underneath: mean ± std, the runs in parallel). Then the best
variant continues a test chorale from its first bars: what does it write? Its 88 keys are drawn
independently given the state, so nothing holds a written frame to four voices: it writes
thinner, looser chords than Bach (what the RNN-RBM of Boulanger-Lewandowski et al. was made
to mend).

With the defaults (H = 128, 40 epochs, 3 seeds) the test NLL per step came out as rru
6.37 ± 0.07, gru 7.39 ± 0.08, lstm 7.59 ± 0.02, rnn 8.31 ± 0.15. The rru learns fastest and
then memorises (its training NLL falls to 2.2 while its validation NLL climbs back from 6.2 to
9): its best epoch is the 11th or 12th, the gated cells' the last few. At the same H it also
has about twice gru's parameters (216k against 95k). The papers' figures, test NLL on JSB
Chorales: Chung et al. 2014, GRU 8.54; the RRU paper, RRU 7.72, GRU 8.20, LSTM 8.33. They are
not ours to beat or lose to: JSB Chorales has 382 chorales sampled at quarter notes and another
split, and an eighth-note step holds the same chord twice as often, which makes each step
easier to predict. The order, rru < gru < lstm, is the RRU paper's.

Run it::

    minigru demo chorales [--out DIR] [--seed S] [--quick]
    minigru race --task chorales --variants gru,lstm,rru,mingru --seeds 3 --jobs 2

Its last line is a JSON object with ``models: {variant: {"test_nll": mean, "test_nll_std",
"test_nll_values", "valid_nll", "best_epoch", ...}}`` and ``best`` (the variant drawn).

``settings`` (a dict, for ``run`` and ``train_variant``) overrides these defaults:

    variants      gru, lstm, rru   (run only)
    seeds         2       seeds per variant (run only)
    jobs          None    runs in parallel: None = as many as cores and runs allow (run only)
    hidden_size   128     H
    epochs        12
    batch_size    16      chorales per batch (of similar lengths, padded at the end)
    lr            0.003   Adam's learning rate, annealed along a cosine
    clip          5.0     gradient norm clipping
    prime         32      steps of the test chorale the model reads before it writes
    generate      64      steps it writes

``--quick`` trains H = 64 for 8 epochs, one seed.
"""

import importlib.util
import os
import sys
import time

import numpy as np

import minigru as mg
from minigru import data

try:
    from ._common import Timer, main, merge_settings, one_blas_thread, pyplot, save_figure, say
    from .race import race_runs, summarise
except ImportError:  # run as a file (python demos/chorales.py): there is no package
    from minigru.demos._common import (
        Timer, main, merge_settings, one_blas_thread, pyplot, save_figure, say)
    from minigru.demos.race import race_runs, summarise

NAME = "chorales"
KEYS = 88
PAPERS = {"Chung et al. 2014 (JSB, quarter notes)": {"gru": 8.54},
          "Zakovskis et al. 2021, RRU paper (JSB, quarter notes)":
              {"rru": 7.72, "gru": 8.20, "lstm": 8.33}}
DEFAULTS = {"variants": ["gru", "lstm", "rru", "rnn"], "seeds": 3, "jobs": None,
            "hidden_size": 128, "epochs": 40, "batch_size": 8, "lr": 1e-2, "clip": 5.0,
            "prime": 32, "generate": 64}
QUICK = {"variants": ["gru", "lstm", "rru"], "seeds": 1, "hidden_size": 64, "epochs": 15}


def configure(quick=False, settings=None):
    """The defaults, with ``QUICK`` when ``quick``, then ``settings`` on top."""
    return merge_settings(NAME, DEFAULTS, QUICK, quick, settings)


# ---------------------------------------------------------------- the data
def pairs(roll):
    """Inputs and targets of one chorale: x (T, 88) = [silence, frame 0 .. T-2], y = frames
    0 .. T-1, so every frame is predicted, the first from nothing."""
    x = np.zeros(roll.shape, np.float32)
    x[1:] = roll[:-1]
    return x, roll.astype(np.float32)


def batches(rolls, size, order=None):
    """Batches of ``size`` chorales of similar lengths: (x, y, mask), x and y (T, B, 88), mask
    (T, B) true on real steps. Chorales are sorted by length so that little is padding."""
    idx = np.argsort([len(r) for r in rolls], kind="stable")
    groups = [idx[i:i + size] for i in range(0, len(idx), size)]
    if order is not None:
        groups = [groups[i] for i in order.permutation(len(groups))]
    out = []
    for g in groups:
        T = max(len(rolls[i]) for i in g)
        x = np.zeros((T, len(g), KEYS), np.float32)
        y = np.zeros((T, len(g), KEYS), np.float32)
        mask = np.zeros((T, len(g)), bool)
        for b, i in enumerate(g):
            xi, yi = pairs(rolls[i])
            x[:len(xi), b], y[:len(yi), b], mask[:len(xi), b] = xi, yi, True
        out.append((x, y, mask))
    return out


def build(variant, hidden_size, backend="numba", seed=0, **options):
    """The model: an RNN of ``variant`` (``options`` go to it: regularisers, init=, ...) and a
    Linear head to the 88 keys' logits."""
    rnn = mg.RNN(variant, KEYS, hidden_size, backend=backend, seed=seed, **options)
    return mg.Model(rnn=rnn, head=mg.Linear(rnn.output_size, KEYS, seed=seed + 1))


def nll(model, x, y, mask):
    """(summed NLL over the real steps and keys, their number of steps, dLoss_sum/dlogits):
    padding at the end of a forward-only RNN changes nothing before it, so the mask is
    enough (no ``lengths`` needed)."""
    ys, _ = model.rnn.forward(x)
    logits = model.head.forward(ys)                                   # (T, B, 88)
    loss, g = mg.losses.bce_with_logits(logits[mask], y[mask], reduction="sum")
    dlogits = np.zeros_like(logits)
    dlogits[mask] = g
    return float(loss), int(mask.sum()), dlogits


def split_nll(model, batched):
    """NLL per step (summed over keys) over every step of every chorale of a split."""
    total = steps = 0
    for x, y, mask in batched:
        loss, n, _ = nll(model, x, y, mask)
        total, steps = total + loss, steps + n
    return total / steps


# ---------------------------------------------------------------- training
def train(variant, backend, seed, cfg, progress, options=None):
    """Train on the training chorales; the best-validation epoch's parameters and scores.
    ``options`` go to the RNN (the regularisers demo's)."""
    chorales = data.chorales()
    valid = batches(chorales["valid"], 32)
    test = batches(chorales["test"], 32)
    model = build(variant, cfg["hidden_size"], backend, seed, **(options or {}))
    opt = mg.optim.Adam(model.params, lr=cfg["lr"])
    schedule = mg.optim.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    shuffle = np.random.default_rng([seed, 7])
    best = {"valid_nll": np.inf}
    curves = {"valid": [], "test": []}

    def step(batch):
        x, y, mask = batch
        loss, n, dlogits = nll(model, x, y, mask)
        model.rnn.backward(model.head.backward(dlogits / n))          # the mean over steps
        return loss / n

    def evaluate(m):
        v, t = split_nll(m, valid), split_nll(m, test)
        curves["valid"].append(v)
        curves["test"].append(t)
        if v < best["valid_nll"]:                 # the test NLL of this epoch is the one kept
            best.update(valid_nll=v, test_nll=t, epoch=len(curves["valid"]),
                        state=m.state_dict())
        return v

    with Timer() as t:
        history = mg.fit(model, step, lambda e: batches(chorales["train"], cfg["batch_size"],
                                                        shuffle),
                         opt, epochs=cfg["epochs"], clip=cfg["clip"], scheduler=schedule,
                         evaluate=evaluate, rng=shuffle, progress=progress,
                         desc=f"{variant} on chorales")
    return {"history": history, "curves": curves, "best": best, "seconds": t.seconds,
            "params": model.num_params()}


def train_variant(variant, backend="numba", seed=0, quick=False, progress=None, settings=None):
    """``minigru race``: train ``variant``; the test NLL of its best-validation epoch."""
    cfg = configure(quick, settings)
    with one_blas_thread():
        r = train(variant, backend, seed, cfg, progress)
    b = r["best"]
    return {"metric": "test_nll", "value": b["test_nll"], "higher_is_better": False,
            "params": int(r["params"]), "seconds_per_epoch": r["seconds"] / cfg["epochs"],
            "loss": r["history"].epoch_loss, "valid": r["curves"]["valid"],
            "test": r["curves"]["test"], "valid_nll": b["valid_nll"], "best_epoch": b["epoch"],
            "state": b["state"]}


# ---------------------------------------------------------------- the continuation
def continue_chorale(model, roll, prime, steps, rng):
    """The model reads ``prime`` frames of ``roll``, then writes ``steps`` more, each key drawn
    from its own Bernoulli; also the probabilities it gave every true frame. Returns
    (prime + written (prime + steps, 88) bool, probabilities (T, 88))."""
    model.eval()
    x, _ = pairs(roll)
    ys, _ = model.rnn.forward(x[:, None])
    probs = mg.losses.sigmoid(model.head.forward(ys)[:, 0].astype(np.float64))   # (T, 88)
    ys, state = model.rnn.forward(x[:prime + 1, None])     # reads frames 0 .. prime - 1
    p = mg.losses.sigmoid(model.head.forward(ys[-1]).astype(np.float64))          # (1, 88)
    out = [roll[:prime]]
    for _ in range(steps):
        frame = rng.random(p.shape) < p                                            # (1, 88)
        out.append(frame)
        y, state = model.rnn.step(frame.astype(np.float32), state)
        p = mg.losses.sigmoid(model.head.forward(y).astype(np.float64))
    return np.concatenate(out).astype(bool), probs


NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _keys_axis(ax, low, high, lowest_midi):
    cs = [k for k in range(low, high + 1) if (k + lowest_midi) % 12 == 0]
    ax.set_yticks(cs, [f"C{(k + lowest_midi) // 12 - 1}" for k in cs])
    ax.set_ylim(low - 0.5, high + 0.5)


def plot_continuation(roll, written, probs, name, variant, piece_nll, cfg, lowest_midi, out):
    plt = pyplot()
    used = np.flatnonzero(roll.any(0) | written.any(0))
    low, high = max(used.min() - 2, 0), min(used.max() + 2, KEYS - 1)
    T = len(written)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    shown = min(T, len(roll))
    im = top.imshow(probs[:shown].T, origin="lower", aspect="auto", cmap="Oranges", vmin=0,
                    vmax=1, interpolation="nearest")
    t, k = np.nonzero(roll[:shown])
    top.scatter(t, k, marker="s", s=9, facecolors="none", edgecolors="black", lw=0.7)
    top.set_title(f"{name} (test), as Bach wrote it (squares), and the probability {variant} "
                  f"gave each key one step ahead (colour): {piece_nll:.2f} nats per step")
    bottom.imshow(written.T, origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1.3,
                  interpolation="nearest")
    bottom.axvline(cfg["prime"] - 0.5, color="tab:red", lw=1.5)
    bottom.text(cfg["prime"] / 2, high, "Bach (the prime)", ha="center", va="top",
                color="tab:red")
    bottom.text(cfg["prime"] + cfg["generate"] / 2, high, f"{variant} continues (sampled)",
                ha="center", va="top", color="tab:red")
    bottom.set_title(f"the first {cfg['prime']} steps read, then {cfg['generate']} written by "
                     f"the model, each key drawn from its predicted probability")
    bottom.set_xlabel("step (eighth notes)")
    for ax in (top, bottom):
        _keys_axis(ax, low, high, lowest_midi)
        ax.set_ylabel("key")
        for bar in range(0, T, 8):                                   # 4/4: a bar is 8 eighths
            ax.axvline(bar - 0.5, color="tab:blue", lw=0.3, alpha=0.5)
    fig.colorbar(im, ax=[top, bottom], fraction=0.03, pad=0.01, shrink=0.5, anchor=(0, 1),
                 label="p(key on), top")
    return save_figure(fig, out, "chorales-continuation.png")


def plot_learning(models, runs, out):
    """Validation (solid) and training (dashed) NLL per epoch, mean ± std over seeds; the test
    NLL of the best-validation epoch, mean ± std and each seed."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    names = list(models)
    for i, v in enumerate(names):
        rs = [r for r in runs if r["variant"] == v]
        for key, ls, label in (("valid", "-", "validation"), ("loss", "--", "training")):
            c = np.array([r[key] for r in rs])                       # (seeds, epochs)
            epochs = np.arange(1, c.shape[1] + 1)
            ax1.plot(epochs, c.mean(0), ls, color=f"C{i}", label=f"{v} {label}")
            if len(rs) > 1:
                ax1.fill_between(epochs, c.mean(0) - c.std(0, ddof=1),
                                 c.mean(0) + c.std(0, ddof=1), color=f"C{i}", alpha=0.15, lw=0)
        ax1.plot([r["best_epoch"] for r in rs], [r["valid_nll"] for r in rs], "*",
                 color=f"C{i}", ms=10)
    ax1.set(xlabel="epoch", ylabel="NLL per step (nats, summed over 88 keys)",
            title="learning curves (stars: each run's best-validation epoch)")
    top = max(max(r["valid"][0] for r in runs), max(r["loss"][1] for r in runs))
    ax1.set_ylim(min(min(r["loss"]) for r in runs) - 0.3, top + 0.3)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=7.5, ncol=2)
    at = np.arange(len(names))
    means = [models[v]["mean"] for v in names]
    ax2.bar(at, means, yerr=[models[v]["std"] for v in names], capsize=6, alpha=0.6)
    for i, v in enumerate(names):
        vals = models[v]["values"]
        ax2.plot(np.full(len(vals), i) + np.linspace(-0.1, 0.1, len(vals)), vals, "o",
                 color="black", ms=3.5, zorder=3)
        top = max(max(vals), means[i] + models[v]["std"])            # above the error bar
        ax2.annotate(f"{means[i]:.3f}\n± {models[v]['std']:.3f}", (i, top), xytext=(0, 4),
                     textcoords="offset points", ha="center", va="bottom", fontsize=8)
    lo = min(min(models[v]["values"]) for v in names)
    hi = max(max(models[v]["values"] + [models[v]["mean"] + models[v]["std"]]) for v in names)
    ax2.set_xticks(at, [f"{v}\n{models[v]['params'] / 1e3:.0f}k params" for v in names],
                   fontsize=8.5)
    ax2.set(ylim=(lo - 0.6, hi + 0.6), ylabel="test NLL per step",
            title=f"test NLL at the best-validation epoch\n(mean ± std over "
                  f"{len(models[names[0]]['values'])} seed(s); dots: each seed)")
    return save_figure(fig, out, "chorales-learning.png")


# ---------------------------------------------------------------- the protocol
def run(backend="numba", out="out", seed=0, quick=False, progress=None, settings=None):
    """Race the variants over seeds, draw the curves and a continued chorale; the metrics."""
    cfg = configure(quick, settings)
    runs_total = len(cfg["variants"]) * cfg["seeds"]
    jobs = cfg["jobs"] or max(1, min(runs_total, os.cpu_count() or 1))
    if cfg["jobs"] is None and jobs > 1 and importlib.util.find_spec("joblib") is None:
        say(f'{NAME}: one run at a time (pip install "minigru[race]" to run them in parallel)')
        jobs = 1
    start = time.perf_counter()
    say(f"{NAME}: {', '.join(cfg['variants'])} x {cfg['seeds']} seed(s), H = "
        f"{cfg['hidden_size']}, {cfg['epochs']} epochs, {jobs} job(s) in parallel")
    runs = race_runs(NAME, cfg["variants"], cfg["seeds"], backend=backend, seed=seed,
                     quick=quick, settings=cfg, jobs=jobs, progress=progress)
    models = summarise(runs)
    say(f"\n{'variant':<8} {'test NLL (mean ± std)':>22} {'valid NLL':>10} {'best epoch':>11} "
        f"{'params':>8}")
    for v, m in sorted(models.items(), key=lambda kv: kv[1]["mean"]):
        rs = [r for r in runs if r["variant"] == v]
        say(f"{v:<8} {m['mean']:>13.3f} ± {m['std']:<6.3f} "
            f"{np.mean([r['valid_nll'] for r in rs]):>10.3f} "
            f"{'/'.join(str(r['best_epoch']) for r in rs):>11} {m['params']:>8}")
    # the figure's model: the variant best on validation, and its best seed (test stays unseen)
    valid_mean = {v: np.mean([r["valid_nll"] for r in runs if r["variant"] == v])
                  for v in models}
    best_variant = min(valid_mean, key=valid_mean.get)
    best_run = min((r for r in runs if r["variant"] == best_variant),
                   key=lambda r: r["valid_nll"])
    with one_blas_thread():
        model = build(best_variant, cfg["hidden_size"], backend, best_run["seed"])
        model.load_state_dict(best_run["state"])
        chorales = data.chorales()
        piece = int(np.argmax([len(r) for r in chorales["test"]][:20]))   # a long one
        roll = chorales["test"][piece]
        written, probs = continue_chorale(model, roll, cfg["prime"], cfg["generate"],
                                          np.random.default_rng([seed, 3]))
        x, y = pairs(roll)
        piece_nll = split_nll(model, [(x[:, None], y[:, None], np.ones((len(x), 1), bool))])
        figures = [plot_learning(models, runs, out),
                   plot_continuation(roll, written, probs, chorales["names"]["test"][piece],
                                     best_variant, piece_nll, cfg, chorales["lowest_midi"],
                                     out)]
    seconds = time.perf_counter() - start
    say(f"{NAME}: {best_variant} (best on validation) continued {chorales['names']['test'][piece]}"
        f"; {seconds:.0f} s in all; figures in {out}")
    return {"demo": NAME, "backend": backend, "seed": seed, "quick": quick,
            "models": {v: {"test_nll": m["mean"], "test_nll_std": m["std"],
                           "test_nll_values": m["values"], "seeds": m["seeds"],
                           "valid_nll": float(valid_mean[v]),
                           "best_epoch": [r["best_epoch"] for r in runs if r["variant"] == v],
                           "params": m["params"], "seconds_per_epoch": m["seconds_per_epoch"]}
                       for v, m in models.items()},
            "best": best_variant, "continued": chorales["names"]["test"][piece],
            "papers": PAPERS, "step": "eighth note", "chorales": {
                s: len(chorales[s]) for s in ("train", "valid", "test")},
            "jobs": jobs, "settings": cfg, "seconds": seconds, "figures": figures}


if __name__ == "__main__":
    sys.exit(main(run, NAME, __doc__))
