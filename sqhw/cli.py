"""Command-line pieces every tool shares: the configuration flags, the one way to turn them
into an :class:`~sqhw.format.HWConfig`, a parser whose usage errors exit with code 2, and
the "no partial output" folder swap.

``python -m sqhw.gen``, ``python -m sqhw.fpga build`` and ``python -m sqhw.host`` take the
same configuration flags from :func:`config_parser`, so a digest means the same thing in each.
"""

import argparse
import contextlib
import os
import shutil
import signal
import threading
from pathlib import Path

from .format import MULTS, WEIGHT_BITS, HWConfig, SQFormat, act_min_acc_bits, min_acc_bits

__all__ = ["Parser", "config_parser", "config_from_args", "PRESETS", "DEFAULT", "replace_dir",
           "out_problem", "STAMP", "signals_deferred", "terminate_as_interrupt"]

DEFAULT = HWConfig()
#: ``--format`` presets: name -> the description ``--help`` shows. :func:`config_from_args`
#: turns a preset and the format flags into an :class:`SQFormat`.
PRESETS = {
    "sq": "SQ-format from --bank-size/--sparsity/--high-bits/--low-bits (default)",
    "w8a8": "dense INT8 weights (k = 0)",
    "w6a8": "dense INT6 weights (k = 0)",
    "w4a8": "dense INT4 weights (k = 0)",
    "w4a4": "dense INT4 weights, INT4 activations",
    "2:4": "2:4 sparsity, INT --high-bits values (b = 4, s = 0.5, no low part)",
}
_SQ_ONLY = ("sparsity", "low_bits")
#: ``--format`` presets that name an SQ format of the activations in activation mode (the
#: dense ones describe weight mode's weights and do not apply).
_ACT_PRESETS = ("sq", "2:4")


