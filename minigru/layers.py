"""The layers around a recurrent network: ``Linear`` (an output head), ``Embedding`` (tokens in).

Both are ``Module``s: ``forward`` keeps what ``backward`` needs, ``backward`` adds into ``grads``
and never touches ``params``. Shapes use the package legend, with ``...`` for any leading dims
(``(T, B)`` for a sequence, ``(B,)`` for one step).

Linear, row-vector convention as everywhere in minigru (PyTorch's ``nn.Linear.weight`` is ``W.T``)::

    y = x W + b                 x (..., I), W (I, O), b (O,), y (..., O)

    dW = x_flat^T dy_flat       every leading position is a row of x_flat (N, I) and dy_flat (N, O)
    db = sum_n dy_flat[n]
    dx = dy W^T

Embedding, a lookup table (the same layout as ``nn.Embedding.weight``)::

    y[...] = E[idx[...]]        idx (...) ints in [0, num_embeddings), E (num, dim), y (..., dim)

    dE[k] = sum of dy[...] over the positions where idx[...] == k   (repeated indices add up)

There is no gradient with respect to the integer indices.

Weight tying (Press & Wolf 2017, "Using the output embedding to improve language models"): a
``Linear(H, V, tied_to=emb)`` has no ``W`` of its own but uses ``W = E^T`` of the
``Embedding(V, H)`` ``emb``, so one matrix both reads tokens in and scores them out. ``E`` then
has two uses, and its gradient is their sum::

    dE = (dE from the lookup)  +  dW^T       dW^T = dy_flat^T x_flat  (V, H)

The head adds its part straight into ``emb.grads["E"]``, so ``model.params`` holds ``E`` once and
an optimiser updates it once.
"""

import numpy as np

from . import _check
from .module import Module


def _torch_dtype_to_numpy(name, dtype):
    text = str(dtype).replace("torch.", "")
    if text not in ("float32", "float64"):
        raise TypeError(f"{name} must be float32 or float64, got {dtype}")
    return np.dtype(text)


