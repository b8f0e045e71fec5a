"""A character language model: a GRU reads the King James Bible and writes more of it.

The network reads a text one character at a time and, at every step, predicts the next one: a
distribution over the 70-odd characters it has seen. That is all it is ever told, yet to
predict well it must learn spelling, the common words, where a line breaks, how a verse starts
with its number. The text is Genesis to Joshua from the King James Version (1611, public
domain; ``minigru/data/kjv.txt``, 936 KB, shipped with minigru), or your own with ``--text``.

Training is stateful truncated backpropagation through time (``minigru.text.Stream``): the text
is cut into ``batch_size`` rows read side by side, ``bptt`` characters at a time; the hidden
state is carried from each chunk to the next, so the network remembers across the cut, while
the gradient stops at the chunk's start. The last ``held_out`` of the text is never trained on:
the score is the model's cross-entropy there in **bits per character**, next to the text's
**unigram entropy**, the bits per character of the best model that ignores all context (every
character drawn with its frequency). The distance between the two is what the recurrent state
has learned.

Then the model writes: ``sample_chars`` characters after the prime, at temperatures 0.2 (nearly
greedy: the likeliest words, repeated), 0.5 and 1.0 (the model's own distribution: more varied,
more misspelt). Finally one hidden unit is drawn over a held-out passage, each character tinted
by the unit's value after reading it, as Karpathy, Johnson & Fei-Fei (2015, "Visualizing and
understanding recurrent networks") did: the unit is picked automatically as the one whose value
correlates best with something you can see in the text (the position in the line, being inside
a word, inside parentheses, or in a verse number).

Run it::

    minigru demo char-lm [--out DIR] [--seed S] [--quick]
    python demos/char_lm.py --text FILE       # your own text, UTF-8 (at least a few 10 KB)

Its last line is a JSON object: ``bits_per_char`` (held out), ``unigram_bits``, ``perplexity``,
``samples`` by temperature, ``unit`` (the drawn hidden unit, what it tracks and how well).

``settings`` (a dict, for ``run``) overrides these defaults:

    variant       "gru"
    hidden_size   256     H (the embedding has the same width)
    tie           False   share the embedding with the output layer (Press & Wolf 2017)
    batch_size    32      B, rows of the stream read side by side
    bptt          64      T, characters per chunk: how far back the gradient reaches
    steps         1600    chunks trained on (B·T characters each)
    eval_every    200     chunks between two looks at the held-out text
    lr            0.003   Adam's learning rate, annealed along a cosine
    clip          1.0     gradient norm clipping
    held_out      0.05    the end of the text kept for the score
    sample_chars  300     characters per sample
    prime         "1 And God said"

``--quick`` trains a smaller model (H = 128) for 500 chunks of 32.
"""

import argparse
import os
import sys

import numpy as np

import minigru as mg
from minigru import data, text as mt

try:
    from ._common import (Timer, add_options, merge_settings, one_blas_thread, print_result,
                          pyplot, save_figure, say)
except ImportError:  # run as a file (python demos/char_lm.py): there is no package
    from minigru.demos._common import (Timer, add_options, merge_settings, one_blas_thread,
                                       print_result, pyplot, save_figure, say)

NAME = "char-lm"
TEMPERATURES = (0.2, 0.5, 1.0)
DEFAULTS = {"variant": "gru", "hidden_size": 256, "tie": False, "batch_size": 32, "bptt": 64,
            "steps": 1600, "eval_every": 200, "lr": 3e-3, "clip": 1.0, "held_out": 0.05,
            "sample_chars": 300, "prime": "1 And God said"}
QUICK = {"hidden_size": 128, "steps": 500, "eval_every": 100}


def configure(quick=False, settings=None):
    """The defaults, with ``QUICK`` when ``quick``, then ``settings`` on top."""
    return merge_settings(NAME, DEFAULTS, QUICK, quick, settings)


# ---------------------------------------------------------------- the text
def load_text(path=None):
    """The shipped King James text, or the UTF-8 file at ``path``."""
    if path is None:
        return data.kjv(), "King James Bible, Genesis to Joshua (minigru/data/kjv.txt)"
    if not os.path.isfile(path):
        raise ValueError(f"text must be a readable text file, got {path!r} (no such file)")
    with open(path, encoding="utf-8") as f:
        return f.read(), os.path.basename(path)


def split_text(text, held_out, batch_size, bptt):
    """(training text, held-out text): the held-out part is the end of the text."""
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must be a fraction in (0, 1), got {held_out}")
    cut = int(len(text) * (1 - held_out))
    train, test = text[:cut], text[cut:]
    need = 2 * batch_size * (bptt + 1)
    if len(train) < need or len(test) < 1000:
        raise ValueError(f"text has {len(text)} characters: too short to train on "
                         f"{batch_size} rows of {bptt} and hold out 1000 (give at least "
                         f"{max(need / (1 - held_out), 1000 / held_out):.0f} characters)")
    return train, test


