"""Whole models timed part by part: ``minigru bench --workload bytelm|music``.

The cell is only one part of a training step. These workloads train two small models end to end,
minigru's built from its public modules and the same model in PyTorch, step for step in one
process, alternating, and say where each side's time goes:

    bytelm   a byte-level language model in the configuration of the RLtools GRU benchmark:
             Embedding(256, 32) -> RNN(32, 64) -> Linear(64, 32) -> Linear(32, 256),
             batch 32, 64 steps, Adam, cross-entropy; the bytes of minigru/data/kjv.txt
    music    next-step prediction of 88-key piano rolls (the chorales demo's task):
             RNN(88, 128) -> Linear(128, 88), batch 16, 50-step windows of the training
             chorales, Adam, BCE with logits

The parts of a step (``PARTS``): the embedding, the cell (the RNN's forward and backward), the
heads (the Linear layers), the loss and its gradient, the optimiser, and the rest (zeroing the
gradients, Python between the parts). On minigru's side each part is timed around its calls.
On PyTorch's, the forward parts likewise, and the backward (one ``loss.backward()``) by hooks on
the tensors between the parts: a tensor's hook runs when its gradient is ready, so the time
from one hook to the next is the backward of the part between them.

Any variant can run them (``--variant``): PyTorch's side exists for gru, lstm and rnn (built
first, and minigru's model then made from its weights, so that both start from the same
parameters and their first losses agree: ``first_loss`` in the result); for the other variants
minigru's side is timed alone.
"""

import time

import numpy as np

PARTS = ("embedding", "cell", "heads", "loss", "optimiser", "rest")
WORKLOADS = {
    "bytelm": {"T": 64, "B": 32, "vocab": 256, "embed": 32, "H": 64, "proj": 32, "lr": 1e-3},
    "music": {"T": 50, "B": 16, "keys": 88, "H": 128, "lr": 1e-3},
}
TORCH_MODULES = {"gru": "GRU", "lstm": "LSTM", "rnn": "RNN"}
BATCHES = 8                     # distinct batches, used in turn (both sides see the same ones)


# ---------------------------------------------------------------- the data
def bytelm_batches(T, B, n=BATCHES, seed=0):
    """``n`` (inputs, targets) pairs of (T, B) byte indices from kjv.txt: B windows of T + 1
    bytes at random places, targets the inputs shifted by one."""
    from . import data
    text = np.frombuffer(data.kjv().encode("utf-8"), np.uint8)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        starts = rng.integers(0, len(text) - T - 1, size=B)
        win = np.stack([text[s:s + T + 1] for s in starts], axis=1).astype(np.int64)  # (T+1, B)
        out.append((win[:-1], win[1:]))
    return out


def music_batches(T, B, n=BATCHES, seed=0):
    """``n`` (x, y) pairs of (T, B, 88) float32 piano-roll windows of the training chorales:
    y the frames, x the frames one step earlier (silence before the first), as the chorales
    demo pairs them."""
    from . import data
    rolls = [r for r in data.chorales()["train"] if len(r) > T]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = np.zeros((T, B, 88), np.float32)
        y = np.zeros((T, B, 88), np.float32)
        for b in range(B):
            r = rolls[rng.integers(len(rolls))]
            s = rng.integers(0, len(r) - T)
            y[:, b] = r[s:s + T]
            x[1:, b] = r[s:s + T - 1]
            if s > 0:
                x[0, b] = r[s - 1]
        out.append((x, y))
    return out


# ---------------------------------------------------------------- the models
def _torch_models(workload, variant, cfg):
    """PyTorch's modules of the workload: {part: module} in the order of the forward."""
    import torch
    torch.manual_seed(0)
    cell = getattr(torch.nn, TORCH_MODULES[variant])
    if workload == "bytelm":
        return {"embedding": torch.nn.Embedding(cfg["vocab"], cfg["embed"]),
                "cell": cell(cfg["embed"], cfg["H"]),
                "head1": torch.nn.Linear(cfg["H"], cfg["proj"]),
                "head2": torch.nn.Linear(cfg["proj"], cfg["vocab"])}
    return {"cell": cell(cfg["keys"], cfg["H"]), "head1": torch.nn.Linear(cfg["H"], cfg["keys"])}


def _minigru_models(workload, variant, backend, cfg, torch_models=None):
    """minigru's modules of the workload, from PyTorch's weights where given."""
    from . import Embedding, Linear, RNN
    from .losses import parts_backend
    parts = parts_backend(backend)
    if torch_models is not None:
        return {k: (RNN.from_torch(v, backend=backend) if k == "cell" else
                    Embedding.from_torch(v, backend=parts) if k == "embedding" else
                    Linear.from_torch(v))
                for k, v in torch_models.items()}
    if workload == "bytelm":
        return {"embedding": Embedding(cfg["vocab"], cfg["embed"], seed=0, backend=parts),
                "cell": RNN(variant, cfg["embed"], cfg["H"], backend=backend, seed=1),
                "head1": Linear(cfg["H"], cfg["proj"], seed=2),
                "head2": Linear(cfg["proj"], cfg["vocab"], seed=3)}
    return {"cell": RNN(variant, cfg["keys"], cfg["H"], backend=backend, seed=1),
            "head1": Linear(cfg["H"], cfg["keys"], seed=2)}


