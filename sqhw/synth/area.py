"""The area stage: one MAC row synthesised with YoWASP Yosys, three ways.

- **ECP5 without DSPs**: :func:`sqhw.bench.area.row_area` of the row with the generator's
  default multiplier structure (``mults="booth"``): LUT4, FF, CCU2C and LUT-eq
  (``synth_ecp5 -nodsp -nowidelut``, see ``docs/area.md``).
- **ECP5 with DSP inference**: :func:`sqhw.toolchain.yosys_stats` (``synth_ecp5`` without
  ``-nodsp``) of the row with every product written as a plain ``*`` (``mults="yosys"``),
  so that Yosys maps onto MULT18X18D whatever it chooses to: LUT4, FF, CCU2C and DSP count.
  (Booth rows are not ``$mul`` cells and never reach a DSP.)
- **Technology-neutral**: :func:`neutral_count` of the Booth row: Yosys's generic
  ``synth -flatten -noabc`` (coarse-grain optimisation and techmap to Yosys's internal
  one- and two-input gates, multiplexers and flip-flops; **no** ABC logic minimisation)
  and ``stat -tech cmos`` on that netlist. It is not an ASIC area; it counts every row with
  the same flow, in seconds, where the ABC-optimised CMOS estimate (``SQHW_AREA_CMOS=1``)
  takes over 10 minutes per row.
"""

import inspect
import json
import tempfile
from pathlib import Path

from ..format import SQFormat

__all__ = ["neutral_count", "run_area", "area_code_sources"]

_NEUTRAL_SCRIPT = (
    "read_verilog -sv design.v\n"
    "synth -flatten -noabc -top {top}\n"
    # stat -tech cmos only costs plain flip-flops: lower Amaranth's reset/enable
    # registers to $_DFF_P_ plus gates, as sqhw.toolchain.yosys_stats does for "cmos".
    "dfflegalize -cell $_DFF_P_ 01\n"
    "opt_clean\n"
    "tee -q -o stats.json stat -tech cmos -json\n"
)


def neutral_count(verilog: str, top: str) -> dict:
    """Generic gate count and CMOS transistor estimate of a design, without ABC.

    Parameters
    ----------
    verilog : str
        Verilog source text.
    top : str
        Top module name.

    Returns
    -------
    dict
        ``gates`` (every cell but flip-flops), ``dff``, ``transistors`` (``stat -tech
        cmos`` of the unminimised netlist; 0 if a cell had no cost) and ``cells`` (count
        by type).
    """
    from ..toolchain import run_yosys

    with tempfile.TemporaryDirectory(prefix="sqhw-neutral-") as tmp:
        (Path(tmp) / "design.v").write_text(verilog)
        run_yosys(_NEUTRAL_SCRIPT.format(top=top), tmp, expect=["stats.json"])
        design = json.loads((Path(tmp) / "stats.json").read_text())["design"]
    cells = dict(design.get("num_cells_by_type", {}))
    dff = sum(n for c, n in cells.items() if "DFF" in c)
    est = str(design.get("estimated_num_transistors", "0"))
    return {"gates": sum(cells.values()) - dff, "dff": dff,
            "transistors": int(est) if est.isdigit() else 0, "cells": cells}


def run_area(design) -> dict:
    """Area of one row (``design`` as :func:`sqhw.bench.area.row_area` takes it: an
    :class:`HWConfig`, whose ``rows`` is ignored, for an SQRow; ``(fmt, weight_bits)`` for
    an activation-mode ActRow; an :class:`SQFormat` for the shared SelectGather).

    Returns
    -------
    dict
        ``macs`` (MACs per cycle of the row = b), ``nodsp`` (``row_area(design, "booth")``:
        its ``lut4``, ``ff``, ``carry``, ``lut_eq`` are the no-DSP flow), ``dsp`` (``lut4``,
        ``ff``, ``carry``, ``dsp`` of the ``"yosys"`` row with DSPs allowed), ``neutral``
        (:func:`neutral_count` of the Booth row, without the cell list).
    """
    from amaranth.back import verilog

    from ..bench.area import build_row, row_area
    from ..toolchain import yosys_stats

    booth = row_area(design, "booth")
    mults = "booth" if isinstance(design, SQFormat) else "yosys"   # the gather has no products
    text = verilog.convert(build_row(design, mults)[0], name="sq_row", emit_src=False)
    mul = yosys_stats(text, "sq_row", target="ecp5")
    text = verilog.convert(build_row(design, "booth")[0], name="sq_row", emit_src=False)
    neutral = neutral_count(text, "sq_row")
    neutral.pop("cells")
    return {"macs": booth["macs"], "nodsp": booth,
            "dsp": {k: mul[k] for k in ("lut4", "ff", "carry", "dsp")}, "neutral": neutral}


def area_code_sources() -> str:
    """The source text the area numbers depend on besides the generator and the tools:
    the synthesis glue (part of the cache key)."""
    from ..bench import area as bench_area
    from ..toolchain import run_yosys, yosys_stats
    return "\n".join(inspect.getsource(f) for f in
                     (bench_area.row_area, bench_area.build_row, yosys_stats, run_yosys,
                      neutral_count, run_area))
