"""minigru race: train variants x seeds on the same task, and compare them with error bars.

    minigru race --task adding --variants rnn,gru,lstm,mingru
    minigru race --task noise --variants gru,gru3 --seeds 5 --jobs 2
    minigru race --task chorales --variants gru,lstm,rru --seeds 3 \\
                 --engine dask --scheduler tcp://10.0.0.5:8786

Every variant gets the same data and training budget; seed ``s`` is the same for every variant
(the same data, shuffles and, where the sizes agree, initial draws), and ``--seeds N`` repeats
the race for seeds ``S, S+1, ..., S+N-1``. Each variant's metric is reported as the mean ± the
standard deviation over its seeds (sample standard deviation, n - 1 in the denominator; 0 for
one seed): a difference between two variants smaller than that spread is not a difference this
race can see. The table goes to stderr, a JSON object to stdout (and ``race-<task>.json``), the
figure (training curves, and the metric with error bars and each seed's value) to
``race-<task>.png``.

The ``variants x seeds`` runs are independent, so they run in parallel:

``--jobs N`` (engine ``joblib``, the default)
    N worker processes on this machine (joblib's loky backend), each held to one BLAS and one
    OpenMP thread: the models are small, and threads in each process would only fight over the
    cores the processes already share.
``--engine dask --scheduler ADDRESS``
    the same jobs on a Dask cluster, through joblib's Dask backend: start a scheduler
    (``dask scheduler``) and workers on as many machines as you like (``dask worker ADDRESS
    --nthreads 1`` on each, with minigru installed in the same version), then give the
    scheduler's address here. ``--jobs`` caps how many runs are in flight (default: as many
    as the cluster has worker threads).

Both need ``pip install "minigru[race]"`` (joblib, and dask's distributed scheduler).

Each run is a pure function of (task, variant, seed, settings): the results per seed are the
same serially, in processes or on a cluster, to the last bit.
"""

import contextlib
import json
import os
import sys
import time

import numpy as np

from minigru._io import atomic_write

from . import TASKS, load
from ._common import _jsonable, one_blas_thread, pyplot, save_figure, say

ENGINES = ("joblib", "dask")


# ---------------------------------------------------------------- running the jobs
def _train_one(task, variant, seed, backend, quick, settings, progress, worker=False):
    """One run, in whichever process or machine it lands on; a ``worker`` (a process of its
    own, one of several sharing the cores) is held to one BLAS thread."""
    module = load(task, TASKS)
    extra = {} if settings is None else {"settings": settings}
    with one_blas_thread() if worker else contextlib.nullcontext():
        result = module.train_variant(variant, backend=backend, seed=seed, quick=quick,
                                      progress=progress, **extra)
    return {"variant": variant, "seed": seed, **result}


def _check_options(seeds, jobs, engine, scheduler):
    from minigru import _check

    seeds = _check.positive_int("seeds", seeds)
    if jobs is not None:
        jobs = _check.positive_int("jobs", jobs)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "dask" and not scheduler:
        raise ValueError("engine 'dask' needs scheduler=ADDRESS (--scheduler tcp://HOST:8786), "
                         "the address of a running Dask scheduler")
    if engine == "joblib" and scheduler:
        raise ValueError(f"scheduler={scheduler!r} is for engine='dask'; the joblib engine "
                         f"runs on this machine (give --engine dask)")
    return seeds, jobs


def _bar(total, progress, desc):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="run", leave=False, dynamic_ncols=True)


def race_runs(task, variants, seeds=1, *, backend="numba", seed=0, quick=False, settings=None,
              jobs=None, engine="joblib", scheduler=None, progress=None):
    """The ``train_variant`` result of every (variant, seed), variant by variant, seeds in
    order; each dict also holds its ``variant`` and ``seed``.

    ``jobs`` None or 1 with the joblib engine runs them here, one after the other (with each
    run's own progress bar); otherwise through joblib (see the module docstring), with one bar
    over the runs.
    """
    seeds, jobs = _check_options(seeds, jobs, engine, scheduler)
    load(task, TASKS)                                 # an unknown task fails here, not remotely
    calls = [(task, v, seed + k, backend, quick, settings) for v in variants
             for k in range(seeds)]
    if engine == "joblib" and (jobs or 1) == 1:
        return [_train_one(*c, progress) for c in calls]

    try:
        from joblib import Parallel, delayed, parallel_config
    except ImportError:
        raise ImportError('running races in parallel needs joblib: pip install "minigru[race]"'
                          ) from None
    if engine == "dask":
        try:
            from distributed import Client
        except ImportError:
            raise ImportError('engine "dask" needs dask\'s distributed scheduler: '
                              'pip install "minigru[race]"') from None
        client = Client(scheduler, timeout="30s")
        config = parallel_config(backend="dask", client=client, wait_for_workers_timeout=60)
        n_jobs = jobs or -1
    else:
        client = None
        config = parallel_config(backend="loky", inner_max_num_threads=1)
        n_jobs = jobs
    bar = _bar(len(calls), progress, f"race {task}")
    try:
        with config:
            results = []
            for r in Parallel(n_jobs=n_jobs, return_as="generator")(
                    delayed(_train_one)(*c, False, True) for c in calls):
                results.append(r)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(last=f"{r['variant']} seed {r['seed']}")
    finally:
        if bar is not None:
            bar.close()
        if client is not None:
            client.close()
    return results


