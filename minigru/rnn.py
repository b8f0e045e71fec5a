"""``mg.RNN``: stacked, bidirectional, variable-length recurrent layers of any variant.

The layer is PyTorch's ``nn.GRU``/``nn.LSTM``/``nn.RNN`` rebuilt on minigru's cells: the same
arguments, the same parameter names (``W_l0``, ``U_l0_reverse``, ...), the same state layout
``(L·D, B, H)`` and the same packed-sequence semantics for ``lengths``. Each layer and direction
is one ``Cell``; this file only routes arrays between them.

    x (T, B, I) ──► layer 0 ──► [dropout] ──► layer 1 ──► ... ──► ys (T, B, D·O)
                    forward  cell over t = 0 .. T-1  ┐ outputs side by side
                    reverse  cell over t = T-1 .. 0  ┘ (bidirectional)

``lengths`` (B,): row b is real for its first ``lengths[b]`` steps. Its outputs past that are
zero, its final state is the state after its last real step, and the reverse direction starts
at its last real step. The rows are run in groups of equal length, each group a plain cell
call on ``x[:length, rows]`` (reversed in time for the reverse direction), so every variant and
backend supports it without a masking path of its own.
"""

import numpy as np

from . import _check
from .cell import Cell
from .interop import MAPPED_TO_TORCH, params_from_torch, params_to_torch
from .module import Module


