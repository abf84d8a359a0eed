"""``python -m sqhw.fpga record``: whole-array builds as one table (``docs/results/fpga.json``).

Each record is one ``python -m sqhw.fpga build`` report (its ``report.json``), reduced to
the figures that compare arrays: fit, Fmax, utilisation of the device, and the effective
throughput ``R·b × clock × utilization`` where the clock is the core clock the build was
constrained to and met (no GMAC/s is given for a build that misses it) and the utilization
is the schedule model's (:func:`sqhw.golden.schedule.schedule_utilization_for`, the
datasheet's schedule, held cycle-exact against simulation) for the default job. The record
carries the command that rebuilds it and the SHA-256 of the design the build placed
(:func:`design_sha256` of its ``top.il``, the whole board top as Amaranth wrote it, without
its ``src`` attributes, which name source lines): the configuration digest names what was
asked for, this names the logic the generator made of it, so a record stays the current
gateware's until the logic changes, whatever the source edits around it.
"""

import hashlib
import json
from pathlib import Path

from ..format import HWConfig
from ..golden.schedule import DEFAULT_WORKLOAD, MODEL_NAME, schedule_utilization_for

__all__ = ["record", "rebuild_command", "write_table"]


def rebuild_command(rep: dict) -> str:
    """The ``python -m sqhw.fpga build`` command line of a build report."""
    cfg = HWConfig.from_dict(rep["config"])
    f = cfg.fmt
    args = ["python -m sqhw.fpga build", f"--board {rep['board']}", f"--rows {cfg.rows}",
            f"--bank-size {f.bank_size}", f"--sparsity {f.sparsity:g}",
            f"--high-bits {f.high_bits}", f"--low-bits {f.low_bits}",
            f"--scale-bits {f.scale_bits}", f"--act-bits {cfg.act_bits}",
            f"--k-max {cfg.k_max}", f"--acc-bits {cfg.acc_bits}", f"--mults {cfg.mults}",
            f"--tree-levels {cfg.tree_levels}", f"--freq {rep['clock']['requested_mhz']:g}",
            f"--seed {rep['seed']}"]
    return " ".join(args)


def record(rep: dict, design_sha256: str | None = None) -> dict:
    """The table record of one build report (see the module docstring)."""
    cfg = HWConfig.from_dict(rep["config"])
    util = rep["utilization"]
    fmax = min((f["achieved_mhz"] for f in rep["fmax"].values()), default=None)
    clock = rep["clock"]["core_mhz"]
    met = bool(rep["fits"] and rep["timing_met"])
    u = schedule_utilization_for(cfg, DEFAULT_WORKLOAD)
    return {
        "config": rep["name"], "act_bits": cfg.act_bits, "digest": rep["digest"],
        "rows": cfg.rows,
        "mults": cfg.mults, "tree_levels": cfg.tree_levels, "whole_array": True,
        "macs_per_cycle": cfg.macs_per_cycle,
        "lut4": util["lut4"]["used"], "ff": util["ff"]["used"], "dsp": util["dsp"]["used"],
        "bram": util["bram"]["used"], "lut4_percent": util["lut4"]["percent"],
        "fits": rep["fits"], "timing_met": rep["timing_met"],
        "fmax_mhz": fmax, "clock_mhz": clock,
        "utilization": round(u, 4), "utilization_source": MODEL_NAME,
        "gmacs": round(cfg.macs_per_cycle * clock * u / 1000, 2) if met else None,
        "build_seconds": round(rep["seconds"]["total"]),
        "verdict": rep["verdict"], "command": rebuild_command(rep),
        "design_sha256": design_sha256,
    }


def design_sha256(il_text: str) -> str:
    """SHA-256 of an RTLIL design without its ``attribute \\src`` lines (file and line
    of each object in the generator's source)."""
    kept = [line for line in il_text.splitlines() if not line.lstrip().startswith(
        "attribute \\src ")]
    return hashlib.sha256("\n".join(kept).encode()).hexdigest()


def write_table(build_dirs, out: Path) -> list[dict]:
    """Records of the builds in ``build_dirs`` (folders holding ``report.json``), merged
    into ``out`` by digest and clock (a rebuild replaces its old record)."""
    out = Path(out)
    table = json.loads(out.read_text())["builds"] if out.exists() else []
    for d in build_dirs:
        il = Path(d) / "top.il"
        sha = design_sha256(il.read_text()) if il.is_file() else None
        rec = record(json.loads((Path(d) / "report.json").read_text()), sha)
        table = [r for r in table if (r["digest"], r["clock_mhz"]) !=
                 (rec["digest"], rec["clock_mhz"])] + [rec]
    table.sort(key=lambda r: (r["config"], r["rows"], r["mults"], r["clock_mhz"]))
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"builds": table}, indent=1) + "\n")
    tmp.replace(out)
    return table