# ---------------------------------------------------------------- mean ± std
def summarise(runs, key="value"):
    """{variant: {"mean", "std", "values", "seeds", ...}} over the runs of each variant.

    ``std`` is the sample standard deviation (n - 1), 0.0 for a single seed; ``params`` and the
    mean ``seconds_per_epoch`` and per-epoch ``loss`` curve come along.
    """
    models = {}
    for r in runs:
        models.setdefault(r["variant"], []).append(r)
    out = {}
    for v, rs in models.items():
        values = np.array([float(r[key]) for r in rs])
        curves = [np.asarray(r["loss"], float) for r in rs]
        n = min(len(c) for c in curves)
        curves = np.stack([c[:n] for c in curves])
        out[v] = {"mean": float(values.mean()),
                  "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                  "values": values.tolist(), "seeds": [r["seed"] for r in rs],
                  "params": rs[0]["params"],
                  "seconds_per_epoch": float(np.mean([r["seconds_per_epoch"] for r in rs])),
                  "loss": curves.mean(axis=0).tolist(),
                  "loss_std": (curves.std(axis=0, ddof=1) if len(rs) > 1
                               else np.zeros(n)).tolist()}
    return out


def print_table(models, metric, higher):
    say(f"\n{'variant':<9} {metric + ' (mean ± std)':>26} {'seeds':>5} {'params':>8} "
        f"{'s/epoch':>8}")
    for v, m in sorted(models.items(), key=lambda kv: kv[1]["mean"], reverse=higher):
        say(f"{v:<9} {m['mean']:>15.5g} ± {m['std']:<8.2g} {len(m['values']):>5} "
            f"{m['params']:>8} {m['seconds_per_epoch']:>8.3f}")


# ---------------------------------------------------------------- the command
def run_race(task, variants, *, seeds=1, jobs=None, engine="joblib", scheduler=None,
             backend="numba", out="out", seed=0, quick=False, progress=None, settings=None):
    """Race ``variants`` over ``seeds`` seeds: the JSON result, a printed table, a figure and
    ``race-<task>.json`` under ``out``."""
    start = time.perf_counter()
    _check_options(seeds, jobs, engine, scheduler)
    say(f"race {task}: {', '.join(variants)} x {seeds} seed(s) from {seed}, "
        f"{'on ' + scheduler if engine == 'dask' else f'{jobs or 1} job(s)'}")
    runs = race_runs(task, variants, seeds, backend=backend, seed=seed, quick=quick,
                     settings=settings, jobs=jobs, engine=engine, scheduler=scheduler,
                     progress=progress)
    metric, higher = runs[0]["metric"], runs[0]["higher_is_better"]
    models = summarise(runs)
    print_table(models, metric, higher)
    figure = plot(task, models, metric, len(runs) // len(models), out)
    result = {"race": task, "metric": metric, "higher_is_better": higher, "backend": backend,
              "seed": seed, "seeds": seeds, "quick": quick, "jobs": jobs, "engine": engine,
              "models": {v: {"value": m["mean"], **m} for v, m in models.items()},
              "runs": [{"variant": r["variant"], "seed": r["seed"], "value": r["value"],
                        "seconds_per_epoch": r["seconds_per_epoch"]} for r in runs],
              "seconds": time.perf_counter() - start, "figures": [figure]}
    os.makedirs(out, exist_ok=True)
    result["json"] = atomic_write(os.path.join(out, f"race-{task}.json"), lambda f: f.write(
        json.dumps(result, default=_jsonable, indent=1).encode()))
    return result


def plot(task, models, metric, n_seeds, out, filename=None, title=None):
    """Training curves (mean, ± std shaded) and the metric per variant: mean, error bar (std),
    and each seed's value as a dot."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (v, m) in enumerate(models.items()):
        loss, spread = np.array(m["loss"]), np.array(m["loss_std"])
        epochs = np.arange(1, len(loss) + 1)
        ax1.plot(epochs, loss, color=f"C{i}", label=v)
        if n_seeds > 1:
            ax1.fill_between(epochs, loss - spread, loss + spread, color=f"C{i}", alpha=0.2,
                             lw=0)
    ax1.set(xlabel="epoch", ylabel="training loss", yscale="log", title="training loss"
            + (" (shaded: ± std)" if n_seeds > 1 else ""))
    ax1.legend()
    names = list(models)
    at = np.arange(len(names))
    means = [models[v]["mean"] for v in names]
    ax2.bar(at, means, yerr=[models[v]["std"] for v in names], capsize=6, color="tab:blue",
            alpha=0.6, error_kw={"lw": 1.5})
    for i, v in enumerate(names):
        vals = models[v]["values"]
        ax2.plot(np.full(len(vals), i) + np.linspace(-0.12, 0.12, len(vals)), vals, "o",
                 color="black", ms=3.5, zorder=3)
        top = max(max(vals), means[i] + models[v]["std"])            # above the error bar
        ax2.annotate(f"{means[i]:.4g} ± {models[v]['std']:.2g}\n{models[v]['params']} params",
                     (i, top), xytext=(0, 4), textcoords="offset points", ha="center",
                     va="bottom", fontsize=7)
    lo = min(min(models[v]["values"]) for v in names)
    hi = max(max(models[v]["values"] + [models[v]["mean"] + models[v]["std"]]) for v in names)
    span = max(hi - min(lo, 0), abs(hi)) or 1.0                  # room for the labels on top
    ax2.set_xticks(at, names)
    ax2.set(ylabel=metric, title=f"{metric}: mean, error bar ± std, dots: each seed",
            ylim=(min(lo, 0) - (0.1 * span if lo < 0 else 0), hi + 0.18 * span))
    fig.suptitle(f"{title or 'race ' + task}: " + (f"{n_seeds} seeds per variant"
                                                   if n_seeds > 1 else "one seed"))
    return save_figure(fig, out, filename or f"race-{task}.png")
