"""Ctrl-C leaves nothing behind: a real SIGINT sent to a running ``python -m sqhw.gen`` while
it stages its output in a hidden temporary folder, or while it swaps that folder for a
previous output, to a running EDA tool wrapper (:func:`sqhw.toolchain.nextpnr.run_tool`,
which ``python -m sqhw.fpga build`` runs Yosys and nextpnr through), and (``fpga`` marker) to
a real ``python -m sqhw.fpga build`` while its Yosys runs.

To hit those moments every time, the child process slows one file operation down (a
``sleep`` after it) and says on stdout when it is there; everything else is the real code.

Each child starts with SIGINT at its default disposition (:func:`_interruptible`): a test
run started in the background of a non-interactive shell (``bash .ci/run &``) inherits
SIGINT *ignored*, and a Python started so keeps ignoring it, as ``nohup``'d programs should.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest


def _interruptible():
    """``preexec_fn`` of every child: SIGINT at its default, whatever this process has."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)

ROOT = Path(__file__).resolve().parents[1]
GEN_ARGS = ["--rows", "1", "--k-max", "32"]

# Runs python -m sqhw.gen with Path.write_text (inside the staging folder) or Path.rename
# (of the previous output aside) followed by a pause announced on stdout.
_SLOW_GEN = textwrap.dedent("""
    import pathlib, sys, time
    from sqhw.gen import cli
    where = sys.argv[1]
    write_text, rename = pathlib.Path.write_text, pathlib.Path.rename
    def slow_write(self, *a, **k):
        n = write_text(self, *a, **k)
        if where == "staging" and self.parent.name.startswith("."):
            print("paused", flush=True)
            time.sleep(60)
        return n
    def slow_rename(self, target):
        r = rename(self, target)
        if where == "swap" and ".old." in pathlib.Path(target).name:
            print("paused", flush=True)
            time.sleep(3)
        return r
    pathlib.Path.write_text, pathlib.Path.rename = slow_write, slow_rename
    sys.exit(cli.main(sys.argv[2:]))
""")


def _wait_for_pause(proc, timeout=300):
    """Block until the child prints ``paused`` (it has reached the slowed operation)."""
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline()
    assert line.strip() == "paused", (line, proc.stderr.read() if proc.poll() is not None
                                      else "")
    assert time.monotonic() < deadline


def _interrupt_gen(where, out):
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_GEN, where, *GEN_ARGS, "--out",
                             str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_interruptible)
    try:
        _wait_for_pause(proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _gen(out):
    from sqhw.gen.cli import main
    assert main([*GEN_ARGS, "--out", str(out)]) == 0


def test_sigint_while_staging_leaves_no_output(tmp_path):
    code, err = _interrupt_gen("staging", tmp_path / "rtl")
    assert code == 130, err
    assert err.strip().splitlines() == [
        "python -m sqhw.gen: interrupted; no partial output left"], err
    assert list(tmp_path.iterdir()) == []          # no output, no hidden temporary folder


def test_sigint_while_staging_keeps_the_previous_output(tmp_path):
    out = tmp_path / "rtl"
    _gen(out)
    (out / "sqhw_top.v").write_text("// stale\n")      # so the run rewrites it
    before = _snapshot(out)
    code, err = _interrupt_gen("staging", out)
    assert code == 130, err
    assert [p.name for p in tmp_path.iterdir()] == ["rtl"]
    assert _snapshot(out) == before


def test_sigint_during_the_swap_finishes_it(tmp_path):
    """Between "previous output aside" and "new output in place" the interrupt waits: the
    new output is whole and the hidden previous one is gone."""
    out = tmp_path / "rtl"
    _gen(out)
    (out / "sqhw_top.v").write_text("// stale\n")      # so the run rewrites it
    code, err = _interrupt_gen("swap", out)
    assert code == 130, err
    assert [p.name for p in tmp_path.iterdir()] == ["rtl"]
    files = _snapshot(out)
    assert files[".sqhw-output"] == b"gen\n"
    assert b"module sqhw_top" in files["sqhw_top.v"]
    assert {"config.json", "files.f", "sqhw.core", "sqhw_top.vlt"} <= set(files)


_SLOW_TOOL = textwrap.dedent("""
    import sys
    from sqhw.toolchain.nextpnr import run_tool
    child = ("import os, sys, time; open('child.pid', 'w').write(str(os.getpid())); "
             "print('running', flush=True); time.sleep(120)")
    run_tool([sys.executable, "-c", child], sys.argv[1])
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_sigint_stops_the_running_tool(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_TOOL, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_interruptible)
    try:
        pid_file = tmp_path / "child.pid"
        deadline = time.monotonic() + 120
        while not (pid_file.exists() and pid_file.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.1)
        child = int(pid_file.read_text())
        assert _alive(child)
        os.kill(proc.pid, signal.SIGINT)                 # the wrapper only, not its group
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), f"the tool (pid {child}) outlived the interrupted wrapper"


def _children(pid: int) -> list[tuple[int, str]]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    out = []
    for k in kids:
        try:
            cmd = Path(f"/proc/{k}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except FileNotFoundError:
            continue
        out.append((int(k), cmd))
    return out


@pytest.mark.fpga
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_sigint_stops_a_real_fpga_build(tmp_path):
    """``python -m sqhw.fpga build`` interrupted while Yosys runs: Yosys ends, the hidden
    temporary build folder goes, exit 130 with one line."""
    pytest.importorskip("amaranth_boards")
    proc = subprocess.Popen([sys.executable, "-m", "sqhw.fpga", "build", "--board",
                             "ulx3s-85f", *GEN_ARGS, "--out", str(tmp_path / "fpga")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_interruptible)
    try:
        deadline = time.monotonic() + 300
        while not (tools := [k for k in _children(proc.pid) if "yowasp" in k[1]]):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.2)
        staging = list(tmp_path.iterdir())
        assert [p.name[:5] for p in staging] == [".fpga"]
        # Into the synthesis (its log started): it has read its input and would run on.
        log = staging[0] / "top.rpt"
        while not (log.exists() and log.stat().st_size > 0):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.2)
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        "python -m sqhw.fpga: interrupted; no partial output left"], err
    # Checked at once: the build stops and reaps Yosys before it exits (left running, Yosys
    # would only notice its folder gone some time later).
    assert not any(_alive(pid) for pid, _ in tools), tools
    assert list(tmp_path.iterdir()) == []
