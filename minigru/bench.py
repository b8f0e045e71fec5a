"""``minigru bench``: minigru against PyTorch on the CPU, and every backend against the reference.

How (BENCH.md): every figure is a ratio measured in one process, the two sides alternating
(blocks of calls, A B A B ...), the median of each side's times; ratio = other side's time /
minigru's, so > 1 means minigru is faster. Both sides get the same data, dtype (float32) and
thread count. Each row of the tables is measured in a fresh process (``in_fresh_process``), so
that no row depends on what the rows before it allocated.

Before anything is timed, every variant on the backend is checked against the NumPy reference
(``validate``: float64, the forward and every gradient); a backend that disagrees is not timed.

Workloads
    training step   forward over the sequence, then backward giving dx, dstate0 and every
                    parameter gradient of loss = sum(ys * R)
    forward         the forward alone (minigru's keeps its cache; PyTorch's runs under no_grad)
    streaming step  one time step from Python, B = 1, I = 16, H = 64, the state carried between
                    calls, against nn.GRUCell/LSTMCell/RNNCell under no_grad
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from ._io import atomic_write
from .cell import Cell
from .cells import get_variant
from .workloads import workload_row  # noqa: F401 (in_fresh_process finds it here)

SIZES = {  # T, B, I, H
    "tiny": (50, 16, 8, 32),
    "stream": (1000, 1, 1, 64),
    "medium": (200, 32, 64, 128),
    "large": (100, 64, 500, 256),
    # backend="cuda" in Numba's simulator (every GPU thread a Python thread): only this one
    "simulator": (4, 2, 3, 8),
}
BENCH_SIZES = ("tiny", "stream", "medium", "large")
SIMULATOR_NOTE = ("backend='cuda' is running in Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1): "
                  "every GPU thread is a Python thread on the CPU, so the timings below mean "
                  "nothing about a GPU; they only show that the benchmark runs.")
STREAM_STEP = (16, 64)          # I, H of the streaming step
STEP_SIZE = "streaming step"    # its bars' label in the plot
TORCH_MODULES = {"gru": "GRU", "lstm": "LSTM", "rnn": "RNN"}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}

# BENCH.md's targets for backend="numba" (ratios, minigru faster when > 1): gru, lstm and rnn
# against PyTorch; every variant against the NumPy reference.
TARGETS = {
    "train_ratio": {"tiny": 5, "stream": 30, "medium": 2, "large": 1.2},
    "forward_ratio": {"tiny": 3, "stream": 10, "medium": 1.5, "large": 1.2},
    "train_gemm_efficiency": {"large": 0.65},
    "streaming_step": 10,
    "vs_numpy": {"tiny": 10, "medium": 1.5},
}


def target(table, key, row):
    """BENCH.md's target for the figure ``row[key]`` of a table of ``run``'s result, or None."""
    if table == "vs_torch":
        return TARGETS[key].get(row["size"])
    if table == "streaming_step":
        return TARGETS["streaming_step"] if key == "ratio" else None
    if table == "vs_numpy" and key == "ratio":
        return TARGETS["vs_numpy"].get(row["size"])
    return None


def missed_targets(result):
    """The figures of ``result`` below their target, as readable strings."""
    keys = {"vs_torch": ("train_ratio", "forward_ratio", "train_gemm_efficiency"),
            "streaming_step": ("ratio",), "vs_numpy": ("ratio",)}
    missed = []
    for table, names in keys.items():
        for row in result.get(table, []):
            for key in names:
                want = target(table, key, row)
                if want is not None and key in row and row[key] < want:
                    where = " ".join(str(row[k]) for k in ("variant", "size") if k in row)
                    what = {"train_ratio": "training step vs PyTorch",
                            "forward_ratio": "forward vs PyTorch",
                            "train_gemm_efficiency": "share of the GEMM peak",
                            "ratio": ("streaming step vs PyTorch" if table == "streaming_step"
                                      else "training step vs the reference")}[key]
                    missed.append(f"{where} {what}: {row[key]:.2f} (target {want:g})")
    return missed


def threads():
    """The cores minigru's side may use (its BLAS products are threaded over all of them).

    Not ``numba.get_num_threads()``: that starts Numba's threading layer, a second OpenMP runtime
    next to PyTorch's, and the two pools then fight over the cores (PyTorch's GRU ran 50 times
    slower in such a process)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def alternate(funcs, repeats, block=3):
    """Median seconds of each function, run in turn: ``repeats`` rounds of ``block`` calls each.

    The first call of every block is not counted: the other side's thread pool (PyTorch's
    OpenMP, OpenBLAS) may still be spinning on the cores when its turn ends, and that tail
    belongs to neither side.
    """
    for f in funcs.values():                          # warm up (and compile)
        f()
    times = {k: [] for k in funcs}
    for _ in range(repeats):
        for k, f in funcs.items():
            for i in range(block + 1):
                t0 = time.perf_counter()
                f()
                if i:
                    times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def _problem(variant, size, dtype=np.float32, seed=0):
    T, B, I, H = SIZES[size]
    rng = np.random.default_rng(seed)
    cell = Cell(variant)
    p = cell.init(I, H, rng=rng, dtype=dtype)
    x = rng.normal(size=(T, B, I)).astype(dtype)
    state0 = cell._zero_state(B, H, dtype)            # h, (h, c), ... of zeros
    O = p["V"].shape[1] - H if variant == "rru" else H
    R = rng.normal(size=(T, B, O)).astype(dtype)
    return p, x, state0, R


