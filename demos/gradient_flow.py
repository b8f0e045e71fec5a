"""Gradient flow: why the plain RNN cannot learn the adding problem and the gated ones can.

Backpropagation through time carries the gradient of the loss backwards one step at a time:
dL/dh_{t-1} = dL/dh_t · dh_t/dh_{t-1}. In a tanh RNN each factor is U^T times the tanh slope, a
contraction, so the gradient shrinks geometrically: after a hundred steps nothing is left, and
the weights that should react to an input a hundred steps before the loss never hear of it —
the vanishing gradient (Hochreiter 1991; Bengio, Simard & Frasconi 1994). Gates change the
factor: where a GRU's update gate keeps the old state (z = 1) or an LSTM's forget gate keeps its
cell (f = 1), the factor is close to the identity and the gradient passes unchanged.

This demo draws that picture. It trains a one-layer rnn, gru and lstm on the adding problem
(T = 100, the data and training of demos/adding.py), and for a batch of test sequences measures
the norm of dL/dh_t at every step t, at initialisation and after training, where L is the
squared error of the prediction read from the *last* output only. At initialisation all three
lose the gradient at the same geometric rate (about a factor 0.6 per step: a GRU's update gate
starts near 1/2, and so does an LSTM's forget gate), so |dL/dh_0| / |dL/dh_T| is about 1e-20 at
T = 100. After training, the gru and the lstm have learned to keep it (ratios 0.16 and 0.21 with
seed 0) where the marked values must be carried; the rnn, which never left the baseline, loses
it even faster than at initialisation (4e-40).

How dL/dh_t is computed, exactly, with the engine's own backward pass: the sequence is run one
step at a time through the cell's ``forward`` (``mg.cell(variant).forward(p, x[t:t+1], state)``,
with the trained parameters taken from ``rnn.params["W_l0"]`` etc., the ``_l0`` suffix
stripped), keeping each step's cache. Going back, dL/dh_T is the head's gradient, and the cell's
``backward`` of step t, given dL/dh_t as ``dstate``, returns ``dstate0`` = dL/dh_{t-1}: the
BPTT recursion itself, one step per call (the tests check that its last value equals the
``dstate0`` of one backward over the whole sequence). For the lstm the state is (h, c) and the
curve is the h part, dL/dh_t; the c part is reported in the JSON as well. The analysis runs in
float64, so that gradients of 1e-40 are still numbers rather than zeros.

Each sequence's loss depends on one scalar prediction, so dL/dh_t is that prediction's error
times d(prediction)/dh_t: the *shape* of the curve does not depend on how well the model fits.
The figure therefore plots |dL/dh_t| / |dL/dh_T| per sequence (geometric mean over the batch),
which starts at 1 at t = T and shows how much of the gradient reaches step t. The JSON gives
the ratio |dL/dh_0| / |dL/dh_T| per variant, at initialisation and after training.

Run it:

    python -m minigru demo gradient-flow [--quick] [--out DIR] [--seed S] [--no-progress]
    python demos/gradient_flow.py --quick

Default: T = 100, 1000 training steps per variant: 39 s measured on 2 idle cores (numpy);
``--quick``: T = 50, 400 steps: 7 s.

``settings`` (a dict given to ``run``) overrides any of these keys:

    T            sequence length (100)
    steps        training steps per variant (1000)
    variants     the variants to analyse (rnn, gru, lstm)
    probe        test sequences over which the gradient norms are averaged (256)
    hidden, batch, eval_every, test_size, lr, clip, threshold: as in demos/adding.py
"""

import sys
import time

import numpy as np

import minigru as mg

try:
    from . import adding
    from ._common import main, merge_settings, pyplot, save_figure, say, single_blas_thread
except ImportError:                               # run as a script: python demos/gradient_flow.py
    from minigru.demos import adding
    from minigru.demos._common import (
        main, merge_settings, pyplot, save_figure, say, single_blas_thread)

NAME = "gradient-flow"

DEFAULTS = {"T": 100, "steps": 1000, "variants": ["rnn", "gru", "lstm"], "probe": 256,
            **{k: adding.DEFAULTS[k] for k in ("hidden", "batch", "eval_every", "test_size", "lr",
                                                "clip", "threshold")}}
QUICK = {**DEFAULTS, "T": 50, "steps": 400}


def config(quick=False, settings=None):
    """The defaults (or the quick ones), with ``settings`` on top; unknown keys are an error."""
    return merge_settings(NAME, DEFAULTS, QUICK, quick, settings)


def layer_params(rnn, dtype=np.float64):
    """The cell parameters of a one-layer ``mg.RNN``: ``{"W": ..., "U": ...}`` from ``W_l0``..."""
    return {k.removesuffix("_l0"): v.astype(dtype) for k, v in rnn.params.items()}


