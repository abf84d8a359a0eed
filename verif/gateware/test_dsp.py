"""DspMul: the ECP5 ``MULT18X18D`` instance and the portable registered ``*`` are the same
circuit, cycle for cycle.

Yosys has MULT18X18D only as a black box, so ``mult18x18d_model.v`` (next to this file)
models the primitive as sqhw configures it, and the test checks that the instance sets
exactly the modelled parameters. For each operand shape the datapath uses, both
elaborations of :class:`~sqhw.gateware.dsp.DspMul` (``platform.family == "ecp5"`` and no
platform) run side by side in Verilator on the same random and extreme operands, and their
products must agree in every cycle. A model whose ports ignore SIGNEDA/SIGNEDB is the
planted bug: the same test must fail. (A SAT proof of the equivalence was tried first: an
18 × 18 multiplier miter did not finish in 10 minutes.)
"""

import os
import random

import pytest
from amaranth.back import verilog
from amaranth.hdl import Shape, signed, unsigned

from sqhw.format import HWConfig
from sqhw.gateware.dsp import DspMul

MODEL = os.path.join(os.path.dirname(__file__), "mult18x18d_model.v")
#: Names the build folders only.
CFG = HWConfig(rows=1, k_max=16)
#: The parameter values ``mult18x18d_model.v`` models.
MODELLED = {"REG_INPUTA_CLK": "CLK0", "REG_INPUTB_CLK": "CLK0", "REG_OUTPUT_CLK": "CLK0",
            "REG_INPUTA_CE": "CE0", "REG_INPUTB_CE": "CE0", "REG_OUTPUT_CE": "CE0",
            "REG_INPUTA_RST": "RST0", "REG_INPUTB_RST": "RST0", "REG_OUTPUT_RST": "RST0",
            "REG_PIPELINE_CLK": "NONE", "REG_INPUTC_CLK": "NONE", "RESETMODE": "SYNC",
            "MULT_BYPASS": "DISABLED"}
#: (a shape, b shape): a high product (act × high code), a scale product (P × unsigned
#: code), both ports at their full 18 signed bits, and a 16-bit scale code.
SHAPES = [(signed(8), signed(8)), (signed(16), unsigned(8)), (signed(18), signed(18)),
          (signed(17), unsigned(16))]


class _ECP5:
    """Just enough of a platform for DspMul to choose the primitive."""

    family = "ecp5"


def _pair_verilog(path, a_shape, b_shape, model_text):
    """One file: the model, both elaborations, and ``dsp_pair`` driving them together."""
    ecp5 = verilog.convert(DspMul(a_shape, b_shape), name="dut_ecp5", platform=_ECP5(),
                           emit_src=False)
    for name, value in MODELLED.items():
        assert f'.{name}("{value}")' in ecp5, f"the instance sets {name} other than modelled"
    ref = verilog.convert(DspMul(a_shape, b_shape), name="dut_ref", emit_src=False)
    wa, wb = a_shape.width, b_shape.width
    wp = wa + wb + (0 if b_shape.signed else 1) + (0 if a_shape.signed else 1)
    rst = {name: ".rst(rst), " if "input rst;" in text else ""
           for name, text in (("ecp5", ecp5), ("ref", ref))}
    pair = (f"module dsp_pair(input clk, input rst, input [{wa - 1}:0] a, "
            f"input [{wb - 1}:0] b, output [{wp - 1}:0] p_ecp5, output [{wp - 1}:0] p_ref);\n"
            f"  dut_ecp5 u_ecp5(.clk(clk), {rst['ecp5']}.a(a), .b(b), .p(p_ecp5));\n"
            f"  dut_ref u_ref(.clk(clk), {rst['ref']}.a(a), .b(b), .p(p_ref));\n"
            "endmodule\n")
    path.write_text("/* verilator lint_off UNUSEDSIGNAL */\n/* verilator lint_off PINMISSING */\n"
                    + model_text + ecp5 + ref + pair)
    return path


def _run(tmp_path, a_shape, b_shape, model_text, name):
    from sqhw.sim.harness import run_cocotb
    v = _pair_verilog(tmp_path / "dsp_pair.v", a_shape, b_shape, model_text)
    env = {"DSP_A": f"{a_shape.width},{int(a_shape.signed)}",
           "DSP_B": f"{b_shape.width},{int(b_shape.signed)}"}
    run_cocotb(CFG, v, "verif.gateware.test_dsp", top="dsp_pair", extra_env=env,
               run_name=name, variant=name, build_args=("-Wno-fatal",))


@pytest.mark.parametrize("a_shape,b_shape", SHAPES,
                         ids=[f"a{a.width}{'s' if a.signed else 'u'}-b{b.width}"
                              f"{'s' if b.signed else 'u'}" for a, b in SHAPES])
def test_instance_equals_portable(tmp_path, a_shape, b_shape):
    name = f"dsp-a{a_shape.width}{int(a_shape.signed)}-b{b_shape.width}{int(b_shape.signed)}"
    _run(tmp_path, a_shape, b_shape, open(MODEL).read(), name)


def test_planted_unsigned_model_fails(tmp_path):
    """The same test against a model whose ports ignore SIGNEDA/SIGNEDB must fail (at full
    width: a narrower product never reads the bits the sign corrupts)."""
    text = open(MODEL).read()
    bad = text.replace("{SIGNEDA & a[17], a}", "{1'b0, a}")
    assert bad != text
    with pytest.raises(AssertionError):
        _run(tmp_path, signed(18), signed(18), bad, "dsp-planted")


def test_operand_width_checked():
    with pytest.raises(ValueError, match="must fit 18 signed bits, not 19 and 8"):
        DspMul(signed(19), signed(8))
    with pytest.raises(ValueError, match="not 8 and 19"):
        DspMul(signed(8), unsigned(18))


try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge, RisingEdge
except ImportError:  # pragma: no cover - cocotb is a dev dependency
    cocotb = None

if cocotb is not None:
    def _shape(env):
        w, s = os.environ[env].split(",")
        return Shape(int(w), bool(int(s)))

    def _operand(rng, shape):
        w = shape.width
        lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if shape.signed else (0, (1 << w) - 1)
        return rng.choice((lo, hi, 0, -1 if shape.signed else 1, rng.randint(lo, hi),
                           rng.randint(lo, hi)))

    @cocotb.test()
    async def dsp_pair_agree(dut):
        """3000 cycles of random and extreme operands: both products equal every cycle."""
        sa, sb = _shape("DSP_A"), _shape("DSP_B")
        rng = random.Random(random.getrandbits(32))
        Clock(dut.clk, 10, unit="ns").start()
        dut.rst.value = 0
        dut.a.value = 0
        dut.b.value = 0
        for _ in range(3000):
            await FallingEdge(dut.clk)
            assert dut.p_ecp5.value == dut.p_ref.value, (dut.p_ecp5.value, dut.p_ref.value)
            dut.a.value = _operand(rng, sa) & ((1 << sa.width) - 1)
            dut.b.value = _operand(rng, sb) & ((1 << sb.width) - 1)
            await RisingEdge(dut.clk)
