"""Area measurement: one MAC row (or the shared gather) synthesised with YoWASP Yosys.

- :func:`build_row` makes the component of a design (an SQRow, an activation-mode ActRow,
  or the SelectGather), :func:`row_area` synthesises it for ECP5 without DSPs, with DSPs,
  and (``SQHW_AREA_CMOS=1``, slow) a CMOS transistor estimate. ``python -m sqhw.bench
  area`` compares rows with it; the report's area stage uses it through :func:`run_area`.

The report's area stage, :func:`run_area`, measures one row three ways:

- **ECP5 without DSPs**: :func:`row_area` of the row with the generator's
  default multiplier structure (``mults="lut"``, Booth rows): LUT4, FF, CCU2C and LUT-eq
  (``synth_ecp5 -nodsp -nowidelut``, see ``docs/area.md``).
- **ECP5 with DSPs**: :func:`sqhw.toolchain.yosys_stats` (``synth_ecp5`` without
  ``-nodsp``) of the row with every product on a registered multiplier
  (``mults="dsp_all"``, a plain ``*`` that Yosys maps onto MULT18X18D): LUT4, FF, CCU2C and
  DSP count. (Booth rows are not ``$mul`` cells and never reach a DSP.)
- **Technology-neutral**: :func:`neutral_count` of the Booth row: Yosys's generic
  ``synth -flatten -noabc`` (coarse-grain optimisation and techmap to Yosys's internal
  one- and two-input gates, multiplexers and flip-flops; **no** ABC logic minimisation)
  and ``stat -tech cmos`` on that netlist (the script is
  :func:`sqhw.toolchain.yosys.cmos_script`, shared with ``yosys_stats(target="cmos")``).
  It is not an ASIC area; it counts every row with the same flow, in seconds, where the
  ABC-optimised CMOS estimate (``SQHW_AREA_CMOS=1``) takes over 10 minutes per row.
"""

import inspect
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from ..format import HWConfig, SQFormat, act_min_acc_bits
from ..toolchain.yosys import cmos_script, run_yosys, yosys_stats

__all__ = ["K_MAX", "build_row", "row_area", "neutral_count", "run_area", "area_code_sources"]

#: Depth (``k_max``) of every row measured for area: the bench's rows and the report's.
K_MAX = 1024


def build_row(design, mults: str):
    """``(component, MACs per cycle)`` for a job: an :class:`HWConfig` (an SQRow), a
    ``(fmt, weight_bits)`` pair (an ActRow) or an :class:`SQFormat` (the SelectGather of
    8-bit activations, 0 MACs); ``mults`` (one of :data:`~sqhw.format.MULTS`) replaces the
    configuration's multiplier structure."""
    # Amaranth and the gateware load on first use: K_MAX and the report's configuration
    # parsing import this module and stay light.
    from ..gateware.actrow import ActRow
    from ..gateware.gather import SelectGather
    from ..gateware.row import SQRow
    if isinstance(design, HWConfig) and mults == "dsp_packed":
        return _packed_pair(replace(design, rows=2, mults=mults)), 2 * design.fmt.bank_size
    if isinstance(design, HWConfig):
        return SQRow(replace(design, mults=mults)), design.fmt.bank_size
    if isinstance(design, SQFormat):
        return SelectGather(design, 8), 0
    fmt, weight_bits = design
    cfg = HWConfig(fmt=fmt, k_max=K_MAX, operand="activation", weight_bits=weight_bits,
                   acc_bits=act_min_acc_bits(fmt, weight_bits, K_MAX), mults=mults)
    return ActRow(cfg), fmt.bank_size


