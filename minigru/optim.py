r"""Optimisers, gradient clipping and learning-rate schedules: PyTorch's rules, in NumPy.

An optimiser holds the ``params`` dict of a model (the same arrays, never rebound) and updates
them in place from a ``grads`` dict with exactly the same keys::

    opt = optim.Adam(model.params, lr=1e-3)
    sched = optim.CosineAnnealingLR(opt, T_max=100)
    for epoch in range(100):
        for batch in data:
            model.zero_grad()
            ...                                            # forward, backward into model.grads
            optim.clip_grad_norm(model.grads, max_norm=1.0)
            opt.step(model.grads)
        sched.step()

Every rule below is ``torch.optim``'s, term for term and in the same floating-point order
(``torch/optim/sgd.py`` and ``adam.py``, single-tensor path), so trajectories agree with PyTorch to
rounding: about 1e-16 in float64 over hundreds of steps, not bitwise, since torch's CPU kernels
fuse multiply-adds. All arithmetic is in the parameters' dtype; hyperparameters are Python floats.
Notation: :math:`\theta` a parameter, :math:`g` its gradient, :math:`\gamma` the learning rate
``lr``, :math:`\lambda` ``weight_decay``, :math:`t = 1, 2, \dots` the step.

**SGD** (momentum :math:`\mu`, dampening :math:`\tau`)::

    g  <- g + λ θ                                     (weight decay, added to the gradient)
    b  <- g                              if t = 1     (if μ ≠ 0: the momentum buffer)
    b  <- μ b + (1 - τ) g                otherwise
    g  <- g + μ b   if nesterov,   else  g <- b
    θ  <- θ - γ g

**Adam** (:math:`\beta_1, \beta_2`, :math:`\epsilon`; the state ``m``, ``v`` starts at zero)::

    g  <- g + λ θ                                     (Adam: L2 penalty in the gradient)
    θ  <- θ (1 - γ λ)                                 (AdamW instead: decoupled decay)
    m  <- m + (1 - β1) (g - m)                        (= β1 m + (1 - β1) g, torch's lerp)
    v  <- β2 v + (1 - β2) g²
    v̂  <- max(v̂, v)   if amsgrad,   else  v̂ = v
    θ  <- θ - (γ / (1 - β1ᵗ)) m / (√v̂ / √(1 - β2ᵗ) + ε)

**clip_grad_norm** (``torch.nn.utils.clip_grad_norm_``, 2-norm)::

    n  = ‖(‖g₁‖, ‖g₂‖, ...)‖                          (the norm of all gradients as one vector)
    g  <- g · c   where  c = max_norm / (n + 1e-6),  only if c < 1

**Schedules** (``torch.optim.lr_scheduler``), in PyTorch's chainable form: each ``step()`` derives
the next ``lr`` from the optimiser's current one, so :math:`\gamma_e` below is the lr after ``e``
calls (the constructor makes the call ``e = 0``); :math:`\gamma_b` is the base lr, the
optimiser's ``lr`` when the first schedule was attached to it (``opt.initial_lr``)::

    StepLR             γ_e = γ_{e-1} · gamma   if e > 0 and e mod step_size = 0,  else γ_{e-1}
    LinearLR           γ_0 = γ_b · f0
                       γ_e = γ_{e-1} (1 + (f1 - f0) / (N f0 + (e - 1)(f1 - f0)))   for 1 ≤ e ≤ N
                       γ_e = γ_{e-1}                                              for e > N
    CosineAnnealingLR  γ_0 = γ (unchanged)
                       γ_e = η + (γ_{e-1} - η) (1 + cos(π e / T)) / (1 + cos(π (e - 1) / T))
                       γ_e = γ_{e-1} + (γ_b - η)(1 - cos(π / T)) / 2   if (e - 1 - T) mod 2T = 0
    SequentialLR       one schedule after another; at milestone M the next one restarts at its
                       closed form for e = 0 (γ_b·f0 for LinearLR, γ_b for the others)

with closed forms γ_b·gamma^⌊e/step_size⌋, γ_b (f0 + (f1 - f0) min(e, N) / N) and
η + (γ_b - η)(1 + cos(π e / T)) / 2 that the recursions follow to rounding.

**Checkpoints.** ``state_dict()`` returns plain data: a checkpoint stores ``sd["state"]`` (a
two-level dict of NumPy arrays, ``{buffer: {param_key: array}}``) in an ``.npz`` and everything
else in JSON (Python ints, floats, bools, lists, None). A schedule's ``state_dict()`` is JSON only.
"""

