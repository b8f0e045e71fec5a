"""``LanguageModel``: tokens in, next-token logits out — Embedding, RNN, Linear.

    idx (T, B) ints  ->  x = E[idx] (T, B, D)  ->  RNN  ->  ys (T, B, H)  ->  logits = ys W + b
                                                                               (T, B, V)

``tie=True`` makes the output layer use the embedding's matrix, ``W = E^T`` (Press & Wolf 2017),
which needs ``D = H``: one matrix of ``V·H`` numbers instead of two, and the gradients of its
two uses summed into ``grads["emb.E"]`` (see ``minigru.layers``).
"""

import numpy as np

from .. import _check
from ..layers import Embedding, Linear
from ..losses import parts_backend
from ..module import Model
from ..rnn import RNN


class LanguageModel(Model):
    """A recurrent language model over a vocabulary of ``vocab_size`` tokens.

    ``variant``, ``num_layers``, ``dropout``, ``backend``, ``dtype`` and the cell options go to
    ``mg.RNN``; ``embedding_dim`` defaults to ``hidden_size``. Its modules are ``emb``, ``rnn``
    and ``head``, its parameters ``"emb.E"``, ``"rnn.W_l0"``, ..., ``"head.W"`` (absent when
    tied), ``"head.b"``.

    >>> lm = LanguageModel("gru", vocab_size=30, hidden_size=16, tie=True, seed=0)
    >>> logits, state = lm.forward(np.zeros((7, 4), np.int64))   # (T, B) -> (7, 4, 30)
    >>> lm.backward(np.ones_like(logits))                         # grads of every parameter
    """

    def __init__(self, variant, vocab_size, hidden_size, embedding_dim=None, num_layers=1,
                 tie=False, dropout=0.0, backend="numpy", dtype=np.float32, seed=None,
                 **cell_options):
        vocab_size = _check.positive_int("vocab_size", vocab_size)
        hidden_size = _check.positive_int("hidden_size", hidden_size)
        tie = _check.boolean("tie", tie)
        D = hidden_size if embedding_dim is None else _check.positive_int("embedding_dim",
                                                                          embedding_dim)
        seeds = [None] * 3 if seed is None else [int(s) for s in
                                                 np.random.SeedSequence(seed).generate_state(3)]
        rnn = RNN(variant, D, hidden_size, num_layers=num_layers, dropout=dropout,
                  backend=backend, dtype=dtype, seed=seeds[0], **cell_options)
        if tie and D != rnn.output_size:
            raise ValueError(f"tie=True shares E (vocab_size, embedding_dim) with the output layer "
                             f"(rnn output {rnn.output_size} -> vocab_size), so embedding_dim must "
                             f"equal the RNN's output size {rnn.output_size}, got {D}")
        emb = Embedding(vocab_size, D, dtype=dtype, seed=seeds[1],    # compiled with the cell
                        backend=parts_backend(backend))
        if tie:
            # E starts as N(0, 1/H), the output layer's scale (the first logits are O(1)), not
            # N(0, 1) as an embedding alone would: with W = E^T it scores H-wide outputs
            emb.params["E"] *= emb.params["E"].dtype.type(1 / np.sqrt(D))
        head = Linear(rnn.output_size, vocab_size, dtype=dtype, seed=seeds[2],
                      tied_to=emb if tie else None)
        super().__init__(emb=emb, rnn=rnn, head=head)
        self.vocab_size, self.tie = vocab_size, tie

    def forward(self, idx, state0=None):
        """``idx (T, B)`` token ids -> ``logits (T, B, V)`` and the final state."""
        if not isinstance(idx, np.ndarray) or idx.ndim != 2:
            raise ValueError(f"idx must be a 2-D (T, B) integer array, got "
                             f"{getattr(idx, 'shape', type(idx).__name__)}")
        ys, state = self.rnn.forward(self.emb.forward(idx), state0)
        return self.head.forward(ys), state

    def backward(self, dlogits, dstate=None):
        """``dlogits = dLoss/dlogits (T, B, V)``: adds into every gradient; returns None."""
        self.emb.backward(self.rnn.backward(self.head.backward(dlogits), dstate))

    def step(self, idx_t, state=None):
        """One token per row, ``idx_t (B,)`` -> ``logits (B, V)`` and the new state (inference:
        evaluation mode, nothing kept for a backward)."""
        if not isinstance(idx_t, np.ndarray) or idx_t.ndim != 1:
            raise ValueError(f"idx_t must be a 1-D (B,) integer array, got "
                             f"{getattr(idx_t, 'shape', type(idx_t).__name__)}")
        self.emb._check_idx(idx_t)
        y, state = self.rnn.step(self.emb.params["E"][idx_t], state)      # (B, H)
        logits = y @ self.head.weight
        if self.head.bias:
            logits += self.head.params["b"]
        return logits, state
