"""The ASIC stage (sqhw.synth.asic) run for real: YoWASP Yosys to the OSU 0.18 um cells, then
OpenSTA, on designs small enough for ``make verify``.

Needs Debian's ``qflow-tech-osu018`` and ``opensta`` (``make asic-deps``, which ``.ci/run``
calls). Without them these tests fail with the one-line message naming the package: they
never skip.
"""

import os
import subprocess
import sys

import pytest

from sqhw.format import HWConfig, SQFormat, min_acc_bits
from sqhw.synth.asic import asic_row, asic_synth
from sqhw.toolchain import ToolError

# A registered W x W multiplier: 2W input flip-flops, 2W output flip-flops, and one
# combinational path from an input register through the multiplier to an output register.
MUL = """module mul(input clk, input [{w1}:0] a, input [{w1}:0] b, output reg [{p1}:0] y);
  reg [{w1}:0] ra, rb;
  always @(posedge clk) begin ra <= a; rb <= b; y <= ra * rb; end
endmodule
"""


@pytest.fixture(scope="module")
def muls(tmp_path_factory):
    out = {}
    for w in (4, 8):
        work = tmp_path_factory.mktemp(f"mul{w}")
        out[w] = asic_synth(MUL.format(w1=w - 1, p1=2 * w - 1), "mul", period_ns=10.0,
                            workdir=work)
        out[w]["workdir"] = work
    return out


@pytest.mark.parametrize("w", [4, 8])
def test_multiplier_area_and_path(muls, w):
    r = muls[w]
    # Every register bit is one library flip-flop, and the flip-flops are part of the area.
    assert r["flops"] == 4 * w
    assert set(c for c in r["cells_by_type"] if c.startswith("DFF")) <= {"DFFPOSX1"}
    assert 0 < r["seq_area_um2"] < r["area_um2"]
    assert r["cells"] == sum(r["cells_by_type"].values()) > r["flops"]
    # Only library cells are left (no Yosys-internal $ cells).
    assert not [c for c in r["cells_by_type"] if c.startswith("$")]
    # The critical path runs from an input register through the multiplier to y.
    assert r["startpoint"].split("[")[0] in ("ra", "rb"), r["startpoint"]
    assert r["endpoint"].startswith("y["), r["endpoint"]
    assert r["levels"] >= 3 and r["path_cells"][0] == "DFFPOSX1"
    # The shortest period is the data arrival plus the capturing flip-flop's setup time.
    assert 0 < r["arrival_ns"] < r["path_ns"] < r["arrival_ns"] + 1.0
    assert r["slack_ns"] > 0   # 10 ns is ample for an 8x8 multiplier at 0.18 um
    assert r["fmax_mhz"] == pytest.approx(1000 / r["path_ns"], rel=1e-3)
    # The netlist OpenSTA timed is made of the library's cells.
    netlist = (r["workdir"] / "netlist.v").read_text()
    assert "DFFPOSX1" in netlist and "always" not in netlist


def test_wider_multiplier_is_bigger_and_slower(muls):
    assert muls[8]["area_um2"] > 2 * muls[4]["area_um2"]
    assert muls[8]["path_ns"] > muls[4]["path_ns"]
    assert muls[8]["levels"] > muls[4]["levels"]


def test_a_short_period_is_reported_as_violated(tmp_path):
    r = asic_synth(MUL.format(w1=7, p1=15), "mul", period_ns=0.5, workdir=tmp_path)
    assert r["slack_ns"] < 0 and r["path_ns"] > 0.5


def test_sq_row(tmp_path):
    """A small SQ row from the generator, through build_row, as the bench measures rows."""
    fmt = SQFormat(4, 0.5, 4, 2)     # the smallest row with both paths: about 30 s here
    cfg = HWConfig(fmt=fmt, rows=1, act_bits=4, k_max=8, acc_bits=min_acc_bits(fmt, 4, 8))
    r = asic_row(cfg, "lut", period_ns=10.0, workdir=tmp_path)
    assert r["macs"] == 4
    assert r["um2_per_mac"] == pytest.approx(r["area_um2"] / 4)
    # At least the accumulator's bits are registers.
    assert r["flops"] >= cfg.acc_bits and r["seq_area_um2"] < r["area_um2"]
    assert r["levels"] >= 3 and r["path_ns"] > 0
    assert not r["startpoint"].startswith("_") and not r["endpoint"].startswith("_")


def test_missing_library_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("SQHW_LIBERTY", str(tmp_path / "absent.lib"))
    with pytest.raises(ToolError, match="qflow-tech-osu018"):
        asic_synth(MUL.format(w1=1, p1=3), "mul")
    # Both command lines: one line on stderr naming the package, exit 2, nothing measured.
    for cmd in (["sqhw.bench.asic", "dense W4A8"], ["sqhw.bench", "asic"]):
        proc = subprocess.run([sys.executable, "-m", *cmd], capture_output=True, text=True,
                              env={**os.environ, "SQHW_LIBERTY": str(tmp_path / "absent.lib")})
        assert proc.returncode == 2, (cmd, proc.stderr)
        err = proc.stderr.strip().splitlines()
        assert len(err) == 1 and "qflow-tech-osu018" in err[0], (cmd, proc.stderr)
        assert "um2" not in proc.stdout
