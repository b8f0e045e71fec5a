r"""Learning-rate schedules: ``torch.optim.lr_scheduler``'s, in NumPy.

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
"""

import math
from bisect import bisect_right

from .. import _check
from .optimizers import Optimizer


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
        _check.exact_keys("state_dict", sd,
                          ("type", "hyperparams", "base_lr", "last_epoch", "last_lr"))
        if sd["type"] != type(self).__name__:
            raise ValueError(f"state_dict['type'] is {sd['type']!r}, "
                             f"this schedule is {type(self).__name__!r}")
        _check.exact_keys("state_dict['hyperparams']", sd["hyperparams"], self.hyperparam_names)
        hyper = self._validate(sd["hyperparams"])
        base_lr = _check.nonnegative("state_dict['base_lr']", sd["base_lr"])
        last_epoch = _check.integer("state_dict['last_epoch']", sd["last_epoch"])
        last_lr = _check.nonnegative("state_dict['last_lr']", sd["last_lr"])
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
                "gamma": _check.nonnegative("gamma", h["gamma"])}

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
        return {"start_factor": _check.in_range("start_factor", h["start_factor"], 0.0, 1.0,
                                          low_open=True),
                "end_factor": _check.in_range("end_factor", h["end_factor"], 0.0, 1.0),
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
                "eta_min": _check.nonnegative("eta_min", h["eta_min"])}

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
        _check.exact_keys("state_dict", sd, ("type", "milestones", "last_epoch", "last_lr",
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
        last_epoch = _check.integer("state_dict['last_epoch']", sd["last_epoch"])
        last_lr = _check.nonnegative("state_dict['last_lr']", sd["last_lr"])
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