def minigru_step_fn(workload, modules, cfg, backend):
    """One training step of minigru's model, timed part by part: ``step(batch) -> (loss,
    {part: seconds})``."""
    from . import losses
    from .optim import Adam
    parts = losses.parts_backend(backend)
    heads = [modules[k] for k in ("head1", "head2") if k in modules]
    emb, rnn = modules.get("embedding"), modules["cell"]
    params = {f"{k}.{n}": a for k, m in modules.items() for n, a in m.params.items()}
    grads = {f"{k}.{n}": a for k, m in modules.items() for n, a in m.grads.items()}
    opt = Adam(params, lr=cfg["lr"])
    clock = time.perf_counter

    def step(batch):
        x, y = batch
        t = {p: 0.0 for p in PARTS}
        start = clock()
        for m in modules.values():
            m.zero_grad()
        t0 = clock()
        if emb is not None:
            x = emb.forward(x)
        t1 = clock()
        ys, _ = rnn.forward(x)
        t2 = clock()
        for head in heads:
            ys = head.forward(ys)
        t3 = clock()
        if workload == "bytelm":
            loss, d = losses.cross_entropy(ys, y, backend=parts)
        else:
            loss, d = losses.bce_with_logits(ys, y, backend=parts)
        t4 = clock()
        for head in reversed(heads):
            d = head.backward(d)
        t5 = clock()
        d = rnn.backward(d)
        t6 = clock()
        if emb is not None:
            emb.backward(d)
        t7 = clock()
        opt.step(grads)
        t8 = clock()
        t["embedding"] = (t1 - t0) + (t7 - t6)
        t["cell"] = (t2 - t1) + (t6 - t5)
        t["heads"] = (t3 - t2) + (t5 - t4)
        t["loss"] = t4 - t3
        t["optimiser"] = t8 - t7
        t["rest"] = (t8 - start) - sum(t[p] for p in PARTS if p != "rest")
        return float(loss), t
    return step


def torch_step_fn(workload, modules, cfg):
    """The same step in PyTorch, timed part by part (the backward by tensor hooks)."""
    import torch
    heads = [modules[k] for k in ("head1", "head2") if k in modules]
    emb, rnn = modules.get("embedding"), modules["cell"]
    params = [p for m in modules.values() for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=cfg["lr"])
    loss_fn = (torch.nn.CrossEntropyLoss() if workload == "bytelm"
               else torch.nn.BCEWithLogitsLoss())
    clock = time.perf_counter

    def step(batch):
        x, y = batch
        marks = {}

        def mark(name):
            def hook(grad):
                marks[name] = clock()
            return hook
        start = clock()
        opt.zero_grad()
        t0 = clock()
        if emb is not None:
            x = emb(x)
            x.register_hook(mark("cell"))             # its gradient: the cell's backward done
        t1 = clock()
        ys, _ = rnn(x)
        ys.register_hook(mark("heads"))
        t2 = clock()
        for head in heads:
            ys = head(ys)
        ys.register_hook(mark("loss"))
        t3 = clock()
        loss = (loss_fn(ys.reshape(-1, ys.shape[-1]), y.reshape(-1)) if workload == "bytelm"
                else loss_fn(ys, y))
        t4 = clock()
        loss.backward()
        t5 = clock()
        opt.step()
        t6 = clock()
        cell_done = marks.get("cell", t5)
        t = {"loss": (t4 - t3) + (marks["loss"] - t4),
             "heads": (t3 - t2) + (marks["heads"] - marks["loss"]),
             "cell": (t2 - t1) + (cell_done - marks["heads"]),
             "embedding": (t1 - t0) + (t5 - cell_done) if emb is not None else 0.0,
             "optimiser": t6 - t5}
        t["rest"] = (t6 - start) - sum(t.values())
        return loss.item(), t
    return step


def _torch_batches(workload, batches):
    import torch
    return [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]