VALIDATE_SIZE = (5, 3, 4, 6)     # T, B, I, H of the check before any timing
VALIDATE_TOL = 1e-10              # float64, relative to each array's largest entry


def validate(variant, backend):
    """The largest relative error of ``backend`` against the NumPy reference, float64, over
    the forward's outputs and final state and the backward's dx, dstate0 and every gradient:
    a backend is timed only after it has computed the same numbers (llm.c's habit)."""
    from .gradcheck import relative_error
    T, B, I, H = SIZES["simulator"] if _simulated(backend) else VALIDATE_SIZE
    rng = np.random.default_rng(0)
    ref, ours = Cell(variant), Cell(variant, backend)
    p = ref.init(I, H, rng=rng, dtype=np.float64)
    x = rng.normal(size=(T, B, I))
    results = []
    for cell in (ref, ours):
        ys, state, cache = cell.forward(p, x)
        dx, dstate0, grads = cell.backward(p, cache, np.cos(np.arange(ys.size)).reshape(ys.shape))
        flat = [ys, *(state if isinstance(state, tuple) else (state,)), dx,
                *(dstate0 if isinstance(dstate0, tuple) else (dstate0,)),
                *(grads[k] for k in sorted(grads))]
        results.append(flat)
    return max(relative_error(a, b) for a, b in zip(results[1], results[0]))


def validate_all(variants, backend, out):
    """Check every variant on ``backend`` against the reference; raise if one disagrees."""
    errors = {v: validate(v, backend) for v in variants}
    bad = {v: e for v, e in errors.items() if not e <= VALIDATE_TOL}
    if bad:
        raise RuntimeError(
            f"backend={backend} disagrees with the NumPy reference, so it is not timed: "
            + ", ".join(f"{v} relative error {e:.1e}" for v, e in bad.items())
            + f" (tolerance {VALIDATE_TOL:.0e}, float64)")
    print(f"validated: {len(errors)} variant(s) on {backend} equal the NumPy reference "
          f"(forward, final state, dx, dstate0, every gradient; float64, largest relative "
          f"error {max(errors.values()):.1e})", file=out)
    return errors


def _simulated(backend):
    if backend != "cuda":
        return False
    from .cuda import simulated
    return simulated()


