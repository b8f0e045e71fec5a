"""The ``minigru`` command (also ``python -m minigru``)."""

import argparse
import math
import sys
import time

import numpy as np

from .cell import Cell
from .cells import BACKENDS, REGISTRY, VARIANTS, BackendUnavailableError, get_variant
from ._regularise import OPTIONS as REGULARISERS
from ._regularise import check as check_regulariser
from .gradcheck import TOLERANCE, gradcheck


def _variant_list(value):
    if value == "all":
        return list(VARIANTS)
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"no variant given ({value!r}); choose 'all' or from {', '.join(REGISTRY)}")
    for name in names:
        if name not in REGISTRY:                       # the 21, and any registered ones
            raise argparse.ArgumentTypeError(
                f"unknown variant {name!r}; choose 'all' or from {', '.join(REGISTRY)}")
    return names


def _argument(convert, accept, expected):
    """An argparse type: ``convert`` the text, then ``accept`` the value, or a usage error that
    says what was expected and what was given."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


positive_int = _argument(int, lambda n: n >= 1, "a positive int")          # sizes, steps
seed_int = _argument(int, lambda n: n >= 0, "an int >= 0")                   # default_rng's
positive_float = _argument(float, lambda x: math.isfinite(x) and x > 0,     # --eps
                           "a finite number > 0")
rate = _argument(float, lambda x: 0 <= x < 1, "a rate in [0, 1)")           # --zoneout, ...


def cmd_variants(args, out):
    I, H = args.input_size, args.hidden_size
    names = list(VARIANTS) + ([v for v in REGISTRY if v not in VARIANTS] if args.cells else [])
    rows = [(v, get_variant(v).paper, get_variant(v).equations, Cell(v).num_params(I, H))
            for v in names]
    widths = [max(len(str(r[k])) for r in rows) for k in range(3)]
    header = ("variant", "paper", "equations", f"params (I={I}, H={H})")
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {:>8}"
    print(fmt.format(*header), file=out)
    for row in rows:
        print(fmt.format(*row), file=out)
    return 0


def cmd_gradcheck(args, out):
    dtype = np.dtype(args.dtype)
    Cell(args.variant[0], args.backend)               # a backend that cannot run here says so
    tol = TOLERANCE[dtype]
    asked = {k: getattr(args, k) for k in REGULARISERS if getattr(args, k)}
    print(f"gradcheck: backend={args.backend} dtype={dtype.name} T={args.steps} B={args.batch} "
          f"I={args.input_size} H={args.hidden_size}; numeric side float64 centred differences, "
          f"eps={args.eps:g}; error = max|analytic - numeric| / max|gradient|, "
          f"tolerance {tol:g}", file=out)
    if asked or args.eval:
        print(f"        {'evaluation' if args.eval else 'training'} mode"
              + "".join(f", {k}={v:g}" for k, v in asked.items())
              + (" (masks fixed: every evaluation of the loss draws the same ones)"
                 if asked else ""), file=out)
    failures, total = [], 0
    start = time.perf_counter()
    for variant in args.variant:
        options, left_out = _applicable(variant, asked)
        if left_out:
            print(f"{variant:<8} {', '.join(left_out)}: does not apply (no product with h); "
                  f"checked without", file=out)
        try:
            checks = gradcheck(variant, args.backend, dtype, input_size=args.input_size,
                               hidden_size=args.hidden_size, steps=args.steps,
                               batch=args.batch, seed=args.seed, eps=args.eps,
                               training=not args.eval, options=options)
        except NotImplementedError as e:              # a regulariser this backend lacks
            total += 1
            print(f"{variant:<8} FAIL: {e}", file=out)
            failures.append(f"{variant} (not run)")
            continue
        for c in checks:
            total += 1
            status = "ok" if c.ok else "FAIL"
            print(f"{variant:<8} {c.tensor:<6} {c.error:9.2e}  {status}", file=out)
            if not c.ok:
                failures.append(f"{variant} {c.tensor}")
    elapsed = time.perf_counter() - start
    if failures:
        print(f"FAILED: {len(failures)} of {total} tensors above tolerance {tol:g} (or not "
              f"run): " + ", ".join(failures), file=out)
        return 1
    print(f"ok: all {total} tensors of {len(args.variant)} variant(s) within {tol:g} "
          f"({elapsed:.1f} s)", file=out)
    return 0


def _applicable(variant, asked):
    """(the regularisers of ``asked`` that ``variant`` has, the names of those it has not)."""
    options, left_out = {}, []
    for key, value in asked.items():
        try:
            options[key] = check_regulariser(get_variant(variant), key, value)
        except ValueError:
            left_out.append(key)
    return options, left_out


def cmd_bench(args, out):
    from minigru.bench import plot, run

    if args.workload:
        from minigru import workloads
        result = workloads.run(args.workload, args.variant, backend=args.backend,
                               vs_torch=args.vs == "torch", quick=args.quick, out=out)
        if args.plot:
            print(f"figure: {workloads.plot_rows(result['rows'], args.plot)}", file=sys.stderr)
        return 0
    result = run(args.variant, backend=args.backend, vs_torch=args.vs == "torch",
                 quick=args.quick, compile_times=args.compile, out=out,
                 regularisers=args.regularisers)
    if args.plot:
        print(f"figure: {plot(result, args.plot)}", file=sys.stderr)
    return 0


def cmd_demo(args, out):
    import inspect

    from minigru.demos import load
    from minigru.demos._common import OPTIONS, print_result

    demo = load(args.name)
    options = {k: getattr(args, k) for k in OPTIONS}
    if args.text is not None:
        if "text" not in inspect.signature(demo.run).parameters:
            raise ValueError(f"--text is an option of the char-lm demo; {args.name} has no text "
                             f"to replace")
        options["text"] = args.text
    print_result(demo.run(**options), out)
    return 0


def cmd_race(args, out):
    from minigru.demos._common import print_result
    from minigru.demos.race import run_race

    result = run_race(args.task, args.variants, seeds=args.seeds, jobs=args.jobs,
                      engine=args.engine, scheduler=args.scheduler, backend=args.backend,
                      out=args.out, seed=args.seed, quick=args.quick, progress=args.progress)
    print_result(result, out)
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minigru", description="Gated recurrent networks from scratch: NumPy forward and "
                                    "BPTT for every GRU variant, with gradient checks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("variants", help="table of the variants: name, paper, equations, size")
    p.add_argument("--cells", action="append", metavar="FILE", help=CELLS_HELP)
    p.add_argument("--input-size", type=positive_int, default=8, help="I for the parameter count")
    p.add_argument("--hidden-size", type=positive_int, default=16,
                   help="H for the parameter count")
    p.set_defaults(func=cmd_variants)

    p = sub.add_parser("gradcheck", help="check every gradient against finite differences")
    p.add_argument("--cells", action="append", metavar="FILE", help=CELLS_HELP)
    p.add_argument("--variant", type=_variant_list, default=list(VARIANTS),
                   help="a variant, a comma-separated list, or 'all' (default)")
    p.add_argument("--backend", choices=sorted(BACKENDS), default="numpy")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="dtype of the checked backend (the numeric side is always float64)")
    p.add_argument("--steps", type=positive_int, default=5, help="sequence length T")
    p.add_argument("--batch", type=positive_int, default=2, help="batch size B")
    p.add_argument("--input-size", type=positive_int, default=3)
    p.add_argument("--hidden-size", type=positive_int, default=4)
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--eps", type=positive_float, default=1e-6, help="finite-difference step")
    for name in REGULARISERS:
        p.add_argument("--" + name.replace("_", "-"), type=rate, default=0.0, metavar="P",
                       help=f"check with {name} at rate P (the masks fixed; docs/regularisers.md)")
    p.add_argument("--eval", action="store_true",
                   help="check evaluation mode (zoneout then keeps the share P of the state)")
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("bench", help="time minigru against PyTorch and the NumPy reference")
    p.add_argument("--variant", type=_variant_list, default=["gru"],
                   help="a variant, a comma-separated list, or 'all' (default gru)")
    p.add_argument("--backend", choices=sorted(BACKENDS), default="numba")
    p.add_argument("--vs", choices=["torch", "none"], default="torch",
                   help="compare with PyTorch's CPU modules when installed (default)")
    p.add_argument("--quick", action="store_true", help="fewer sizes and repetitions")
    p.add_argument("--compile", action="store_true",
                   help="also measure each variant's cold compile time (fresh processes)")
    p.add_argument("--plot", metavar="PNG", help="also draw the ratios into this PNG file")
    p.add_argument("--regularisers", action="store_true",
                   help="also measure what each regulariser costs the training step")
    p.add_argument("--workload", choices=["bytelm", "music"],
                   help="instead, train a whole model (a byte-level LM, or piano rolls) "
                        "against the same model in PyTorch, part by part")
    p.set_defaults(func=cmd_bench)

    from minigru.demos import DEMOS, TASKS
    from minigru.demos._common import add_options

    p = sub.add_parser("demo", help="run a demo: figures under --out, a JSON line of metrics")
    p.add_argument("name", choices=list(DEMOS), metavar="NAME",
                   help="one of: " + ", ".join(DEMOS))
    add_options(p)
    p.add_argument("--text", metavar="FILE",
                   help="char-lm: train on this UTF-8 text instead of the King James Bible")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("race", help="train variants on the same task and compare them")
    p.add_argument("--task", choices=list(TASKS), required=True,
                   help="one of: " + ", ".join(TASKS))
    p.add_argument("--variants", type=_variant_list, required=True,
                   help="comma-separated variants, or 'all'")
    p.add_argument("--seeds", type=int, default=1,
                   help="seeds per variant, --seed, --seed + 1, ... (default 1): the table "
                        "gives mean ± std over them")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs in parallel: processes here (joblib), or at most this many in "
                        "flight on a dask cluster (default: 1 here, every worker on dask)")
    p.add_argument("--engine", choices=["joblib", "dask"], default="joblib",
                   help="joblib: processes on this machine (default); dask: a Dask cluster")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="the Dask scheduler's address, e.g. tcp://10.0.0.5:8786 (--engine dask)")
    add_options(p)
    p.set_defaults(func=cmd_race)
    return parser


CELLS_HELP = ("a Python file (or module) that registers cells of your own with "
              "mg.cells.register (docs/custom-cells.md); may be given more than once")


def load_cells(spec):
    """Run a file, or import a module, that registers cells (``--cells``)."""
    import importlib
    import os
    import runpy
    if spec.endswith(".py") or os.path.sep in spec:
        if not os.path.isfile(spec):
            raise argparse.ArgumentTypeError(f"--cells: no such file {spec!r}")
        runpy.run_path(spec, run_name="__minigru_cells__")
    else:
        importlib.import_module(spec)


def main(argv=None, out=None):
    out = out or sys.stdout
    argv = sys.argv[1:] if argv is None else list(argv)
    # the cells first: --variant names them, and is checked as it is parsed
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--cells", action="append", default=[])
    for spec in pre.parse_known_args(argv)[0].cells:
        try:
            load_cells(spec)
        except (argparse.ArgumentTypeError, ImportError, ValueError, TypeError) as e:
            print(f"minigru: error: --cells {spec}: {e}", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    try:
        return args.func(args, out)
    except (ValueError, TypeError, NotImplementedError, ImportError, BackendUnavailableError,
            OSError) as e:
        print(f"minigru {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `minigru variants | head`: the reader has all it wanted
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
