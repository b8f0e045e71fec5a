"""Argument checks shared by every public entry point.

Each check raises a ``TypeError`` (wrong kind of object or dtype) or a ``ValueError``
(wrong shape or value) whose message names the argument, what was expected and what
was given. Nothing is ever broadcast or cast silently.
"""

import math

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(name, dtype):
    """``dtype`` as a ``np.dtype`` that must be float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def array(name, a, shape, dtype, legend=None, is_device=None):
    """Check that ``a`` is an ndarray of exactly ``shape`` and ``dtype``.

    ``shape`` is a tuple whose entries are ints (must match) or None (any size);
    ``legend`` names the axes for the message, e.g. ``"(T, B, I)"``. ``is_device``, given by
    backends that take device arrays too, says whether ``a`` is one (checked the same way).
    """
    # the common case first and cheaply: this runs on every streaming step
    kind_ok = type(a) is np.ndarray or (is_device is not None and is_device(a))
    if kind_ok and a.dtype == dtype and a.ndim == len(shape):
        for got, expected in zip(a.shape, shape):
            if expected is not None and got != expected:
                break
        else:
            return a
    if not kind_ok:
        not_plain(name, a)
        if not isinstance(a, np.ndarray):
            kinds = "a numpy.ndarray" + (" or a device array" if is_device else "")
            raise TypeError(f"{name} must be {kinds}, got {type(a).__name__}")
        if a.dtype == dtype and a.ndim == len(shape) and all(
                e is None or g == e for g, e in zip(a.shape, shape)):
            return a                                  # np.memmap, say: an ndarray of its own
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {a.dtype}")
    if a.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {a.dtype} but the parameters are {np.dtype(dtype)}: "
            f"cast one of them (e.g. {name}.astype(np.{np.dtype(dtype)}))"
        )
    want = _shape_text(shape, legend)
    if a.ndim != len(shape):
        raise ValueError(f"{name} must be {len(shape)}-D {want}, got shape {a.shape}")
    raise ValueError(f"{name} must have shape {want}, got {a.shape}")


def state(name, state, names, shape, dtype, legend, owner, is_device=None):
    """A state of components ``names``: one array of ``shape``, or for several components a
    tuple of such arrays in that order; ``owner`` names whose state it is in the message
    ("lstm", "an lstm RNN")."""
    if len(names) > 1:
        if not (isinstance(state, tuple) and len(state) == len(names)):
            raise TypeError(f"{name} of {owner} must be a tuple ({', '.join(names)}) of "
                            f"{legend} arrays, got "
                            + (f"a tuple of {len(state)}" if isinstance(state, tuple)
                               else type(state).__name__))
        return tuple(array(f"{name}[{i}]", s, shape, dtype, legend, is_device)
                     for i, s in enumerate(state))
    if isinstance(state, tuple):
        raise TypeError(f"{name} of {owner} must be an array {legend}, got a tuple")
    return array(name, state, shape, dtype, legend, is_device)


def not_plain(name, a):
    """Refuse the ndarray subclasses whose meaning the arithmetic would silently drop: a masked
    array's mask (its masked entries would be computed with), a matrix's 2-D-only products."""
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{name} is a numpy.ma.MaskedArray, whose mask minigru would ignore: "
                        f"pass {name}.filled(0) (and lengths= for padded sequences) instead")
    if isinstance(a, np.matrix):
        raise TypeError(f"{name} is a numpy.matrix: pass np.asarray({name})")


def _shape_text(shape, legend):
    dims = ", ".join("?" if s is None else str(s) for s in shape)
    dims = f"({dims}{',' if len(shape) == 1 else ''})"
    return f"{legend} = {dims}" if legend else dims


def params(name, p, shapes, is_device=None):
    """Check a parameter dict: exactly the keys of ``shapes``, each of that shape (None: any),
    all of one float dtype; returns the dtype. ``is_device`` as for ``array``."""
    if not isinstance(p, dict):
        raise TypeError(f"{name} must be a dict of parameter arrays, got {type(p).__name__}")
    if set(p) != set(shapes):
        missing = sorted(set(shapes) - set(p))
        extra = sorted(set(p) - set(shapes))
        raise ValueError(
            f"{name} must have exactly the keys {sorted(shapes)}; "
            f"missing {missing}, unexpected {extra}"
        )
    dtype = None
    for key, shape in shapes.items():
        a = p[key]
        not_plain(f"{name}[{key!r}]", a)
        if not (isinstance(a, np.ndarray) or (is_device is not None and is_device(a))):
            kinds = "a numpy.ndarray" + (" or a device array" if is_device else "")
            raise TypeError(f"{name}[{key!r}] must be {kinds}, got {type(a).__name__}")
        dtype = dtype or a.dtype
        if a.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name}[{key!r}] must be float32 or float64, got dtype {a.dtype}")
        if a.dtype != dtype:
            raise TypeError(f"{name} mixes dtypes: {name}[{key!r}] is {a.dtype}, "
                            f"others are {dtype}")
        if shape is not None and a.shape != tuple(shape):
            raise ValueError(f"{name}[{key!r}] must have shape {tuple(shape)}, got {a.shape}")
    return dtype


def positive_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def seed(name, value):
    """A seed for ``np.random.default_rng``: None (fresh entropy) or an int >= 0. (It is kept in
    configurations and checkpoints as JSON, so a Generator or a sequence is not taken.)"""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be None or an int >= 0, got {type(value).__name__} "
                        f"{value!r}")
    if value < 0:
        raise ValueError(f"{name} must be None or an int >= 0, got {value}")
    return int(value)


def positive_real(name, value):
    """A finite real number > 0, as a Python float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a positive number, got {type(value).__name__} "
                        f"{value!r}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def probability(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a float in [0, 1), got {type(value).__name__} {value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def boolean(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