class RNN(Module):
    """A stack of ``num_layers`` recurrent layers of ``variant``, in one or both directions.

    Arguments as ``torch.nn.GRU``'s, plus ``variant``, ``backend``, ``dtype`` and ``seed``;
    ``bias=False`` leaves out the bias parameters (gru, lstm, rnn; as PyTorch's ``bias``);
    ``init``, ``forget_bias``, ``gate_bias`` and ``t_max`` choose every layer's initialisation
    (``Cell.init``);
    ``cell_options`` go to every cell (rru: output_size, multiplier, and ``cell_dropout`` for
    its dropout inside the cell, since ``dropout`` is PyTorch's, between layers; ligru:
    momentum).
    """

    def __init__(self, variant, input_size, hidden_size, num_layers=1, bidirectional=False,
                 dropout=0.0, batch_first=False, backend="numpy", dtype=np.float32, seed=None,
                 bias=True, init="pytorch", forget_bias=None, gate_bias=None, t_max=None,
                 **cell_options):
        super().__init__()
        self.input_size = _check.positive_int("input_size", input_size)
        self.hidden_size = _check.positive_int("hidden_size", hidden_size)
        self.num_layers = _check.positive_int("num_layers", num_layers)
        self.bidirectional = _check.boolean("bidirectional", bidirectional)
        self.batch_first = _check.boolean("batch_first", batch_first)
        self.dropout = _check.probability("dropout", dropout)
        self.bias = _check.boolean("bias", bias)
        seed = _check.seed("seed", seed)
        if "seed" in cell_options:
            raise TypeError("the RNN's seed drives every cell's dropout: give seed= to RNN only")
        if "cell_dropout" in cell_options:            # rru's own dropout; `dropout` is PyTorch's
            cell_options["dropout"] = cell_options.pop("cell_dropout")
        dtype = _check.float_dtype("dtype", dtype)
        self.variant, self.seed, self.cell_options = variant, seed, dict(cell_options)
        self.init_options = {"init": init, "forget_bias": forget_bias, "gate_bias": gate_bias,
                             "t_max": t_max}
        self.num_directions = 2 if self.bidirectional else 1

        rng = np.random.default_rng(seed)
        self._cells, self._p, self._g = [], [], []   # one entry per (layer, direction)
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else self.num_directions * self.output_size
            for d in range(self.num_directions):
                cell = self._cell(backend)
                p = cell.init(in_size, self.hidden_size, rng=rng, dtype=dtype,
                              **self.init_options)
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                for k, v in p.items():
                    self._add_param(k + suffix, v)
                self._cells.append(cell)
                self._p.append({k: self.params[k + suffix] for k in p})
                self._g.append({k: self.grads[k + suffix] for k in p})
        self.rng = rng                                # dropout masks, after the initialisation
        self._backend = backend
        self._tape = None                             # what the last forward left for backward
        self.dstate0 = None                           # dLoss/d(state0) after a backward

    def _cell(self, backend):
        return Cell(self.variant, backend, **self.cell_options,
                    **({} if self.bias else {"bias": False}))

    # ------------------------------------------------------------------ description
    @property
    def output_size(self):
        """O: the width of each direction's outputs (H, or rru's output_size)."""
        return self.cell_options.get("output_size") or self.hidden_size

    @property
    def _config_cell_options(self):
        opts = dict(self.cell_options)
        if "dropout" in opts:
            opts["cell_dropout"] = opts.pop("dropout")
        return opts

    @property
    def lstm_state(self):
        """Whether the state is (h, c) (the older spelling of ``state_names == ("h", "c")``)."""
        return self._cells[0].variant.lstm_state

    @property
    def state_names(self):
        """The state's components: ("h",), lstm's ("h", "c"), slstm's ("h", "c", "n", "m")."""
        return self._cells[0].variant.state

    def __repr__(self):
        return (f"RNN({self.variant!r}, {self.input_size}, {self.hidden_size}, "
                f"num_layers={self.num_layers}, bidirectional={self.bidirectional}, "
                f"backend={self.backend!r}, dtype={self.dtype.name})")

    def config(self):
        return {"variant": self.variant, "input_size": self.input_size,
                "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "bidirectional": self.bidirectional, "dropout": self.dropout,
                "batch_first": self.batch_first, "backend": self.backend,
                "dtype": self.dtype.name, "seed": self.seed, "bias": self.bias,
                **self.init_options,
                **self._config_cell_options}

    # ------------------------------------------------------------------ backend
    @property
    def backend(self):
        return self._backend

    @backend.setter
    def backend(self, name):
        """Run the same parameters (and buffers) on another backend. A forward already run keeps
        the cells it ran on, so its backward still follows it there."""
        cells = [self._cell(name) for _ in self._cells]
        for new, old in zip(cells, self._cells):
            new.buffers = old.buffers
        self._cells, self._backend = cells, name

    # ------------------------------------------------------------------ buffers in state_dict
    def _buffer_items(self):
        for i, cell in enumerate(self._cells):
            layer, d = divmod(i, self.num_directions)
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            for k, v in (cell.buffers or {}).items():
                yield k + suffix, v

    def state_dict(self):
        state = super().state_dict()
        state.update({k: v.copy() for k, v in self._buffer_items()})
        return state

    def _load(self, state):
        super()._load({k: v for k, v in state.items() if k in self.params})
        for k, v in self._buffer_items():
            v[...] = state[k]

    # ------------------------------------------------------------------ checks
    def _check_state(self, name, state, B):
        shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        article = "an" if self.variant[0] in "aeiolmnrsx" else "a"   # an lstm, an rnn, a gru
        return _check.state(name, state, self.state_names, shape, self.dtype, "(L·D, B, H)",
                            f"{article} {self.variant} RNN")

    def _check_lengths(self, lengths, T, B):
        want = f"one length per batch row, an integer array (B,) = ({B},)"
        if isinstance(lengths, (list, tuple)):
            if len(lengths) == 0:
                raise ValueError(f"lengths must hold {want}, got an empty "
                                 f"{type(lengths).__name__}")
            lengths = np.asarray(lengths)
        if isinstance(lengths, (int, np.integer)) and not isinstance(lengths, (bool, np.bool_)):
            raise TypeError(f"lengths must hold {want}, got the single int {lengths} (for "
                            f"sequences that all have T steps, pass lengths=None)")
        if not isinstance(lengths, np.ndarray) or not np.issubdtype(lengths.dtype, np.integer):
            raise TypeError(f"lengths must hold {want}, got "
                            f"{getattr(lengths, 'dtype', type(lengths).__name__)}")
        if lengths.shape != (B,):
            raise ValueError(f"lengths must hold {want}, got shape {lengths.shape}")
        if lengths.min() < 1 or lengths.max() > T:
            raise ValueError(f"lengths must lie in [1, T] = [1, {T}], got values from "
                             f"{lengths.min()} to {lengths.max()}")
        return lengths

    def _groups(self, lengths, T, B):
        """[(rows, length)]: one group of all rows when lengths is None, else rows of equal length.
        ``rows`` is a slice for the whole batch (no copies) or an index array."""
        if lengths is None or (lengths == T).all():
            return [(slice(None), T)]
        groups = [(np.flatnonzero(lengths == n), int(n)) for n in np.unique(lengths)]
        if self._cells[0].variant.init_buffers is not None and self.training:
            raise ValueError(f"{self.variant} normalises with the statistics of the whole batch, "
                             "which sequences of different lengths would split: in training mode "
                             "give it equal lengths (lengths=None), or use evaluation mode")
        return groups

    # ------------------------------------------------------------------ forward
    def forward(self, x, state0=None, lengths=None):
        """ys (T, B, D·O) and the final state (L·D, B, H) (a tuple (h, c) for lstm).

        ``x`` is (T, B, I), or (B, T, I) when ``batch_first``; ``ys`` follows the same layout.
        """
        _check.array("x", x, (None, None, self.input_size), self.dtype,
                     "(B, T, I)" if self.batch_first else "(T, B, I)")
        if self.batch_first:
            x = x.transpose(1, 0, 2)
        T, B, _ = x.shape
        if T == 0 or B == 0:
            raise ValueError(f"x must have at least one step and one batch row, got shape "
                             f"{x.shape}")
        if state0 is not None:
            state0 = self._check_state("state0", state0, B)
        if lengths is not None:
            lengths = self._check_lengths(lengths, T, B)
        groups = self._groups(lengths, T, B)

        L, D, O, H = self.num_layers, self.num_directions, self.output_size, self.hidden_size
        n_state = len(self.state_names)
        final = [np.empty((L * D, B, H), self.dtype) for _ in range(n_state)]
        tape = {"T": T, "B": B, "groups": groups, "caches": [], "masks": []}
        inp = x
        for layer in range(L):
            out = np.zeros((T, B, D * O), self.dtype)
            for d in range(D):
                i = layer * D + d
                s0 = None if state0 is None else _select(state0, i)
                caches = []
                for rows, n in groups:
                    xs = inp[:n, rows]
                    s = None if s0 is None else _rows(s0, rows)
                    ys, s_n, cache = self._cells[i].forward(
                        self._p[i], xs[::-1] if d else xs, s, self.training, rng=self.rng)
                    out[:n, rows, d * O:(d + 1) * O] = ys[::-1] if d else ys
                    for f, s_part in zip(final, s_n if n_state > 1 else (s_n,)):
                        f[i, rows] = s_part
                    caches.append(cache)
                tape["caches"].append(caches)
            if layer < L - 1 and self.training and self.dropout > 0:
                keep = self.rng.random(out.shape) >= self.dropout
                mask = (keep / (1.0 - self.dropout)).astype(self.dtype)
                out = out * mask
                tape["masks"].append(mask)
            else:
                tape["masks"].append(None)
            inp = out
        tape["cells"] = list(self._cells)            # the backward runs where the forward did
        self._tape = tape
        state = tuple(final) if n_state > 1 else final[0]
        return (inp.transpose(1, 0, 2) if self.batch_first else inp), state

    # ------------------------------------------------------------------ backward
    def backward(self, dys, dstate=None):
        """dx = dLoss/dx for dLoss/dys ``dys`` and dLoss/d(final state) ``dstate`` (or None).

        Adds every parameter gradient into ``self.grads``; dLoss/d(state0) is left in
        ``self.dstate0``. Uses what the last ``forward`` kept.
        """
        tape = self._tape
        if tape is None:
            raise RuntimeError("backward needs a forward first (and one backward per forward)")
        T, B, groups = tape["T"], tape["B"], tape["groups"]
        L, D, O, H = self.num_layers, self.num_directions, self.output_size, self.hidden_size
        _check.array("dys", dys, (B, T, D * O) if self.batch_first else (T, B, D * O),
                     self.dtype, "(B, T, D·O)" if self.batch_first else "(T, B, D·O)")
        if self.batch_first:
            dys = dys.transpose(1, 0, 2)
        if dstate is not None:
            dstate = self._check_state("dstate", dstate, B)
        n_state = len(self.state_names)
        dstate0 = [np.zeros((L * D, B, H), self.dtype) for _ in range(n_state)]
        dout = dys
        for layer in reversed(range(L)):
            if tape["masks"][layer] is not None:
                dout = dout * tape["masks"][layer]    # through the dropout after this layer
            in_size = self.input_size if layer == 0 else D * O
            dinp = np.zeros((T, B, in_size), self.dtype)
            for d in range(D):
                i = layer * D + d
                ds = None if dstate is None else _select(dstate, i)
                for (rows, n), cache in zip(groups, tape["caches"][i]):
                    dy = dout[:n, rows, d * O:(d + 1) * O]
                    dx, ds0, grads = tape["cells"][i].backward(
                        self._p[i], cache, dy[::-1] if d else dy,
                        None if ds is None else _rows(ds, rows))
                    dinp[:n, rows] += dx[::-1] if d else dx
                    for f, part in zip(dstate0, ds0 if n_state > 1 else (ds0,)):
                        f[i, rows] = part
                    for k, g in grads.items():
                        self._g[i][k] += g
            dout = dinp
        self._tape = None
        self.dstate0 = tuple(dstate0) if n_state > 1 else dstate0[0]
        return dout.transpose(1, 0, 2) if self.batch_first else dout

    # ------------------------------------------------------------------ streaming
    def step(self, x_t, state=None):
        """One time step of inference through every layer: y (B, O), new state (L, B, H).

        The real-time path: the state is carried between calls by the caller. Unidirectional
        layers only (a reverse direction needs the whole sequence). Evaluation mode: no dropout.
        """
        if self.bidirectional:
            raise ValueError("step needs a unidirectional RNN: the reverse direction of a "
                             "bidirectional one reads the sequence from its end")
        _check.array("x_t", x_t, (None, self.input_size), self.dtype, "(B, I)")
        B = x_t.shape[0]
        state = None if state is None else self._check_state("state", state, B)
        y, new = x_t, []
        for i, cell in enumerate(self._cells):
            y, s = cell.step(self._p[i], y, None if state is None else _select(state, i))
            new.append(s)
        if len(self.state_names) > 1:
            return y, tuple(np.stack(part) for part in zip(*new))
        return y, np.stack(new)

    # ------------------------------------------------------------------ PyTorch
    @classmethod
    def from_torch(cls, module, backend="numpy"):
        """An RNN with the configuration and weights of ``nn.GRU``, ``nn.LSTM`` or ``nn.RNN``.

        Any ``num_layers``, ``bidirectional``, ``batch_first``, ``bias`` and ``dropout``;
        float32 or float64 weights. ``nn.RNN`` must use tanh and ``nn.LSTM`` no ``proj_size``.
        A subclass gives its weights and configuration; what its own ``forward`` may do
        differently is not carried over.
        """
        import torch

        kinds = {torch.nn.GRU: "gru", torch.nn.LSTM: "lstm", torch.nn.RNN: "rnn"}
        variant = next((v for kind, v in kinds.items() if isinstance(module, kind)), None)
        if variant is None:
            raise TypeError(f"module must be a torch.nn.GRU, LSTM or RNN (or a subclass of "
                            f"one), got {type(module).__name__}")
        if variant == "rnn" and module.nonlinearity != "tanh":
            raise ValueError(f"only nn.RNN with nonlinearity='tanh' maps onto minigru's rnn, "
                             f"got {module.nonlinearity!r}")
        if variant == "lstm" and module.proj_size:
            raise ValueError(f"nn.LSTM with proj_size={module.proj_size} has no minigru "
                             "equivalent")
        dtype = module.weight_hh_l0.dtype
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"module weights must be float32 or float64, got {dtype}")
        rnn = cls(variant, module.input_size, module.hidden_size, module.num_layers,
                  module.bidirectional, module.dropout, module.batch_first, backend,
                  np.float32 if dtype == torch.float32 else np.float64, bias=module.bias)
        state = {}
        for i in range(len(rnn._cells)):
            layer, d = divmod(i, rnn.num_directions)
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            w = {k: getattr(module, k + suffix, None) for k in
                 ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            w = {k: None if v is None else v.detach().cpu().numpy() for k, v in w.items()}
            state.update({k + suffix: v for k, v in params_from_torch(variant, **w).items()})
        rnn.load_state_dict(state)
        rnn.train(module.training)
        return rnn

    def to_torch(self):
        """The equivalent ``nn.GRU``/``nn.LSTM``/``nn.RNN`` (``bias`` as this RNN's), weights
        copied."""
        import torch

        if self.variant not in MAPPED_TO_TORCH or self.cell_options:
            raise ValueError(f"only {', '.join(MAPPED_TO_TORCH)} have a PyTorch module; "
                             f"this RNN is {self.variant}")
        kind = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}[self.variant]
        module = kind(self.input_size, self.hidden_size, self.num_layers, bias=self.bias,
                      batch_first=self.batch_first, dropout=self.dropout,
                      bidirectional=self.bidirectional)
        module = module.to(torch.float64 if self.dtype == np.float64 else torch.float32)
        with torch.no_grad():
            for i, p in enumerate(self._p):
                layer, d = divmod(i, self.num_directions)
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                for k, v in params_to_torch(self.variant, p).items():
                    getattr(module, k + suffix).copy_(torch.from_numpy(v))
        return module.train(self.training)


def _select(state, i):
    """Layer-direction i of a stacked state (an array, or lstm's (h, c))."""
    return tuple(s[i] for s in state) if isinstance(state, tuple) else state[i]


def _rows(state, rows):
    return tuple(s[rows] for s in state) if isinstance(state, tuple) else state[rows]