import math
from bisect import bisect_right

import numpy as np

from . import _check


# -- argument checks (the message names the argument, the expected and the given)

def _real(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _nonnegative(name, value):
    value = _real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _in_range(name, value, low, high, low_open=False):
    """A real number in [low, high], or (low, high] with low_open."""
    value = _real(name, value)
    if value > high or value < low or (low_open and value == low):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return value


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _check_params(params):
    if not isinstance(params, dict):
        hint = " (pass module.params)" if hasattr(params, "params") else ""
        raise TypeError(f"params must be a dict of parameter arrays{hint}, "
                        f"got {type(params).__name__}")
    if not params:
        raise ValueError("params must hold at least one array, got an empty dict")
    for k, p in params.items():
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{k!r}] must be a numpy.ndarray, got {type(p).__name__}")
        if p.dtype not in _check.FLOAT_DTYPES:
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


def _check_arrays(name, arrays, like):
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


def _check_keys(name, d, expected):
    if not isinstance(d, dict):
        raise TypeError(f"{name} must be a dict, got {type(d).__name__}")
    if set(d) != set(expected):
        raise ValueError(f"{name} must have exactly the keys {sorted(expected)}; "
                         f"missing {sorted(set(expected) - set(d))}, "
                         f"unexpected {sorted(set(d) - set(expected))}")


def _int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


# -- optimisers

