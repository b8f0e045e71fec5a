"""How well a model predicts text: cross-entropy in nats, bits per character, perplexity.

For a mean negative log-likelihood ``nll`` (natural log, per token, what
``mg.losses.cross_entropy`` returns)::

    bits per character (token) = nll / ln 2          perplexity = exp(nll)

``unigram_bits`` is the baseline a model must beat: the entropy of the token frequencies,
``-sum_c p_c log2 p_c``, the bits per token of the best model that ignores all context.
"""

import numpy as np

from ..losses import cross_entropy

LN2 = float(np.log(2.0))


def _nll(nll):
    if isinstance(nll, bool) or not isinstance(nll, (int, float, np.number)):
        raise TypeError(f"nll must be a number (nats per token), got {type(nll).__name__}")
    if not (np.isfinite(nll) and nll >= 0):
        raise ValueError(f"nll must be finite and >= 0 (nats per token), got {nll}")
    return float(nll)


def bits_per_char(nll):
    """Mean negative log-likelihood in nats per token -> bits per token."""
    return _nll(nll) / LN2


def perplexity(nll):
    """Mean negative log-likelihood in nats per token -> perplexity, exp(nll)."""
    return float(np.exp(_nll(nll)))


def unigram_bits(ids, size=None):
    """The entropy of the frequencies of ``ids`` (N,), in bits per token."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
        raise ValueError(f"ids must be a non-empty 1-D integer array, got "
                         f"{ids.dtype} {ids.shape}")
    p = np.bincount(ids, minlength=size or 0) / ids.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def stream_nll(model, stream):
    """Mean nats per token of ``model`` over every chunk of ``stream``, the state carried from
    chunk to chunk as in training; in evaluation mode, no gradients."""
    was_training = model.training
    model.eval()
    total, state = 0.0, None
    for x, y in stream:
        logits, state = model.forward(x, state)
        loss, _ = cross_entropy(logits, y, reduction="sum")
        total += float(loss)
    model.train(was_training)
    return total / stream.tokens
