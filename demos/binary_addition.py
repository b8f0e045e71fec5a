"""Binary addition: a GRU learns to carry the one.

Add two numbers the way you learned at school: right to left, one column at a time, writing
down a bit of the sum and remembering the carry. Here a GRU does it. At step t it reads the t-th
bits of a and b (least significant first) and must output the t-th bit of a + b, which depends
on the carry from every column before it: the network has to keep that one bit of memory in its
hidden state. It trains on 2,048 of the 65,536 pairs of 8-bit numbers and is tested on all the
others, a pair counting as right only when every bit of its sum is. The figures show the loss
falling as the GRU discovers the carry, and the hidden state while it adds two numbers: one unit
switches with the carry, and you can find it. Then the same network adds 16- and 32-bit
numbers, longer than anything it saw: does the rule it learned still hold?

Run it::

    minigru demo binary-addition [--out DIR] [--seed S] [--quick]
    python demos/binary_addition.py --out DIR
    minigru race --task binary-addition --variants rnn,gru,lstm,mingru

Its last line is a JSON object: ``test_accuracy`` (held-out 8-bit pairs), ``accuracy_16bit``
and ``accuracy_32bit`` (random longer pairs), ``bit_accuracy`` and the training figures.

``settings`` (a dict, for ``run`` and ``train_variant``) overrides these defaults:

    variant       "gru"   the cell (``run`` only; ``train_variant`` takes it as its argument)
    train_pairs   2048    8-bit pairs to train on, drawn without replacement from all 65,536
    test_pairs    None    held-out pairs to test on: None = every pair not trained on
    hidden_size   16      H
    epochs        15      passes over the training pairs
    batch_size    32
    lr            0.01    Adam's learning rate, annealed to 0 along a cosine
    long_pairs    2000    random pairs of each longer length (16 and 32 bits)

``--quick`` trains for 6 epochs.
"""

import sys

import numpy as np

import minigru as mg

try:
    from ._common import Timer, main, merge_settings, one_blas_thread, pyplot, save_figure, say
except ImportError:  # run as a file (python demos/binary_addition.py): there is no package
    from minigru.demos._common import (
        Timer, main, merge_settings, one_blas_thread, pyplot, save_figure, say)

NAME = "binary-addition"
BITS = 8                    # the trained length: every pair of 8-bit numbers can be listed
LONG_BITS = (16, 32)        # longer numbers, never seen in training
DEFAULTS = {"variant": "gru", "train_pairs": 2048, "test_pairs": None, "hidden_size": 16,
            "epochs": 15, "batch_size": 32, "lr": 1e-2, "long_pairs": 2000}
QUICK = {"epochs": 6}


def configure(quick=False, settings=None):
    """The defaults, with ``QUICK`` when ``quick``, then ``settings`` on top."""
    return merge_settings(NAME, DEFAULTS, QUICK, quick, settings)


# ---------------------------------------------------------------- the data
def to_bits(v, steps):
    """(N,) non-negative integers -> (steps, N) float32 bits, least significant first."""
    return ((v[None, :] >> np.arange(steps)[:, None]) & 1).astype(np.float32)


def additions(a, b, bits):
    """Inputs x (T, N, 2) and targets y (T, N, 1) for a + b, T = bits + 1.

    Step t reads bit t of a and of b and must answer bit t of a + b; the extra last step reads
    two zeros and answers the final carry (the sum of two n-bit numbers has n + 1 bits).
    """
    x = np.stack([to_bits(a, bits + 1), to_bits(b, bits + 1)], axis=-1)    # (T, N, 2)
    return x, to_bits(a + b, bits + 1)[..., None]                          # (T, N, 1)


def carries(a, b, bits):
    """(bits + 1, N) the carry into each column: what the network must remember."""
    x, _ = additions(a, b, bits)
    c = np.zeros(x.shape[:2], np.int64)
    for t in range(1, bits + 1):
        c[t] = (x[t - 1, :, 0] + x[t - 1, :, 1] + c[t - 1]) >= 2
    return c


def split_pairs(rng, cfg):
    """Training and held-out pairs (a, b) of 8-bit numbers: no pair is in both."""
    every = rng.permutation(2 ** (2 * BITS))          # pair k is (k >> 8, k & 255)
    train, test = every[:cfg["train_pairs"]], every[cfg["train_pairs"]:]
    if cfg["test_pairs"] is not None:
        test = test[:cfg["test_pairs"]]
    return [(k >> BITS, k & (2 ** BITS - 1)) for k in (train, np.sort(test))]


# ---------------------------------------------------------------- the model
def predict(model, x, chunk=8192):
    """Predicted sum bits (T, N) and hidden states (T, N, H), in chunks of pairs."""
    bits, hs = [], []
    for i in range(0, x.shape[1], chunk):
        ys, _ = model.rnn.forward(x[:, i:i + chunk])
        bits.append(model.head.forward(ys)[..., 0] > 0)   # logit > 0: sigmoid > 1/2
        hs.append(ys)
    return np.concatenate(bits, axis=1), np.concatenate(hs, axis=1)


