"""Vocabularies: text <-> integer ids, one id per character or per byte.

``CharVocab`` numbers the characters of a text; id 0 is the *unknown* symbol, which stands for
every character the vocabulary has not seen (or has seen fewer than ``min_count`` times), so
held-out or user text always encodes. ``ByteVocab`` numbers the 256 byte values of UTF-8: it has
no unknowns at all, at the price of several ids for a character outside ASCII.

    ids = vocab.encode(text)       (N,) int64
    text = vocab.decode(ids)       any integer array or sequence of ids
"""

from collections import Counter

import numpy as np

from .. import _check

UNKNOWN = "\N{REPLACEMENT CHARACTER}"      # what decode writes for the unknown id


def _text(name, text):
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    return text


def _ids(ids, size):
    """``ids`` as a 1-D int64 array with every entry in [0, size)."""
    a = np.asarray(ids)
    if a.size == 0:
        return np.zeros(0, np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"ids must be integers, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"ids must be 1-D (N,), got shape {a.shape}")
    bad = (a < 0) | (a >= size)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"ids must lie in [0, {size - 1}] (the vocabulary has {size} entries), "
                         f"got ids[{i}] = {a[i]}")
    return a.astype(np.int64, copy=False)


class CharVocab:
    """One id per character: ``symbols[0]`` is the unknown symbol, then the characters.

    >>> v = CharVocab.from_text("abba")
    >>> v.encode("abc").tolist()           # "c" was never seen: the unknown id 0
    [1, 2, 0]
    >>> v.decode([2, 1, 0])
    'ba\ufffd'

    ``unknown=None`` makes unseen characters an error instead (nothing is mapped silently).
    """

    kind = "char"

    def __init__(self, chars, unknown=UNKNOWN):
        if isinstance(chars, str):
            chars = list(chars)
        chars = list(chars)
        for c in chars:
            if not (isinstance(c, str) and len(c) == 1):
                raise TypeError(f"chars must be single characters, got {c!r}")
        if len(set(chars)) != len(chars):
            twice = sorted(c for c, n in Counter(chars).items() if n > 1)
            raise ValueError(f"chars must be distinct, got {twice!r} more than once")
        if unknown is not None:
            _text("unknown", unknown)
            if len(unknown) != 1:
                raise ValueError(f"unknown must be one character, got {unknown!r}")
            chars = [unknown] + [c for c in chars if c != unknown]
        if not chars:
            raise ValueError("a vocabulary needs at least one character")
        self.unknown = unknown
        self.symbols = tuple(chars)
        self._index = {c: i for i, c in enumerate(self.symbols)}

    @classmethod
    def from_text(cls, text, min_count=1, unknown=UNKNOWN):
        """The characters of ``text`` seen at least ``min_count`` times, sorted by code point."""
        _text("text", text)
        min_count = _check.positive_int("min_count", min_count)
        if min_count > 1 and unknown is None:
            raise ValueError("min_count > 1 leaves rare characters out, which needs an unknown "
                             "symbol to stand for them: give unknown= a character")
        counts = Counter(text)
        return cls(sorted(c for c, n in counts.items() if n >= min_count), unknown=unknown)

    @property
    def size(self):
        return len(self.symbols)

    def __len__(self):
        return self.size

    def __repr__(self):
        return f"CharVocab({self.size} symbols, unknown={self.unknown!r})"

    @property
    def unknown_id(self):
        return None if self.unknown is None else 0

    def encode(self, text):
        """``text`` -> (N,) int64 ids; characters outside the vocabulary become the unknown id."""
        _text("text", text)
        if not text:
            return np.zeros(0, np.int64)
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)        # (N,)
        # look up each distinct character once, not each of the N positions
        distinct, where = np.unique(codes, return_inverse=True)
        table = np.array([self._index.get(chr(c), -1) for c in distinct], np.int64)
        missing = table < 0
        if missing.any():
            if self.unknown is None:
                unseen = "".join(chr(c) for c in distinct[missing])
                raise ValueError(f"text has {int(missing.sum())} character(s) outside the "
                                 f"vocabulary: {unseen[:20]!r}; build the vocabulary with an "
                                 f"unknown symbol (unknown=...) to map them to it")
            table[missing] = 0
        return table[where.reshape(-1)]

    def decode(self, ids):
        """ids -> str."""
        return "".join(self.symbols[i] for i in _ids(ids, self.size))

    def config(self):
        """JSON-serialisable: ``CharVocab(**config)`` builds the same vocabulary."""
        chars = self.symbols[1:] if self.unknown is not None else self.symbols
        return {"chars": "".join(chars), "unknown": self.unknown}


class ByteVocab:
    """One id per byte of the UTF-8 encoding: 256 ids, no unknowns.

    >>> ByteVocab().encode("né").tolist()     # é is two bytes in UTF-8
    [110, 195, 169]

    ``decode`` replaces byte sequences that are not valid UTF-8 (a sample may stop halfway
    through a character) with U+FFFD.
    """

    kind = "byte"
    size = 256
    unknown = None
    unknown_id = None

    def __len__(self):
        return 256

    def __repr__(self):
        return "ByteVocab()"

    @property
    def symbols(self):
        return tuple(bytes([b]) for b in range(256))

    def encode(self, text):
        _text("text", text)
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)

    def decode(self, ids):
        return bytes(_ids(ids, 256).astype(np.uint8)).decode("utf-8", errors="replace")

    def config(self):
        return {}
