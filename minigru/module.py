"""What every trainable piece of a model has, in the manner of ``torch.nn.Module`` but explicit.

A ``Module`` owns two dicts of arrays with the same keys and shapes: ``params`` and ``grads``.
``forward`` keeps what ``backward`` needs; ``backward`` *adds* into ``grads`` (so gradients of
several losses or chunks accumulate, as in PyTorch) and never touches ``params``; an optimiser
updates ``params`` in place. The arrays are never rebound, only written into, so a dict taken
from ``params`` once (by an optimiser, say) stays valid.

``Model(rnn=..., head=...)`` puts modules together under prefixed names (``"rnn.W_l0"``).
"""

import numpy as np


class Module:
    """Base of RNN, Linear, Embedding and Model."""

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.training = True
        self.rng = None         # a np.random.Generator where the module draws (dropout)

    # -- the parameters
    def _add_param(self, name, array):
        self.params[name] = array
        self.grads[name] = np.zeros_like(array)

    def zero_grad(self):
        """Set every gradient to zero, in place."""
        for g in self.grads.values():
            g.fill(0)

    @property
    def dtype(self):
        return next(iter(self.params.values())).dtype

    def num_params(self):
        return sum(p.size for p in self.params.values())

    # -- modes
    def train(self, mode=True):
        """Training mode (dropout on, batch statistics); returns self, as PyTorch's does."""
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    # -- saving
    def config(self):
        """The constructor arguments, JSON-serialisable: enough to build the module again."""
        raise NotImplementedError(f"{type(self).__name__} does not describe its configuration")

    def state_dict(self):
        """Copies of the parameters (and buffers, where a module has them)."""
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state):
        """Copy arrays into the parameters in place; keys, shapes and dtypes must match (all
        checked before anything is copied)."""
        self._load(self.check_state_dict(state))

    def check_state_dict(self, state):
        """``state`` checked against this module's keys, shapes and dtypes; changes nothing."""
        own = self.state_dict()
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict of arrays, got {type(state).__name__}")
        if set(state) != set(own):
            raise ValueError(f"state has keys {sorted(state)}, the module has {sorted(own)}: "
                             f"missing {sorted(set(own) - set(state))}, "
                             f"unexpected {sorted(set(state) - set(own))}")
        for k, v in state.items():
            v = np.asarray(v)
            if v.shape != own[k].shape or v.dtype != own[k].dtype:
                raise ValueError(f"state[{k!r}] is {v.dtype} {v.shape}, the module's is "
                                 f"{own[k].dtype} {own[k].shape}")
        return state

    def _load(self, state):
        for k, v in state.items():
            self.params[k][...] = v

    # -- random generators (dropout masks), saved by checkpoints
    def generators(self):
        """{name: np.random.Generator} of every generator the module draws from."""
        return {} if self.rng is None else {"": self.rng}

    def rng_states(self):
        """{name: bit-generator state} of every generator the module draws from."""
        return {k: g.bit_generator.state for k, g in self.generators().items()}

    def set_rng_states(self, states):
        """Restore ``rng_states()``; every state is checked before any is set."""
        gens = self.generators()
        for k, state in self.check_rng_states(states).items():
            gens[k].bit_generator.state = state

    def check_rng_states(self, states):
        """``states`` checked against this module's generators; changes nothing."""
        gens = self.generators()
        if not isinstance(states, dict) or set(states) != set(gens):
            got = sorted(states) if isinstance(states, dict) else type(states).__name__
            raise ValueError(f"the generator states must be a dict with the keys "
                             f"{sorted(gens)}, got {got}")
        for k, state in states.items():
            check_bit_generator_state(f"the state of generator {k!r}", state,
                                      gens[k].bit_generator)
        return states


class Model(Module):
    """Named modules as one: ``Model(rnn=rnn, head=head)``; parameters as ``"rnn.W_l0"``.

    ``model.rnn`` and ``model.head`` are the modules; ``params``/``grads`` are views of theirs
    (the same arrays), so an optimiser over ``model.params`` trains them all.
    """

    def __init__(self, **modules):
        super().__init__()
        if not modules:
            raise ValueError("Model needs at least one named module, e.g. Model(rnn=rnn)")
        self.modules = {}
        for name, m in modules.items():
            if not isinstance(m, Module):
                raise TypeError(f"Model's {name!r} must be a minigru Module, "
                                f"got {type(m).__name__}")
            self.modules[name] = m
            for k in m.params:
                self.params[f"{name}.{k}"] = m.params[k]
                self.grads[f"{name}.{k}"] = m.grads[k]

    def __getattr__(self, name):
        modules = self.__dict__.get("modules", {})
        if name in modules:
            return modules[name]
        raise AttributeError(f"Model has no module or attribute {name!r}")

    def train(self, mode=True):
        for m in self.modules.values():
            m.train(mode)
        self.training = bool(mode)
        return self

    def config(self):
        return {name: {"class": type(m).__name__, **m.config()} for name, m in self.modules.items()}

    def state_dict(self):
        return {f"{name}.{k}": v for name, m in self.modules.items()
                for k, v in m.state_dict().items()}

    def _load(self, state):
        for name, m in self.modules.items():
            m._load({k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")})

    def generators(self):
        return {f"{name}.{k}" if k else name: g for name, m in self.modules.items()
                for k, g in m.generators().items()}


def check_bit_generator_state(name, state, like):
    """A ``bit_generator.state`` dict that a generator like ``like`` (a BitGenerator) takes;
    tried on a fresh one, so nothing in use changes."""
    kind = type(like).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != kind:
        got = state.get("bit_generator") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{name} must be a {kind} state, got {got!r}")
    try:
        type(like)().state = state
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise ValueError(f"{name} is not a valid {kind} state: {type(e).__name__}: {e}") from None
    return state
