"""minigru race: train several variants on the same task, data and seed, and compare them.

    minigru race --task adding --variants rnn,gru,lstm,mingru

Every variant gets the same data, the same seed and the same training budget; the table and the
figures show the final metric, the parameter count and the time per epoch of each, and their
training-loss curves. Which variant wins depends on the task: that is the point of racing them.
"""

from . import TASKS, load
from ._common import pyplot, save_figure, say


def run_race(task, variants, *, backend="numba", out="out", seed=0, quick=False, progress=None):
    """Results of ``train_variant`` for each variant, a printed table, and two figures."""
    module = load(task, TASKS)
    models = {}
    for variant in variants:
        say(f"race {task}: training {variant}")
        models[variant] = module.train_variant(variant, backend=backend, seed=seed, quick=quick,
                                               progress=progress)
    first = next(iter(models.values()))
    metric, higher = first["metric"], first["higher_is_better"]
    say(f"\n{'variant':<8} {metric:>16} {'params':>8} {'s/epoch':>8}")
    for v, r in sorted(models.items(), key=lambda kv: kv[1]["value"], reverse=higher):
        say(f"{v:<8} {r['value']:>16.4g} {r['params']:>8} {r['seconds_per_epoch']:>8.3f}")
    figures = [_plot(task, models, metric, out)]
    return {"race": task, "metric": metric, "higher_is_better": higher, "backend": backend,
            "seed": seed, "quick": quick, "figures": figures,
            "models": {v: {k: r[k] for k in ("value", "params", "seconds_per_epoch", "loss")}
                       for v, r in models.items()}}


def _plot(task, models, metric, out):
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for v, r in models.items():
        ax1.plot(range(1, len(r["loss"]) + 1), r["loss"], label=v)
    ax1.set(xlabel="epoch", ylabel="training loss", yscale="log", title=f"{task}: training loss")
    ax1.legend()
    names = list(models)
    ax2.bar(names, [models[v]["value"] for v in names], color="tab:blue")
    for i, v in enumerate(names):
        ax2.annotate(f"{models[v]['params']} params\n{models[v]['seconds_per_epoch']:.2f} s/ep",
                     (i, models[v]["value"]), ha="center", va="bottom", fontsize=7)
    ax2.set(ylabel=metric, title=f"{task}: final {metric}")
    return save_figure(fig, out, f"race-{task}.png")
