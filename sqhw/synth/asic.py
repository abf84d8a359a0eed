"""ASIC area and timing of a row: Yosys synthesis to a standard-cell library, then OpenSTA.

The flow (``docs/asic.md``):

1. **Synthesis** in YoWASP Yosys (:func:`asic_script`): ``synth -flatten``, flip-flops
   mapped to the library's by ``dfflibmap -liberty``, logic by ``abc -liberty -constr -D
   <ps>`` (ABC's mapping, then buffering of high-fanout nets and gate sizing against the
   drive and load of :func:`abc_constraints`), ``stat -liberty`` for the cell area in µm²,
   and the gate-level netlist written for timing.
2. **Static timing** in OpenSTA (:func:`sta_script`): one ideal clock on ``clk``, every
   other input arriving and every output required at the clock edge (a row's inputs and
   outputs are registers of its neighbours in an array: inputs driven by a buffer, outputs
   loaded by a flip-flop's input), typical corner, no wire load (the library has no
   wire-load model, and nothing is placed): the critical path in ns is the clock period
   minus the worst setup slack, so ``Fmax = 1000 / path_ns`` MHz.

The library is Debian's ``qflow-tech-osu018`` (the OSU 0.18 µm cells) and OpenSTA is
Debian's ``opensta``; :mod:`sqhw.toolchain.asic` finds them and names the package when one
is missing.
"""

import inspect
import json
import re
import shutil
import tempfile
from pathlib import Path

from ..toolchain._env import ToolError
from ..toolchain.asic import LIBRARIES, find_liberty, run_sta
from ..toolchain.yosys import run_yosys

__all__ = ["PERIOD_NS", "abc_constraints", "asic_script", "sta_script", "parse_sta",
           "asic_synth", "asic_row", "asic_code_sources"]

#: The clock period given to OpenSTA (and to ABC as ``abc -D``, which barely changes its
#: mapping: see :func:`asic_script`), in ns. Every row of a comparison uses the same one.
PERIOD_NS = 5.0

_LIB = "cells.lib"   # the Liberty file, copied into the work folder: YoWASP sees only it


def abc_constraints(lib: str = "osu018") -> str:
    """ABC's constraint file (``abc -constr``): the drive of the inputs and the load on the
    outputs of the logic ABC maps. With it, Yosys's ABC script buffers high-fanout nets and
    sizes gates (``buffer; upsize; dnsize``) after mapping; without it, it does neither."""
    spec = LIBRARIES[lib]
    return f"set_driving_cell {spec.drive_cell}\nset_load {spec.load_pf}\n"


def asic_script(top: str, period_ns: float = PERIOD_NS) -> str:
    """The Yosys script: ``design.v`` to a netlist of the library's cells (``netlist.v``)
    and ``stat -liberty`` into ``stats.json`` (``abc.constr`` is :func:`abc_constraints`).

    ``-D`` is the delay target of ABC's mapping and sizing. In YoWASP Yosys 0.70 it changed
    nothing in the mapping of a registered 8x8 multiplier from 1 ps to 50 ns (the same
    cells; sizing moved 32 µm² of 15,500): ABC maps for delay, then recovers area."""
    return ("read_verilog -sv design.v\n"
            f"synth -flatten -top {top}\n"
            f"dfflibmap -liberty {_LIB}\n"
            f"abc -liberty {_LIB} -constr abc.constr -D {round(period_ns * 1000)}\n"
            "opt_clean -purge\n"
            "setundef -zero\n"
            "splitnets -ports\n"
            "opt_clean -purge\n"
            "write_verilog -noattr -noexpr -nohex -nodec netlist.v\n"
            f"tee -q -o stats.json stat -liberty {_LIB} -json\n")


