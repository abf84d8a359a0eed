"""``python -m sqhw.fpga build``: the board bitstream of one configuration, with a report.

The format options are those of ``python -m sqhw.gen`` (:func:`sqhw.cli.config_parser` is
the parent of this parser and :func:`sqhw.cli.config_from_args` builds the config), so a
digest means the same thing here.
"""

import argparse
import sys
from pathlib import Path

from ..cli import Parser, config_from_args, config_parser, terminate_as_interrupt
from ..toolchain import ToolError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from ..synth.fit import BUDGETS
    from .boards import BOARDS
    from .link import DEFAULT_TIMEOUT_BITS
    p = Parser(prog="python -m sqhw.fpga", description=(
        "FPGA builds of the SQ-format core behind a UART host link (docs/fpga.md)."))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    b = sub.add_parser(
        "build", parents=[config_parser()], conflict_handler="resolve",
        help="synthesise, place and route one configuration for one board",
        description="Build the board top (PLL, UART host link, core) with Yosys and nextpnr "
        "from YoWASP. Writes build/fpga/<board>-<digest>/ with the bitstream, report.json "
        "and report.md. Exits 1 if the design does not fit or misses timing, 2 on bad usage.")
    b.add_argument("--board", default=None, choices=BOARDS,
                   help="target board: " + ", ".join(
                       f"{n} ({bd.family}, {bd.clk_in_hz / 1e6:g} MHz oscillator, default "
                       f"core clock {bd.default_hz / 1e6:g} MHz)" for n, bd in BOARDS.items()))
    b.add_argument("--rows", type=int, default=None,
                   help="output columns computed in parallel, 1..256 (required unless --fit: "
                   "the array size decides whether the design fits)")
    b.add_argument("--fit", metavar="BOARD", choices=BUDGETS, default=None,
                   help="instead of --rows, build the largest array that fits BOARD's LUT, "
                   "DSP and block-RAM budget with a margin (" + ", ".join(BUDGETS) + "; it "
                   "is also the --board); prints the plan first")
    b.add_argument("--freq", type=float, default=None, metavar="MHZ",
                   help="core clock to ask the PLL for, in MHz (default: the board's)")
    b.add_argument("--baud", type=int, default=115200,
                   help="UART baud rate (default: %(default)s)")
    b.add_argument("--timeout-bits", type=int, default=DEFAULT_TIMEOUT_BITS,
                   help="bit times of silence that end a truncated frame "
                   "(default: %(default)s)")
    b.add_argument("--no-dsp", action="store_true",
                   help="keep multipliers in LUTs instead of DSP blocks (the UP5K has 8)")
    b.add_argument("--seed", type=int, default=1,
                   help="nextpnr placement seed (default: %(default)s)")
    b.add_argument("--out", type=Path, default=None,
                   help="output folder (default: build/fpga/<board>-<config digest>)")
    r = sub.add_parser(
        "record", help="add finished builds to the whole-array table (docs/results/fpga.json)",
        description="Reduce build reports (BUILD_DIR/report.json) to the whole-array table: "
        "fit, Fmax, utilisation, GMAC/s at the met clock, and the command that rebuilds each.")
    r.add_argument("builds", nargs="+", type=Path, metavar="BUILD_DIR",
                   help="folders written by python -m sqhw.fpga build")
    r.add_argument("--table", type=Path, default=Path("docs/results/fpga.json"),
                   help="the table to update (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        with terminate_as_interrupt():
            return _main(argv)
    except KeyboardInterrupt:
        # build() has stopped the running tool and removed its temporary folder.
        print("python -m sqhw.fpga: interrupted; no partial output left", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "record":
        from .results import write_table
        missing = [str(d) for d in args.builds if not (d / "report.json").is_file()]
        if missing:
            parser.error(f"no report.json in {', '.join(missing)}; give folders written by "
                         "python -m sqhw.fpga build")
        for rec in write_table(args.builds, args.table):
            print(f"{rec['config']} x{rec['rows']} {rec['mults']}: {rec['verdict']}")
        return 0
    if (args.rows is None) == (args.fit is None):
        parser.error("give exactly one of --rows N and --fit BOARD")
    if args.fit is not None:
        if args.board not in (None, args.fit):
            parser.error(f"--fit {args.fit} and --board {args.board} name different boards")
        args.board, args.rows = args.fit, 1
    if args.board is None:
        parser.error("the following arguments are required: --board")
    try:
        cfg = config_from_args(args)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    if args.fit is not None:
        from ..synth.fit import fitted
        try:
            cfg = fitted(cfg, args.fit, lambda msg: print(msg, file=sys.stderr))
        except ValueError as e:
            parser.error(str(e))
    if args.print_config:
        import json
        print(json.dumps({"digest": cfg.digest(), "config": cfg.to_dict()}))
        return 0
    from .build import BuildFailed, build
    try:
        build(cfg, args.board, freq_hz=None if args.freq is None else args.freq * 1e6,
              baud=args.baud, out=args.out, seed=args.seed, timeout_bits=args.timeout_bits,
              nodsp=args.no_dsp)
    except ValueError as e:
        parser.error(str(e))
    except BuildFailed as e:
        print(f"python -m sqhw.fpga: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"python -m sqhw.fpga: cannot write {e.filename or args.out}: "
              f"{e.strerror or e}", file=sys.stderr)
        return 1
    except ToolError as e:
        first = str(e).splitlines()[0]
        print(f"python -m sqhw.fpga: {first}", file=sys.stderr)
        print(str(e), file=sys.stderr)
        return 1
    return 0
