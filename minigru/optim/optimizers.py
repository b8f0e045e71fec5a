r"""The optimisers and gradient clipping: ``torch.optim``'s update rules, in NumPy.

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
"""

import numpy as np

from .. import _check


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
        self.params = _check.optimizer_params(params)
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
        self._lr = _check.nonnegative("lr", value)

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
        _check.arrays_like("grads", grads, self.params)

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
        _check.exact_keys("state_dict", sd, ("type", "hyperparams", "initial_lr", "step", "state"))
        if sd["type"] != type(self).__name__:
            raise ValueError(f"state_dict['type'] is {sd['type']!r}, "
                             f"this optimiser is {type(self).__name__!r}")
        _check.exact_keys("state_dict['hyperparams']", sd["hyperparams"], self.hyperparam_names)
        hyper = self._validate(sd["hyperparams"])
        initial_lr = sd["initial_lr"]
        if initial_lr is not None:
            initial_lr = _check.nonnegative("state_dict['initial_lr']", initial_lr)
        step = _check.integer("state_dict['step']", sd["step"])
        if step < 0:
            raise ValueError(f"state_dict['step'] must be >= 0, got {step}")
        _check.exact_keys("state_dict['state']", sd["state"], self._buffers(hyper))
        for buf, arrays in sd["state"].items():
            _check.arrays_like(f"state_dict['state'][{buf!r}]", arrays, self.params)
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
        h = {"lr": _check.nonnegative("lr", h["lr"]),
             "momentum": _check.nonnegative("momentum", h["momentum"]),
             "dampening": _check.in_range("dampening", h["dampening"], 0.0, 1.0),
             "nesterov": _check.flag("nesterov", h["nesterov"]),
             "weight_decay": _check.nonnegative("weight_decay", h["weight_decay"])}
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
        return {"lr": _check.nonnegative("lr", h["lr"]),
                "betas": tuple(_check.probability(f"betas[{i}]", b)
                               for i, b in enumerate(betas)),
                "eps": _check.nonnegative("eps", h["eps"]),
                "weight_decay": _check.nonnegative("weight_decay", h["weight_decay"]),
                "amsgrad": _check.flag("amsgrad", h["amsgrad"])}

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
    max_norm = _check.nonnegative("max_norm", max_norm)
    error_if_nonfinite = _check.flag("error_if_nonfinite", error_if_nonfinite)
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