class Linear(Module):
    """``y = x W + b`` over the last axis of ``x``, any leading dims.

    Parameters: ``W (in_features, out_features)``, ``b (out_features,)`` (absent when
    ``bias=False``), both drawn from U(-1/sqrt(in_features), 1/sqrt(in_features)) as
    ``torch.nn.Linear`` does; ``W`` is the transpose of PyTorch's ``weight``.

    >>> head = Linear(16, 4, dtype=np.float64, seed=0)
    >>> y = head.forward(np.zeros((5, 2, 16)))          # (T, B, H) -> (T, B, O)
    >>> dx = head.backward(np.ones_like(y))             # head.grads["W"], head.grads["b"]

    ``tied_to=emb`` (an ``Embedding(out_features, in_features)`` of the same dtype) ties the
    weights: ``W`` is ``emb.params["E"].T`` and ``dW`` is added into ``emb.grads["E"]``; the
    Linear's own parameters are then ``b`` alone (see the module docstring).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, seed=None,
                 tied_to=None):
        super().__init__()
        self.in_features = _check.positive_int("in_features", in_features)
        self.out_features = _check.positive_int("out_features", out_features)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {type(bias).__name__} {bias!r}")
        self.bias = bool(bias)
        self.seed = _check.seed("seed", seed)
        dt = _check.float_dtype("dtype", dtype)
        self.tied_to = self._check_tie(tied_to, dt)
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(self.in_features)
        W = rng.uniform(-k, k, (self.in_features, self.out_features)).astype(dt)
        if self.tied_to is None:      # drawn either way, so that b is the same tied or not
            self._add_param("W", W)
        if self.bias:
            self._add_param("b", rng.uniform(-k, k, self.out_features).astype(dt))
        self._dtype = dt
        self._x = self._W = None

    def _check_tie(self, emb, dtype):
        if emb is None:
            return None
        if not isinstance(emb, Embedding):
            hint = (" (a saved configuration names the tie but cannot hold the Embedding: build "
                    "the model again and give it to load_checkpoint(path, model))"
                    if isinstance(emb, str) else "")
            raise TypeError(f"tied_to must be the minigru Embedding whose E this Linear shares, "
                            f"got {type(emb).__name__}{hint}")
        want = (self.out_features, self.in_features)
        if (emb.num_embeddings, emb.embedding_dim) != want:
            raise ValueError(f"tied_to must be an Embedding(out_features, in_features) = "
                             f"Embedding{want} so that W = E^T, got Embedding("
                             f"{emb.num_embeddings}, {emb.embedding_dim})")
        if emb.dtype != dtype:
            raise TypeError(f"tied_to has dtype {emb.dtype} but this Linear's dtype is {dtype}")
        return emb

    @property
    def dtype(self):
        return self._dtype

    @property
    def weight(self):
        """``W (in_features, out_features)``: the Linear's own, or ``E^T`` of ``tied_to``."""
        return self.params["W"] if self.tied_to is None else self.tied_to.params["E"].T

    def __repr__(self):
        tie = "" if self.tied_to is None else f", tied_to={self.tied_to!r}"
        return (f"Linear({self.in_features}, {self.out_features}, bias={self.bias}, "
                f"dtype={self.dtype}{tie})")

    def config(self):
        cfg = {"in_features": self.in_features, "out_features": self.out_features,
               "bias": self.bias, "dtype": str(self.dtype), "seed": self.seed}
        if self.tied_to is not None:
            cfg["tied_to"] = repr(self.tied_to)
        return cfg

    def forward(self, x):
        """``x (..., in_features)`` -> ``y (..., out_features)``; keeps ``x`` for ``backward``."""
        if isinstance(x, np.ndarray) and x.ndim == 0:
            raise ValueError(f"x must have shape (..., in_features) = (..., {self.in_features}), "
                             f"got a 0-d array")
        _check.array("x", x, (None,) * (np.ndim(x) - 1) + (self.in_features,), self.dtype,
                     legend="(..., in_features)")
        # the backward differentiates this forward: x and W as they are now, whatever is
        # written into them before it (the next batch, an optimiser step)
        self._x, self._W = x.copy(), self.weight.copy()
        # one product of (N, I) rows: NumPy multiplies a stack (T, B, I) matrix by matrix,
        # 1.6 times slower at (64, 32, 32) @ (32, 256)
        y = (self._x.reshape(-1, self.in_features) @ self._W).reshape(
            x.shape[:-1] + (self.out_features,))               # (..., O)
        if self.bias:
            y += self.params["b"]
        return y

    def backward(self, dy):
        """``dy = dLoss/dy (..., out_features)`` -> ``dx (..., in_features)``; adds into grads.

        Differentiates the latest ``forward``, with the ``x`` and ``W`` it kept.
        """
        if self._x is None:
            raise RuntimeError("Linear.backward called before forward")
        x = self._x
        _check.array("dy", dy, x.shape[:-1] + (self.out_features,), self.dtype,
                     legend="(..., out_features)")
        x_flat = x.reshape(-1, self.in_features)               # (N, I)
        dy_flat = dy.reshape(-1, self.out_features)            # (N, O)
        # y_n = x_n W + b for every row n, so W and b collect the sum over rows
        if self.tied_to is None:
            self.grads["W"] += x_flat.T @ dy_flat              # (I, O)
        else:                                                  # W = E^T: dE += dW^T, summed
            self.tied_to.grads["E"] += dy_flat.T @ x_flat      # with the lookup's own (O, I)
        if self.bias:
            self.grads["b"] += dy_flat.sum(axis=0)             # (O,)
        return (dy_flat @ self._W.T).reshape(x.shape)          # (..., I)

    # -- PyTorch interop (torch is imported only here)
    @classmethod
    def from_torch(cls, module):
        """A ``Linear`` with the weights of a ``torch.nn.Linear`` (copied; ``W = weight.T``)."""
        weight = module.weight.detach().cpu()
        dt = _torch_dtype_to_numpy("module.weight", weight.dtype)
        has_bias = module.bias is not None
        lin = cls(module.in_features, module.out_features, bias=has_bias, dtype=dt)
        lin.params["W"][...] = weight.numpy().T
        if has_bias:
            lin.params["b"][...] = module.bias.detach().cpu().numpy()
        return lin

    def to_torch(self):
        """A ``torch.nn.Linear`` with these weights (copied; ``weight = W.T``), same dtype."""
        import torch

        m = torch.nn.Linear(self.in_features, self.out_features, bias=self.bias,
                            dtype=getattr(torch, str(self.dtype)))
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(self.weight.T.copy()))
            if self.bias:
                m.bias.copy_(torch.from_numpy(self.params["b"]))
        return m


