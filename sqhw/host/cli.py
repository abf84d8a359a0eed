"""``python -m sqhw.host``: talk to a board built by ``python -m sqhw.fpga build``, or to the
simulated board (``--port sim``).

- ``status``: the core's sticky error bits, the link's error count and the config digest;
- ``matmul``: a random ``[M, K] @ [K, N]`` product on the board, checked bit-exactly against
  the golden model (:func:`sqhw.golden.hw_matmul`) and compared with the float product.

The configuration comes from ``--build DIR`` (the ``report.json`` of the bitstream's build,
:func:`sqhw.host.driver.read_build`), or from the format options of ``python -m sqhw.gen``
(:mod:`sqhw.cli`), which must then match the bitstream's (the digest is checked before
anything is sent). ``--port sim`` runs the Verilator model of the board's core and UART link
(:mod:`sqhw.sim.board`), compiled on first use into ``build/board-sim/``.
"""

import argparse
import sys

from ..cli import Parser, config_from_args, config_parser, terminate_as_interrupt
from ..format import Status
from ..link import protocol as P

__all__ = ["main"]

#: ``--port`` value that selects the simulated board.
SIM_PORT = "sim"
#: Seconds to wait for each reply (``--reply-timeout``): a board answers within
#: milliseconds; the simulated board's model runs far slower than the hardware.
REPLY_TIMEOUT = {"serial": 2.0, "sim": 30.0}


def _say(line: str) -> None:
    print(f"[sqhw.host] {line}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m sqhw.host", description=(
        "Host driver of the UART link (docs/host-link.md): a board over a serial port, or "
        "the simulated board (--port sim)."))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--port", required=True,
                        help="serial port of the board, e.g. /dev/ttyUSB0; or 'sim': the "
                        "simulated board, the Verilator model of the board top's core and UART "
                        "link (compiled on first use of a configuration into build/board-sim/, "
                        "a minute or more; needs a C++ compiler)")
    common.add_argument("--build", metavar="DIR", default=None,
                        help="a bitstream build folder written by python -m sqhw.fpga build: "
                        "the configuration, baud rate and link timeout are read from its "
                        "report.json, so they match the board (the format options and --rows "
                        "are then not given)")
    common.add_argument("--baud", type=int, default=None,
                        help="baud rate the bitstream was built for (default: the --build "
                        "folder's, else 115200; the simulated board ignores it)")
    common.add_argument("--reply-timeout", type=float, default=None,
                        help=f"seconds to wait for each reply (default: "
                        f"{REPLY_TIMEOUT['serial']:g}, {REPLY_TIMEOUT['sim']:g} with --port sim)")
    for name, text in (("status", "read the STATUS frame"),
                       ("matmul", "run a random matrix product and check it")):
        s = sub.add_parser(name, parents=[config_parser(outputs=False), common],
                           conflict_handler="resolve", help=text, description=text)
        s.add_argument("--rows", type=int, default=None,
                       help="rows of the bitstream's core, 1..256 (required unless --build)")
        if name == "matmul":
            s.add_argument("--m", type=int, default=4, help="tokens (default: %(default)s)")
            s.add_argument("--k", type=int, default=None,
                           help="reduction length, a multiple of the bank size up to --k-max "
                           "(default: --k-max)")
            s.add_argument("--n", type=int, default=None,
                           help="output columns (default: 2 x --rows)")
            s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    return p