# ---------------------------------------------------------------- the measurement
def workload_row(workload, variant, backend, repeats, block, vs_torch=True):
    """Both sides of one workload, alternating: steps per second, the median of each part, the
    ratio of the medians of the whole step."""
    from .bench import threads
    cfg = WORKLOADS[workload]
    batches = (bytelm_batches if workload == "bytelm" else music_batches)(cfg["T"], cfg["B"])
    sides, torch_models = {}, None
    if vs_torch and variant in TORCH_MODULES:
        import torch
        torch.set_num_threads(threads())
        torch_models = _torch_models(workload, variant, cfg)
        sides["torch"] = (torch_step_fn(workload, torch_models, cfg),
                          _torch_batches(workload, batches))
    modules = _minigru_models(workload, variant, backend, cfg, torch_models)
    sides["minigru"] = (minigru_step_fn(workload, modules, cfg, backend), batches)
    first = {k: step(data[0])[0] for k, (step, data) in sides.items()}   # same start: same loss
    parts = {k: [] for k in sides}                    # {part: seconds, "step": seconds}, per call
    last = {}
    turn = 0
    for _ in range(repeats):                          # alternating as bench.alternate does: the
        for k, (step, data) in sides.items():         # first call of each block is not counted
            for i in range(block + 1):
                start = time.perf_counter()
                last[k], t = step(data[turn % len(data)])
                t["step"] = time.perf_counter() - start
                turn += 1
                if i:
                    parts[k].append(t)
    row = {"workload": workload, "variant": variant, "backend": backend, **cfg,
           "first_loss": first}
    for k in sides:
        med = {p: float(np.median([t[p] for t in parts[k]])) for p in (*PARTS, "step")}
        row[k] = {"step_ms": med["step"] * 1e3, "steps_per_s": 1.0 / med["step"],
                  "parts_ms": {p: med[p] * 1e3 for p in PARTS}, "last_loss": last[k]}
    if "torch" in sides:
        row["ratio"] = row["torch"]["step_ms"] / row["minigru"]["step_ms"]
    return row


def print_row(row, out):
    """The row as a table: a line per part, each side's median ms and share of its step."""
    sides = [k for k in ("minigru", "torch") if k in row]
    print(f"\n{row['workload']}: {row['variant']} (backend {row['backend']})"
          + (f", first loss {row['first_loss']['minigru']:.4f}"
             + (f" (PyTorch {row['first_loss']['torch']:.4f})" if "torch" in row else "")),
          file=out)
    print(f"{'part':<10} " + " ".join(f"{k + ' ms':>12} {'share':>6}" for k in sides), file=out)
    for p in PARTS:
        cells = []
        for k in sides:                               # (shares of the parts' medians' sum)
            ms = row[k]["parts_ms"][p]
            cells.append(f"{ms:>12.3f} {100 * ms / sum(row[k]['parts_ms'].values()):>5.0f}%")
        print(f"{p:<10} " + " ".join(cells), file=out)
    print(f"{'step':<10} " + " ".join(f"{row[k]['step_ms']:>12.3f} {'':>6}" for k in sides),
          file=out)
    print(f"{'steps/s':<10} " + " ".join(f"{row[k]['steps_per_s']:>12.1f} {'':>6}"
                                         for k in sides), file=out)
    if "ratio" in row:
        print(f"minigru is {row['ratio']:.2f}x PyTorch on the whole step", file=out)


def run(workload, variants, backend="numba", vs_torch=True, quick=False, out=None):
    """Each variant's row of ``workload``, each measured in a fresh process (as ``minigru
    bench`` measures everything); printed, and returned as ``{"workload": ..., "rows": [...]}``."""
    import json
    import sys

    from .bench import _simulated, in_fresh_process
    out = out or sys.stdout
    if workload not in WORKLOADS:
        raise ValueError(f"workload must be one of {sorted(WORKLOADS)}, got {workload!r}")
    if vs_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("PyTorch is not installed: timing minigru's side alone", file=out)
            vs_torch = False
    simulated = _simulated(backend)
    repeats, block = (1, 1) if simulated else (3, 3) if quick else (7, 5)
    cfg = WORKLOADS[workload]
    print(f"minigru bench --workload {workload}: "
          + ", ".join(f"{k}={v}" for k, v in cfg.items()) + f"; backend={backend}, float32",
          file=out)
    rows = []
    for variant in variants:
        row = in_fresh_process(workload_row, workload=workload, variant=variant,
                               backend=backend, repeats=repeats, block=block,
                               vs_torch=vs_torch)
        print_row(row, out)
        rows.append(row)
    result = {"workload": workload, "backend": backend, "quick": quick, "rows": rows}
    print(json.dumps(result), file=out)
    return result


def plot_rows(rows, path):
    """Stacked bars of each side's step by part, one pair per variant; written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ._io import atomic_write
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(rows), 4.2))
    labels, x = [], 0
    colours = dict(zip(PARTS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for row in rows:
        for side in ("minigru", "torch"):
            if side not in row:
                continue
            bottom = 0.0
            for p in PARTS:
                ms = row[side]["parts_ms"][p]
                ax.bar(x, ms, 0.8, bottom=bottom, color=colours[p],
                       label=p if not labels else None)
                bottom += ms
            labels.append(f"{row['variant']}\n{side}")
            x += 1
        x += 0.5
    ax.set_xticks(_tick_places(rows), labels, fontsize=8)
    ax.set(ylabel="ms per training step (medians of each part)",
           title=f"{rows[0]['workload']}: where a training step's time goes")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)


def _tick_places(rows):
    places, x = [], 0.0
    for row in rows:
        for side in ("minigru", "torch"):
            if side in row:
                places.append(x)
                x += 1
        x += 0.5
    return places