class Embedding(Module):
    """``y = E[idx]``: one learned row of ``E (num_embeddings, embedding_dim)`` per integer index.

    ``E`` is drawn from N(0, 1) as ``torch.nn.Embedding`` does (no ``padding_idx``: mask the loss
    of padded steps instead, see ``losses.cross_entropy``).

    >>> emb = Embedding(10, 4, dtype=np.float64, seed=0)
    >>> y = emb.forward(np.array([[1, 2], [1, 9]]))     # (T, B) -> (T, B, 4)
    >>> emb.backward(np.ones_like(y))                    # row 1 of grads["E"] gets 2

    ``backend="numba"`` adds the backward's rows with a compiled loop instead of ``np.add.at``
    (the same sums, in the same order: ``minigru/numba/_parts.py``).
    """

    def __init__(self, num_embeddings, embedding_dim, dtype=np.float32, seed=None,
                 backend="numpy"):
        super().__init__()
        from .losses import _backend
        self._compiled = _backend(backend)
        self.backend = backend
        self.num_embeddings = _check.positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = _check.positive_int("embedding_dim", embedding_dim)
        self.seed = _check.seed("seed", seed)
        dt = _check.float_dtype("dtype", dtype)
        rng = np.random.default_rng(seed)
        self._add_param("E", rng.standard_normal((self.num_embeddings,
                                                  self.embedding_dim)).astype(dt))
        self._idx = None

    def __repr__(self):
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}, dtype={self.dtype})"

    def config(self):
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim,
                "dtype": str(self.dtype), "seed": self.seed, "backend": self.backend}

    def _check_idx(self, idx):
        if not isinstance(idx, np.ndarray):
            raise TypeError(f"idx must be a numpy.ndarray of integers, got {type(idx).__name__}")
        if idx.dtype.kind not in "iu":
            raise TypeError(f"idx must be an integer array, got dtype {idx.dtype}")
        bad = (idx < 0) | (idx >= self.num_embeddings)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"idx must be in [0, {self.num_embeddings - 1}] (num_embeddings="
                f"{self.num_embeddings}), got idx[{', '.join(map(str, where))}] = {idx[where]} "
                f"({int(bad.sum())} of {idx.size} entries out of range)")

    def forward(self, idx):
        """``idx (...)`` integers -> ``y (..., embedding_dim)``; keeps ``idx`` for ``backward``."""
        self._check_idx(idx)
        self._idx = idx.copy()
        return self.params["E"][idx]                           # (..., dim), a copy

    def backward(self, dy):
        """``dy = dLoss/dy (..., embedding_dim)``: adds into ``grads["E"]``; returns None."""
        if self._idx is None:
            raise RuntimeError("Embedding.backward called before forward")
        idx = self._idx
        _check.array("dy", dy, idx.shape + (self.embedding_dim,), self.dtype,
                     legend="(..., embedding_dim)")
        # unbuffered: row k collects dy at every position where idx == k, however often it occurs
        if self._compiled:
            from .numba._parts import scatter_add_rows
            scatter_add_rows(self.grads["E"], np.ascontiguousarray(idx.reshape(-1), np.int64),
                             np.ascontiguousarray(dy).reshape(-1, self.embedding_dim))
        else:
            np.add.at(self.grads["E"], idx.reshape(-1), dy.reshape(-1, self.embedding_dim))
        return None

    # -- PyTorch interop (torch is imported only here)
    @classmethod
    def from_torch(cls, module, backend="numpy"):
        """An ``Embedding`` with the weights of a plain ``torch.nn.Embedding`` (copied)."""
        for opt in ("padding_idx", "max_norm"):
            if getattr(module, opt) is not None:
                raise ValueError(f"nn.Embedding with {opt}={getattr(module, opt)} is not "
                                 f"supported: minigru's Embedding has no {opt}")
        if module.scale_grad_by_freq:
            raise ValueError("nn.Embedding with scale_grad_by_freq=True is not supported")
        weight = module.weight.detach().cpu()
        dt = _torch_dtype_to_numpy("module.weight", weight.dtype)
        emb = cls(module.num_embeddings, module.embedding_dim, dtype=dt, backend=backend)
        emb.params["E"][...] = weight.numpy()
        return emb

    def to_torch(self):
        """A ``torch.nn.Embedding`` with these weights (copied), same dtype."""
        import torch

        m = torch.nn.Embedding(self.num_embeddings, self.embedding_dim,
                               dtype=getattr(torch, str(self.dtype)))
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(self.params["E"]))
        return m