def sta_script(top: str, period_ns: float = PERIOD_NS, clock: str = "clk",
               lib: str = "osu018") -> str:
    """The OpenSTA script: the critical (worst setup) path of ``netlist.v``, with the
    inputs driven by the library's buffer and the outputs loaded by a flip-flop's input
    (as :func:`abc_constraints` tells ABC)."""
    spec = LIBRARIES[lib]
    inputs = f"[delete_from_list [all_inputs] [get_ports {clock}]]"
    return (f"read_liberty {_LIB}\n"
            "read_verilog netlist.v\n"
            f"link_design {top}\n"
            f"create_clock -name clk -period {period_ns} [get_ports {clock}]\n"
            f"set_input_delay 0 -clock clk {inputs}\n"
            "set_output_delay 0 -clock clk [all_outputs]\n"
            f"set_driving_cell -lib_cell {spec.drive_cell} -pin Y {inputs}\n"
            f"set_load {spec.load_pf} [all_outputs]\n"
            "report_checks -path_delay max -digits 4\n")


# A line of the data path where a cell's output switches: ``incr  total  ^|v  inst/PIN (CELL)``
# with an output pin of the library (Y, Q, or a full/half adder's YC/YS).
_CELL_LINE = re.compile(r"^\s*-?[\d.]+\s+-?[\d.]+\s+[v^]\s+\S+/(?:Y|Q|YC|YS)\s+\((\w+)\)\s*$")


def parse_sta(text: str, period_ns: float) -> dict:
    """The critical path of a ``report_checks`` report.

    Returns
    -------
    dict
        ``path_ns`` (clock period minus worst slack: the shortest period the design meets),
        ``fmax_mhz``, ``slack_ns``, ``arrival_ns`` (data arrival at the endpoint),
        ``startpoint``, ``endpoint``, ``levels`` (cells on the path) and ``path_cells``
        (their types, in order).

    Raises
    ------
    ToolError
        If the report has no constrained path.
    """
    start = re.search(r"^Startpoint: (\S+)", text, re.MULTILINE)
    end = re.search(r"^Endpoint: (\S+)", text, re.MULTILINE)
    slack = re.search(r"^\s*(-?[\d.]+)\s+slack \((MET|VIOLATED)\)", text, re.MULTILINE)
    arrival = re.search(r"^\s*(-?[\d.]+)\s+data arrival time", text, re.MULTILINE)
    if not (start and end and slack and arrival):
        raise ToolError("OpenSTA reported no constrained path:\n" + text[-2000:])
    # The data path is the part of the report before its first "data arrival time".
    data = text[:arrival.end()].splitlines()
    cells = [m.group(1) for m in map(_CELL_LINE.match, data) if m]
    path_ns = period_ns - float(slack.group(1))
    return {"path_ns": round(path_ns, 4), "fmax_mhz": round(1000 / path_ns, 1),
            "slack_ns": float(slack.group(1)), "arrival_ns": float(arrival.group(1)),
            "startpoint": start.group(1), "endpoint": end.group(1),
            "levels": len(cells), "path_cells": cells}


