"""The wheel stands alone: built from the package sources only, installed into a fresh
virtual environment outside the checkout, its tools run from a folder that holds no
``sqhw`` and no ``verif``.

The fresh environment gets no packages from an index (the machine may be offline): its
dependencies come from this environment's ``site-packages`` through a ``.pth`` line.
``.pth`` files inside a folder added that way are not processed, so the editable install of
the checkout stays invisible; the test asserts that ``sqhw`` is imported from the fresh
environment.
"""

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, env=None, timeout=300):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    # Build from a copy of what the wheel is made of, so no build/ or egg-info lands in the
    # checkout (build/ there is the simulation cache).
    src = tmp / "src"
    src.mkdir()
    shutil.copytree(ROOT / "sqhw", src / "sqhw", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", dist, src], cwd=tmp)
    wheels = list(dist.glob("sqhw-*.whl"))
    assert len(wheels) == 1, wheels

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    py = venv / "bin" / "python"
    purelib = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=tmp).stdout.strip())
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    deps.append(sysconfig.get_paths()["purelib"])
    (purelib / "_sqhw_test_deps.pth").write_text("".join(f"{p}\n" for p in dict.fromkeys(deps)))
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index",
          "-q", wheels[0]], cwd=tmp)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    work = tmp / "work"
    work.mkdir()
    return py, venv, work, env


def test_wheel_has_no_test_tree_and_ships_the_testbench(fresh_venv):
    py, venv, work, env = fresh_venv
    out = _run([py, "-c", "import importlib.util, sqhw, sqhw.sim.bulk as b; "
                "import sqhw.sim.board as s; "
                "print(sqhw.__file__); print(b.TB_SOURCE.is_file()); "
                "print(importlib.util.find_spec('verif')); print(s.CPP_SOURCE.is_file())"],
               cwd=work, env=env).stdout.split()
    assert Path(out[0]).resolve().is_relative_to(venv.resolve()), out[0]
    assert out[1] == "True"          # sqhw_bulk_tb.sv is package data
    assert out[2] == "None"          # no verif/ beside the installed package
    assert out[3] == "True"          # so is the simulated board's harness (host --port sim)


def test_wheel_gen(fresh_venv, tmp_path):
    """The installed generator writes what the checkout's writes, byte for byte."""
    from sqhw.format import HWConfig
    from sqhw.gen import generate
    py, venv, work, env = fresh_venv
    out = work / "rtl"
    _run([py, "-m", "sqhw.gen", "--rows", "1", "--out", out], cwd=work, env=env)
    ref = generate(HWConfig(rows=1), tmp_path / "ref")
    for name in ("sqhw_top.v", "config.json", "files.f"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


def test_wheel_bench_sim_help(fresh_venv):
    py, venv, work, env = fresh_venv
    proc = _run([py, "-m", "sqhw.bench", "sim", "--help"], cwd=work, env=env)
    assert "python -m sqhw.bench" in proc.stdout
    # The section imports from the installed package alone (sqhw.sim, not verif/).
    _run([py, "-c", "import sqhw.bench.sim"], cwd=work, env=env)
