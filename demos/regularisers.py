"""Regularisers against overfitting: the same cell on the chorales, with and without each one.

The chorales demo shows the problem: the rru learns the training chorales fastest and then
memorises them, its validation NLL climbing back up after a dozen epochs while its training
NLL keeps falling. Here the same rru (the same seed, data, optimiser and schedule) is trained
once plain and once with each regulariser of docs/regularisers.md:

    none                  the plain cell
    input_dropout 0.2     a mask on each chorale's input keys, the same at every step
    recurrent_dropout 0.2 a mask on the state where it enters the product with J
    zoneout 0.15          each unit keeps its old value with probability 0.15, per step
    weight_dropout 0.2    DropConnect on the recurrent rows of J, one mask per batch

For each, the figure draws the training NLL (with the masks on) and the validation NLL per
epoch side by side, over the plain cell's validation curve; the JSON reports every run's best
validation NLL, its epoch and the **test NLL of that epoch**, and two held-out gains of each
regulariser (positive: it helped): ``test_gain``, the plain cell's test NLL at its best epoch
minus the regularised one's at its own (what remains after early stopping), and
``final_valid_gain``, the same for the validation NLL after the last epoch (what the
regulariser does for a run that is not stopped early).

Measured (defaults, seed 0, numba, 50 to 90 s on 2 cores): the plain rru is best at epoch 10
(valid 6.26, test 6.37) and ends at 7.32 on validation, its training NLL at 3.3. With recurrent
dropout, zoneout or weight dropout the best epoch moves to 18-19, the test NLL there improves
by 0.08-0.10 nats (early stopping had already rescued most of the plain run), and the last
epoch's validation NLL stays at 6.28-6.40, 0.92-1.04 nats better than the plain run's; input
dropout at 0.2 is still improving after 30 epochs (best at the last: test 0.01 worse than the
plain best, last validation 1.11 better).

Run it::

    minigru demo regularisers [--out DIR] [--seed S] [--quick]

``settings`` (for ``run``) overrides: ``variant`` (rru), ``runs`` (the table above, as
``{name: {option: rate}}``), ``jobs`` (None: as many as cores), and the chorales demo's
``hidden_size``, ``epochs``, ``batch_size``, ``lr``, ``clip``. ``--quick``: H = 64, 12 epochs.
"""

import importlib.util
import os
import sys
import time

import numpy as np

try:
    from . import chorales
    from ._common import main, merge_settings, one_blas_thread, pyplot, save_figure, say
except ImportError:  # run as a file (python demos/regularisers.py): there is no package
    from minigru.demos import chorales
    from minigru.demos._common import (main, merge_settings, one_blas_thread, pyplot,
                                       save_figure, say)

NAME = "regularisers"
RUNS = {"none": {}, "input_dropout": {"input_dropout": 0.2},
        "recurrent_dropout": {"recurrent_dropout": 0.2}, "zoneout": {"zoneout": 0.15},
        "weight_dropout": {"weight_dropout": 0.2}}
DEFAULTS = {"variant": "rru", "runs": RUNS, "jobs": None, "hidden_size": 128, "epochs": 30,
            "batch_size": 8, "lr": 1e-2, "clip": 5.0}
QUICK = {"hidden_size": 64, "epochs": 12}


def configure(quick=False, settings=None):
    return merge_settings(NAME, DEFAULTS, QUICK, quick, settings)


def train_one(name, options, variant, backend, seed, cfg, progress=False):
    """One run of the race: ``variant`` with ``options`` on the chorales (chorales.train)."""
    with one_blas_thread():
        r = chorales.train(variant, backend, seed, cfg, progress, options=options)
    b = r["best"]
    return {"name": name, "options": options, "train": list(r["history"].epoch_loss),
            "valid": r["curves"]["valid"], "test": r["curves"]["test"],
            "valid_nll": b["valid_nll"], "test_nll": b["test_nll"], "best_epoch": b["epoch"],
            "seconds": r["seconds"]}


def run_all(cfg, backend, seed, jobs, progress):
    calls = [(name, opts, cfg["variant"], backend, seed, cfg) for name, opts in cfg["runs"].items()]
    if jobs == 1:
        return [train_one(*c, progress) for c in calls]
    from joblib import Parallel, delayed, parallel_config
    with parallel_config(backend="loky", inner_max_num_threads=1):
        return Parallel(n_jobs=jobs)(delayed(train_one)(*c) for c in calls)