# -- the optimisers' and schedules' arguments (minigru/optim/)

def real(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def nonnegative(name, value):
    value = real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def in_range(name, value, low, high, low_open=False):
    """A real number in [low, high], or (low, high] with low_open."""
    value = real(name, value)
    if value > high or value < low or (low_open and value == low):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return value


def flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def optimizer_params(params):
    if not isinstance(params, dict):
        hint = " (pass module.params)" if hasattr(params, "params") else ""
        raise TypeError(f"params must be a dict of parameter arrays{hint}, "
                        f"got {type(params).__name__}")
    if not params:
        raise ValueError("params must hold at least one array, got an empty dict")
    for k, p in params.items():
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{k!r}] must be a numpy.ndarray, got {type(p).__name__}")
        if p.dtype not in FLOAT_DTYPES:
            raise TypeError(f"params[{k!r}] must be float32 or float64, got dtype {p.dtype}")
        if not p.flags.writeable:
            raise ValueError(f"params[{k!r}] is read-only; the optimiser updates it in place")
    # a weight tied under two names would be updated twice per step
    keys = list(params)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if np.may_share_memory(params[a], params[b]) and \
                    np.shares_memory(params[a], params[b]):
                raise ValueError(f"params[{a!r}] and params[{b!r}] share memory; "
                                 f"pass each array once")
    return dict(params)


def arrays_like(name, arrays, like):
    """``arrays`` must be a dict with exactly the keys of ``like``, each of the same shape and
    dtype (nothing is cast or broadcast)."""
    if not isinstance(arrays, dict):
        raise TypeError(f"{name} must be a dict of arrays with the keys of params, "
                        f"got {type(arrays).__name__}")
    if arrays.keys() != like.keys():
        raise ValueError(f"{name} must have exactly the keys of params; "
                         f"missing {sorted(like.keys() - arrays.keys())}, "
                         f"unexpected {sorted(arrays.keys() - like.keys())}")
    for k, p in like.items():
        a = arrays[k]
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}[{k!r}] must be a numpy.ndarray, got {type(a).__name__}")
        if a.dtype != p.dtype:
            raise TypeError(f"{name}[{k!r}] has dtype {a.dtype} but params[{k!r}] is {p.dtype}")
        if a.shape != p.shape:
            raise ValueError(f"{name}[{k!r}] must have shape {p.shape} like params[{k!r}], "
                             f"got {a.shape}")


def exact_keys(name, d, expected):
    if not isinstance(d, dict):
        raise TypeError(f"{name} must be a dict, got {type(d).__name__}")
    if set(d) != set(expected):
        raise ValueError(f"{name} must have exactly the keys {sorted(expected)}; "
                         f"missing {sorted(set(expected) - set(d))}, "
                         f"unexpected {sorted(set(d) - set(expected))}")


def integer(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return int(value)
