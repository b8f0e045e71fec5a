"""Checkpoints: a whole training state in one ``.npz`` file, written atomically.

What one file holds:
    meta.json          format version, the model's class and configuration (variant, sizes,
                       dtype, backend, ...), the optimiser's and schedule's hyperparameters and
                       step counts, every random generator's state, and ``extra`` (epoch, history)
    model/<name>       every parameter (and buffer, e.g. ligru's running statistics)
    state/<n>          every array inside the optimiser's and schedule's state

The JSON is stored as a uint8 array, so the file loads with ``allow_pickle=False``: opening a
checkpoint never runs code from it. The file is written to a temporary file beside the target,
flushed to disk, then renamed over it: a crash mid-save leaves the last good checkpoint intact
(``_io.atomic_write``: a symlink stays a link, a file keeps its permissions).

Loading checks the whole file first (its structure, every array it refers to, every generator
state) and then everything asked for against it (the model's class, configuration and arrays, the
optimiser's and schedule's state), and only then changes anything: a file that does not fit
raises a ``ValueError`` and leaves the model, optimiser, schedule and generator as they were.
"""

import inspect
import json
import os
import warnings

import numpy as np

from ._io import atomic_write
from .cells import BackendUnavailableError
from .layers import Embedding, Linear
from .module import Model, Module, check_bit_generator_state
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

def _plain(value):
    """JSON for the NumPy scalars that histories and evaluations hold (np.float32(0.5))."""
    if isinstance(value, np.generic) and not isinstance(value, np.ndarray):
        return value.item()
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON-serialisable")


def save_checkpoint(path, model, optimizer=None, scheduler=None, rng=None, extra=None):
    """Write ``model`` (and optimiser, schedule, a data generator ``rng``, ``extra``) to ``path``.

    ``extra`` is any JSON-serialisable dict (epoch, loss history, ...; NumPy scalars are taken
    as numbers). Atomic: the old file at ``path``, if any, is replaced only once the new one is
    completely on disk.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be a minigru Module, got {type(model).__name__}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict, got {type(extra).__name__}")
    try:
        json.dumps(extra, default=_plain)
    except (TypeError, ValueError) as e:
        raise TypeError(f"extra must be JSON-serialisable: {e}") from None
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
    text = json.dumps(meta, default=_plain)
    arrays["meta.json"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    return atomic_write(path, lambda f: np.savez(f, **arrays))


# ---------------------------------------------------------------- read and check the file

def read_checkpoint(path):
    """(meta, arrays) of a checkpoint file, with every check of the file itself; changes
    nothing. Anything wrong with the file is a ValueError that names it."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as e:
        raise _unreadable(path, e) from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(f"{path!r} is a single .npy array, not a minigru checkpoint (an .npz "
                         f"archive written by mg.save_checkpoint)")
    try:
        with f:
            names = list(f.files)
            if "meta.json" not in names:
                held = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                raise ValueError(f"{path!r} is an .npz archive but not a minigru checkpoint: "
                                 f"it has no meta.json (it holds {held or 'nothing'})")
            arrays = {k: f[k] for k in names}         # reading every member checks its CRC
        meta = json.loads(arrays.pop("meta.json").tobytes().decode("utf-8"))
    except ValueError as e:
        if str(e).startswith(repr(path)):
            raise
        raise _unreadable(path, e) from None
    except Exception as e:                            # zlib, zipfile, struct, ...: any damage
        raise _unreadable(path, e) from None
    _check_meta(path, meta, arrays)
    return meta, arrays


def _unreadable(path, error):
    return ValueError(f"{path!r} is not a readable minigru checkpoint (truncated or "
                      f"corrupted?): {type(error).__name__}: {error}")


