"""No tool deletes or changes a file it did not write (gen, fpga build, report).

Each tool writes one output folder. It may create it, fill an empty folder, or replace a
previous output of the same tool (stamped with :data:`sqhw.cli.STAMP`). Anything else (a
file, a user's folder, another tool's output) is refused with one line and exit 2 before
any work starts, and is left byte for byte as it was, with no hidden folder beside it.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from sqhw.cli import STAMP, out_problem
from sqhw.format import HWConfig
from sqhw.gen import generate
from sqhw.gen.cli import write_rtl

ROOT = Path(__file__).resolve().parents[1]

#: The cheapest invocation of each tool that writes ``--out`` (it is refused before any
#: synthesis, simulation or model run, so each case takes seconds).
TOOLS = {
    "gen": ["sqhw.gen", "--rows", "1", "--k-max", "64"],
    "fpga": ["sqhw.fpga", "build", "--board", "ulx3s-85f", "--rows", "1", "--k-max", "64"],
    "report": ["sqhw.report", "--small"],
}


def run(tool, out, cwd):
    return subprocess.run([sys.executable, "-m", *TOOLS[tool], "--out", str(out)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


def user_folder(tmp_path: Path) -> Path:
    d = tmp_path / "mine"
    (d / "sub").mkdir(parents=True)
    (d / "notes.txt").write_text("my notes\n")
    (d / "sub" / "data.bin").write_bytes(bytes(range(256)))
    return d


@pytest.mark.parametrize("tool", list(TOOLS))
@pytest.mark.parametrize("kind", ["file", "user-folder", "other-tool", "under-a-file"])
def test_refused_and_untouched(tmp_path, tool, kind):
    if kind == "file":
        out = tmp_path / "result"
        out.write_text("not a folder\n")
    elif kind == "user-folder":
        out = user_folder(tmp_path)
    elif kind == "other-tool":
        out = user_folder(tmp_path)
        (out / STAMP).write_text("bench\n" if tool != "bench" else "gen\n")
    else:
        (tmp_path / "afile").write_text("x\n")
        out = tmp_path / "afile" / "out"
    before = snapshot(tmp_path)
    r = run(tool, out, tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert snapshot(tmp_path) == before, "a refused --out must leave everything as it was"


def test_gen_replaces_only_its_own_output(tmp_path):
    cfg = HWConfig(rows=1, k_max=64)
    out = generate(cfg, tmp_path / "rtl")
    assert (out / STAMP).read_text() == "gen\n"
    (out / "stale.v").write_text("old output of ours\n")
    generate(cfg, out)                                   # a previous gen output: replaced
    assert not (out / "stale.v").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    generate(cfg, empty)                                 # an empty folder: filled
    assert (empty / "sqhw_top.v").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "rtl"], "nothing hidden"
    mine = user_folder(tmp_path)
    with pytest.raises(ValueError, match="did not write; it is left alone"):
        generate(cfg, mine)
    assert (mine / "notes.txt").read_text() == "my notes\n"


def test_gen_twice_touches_nothing(tmp_path):
    """A second identical `gen` says the output is up to date and writes nothing (every
    file keeps its inode and modification time)."""
    args = ["--rows", "1", "--k-max", "64", "--out", str(tmp_path / "rtl")]
    r1 = subprocess.run([sys.executable, "-m", "sqhw.gen", *args], capture_output=True,
                        text=True, cwd=tmp_path, timeout=600)
    assert r1.returncode == 0 and "wrote" in r1.stderr, r1.stderr
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
              for p in (tmp_path / "rtl").iterdir()}
    r2 = subprocess.run([sys.executable, "-m", "sqhw.gen", *args], capture_output=True,
                        text=True, cwd=tmp_path, timeout=600)
    assert r2.returncode == 0 and "up to date: unchanged" in r2.stderr, r2.stderr
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
             for p in (tmp_path / "rtl").iterdir()}
    assert after == before
    # A changed file of ours is rewritten.
    (tmp_path / "rtl" / "files.f").write_text("edited\n")
    out, changed = write_rtl(HWConfig(rows=1, k_max=64), tmp_path / "rtl")
    assert changed and (out / "files.f").read_text() == "sqhw_top.v\n"


def test_out_problem_reasons(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    assert "is not a folder" in out_problem(f, "gen")
    assert out_problem(tmp_path / "new" / "deeper", "gen") is None
    assert "is not a folder" in out_problem(f / "x", "gen")
    stamped = tmp_path / "s"
    stamped.mkdir()
    (stamped / STAMP).write_text("fpga\n")
    (stamped / "report.json").write_text("{}")
    assert out_problem(stamped, "fpga") is None
    assert "did not write" in out_problem(stamped, "gen")