class Optimizer:
    """Base of SGD, Adam and AdamW.

    Attributes:
        params: the dict of parameter arrays it updates in place (the caller's arrays).
        state: ``{buffer: {param_key: array}}``, the running buffers, one array per parameter
            in its dtype (``"momentum_buffer"``; ``"exp_avg"``, ``"exp_avg_sq"``,
            ``"max_exp_avg_sq"``).
        step_count: the number of ``step`` calls so far (``t``).
        lr: the learning rate; settable, and what schedules change.
        initial_lr: the lr when the first schedule was attached (None before), as PyTorch's
            ``param_group["initial_lr"]``.
    """

    hyperparam_names = ()   # the constructor's keywords after params, in signature order

    def __init__(self, params, **hyperparams):
        self.params = _check_params(params)
        for name, value in self._validate(hyperparams).items():
            setattr(self, name, value)
        self.initial_lr = None
        self.step_count = 0
        self.state = {buf: {k: np.zeros_like(p) for k, p in self.params.items()}
                      for buf in self._buffers(self.hyperparams())}

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _nonnegative("lr", value)

    def hyperparams(self):
        """The constructor's keyword arguments, current lr included (JSON-serialisable)."""
        values = {name: getattr(self, name) for name in self.hyperparam_names}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}  # JSON

    def step(self, grads):
        """Update every array of ``params`` in place from ``grads`` (left untouched)."""
        self._check_grads(grads)
        self.step_count += 1
        self._step(grads)

    def _check_grads(self, grads):
        _check_arrays("grads", grads, self.params)

    # -- saving
    def state_dict(self):
        """Everything a resumed run needs, as copies::

            {"type": "Adam",                          # the class name
             "hyperparams": {"lr": 0.001, "betas": [0.9, 0.999], ...},   # constructor keywords
             "initial_lr": None or float,             # set by the first schedule
             "step": 200,                             # step_count
             "state": {"exp_avg": {key: array}, ...}} # the buffers, one array per parameter

        All but ``"state"`` is JSON; ``"state"`` holds only NumPy arrays.
        """
        return {"type": type(self).__name__,
                "hyperparams": self.hyperparams(),
                "initial_lr": self.initial_lr,
                "step": self.step_count,
                "state": {buf: {k: a.copy() for k, a in arrays.items()}
                          for buf, arrays in self.state.items()}}

    def load_state_dict(self, state_dict):
        """Restore a ``state_dict()`` (hyperparameters and lr included, as PyTorch does).

        Everything is checked before anything changes; the arrays are copied in and must have
        the parameters' keys, shapes and dtypes.
        """
        self._restore(self.check_state_dict(state_dict))

    def check_state_dict(self, state_dict):
        """What ``load_state_dict`` would restore, checked; changes nothing."""
        sd = state_dict
        _check_keys("state_dict", sd, ("type", "hyperparams", "initial_lr", "step", "state"))
        if sd["type"] != type(self).__name__:
            raise ValueError(f"state_dict['type'] is {sd['type']!r}, "
                             f"this optimiser is {type(self).__name__!r}")
        _check_keys("state_dict['hyperparams']", sd["hyperparams"], self.hyperparam_names)
        hyper = self._validate(sd["hyperparams"])
        initial_lr = sd["initial_lr"]
        if initial_lr is not None:
            initial_lr = _nonnegative("state_dict['initial_lr']", initial_lr)
        step = _int("state_dict['step']", sd["step"])
        if step < 0:
            raise ValueError(f"state_dict['step'] must be >= 0, got {step}")
        _check_keys("state_dict['state']", sd["state"], self._buffers(hyper))
        for buf, arrays in sd["state"].items():
            _check_arrays(f"state_dict['state'][{buf!r}]", arrays, self.params)
        return hyper, initial_lr, step, sd["state"]

    def _restore(self, checked):
        hyper, initial_lr, step, state = checked
        for name, value in hyper.items():
            setattr(self, name, value)
        self.initial_lr = initial_lr
        self.step_count = step
        self.state = {buf: {k: np.array(a, copy=True) for k, a in arrays.items()}
                      for buf, arrays in state.items()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparams().items())
        return f"{type(self).__name__}({len(self.params)} arrays, {args})"

    # -- what a subclass defines
    @staticmethod
    def _validate(hyperparams):
        """The checked hyperparameters as a dict of Python values."""
        raise NotImplementedError

    @staticmethod
    def _buffers(hyperparams):
        """The names of the state buffers these hyperparameters need."""
        raise NotImplementedError

    def _step(self, grads):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay
    (``torch.optim.SGD``; the rule is in the module docstring)."""

    hyperparam_names = ("lr", "momentum", "dampening", "nesterov", "weight_decay")

    def __init__(self, params, lr=0.1, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         nesterov=nesterov, weight_decay=weight_decay)

    @staticmethod
    def _validate(h):
        h = {"lr": _nonnegative("lr", h["lr"]),
             "momentum": _nonnegative("momentum", h["momentum"]),
             "dampening": _in_range("dampening", h["dampening"], 0.0, 1.0),
             "nesterov": _flag("nesterov", h["nesterov"]),
             "weight_decay": _nonnegative("weight_decay", h["weight_decay"])}
        if h["nesterov"] and (h["momentum"] == 0 or h["dampening"] != 0):
            raise ValueError(f"nesterov=True needs momentum > 0 and dampening = 0 (as in "
                             f"torch.optim.SGD), got momentum={h['momentum']}, "
                             f"dampening={h['dampening']}")
        return h

    @staticmethod
    def _buffers(h):
        return ("momentum_buffer",) if h["momentum"] != 0 else ()

    def _step(self, grads):
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        for k, p in self.params.items():
            g = grads[k]
            if wd != 0:
                g = g + wd * p
            if mu != 0:
                b = self.state["momentum_buffer"][k]
                if self.step_count == 1:
                    b[...] = g                  # torch starts the buffer at the first gradient
                else:
                    b *= mu
                    b += (1 - self.dampening) * g
                g = g + mu * b if self.nesterov else b
            p -= lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with L2 weight decay in the gradient and optional AMSGrad
    (``torch.optim.Adam``; the rule is in the module docstring)."""

    hyperparam_names = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)

    @staticmethod
    def _validate(h):
        betas = h["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        return {"lr": _nonnegative("lr", h["lr"]),
                "betas": tuple(_check.probability(f"betas[{i}]", b)
                               for i, b in enumerate(betas)),
                "eps": _nonnegative("eps", h["eps"]),
                "weight_decay": _nonnegative("weight_decay", h["weight_decay"]),
                "amsgrad": _flag("amsgrad", h["amsgrad"])}

    @staticmethod
    def _buffers(h):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if h["amsgrad"] else ())

    def _step(self, grads):
        lr, wd, eps = self.lr, self.weight_decay, self.eps
        beta1, beta2 = self.betas
        bias_correction1 = 1 - beta1 ** self.step_count
        bias_correction2_sqrt = (1 - beta2 ** self.step_count) ** 0.5
        step_size = lr / bias_correction1
        for k, p in self.params.items():
            g = grads[k]
            if wd != 0:
                if self.decoupled_weight_decay:
                    p *= 1 - lr * wd
                else:
                    g = g + wd * p
            m, v = self.state["exp_avg"][k], self.state["exp_avg_sq"][k]
            m += (1 - beta1) * (g - m)
            v *= beta2
            v += (1 - beta2) * g * g
            if self.amsgrad:
                v = np.maximum(self.state["max_exp_avg_sq"][k], v,
                               out=self.state["max_exp_avg_sq"][k])
            denom = np.sqrt(v) / bias_correction2_sqrt + eps
            p += -step_size * m / denom          # torch's addcdiv: (value · m) / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): ``θ <- θ (1 - γ λ)``
    before the Adam step instead of ``λ θ`` in the gradient (``torch.optim.AdamW``)."""

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)


def clip_grad_norm(grads, max_norm, error_if_nonfinite=False):
    """Scale every gradient in place so that their joint 2-norm is at most ``max_norm``.

    ``torch.nn.utils.clip_grad_norm_`` with ``norm_type=2``: the norm ``n`` is that of all the
    arrays as one vector; when ``c = max_norm / (n + 1e-6) < 1`` every array is multiplied by
    ``c``. Returns ``n`` (before clipping) as a float. A NaN or infinite norm still scales, as in
    torch (the gradients become NaN or zero), or raises ``ValueError`` with
    ``error_if_nonfinite=True``.
    """
    if not isinstance(grads, dict):
        raise TypeError(f"grads must be a dict of gradient arrays, got {type(grads).__name__}")
    for k, g in grads.items():
        if not isinstance(g, np.ndarray):
            raise TypeError(f"grads[{k!r}] must be a numpy.ndarray, got {type(g).__name__}")
        if g.dtype not in _check.FLOAT_DTYPES:
            raise TypeError(f"grads[{k!r}] must be float32 or float64, got dtype {g.dtype}")
    max_norm = _nonnegative("max_norm", max_norm)
    error_if_nonfinite = _flag("error_if_nonfinite", error_if_nonfinite)
    if not grads:
        return 0.0
    norms = np.array([np.linalg.norm(g.ravel()) for g in grads.values()])
    total = np.linalg.norm(norms)
    if error_if_nonfinite and not np.isfinite(total):
        raise ValueError(f"grads have a non-finite total norm ({total}); "
                         f"pass error_if_nonfinite=False to scale them anyway")
    clip_coef = max_norm / (total + 1e-6)
    if not clip_coef >= 1:              # NaN scales too, like torch's clamp(clip_coef, max=1)
        for g in grads.values():
            g *= clip_coef
    return float(total)


# -- learning-rate schedules

class LRScheduler:
    """Base of the schedules: PyTorch's ``LRScheduler`` for an optimiser with one lr.

    The constructor sets ``opt.initial_lr`` if no schedule did before (the base lr) and takes
    the first step (``last_epoch = 0``); call ``step()`` once per epoch (or per batch) after
    ``opt.step``. There is no ``last_epoch`` argument: resume with ``load_state_dict`` (build the
    schedule, then load the optimiser's state and the schedule's, as in PyTorch, since building
    a schedule writes ``opt.lr``).
    """

    hyperparam_names = ()   # the constructor's keywords after optimizer

    def __init__(self, optimizer, **hyperparams):
        self.optimizer = _check_optimizer(optimizer)
        for name, value in self._validate(hyperparams).items():
            setattr(self, name, value)
        if optimizer.initial_lr is None:
            optimizer.initial_lr = optimizer.lr
        self.base_lr = optimizer.initial_lr
        self.last_epoch = -1
        self.step()

    def step(self):
        """Advance one epoch and write the new lr into the optimiser."""
        self._update_lr()

    def _update_lr(self, epoch=None):
        if epoch is None:
            self.last_epoch += 1
            lr = self._next_lr(self.optimizer.lr)
        else:
            self.last_epoch = epoch
            lr = self._closed_form_lr()
        # a schedule that ends at 0 can round to -1e-18, which torch keeps; lr stays >= 0 here
        self.optimizer.lr = max(lr, 0.0)
        self._last_lr = self.optimizer.lr

    def get_last_lr(self):
        """``[lr]``, the lr this schedule set last (a list, as PyTorch's one per param group)."""
        return [self._last_lr]

    def state_dict(self):
        """JSON-serialisable: ``{"type", "hyperparams", "base_lr", "last_epoch", "last_lr"}``."""
        return {"type": type(self).__name__,
                "hyperparams": {name: getattr(self, name) for name in self.hyperparam_names},
                "base_lr": self.base_lr, "last_epoch": self.last_epoch, "last_lr": self._last_lr}

    def load_state_dict(self, state_dict):
        """Restore a ``state_dict()``; the optimiser's lr is restored by its own state. Checked
        before anything changes."""
        self._restore(self.check_state_dict(state_dict))

    def check_state_dict(self, state_dict):
        """What ``load_state_dict`` would restore, checked; changes nothing."""
        sd = state_dict
        _check_keys("state_dict", sd, ("type", "hyperparams", "base_lr", "last_epoch", "last_lr"))
        if sd["type"] != type(self).__name__:
            raise ValueError(f"state_dict['type'] is {sd['type']!r}, "
                             f"this schedule is {type(self).__name__!r}")
        _check_keys("state_dict['hyperparams']", sd["hyperparams"], self.hyperparam_names)
        hyper = self._validate(sd["hyperparams"])
        base_lr = _nonnegative("state_dict['base_lr']", sd["base_lr"])
        last_epoch = _int("state_dict['last_epoch']", sd["last_epoch"])
        last_lr = _nonnegative("state_dict['last_lr']", sd["last_lr"])
        return hyper, base_lr, last_epoch, last_lr

    def _restore(self, checked):
        hyper, base_lr, last_epoch, last_lr = checked
        for name, value in hyper.items():
            setattr(self, name, value)
        self.base_lr, self.last_epoch = base_lr, last_epoch
        self._last_lr = last_lr

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.hyperparam_names)
        return f"{type(self).__name__}({args}, last_epoch={self.last_epoch})"

    # -- what a subclass defines
    @staticmethod
    def _validate(hyperparams):
        raise NotImplementedError

    def _next_lr(self, lr):
        """The lr for ``self.last_epoch`` from the current ``lr`` (PyTorch's ``get_lr``)."""
        raise NotImplementedError

    def _closed_form_lr(self):
        """The lr for ``self.last_epoch`` from ``base_lr`` alone."""
        raise NotImplementedError