def _check_meta(path, meta, arrays):
    """The structure of a checkpoint's meta.json, and that its arrays are exactly those it
    names: a damaged member name is found here, not later as a KeyError."""
    def bad(what):
        raise ValueError(f"{path!r} is not a valid minigru checkpoint: {what}")

    if not isinstance(meta, dict):
        bad(f"its meta.json holds a {type(meta).__name__}, not an object")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a minigru checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path!r} has checkpoint format version {meta.get('version')}; this "
                         f"minigru reads version {VERSION}")
    expected = {"format", "version", "model", "optimizer", "scheduler", "rng", "extra"}
    if set(meta) != expected:
        bad(f"meta.json has the keys {sorted(meta)}, expected {sorted(expected)}")
    model = meta["model"]
    if not (isinstance(model, dict) and set(model) == {"class", "config"}
            and isinstance(model["class"], str) and isinstance(model["config"], dict)):
        bad("meta.json's model must be {'class': name, 'config': {...}}")
    referenced = set()
    for part in ("optimizer", "scheduler"):
        value = meta[part]
        if value is None:
            continue
        if not (isinstance(value, dict) and set(value) == {"class", "state"}
                and isinstance(value["class"], str)):
            bad(f"meta.json's {part} must be null or {{'class': name, 'state': ...}}")
        referenced |= _references(value["state"])
    rng = meta["rng"]
    if not (isinstance(rng, dict) and set(rng) == {"model", "data"}
            and isinstance(rng["model"], dict)):
        bad("meta.json's rng must be {'model': {...}, 'data': state or null}")
    for name, state in rng["model"].items():
        _check_generator(path, f"the model's generator {name!r}", state)
    if rng["data"] is not None:
        _check_generator(path, "the data generator", rng["data"])
    if not isinstance(meta["extra"], dict):
        bad("meta.json's extra must be an object")
    missing = sorted(referenced - set(arrays))
    if missing:
        bad(f"it refers to arrays it does not hold: {', '.join(missing)}")
    unknown = sorted(k for k in arrays if k not in referenced and not k.startswith("model/"))
    if unknown:
        bad(f"it holds arrays nothing refers to: {', '.join(unknown)}")


def _references(tree):
    """The array names a flattened state refers to."""
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            return {tree["__array__"]} if isinstance(tree["__array__"], str) else {None}
        return set().union(*map(_references, tree.values())) if tree else set()
    if isinstance(tree, list):
        return set().union(*map(_references, tree)) if tree else set()
    return set()


def _check_generator(path, name, state):
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    like = getattr(np.random, kind, None) if isinstance(kind, str) else None
    if not (isinstance(like, type) and issubclass(like, np.random.BitGenerator)):
        raise ValueError(f"{path!r} is not a valid minigru checkpoint: {name} has no valid "
                         f"bit-generator state (got {kind!r})")
    try:
        check_bit_generator_state(name, state, like())
    except ValueError as e:
        raise ValueError(f"{path!r} is not a valid minigru checkpoint: {e}") from None


# ---------------------------------------------------------------- load

def build_model(config, cls_name, backend=None):
    """A fresh model of the class and configuration a checkpoint records. ``backend`` overrides
    the recorded backend of every RNN in it; without it, a recorded backend that cannot run
    here (``cuda`` on a machine without a GPU) falls back to one that can, with a warning."""
    if cls_name == "Model":
        if not config:
            raise ValueError("a Model needs at least one module")
        return Model(**{name: build_model({k: v for k, v in c.items() if k != "class"},
                                          c["class"], backend) for name, c in config.items()})
    if cls_name not in MODULES:
        raise ValueError(f"cannot build a {cls_name}: known modules are {sorted(MODULES)}")
    cls = MODULES[cls_name]
    config = _filled(config, cls_name)
    if cls is not RNN:
        return cls(**config)
    if backend is not None:
        return cls(**{**config, "backend": backend})
    try:
        return cls(**config)
    except (BackendUnavailableError, ImportError, NotImplementedError) as e:
        for fallback in ("numba", "numpy"):
            try:
                rnn = cls(**{**config, "backend": fallback})
            except (BackendUnavailableError, ImportError, NotImplementedError):
                continue
            warnings.warn(f"the checkpoint's {config['variant']} RNN ran on backend "
                          f"{config['backend']!r}, which cannot run here ({e}); it is loaded "
                          f"on backend {fallback!r} instead (pass backend= to choose)",
                          RuntimeWarning, stacklevel=3)
            return rnn
        raise


