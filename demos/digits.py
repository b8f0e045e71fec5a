"""Handwritten digits, read one row at a time.

A recurrent network is not only for time series: anything can be fed to it as a sequence. Here
each 8x8 image of a handwritten digit (scikit-learn's ``load_digits``, 1,797 images that ship
with the package) is read from top to bottom, one row of 8 pixels per step. After the eighth
row the network must say which digit it was, from its last hidden state alone: that state has
to summarise the strokes seen so far, because the rows are never shown again. A GRU with a
linear head on its last output learns this with the cross-entropy loss, and is tested on a
quarter of the images it never trained on (a stratified split drawn from the seed). The figures
show the training curve, the confusion matrix (which digits it mixes up) and the test digits
it got wrong.

Run it (needs scikit-learn: ``pip install "minigru[demos]"``)::

    minigru demo digits [--out DIR] [--seed S] [--quick]
    python demos/digits.py --out DIR
    minigru race --task digits --variants rnn,gru,lstm,mgu

Its last line is a JSON object with ``test_accuracy`` and the figures. The test accuracy is
also drawn after every epoch in the training figure, to watch; nothing is chosen with it.

``settings`` (a dict, for ``run`` and ``train_variant``) overrides these defaults:

    variant       "gru"   the cell (``run`` only; ``train_variant`` takes it as its argument)
    hidden_size   64      H
    epochs        30
    batch_size    32
    lr            0.01    Adam's learning rate, annealed to 0 along a cosine
    test_size     0.25    the held-out fraction of the images
    train_images  None    use only this many of the training images (None: all of them)

``--quick`` trains for 10 epochs.
"""

import sys

import numpy as np

import minigru as mg

try:
    from ._common import Timer, main, merge_settings, one_blas_thread, pyplot, save_figure, say
except ImportError:  # run as a file (python demos/digits.py): there is no package
    from minigru.demos._common import (
        Timer, main, merge_settings, one_blas_thread, pyplot, save_figure, say)

NAME = "digits"
DEFAULTS = {"variant": "gru", "hidden_size": 64, "epochs": 30, "batch_size": 32, "lr": 1e-2,
            "test_size": 0.25, "train_images": None}
QUICK = {"epochs": 10}


def configure(quick=False, settings=None):
    """The defaults, with ``QUICK`` when ``quick``, then ``settings`` on top."""
    return merge_settings(NAME, DEFAULTS, QUICK, quick, settings)