def minigru_workloads(variant, backend, size):
    cell = Cell(variant, backend)
    p, x, state0, R = _problem(variant, size)
    sync = None
    if backend == "cuda":
        # the data stays on the device, as in training: kernels are timed, not PCIe copies;
        # launches are asynchronous, so each workload waits for the GPU before it returns
        from numba import cuda
        p = {k: cuda.to_device(v) for k, v in p.items()}
        x, R = cuda.to_device(x), cuda.to_device(R)
        state0 = (tuple(map(cuda.to_device, state0)) if isinstance(state0, tuple)
                  else cuda.to_device(state0))
        sync = cuda.synchronize

    def step():
        _, _, cache = cell.forward(p, x, state0)
        cell.backward(p, cache, R)
        if sync:
            sync()

    def forward():
        cell.forward(p, x, state0)
        if sync:
            sync()
    return step, forward


def torch_workloads(variant, size):
    import torch

    T, B, I, H = SIZES[size]
    torch.manual_seed(0)
    module = getattr(torch.nn, TORCH_MODULES[variant])(I, H)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(T, B, I)).astype(np.float32), requires_grad=True)
    h0 = torch.zeros(1, B, H, requires_grad=True)
    state0 = (h0, torch.zeros(1, B, H, requires_grad=True)) if variant == "lstm" else h0
    R = torch.tensor(rng.normal(size=(T, B, H)).astype(np.float32))

    def step():
        ys, _ = module(x, state0)
        (ys * R).sum().backward()

    def forward():
        with torch.no_grad():
            module(x, state0)
    return step, forward


def streaming(variant, backend, vs_torch, repeats, n=200, shape=STREAM_STEP, block=3):
    """Seconds per step of the Python-driven streaming loop, minigru and (maybe) PyTorch."""
    I, H = shape
    cell = Cell(variant, backend)
    rng = np.random.default_rng(0)
    p = cell.init(I, H, rng=rng, dtype=np.float32)
    xs = rng.normal(size=(n, 1, I)).astype(np.float32)

    def ours():
        state = None
        for t in range(n):
            _, state = cell.step(p, xs[t], state)
    funcs = {"minigru": ours}
    if vs_torch and variant in TORCH_MODULES:
        import torch
        tcell = getattr(torch.nn, TORCH_MODULES[variant] + "Cell")(I, H)
        txs = torch.from_numpy(xs)

        def theirs():
            with torch.no_grad():
                state = None
                for t in range(n):
                    state = tcell(txs[t], state)
                    y = state[0] if isinstance(state, tuple) else state
            return y
        funcs["torch"] = theirs
    return {k: v / n for k, v in alternate(funcs, repeats, block).items()}


def gemm_peak(n=2048, seconds=1.0):
    """NumPy's float32 GEMM rate (GFLOP/s) on n x n matrices in this process."""
    a = np.random.default_rng(0).normal(size=(n, n)).astype(np.float32)
    a @ a
    t0, k = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        a @ a
        k += 1
    return 2 * n ** 3 * k / (time.perf_counter() - t0) / 1e9


def flop_equivalent(variant, size, training):
    """BENCH.md: 6·T·B·H·(I+H)·G/3 for a forward, three times that for a training step."""
    T, B, I, H = SIZES[size]
    forward = 6 * T * B * H * (I + H) * GATES[variant] / 3
    return 3 * forward if training else forward


