"""The streaming step: one compiled kernel per time step, its Python prepared once.

A step kernel is called as ``kernel(x, *params, *state, *new_state)``: the input row(s), the
cell's parameters in the order it wants them, the old state (``h``, or ``h, c`` for lstm) and the
arrays it writes the new state into. ``stepper(kernel, params)`` makes a cell's two Python
entries to it:

- ``step(p, x_t, state)``, the backend's step, which Numba's dispatcher checks like any call;
- ``prepare(p, x_t, state)``, which returns a function of ``(x_t, state)`` for the calls that
  follow with the same ``p`` and arrays of the same dtype and shapes. ``Cell.step`` recognises
  such calls (the streaming case: one step per call, from a Python loop) and calls it.

Why a prepared function: at batch 1 the kernel computes a step in under a microsecond, and the
Python around it cost three times that (measured for gru, ``I = 16``, ``H = 64``: checks
1.1 µs, looking up the parameters and allocating 0.8 µs, Numba choosing the compiled version by
the types of seven arrays 0.3 µs). The prepared function holds the parameters and calls the
compiled machine code for exactly those types directly (``Dispatcher.compile(types)`` gives it,
from the on-disk cache when there is one), skipping the dispatcher's choice. That is only safe
for arguments of those types, which is why only ``Cell.step``'s fast path, having checked them,
calls it: ``x_t`` and the state of the dtype and shape it was prepared with, and made
C-contiguous here.
"""

import numpy as np
from numba import typeof


def stepper(kernel, params):
    """``(step, prepare)`` for ``kernel(x, *params(p, h), *state, *new_state)``.

    ``params(p, h)`` gives the kernel's parameter arguments from ``p`` and the state ``h`` (some
    depend on ``H`` or the dtype). A state is an array ``h`` or a tuple ``(h, c)``; the step
    returns ``(y, new_state)`` with ``y`` the new ``h``, as the reference does.
    """
    def step(p, x_t, state):
        states = _states(state)
        new = tuple(np.empty_like(s) for s in states)
        kernel(np.ascontiguousarray(x_t), *params(p, states[0]),
               *map(np.ascontiguousarray, states), *new)
        return _result(state, new)

    def prepare(p, x_t, state):
        states = tuple(map(np.ascontiguousarray, _states(state)))
        args = params(p, states[0])
        new = tuple(np.empty_like(s) for s in states)     # writable, whatever the state was
        run = kernel.compile(tuple(map(typeof, (np.ascontiguousarray(x_t), *args, *states,
                                                *new))))
        shape, dtype = states[0].shape, states[0].dtype.type   # (np.float32 allocates faster
                                                              # than its dtype: 130 / 200 ns)
        empty, contiguous = np.empty, np.ascontiguousarray

        if isinstance(state, tuple):                   # (h, c)
            def prepared(x_t, state):
                h_new, c_new = empty(shape, dtype), empty(shape, dtype)
                run(contiguous(x_t), *args, contiguous(state[0]), contiguous(state[1]), h_new,
                    c_new)
                return h_new, (h_new, c_new)
        else:
            def prepared(x_t, h):
                h_new = empty(shape, dtype)
                run(contiguous(x_t), *args, contiguous(h), h_new)
                return h_new, h_new
        return prepared

    return step, prepare


def gates_params(p, h):
    """``(W, U, b, sees_x, sees_h, has_bias)`` for the kernels of the variants whose gates may go
    without ``x``, ``h`` or a bias (gru1..gru3, mgu1..mgu3): whether ``W``, ``U``, ``b`` hold
    gate columns besides the candidate's ``H``."""
    H = h.shape[1]
    W, U, b = p["W"], p["U"], p["b"]
    return W, U, b, W.shape[1] > H, U.shape[1] > H, b.shape[0] > H


def _states(state):
    return state if isinstance(state, tuple) else (state,)


def _result(state, new):
    return (new[0], new) if isinstance(state, tuple) else (new[0], new[0])
