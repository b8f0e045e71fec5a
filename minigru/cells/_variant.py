"""What a variant is, for the rest of the package: its equations as code plus a little metadata.

A cell family module (``gru.py``, ``mgu.py``, ...) defines, for each variant, plain functions

    shapes(input_size, hidden_size, **opts) -> {name: shape}     parameter shapes, VARIANTS.md
    sizes(p) -> {input_size, hidden_size, [opts]}                 read the sizes back from p
    init(input_size, hidden_size, rng, dtype, **opts) -> p
    forward(p, x, state0, training, **run) -> ys, state, cache
    backward(p, cache, dys, dstate) -> dx, dstate0, grads
    step(p, x_t, state, **run) -> y, state

and registers them as a ``Variant``. The functions receive checked arguments only: ``state0``
and ``dstate`` are arrays (zeros filled in), shapes and dtypes agree. Checking is the job of
``minigru.cell.Cell``, so the family files hold the mathematics and nothing else.
"""

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Optional

import numpy as np


@dataclass(frozen=True)
class Variant:
    name: str
    paper: str
    equations: str                      # one line, for `minigru variants`
    shapes: Callable
    sizes: Callable
    init: Callable
    forward: Callable
    backward: Callable
    step: Callable
    lstm_state: bool = False            # state is (h, c) rather than h (the older spelling
                                        # of state=("h", "c"))
    init_options: dict = field(default_factory=dict)   # shape options with their defaults
    run_options: dict = field(default_factory=dict)    # options forward/step read
    init_buffers: Optional[Callable] = None            # (p) -> dict of untrained buffers
    bias_params: tuple = ()             # what bias=False leaves out (they are zeros then)
    family: str = ""                                   # the module, set by the registry
    structure: object = None            # the declaration it was made from (Gated, TwoStage)
    layout: object = None               # where its weights and gates are, for init= (_init.py)
    output_is_state: bool = True        # y_t is state_t[0] (rru: its own output o_t)
    loop_regularisers: bool = False     # its forward takes masks= (recurrent dropout, zoneout)
    state: tuple = ()                   # the state's components, each (B, H): ("h",), ("h", "c"),
                                        # slstm's ("h", "c", "n", "m"); one array when one
    loop_state: tuple = ()              # what forward/backward/step carry, if not ``state``: sru's
                                        # ("h", "c"), its output h carried beside its state c
    nonnegative_state: tuple = ()       # components a given state must have ≥ 0 (slstm's n)
    constants: tuple = ()               # run options that reach the point as per-unit vectors
                                        # of p, not trained (janet's beta; ``Cell`` adds them)

    def __post_init__(self):
        state = self.state or (("h", "c") if self.lstm_state else ("h",))
        if not (isinstance(state, tuple) and all(isinstance(k, str) for k in state)):
            raise TypeError(f"{self.name}: state must be a tuple of component names, "
                            f"got {self.state!r}")
        loop = self.loop_state or state
        if loop[len(loop) - len(state):] != state:
            raise ValueError(f"{self.name}: loop_state must end with the state's components "
                             f"{state}, got {loop}")
        if not set(self.nonnegative_state) <= set(state):
            raise ValueError(f"{self.name}: nonnegative_state must name components of the state "
                             f"{state}, got {self.nonnegative_state!r}")
        object.__setattr__(self, "state", state)
        object.__setattr__(self, "loop_state", loop)
        object.__setattr__(self, "lstm_state", state == ("h", "c"))

    @cached_property
    def n_state(self):
        """How many components the state has (1: an array; more: a tuple of arrays)."""
        return len(self.state)

    @cached_property
    def hidden_outputs(self):
        """How many of the loops' components lead ``loop_state`` without being state (sru: 1)."""
        return len(self.loop_state) - len(self.state)



def uniform_init(shapes, hidden_size, rng, dtype):
    """PyTorch's default for recurrent layers: every tensor ~ U(-1/sqrt(H), 1/sqrt(H))."""
    k = 1.0 / np.sqrt(hidden_size)
    return {name: rng.uniform(-k, k, size=shape).astype(dtype) for name, shape in shapes.items()}