def cold_compile_seconds(variant, backend):
    """Seconds a fresh process with an empty Numba cache takes for its first step and backward."""
    code = ("import time, numpy as np, minigru as mg; t = time.perf_counter(); "
            f"c = mg.cell({variant!r}, backend={backend!r}); "
            "p = c.init(3, 4, dtype=np.float32); x = np.zeros((2, 2, 3), np.float32); "
            "ys, s, k = c.forward(p, x); c.backward(p, k, ys); c.step(p, x[0], s); "
            "p = c.init(3, 4, dtype=np.float64); x = np.zeros((2, 2, 3)); "
            "ys, s, k = c.forward(p, x); c.backward(p, k, ys); c.step(p, x[0], s); "
            "print(time.perf_counter() - t)")
    with tempfile.TemporaryDirectory() as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def vs_torch_row(variant, backend, size, repeats, block):
    """minigru against PyTorch at one size: training step and forward, times and ratios."""
    import torch
    torch.set_num_threads(threads())
    ts, tf = torch_workloads(variant, size)
    ms, mf = minigru_workloads(variant, backend, size)
    train = alternate({"torch": ts, "minigru": ms}, repeats, block)
    fwd = alternate({"torch": tf, "minigru": mf}, repeats, block)
    return {"variant": variant, "size": size,
            "torch_train_ms": train["torch"] * 1e3, "train_ms": train["minigru"] * 1e3,
            "train_ratio": train["torch"] / train["minigru"],
            "torch_forward_ms": fwd["torch"] * 1e3, "forward_ms": fwd["minigru"] * 1e3,
            "forward_ratio": fwd["torch"] / fwd["minigru"]}


def streaming_row(variant, backend, vs_torch, repeats, block, simulated):
    if vs_torch:
        import torch
        torch.set_num_threads(threads())
    s = (streaming(variant, backend, vs_torch, repeats, 2, (3, 8), block) if simulated
         else streaming(variant, backend, vs_torch, repeats))
    row = {"variant": variant, "step_us": s["minigru"] * 1e6}
    if "torch" in s:
        row.update(torch_step_us=s["torch"] * 1e6, ratio=s["torch"] / s["minigru"])
    return row


# The rates ``--regularisers`` measures each regulariser at (docs/regularisers.md, the costs).
REGULARISER_RATES = {"input_dropout": 0.25, "recurrent_dropout": 0.25, "zoneout": 0.1,
                     "weight_dropout": 0.25}


def regulariser_row(variant, backend, size, repeats, block):
    """The training step with each regulariser against the same cell without: cost ratios
    (1.1 = 10% slower), one process, alternating. The ones a variant has no use for (mingru's
    recurrent and weight dropout) are left out; so are those the backend does not run."""
    from . import _regularise
    base = Cell(variant, backend)
    p, x, state0, R = _problem(variant, size)
    sync = None
    if backend == "cuda":
        from numba import cuda
        sync = cuda.synchronize

    def workload(cell):
        def step():
            _, _, cache = cell.forward(p, x, state0)
            cell.backward(p, cache, R)
            if sync:
                sync()
        return step
    funcs = {"none": workload(base)}
    for key, rate in REGULARISER_RATES.items():
        try:
            _regularise.check(base.variant, key, rate)
            cell = Cell(variant, backend, seed=0, **{key: rate})
            funcs[key] = workload(cell)
            funcs[key]()                              # a backend without it says so here
        except (ValueError, NotImplementedError):
            funcs.pop(key, None)
    t = alternate(funcs, repeats, block)
    return {"variant": variant, "size": size, "train_ms": t["none"] * 1e3,
            **{f"{k}_cost": t[k] / t["none"] for k in t if k != "none"}}


def vs_numpy_row(variant, backend, size, repeats, block):
    """A backend's training step against the NumPy reference's at one size."""
    rs, _ = minigru_workloads(variant, "numpy", size)
    ms, _ = minigru_workloads(variant, backend, size)
    t = alternate({"numpy": rs, "minigru": ms}, repeats, block)
    return {"variant": variant, "size": size, "numpy_train_ms": t["numpy"] * 1e3,
            "train_ms": t["minigru"] * 1e3, "ratio": t["numpy"] / t["minigru"]}


SCAN_SIZES = {"stream": (1000, 1, 1, 64), "long": (10_000, 1, 1, 64)}   # T, B, I, H


