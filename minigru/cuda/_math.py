"""Scalar math on the GPU, and how the CPU backend's per-element functions come to run there.

The per-element math of every cell (``gru_point``, ``gru_point_backward``, ... in
``minigru/numba/*.py``) is written once, as plain Python over scalars that calls ``sigmoid``,
``tanh`` and ``relu`` by name. ``device_function`` compiles that same source for the GPU with
those three names bound to the device versions below: one text of the math, two targets.

On the GPU ``math.exp`` and ``math.tanh`` of a float32 compile to CUDA's ``expf``/``tanhf``
(libdevice, a few ulps), of a float64 to ``exp``/``tanh``; the constants are float32 ``ONE`` and
``ZERO`` as on the CPU, so a float32 kernel is never promoted to float64 and a float64 kernel
stays float64.

In Numba's simulator the kernels run as Python, where NumPy's rules apply instead: there a
float32 constant next to the Python float that ``math.exp`` returns would round the result to
float32. So in the simulator ``ONE`` and ``ZERO`` are Python floats, which reproduces the GPU's
typing (float64 stays float64; float32 arithmetic stays float32).
"""

import math
import types

import numpy as np
from numba import cuda

from . import simulated

if simulated():
    ONE, ZERO = 1.0, 0.0
else:
    ONE, ZERO = np.float32(1.0), np.float32(0.0)

__all__ = ["ONE", "ZERO", "device_function", "sigmoid", "tanh", "relu"]


@cuda.jit(device=True)
def sigmoid(x):
    """The reference's overflow-free form: exp is only taken of a non-positive number."""
    if x >= ZERO:
        return ONE / (ONE + math.exp(-x))
    e = math.exp(x)
    return e / (ONE + e)


@cuda.jit(device=True)
def tanh(x):
    return math.tanh(x)


@cuda.jit(device=True)
def relu(x):
    return x if x > ZERO else ZERO


_DEVICE_NAMES = {"sigmoid": sigmoid, "tanh": tanh, "relu": relu, "ONE": ONE, "ZERO": ZERO}
_compiled = {}


def device_function(f):
    """``f`` (a plain Python function of the CPU backend) compiled as a CUDA device function.

    ``f``'s global names ``sigmoid``, ``tanh``, ``relu``, ``ONE`` and ``ZERO`` are bound to the
    device versions;
    plain Python functions it calls from ``minigru`` are compiled the same way, recursively.
    """
    if f in _compiled:
        return _compiled[f]
    if not isinstance(f, types.FunctionType):
        raise TypeError(f"device_function needs a plain Python function, got {f!r} "
                        f"(pass the per-element function itself, not its compiled CPU version)")
    env = dict(f.__globals__)
    for name in f.__code__.co_names:
        g = env.get(name)
        if name in _DEVICE_NAMES:
            env[name] = _DEVICE_NAMES[name]
        elif isinstance(g, types.FunctionType) and g.__module__.startswith("minigru."):
            env[name] = device_function(g)
    retargeted = types.FunctionType(f.__code__, env, f.__name__, f.__defaults__, f.__closure__)
    retargeted.__doc__, retargeted.__module__ = f.__doc__, f.__module__
    _compiled[f] = cuda.jit(device=True)(retargeted)
    return _compiled[f]