def accuracy(model, x, y):
    """The fraction of pairs whose every bit is right, and the fraction of bits right."""
    pred, _ = predict(model, x)
    right = pred == (y[..., 0] > 0.5)                 # (T, N)
    return float(right.all(axis=0).mean()), float(right.mean())


def train(variant, backend, seed, cfg, progress, evaluate=False):
    """Build and train a model on fresh data; everything a caller may want, in a dict."""
    data_seed, init_seed, shuffle_seed = (int(s) for s in
                                          np.random.SeedSequence(seed).generate_state(3))
    rng = np.random.default_rng(data_seed)
    (a, b), (ta, tb) = split_pairs(rng, cfg)
    x, y = additions(a, b, BITS)
    tx, ty = additions(ta, tb, BITS)

    rnn = mg.RNN(variant, 2, cfg["hidden_size"], backend=backend, seed=init_seed)
    model = mg.Model(rnn=rnn, head=mg.Linear(rnn.output_size, 1, seed=init_seed + 1))
    opt = mg.optim.Adam(model.params, lr=cfg["lr"])
    schedule = mg.optim.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    shuffle = np.random.default_rng(shuffle_seed)

    def step(batch):
        xb, yb = batch
        ys, _ = model.rnn.forward(xb)                                  # (T, B, H)
        loss, dlogits = mg.losses.bce_with_logits(model.head.forward(ys), yb)
        model.rnn.backward(model.head.backward(dlogits))               # every step has a loss
        return loss

    def batches(epoch):
        order = shuffle.permutation(len(a))
        return [(x[:, i], y[:, i]) for i in np.array_split(order, -(-len(a) // cfg["batch_size"]))]

    watch = tx[:, :2048], ty[:, :2048]                # a cheap look at held-out pairs per epoch
    with Timer() as t:
        history = mg.fit(model, step, batches, opt, epochs=cfg["epochs"], scheduler=schedule,
                         rng=shuffle, progress=progress, desc=f"{variant} adds",
                         evaluate=(lambda m: accuracy(m, *watch)[0]) if evaluate else None)
    model.eval()
    test_accuracy, bit_accuracy = accuracy(model, tx, ty)
    return {"model": model, "history": history, "seconds": t.seconds, "rng": rng,
            "test": (ta, tb, tx, ty), "train_pairs": len(a),
            "test_accuracy": test_accuracy, "bit_accuracy": bit_accuracy}


def longer(model, rng, n, pairs):
    """Accuracy on random pairs of n-bit numbers (the sum fits in int64 up to n = 62)."""
    a, b = (rng.integers(0, 2 ** n, pairs, dtype=np.int64) for _ in range(2))
    return accuracy(model, *additions(a, b, n))[0]


# ---------------------------------------------------------------- the figures
def plot_training(history, per_epoch, out):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = np.arange(1, len(history.loss) + 1) / per_epoch
    ax.plot(steps, history.loss, color="tab:blue", alpha=0.35, lw=0.8, label="loss per batch")
    ax.plot(np.arange(1, len(history.epoch_loss) + 1), history.epoch_loss, "o-",
            color="tab:blue", label="mean loss of the epoch")
    ax.set(xlabel="epoch", ylabel="binary cross-entropy per bit", yscale="log",
           title="Learning to add: training loss and held-out accuracy")
    acc = ax.twinx()
    acc.plot(np.arange(1, len(history.eval) + 1), history.eval, "s-", color="tab:green",
             label="held-out pairs all bits right")
    acc.set(ylabel="held-out accuracy (2,048 pairs)", ylim=(-0.02, 1.02))
    lines = ax.get_legend_handles_labels()
    more = acc.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="center right")
    return save_figure(fig, out, "binary-addition-training.png")


def plot_hidden(model, a, b, carry_unit, carry_r, out):
    """One addition: the bits in and out, and every hidden unit at every step."""
    plt = pyplot()
    x, y = additions(np.array([a]), np.array([b]), BITS)
    pred, hs = predict(model, x)
    T, H = x.shape[0], hs.shape[-1]
    carry_out = np.append(carries(np.array([a]), np.array([b]), BITS)[1:, 0], 0)
    rows = np.stack([x[:, 0, 0], x[:, 0, 1], y[:, 0, 0], carry_out, pred[:, 0]])
    names = [f"a = {a}", f"b = {b}", f"a + b = {a + b}", "carry out (to remember)",
             f"predicted = {int(pred[:, 0] @ (2 ** np.arange(T)))}"]

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7.5), sharex=True,
                                      gridspec_kw={"height_ratios": [len(rows), H]})
    top.imshow(rows, cmap="Greys", vmin=-0.6, vmax=1.6, aspect="auto")
    for (i, t), v in np.ndenumerate(rows):
        wrong = i == len(rows) - 1 and v != rows[2, t]
        top.text(t, i, int(v), ha="center", va="center", fontsize=11,
                 color="red" if wrong else ("white" if v else "black"))
    top.set_yticks(range(len(rows)), names)
    top.set_title(f"{a} + {b}, least significant bit first (a held-out pair)")

    im = bottom.imshow(hs[:, 0].T, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    bottom.set_yticks(range(H), [f"carry → {u}" if u == carry_unit else f"{u}"
                                 for u in range(H)], fontsize=7)
    bottom.get_yticklabels()[carry_unit].set(color="tab:red", fontweight="bold", fontsize=9)
    bottom.set(xlabel="step t (bit position)", ylabel="hidden unit",
               title=f"hidden state h_t after reading bit t: unit {carry_unit} tracks the carry "
                     f"(r = {carry_r:+.2f} over held-out pairs)")
    bottom.set_xticks(range(T))
    fig.colorbar(im, ax=bottom, orientation="horizontal", fraction=0.04, pad=0.12,
                 label="h_t (each unit in [-1, 1])")
    return save_figure(fig, out, "binary-addition-hidden.png")


def carry_unit(model, a, b):
    """The hidden unit whose value after step t best tracks the carry out of column t."""
    x, _ = additions(a, b, BITS)
    _, hs = predict(model, x)                         # (T, N, H)
    c = carries(a, b, BITS)[1:].reshape(-1).astype(float)            # carry out of step t
    h = hs[:-1].reshape(-1, hs.shape[-1]).astype(float)
    h, c = h - h.mean(0), c - c.mean()
    r = (h * c[:, None]).sum(0) / np.sqrt((h ** 2).sum(0) * (c ** 2).sum() + 1e-12)
    unit = int(np.argmax(np.abs(r)))
    return unit, float(r[unit])


def showcase(a, b):
    """The held-out pair a != b whose carry changes most often (ties: the most carries)."""
    c = carries(a, b, BITS)
    key = (np.abs(np.diff(c, axis=0)).sum(0) * 100 + c.sum(0)) * (a != b)
    i = int(np.argmax(key))
    return int(a[i]), int(b[i])


# ---------------------------------------------------------------- the protocol
def run(backend="numba", out="out", seed=0, quick=False, progress=None, settings=None):
    """Train, test on held-out and longer pairs, draw the figures; the metrics as a dict."""
    cfg = configure(quick, settings)
    with Timer() as total, one_blas_thread():
        say(f"{NAME}: training a {cfg['variant']} (H={cfg['hidden_size']}) on "
            f"{cfg['train_pairs']} pairs of {BITS}-bit numbers, {cfg['epochs']} epochs")
        r = train(cfg["variant"], backend, seed, cfg, progress, evaluate=True)
        model, history = r["model"], r["history"]
        ta, tb = r["test"][:2]
        say(f"{NAME}: {r['test_accuracy']:.2%} of {len(ta)} held-out pairs right "
            f"({r['seconds']:.1f} s of training)")
        longer_acc = {n: longer(model, r["rng"], n, cfg["long_pairs"]) for n in LONG_BITS}
        say(f"{NAME}: longer than trained: "
            + ", ".join(f"{n} bits {acc:.2%}" for n, acc in longer_acc.items()))
        unit, corr = carry_unit(model, ta[:4096], tb[:4096])
        per_epoch = len(history.loss) // len(history.epoch_loss)
        figures = [plot_training(history, per_epoch, out),
                   plot_hidden(model, *showcase(ta, tb), unit, corr, out)]
    say(f"{NAME}: figures in {out}")
    return {"demo": NAME, "variant": cfg["variant"], "backend": backend, "seed": seed,
            "quick": quick, "test_accuracy": r["test_accuracy"], "bit_accuracy": r["bit_accuracy"],
            **{f"accuracy_{n}bit": acc for n, acc in longer_acc.items()},
            "carry_unit": unit, "carry_correlation": corr,
            "train_pairs": r["train_pairs"], "test_pairs": len(ta),
            "final_loss": history.epoch_loss[-1], "params": model.num_params(),
            "train_seconds": r["seconds"], "seconds": total.seconds, "settings": cfg,
            "figures": figures}


def train_variant(variant, backend="numba", seed=0, quick=False, progress=None, settings=None):
    """``minigru race``: train ``variant`` on the addition task; the common result fields."""
    cfg = configure(quick, settings)
    with one_blas_thread():
        r = train(variant, backend, seed, cfg, progress)
        long32 = longer(r["model"], r["rng"], 32, cfg["long_pairs"])
    return {"metric": "test_accuracy", "value": r["test_accuracy"], "higher_is_better": True,
            "params": r["model"].num_params(), "seconds_per_epoch": r["seconds"] / cfg["epochs"],
            "loss": r["history"].epoch_loss, "bit_accuracy": r["bit_accuracy"],
            "accuracy_32bit": long32}


if __name__ == "__main__":
    sys.exit(main(run, NAME, __doc__))