class Parser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose usage errors are one line on stderr that
    says what is wrong and points at ``--help``, with exit code 2."""

    def error(self, message):
        # One line that says what is wrong and what to do; exit code 2 for bad usage.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def config_parser(prog: str | None = None, description: str | None = None, *,
                  outputs: bool = True) -> Parser:
    """A :class:`Parser` with the configuration flags (``--rows``, ``--format``, the format
    fields, ``--operand``, ``--k-max``, ``--acc-bits``), ``--out`` and ``--print-config``.

    ``python -m sqhw.gen`` is this parser; ``sqhw.fpga`` and ``sqhw.host`` use it as a parent
    (``parents=[config_parser()], conflict_handler="resolve"``) and override the options they
    word differently, so a configuration digest means the same thing in every tool. Build
    the configuration from the parsed arguments with :func:`config_from_args`.
    ``outputs=False`` leaves out ``--out`` and ``--print-config`` (the host writes nothing).
    """
    f = DEFAULT.fmt
    p = Parser(prog=prog, description=description)
    p.add_argument("--rows", type=int, default=DEFAULT.rows,
                   help="output columns computed in parallel, 1..256 (default: %(default)s)")
    p.add_argument("--format", choices=PRESETS, default="sq", dest="preset", type=str.lower,
                   help="weight format: " + "; ".join(f"{k}: {v}" for k, v in PRESETS.items())
                   + " (default: %(default)s)")
    p.add_argument("--bank-size", type=int, default=None,
                   help=f"elements per bank, a power of two in 4..128 (default: {f.bank_size}; "
                   "4 for 2:4)")
    p.add_argument("--sparsity", type=float, default=None,
                   help=f"fraction of each bank in low precision, (0, 1], (1-s)*b integer "
                   f"(default: {f.sparsity}; sq only)")
    p.add_argument("--high-bits", type=int, default=None,
                   help=f"high-precision element bits, 2..8 (default: {f.high_bits})")
    p.add_argument("--low-bits", type=int, default=None,
                   help=f"low-precision element bits, 0 or 2..8, below --high-bits "
                   f"(default: {f.low_bits}; sq only)")
    p.add_argument("--scale-bits", type=int, default=f.scale_bits,
                   help="bits of a per-bank scale code, 2..16 (default: %(default)s)")
    p.add_argument("--act-bits", type=int, default=None,
                   help=f"activation bits, 2..8 (default: {DEFAULT.act_bits}; 4 for w4a4)")
    p.add_argument("--operand", choices=("weight", "activation"), default=DEFAULT.operand,
                   help="which operand is in SQ format: weight (the weights, INT --act-bits "
                   "activations) or activation (the activations with a static mask, dense "
                   "INT --weight-bits weights; docs/activation-mode.md) (default: %(default)s)")
    p.add_argument("--weight-bits", type=int, default=None,
                   help="dense weight bits of --operand activation, 4 or 8 (default: 8)")
    p.add_argument("--k-max", type=int, default=DEFAULT.k_max,
                   help="largest K of a weight tile, a multiple of the bank size "
                   "(default: %(default)s)")
    p.add_argument("--acc-bits", type=int, default=None,
                   help="accumulator and result bits, 8..64; must hold the worst case of "
                   "--k-max (default: the narrowest whole number of bytes that does, "
                   f"{DEFAULT.acc_bits} for the default format)")
    p.add_argument("--mults", choices=MULTS, default=DEFAULT.mults,
                   help="where the products are built: lut (every product in LUTs), dsp (the "
                   "high-precision and scale products on DSP blocks), dsp_all (every product "
                   "on a DSP block), dsp_packed (as dsp, and the low products of two neighbouring "
                   "rows two per DSP block; needs --act-bits + 2*--low-bits + 1 <= 18), auto "
                   "(--dsp-rows rows as dsp_packed when the format packs, else dsp_all; the "
                   "rest as lut) "
                   "(default: %(default)s)")
    p.add_argument("--dsp-rows", type=int, default=DEFAULT.dsp_rows,
                   help="with --mults auto: rows built on DSP blocks, 0..--rows "
                   "(default: %(default)s)")
    p.add_argument("--tree-levels", type=int, default=DEFAULT.tree_levels,
                   help="adder-tree levels between pipeline registers, 1..4: fewer is a "
                   "faster clock and a longer latency (default: %(default)s)")
    if outputs:
        p.add_argument("--out", type=Path, default=None,
                       help="output folder (default: rtl_out/<config digest>)")
        p.add_argument("--print-config", action="store_true",
                       help="print the config JSON and its digest, write nothing")
    return p


def config_from_args(args: argparse.Namespace) -> HWConfig:
    """Build the one :class:`HWConfig` from parsed arguments (raises ValueError/TypeError)."""
    preset = args.preset
    operand = args.operand
    if operand == "activation" and preset not in _ACT_PRESETS:
        raise ValueError(f"--format {preset} does not apply to --operand activation (the "
                         f"format is the activations'); use --format sq or 2:4")
    if operand != "activation" and args.weight_bits is not None:
        raise ValueError("--weight-bits applies to --operand activation only; drop it or "
                         "add --operand activation")
    weight_bits = args.weight_bits if args.weight_bits is not None else 8
    if operand == "activation" and weight_bits not in WEIGHT_BITS:
        raise ValueError(f"--weight-bits must be {' or '.join(map(str, WEIGHT_BITS))}, "
                         f"not {weight_bits}")
    if preset != "sq":
        given = [f"--{n.replace('_', '-')}" for n in _SQ_ONLY if getattr(args, n) is not None]
        if given:
            raise ValueError(f"{', '.join(given)} does not apply to --format {preset}; "
                             f"use --format sq")
    act_bits = args.act_bits if args.act_bits is not None else (
        4 if preset == "w4a4" else DEFAULT.act_bits)
    high = args.high_bits if args.high_bits is not None else DEFAULT.fmt.high_bits
    bank = args.bank_size
    if preset == "2:4":
        if bank not in (None, 4):
            raise ValueError(f"--bank-size must be 4 for --format 2:4, not {bank}")
        fmt = SQFormat.two_four(high, scale_bits=args.scale_bits)
    elif preset == "sq":
        d = DEFAULT.fmt
        fmt = SQFormat(
            bank_size=bank if bank is not None else d.bank_size,
            sparsity=args.sparsity if args.sparsity is not None else d.sparsity,
            high_bits=high,
            low_bits=args.low_bits if args.low_bits is not None else d.low_bits,
            scale_bits=args.scale_bits)
    else:
        bits = int(preset[1])
        fmt = SQFormat.dense(bits, bank if bank is not None else DEFAULT.fmt.bank_size,
                             scale_bits=args.scale_bits)
    acc_bits = args.acc_bits
    if acc_bits is None:
        acc_bits = (act_min_acc_bits(fmt, weight_bits, args.k_max) if operand == "activation"
                    else min_acc_bits(fmt, act_bits, args.k_max))
    return HWConfig(fmt=fmt, rows=args.rows, act_bits=act_bits, k_max=args.k_max,
                    acc_bits=acc_bits, operand=operand, weight_bits=weight_bits,
                    mults=args.mults, tree_levels=args.tree_levels, dsp_rows=args.dsp_rows)



#: The file every output folder of an sqhw tool holds: the tool's name. A folder without it
#: (or of another tool) is the user's, and no tool writes into it or replaces it.
STAMP = ".sqhw-output"


def out_problem(out: Path, tool: str) -> str | None:
    """Why ``tool`` may not write its output folder ``out``, or None if it may: ``out``
    does not exist, is an empty folder, or is a previous output of ``tool`` (its
    :data:`STAMP` names it), and its nearest existing ancestor is a writable folder."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            return f"{out} is not a folder; give a new folder (or a previous {tool} output)"
        stamp = out / STAMP
        mine = stamp.is_file() and stamp.read_text().split()[:1] == [tool]
        try:
            empty = not any(out.iterdir())
        except OSError as e:
            return f"{out} cannot be read ({e.strerror or e})"
        if not (mine or empty):
            return (f"{out} is a folder that sqhw {tool} did not write; it is left alone: give "
                    f"a new or empty folder")
    anchor = out.parent                 # where the folder is created or renamed
    while not anchor.exists():
        anchor = anchor.parent
    if not anchor.is_dir():
        return f"{anchor} is not a folder"
    if not os.access(anchor, os.W_OK | os.X_OK):
        return f"{anchor} is not writable"
    return None


