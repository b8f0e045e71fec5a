"""``Cell.step``'s streaming fast path: what a call must match to skip the checks.

A streaming loop calls ``cell.step(p, x_t, state)`` once per time step, with the same ``p`` and
arrays of the same kinds every time. The first such call goes through every check of
``Cell.step``; a ``StepRecord`` keeps what it was given and the function to call for it (the
step the backend prepared for exactly those arrays, numba's ``prepare_step``, or its plain
step with the options bound). A later call goes straight to that function when ``accepts`` finds it
the same in every respect the checks looked at:

- the same dict ``p``, with the same keys, holding the same arrays (by identity: the prepared
  step holds them, and sees the in-place updates of an optimiser), each still of the shape it
  was checked with (``a.shape`` can be set in place; so can ``a.dtype``, and one of another item
  size changes the shape too; one of the same size, ``float32`` read as ``int32``, is not looked
  for: the step goes on reading the same bits as the floats they were). A prepared step that
  checks the shapes itself, in compiled code (``run.checks_shapes``: the numba backend's), is
  not compared here; it returns None when they no longer fit, and the checks then run;
- ``x_t`` and the state plain NumPy arrays of the dtype and shapes checked;
- no ``buffers=`` argument, and ligru's ``cell.buffers`` the same dict of the same arrays.

Anything else goes back through the checks, which raise the usual errors or make a new record.
"""

from operator import attrgetter, is_

import numpy as np

_ndarray = np.ndarray
_shape = attrgetter("shape")


class StepRecord:
    """One checked step: what it was given (``p``, the dtype and shapes of ``x_t`` and the
    state, the cell's buffers) and ``run(x_t, state) -> (y, new_state)``."""

    __slots__ = ("p", "keys", "arrays", "shapes", "dtype", "x_shape", "state_shape",
                 "buffers", "buffer_arrays", "buffer_shapes", "run")

    def __init__(self, p, x_t, state, buffers, run):
        self.p, self.keys, self.arrays = p, tuple(p), tuple(p.values())
        # compared at each call unless the prepared step checks them in compiled code
        self.shapes = None if getattr(run, "checks_shapes", False) else tuple(
            map(_shape, self.arrays))
        self.dtype, self.x_shape = x_t.dtype, x_t.shape
        self.state_shape = (tuple(s.shape for s in state) if isinstance(state, tuple)
                            else state.shape)
        self.buffers = buffers
        self.buffer_arrays = None if buffers is None else tuple(buffers.values())
        self.buffer_shapes = None if buffers is None else tuple(map(_shape,
                                                                    self.buffer_arrays))
        self.run = run

    def accepts(self, p, x_t, state, buffers, cell_buffers):
        """Whether ``step(p, x_t, state, buffers=buffers)`` may call ``run``; ``cell_buffers``
        are the cell's own buffers at this call."""
        if not (p is self.p and buffers is None and type(x_t) is _ndarray
                and x_t.dtype is self.dtype and x_t.shape == self.x_shape):
            return False
        if type(state) is _ndarray:                   # h, checked here: the common case
            if state.dtype is not self.dtype or state.shape != self.state_shape:
                return False
        elif not self._takes_tuple_state(state):
            return False
        arrays = self.arrays
        return (tuple(p) == self.keys and all(map(is_, p.values(), arrays))
                and (self.shapes is None or tuple(map(_shape, arrays)) == self.shapes)
                and (self.buffers is None or self._same_buffers(cell_buffers)))

    def same_params(self, p, dtype, x_shape, state_shape, buffers):
        """Whether a record for these would hold what this one holds (then it can be kept, and
        the backend's step is not prepared again)."""
        return (p is self.p and tuple(p) == self.keys
                and all(map(is_, p.values(), self.arrays))
                and (self.shapes is None or tuple(map(_shape, self.arrays)) == self.shapes)
                and dtype == self.dtype and x_shape == self.x_shape
                and state_shape == self.state_shape and buffers is self.buffers
                and (buffers is None or self._same_buffers(buffers)))

    def _takes_tuple_state(self, state):
        """Whether ``state`` is a tuple (lstm's ``(h, c)``) of arrays as the record's."""
        dtype, shape = self.dtype, self.state_shape
        return (type(state) is tuple and len(state) == len(shape) and type(shape[0]) is tuple
                and all(type(s) is _ndarray and s.dtype is dtype and s.shape == shape_i
                        for s, shape_i in zip(state, shape)))

    def _same_buffers(self, buffers):
        return (buffers is self.buffers and len(buffers) == len(self.buffer_arrays)
                and all(map(is_, buffers.values(), self.buffer_arrays))
                and tuple(map(_shape, self.buffer_arrays)) == self.buffer_shapes)