def _defaults(cls):
    """The keyword defaults of ``cls``'s constructor."""
    return {k: p.default for k, p in inspect.signature(cls).parameters.items()
            if p.default is not inspect.Parameter.empty}


# Settings a checkpoint may be loaded across: they change how the model runs, not what it is.
PORTABLE = {"backend", "seed"}


def _compare_configs(saved, own, where="model"):
    if isinstance(saved, dict) and isinstance(own, dict):
        for k in sorted(set(saved) | set(own)):
            if k not in PORTABLE:
                _compare_configs(saved.get(k), own.get(k), f"{where}.{k}")
    elif saved != own:
        raise ValueError(f"the checkpoint's {where} is {saved!r}, this model's is {own!r}")


def _filled(config, cls_name):
    """A recorded configuration with the constructor's defaults for the keys it lacks (a file
    written before a setting existed: ``bias``, say)."""
    if cls_name == "Model" and isinstance(config, dict):
        return {name: {**c, **_filled({k: v for k, v in c.items() if k != "class"},
                                      c.get("class"))} if isinstance(c, dict) else c
                for name, c in config.items()}
    cls = MODULES.get(cls_name)
    return config if cls is None or not isinstance(config, dict) else {**_defaults(cls),
                                                                         **config}


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, rng=None, *,
                    backend=None):
    """Restore a checkpoint into the given objects (in place) and return a dict of what it holds.

    ``model`` None builds a fresh one from the recorded configuration, on the recorded backend
    or ``backend=`` (a backend that cannot run here falls back to one that can, with a
    warning); a given model must have the same class and configuration (variant, sizes, dtype,
    ...), or a ValueError says what differs. Everything is checked before anything is restored.
    Returns ``{"model", "extra", "meta"}``.
    """
    meta, arrays = read_checkpoint(path)
    path = os.fspath(path)
    saved = meta["model"]
    try:
        if model is None:
            model = build_model(saved["config"], saved["class"], backend)
        elif type(model).__name__ != saved["class"]:
            raise ValueError(f"the checkpoint holds a {saved['class']}, not a "
                             f"{type(model).__name__}")
        else:
            _compare_configs(_filled(saved["config"], saved["class"]),
                             json.loads(json.dumps(model.config())))
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        if isinstance(e, ValueError) and str(e).startswith("the checkpoint"):
            raise ValueError(f"{path!r}: {e}") from None
        raise ValueError(f"{path!r} records a model that cannot be built: "
                         f"{type(e).__name__}: {e}") from None

    # every check first ...
    restore = []
    try:
        state = model.check_state_dict({k[len("model/"):]: v for k, v in arrays.items()
                                        if k.startswith("model/")})
        restore.append(lambda: model._load(state))
        rng_states = model.check_rng_states(meta["rng"]["model"])
        restore.append(lambda: model.set_rng_states(rng_states))
        for obj, name in ((optimizer, "optimizer"), (scheduler, "scheduler")):
            if obj is None:
                continue
            if meta[name] is None:
                raise ValueError(f"the checkpoint holds no {name} state")
            if meta[name]["class"] != type(obj).__name__:
                raise ValueError(f"the checkpoint's {name} is a {meta[name]['class']}, not a "
                                 f"{type(obj).__name__}")
            checked = obj.check_state_dict(_unflatten(meta[name]["state"], arrays))
            restore.append(lambda obj=obj, checked=checked: obj._restore(checked))
        if rng is not None:
            if meta["rng"]["data"] is None:
                raise ValueError("the checkpoint holds no data generator state")
            data = check_bit_generator_state("the data generator's state", meta["rng"]["data"],
                                             rng.bit_generator)
            restore.append(lambda: setattr(rng.bit_generator, "state", data))
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{path!r}: {e}") from None
    # ... then every change
    for step in restore:
        step()
    return {"model": model, "extra": meta["extra"], "meta": meta}
