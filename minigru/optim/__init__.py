r"""Optimisers, gradient clipping and learning-rate schedules: PyTorch's rules, in NumPy.

The update rules are in ``optimizers.py`` (SGD, Adam, AdamW, ``clip_grad_norm``), the
schedules in ``schedules.py``; their argument checks in ``minigru/_check.py``.

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

Every rule is ``torch.optim``'s, term for term and in the same floating-point order, so
trajectories agree with PyTorch to rounding (``optimizers.py`` says how closely).

**Checkpoints.** ``state_dict()`` returns plain data: a checkpoint stores ``sd["state"]`` (a
two-level dict of NumPy arrays, ``{buffer: {param_key: array}}``) in an ``.npz`` and everything
else in JSON (Python ints, floats, bools, lists, None). A schedule's ``state_dict()`` is JSON only.
"""

from .optimizers import SGD, Adam, AdamW, Optimizer, clip_grad_norm
from .schedules import (CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR, StepLR,
                        warmup_cosine)

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm", "LRScheduler", "StepLR",
           "LinearLR", "CosineAnnealingLR", "SequentialLR", "warmup_cosine"]
