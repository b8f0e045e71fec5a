"""Sampling the next token: temperature, top-k and top-p (nucleus), and generating text.

From logits ``z (B, V)`` (or ``(V,)``) to the distribution drawn from, in this order:

    temperature τ > 0:   log p = (z - max z) / τ  - logsumexp((z - max z) / τ)     (log space)
    temperature τ = 0:   p = one-hot at argmax z                       (greedy; the limit τ → 0)
    top_k = k:           keep the k largest logits (ties with the k-th kept), renormalise
    top_p = q:           keep the most probable tokens until their mass reaches q (the first
                         always), renormalise                 (Holtzman et al. 2020, nucleus)

Dividing the *shifted* logits keeps every exponent in (-inf, 0]: a tiny τ sends every token but
the largest to exp(-huge) = 0 and the largest to exp(0) = 1, so τ = 1e-8 gives argmax, never
NaN, where ``exp(z / τ) / sum`` would overflow to inf / inf.
"""

import numpy as np

from .. import _check


def _logits(logits):
    if not isinstance(logits, np.ndarray):
        raise TypeError(f"logits must be a numpy.ndarray (B, V) or (V,), "
                        f"got {type(logits).__name__}")
    if logits.dtype.kind != "f":
        raise TypeError(f"logits must be a float array, got dtype {logits.dtype}")
    if logits.ndim not in (1, 2) or logits.shape[-1] == 0:
        raise ValueError(f"logits must have shape (B, V) or (V,) with V >= 1, got {logits.shape}")
    z = np.atleast_2d(logits).astype(np.float64)
    if np.isnan(z).any() or np.isposinf(z).any():
        raise ValueError("logits must not hold NaN or +inf (-inf marks an impossible token)")
    if np.isneginf(z).all(axis=1).any():
        raise ValueError("every logit of a row is -inf: no token is possible")
    return z


def _options(temperature, top_k, top_p, V):
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.number)):
        raise TypeError(f"temperature must be a number >= 0, got {type(temperature).__name__}")
    if not (np.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be finite and >= 0, got {temperature}")
    if top_k is not None:
        top_k = _check.positive_int("top_k", top_k)
        if top_k > V:
            raise ValueError(f"top_k must be at most the vocabulary size V = {V}, got {top_k}")
    if top_p is not None:
        if isinstance(top_p, bool) or not isinstance(top_p, (int, float, np.number)):
            raise TypeError(f"top_p must be a number in (0, 1], got {type(top_p).__name__}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    return float(temperature), top_k, top_p


def next_token_probs(logits, temperature=1.0, top_k=None, top_p=None):
    """The distribution the next token is drawn from: (B, V) float64, rows summing to 1
    ((V,) for (V,) logits)."""
    z = _logits(logits)
    B, V = z.shape
    temperature, top_k, top_p = _options(temperature, top_k, top_p, V)
    if temperature == 0:
        p = np.zeros_like(z)
        p[np.arange(B), np.argmax(z, axis=1)] = 1.0
        return p if logits.ndim == 2 else p[0]

    if top_k is not None:
        # the k-th largest logit of each row; everything below it is impossible
        kth = np.partition(z, V - top_k, axis=1)[:, V - top_k, None]
        z = np.where(z >= kth, z, -np.inf)
    with np.errstate(under="ignore", over="ignore"):                 # -huge / tiny τ = -inf: fine
        shifted = (z - z.max(axis=1, keepdims=True)) / temperature   # <= 0, the max is 0
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        p = np.exp(logp)
    if top_p is not None:
        order = np.argsort(-p, axis=1, kind="stable")                # most probable first
        sorted_p = np.take_along_axis(p, order, axis=1)
        before = np.cumsum(sorted_p, axis=1) - sorted_p              # mass of the more probable
        keep = np.zeros_like(p, dtype=bool)
        np.put_along_axis(keep, order, before < top_p, axis=1)       # the first: before = 0
        p = np.where(keep, p, 0.0)
        p /= p.sum(axis=1, keepdims=True)
    return p if logits.ndim == 2 else p[0]


def _generator(rng):
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, "
                        f"got {type(rng).__name__}")
    return rng


def sample_next(logits, rng=None, temperature=1.0, top_k=None, top_p=None):
    """Draw one token per row: (B,) int64 for (B, V) logits, an int for (V,).

    ``rng``: a ``np.random.Generator`` or an int seed; the same seed draws the same tokens.
    """
    p = np.atleast_2d(next_token_probs(logits, temperature, top_k, top_p))
    rng = _generator(rng)
    cdf = np.cumsum(p, axis=1)                                        # (B, V)
    u = (1.0 - rng.random(len(p)))[:, None] * cdf[:, -1:]             # (0, total]
    # the first token whose cumulative mass reaches u: never one of probability 0
    idx = (cdf < u).sum(axis=1)
    last = p.shape[1] - 1 - np.argmax(p[:, ::-1] > 0, axis=1)         # rounding at the top end
    idx = np.minimum(idx, last)
    return idx if np.ndim(logits) == 2 else int(idx[0])


def generate(model, vocab, prime, length, temperature=1.0, top_k=None, top_p=None, rng=None):
    """``length`` characters (tokens) that ``model`` writes after reading ``prime``; a str.

    ``model`` has ``forward(idx (T, B), state0) -> (logits (T, B, V), state)`` and
    ``step(idx (B,), state) -> (logits (B, V), state)``, as ``LanguageModel``; it is switched
    to evaluation mode. The prime is read in one forward; then each drawn token is fed back.
    """
    if not isinstance(prime, str) or not prime:
        raise ValueError(f"prime must be a non-empty str to start from, got {prime!r}")
    length = _check.positive_int("length", length)
    rng = _generator(rng)
    model.eval()
    logits, state = model.forward(vocab.encode(prime)[:, None])      # (T, 1, V)
    z = logits[-1]                                                   # (1, V)
    out = []
    for _ in range(length):
        token = sample_next(z, rng, temperature, top_k, top_p)       # (1,)
        out.append(int(token[0]))
        z, state = model.step(token, state)
    return vocab.decode(out)
