"""Point functions: the per-element math of a cell, written once, run on every target.

A *point function* is the arithmetic of one unit at one step, with its backward beside it:
plain Python over numbers, such as ``gru_point(ar, az, an, ur, uz, un, c, h)``. The cell file
is the only place it is written, and every backend runs that text:

    numpy   called on arrays: a step's (B, H) slices, elementwise. This is the reference.
    numba   compiled for scalars and inlined into the CPU backend's loops.
    cuda    compiled as a device function that the GPU kernels call.

What a point function may use, so that all three can run it:

- its arguments, the operators ``+ - * /`` and comparisons;
- the names defined below, imported from this module by the cell file: ``sigmoid``, ``tanh``,
  ``relu``, ``positive`` (1 where its argument is > 0, else 0: relu's derivative), ``exp``,
  ``log``, ``sqrt``, ``maximum`` (of two numbers), ``softplus`` (log(1 + e^a), without
  overflow), and the constants ``ONE``, ``ZERO``, ``HALF``. Each target binds these names to
  its own versions (``on_target``). Two more are point functions made of those, and so run
  everywhere too: ``log_sigmoid`` and ``logaddexp``;
- other point functions, called by name.

What it may not use: ``np.``/``math.`` calls (their names are not rebound), ``if`` on its
arguments (an array has no truth value: use ``relu``, ``positive``), loops, indexing, side
effects. And no numeric literals in arithmetic: write ``ONE - z``, not ``1 - z``, since Numba
types ``1`` as an integer and ``1.0`` as a float64, and either would turn a float32 kernel into
float64. It returns a number or a tuple of numbers.
"""

import hashlib
import types

import numpy as np

ONE = np.float32(1.0)
ZERO = np.float32(0.0)
HALF = np.float32(0.5)


def sigmoid(a):
    """Logistic sigmoid without overflow: exp is only ever taken of a non-positive number."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, ONE / (ONE + e), e / (ONE + e)).astype(np.result_type(a), copy=False)


def relu(a):
    return np.maximum(a, ZERO)


def positive(a):
    """1 where ``a > 0``, else 0, in ``a``'s dtype: the derivative of relu at ``a``."""
    return (a > ZERO).astype(np.result_type(a))


def softplus(a):
    """log(1 + e^a) without overflow: max(a, 0) + log(1 + e^(−|a|))."""
    return np.maximum(a, ZERO) + np.log1p(np.exp(-np.abs(a)))


tanh, exp, log, sqrt, maximum = np.tanh, np.exp, np.log, np.sqrt, np.maximum

# The names a point function may use, as the NumPy reference defines them; a target gives its
# own versions of the same names to ``on_target``.
MATH = {"sigmoid": sigmoid, "tanh": tanh, "relu": relu, "positive": positive, "exp": exp,
        "log": log, "sqrt": sqrt, "maximum": maximum, "softplus": softplus,
        "ONE": ONE, "ZERO": ZERO, "HALF": HALF}


# Point functions made of those (so every target runs them as they are written here).

def log_sigmoid(a):
    """log σ(a) = −softplus(−a): finite for any a (−a for a very negative a, not log 0)."""
    return -softplus(-a)


def logaddexp(a, b):
    """log(e^a + e^b) without overflow: the larger of the two plus log(1 + e^(−distance))."""
    return maximum(a, b) + softplus(-maximum(a - b, b - a))


def on_target(f, names, compile, _done=None):
    """``f`` (a point function) compiled for a target: the same code, its globals ``names``
    (the target's versions of ``MATH``) rebound, then ``compile(function)`` (``numba.njit(...)``,
    ``cuda.jit(device=True)``). The point functions ``f`` calls are made the same way, once."""
    done = {} if _done is None else _done
    if f in done:
        return done[f]
    if not isinstance(f, types.FunctionType):
        raise TypeError(f"a point function must be a plain Python function, got {f!r}")
    env = dict(f.__globals__)
    for name in f.__code__.co_names:
        if name in names:
            env[name] = names[name]
        elif _is_point_function(env.get(name), f):
            env[name] = on_target(env[name], names, compile, done)
    retargeted = types.FunctionType(f.__code__, env, f.__name__, f.__defaults__, f.__closure__)
    retargeted.__doc__, retargeted.__module__ = f.__doc__, f.__module__
    retargeted.__qualname__ = f.__qualname__
    done[f] = compile(retargeted)
    return done[f]


def reads(f, *names):
    """Whether the function ``f`` reads any of its parameters ``names``: any load of one in its
    bytecode, or a closure over one, counts (e.g. whether rnn's backward reads the new state it
    is given: it does, tanh' = 1 − h'²)."""
    import dis
    names = set(names)
    code = f.__code__
    if names & set(code.co_cellvars):
        return True
    for ins in dis.get_instructions(code):
        if ins.opname.startswith("LOAD_"):
            loaded = ins.argval if isinstance(ins.argval, tuple) else (ins.argval,)
            if names & set(loaded):
                return True
    return False


def _is_point_function(g, caller):
    """A plain Python function the point function ``caller`` calls that is itself a point
    function: one from its own module or from minigru."""
    return (isinstance(g, types.FunctionType) and g.__module__ is not None
            and (g.__module__ == caller.__module__ or g.__module__.startswith("minigru.")))


def fingerprint(*functions):
    """A short hash of the code of ``functions`` and of the point functions they call: what
    compiled code made from them is cached under, so that an edited cell is compiled anew."""
    digest = hashlib.sha1()
    seen = set()

    def add(f):
        if f in seen:
            return
        seen.add(f)
        _add_code(digest, f.__code__)
        for name in f.__code__.co_names:
            g = f.__globals__.get(name)
            if _is_point_function(g, f) and name not in MATH:
                add(g)

    for f in functions:
        add(f)
    return digest.hexdigest()[:16]


def _add_code(digest, code):
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    digest.update(repr(code.co_varnames).encode())
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _add_code(digest, c)
        else:
            digest.update(repr(c).encode())
