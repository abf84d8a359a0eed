"""Row area: the SQ row against dense and 2:4 rows from the same generator, in one run.

Each row is synthesised alone (its weight word, scale multiply and accumulator included;
memories and the shared unpacker are outside it) with YoWASP Yosys: ECP5 LUT4/FF with
``-nodsp`` (every multiplier in LUTs: the area a DSP-less target or an ASIC pays), the DSP
count with DSPs allowed, and a technology-neutral CMOS transistor estimate. Rows of
different bank sizes are compared **per MAC/cycle** (a row does ``b`` MACs per cycle).
"""

from concurrent.futures import ProcessPoolExecutor

from ..format import HWConfig, SQFormat, min_acc_bits
from .core import Row

__all__ = ["run", "row_area", "ROWS"]

K_MAX = 1024


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


def row_area(cfg: HWConfig) -> dict:
    """LUT4/FF (no DSP), DSP count, and CMOS transistors of one :class:`SQRow`."""
    from amaranth.back import verilog

    from ..gateware.row import SQRow
    from ..toolchain import yosys_stats

    text = verilog.convert(SQRow(cfg), name="sq_row", emit_src=False)
    lut = yosys_stats(text, "sq_row", target="ecp5", nodsp=True)
    dsp = yosys_stats(text, "sq_row", target="ecp5")
    cmos = yosys_stats(text, "sq_row", target="cmos")
    macs = cfg.fmt.bank_size
    return {"macs": macs, "lut4": lut["lut4"], "ff": lut["ff"], "carry": lut["carry"],
            "dsp": dsp["dsp"], "transistors": cmos["transistors"]}


def run() -> list[Row]:
    labels = list(ROWS)
    with ProcessPoolExecutor(max_workers=2) as pool:
        areas = dict(zip(labels, pool.map(row_area, [ROWS[k] for k in labels]), strict=True))
    for label in labels:
        a = areas[label]
        print(f"  {label:<20} {a['macs']:3d} MAC/cyc  LUT4 {a['lut4']:6d}  FF {a['ff']:5d}  "
              f"CCU2C {a['carry']:5d}  DSP {a['dsp']:3d}  CMOS {a['transistors']:8d}")

    def per_mac(label, key):
        return areas[label][key] / areas[label]["macs"]

    rows = []
    targets = {"dense W8A8": 0.60, "dense W6A8": 0.85}
    for sq in ("SQ B16-(8/4)-0.875", "SQ B16-(8/4)-0.75"):
        for base in ("dense W8A8", "dense W6A8", "dense W4A8", "2:4 INT8"):
            for key, unit in (("lut4", "LUT4"), ("transistors", "T")):
                target = targets.get(base) if sq.endswith("0.875") else None
                rows.append(Row(f"{sq} {unit}/MAC", per_mac(sq, key), per_mac(base, key),
                                unit, base, target=target))
    return rows