def plot(runs, variant, out):
    plt = pyplot()
    base = next((r for r in runs if r["name"] == "none"), None)
    n = len(runs)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), sharey=True,
                             squeeze=False)
    top = max(max(r["valid"][:3] + r["train"][:3]) for r in runs)
    for ax, r in zip(axes.flat, runs):
        epochs = np.arange(1, len(r["valid"]) + 1)
        if base is not None and r is not base:
            ax.plot(epochs, base["valid"], color="0.7", lw=1.5, label="none: validation")
        ax.plot(epochs, r["train"], "--", color="C0", label="training (masks on)")
        ax.plot(epochs, r["valid"], color="C3", label="validation")
        ax.axvline(r["best_epoch"], color="C3", lw=0.6, ls=":")
        gain = "" if base is None or r is base else (
            f"\ngain: test {base['test_nll'] - r['test_nll']:+.2f} (best epochs), "
            f"validation {base['valid'][-1] - r['valid'][-1]:+.2f} (last)")
        opts = ", ".join(f"{k}={v:g}" for k, v in r["options"].items()) or "plain"
        ax.set_title(f"{r['name']} ({opts}){gain}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, top * 1.05)
        ax.grid(alpha=0.3)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("NLL per step (nats)")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"{variant} on the chorales: training and validation NLL, with and without "
                 f"each regulariser", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out, "regularisers.png")


def run(backend="numba", out="out", seed=0, quick=False, progress=None, settings=None):
    """Train the cell with and without each regulariser; the figure and the held-out gains."""
    cfg = configure(quick, settings)
    jobs = cfg["jobs"] or max(1, min(len(cfg["runs"]), os.cpu_count() or 1))
    if cfg["jobs"] is None and jobs > 1 and importlib.util.find_spec("joblib") is None:
        jobs = 1
    start = time.perf_counter()
    say(f"{NAME}: {cfg['variant']} on the chorales, H = {cfg['hidden_size']}, "
        f"{cfg['epochs']} epochs, runs {', '.join(cfg['runs'])}, {jobs} job(s) in parallel")
    runs = run_all(cfg, backend, seed, jobs, progress)
    base = next((r for r in runs if r["name"] == "none"), None)
    say(f"\n{'run':<18} {'best valid':>10} {'epoch':>6} {'test NLL':>9} {'gain':>7} "
        f"{'last valid':>10} {'gain':>7} {'last train':>10}")
    for r in runs:
        gain = "" if base is None else f"{base['test_nll'] - r['test_nll']:+.3f}"
        final = "" if base is None else f"{base['valid'][-1] - r['valid'][-1]:+.3f}"
        say(f"{r['name']:<18} {r['valid_nll']:>10.3f} {r['best_epoch']:>6} "
            f"{r['test_nll']:>9.3f} {gain:>7} {r['valid'][-1]:>10.3f} {final:>7} "
            f"{r['train'][-1]:>10.3f}")
    figure = plot(runs, cfg["variant"], out)
    seconds = time.perf_counter() - start
    say(f"{NAME}: {seconds:.0f} s in all; figure {figure}")
    return {"demo": NAME, "backend": backend, "seed": seed, "quick": quick,
            "variant": cfg["variant"],
            "runs": {r["name"]: {"options": r["options"], "valid_nll": r["valid_nll"],
                                 "test_nll": r["test_nll"], "best_epoch": r["best_epoch"],
                                 "final_train_nll": r["train"][-1],
                                 "final_valid_nll": r["valid"][-1],
                                 "seconds": r["seconds"]} for r in runs},
            "test_gain": ({r["name"]: base["test_nll"] - r["test_nll"]
                           for r in runs if r is not base} if base is not None else {}),
            "final_valid_gain": ({r["name"]: base["valid"][-1] - r["valid"][-1]
                                  for r in runs if r is not base} if base is not None else {}),
            "jobs": jobs, "settings": cfg, "seconds": seconds, "figures": [figure]}


if __name__ == "__main__":
    sys.exit(main(run, NAME, __doc__))
