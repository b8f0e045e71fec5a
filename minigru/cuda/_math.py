"""Scalar math on the GPU, and how the cell files' point functions come to run there.

The per-element math of every cell (``gru_point``, ``gru_point_backward``, ... in
``minigru/cells/*.py``) is written once, as plain Python over numbers that calls ``sigmoid``,
``tanh``, ... by name (``cells/_point.py``). ``compiled_point`` compiles that same source for
the GPU with those names bound to the device versions below: one text of the math, three
targets.

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

import numpy as np
from numba import cuda

from . import simulated

if simulated():
    ONE, ZERO = 1.0, 0.0
else:
    ONE, ZERO = np.float32(1.0), np.float32(0.0)

__all__ = ["ONE", "ZERO", "compiled_point", "sigmoid", "tanh", "relu",
           "positive", "maximum", "softplus"]


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


@cuda.jit(device=True)
def positive(x):
    return ONE if x > ZERO else ZERO


@cuda.jit(device=True)
def maximum(a, b):
    return a if a >= b else b


@cuda.jit(device=True)
def softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^(−|x|)), as the reference."""
    return (x if x > ZERO else ZERO) + math.log1p(math.exp(-abs(x)))


# What the names a point function may use (``cells/_point.py``) mean on the GPU.
NAMES = {"sigmoid": sigmoid, "tanh": tanh, "relu": relu, "positive": positive, "exp": math.exp,
         "log": math.log, "sqrt": math.sqrt, "maximum": maximum, "softplus": softplus,
         "ONE": ONE, "ZERO": ZERO,
         "HALF": 0.5 if simulated() else np.float32(0.5)}
_compiled = {}


def compiled_point(f):
    """``f``, a point function of a cell file, compiled as a CUDA device function: its names of
    ``_point.MATH`` bound to the device versions above (``cells/_point.on_target``); the point
    functions it calls are compiled the same way."""
    from ..cells._point import on_target
    return on_target(f, NAMES, cuda.jit(device=True), _compiled)