# ---------------------------------------------------------------- what a hidden unit tracks
def visible_signals(text):
    """Things a reader sees at each character, as float arrays (N,)."""
    n = len(text)
    column = np.zeros(n)
    in_word = np.zeros(n)
    in_parens = np.zeros(n)
    in_number = np.zeros(n)
    col = depth = 0
    number = True                               # a line starts with its verse number
    for i, c in enumerate(text):
        column[i] = col
        col = 0 if c == "\n" else col + 1
        in_word[i] = c.isalpha()
        depth = depth + 1 if c == "(" else max(depth - (c == ")"), 0)
        in_parens[i] = depth > 0 or c == ")"
        number = c.isdigit() and (number or text[i - 1] == "\n") if i else c.isdigit()
        in_number[i] = number
    return {"position in the line": column, "inside a word": in_word,
            "inside parentheses": in_parens, "in a verse number": in_number}


def best_unit(hs, signals):
    """(unit, signal name, Pearson r): the hidden unit and visible signal that correlate most."""
    h = hs - hs.mean(axis=0)                                          # (N, H)
    best = (0, None, 0.0)
    for name, s in signals.items():
        s = s - s.mean()
        if not s.any():
            continue
        r = (h * s[:, None]).sum(0) / np.sqrt((h ** 2).sum(0) * (s ** 2).sum() + 1e-12)
        u = int(np.argmax(np.abs(r)))
        if abs(r[u]) > abs(best[2]):
            best = (u, name, float(r[u]))
    return best


def hidden_states(lm, ids):
    """The last layer's output after each character, one row: (N, H)."""
    lm.eval()
    ys, _ = lm.rnn.forward(lm.emb.forward(ids[:, None]))
    return ys[:, 0].astype(np.float64)