def _config_flags_given(parser: argparse.ArgumentParser, args) -> list[str]:
    """The configuration options whose value is not their default (so they were given)."""
    defaults = parser.parse_args([args.command, "--port", args.port])
    return [a.option_strings[0] for a in config_parser(outputs=False)._actions
            if a.option_strings and a.dest != "help"
            and getattr(args, a.dest) != getattr(defaults, a.dest)]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    sim = args.port == SIM_PORT
    build = None
    if args.build is not None:
        from .driver import read_build
        given = _config_flags_given(parser, args)
        if given:
            parser.error(f"--build gives the configuration; drop {', '.join(given)}")
        try:
            build = read_build(args.build)
        except ValueError as e:
            parser.error(str(e))
        cfg = build.cfg
    else:
        if args.rows is None:
            parser.error("give --rows (the bitstream's), or --build DIR to read the "
                         "configuration from the bitstream's build folder")
        try:
            cfg = config_from_args(args)
        except (ValueError, TypeError) as e:
            parser.error(str(e))
    try:
        P.check_config(cfg)
    except ValueError as e:
        parser.error(str(e))
    if args.baud is not None and args.baud <= 0:
        parser.error(f"--baud must be positive, not {args.baud}")
    if args.reply_timeout is not None and not args.reply_timeout > 0:
        parser.error(f"--reply-timeout must be positive, not {args.reply_timeout}")
    if args.command == "matmul":                  # the job, checked before the port opens
        b = cfg.fmt.bank_size
        if args.k is not None and not (0 < args.k <= cfg.k_max and args.k % b == 0):
            parser.error(f"--k must be a positive multiple of the bank size {b} up to "
                         f"--k-max {cfg.k_max}, not {args.k}")
        if args.m < 1:
            parser.error(f"--m must be at least 1, not {args.m}")
        if args.n is not None and args.n < 1:
            parser.error(f"--n must be at least 1, not {args.n}")
    try:
        with terminate_as_interrupt():          # the simulator child is ended on any exit
            return _run(args, cfg, build, sim)
    except KeyboardInterrupt:
        print("python -m sqhw.host: interrupted", file=sys.stderr)
        return 130


def _open(args, cfg, build, sim):
    """The transport, or an exit code and its one line."""
    from ..toolchain import ToolError
    if sim:
        from ..sim.board import open_board
        try:
            return open_board(cfg, timeout_bits=None if build is None else build.timeout_bits,
                              progress=_say)
        except (ToolError, RuntimeError, OSError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"python -m sqhw.host: cannot start the simulated board: {first}",
                  file=sys.stderr)
            return 1
    from .driver import SerialTransport
    baud = args.baud if args.baud is not None else (build.baud if build else 115200)
    try:
        return SerialTransport(args.port, baud)
    except Exception as e:  # serial.SerialException and OSError
        print(f"python -m sqhw.host: cannot open {args.port}: {e}", file=sys.stderr)
        return 1


def _run(args, cfg, build, sim) -> int:
    transport = _open(args, cfg, build, sim)
    if isinstance(transport, int):
        return transport
    from .driver import Device, matmul
    timeout = args.reply_timeout if args.reply_timeout is not None else \
        REPLY_TIMEOUT["sim" if sim else "serial"]
    device = Device(transport, cfg, reply_timeout=timeout)
    try:
        st = device.check_config()
        if args.command == "status":
            print(f"core status 0b{st.core:04b} ({Status(st.core).describe()}), link errors "
                  f"{st.link_errors}, config {st.digest}")
            return 0
        import torch

        from ..golden import hw_matmul
        k = args.k if args.k is not None else cfg.k_max
        n = args.n if args.n is not None else 2 * cfg.rows
        g = torch.Generator().manual_seed(args.seed)
        w = torch.randn(k, n, generator=g)
        x = torch.randn(args.m, k, generator=g)
        y, acc, job = matmul(device, w, x)
        exact = hw_matmul(job.x_int, job.sq, cfg.act_bits, cfg.acc_bits)[:, :n]
        if not torch.equal(acc, exact):
            print("python -m sqhw.host: MISMATCH between the board and the golden model",
                  file=sys.stderr)
            return 1
        ref = x @ w
        rel = ((y - ref).norm() / ref.norm()).item()
        print(f"{args.m}x{k} @ {k}x{n}: {acc.numel()} results bit-exact vs hw_matmul; "
              f"relative error vs float {rel:.4f}")
        return 0
    except (P.LinkError, ValueError) as e:
        print(f"python -m sqhw.host: {e}", file=sys.stderr)
        return 1
    finally:
        transport.close()