def scan_row(variant, backend, size, repeats, block):
    """scan="parallel" against the sequential loop (mingru, minlstm), forward and training step,
    alternating in one process: ``ratio`` > 1 where the parallel form is faster."""
    T, B, I, H = SCAN_SIZES[size]
    rng = np.random.default_rng(0)
    seq, par = Cell(variant, backend), Cell(variant, backend, scan="parallel")
    p = seq.init(I, H, rng=rng, dtype=np.float32)
    x = rng.normal(size=(T, B, I)).astype(np.float32)
    R = rng.normal(size=(T, B, H)).astype(np.float32)

    def forward(cell):
        return lambda: cell.forward(p, x)

    def train(cell):
        def step():
            _, _, cache = cell.forward(p, x)
            cell.backward(p, cache, R)
        return step
    funcs = {"seq_fwd": forward(seq), "par_fwd": forward(par), "seq_train": train(seq),
             "par_train": train(par)}
    for f in funcs.values():
        f()                                           # compiled before timing
    t = alternate(funcs, repeats, block)
    return {"variant": variant, "size": size, "T": T, "B": B, "I": I, "H": H,
            **{f"{k}_ms": v * 1e3 for k, v in t.items()},
            "forward_ratio": t["seq_fwd"] / t["par_fwd"],
            "train_ratio": t["seq_train"] / t["par_train"]}