# ---------------------------------------------------------------- training
def train(cfg, text, backend, seed, progress):
    """Train on the text; the model, vocabulary, history and scores in a dict."""
    train_text, test_text = split_text(text, cfg["held_out"], cfg["batch_size"], cfg["bptt"])
    vocab = mt.CharVocab.from_text(train_text)
    stream = mt.Stream(vocab.encode(train_text), cfg["batch_size"], cfg["bptt"])
    held = mt.Stream(vocab.encode(test_text), 8, 256)
    lm = mt.LanguageModel(cfg["variant"], len(vocab), cfg["hidden_size"], tie=cfg["tie"],
                          backend=backend, seed=seed)
    opt = mg.optim.Adam(lm.params, lr=cfg["lr"])
    rounds = -(-cfg["steps"] // cfg["eval_every"])
    schedule = mg.optim.CosineAnnealingLR(opt, T_max=rounds)
    carried = {"state": None}

    def step(k):
        if k == 0:                                  # back at the streams' starts: no memory
            carried["state"] = None
        x, y = stream[k]
        # the state from chunk k - 1 continues the same rows; backward stops at this chunk
        logits, carried["state"] = lm.forward(x, carried["state"])
        loss, dlogits = mg.losses.cross_entropy(logits, y, backend=lm.emb.backend)
        lm.backward(dlogits)
        return loss

    def chunks(r):                                  # round r: the next eval_every chunks
        first = r * cfg["eval_every"]
        last = min(first + cfg["eval_every"], cfg["steps"])
        return [k % len(stream) for k in range(first, last)]

    with Timer() as t:
        history = mg.fit(lm, step, chunks, opt, epochs=rounds, clip=cfg["clip"],
                         scheduler=schedule, progress=progress, desc=f"{cfg['variant']} reads",
                         evaluate=lambda m: mt.bits_per_char(mt.stream_nll(m, held)))
    bits = history.eval[-1]
    return {"lm": lm, "vocab": vocab, "history": history, "seconds": t.seconds,
            "test_text": test_text, "bits_per_char": bits,
            "unigram_bits": mt.unigram_bits(vocab.encode(text)),
            "chars_trained": cfg["steps"] * cfg["batch_size"] * cfg["bptt"],
            "epochs": cfg["steps"] / len(stream)}


# ---------------------------------------------------------------- the figures
def plot_learning(history, cfg, unigram, out):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    per_char = cfg["batch_size"] * cfg["bptt"]
    seen = np.arange(1, len(history.loss) + 1) * per_char / 1e6
    train_bits = np.array(history.loss) / mt.LN2
    ax.plot(seen, train_bits, color="tab:blue", alpha=0.3, lw=0.7, label="training chunk")
    k = max(1, len(train_bits) // 40)
    smooth = np.convolve(train_bits, np.ones(k) / k, mode="valid")
    ax.plot(seen[k - 1:], smooth, color="tab:blue", label=f"training, mean of {k} chunks")
    at = np.arange(1, len(history.eval) + 1) * cfg["eval_every"] * per_char / 1e6
    ax.plot(at, history.eval, "o-", color="tab:orange", label="held-out text")
    ax.axhline(unigram, color="black", lw=1, ls="--",
               label=f"unigram entropy {unigram:.2f} (no context)")
    ax.set(xlabel="characters trained on (millions)", ylabel="bits per character",
           title=f"Learning to read: {cfg['variant']}, H = {cfg['hidden_size']}",
           ylim=(min(1.0, min(history.eval) - 0.2), unigram + 1.2))
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, out, "char-lm-learning.png")


def plot_unit(passage, values, unit, signal, r, out, width=72):
    """The passage as a page of text, each character on a tile coloured by the unit's value."""
    plt = pyplot()
    from matplotlib.colors import Normalize

    lines, line, vals, row = [], "", [], []
    for c, v in zip(passage, values):
        if c == "\n" or len(line) >= width:
            lines.append(line)
            vals.append(row)
            line, row = "", []
            if c == "\n":
                continue
        line += c
        row.append(v)
    lines.append(line)
    vals.append(row)
    cmap = plt.get_cmap("RdBu_r")
    scale = Normalize(-1, 1) if np.abs(values).max() <= 1 else Normalize(values.min(),
                                                                         values.max())
    fig, ax = plt.subplots(figsize=(width * 0.118, len(lines) * 0.26 + 0.6))
    for y, (text_line, row) in enumerate(zip(lines, vals)):
        for x, (c, v) in enumerate(zip(text_line, row)):
            ax.add_patch(plt.Rectangle((x, -y - 0.5), 1, 1, color=cmap(scale(v)), lw=0))
            ax.text(x + 0.5, -y, c, ha="center", va="center", family="monospace",
                    fontsize=8.5, color="white" if abs(scale(v) - 0.5) > 0.33 else "black")
    ax.set(xlim=(0, width), ylim=(-len(lines) + 0.5, 0.5), xticks=[], yticks=[])
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(f"hidden unit {unit} after each character of held-out text: it tracks "
                 f"{signal} (r = {r:+.2f}); red high, blue low", fontsize=9)
    return save_figure(fig, out, "char-lm-unit.png")


# ---------------------------------------------------------------- the protocol
def run(backend="numba", out="out", seed=0, quick=False, progress=None, settings=None,
        text=None):
    """Train on the text (``text``: a file path, None for the shipped KJV), sample, score,
    draw; the metrics as a dict."""
    cfg = configure(quick, settings)
    corpus, source = load_text(text)
    with Timer() as total, one_blas_thread():
        say(f"{NAME}: {source}, {len(corpus):,} characters; a {cfg['variant']} with "
            f"H = {cfg['hidden_size']} reads {cfg['steps']} chunks of {cfg['batch_size']} rows x "
            f"{cfg['bptt']} characters")
        r = train(cfg, corpus, backend, seed, progress)
        lm, vocab = r["lm"], r["vocab"]
        say(f"{NAME}: held-out {r['bits_per_char']:.3f} bits per character; unigram entropy "
            f"{r['unigram_bits']:.3f} ({r['seconds']:.0f} s of training)")
        rng = np.random.default_rng([seed, 1])
        samples = {}
        for temperature in TEMPERATURES:
            samples[str(temperature)] = mt.generate(lm, vocab, cfg["prime"], cfg["sample_chars"],
                                                    temperature=temperature, rng=rng)
            say(f"\n--- temperature {temperature}:\n{cfg['prime']}{samples[str(temperature)]}")
        probe = r["test_text"][:20000]
        hs = hidden_states(lm, vocab.encode(probe))
        unit, signal, corr = best_unit(hs, visible_signals(probe))
        start = probe.find("\n", 2000) + 1                # a passage from a line's start
        passage = probe[start:start + 900]
        say(f"\n{NAME}: hidden unit {unit} tracks {signal} (r = {corr:+.2f})")
        figures = [plot_learning(r["history"], cfg, r["unigram_bits"], out),
                   plot_unit(passage, hs[start:start + len(passage), unit], unit, signal, corr,
                             out)]
    say(f"{NAME}: figures in {out}")
    return {"demo": NAME, "variant": cfg["variant"], "backend": backend, "seed": seed,
            "quick": quick, "text": source, "bits_per_char": r["bits_per_char"],
            "unigram_bits": r["unigram_bits"],
            "perplexity": float(2 ** r["bits_per_char"]), "vocab_size": len(vocab),
            "samples": samples, "prime": cfg["prime"],
            "unit": {"unit": unit, "tracks": signal, "correlation": corr},
            "held_out_bits": r["history"].eval, "chars_trained": r["chars_trained"],
            "epochs": r["epochs"], "params": lm.num_params(), "train_seconds": r["seconds"],
            "seconds": total.seconds, "settings": cfg, "figures": figures}


def main(argv=None):
    """``python demos/char_lm.py``: the common options, and ``--text FILE``."""
    parser = add_options(argparse.ArgumentParser(prog=f"demos/{NAME}", description=__doc__,
                                                 formatter_class=argparse.RawTextHelpFormatter))
    parser.add_argument("--text", metavar="FILE",
                        help="train on this UTF-8 text instead of the King James Bible")
    args = parser.parse_args(argv)
    print_result(run(args.backend, args.out, args.seed, args.quick, args.progress,
                     text=args.text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
