"""What every demo shares: its command line, where figures go, the result line, the race protocol.

A demo module (``demos/<name>.py``) has

    NAME          its command name, e.g. "binary-addition"
    run(**opts)   -> dict of metrics; saves its figures under opts["out"]
    train_variant(variant, **opts) -> dict, if the demo is a task ``minigru race`` can run:
                  {"metric": name, "value": float, "higher_is_better": bool, "params": int,
                   "seconds_per_epoch": float, "loss": [per-epoch training loss], ...}

and ends with ``if __name__ == "__main__": main(run, NAME, __doc__)``, so that
``python demos/<name>.py`` and ``minigru demo <name>`` take the same options:
``--backend``, ``--out``, ``--seed``, ``--quick``, ``--no-progress``.
"""

import argparse
import contextlib
import functools
import json
import os
import sys
import time

import numpy as np

from minigru._io import atomic_write
from minigru.cli import seed_int

OPTIONS = ("backend", "out", "seed", "quick", "progress")


def out_folder(value):
    """``--out``: a folder that exists, or one that can be made; checked before any training,
    so that a demo does not fail at its first figure."""
    path = os.path.abspath(value)
    if os.path.exists(path) and not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{value!r} is a file, not a folder for the figures")
    parent = path
    while not os.path.exists(parent):                 # the nearest part that exists
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"cannot make the folder {value!r}: {parent!r} is a "
                                         f"file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write into {value!r}: {parent!r} is not "
                                         f"writable")
    return value


def add_options(parser):
    parser.add_argument("--backend", default="numba",
                        help="cell backend (default numba, the fastest here; numpy is the "
                             "reference)")
    parser.add_argument("--out", default="out", type=out_folder,
                        help="folder for the figures (default ./out)")
    parser.add_argument("--seed", type=seed_int, default=0, help="random seed (default 0)")
    parser.add_argument("--quick", action="store_true", help="a smaller, faster version")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                        help="no progress bars")
    return parser


def main(run, name, doc, argv=None):
    """The ``python demos/<name>.py`` entry point: parse the options, run, print the result."""
    parser = add_options(argparse.ArgumentParser(prog=f"demos/{name}", description=doc,
                                                 formatter_class=argparse.RawTextHelpFormatter))
    args = parser.parse_args(argv)
    result = run(**{k: getattr(args, k) for k in OPTIONS})
    print_result(result)
    return 0


def merge_settings(name, defaults, quick_settings, quick, settings):
    """``defaults``, then ``quick_settings`` when ``quick``, then the caller's ``settings`` on
    top; a key the demo does not have is an error that lists the ones it has."""
    cfg = {**defaults, **(quick_settings if quick else {})}
    unknown = sorted(set(settings or {}) - set(cfg))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; {name} has {', '.join(cfg)}")
    cfg.update(settings or {})
    return cfg


def print_result(result, file=None):
    """The demo's last line: one JSON object with its name and metrics (API.md)."""
    print(json.dumps(result, default=_jsonable), file=file or sys.stdout, flush=True)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def say(*parts):
    """Progress text for the reader, on stderr so that stdout ends with the JSON line."""
    print(*parts, file=sys.stderr, flush=True)


def figure_path(out, filename):
    os.makedirs(out, exist_ok=True)
    return os.path.join(out, filename)


def save_figure(fig, out, filename):
    """Save a matplotlib figure as PNG atomically (temporary file, then rename); return its path."""
    import matplotlib.pyplot as plt

    path = figure_path(out, filename)
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110,
                                                         bbox_inches="tight"))
    finally:
        plt.close(fig)


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (demos run without a screen)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def one_blas_thread():
    """One BLAS thread for the whole demo: with H = 32 every product is tiny, and several threads
    spend longer waiting for each other than multiplying (ten times longer on a busy machine).
    Uses threadpoolctl (in the ``demos`` extra); without it, a no-op."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def single_blas_thread(func):
    """Decorator: run ``func`` inside ``one_blas_thread()``."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with one_blas_thread():
            return func(*args, **kwargs)
    return wrapper
