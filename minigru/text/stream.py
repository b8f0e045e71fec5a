"""A long token stream as ``B`` parallel rows, served in consecutive chunks of ``bptt`` steps.

Stateful training with truncated backpropagation through time: the stream is cut into ``B``
rows of ``n = N // B`` tokens each, laid side by side (time-major), and read ``bptt`` steps at
a time::

    ids (N,)  ->  rows (n, B):   rows[t, b] = ids[b * n + t]     (the last N - n·B ids unused)

    chunk k:  x = rows[k·bptt     : k·bptt + T]        (T, B) the inputs
              y = rows[k·bptt + 1 : k·bptt + T + 1]    (T, B) the next tokens, the targets
              T = bptt, or fewer in the last chunk

Row ``b`` of chunk ``k + 1`` starts where row ``b`` of chunk ``k`` stopped, so the final state
of chunk ``k`` is the right initial state of chunk ``k + 1``: carry it (the network keeps its
memory across chunks) and backpropagate within each chunk only (the gradient is cut at the
chunk's start, which keeps the cost of a step at ``bptt`` steps however long the stream is).
"""

import numpy as np

from .. import _check


class Stream:
    """``len(stream)`` chunks; ``stream[k]`` is ``(x, y)``, both (T, B) int64.

    >>> s = Stream(np.arange(10), batch_size=2, bptt=2)
    >>> s.rows.T.tolist()                  # row 0 is ids 0..4, row 1 is ids 5..9
    [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    >>> x, y = s[1]
    >>> x.T.tolist(), y.T.tolist()         # chunk 1 continues chunk 0 in every row
    ([[2, 3], [7, 8]], [[3, 4], [8, 9]])
    """

    def __init__(self, ids, batch_size, bptt):
        if not isinstance(ids, np.ndarray):
            raise TypeError(f"ids must be a numpy.ndarray of token ids, got {type(ids).__name__}")
        if ids.dtype.kind not in "iu":
            raise TypeError(f"ids must be an integer array, got dtype {ids.dtype}")
        if ids.ndim != 1:
            raise ValueError(f"ids must be 1-D (N,), got shape {ids.shape}")
        self.batch_size = _check.positive_int("batch_size", batch_size)
        self.bptt = _check.positive_int("bptt", bptt)
        n = len(ids) // self.batch_size
        if n < 2:
            raise ValueError(f"ids has {len(ids)} tokens: too few for batch_size="
                             f"{self.batch_size} rows of at least 2 tokens (an input and its "
                             f"target)")
        # row b is the b-th slice of the stream; time runs down the columns
        self.rows = np.ascontiguousarray(
            ids[:n * self.batch_size].astype(np.int64).reshape(self.batch_size, n).T)  # (n, B)
        self.dropped = len(ids) - n * self.batch_size

    def __len__(self):
        return -(-(len(self.rows) - 1) // self.bptt)        # ceil((n - 1) / bptt)

    @property
    def tokens(self):
        """How many tokens are predicted in one pass: (n - 1) · B."""
        return (len(self.rows) - 1) * self.batch_size

    def __getitem__(self, k):
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"chunk index must be an int, got {type(k).__name__}")
        if not -len(self) <= k < len(self):
            raise IndexError(f"chunk {k} out of range: the stream has {len(self)} chunks")
        k = int(k) % len(self)
        start = k * self.bptt
        stop = min(start + self.bptt, len(self.rows) - 1)
        return self.rows[start:stop], self.rows[start + 1:stop + 1]

    def __iter__(self):
        for k in range(len(self)):
            yield self[k]

    def __repr__(self):
        return (f"Stream({len(self.rows)} steps x {self.batch_size} rows, bptt={self.bptt}: "
                f"{len(self)} chunks)")
