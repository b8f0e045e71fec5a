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

import numbers
import os
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import _check
from .checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from .module import Module
from .optim import LRScheduler, Optimizer, clip_grad_norm


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


def _number(value):
    """Whether ``value`` is a real number a history can hold (not a bool, str, array, ...)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _loss_of(value, where):
    if not _number(value):
        raise TypeError(f"step must return the loss as a float, got {type(value).__name__} "
                        f"{value!r} at {where}")
    return float(value)


def _evaluation(result, epoch):
    """evaluate's result as plain Python: a float, or a dict of str -> float (NumPy scalars,
    what mg.losses return for a float32 model, become floats)."""
    where = f"after epoch {epoch}"
    if isinstance(result, dict):
        for k, v in result.items():
            if not isinstance(k, str) or not _number(v):
                raise TypeError(f"evaluate must return a number or a dict of str -> number, got "
                                f"{{{k!r}: {type(v).__name__} {v!r}, ...}} {where}")
        return {k: float(v) for k, v in result.items()}
    if not _number(result):
        raise TypeError(f"evaluate must return a number or a dict of str -> number, got "
                        f"{type(result).__name__} {result!r} {where}")
    return float(result)


def _check_resumable(path, extra):
    """A checkpoint ``fit`` wrote: its ``extra`` holds the epoch reached and the history."""
    fields = set(History().as_dict())
    history = extra.get("history")
    if "epoch" not in extra or not isinstance(history, dict):
        raise ValueError(f"{os.fspath(path)!r} was not written by fit (its extra holds "
                         f"{sorted(extra) or 'nothing'}, not the epoch and history fit resumes "
                         f"from): load it with mg.load_checkpoint, or start a new run")
    epoch = extra["epoch"]
    if (isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0
            or set(history) != fields or not all(isinstance(v, list) for v in history.values())
            or len(history["epoch_loss"]) != epoch):
        raise ValueError(f"{os.fspath(path)!r}: its epoch ({epoch!r}) and history (keys "
                         f"{sorted(history)}) are not those fit writes")


def _check_fit_args(model, step, batches, optimizer, evaluate, clip, scheduler, rng,
                    checkpoint, resume, progress, desc):
    """Every argument of ``fit``, before any work: a mistake found after an epoch loses it."""
    if not isinstance(model, Module):
        raise TypeError(f"model must be a minigru Module (RNN, Linear, Model, ...), "
                        f"got {type(model).__name__}")
    if not callable(step):
        raise TypeError(f"step must be a function step(batch) -> loss, got {type(step).__name__}")
    if not callable(batches) and not isinstance(batches, (list, tuple)):
        raise TypeError("batches must be a list of batches or a function batches(epoch), "
                        f"got {type(batches).__name__}")
    if isinstance(batches, (list, tuple)) and not batches:
        raise ValueError("batches is empty: every epoch would train nothing")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an mg.optim optimiser (SGD, Adam, AdamW), got "
                        f"{type(optimizer).__name__}")
    if optimizer.params.keys() != model.params.keys() or not all(
            optimizer.params[k] is a for k, a in model.params.items()):
        raise ValueError("optimizer must update exactly model.params (build it with "
                         "mg.optim.Adam(model.params, ...)): its arrays are not the model's")
    if evaluate is not None and not callable(evaluate):
        raise TypeError(f"evaluate must be None or a function evaluate(model), "
                        f"got {type(evaluate).__name__}")
    if clip is not None:
        _check.positive_real("clip", clip)
    if scheduler is not None:
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"scheduler must be None or an mg.optim schedule, "
                            f"got {type(scheduler).__name__}")
        if scheduler.optimizer is not optimizer:
            raise ValueError("scheduler drives another optimiser than optimizer")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be None or a numpy.random.Generator, "
                        f"got {type(rng).__name__}")
    _check.boolean("resume", resume)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint= path to resume from")
    if checkpoint is not None:
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be None or a file path, "
                            f"got {type(checkpoint).__name__}")
        folder = os.path.dirname(os.path.abspath(checkpoint))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"checkpoint {os.fspath(checkpoint)!r}: its folder "
                                    f"{folder!r} does not exist")
        if os.path.isdir(checkpoint):
            raise IsADirectoryError(f"checkpoint {os.fspath(checkpoint)!r} is a folder; give "
                                    f"the path of a file in it")
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"checkpoint {os.fspath(checkpoint)!r}: its folder "
                                  f"{folder!r} is not writable")
    if progress is not None:
        _check.boolean("progress", progress)
    if not isinstance(desc, str):
        raise TypeError(f"desc must be a str, got {type(desc).__name__}")


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
    infinite: continuing would only spread it into every parameter. Every argument is checked
    before the first step; an epoch with no batches is an error that names it.
    """
    epochs = _check.positive_int("epochs", epochs)
    _check_fit_args(model, step, batches, optimizer, evaluate, clip, scheduler, rng, checkpoint,
                    resume, progress, desc)

    history, start = History(), 0
    if resume and os.path.exists(checkpoint):
        _check_resumable(checkpoint, read_checkpoint(checkpoint)[0]["extra"])
        saved = load_checkpoint(checkpoint, model, optimizer, scheduler, rng)["extra"]
        history = History(**saved["history"])
        start = saved["epoch"]
        if callable(batches) and rng is None:
            warnings.warn(
                "resuming with batches(epoch) but no rng=: if batches draws random numbers "
                "(shuffling, say), the resumed run sees another data order than the one it "
                "continues. Pass the generator it draws from as fit(..., rng=rng), which "
                "checkpoints save and restore, for a run that resumes exactly.",
                RuntimeWarning, stacklevel=2)

    per_epoch = len(batches) if isinstance(batches, (list, tuple)) else None
    bar = _progress(None if per_epoch is None else per_epoch * (epochs - start), progress, desc)
    try:
        for epoch in range(start, epochs):
            model.train()
            losses = []
            for batch in (batches if per_epoch is not None else batches(epoch)):
                model.zero_grad()
                where = f"epoch {epoch}, step {len(losses)} (step {len(history.loss)} overall)"
                loss = _loss_of(step(batch), where)
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
            if not losses:
                raise ValueError(f"batches({epoch}) gave no batches: epoch {epoch} would train "
                                 f"nothing")
            history.epoch_loss.append(float(np.mean(losses)))
            history.lr.append(float(optimizer.lr))
            if scheduler is not None:
                scheduler.step()
            if evaluate is not None:
                model.eval()
                result = evaluate(model)
                model.train()
                history.eval.append(_evaluation(result, epoch))
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, scheduler, rng,
                                extra={"epoch": epoch + 1, "history": history.as_dict()})
    finally:
        if bar is not None:
            bar.close()
    return history
