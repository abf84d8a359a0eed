"""``python -m sqhw.host``: talk to a board built by ``python -m sqhw.fpga build``.

- ``status``: the core's sticky error bits, the link's error count and the config digest;
- ``matmul``: a random ``[M, K] @ [K, N]`` product on the board, checked bit-exactly against
  the golden model (:func:`sqhw.golden.hw_matmul`) and compared with the float product.

The format options are those of ``python -m sqhw.gen`` (:mod:`sqhw.cli`) and must match the
bitstream's (the digest is checked before anything is sent).
"""

import argparse
import sys

from ..cli import Parser, config_from_args, config_parser
from ..format import Status
from ..link import protocol as P

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m sqhw.host", description=(
        "Host driver of the UART link (docs/host-link.md)."))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
    common.add_argument("--baud", type=int, default=115200,
                        help="baud rate the bitstream was built for (default: %(default)s)")
    common.add_argument("--reply-timeout", type=float, default=2.0,
                        help="seconds to wait for each reply (default: %(default)s)")
    for name, text in (("status", "read the STATUS frame"),
                       ("matmul", "run a random matrix product and check it")):
        s = sub.add_parser(name, parents=[config_parser(), common], conflict_handler="resolve",
                           help=text, description=text)
        s.add_argument("--rows", type=int, required=True,
                       help="rows of the bitstream's core, 1..256")
        if name == "matmul":
            s.add_argument("--m", type=int, default=4, help="tokens (default: %(default)s)")
            s.add_argument("--k", type=int, default=None,
                           help="reduction length, a multiple of the bank size up to --k-max "
                           "(default: --k-max)")
            s.add_argument("--n", type=int, default=None,
                           help="output columns (default: 2 x --rows)")
            s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    if args.command == "matmul":                  # the job, checked before the port opens
        b = cfg.fmt.bank_size
        if args.k is not None and not (0 < args.k <= cfg.k_max and args.k % b == 0):
            parser.error(f"--k must be a positive multiple of the bank size {b} up to "
                         f"--k-max {cfg.k_max}, not {args.k}")
        if args.m < 1:
            parser.error(f"--m must be at least 1, not {args.m}")
        if args.n is not None and args.n < 1:
            parser.error(f"--n must be at least 1, not {args.n}")
    from .driver import Device, SerialTransport, matmul
    try:
        transport = SerialTransport(args.port, args.baud)
    except Exception as e:  # serial.SerialException and OSError
        print(f"python -m sqhw.host: cannot open {args.port}: {e}", file=sys.stderr)
        return 1
    device = Device(transport, cfg, reply_timeout=args.reply_timeout)
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