def asic_synth(verilog: str, top: str, *, period_ns: float = PERIOD_NS, lib: str = "osu018",
               workdir=None) -> dict:
    """Synthesise Verilog text to a standard-cell library and time it.

    Parameters
    ----------
    verilog : str
        Verilog source text.
    top : str
        Name of the top module; its clock input must be ``clk``.
    period_ns : float
        Clock-period target for ABC's mapping and for the timing check.
    lib : str
        A key of :data:`sqhw.toolchain.asic.LIBRARIES`.
    workdir : str or Path, optional
        Where to keep the scripts, logs, netlist and reports (default: a temporary folder
        that is removed afterwards).

    Returns
    -------
    dict
        ``area_um2`` (total cell area), ``seq_area_um2`` (flip-flops), ``cells``,
        ``flops``, ``cells_by_type`` and the critical path of :func:`parse_sta`.

    Raises
    ------
    ToolError
        If a tool or the library is missing (a one-line message naming the Debian
        package), or a tool fails.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", top):
        raise ValueError(f"top must be a Verilog identifier, not {top!r}")
    if not period_ns > 0:
        raise ValueError(f"period_ns must be positive, not {period_ns!r}")
    liberty = find_liberty(lib)
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="sqhw-asic-") as tmp:
            return asic_synth(verilog, top, period_ns=period_ns, lib=lib, workdir=tmp)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(liberty, workdir / _LIB)
    (workdir / "design.v").write_text(verilog)
    (workdir / "abc.constr").write_text(abc_constraints(lib))
    run_yosys(asic_script(top, period_ns), workdir, expect=["netlist.v", "stats.json"])
    design = json.loads((workdir / "stats.json").read_text())["design"]
    by_type = dict(design.get("num_cells_by_type", {}))
    if "area" not in design:
        raise ToolError(f"stat -liberty gave no area in {workdir / 'stats.json'}")
    unmapped = sorted(c for c in by_type if c.startswith("$"))
    if unmapped:
        raise ToolError(f"cells left unmapped to {lib}: {', '.join(unmapped)}")
    sta = parse_sta(run_sta(sta_script(top, period_ns, lib=lib), workdir), period_ns)
    # Name the path's ends by the registers they are (a flip-flop's Q net), not by the
    # instance names Yosys gave the flip-flops.
    regs = _flop_outputs((workdir / "netlist.v").read_text())
    sta["startpoint"] = regs.get(sta["startpoint"], sta["startpoint"])
    sta["endpoint"] = regs.get(sta["endpoint"], sta["endpoint"])
    flop_types = [c for c in by_type if c.startswith(("DFF", "LATCH"))]
    seq_area = _cell_areas(workdir / _LIB)
    return {"area_um2": float(design["area"]),
            "seq_area_um2": sum(seq_area[c] * by_type[c] for c in flop_types),
            "cells": int(design["num_cells"]),
            "flops": sum(by_type[c] for c in flop_types),
            "cells_by_type": by_type, **sta}


def _flop_outputs(netlist: str) -> dict:
    """``{instance: Q net}`` of every flip-flop in a netlist Yosys wrote."""
    found = re.finditer(r"^\s*(?:DFF|LATCH)\w*\s+(\S+)\s*\((.*?)\);", netlist,
                        re.MULTILINE | re.DOTALL)
    out = {}
    for m in found:
        q = re.search(r"\.Q\(\\?([^()]*?)\s*\)", m.group(2))
        if q:
            out[m.group(1).lstrip("\\")] = q.group(1).strip()
    return out


def _cell_areas(liberty: Path) -> dict:
    """``{cell: area}`` of a Liberty file (each cell's first ``area`` attribute)."""
    areas, cell = {}, None
    for line in liberty.read_text().splitlines():
        m = re.match(r"\s*cell\s*\(\s*\"?(\w+)\"?\s*\)", line)
        if m:
            cell = m.group(1)
            continue
        m = re.match(r"\s*area\s*:\s*([\d.]+)", line)
        if m and cell and cell not in areas:
            areas[cell] = float(m.group(1))
    return areas


def asic_row(design, mults: str = "lut", *, period_ns: float = PERIOD_NS,
             lib: str = "osu018", workdir=None) -> dict:
    """ASIC area and critical path of one row (``design`` as
    :func:`sqhw.synth.area.build_row` takes it), with ``macs`` (its MACs per cycle),
    ``um2_per_mac``, the period target and the library name added to
    :func:`asic_synth`'s result."""
    from amaranth.back import verilog

    from .area import build_row

    dut, macs = build_row(design, mults)
    text = verilog.convert(dut, name="sq_row", emit_src=False)
    out = asic_synth(text, "sq_row", period_ns=period_ns, lib=lib, workdir=workdir)
    out.update(macs=macs, um2_per_mac=out["area_um2"] / macs if macs else None,
               period_target_ns=period_ns, library=LIBRARIES[lib].name)
    return out


def asic_code_sources() -> str:
    """The source text the ASIC figures depend on besides the generator, the tools and the
    library: the flow's scripts and parsers (for a cache key, as
    :func:`sqhw.synth.area.area_code_sources` is for the area stage)."""
    from ..toolchain import asic as tools
    return "\n".join(inspect.getsource(f) for f in
                     (abc_constraints, asic_script, sta_script, parse_sta, asic_synth,
                      _flop_outputs, _cell_areas, asic_row, tools.run_sta)) + repr(LIBRARIES)