# ---------------------------------------------------------------- the data
def load(seed, test_size):
    """Train and test images as sequences of rows: x (8, N, 8) in [0, 1], labels (N,)."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise ModuleNotFoundError(
            "the digits demo needs scikit-learn for its data set: "
            'pip install "minigru[demos]" (or pip install scikit-learn)', name="sklearn") from None
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)          # (N, 8, 8), pixels 0..16
    split = train_test_split(images, digits.target, test_size=test_size,
                             stratify=digits.target, random_state=seed)
    train_x, test_x, train_y, test_y = split
    # (N, rows, pixels) -> (T, N, I): step t reads row t of every image
    return train_x.transpose(1, 0, 2), train_y, test_x.transpose(1, 0, 2), test_y


# ---------------------------------------------------------------- the model
def logits(model, x):
    """Class scores (N, 10) from the last output, after all 8 rows."""
    ys, _ = model.rnn.forward(x)
    return model.head.forward(ys[-1])


def train(variant, backend, seed, cfg, progress, evaluate=False):
    """Train ``variant`` on the digits split drawn from ``seed``; the model and its scores."""
    data_seed, init_seed, shuffle_seed = (int(s) for s in
                                          np.random.SeedSequence(seed).generate_state(3))
    x, y, tx, ty = load(data_seed, cfg["test_size"])
    if cfg["train_images"] is not None:
        x, y = x[:, :cfg["train_images"]], y[:cfg["train_images"]]

    rnn = mg.RNN(variant, 8, cfg["hidden_size"], backend=backend, seed=init_seed)
    model = mg.Model(rnn=rnn, head=mg.Linear(rnn.output_size, 10, seed=init_seed + 1))
    opt = mg.optim.Adam(model.params, lr=cfg["lr"])
    schedule = mg.optim.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    shuffle = np.random.default_rng(shuffle_seed)

    def step(batch):
        xb, yb = batch
        ys, _ = model.rnn.forward(xb)                                  # (T, B, H)
        loss, dlogits = mg.losses.cross_entropy(model.head.forward(ys[-1]), yb)
        dys = np.zeros_like(ys)
        dys[-1] = model.head.backward(dlogits)        # only the last output is read
        model.rnn.backward(dys)
        return loss

    def batches(epoch):
        order = shuffle.permutation(len(y))
        return [(x[:, i], y[i]) for i in np.array_split(order, -(-len(y) // cfg["batch_size"]))]

    def test_accuracy(m):
        return float(np.mean(logits(m, tx).argmax(-1) == ty))

    with Timer() as t:
        history = mg.fit(model, step, batches, opt, epochs=cfg["epochs"], scheduler=schedule,
                         rng=shuffle, progress=progress, desc=f"{variant} reads digits",
                         evaluate=test_accuracy if evaluate else None)
    model.eval()
    scores = logits(model, tx)
    return {"model": model, "history": history, "seconds": t.seconds, "test": (tx, ty),
            "train_images": len(y), "predicted": scores.argmax(-1),
            "probability": mg.losses.softmax(scores), "test_accuracy": test_accuracy(model)}


# ---------------------------------------------------------------- the figures
def plot_training(history, out):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = np.arange(1, len(history.epoch_loss) + 1)
    ax.plot(epochs, history.epoch_loss, "o-", color="tab:blue", ms=3, label="training loss")
    ax.set(xlabel="epoch", ylabel="cross-entropy (mean of the epoch)", yscale="log",
           title="Reading digits row by row: training loss and test accuracy")
    acc = ax.twinx()
    acc.plot(epochs, history.eval, "s-", color="tab:green", ms=3, label="test accuracy")
    acc.axhline(0.95, color="tab:green", ls=":", lw=1, label="95%")
    acc.set(ylabel="test accuracy", ylim=(min(0.8, min(history.eval)) - 0.02, 1.005))
    lines, more = ax.get_legend_handles_labels(), acc.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="center right")
    return save_figure(fig, out, "digits-training.png")


def plot_confusion(truth, predicted, accuracy, out):
    plt = pyplot()
    counts = np.zeros((10, 10), int)
    np.add.at(counts, (truth, predicted), 1)
    fig, ax = plt.subplots(figsize=(6, 5.4))
    im = ax.imshow(counts, cmap="Blues")
    for (i, j), c in np.ndenumerate(counts):
        if c:
            ax.text(j, i, c, ha="center", va="center", fontsize=9,
                    color="white" if c > counts.max() / 2 else ("tab:red" if i != j else "black"))
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set(xlabel="predicted digit", ylabel="true digit",
           title=f"Confusion matrix, {len(truth)} test digits ({accuracy:.1%} right)")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="test images")
    return save_figure(fig, out, "digits-confusion.png")


def plot_mistakes(x, truth, predicted, probability, out, n=12):
    """The test digits it got wrong (up to ``n``), most confident mistakes first."""
    plt = pyplot()
    wrong = np.flatnonzero(predicted != truth)
    wrong = wrong[np.argsort(-probability[wrong, predicted[wrong]])][:n]
    cols = min(6, max(1, len(wrong)))
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.0, 1.7 * cols), 2.0 * rows + 0.4),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(x[:, i], cmap="gray_r", vmin=0, vmax=1)     # (rows, pixels): as it was read
        ax.set_title(f"true {truth[i]}, said {predicted[i]}\n"
                     f"({probability[i, predicted[i]]:.0%} sure)", fontsize=8)
    if not len(wrong):
        axes[0, 0].text(0, 0.5, "no test digit was misread", fontsize=11)
    fig.suptitle(f"Misread test digits ({len(np.flatnonzero(predicted != truth))} in all; "
                 "the most confident mistakes first)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out, "digits-mistakes.png")


# ---------------------------------------------------------------- the protocol
def run(backend="numba", out="out", seed=0, quick=False, progress=None, settings=None):
    """Train on the digits, test on the held-out images, draw the figures."""
    cfg = configure(quick, settings)
    with Timer() as total, one_blas_thread():
        say(f"{NAME}: training a {cfg['variant']} (H={cfg['hidden_size']}) to read 8x8 digits "
            f"row by row, {cfg['epochs']} epochs")
        r = train(cfg["variant"], backend, seed, cfg, progress, evaluate=True)
        tx, ty = r["test"]
        say(f"{NAME}: {r['test_accuracy']:.2%} of {len(ty)} test digits right "
            f"({r['seconds']:.1f} s of training)")
        figures = [plot_training(r["history"], out),
                   plot_confusion(ty, r["predicted"], r["test_accuracy"], out),
                   plot_mistakes(tx, ty, r["predicted"], r["probability"], out)]
    say(f"{NAME}: figures in {out}")
    return {"demo": NAME, "variant": cfg["variant"], "backend": backend, "seed": seed,
            "quick": quick, "test_accuracy": r["test_accuracy"],
            "train_images": r["train_images"], "test_images": len(ty),
            "final_loss": r["history"].epoch_loss[-1], "params": r["model"].num_params(),
            "train_seconds": r["seconds"], "seconds": total.seconds, "settings": cfg,
            "figures": figures}


def train_variant(variant, backend="numba", seed=0, quick=False, progress=None, settings=None):
    """``minigru race``: train ``variant`` on the digits; the common result fields."""
    cfg = configure(quick, settings)
    with one_blas_thread():
        r = train(variant, backend, seed, cfg, progress)
    return {"metric": "test_accuracy", "value": r["test_accuracy"], "higher_is_better": True,
            "params": r["model"].num_params(), "seconds_per_epoch": r["seconds"] / cfg["epochs"],
            "loss": r["history"].epoch_loss}


if __name__ == "__main__":
    sys.exit(main(run, NAME, __doc__))
