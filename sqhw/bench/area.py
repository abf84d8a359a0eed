"""Row area: the SQ row against dense and 2:4 rows from the same generator, in one run.

Each row is synthesised alone (its weight word, scale multiply and accumulator included;
memories and the shared unpacker are outside it) with YoWASP Yosys: ECP5 LUT4/FF with
``-nodsp`` (every multiplier in LUTs: the area a DSP-less target or an ASIC pays), the DSP
count with DSPs allowed, and (with SQHW_AREA_CMOS=1, slow) a technology-neutral CMOS
transistor estimate. Rows of different bank sizes are compared **per MAC/cycle** (a row
does ``b`` MACs per cycle).

Every row uses the generator's default multiplier structure (``mults="lut"``: radix-4 Booth
rows, see ``docs/area.md``). The SQ, W8A8 and W4A8 rows are also built with DSP structures
(``"dsp"``: high-precision and scale products on MULT18X18D; ``"dsp_all"``: every product;
``"dsp_packed"``: as ``"dsp"`` with two rows' low products per DSP, measured as a pair of
rows and its shared DSPs) and reported with DSPs allowed, as LUT4 and DSP per MAC against
their own LUT row.

Activation mode (``docs/activation-mode.md``): :class:`~sqhw.gateware.actrow.ActRow` rows
W4A(SQ) and W8A(SQ) next to the dense W4A4 and W4A8 rows, and the one
:class:`~sqhw.gateware.gather.SelectGather` that an activation-mode array shares between
all its rows (reported on its own: divide by R for its share per row).
"""

import os
from concurrent.futures import ProcessPoolExecutor

from ..format import HWConfig, SQFormat, min_acc_bits
from ..synth.area import K_MAX, build_row, row_area
from .core import Row

# build_row, row_area and K_MAX live in sqhw.synth.area; they stay importable from here.
__all__ = ["run", "row_area", "build_row", "ROWS", "K_MAX"]


def _cfg(fmt: SQFormat, act_bits: int = 8) -> HWConfig:
    return HWConfig(fmt=fmt, rows=1, act_bits=act_bits, k_max=K_MAX,
                    acc_bits=min_acc_bits(fmt, act_bits, K_MAX))


#: (label, config): the SQ rows under study and the baselines, all from one generator.
ROWS = {
    "SQ B16-(8/4)-0.875": _cfg(SQFormat(16, 0.875, 8, 4)),
    "SQ B16-(8/4)-0.75": _cfg(SQFormat(16, 0.75, 8, 4)),
    "dense W8A8": _cfg(SQFormat.dense(8)),
    "dense W6A8": _cfg(SQFormat.dense(6)),
    "dense W4A8": _cfg(SQFormat.dense(4)),
    "2:4 INT8": _cfg(SQFormat.two_four(8)),
}


#: The rows built with each DSP multiplier structure (``HWConfig.mults``): W8A8's codes are
#: too wide to pack two per DSP, W4A8's have no high products for ``dsp`` to move.
DSP_ROWS = {f"{label} {mults}": (label, mults) for label, structures in (
    ("SQ B16-(8/4)-0.875", ("dsp", "dsp_all", "dsp_packed")),
    ("dense W8A8", ("dsp", "dsp_all")),
    ("dense W4A8", ("dsp_all", "dsp_packed"))) for mults in structures}

#: Activation-mode rows (label: activation format, weight bits) and their dense baselines.
ACT_FMT = SQFormat(16, 0.875, 8, 4)
ACT_ROWS = {"W4A(SQ) B16-(8/4)-0.875": (ACT_FMT, 4), "W8A(SQ) B16-(8/4)-0.875": (ACT_FMT, 8)}
ACT_BASELINES = {"dense W4A4": _cfg(SQFormat.dense(4), act_bits=4),
                 "dense W4A8": ROWS["dense W4A8"]}
GATHER = "SelectGather B16 k=2 (shared)"


def _row_area(job):
    return row_area(*job)


def run() -> list[Row]:
    jobs = {label: (cfg, "lut") for label, cfg in ROWS.items()}
    jobs.update({name: (ROWS[label], mults) for name, (label, mults) in DSP_ROWS.items()})
    jobs.update({label: (design, "lut") for label, design in ACT_ROWS.items()})
    jobs["dense W4A4"] = (ACT_BASELINES["dense W4A4"], "lut")
    jobs[GATHER] = (ACT_FMT, "lut")
    labels = list(jobs)
    with ProcessPoolExecutor(max_workers=2) as pool:
        areas = dict(zip(labels, pool.map(_row_area, [jobs[k] for k in labels]), strict=True))
    cmos = bool(os.environ.get("SQHW_AREA_CMOS"))
    print("  (-nodsp: LUT4 / CCU2C / LUT-eq = LUT4+2*CCU2C; DSPs allowed: LUT4 / CCU2C / DSP"
          + ("; CMOS transistors)" if cmos else ")"))
    for label in labels:
        a = areas[label]
        print(f"  {label:<30} {a['macs']:3d} MAC/cyc  LUT4 {a['lut4']:5d}  CCU2C {a['carry']:4d}"
              f"  LUT-eq {a['lut_eq']:5d}  FF {a['ff']:4d} | DSP-flow LUT4 {a['dsp_lut4']:5d}"
              f"  CCU2C {a['dsp_carry']:4d}  DSP {a['dsp']:3d}"
              + (f" | CMOS {a['transistors']:7d}" if cmos else ""))

    def per_mac(label, key):
        return areas[label][key] / areas[label]["macs"]

    rows = []
    targets = {"dense W8A8": 0.60, "dense W6A8": 0.85}
    for sq in ("SQ B16-(8/4)-0.875", "SQ B16-(8/4)-0.75"):
        for base in ("dense W8A8", "dense W6A8", "dense W4A8", "2:4 INT8"):
            keys = [("lut4", "LUT4"), ("lut_eq", "LUTeq")]
            if os.environ.get("SQHW_AREA_CMOS"):
                keys.append(("transistors", "T"))
            for key, unit in keys:
                target = targets.get(base) if sq.endswith("0.875") else None
                rows.append(Row(f"{sq} {unit}/MAC", per_mac(sq, key), per_mac(base, key),
                                unit, base, target=target))
    for act in ACT_ROWS:
        for base in ACT_BASELINES:
            rows.append(Row(f"{act} LUT4/MAC", per_mac(act, "lut4"), per_mac(base, "lut4"),
                            "LUT4", base))
    # Each DSP structure against the LUT Booth row of the same format (DSPs allowed: the
    # LUT4 left in the fabric, and the DSP blocks per MAC beside it).
    for name, (label, _) in DSP_ROWS.items():
        rows.append(Row(f"{name} LUT4/MAC ({per_mac(name, 'dsp'):.3f} DSP/MAC)",
                        per_mac(name, "dsp_lut4"), per_mac(label, "lut4"), "LUT4",
                        f"{label} lut"))
    return rows