def state_gradients(model, x, y, backend="numba"):
    """dL/dh_t for t = 0..T (and dL/dc_t for an lstm), L the squared error of the last output.

    Returns ``dh`` (T+1, B, H) — ``dh[0]`` is the gradient at the initial state — and ``dc``
    (T+1, B, H) or None. Per sequence: L_b = (pred_b - y_b)^2, so row b of ``dh[t]`` is
    dL_b/dh_t. Computed in float64, one cell step at a time (see the module docstring).
    """
    rnn = model.rnn
    if rnn.num_layers != 1 or rnn.bidirectional:
        raise ValueError("state_gradients needs a one-layer, one-direction RNN")
    cell = mg.cell(rnn.variant, backend)
    p = layer_params(rnn)
    x = x.astype(np.float64)
    T = x.shape[0]
    state, caches = None, []
    for t in range(T):                               # forward one step at a time, keep caches
        ys, state, cache = cell.forward(p, x[t:t + 1], state, training=False)
        caches.append(cache)
    h_T = ys[-1]
    W = model.head.params["W"].astype(np.float64)    # (H, 1)
    b = model.head.params["b"].astype(np.float64)
    dpred = 2 * (h_T @ W + b - y.astype(np.float64))  # dL_b/dpred_b, (B, 1)
    lstm = isinstance(state, tuple)
    dh = np.empty((T + 1,) + h_T.shape)
    dc = np.empty_like(dh) if lstm else None
    dh[T] = dpred @ W.T                              # dL/dh_T: through the head only
    if lstm:
        dc[T] = 0.0                                  # c_T does not reach the loss directly
    zero = np.zeros((1,) + h_T.shape)
    for t in range(T - 1, -1, -1):                   # back through step t+1 (cache index t)
        dstate = (dh[t + 1], dc[t + 1]) if lstm else dh[t + 1]
        _, dstate0, _ = cell.backward(p, caches[t], zero, dstate)
        if lstm:
            dh[t], dc[t] = dstate0
        else:
            dh[t] = dstate0
    return dh, dc


def profile(dh):
    """Geometric mean over sequences of |dL_b/dh_t| / |dL_b/dh_T|, for t = 0..T."""
    norms = np.linalg.norm(dh, axis=2)               # (T+1, B)
    with np.errstate(divide="ignore"):
        logs = np.log10(norms) - np.log10(norms[-1])
    return 10 ** np.mean(logs, axis=1)


def analyse(model, x, y, backend="numba"):
    dh, dc = state_gradients(model, x, y, backend)
    curve = profile(dh)
    out = {"curve": curve, "ratio": float(curve[0])}
    if dc is not None:
        # the cell's share: |dL/dc_t| relative to |dL/dh_T|, per sequence
        norms_c = np.linalg.norm(dc, axis=2)
        norms_h = np.linalg.norm(dh[-1], axis=1)
        with np.errstate(divide="ignore"):
            out["ratio_c"] = float(10 ** np.mean(np.log10(norms_c[0]) - np.log10(norms_h)))
    return out


@single_blas_thread
def run(backend="numba", out="out", seed=0, quick=False, progress=None, settings=None):
    """Gradient norms over time for each variant, at initialisation and after training."""
    cfg = config(quick, settings)
    T = cfg["T"]
    start = time.perf_counter()
    x, y = adding.make_adding(cfg["probe"], T, np.random.default_rng([seed, T, 2]))
    say(f"gradient flow: |dL/dh_t| over t = 0..{T} on {cfg['probe']} adding-problem sequences, "
        f"L = squared error of the last output; training {cfg['steps']} steps per variant")
    results = {}
    for variant in cfg["variants"]:
        fresh = adding.build(variant, cfg["hidden"], backend, seed)
        init = analyse(fresh, x, y, backend)
        model, r = adding.train(variant, T, cfg["steps"], cfg, backend=backend, seed=seed,
                                progress=progress)
        trained = analyse(model, x, y, backend)
        results[variant] = {"init": init, "trained": trained, "test_mse": r["test_mse"]}
        say(f"  {variant:<5} |dL/dh_0| / |dL/dh_T|: {init['ratio']:.2e} at init, "
            f"{trained['ratio']:.2e} trained (test MSE {r['test_mse']:.4f}, "
            f"baseline {adding.BASELINE:.3f})")
    figure = plot(results, T, cfg, out)
    seconds = time.perf_counter() - start
    say(f"gradient flow: {seconds:.0f} s in all; figure {figure}")
    summary = {}
    for v, r in results.items():
        summary[v] = {"ratio_init": r["init"]["ratio"], "ratio_trained": r["trained"]["ratio"],
                      "test_mse": r["test_mse"]}
        if "ratio_c" in r["init"]:
            summary[v]["ratio_c_init"] = r["init"]["ratio_c"]
            summary[v]["ratio_c_trained"] = r["trained"]["ratio_c"]
    return {"demo": NAME, "T": T, "ratio": "|dL/dh_0| / |dL/dh_T|, geometric mean over "
            f"{cfg['probe']} sequences", "variants": summary, "backend": backend, "seed": seed,
            "quick": quick, "seconds": seconds, "figures": [figure]}


def plot(results, T, cfg, out):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    t = np.arange(T + 1)
    for i, (v, r) in enumerate(results.items()):
        color = f"C{i}"               # the init curves can coincide: markers tell them apart
        ax.plot(t, r["init"]["curve"], color=color, ls="--", marker="osD^v"[i % 5],
                markevery=(2 * i, max(1, T // 10)), markersize=4, label=f"{v} at initialisation")
        ax.plot(t, r["trained"]["curve"], color=color, ls="-", lw=2,
                label=f"{v} trained (test MSE {r['test_mse']:.2g})")
    ax.axvspan(0, T // 2, color="gray", alpha=0.08, label="where the first marker lies")
    ax.set(yscale="log", xlabel=r"time step $t$ ($h_0$ = initial state, $h_T$ = last state)",
           ylabel=r"$\|\partial L/\partial h_t\| \;/\; \|\partial L/\partial h_T\|$"
                  "\n(geometric mean over sequences)",
           title=f"How much of the gradient reaches step t: adding problem, T = {T},\n"
                 f"L = squared error of the last output; trained {cfg['steps']} steps",
           xlim=(0, T))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, out, "gradient-flow.png")


if __name__ == "__main__":
    sys.exit(main(run, NAME, __doc__))
