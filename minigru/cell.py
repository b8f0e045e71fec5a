"""``mg.cell(name, backend)``: the functional cell API of API.md.

A ``Cell`` is a thin, checked front to one variant's functions on one backend. It holds no
parameters: ``init`` returns them as a dict, and ``forward``/``backward``/``step`` take them as
their first argument. It holds only the variant's options (rru's dropout rate and its random
generator, ligru's momentum) and, for ligru, the running statistics that evaluation mode uses.

Dimension legend, used throughout the package: T steps, B batch, I input, H hidden, O output,
G gate blocks.

NaN and infinity are not scanned for: like PyTorch, a NaN in ``x`` or the state flows into the
outputs and gradients it touches (the rows of its batch entry from its time step on; every row in
ligru's training mode, whose batch statistics mix rows). Checking would cost a pass over the data
on the hot path; the training loop checks the loss instead.
"""

import functools

import numpy as np

from . import _check, _regularise
from ._aligned import aligned_copies, aligned_copy
from ._step_record import StepRecord
from .cells import BACKENDS, get_variant
from .cells._init import initialise


def _with_bias_option():
    from .cells import REGISTRY
    return [name for name, v in REGISTRY.items() if v.bias_params]


def cell(name, backend="numpy", **options):
    """Return the ``Cell`` of variant ``name`` on ``backend``.

    ``options`` are the variant's options (see ``Cell.options``), e.g. ``dropout=0.1, seed=0``
    for rru or ``momentum=0.1`` for ligru; they can also be given to ``init``.
    """
    return Cell(name, backend, **options)