def _packed_pair(cfg: HWConfig):
    """Two SQRows and the :class:`~sqhw.gateware.row.PackedLowPair` they share: the unit a
    ``mults="dsp_packed"`` row is measured as (its cost per MAC is the pair's over 2b)."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from ..gateware.row import PackedLowPair, SQRow

    rows = [SQRow(cfg, row=r) for r in range(2)]
    ports = {"act": In(rows[0].act.shape())}
    for r, row in enumerate(rows):
        ports.update({f"valid{r}": In(1), f"first{r}": In(1), f"last{r}": In(1),
                      f"w{r}": In(row.w.shape()), f"o_valid{r}": Out(1),
                      f"result{r}": Out(row.result.shape())})

    class Pair(wiring.Component):
        def elaborate(self, platform):
            m = Module()
            m.submodules.pair = pair = PackedLowPair(cfg)
            m.d.comb += pair.act.eq(self.act)
            for r, row in enumerate(rows):
                m.submodules[f"row{r}"] = row
                m.d.comb += [row.act.eq(self.act), row.w.eq(getattr(self, f"w{r}")),
                             row.valid.eq(getattr(self, f"valid{r}")),
                             row.first.eq(getattr(self, f"first{r}")),
                             row.last.eq(getattr(self, f"last{r}")),
                             getattr(pair, f"low{r}").eq(row.w.low),
                             row.p_low.eq(getattr(pair, f"p{r}")),
                             getattr(self, f"o_valid{r}").eq(row.o_valid),
                             getattr(self, f"result{r}").eq(row.result)]
            return m

    return Pair(ports)


def row_area(design, mults: str = "lut") -> dict:
    """LUT4/FF/CCU2C (no DSP), LUT4/CCU2C/DSP with DSPs allowed, and CMOS transistors of
    one row (``design`` as :func:`build_row` takes it). ``lut_eq`` is LUT4 + 2·CCU2C (a CCU2C
    fills both LUT4s of a slice)."""
    from amaranth.back import verilog

    dut, macs = build_row(design, mults)
    text = verilog.convert(dut, name="sq_row", emit_src=False)
    lut = yosys_stats(text, "sq_row", target="ecp5", nodsp=True)
    dsp = yosys_stats(text, "sq_row", target="ecp5")
    # The CMOS estimate took over 10 minutes per Booth row here: opt-in.
    cmos = (yosys_stats(text, "sq_row", target="cmos") if os.environ.get("SQHW_AREA_CMOS")
            else {"transistors": 0})
    return {"macs": macs, "lut4": lut["lut4"], "ff": lut["ff"], "carry": lut["carry"],
            "lut_eq": lut["lut4"] + 2 * lut["carry"], "dsp": dsp["dsp"],
            "dsp_lut4": dsp["lut4"], "dsp_carry": dsp["carry"],
            "transistors": cmos["transistors"]}


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
    with tempfile.TemporaryDirectory(prefix="sqhw-neutral-") as tmp:
        (Path(tmp) / "design.v").write_text(verilog)
        run_yosys(cmos_script(top, abc=False), tmp, expect=["stats.json"])
        design = json.loads((Path(tmp) / "stats.json").read_text())["design"]
    cells = dict(design.get("num_cells_by_type", {}))
    dff = sum(n for c, n in cells.items() if "DFF" in c)
    est = str(design.get("estimated_num_transistors", "0"))
    return {"gates": sum(cells.values()) - dff, "dff": dff,
            "transistors": int(est) if est.isdigit() else 0, "cells": cells}


def run_area(design) -> dict:
    """Area of one row (``design`` as :func:`row_area` takes it: an
    :class:`HWConfig`, whose ``rows`` is ignored, for an SQRow; ``(fmt, weight_bits)`` for
    an activation-mode ActRow; an :class:`SQFormat` for the shared SelectGather).

    Returns
    -------
    dict
        ``macs`` (MACs per cycle of the row = b), ``nodsp`` (``row_area(design, "lut")``:
        its ``lut4``, ``ff``, ``carry``, ``lut_eq`` are the no-DSP flow), ``dsp`` (``lut4``,
        ``ff``, ``carry``, ``dsp`` of the ``"dsp_all"`` row with DSPs allowed), ``neutral``
        (:func:`neutral_count` of the Booth row, without the cell list).
    """
    from amaranth.back import verilog

    booth = row_area(design, "lut")
    mults = "lut" if isinstance(design, SQFormat) else "dsp_all"   # the gather has no products
    text = verilog.convert(build_row(design, mults)[0], name="sq_row", emit_src=False)
    mul = yosys_stats(text, "sq_row", target="ecp5")
    text = verilog.convert(build_row(design, "lut")[0], name="sq_row", emit_src=False)
    neutral = neutral_count(text, "sq_row")
    neutral.pop("cells")
    return {"macs": booth["macs"], "nodsp": booth,
            "dsp": {k: mul[k] for k in ("lut4", "ff", "carry", "dsp")}, "neutral": neutral}


def area_code_sources() -> str:
    """The source text the area numbers depend on besides the generator and the tools:
    the synthesis glue (part of the cache key)."""
    return "\n".join(inspect.getsource(f) for f in
                     (row_area, build_row, yosys_stats, run_yosys, cmos_script,
                      neutral_count, run_area))
