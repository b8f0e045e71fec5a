"""Checkpoints: a whole training state in one ``.npz`` file, written atomically.

What one file holds:
    meta.json          format version, the model's class and configuration (variant, sizes,
                       dtype, backend, ...), the optimiser's and schedule's hyperparameters and
                       step counts, every random generator's state, and ``extra`` (epoch, history)
    model/<name>       every parameter (and buffer, e.g. ligru's running statistics)
    state/<n>          every array inside the optimiser's and schedule's state

The JSON is stored as a uint8 array, so the file loads with ``allow_pickle=False``: opening a
checkpoint never runs code from it. The file is written to a temporary file beside the target,
flushed to disk, then renamed over it: a crash mid-save leaves the last good checkpoint intact.
"""

import json
import os
import zipfile

import numpy as np

from ._io import atomic_write
from .layers import Embedding, Linear
from .module import Model, Module
from .rnn import RNN

FORMAT = "minigru-checkpoint"
VERSION = 1
MODULES = {"RNN": RNN, "Linear": Linear, "Embedding": Embedding}


# ---------------------------------------------------------------- nested state <-> JSON + arrays

def _flatten(tree, arrays):
    """JSON-able copy of ``tree`` with every array replaced by {"__array__": key in arrays}."""
    if isinstance(tree, np.ndarray):
        key = f"state/{len(arrays)}"
        arrays[key] = tree
        return {"__array__": key}
    if isinstance(tree, dict):
        return {str(k): _flatten(v, arrays) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_flatten(v, arrays) for v in tree]
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def _unflatten(tree, arrays):
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            return arrays[tree["__array__"]].copy()
        return {k: _unflatten(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unflatten(v, arrays) for v in tree]
    return tree


# ---------------------------------------------------------------- save

def save_checkpoint(path, model, optimizer=None, scheduler=None, rng=None, extra=None):
    """Write ``model`` (and optimiser, schedule, a data generator ``rng``, ``extra``) to ``path``.

    ``extra`` is any JSON-serialisable dict (epoch, loss history, ...). Atomic: the old file at
    ``path``, if any, is replaced only once the new one is completely on disk.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be a minigru Module, got {type(model).__name__}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    meta = {
        "format": FORMAT, "version": VERSION,
        "model": {"class": type(model).__name__, "config": model.config()},
        "optimizer": None if optimizer is None else {
            "class": type(optimizer).__name__, "state": _flatten(optimizer.state_dict(), arrays)},
        "scheduler": None if scheduler is None else {
            "class": type(scheduler).__name__, "state": _flatten(scheduler.state_dict(), arrays)},
        "rng": {"model": model.rng_states(),
                "data": None if rng is None else rng.bit_generator.state},
        "extra": extra or {},
    }
    try:
        text = json.dumps(meta)
    except TypeError as e:
        raise TypeError(f"extra must be JSON-serialisable: {e}") from None
    arrays["meta.json"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    return atomic_write(path, lambda f: np.savez(f, **arrays))


# ---------------------------------------------------------------- load

def read_checkpoint(path):
    """(meta, arrays) of a checkpoint file, with every integrity check; changes nothing."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}     # reading every member checks its CRC
        meta = json.loads(arrays.pop("meta.json").tobytes().decode("utf-8"))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, UnicodeDecodeError) as e:
        raise ValueError(f"{path!r} is not a readable minigru checkpoint (truncated or "
                         f"corrupted?): {type(e).__name__}: {e}") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a minigru checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path!r} has checkpoint format version {meta.get('version')}; this "
                         f"minigru reads version {VERSION}")
    return meta, arrays


def build_model(config, cls_name):
    """A fresh model of the class and configuration a checkpoint records."""
    if cls_name == "Model":
        return Model(**{name: build_model({k: v for k, v in c.items() if k != "class"},
                                          c["class"]) for name, c in config.items()})
    if cls_name not in MODULES:
        raise ValueError(f"cannot build a {cls_name}: known modules are {sorted(MODULES)}")
    return MODULES[cls_name](**config)


# Settings a checkpoint may be loaded across: they change how the model runs, not what it is.
PORTABLE = {"backend", "seed"}


def _compare_configs(saved, own, where="model"):
    if isinstance(saved, dict) and isinstance(own, dict):
        for k in sorted(set(saved) | set(own)):
            if k not in PORTABLE:
                _compare_configs(saved.get(k), own.get(k), f"{where}.{k}")
    elif saved != own:
        raise ValueError(f"the checkpoint's {where} is {saved!r}, this model's is {own!r}")


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, rng=None):
    """Restore a checkpoint into the given objects (in place) and return a dict of what it holds.

    ``model`` None builds a fresh one from the recorded configuration; a given model must have
    the same class and configuration (variant, sizes, dtype, ...), or a ValueError says what
    differs. Returns ``{"model", "extra", "meta"}``.
    """
    meta, arrays = read_checkpoint(path)
    saved = meta["model"]
    if model is None:
        model = build_model(saved["config"], saved["class"])
    else:
        if type(model).__name__ != saved["class"]:
            raise ValueError(f"the checkpoint holds a {saved['class']}, not a "
                             f"{type(model).__name__}")
        _compare_configs(json.loads(json.dumps(saved["config"])),
                         json.loads(json.dumps(model.config())))
    model.load_state_dict({k[len("model/"):]: v for k, v in arrays.items()
                           if k.startswith("model/")})
    model.set_rng_states(meta["rng"]["model"])
    for obj, name in ((optimizer, "optimizer"), (scheduler, "scheduler")):
        if obj is None:
            continue
        if meta[name] is None:
            raise ValueError(f"the checkpoint holds no {name} state")
        if meta[name]["class"] != type(obj).__name__:
            raise ValueError(f"the checkpoint's {name} is a {meta[name]['class']}, not a "
                             f"{type(obj).__name__}")
        obj.load_state_dict(_unflatten(meta[name]["state"], arrays))
    if rng is not None:
        if meta["rng"]["data"] is None:
            raise ValueError("the checkpoint holds no data generator state")
        rng.bit_generator.state = meta["rng"]["data"]
    return {"model": model, "extra": meta["extra"], "meta": meta}
