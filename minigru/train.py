"""``mg.fit``: the training loop a learner would otherwise write by hand, and nothing more.

    for epoch:
        for batch:
            model.zero_grad()
            loss = step(batch)          # yours: forward, loss, backward (grads accumulate)
            check loss and grads are finite, else stop naming the step
            clip_grad_norm (optional);  optimizer.step(model.grads)
        schedule.step() (optional);  evaluate(model) (optional);  checkpoint (optional)

``step`` is the part that differs from model to model, so it stays in the user's hands, as
``loss.backward()`` does in PyTorch. Everything else is here: the progress bar, the history,
stopping at the first NaN, and checkpoints that resume exactly.
"""

import os
import sys
from dataclasses import dataclass, field

import numpy as np

from . import _check
from .checkpoint import load_checkpoint, save_checkpoint
from .optim import clip_grad_norm


@dataclass
class History:
    """What ``fit`` measured: the loss of every step, and per epoch its mean, lr and evaluation."""
    loss: list = field(default_factory=list)
    epoch_loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    eval: list = field(default_factory=list)

    def as_dict(self):
        return {"loss": self.loss, "epoch_loss": self.epoch_loss, "lr": self.lr,
                "eval": self.eval}


def _progress(total, enabled, desc):
    """A tqdm bar on a terminal (or when asked for), otherwise nothing."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="step", leave=False, dynamic_ncols=True)


def _first_non_finite(grads):
    for k, g in grads.items():
        if not np.isfinite(g).all():
            return k
    return None


def fit(model, step, batches, optimizer, *, epochs=1, evaluate=None, clip=None, scheduler=None,
        rng=None, checkpoint=None, resume=False, progress=None, desc="training"):
    """Train ``model`` for ``epochs`` and return its ``History``.

    model      a minigru Module (``RNN``, ``Linear``, ``Model(...)``) whose ``grads`` ``step`` fills
    step       step(batch) -> float: forward, loss and backward for one batch
    batches    a list of batches, or batches(epoch) -> iterable (shuffle with ``rng`` there)
    optimizer  an ``mg.optim`` optimiser over ``model.params``
    evaluate   evaluate(model) -> float or dict, after each epoch, in evaluation mode
    clip       max gradient norm (``optim.clip_grad_norm``) or None
    scheduler  an ``mg.optim`` schedule, stepped once per epoch
    rng        the generator ``batches`` draws from, saved in checkpoints
    checkpoint path of a checkpoint written (atomically) after every epoch
    resume     continue from ``checkpoint`` if it exists: the run goes on exactly as if it had
               never stopped (same losses, bit for bit)
    progress   None: a progress bar when stderr is a terminal; True/False to force it

    Raises ``FloatingPointError`` naming the epoch and step when a loss or gradient is NaN or
    infinite: continuing would only spread it into every parameter.
    """
    epochs = _check.positive_int("epochs", epochs)
    if not callable(step):
        raise TypeError(f"step must be a function step(batch) -> loss, got {type(step).__name__}")
    if not callable(batches) and not isinstance(batches, (list, tuple)):
        raise TypeError("batches must be a list of batches or a function batches(epoch), "
                        f"got {type(batches).__name__}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint= path to resume from")

    history, start = History(), 0
    if resume and os.path.exists(checkpoint):
        saved = load_checkpoint(checkpoint, model, optimizer, scheduler, rng)["extra"]
        history = History(**saved["history"])
        start = saved["epoch"]

    per_epoch = len(batches) if isinstance(batches, (list, tuple)) else None
    bar = _progress(None if per_epoch is None else per_epoch * (epochs - start), progress, desc)
    try:
        for epoch in range(start, epochs):
            model.train()
            losses = []
            for batch in (batches if per_epoch is not None else batches(epoch)):
                model.zero_grad()
                loss = float(step(batch))
                where = f"epoch {epoch}, step {len(losses)} (step {len(history.loss)} overall)"
                if not np.isfinite(loss):
                    raise FloatingPointError(f"the loss is {loss} at {where}")
                bad = _first_non_finite(model.grads)
                if bad is not None:
                    raise FloatingPointError(f"the gradient of {bad!r} is not finite at {where}")
                if clip is not None:
                    clip_grad_norm(model.grads, clip)
                optimizer.step(model.grads)
                losses.append(loss)
                history.loss.append(loss)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, loss=f"{np.mean(losses[-50:]):.4g}")
            history.epoch_loss.append(float(np.mean(losses)) if losses else float("nan"))
            history.lr.append(float(optimizer.lr))
            if scheduler is not None:
                scheduler.step()
            if evaluate is not None:
                model.eval()
                result = evaluate(model)
                model.train()
                history.eval.append(result if isinstance(result, dict) else float(result))
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, scheduler, rng,
                                extra={"epoch": epoch + 1, "history": history.as_dict()})
    finally:
        if bar is not None:
            bar.close()
    return history