class Cell:
    """Forward, backward and step of one variant on one backend, with checked arguments."""

    def __init__(self, name, backend="numpy", **options):
        self.variant = get_variant(name)
        if not isinstance(backend, str) or backend not in BACKENDS:
            raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {backend!r}")
        self.backend = backend
        self._fns = BACKENDS[backend](self.variant)
        # "cuda" takes device arrays too, says which objects are, and copies them
        self._is_device = getattr(self._fns, "is_device", None)
        self._snapshot = getattr(self._fns, "snapshot", aligned_copies)
        self.options = {**self.variant.init_options, **self.variant.run_options,
                        **_regularise.DEFAULTS, "seed": None}
        if self.variant.bias_params:
            self.options["bias"] = True
        self._rng = np.random.default_rng()           # dropout and zoneout masks (seed=)
        self._n_state = _regularise.components(self.variant)
        self.buffers = None
        self._checked = None                          # (signature of p, its sizes and dtype)
        self._zero_biases = None                      # bias=False: ((dtype, sizes), zeros)
        self._step_record = None                      # the last checked step (StepRecord)
        self._set_options(options)

    @property
    def name(self):
        return self.variant.name

    def __repr__(self):
        return f"Cell({self.name!r}, backend={self.backend!r})"

    def _set_options(self, options):
        for key, value in options.items():
            if key == "bias" and not self.variant.bias_params:
                if _check.boolean("bias", value):
                    continue                          # what every cell has: nothing to leave out
                raise ValueError(f"bias=False leaves out a variant's bias parameters, and "
                                 f"{self.name} has none it can do without (the variants with "
                                 f"bias=False are {', '.join(_with_bias_option())})")
            if key not in self.options:
                valid = sorted(self.options) or "none"
                raise TypeError(f"{self.name} has no option {key!r}; its options are {valid}")
            if key in _regularise.OPTIONS:
                value = _regularise.check(self.variant, key, value)
            elif key == "dropout":
                value = _check.probability("dropout", value)
            elif key == "scan":
                if value not in ("sequential", "parallel"):
                    raise ValueError(f"scan must be 'sequential' or 'parallel', got {value!r}")
            elif key in self.variant.constants:        # janet's beta
                value = float(_check.real(key, value))
            elif key == "momentum":
                value = _check.probability("momentum", value)
            elif key == "multiplier":
                value = _check.positive_real("multiplier", value)
            elif key == "output_size" and value is not None:
                value = _check.positive_int("output_size", value)
            elif key == "seed":
                value = _check.seed("seed", value)
            elif key == "bias":
                value = _check.boolean("bias", value)
            self.options[key] = value
            if key == "seed":
                self._rng = np.random.default_rng(value)
        self._checked = self._step_record = None      # the expected parameters may differ now
        self._regularised = any(self.options[k] for k in _regularise.OPTIONS)

    # ------------------------------------------------------------------ parameters
    def param_shapes(self, input_size, hidden_size, **options):
        """``{name: shape}`` of the parameters for these sizes (VARIANTS.md)."""
        bias = _check.boolean("bias", options.pop("bias", self.options.get("bias", True)))
        opts = self._init_opts(options)
        shapes = self.variant.shapes(_check.positive_int("input_size", input_size),
                                     _check.positive_int("hidden_size", hidden_size), **opts)
        return self._without_biases(shapes, bias)

    def _without_biases(self, shapes, bias=None):
        """``shapes`` (or parameters) less the bias parameters when ``bias`` is False."""
        if self.options.get("bias", True) if bias is None else bias:
            return shapes
        return {k: v for k, v in shapes.items() if k not in self.variant.bias_params}

    def num_params(self, input_size, hidden_size, **options):
        shapes = self.param_shapes(input_size, hidden_size, **options)
        return sum(int(np.prod(s)) for s in shapes.values())

    def _init_opts(self, options):
        for key in options:
            if key not in self.variant.init_options:
                valid = sorted(self.variant.init_options) or "none"
                raise TypeError(f"{self.name} has no shape option {key!r}; they are {valid}")
        return {k: options.get(k, self.options[k]) for k in self.variant.init_options}

    def init(self, input_size, hidden_size, rng=None, dtype=np.float64, *, init="pytorch",
             forget_bias=None, gate_bias=None, t_max=None, **options):
        """New parameters ``{name: array}`` with the shapes of VARIANTS.md.

        ``rng`` is a ``np.random.Generator`` (default: a fresh unseeded one); ``dtype`` float32
        or float64. ``init`` is ``"pytorch"`` (the cell's own, the default), ``"keras"``,
        ``"orthogonal"`` or ``"chrono"`` (with ``t_max``, default 100); ``forget_bias`` sets the
        bias of the gate that keeps the old state, ``gate_bias`` every gate's
        (``minigru/cells/_init.py`` says where each puts its numbers). Options given here are
        recorded on the cell, as if given to ``mg.cell``.
        """
        input_size = _check.positive_int("input_size", input_size)
        hidden_size = _check.positive_int("hidden_size", hidden_size)
        dtype = _check.float_dtype("dtype", dtype)
        if rng is None:
            rng = np.random.default_rng()
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        for key, value in (("forget_bias", forget_bias), ("gate_bias", gate_bias)):
            if value is not None:
                _check.real(key, value)
        self._set_options(options)
        opts = self._init_opts({})
        p = self._without_biases(self.variant.init(input_size, hidden_size, rng, dtype, **opts))
        initialise(self.name, self.variant.layout, p, hidden_size, init, rng,
                   forget_bias=forget_bias, gate_bias=gate_bias, t_max=t_max)
        p = {k: aligned_copy(v) for k, v in p.items()}
        if self.variant.init_buffers is not None:
            self.buffers = self.variant.init_buffers(p)
        return p

    # ------------------------------------------------------------------ checks
    def _check_params(self, p):
        """(sizes, dtype) of a checked p. The checks depend only on the keys of p and the type,
        shape and dtype of its arrays; a p that agrees with the last one in those gives the
        same answer without them."""
        if not isinstance(p, dict):
            raise TypeError(f"p must be a dict of parameter arrays, got {type(p).__name__}")
        signature = tuple((k, type(v), getattr(v, "shape", None), getattr(v, "dtype", None))
                          for k, v in p.items())
        if self._checked is not None and self._checked[0] == signature:
            return self._checked[1]
        result = self._check_params_now(p)
        self._checked = (signature, result)
        return result

    def _check_params_now(self, p):
        try:
            sizes = self.variant.sizes(p)
        except (KeyError, AttributeError, IndexError, TypeError):
            sizes = None
        if sizes is None:
            # The sizes cannot be read from p: its keys or the ranks of its arrays are wrong.
            expected = self._without_biases(self.variant.shapes(1, 1, **self._init_opts({})))
            _check.params("p", p, dict.fromkeys(expected), self._is_device)
            for key, shape in expected.items():
                if np.ndim(p[key]) != len(shape):
                    raise ValueError(f"p[{key!r}] must be {len(shape)}-D, "
                                     f"got shape {np.shape(p[key])}")
            raise ValueError(f"p does not hold a consistent set of {self.name} parameters")
        expected = self._without_biases(self.variant.shapes(**sizes))
        dtype = _check.params("p", p, expected, self._is_device)
        return sizes, dtype

    def _with_biases(self, p, sizes, dtype):
        """``p`` as the variant's functions take it: with bias=False, its bias parameters added
        as zeros; the variant's constants (janet's beta) added as vectors of their option's
        value, one per unit. One set per dtype, sizes and values, never written to."""
        constants = self.variant.constants
        if self.options.get("bias", True) and not constants:
            return p
        values = tuple(self.options[k] for k in constants)
        key = (np.dtype(dtype), tuple(sorted(sizes.items())), values)
        if self._zero_biases is None or self._zero_biases[0] != key:
            fixed = {k: np.full(sizes["hidden_size"], v, dtype) for k, v in zip(constants, values)}
            if not self.options.get("bias", True):
                shapes = self.variant.shapes(**sizes)
                fixed.update({k: np.zeros(shapes[k], dtype) for k in self.variant.bias_params})
            self._zero_biases = (key, fixed)
        return {**p, **self._zero_biases[1]}

    def _check_state(self, name, state, B, H, dtype):
        state = _check.state(name, state, self.variant.state, (B, H), dtype, "(B, H)",
                             self.name, self._is_device)
        if isinstance(state, tuple) and name != "dstate":
            self._check_nonnegative(name, state)
        return state

    def _check_nonnegative(self, name, state):
        """The components a state must have ≥ 0: slstm's normaliser n, for h = o ⊙ c / n (each
        step adds i > 0 to f ⊙ n, so from n ≥ 0, zeros included, n stays positive)."""
        for i, key in enumerate(self.variant.state):
            if key in self.variant.nonnegative_state:
                s = state[i]
                values = s.copy_to_host() if self._is_device and self._is_device(s) else s
                if not np.all(values >= 0):
                    raise ValueError(f"{name}[{i}] ({key}) of {self.name} must be ≥ 0 "
                                     f"everywhere, got a minimum of {np.min(values)!r}")

    def _zero_state(self, B, H, dtype):
        n = self.variant.n_state
        return np.zeros((B, H), dtype) if n == 1 else tuple(np.zeros((n, B, H), dtype))

    def _to_loop(self, state, B, H, dtype):
        """A state as the variant's functions carry it: sru's output h (zeros) before its c."""
        hidden = self.variant.hidden_outputs
        if not hidden:
            return state
        rest = state if isinstance(state, tuple) else (state,)
        return (*np.zeros((hidden, B, H), dtype), *rest)

    def _from_loop(self, state):
        """The state the user sees, from what the variant's functions carried."""
        hidden = self.variant.hidden_outputs
        if not hidden:
            return state
        rest = state[hidden:]
        return rest if len(rest) > 1 else rest[0]

    def _loop_masks(self, loop):
        """``loop`` (recurrent dropout and zoneout), for a backend whose loops apply them."""
        if not getattr(self._fns, "loop_regularisers", False):
            on = [k for k, v in (("recurrent_dropout", loop.h), ("zoneout", loop.keep))
                  if v is not None]
            raise NotImplementedError(
                f"{' and '.join(on)} {'act' if len(on) > 1 else 'acts'} inside the time loop, "
                f"and {self.name}'s loops on "
                f"backend {self.backend!r} do not apply them yet; backend 'numpy' does (and "
                f"input_dropout and weight_dropout run on every backend)")
        return loop

    def _run_kwargs(self, p, dtype, training, buffers, rng):
        kw = {}
        run = self.variant.run_options
        if "dropout" in run:
            kw["dropout"] = self.options["dropout"] if training else 0.0
            if rng is not None and not isinstance(rng, np.random.Generator):
                raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
            kw["rng"] = self._rng if rng is None else rng
        if "momentum" in run:
            kw["momentum"] = self.options["momentum"]
            kw["buffers"] = self._buffers(p, dtype, buffers, training)
        return kw

    def _buffers(self, p, dtype, buffers, training):
        """The given buffers, checked, or the cell's own (made from p if it has none yet)."""
        if buffers is None:
            if self.buffers is None:
                self.buffers = self.variant.init_buffers(p)
            buffers = self.buffers
        expected = self.variant.init_buffers(p)
        if not isinstance(buffers, dict):
            raise TypeError(f"buffers must be a dict of arrays, got {type(buffers).__name__}")
        if set(buffers) != set(expected):
            raise ValueError(f"buffers must have exactly the keys {sorted(expected)}, "
                             f"got {sorted(buffers)}")
        for key, a in expected.items():
            _check.array(f"buffers[{key!r}]", buffers[key], a.shape, dtype)
            if training and not buffers[key].flags.writeable:
                raise ValueError(f"buffers[{key!r}] is read-only, but a training forward "
                                 f"updates the running statistics in place: pass writable "
                                 f"buffers, or run with training=False")
        return buffers

    # ------------------------------------------------------------------ the API
    def forward(self, p, x, state0=None, training=True, *, buffers=None, rng=None):
        """ys (T, B, O), final state, cache = forward over the sequence ``x`` (T, B, I).

        ``training`` switches rru's dropout and ligru's batch statistics. ligru's running
        statistics are ``cell.buffers`` (made by ``init``, or from ``p`` on first use), which a
        training forward updates in place; ``buffers=`` uses another dict instead. ``rng``
        overrides the cell's generator for rru's dropout mask.

        The cache holds copies of ``p``, ``x`` and ``state0``: ``backward`` differentiates the
        forward that ran, whatever is written into those arrays afterwards (an optimiser step,
        the next batch read into the same buffer).
        """
        sizes, dtype = self._check_params(p)
        I, H = sizes["input_size"], sizes["hidden_size"]
        _check.array("x", x, (None, None, I), dtype, "(T, B, I)", self._is_device)
        T, B, _ = x.shape
        if T == 0 or B == 0:
            raise ValueError(f"x must have at least one step and one batch row, "
                             f"got shape {x.shape}")
        if state0 is not None:
            state0 = self._check_state("state0", state0, B, H, dtype)
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training must be a bool, got {type(training).__name__}")
        kw = self._run_kwargs(p, dtype, bool(training), buffers, rng)
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        masks = None if not self._regularised else _regularise.draw(
            self.variant, self.options, self._rng if rng is None else rng, T, B, I, H, p,
            bool(training), dtype)
        if masks is not None and masks.in_loop is not None:
            kw["masks"] = self._loop_masks(masks.in_loop)
        if self.options.get("scan", "sequential") != "sequential":
            kw["scan"] = self.options["scan"]         # (mingru, minlstm: _scan.py)
        # copies of what the backward reads, so that it differentiates this forward
        states = () if state0 is None else state0 if isinstance(state0, tuple) else (state0,)
        *copies, x = self._snapshot([*p.values(), *states, x])
        seen = self._with_biases(dict(zip(p, copies)), sizes, dtype)
        if masks is not None:                         # input and weight dropout, on the copies
            _regularise.apply_to_inputs(masks, seen, x, H)
        if state0 is None:
            state0 = self._zero_state(B, H, dtype)
        else:
            state0 = tuple(copies[len(p):]) if isinstance(state0, tuple) else copies[len(p)]
        ys, state, cache = self._fns.forward(seen, x, self._to_loop(state0, B, H, dtype),
                                             bool(training), **kw)
        state = self._from_loop(state)
        cache["masks"] = masks                        # (the loops read their part from it)
        cache["variant"] = self.name
        cache["params"] = seen                        # what backward computes with
        cache["shapes"] = (T, B, I, H, ys.shape[2])
        cache["param_shapes"] = {k: v.shape for k, v in p.items()}
        return ys, state, cache

    def backward(self, p, cache, dys, dstate=None):
        """dx (T, B, I), dstate0, grads = backward through the forward that made ``cache``.

        ``dys`` (T, B, O) is dLoss/dys; ``dstate`` is dLoss/d(final state), or None for zero.
        ``grads`` has exactly the keys of ``p``. ``p`` is checked against the cache; the
        arithmetic uses the parameters as the forward saw them (the cache's copies).
        """
        sizes, dtype = self._check_params(p)
        if not isinstance(cache, dict) or "variant" not in cache:
            raise TypeError("cache must be the cache returned by forward")
        if cache["variant"] != self.name:
            raise ValueError(f"cache comes from a {cache['variant']} forward, not {self.name}")
        T, B, I, H, O = cache["shapes"]
        shapes = {k: v.shape for k, v in p.items()}
        if shapes != cache["param_shapes"]:
            raise ValueError(f"p has shapes {shapes} but the cache was made with parameters of "
                             f"shapes {cache['param_shapes']}")
        _check.array("dys", dys, (T, B, O), dtype, "(T, B, O)", self._is_device)
        if dstate is None:
            dstate = self._zero_state(B, H, dtype)
        else:
            dstate = self._check_state("dstate", dstate, B, H, dtype)
        dx, dstate0, grads = self._fns.backward(cache["params"], cache, dys,
                                                self._to_loop(dstate, B, H, dtype))
        dstate0 = self._from_loop(dstate0)
        if cache.get("masks") is not None:
            _regularise.apply_to_gradients(cache["masks"], dx, grads, H)
        return dx, dstate0, {k: grads[k] for k in p}  # bias=False: the zeros' gradients go

    def step(self, p, x_t, state=None, *, buffers=None):
        """y (B, O), new state = one step of inference (evaluation mode, no cache).

        With ``zoneout`` the new state is evaluation's ``p · state + (1 − p) · cell(state)``
        (and so is y, for the cells whose output is their state)."""
        # The streaming path calls this once per time step with the same p and arrays of the
        # same kinds; such a call goes straight to what the last checked one prepared
        # (``_step_record.py``). The checks below take three times the kernel's time at B = 1.
        record = self._step_record
        if record is not None and record.accepts(p, x_t, state, buffers, self.buffers):
            result = record.run(x_t, state)
            if result is not None:                    # None: the shapes changed, in place
                return result
        sizes, dtype = self._check_params(p)
        I, H = sizes["input_size"], sizes["hidden_size"]
        _check.array("x_t", x_t, (None, I), dtype, "(B, I)", self._is_device)
        B = x_t.shape[0]
        if state is None:
            state = self._zero_state(B, H, dtype)
        else:
            state = self._check_state("state", state, B, H, dtype)
        kw = self._run_kwargs(p, dtype, False, buffers, None)
        full = self._with_biases(p, sizes, dtype)
        if buffers is None:                           # buffers given: checked every time
            self._step_record = self._record_step(p, full, x_t, state, dtype, kw)
        y, new = self._fns.step(full, x_t, self._to_loop(state, B, H, dtype), **kw)
        new = self._from_loop(new)
        if self.options["zoneout"]:
            return self._zoneout(state, y, new)
        return y, new

    def _zoneout(self, state, y, new):
        """Evaluation's zoneout after a step: the new state mixed with the old (zeros for None),
        and y with it where the output is the state."""
        if state is None:
            h = new[0] if isinstance(new, tuple) else new
            state = self._zero_state(h.shape[0], h.shape[1], h.dtype)
        mixed = _regularise.zoneout_step(self.options, self._n_state, state, new)
        if self.variant.output_is_state:
            y = mixed[0] if isinstance(mixed, tuple) else mixed
        return y, mixed

    def _with_zoneout(self, run):
        """``run`` (a prepared step) followed by evaluation's zoneout, for the fast path."""
        def zoned(x_t, state):
            result = run(x_t, state)
            return None if result is None else self._zoneout(state, *result)
        zoned.checks_shapes = getattr(run, "checks_shapes", False)
        return zoned

    def _through_loop_state(self, run, dtype):
        """``run`` (a prepared step of the loops' state) taking and giving the user's state."""
        def mapped(x_t, state):
            s = state[0] if isinstance(state, tuple) else state
            result = run(x_t, self._to_loop(state, *s.shape, dtype))
            return None if result is None else (result[0], self._from_loop(result[1]))
        mapped.checks_shapes = getattr(run, "checks_shapes", False)
        return mapped

    def _record_step(self, p, full, x_t, state, dtype, kw):
        """The ``StepRecord`` of a checked step: its function is the step the backend prepared
        for these arrays and options (ligru's running statistics, the cell's buffers, are held
        like p's arrays), or its plain step with the options bound."""
        held = kw.get("buffers")
        old = self._step_record
        state_shape = tuple(s.shape for s in state) if isinstance(state, tuple) else state.shape
        hw = state_shape[0] if isinstance(state, tuple) else state_shape
        if old is not None and old.same_params(p, dtype, x_t.shape, state_shape, held):
            return old                                # a first step from state None, say
        prepare = getattr(self._fns, "prepare_step", None)
        run = (prepare(full, x_t, self._to_loop(state, *hw, dtype), **kw)
               if prepare else functools.partial(self._fns.step, full, **kw))
        if self.variant.hidden_outputs:
            run = self._through_loop_state(run, dtype)
        if self.options["zoneout"]:
            run = self._with_zoneout(run)
        return StepRecord(p, x_t, state, held, run)