def _check_optimizer(optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a minigru.optim optimiser (SGD, Adam, AdamW), "
                        f"got {type(optimizer).__name__}")
    return optimizer


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs (``lr_scheduler.StepLR``)."""

    hyperparam_names = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer, step_size=step_size, gamma=gamma)

    @staticmethod
    def _validate(h):
        return {"step_size": _check.positive_int("step_size", h["step_size"]),
                "gamma": _nonnegative("gamma", h["gamma"])}

    def _next_lr(self, lr):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lr
        return lr * self.gamma

    def _closed_form_lr(self):
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class LinearLR(LRScheduler):
    """Scale the lr linearly from ``start_factor`` to ``end_factor`` times the base lr over
    ``total_iters`` epochs, then hold it (``lr_scheduler.LinearLR``; the linear warm-up)."""

    hyperparam_names = ("start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        super().__init__(optimizer, start_factor=start_factor, end_factor=end_factor,
                         total_iters=total_iters)

    @staticmethod
    def _validate(h):
        return {"start_factor": _in_range("start_factor", h["start_factor"], 0.0, 1.0,
                                          low_open=True),
                "end_factor": _in_range("end_factor", h["end_factor"], 0.0, 1.0),
                "total_iters": _check.positive_int("total_iters", h["total_iters"])}

    def _next_lr(self, lr):
        f0, f1, n = self.start_factor, self.end_factor, self.total_iters
        if self.last_epoch == 0:
            return lr * f0
        if self.last_epoch > n:
            return lr
        return lr * (1.0 + (f1 - f0) / (n * f0 + (self.last_epoch - 1) * (f1 - f0)))

    def _closed_form_lr(self):
        f0, f1, n = self.start_factor, self.end_factor, self.total_iters
        return self.base_lr * (f0 + (f1 - f0) * min(n, self.last_epoch) / n)


class CosineAnnealingLR(LRScheduler):
    """Anneal the lr from the base lr to ``eta_min`` along half a cosine over ``T_max`` epochs
    (``lr_scheduler.CosineAnnealingLR``: SGDR without restarts; past ``T_max`` it climbs back)."""

    hyperparam_names = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer, T_max=T_max, eta_min=eta_min)

    @staticmethod
    def _validate(h):
        return {"T_max": _check.positive_int("T_max", h["T_max"]),
                "eta_min": _nonnegative("eta_min", h["eta_min"])}

    def _next_lr(self, lr):
        e, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if e == 0:                  # only the constructor's step: keep the lr it finds
            return lr
        if (e - 1 - T) % (2 * T) == 0:
            # the ratio below is 0/0 at the trough, so torch steps out of it additively
            return lr + (self.base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
        return ((1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
                * (lr - eta_min) + eta_min)

    def _closed_form_lr(self):
        return (self.eta_min + (self.base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2)


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after another, switching at each of ``milestones`` (epochs)
    (``lr_scheduler.SequentialLR``). At a milestone the next schedule restarts from epoch 0 of
    its closed form; ``schedulers`` must all drive ``optimizer`` and be built before this."""

    def __init__(self, optimizer, schedulers, milestones):
        self.optimizer = _check_optimizer(optimizer)
        if not isinstance(schedulers, (list, tuple)) or not schedulers:
            raise TypeError(f"schedulers must be a non-empty list of schedules, "
                            f"got {schedulers!r}")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler) or isinstance(s, SequentialLR):
                raise TypeError(f"schedulers[{i}] must be a StepLR, LinearLR or "
                                f"CosineAnnealingLR, got {type(s).__name__}")
            if s.optimizer is not optimizer:
                raise ValueError(f"schedulers[{i}] drives another optimiser than `optimizer`")
        if not isinstance(milestones, (list, tuple)) or len(milestones) != len(schedulers) - 1:
            raise ValueError(f"milestones must be a list of {len(schedulers) - 1} epochs "
                             f"(one fewer than schedulers), got {milestones!r}")
        milestones = [_check.positive_int(f"milestones[{i}]", m)
                      for i, m in enumerate(milestones)]
        if any(a >= b for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"milestones must increase strictly, got {milestones}")
        self.schedulers, self.milestones = list(schedulers), milestones

        # undo the schedules' own first steps, then take the first one's
        self.last_epoch = 0
        optimizer.lr = optimizer.initial_lr
        for s in self.schedulers:
            s.last_epoch -= 1
        self.schedulers[0].step()
        self._last_lr = self.schedulers[0]._last_lr

    def step(self):
        self.last_epoch += 1
        i = bisect_right(self.milestones, self.last_epoch)
        s = self.schedulers[i]
        if i > 0 and self.milestones[i - 1] == self.last_epoch:
            s._update_lr(epoch=0)
        else:
            s.step()
        self._last_lr = s._last_lr

    def state_dict(self):
        """JSON-serialisable: ``{"type", "milestones", "last_epoch", "last_lr",
        "schedulers": [each schedule's state_dict]}``."""
        return {"type": "SequentialLR", "milestones": list(self.milestones),
                "last_epoch": self.last_epoch, "last_lr": self._last_lr,
                "schedulers": [s.state_dict() for s in self.schedulers]}

    def check_state_dict(self, state_dict):
        sd = state_dict
        _check_keys("state_dict", sd, ("type", "milestones", "last_epoch", "last_lr",
                                       "schedulers"))
        if sd["type"] != "SequentialLR":
            raise ValueError(f"state_dict['type'] is {sd['type']!r}, "
                             f"this schedule is 'SequentialLR'")
        if list(sd["milestones"]) != self.milestones:
            raise ValueError(f"state_dict['milestones'] is {sd['milestones']}, "
                             f"this schedule's are {self.milestones}")
        if len(sd["schedulers"]) != len(self.schedulers):
            raise ValueError(f"state_dict['schedulers'] holds {len(sd['schedulers'])} "
                             f"schedules, this one {len(self.schedulers)}")
        last_epoch = _int("state_dict['last_epoch']", sd["last_epoch"])
        last_lr = _nonnegative("state_dict['last_lr']", sd["last_lr"])
        inner = [s.check_state_dict(s_sd) for s, s_sd in zip(self.schedulers, sd["schedulers"])]
        return inner, last_epoch, last_lr

    def _restore(self, checked):
        inner, last_epoch, last_lr = checked
        for s, s_checked in zip(self.schedulers, inner):
            s._restore(s_checked)
        self.last_epoch, self._last_lr = last_epoch, last_lr

    def __repr__(self):
        inner = ", ".join(repr(s) for s in self.schedulers)
        return f"SequentialLR([{inner}], milestones={self.milestones})"


def warmup_cosine(optimizer, warmup_steps, total_steps, start_factor=1e-3, eta_min=0.0):
    """Linear warm-up from ``start_factor`` times the lr over ``warmup_steps``, then cosine
    annealing to ``eta_min`` at ``total_steps``: ``SequentialLR([LinearLR, CosineAnnealingLR],
    milestones=[warmup_steps])``, the usual transformer-style schedule."""
    warmup_steps = _check.positive_int("warmup_steps", warmup_steps)
    total_steps = _check.positive_int("total_steps", total_steps)
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps must exceed warmup_steps ({warmup_steps}), "
                         f"got {total_steps}")
    warmup = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0,
                      total_iters=warmup_steps)
    cosine = CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=eta_min)
    return SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])


__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm", "LRScheduler", "StepLR",
           "LinearLR", "CosineAnnealingLR", "SequentialLR", "warmup_cosine"]