def in_fresh_process(measure, **kwargs):
    """``measure(**kwargs)`` (a function of this module) run in a new Python process.

    Every row of the benchmark is measured in a process of its own, as a user's script would
    run it. In one long process the figures depend on what ran before: glibc's malloc adapts
    its thresholds to the sizes a process has allocated and freed, and after the ``tiny``
    workloads the ``medium`` ones got their big arrays as fresh pages from the kernel on every
    call. Measured on this project's machine: the ``gru`` medium training step 19.7 ms in a
    fresh process, 28.9 ms after the tiny ones (the NumPy reference 36 -> 45 ms: the same
    added cost on both sides, which pulled their ratio from 1.85 to 1.5)."""
    code = ("import json, sys; from minigru import bench; "
            "print(json.dumps(getattr(bench, sys.argv[1])(**json.loads(sys.argv[2]))))")
    done = subprocess.run([sys.executable, "-c", code, measure.__name__, json.dumps(kwargs)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bench: measuring {measure.__name__}({kwargs}) failed:\n"
                           f"{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(variants, backend="numba", vs_torch=True, quick=False, compile_times=False, out=None,
        regularisers=False):
    """Measure; print a table (to ``out``) and return every figure as a dict."""
    out = out or sys.stdout
    simulated = _simulated(backend)
    repeats = 1 if simulated else 2 if quick else 5
    block = 1 if simulated else 3
    result = {"backend": backend, "threads": threads(), "quick": quick, "dtype": "float32"}
    if simulated:
        result["simulated"] = True
        print(f"NOTE: {SIMULATOR_NOTE}\n", file=out)
    torch = None
    if vs_torch:
        try:
            import torch
            result["torch"] = torch.__version__
        except ImportError:
            print("PyTorch is not installed: comparing with the NumPy reference only", file=out)
    result["gemm_peak_gflops"] = gemm_peak(seconds=0.3 if quick else 1.0)
    print(f"minigru bench: backend={backend}, float32, {result['threads']} threads, "
          f"NumPy GEMM peak {result['gemm_peak_gflops']:.0f} GFLOP/s", file=out)
    if backend != "numpy":
        result["validated_max_error"] = max(validate_all(variants, backend, out).values())

    sizes = (["simulator"] if simulated else ["tiny", "stream"] if quick
             else list(BENCH_SIZES))
    rows = []
    if torch is not None:
        print(f"\n{'variant':<7} {'size':<7} {'torch train':>12} {'ours':>10} {'ratio':>6}   "
              f"{'torch fwd':>10} {'ours':>10} {'ratio':>6}", file=out)
        for variant in [v for v in variants if v in TORCH_MODULES]:
            for size in sizes:
                row = in_fresh_process(vs_torch_row, variant=variant, backend=backend,
                                       size=size, repeats=repeats, block=block)
                if size == "large" and backend != "cuda":       # a CPU GEMM peak
                    row["train_gemm_efficiency"] = (flop_equivalent(variant, size, True)
                                                    / (row["train_ms"] / 1e3) / 1e9
                                                    / result["gemm_peak_gflops"])
                rows.append(row)
                print(f"{variant:<7} {size:<7} {row['torch_train_ms']:>10.2f}ms "
                      f"{row['train_ms']:>8.2f}ms {row['train_ratio']:>6.2f}   "
                      f"{row['torch_forward_ms']:>8.2f}ms {row['forward_ms']:>8.2f}ms "
                      f"{row['forward_ratio']:>6.2f}"
                      + (f"   {100 * row['train_gemm_efficiency']:.0f}% of GEMM peak"
                         if "train_gemm_efficiency" in row else ""), file=out)
        result["vs_torch"] = rows

    print(f"\n{'variant':<7} {'streaming step':>15} {'torch cell':>11} {'ratio':>6}", file=out)
    stream_rows = []
    for variant in variants:
        row = in_fresh_process(streaming_row, variant=variant, backend=backend,
                               vs_torch=torch is not None and variant in TORCH_MODULES,
                               repeats=repeats, block=block, simulated=simulated)
        stream_rows.append(row)
        print(f"{variant:<7} {row['step_us']:>13.2f}us "
              + (f"{row['torch_step_us']:>9.2f}us {row['ratio']:>6.2f}" if "ratio" in row else ""),
              file=out)
    result["streaming_step"] = stream_rows

    if backend != "numpy":
        print(f"\n{'variant':<7} {'size':<7} {'reference':>11} {'ours':>10} {'ratio':>7}", file=out)
        ref_rows = []
        for variant in variants:
            for size in ("simulator",) if simulated else ("tiny",) if quick else ("tiny", "medium"):
                row = in_fresh_process(vs_numpy_row, variant=variant, backend=backend,
                                       size=size, repeats=repeats, block=block)
                ref_rows.append(row)
                print(f"{variant:<7} {size:<7} {row['numpy_train_ms']:>9.2f}ms "
                      f"{row['train_ms']:>8.2f}ms {row['ratio']:>7.2f}", file=out)
        result["vs_numpy"] = ref_rows

    scanned = [v for v in variants if "scan" in get_variant(v).run_options]
    if scanned and not simulated:                     # (T=10,000 is hours in the simulator)
        print(f"\nscan='parallel' against the sequential loop (ratio > 1: parallel faster)\n"
              f"{'variant':<8} {'size':<16} {'seq fwd':>9} {'par fwd':>9} {'ratio':>6} "
              f"{'seq train':>10} {'par train':>10} {'ratio':>6}", file=out)
        scan_rows = []
        for variant in scanned:
            for size in ("stream",) if quick else tuple(SCAN_SIZES):
                row = in_fresh_process(scan_row, variant=variant, backend=backend, size=size,
                                       repeats=repeats, block=block)
                scan_rows.append(row)
                shape = f"{size} T={row['T']}"
                print(f"{variant:<8} {shape:<16} {row['seq_fwd_ms']:>7.2f}ms "
                      f"{row['par_fwd_ms']:>7.2f}ms {row['forward_ratio']:>6.2f} "
                      f"{row['seq_train_ms']:>8.2f}ms {row['par_train_ms']:>8.2f}ms "
                      f"{row['train_ratio']:>6.2f}", file=out)
        result["scan"] = scan_rows

    if regularisers:
        size = "simulator" if simulated else "tiny" if quick else "medium"
        names = list(REGULARISER_RATES)
        print(f"\ntraining step with each regulariser / without ({size}; rates "
              + ", ".join(f"{k} {v:g}" for k, v in REGULARISER_RATES.items()) + ")", file=out)
        print(f"{'variant':<7} {'plain':>9} " + " ".join(f"{k:>17}" for k in names), file=out)
        reg_rows = []
        for variant in variants:
            row = in_fresh_process(regulariser_row, variant=variant, backend=backend,
                                   size=size, repeats=repeats, block=block)
            reg_rows.append(row)
            print(f"{variant:<7} {row['train_ms']:>7.2f}ms " + " ".join(
                f"{row[k + '_cost']:>17.3f}" if k + "_cost" in row else f"{'-':>17}"
                for k in names), file=out)
        result["regularisers"] = reg_rows

    if compile_times and backend != "numpy":
        print(f"\n{'variant':<7} {'cold compile (fwd+bwd+step, 2 dtypes)':>40}", file=out)
        result["cold_compile_s"] = {}
        for variant in variants:
            s = cold_compile_seconds(variant, backend)
            result["cold_compile_s"][variant] = s
            print(f"{variant:<7} {s:>38.1f} s", file=out)
    if backend == "numba":                            # BENCH.md's targets are the CPU's
        result["missed_targets"] = missed_targets(result)
        print(f"\nbelow BENCH.md's targets: {len(result['missed_targets'])}", file=out)
        for line in result["missed_targets"]:
            print(f"  {line}", file=out)
    if simulated:
        print(f"\nNOTE: {SIMULATOR_NOTE}", file=out)
    print(json.dumps(result), file=out)
    return result


def plot(result, path):
    """A PNG of the ratios in ``result`` (what ``run`` returned): one bar per variant and size,
    log scale, 1 = parity; written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    # the streaming step is inference too: one more group of bars next to the forwards
    steps = [{"variant": r["variant"], "size": STEP_SIZE, "forward_ratio": r["ratio"]}
             for r in result.get("streaming_step", []) if "ratio" in r]
    panels = [("vs_torch", "train_ratio", "training step vs PyTorch"),
              ("vs_torch", "forward_ratio", "inference vs PyTorch (forward, streaming step)"),
              ("vs_numpy", "ratio", "training step vs the NumPy reference")]
    panels = [p for p in panels if result.get(p[0])]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (table, key, title) in zip(axes[0], panels):
        rows = result[table] + (steps if key == "forward_ratio" else [])
        sizes = list(dict.fromkeys(r["size"] for r in rows))
        variants = list(dict.fromkeys(r["variant"] for r in rows))
        width = 0.8 / len(sizes)
        marked = False
        for k, size in enumerate(sizes):
            vals = [next((r[key] for r in rows if r["variant"] == v and r["size"] == size),
                         np.nan) for v in variants]
            x = np.arange(len(variants)) + k * width
            ax.bar(x, vals, width, label=size)
            want = (None if result["backend"] != "numba"
                    else target("streaming_step", "ratio", {}) if size == STEP_SIZE
                    else target(table, key, {"size": size, "variant": None}))
            if want is not None:                      # BENCH.md's target, over each bar
                ax.hlines([want] * len(x), x - width / 2, x + width / 2, color="black", lw=1.5,
                          label=None if marked else "target (BENCH.md)")
                marked = True
        ax.axhline(1, color="black", lw=0.8)
        ax.set_xticks(np.arange(len(variants)) + width * (len(sizes) - 1) / 2, variants,
                      rotation=45 if len(variants) > 4 else 0)
        ax.set(yscale="log", ylabel="speed-up (× faster than the other side)", title=title)
        # labels at 1, 2, 5, 10, 20, ...: a label at every minor tick of a log axis overlaps
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        low, high = ax.get_ylim()
        ax.set_ylim(low, high * 8)                    # room above the bars for the legend
        ax.legend(fontsize=8, loc="upper left", ncol=3)
    fig.suptitle(f"minigru backend={result['backend']}, float32, {result['threads']} threads")
    fig.tight_layout()
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)