#: The signals that end a tool run from outside: Ctrl-C, ``kill``, a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def signals_deferred(signums=STOP_SIGNALS):
    """Hold back :data:`STOP_SIGNALS` for the ``with`` block, then act on the first one that
    came (Ctrl-C raises KeyboardInterrupt there): a few renames that must not be cut in
    half. Outside the main thread (where no signal handler runs) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got = []
    saved = {s: signal.signal(s, lambda n, _frame: got.append(n)) for s in signums}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        if got:
            handler = saved[got[0]]
            if callable(handler):
                handler(got[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(got[0])


@contextlib.contextmanager
def terminate_as_interrupt():
    """For the ``with`` block, make SIGTERM and SIGHUP raise KeyboardInterrupt, like Ctrl-C,
    so a tool killed from outside runs its cleanup (its temporary folder removed, its child
    tools stopped); the previous handlers come back after. Outside the main thread it does
    nothing."""
    def interrupt(_signum, _frame):
        raise KeyboardInterrupt
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def replace_dir(tmp: Path, out: Path, tool: str) -> None:
    """Stamp the finished folder ``tmp`` as ``tool``'s output and move it to ``out``,
    replacing a previous output of ``tool`` there whole (checked again here: a folder
    that is not one is never touched).

    The swap (previous output aside, ``tmp`` into place, previous output removed) runs with
    Ctrl-C held back (:func:`signals_deferred`), so an interrupt never leaves ``out``
    missing or a hidden ``.<name>.old.<pid>`` folder behind; a failed rename puts the
    previous output back.

    Raises
    ------
    ValueError
        If :func:`out_problem` finds ``out`` is not ``tool``'s to replace.
    """
    if (why := out_problem(out, tool)) is not None:
        raise ValueError(why)
    (tmp / STAMP).write_text(f"{tool}\n")
    with signals_deferred():
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old.{os.getpid()}")
            out.rename(old)
        try:
            tmp.rename(out)
        except BaseException:
            if old is not None:
                old.rename(out)
            raise
        if old is not None:
            shutil.rmtree(old)
