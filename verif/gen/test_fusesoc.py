"""Every `gen` output is a FuseSoC core: the real `fusesoc` tool (PyPI) runs its Verilator
lint target (``-Wall`` with the project's waivers), which passes, and fails on a planted
defect."""

import re
import subprocess

from sqhw.format import HWConfig, SQFormat
from sqhw.gen import generate
from sqhw.gen.cli import CORE_NAME, core_name
from sqhw.toolchain.verilator import verilator_env


def lint(out, name, cwd):
    return subprocess.run(["fusesoc", "--cores-root", str(out), "run", "--target", "lint",
                           name], env=verilator_env(), capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_fusesoc_lint_target(tmp_path):
    cfg = HWConfig(fmt=SQFormat(8, 0.75, 8, 4), rows=2, k_max=32)
    out = generate(cfg, tmp_path / "rtl")
    name = core_name(cfg)
    assert re.fullmatch(r"sqhw:sqhw:b8_8_4_0_75_r2_[0-9a-f]{12}:\d+\.\d+\.\d+", name), name
    assert f"name: {name}\n" in (out / CORE_NAME).read_text()
    r = lint(out, name, tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # A defect the waivers do not cover (a wire read but never driven, in the top) must
    # fail the target.
    v = out / "sqhw_top.v"
    text = v.read_text()
    at = text.index(");", text.index("module sqhw_top(")) + 2
    v.write_text(text[:at] + "\n  wire [3:0] planted;\n  wire [3:0] planted_use = planted;\n"
                 + text[at:])
    r = lint(out, name, tmp_path)
    assert r.returncode != 0 and "UNDRIVEN" in r.stdout + r.stderr
