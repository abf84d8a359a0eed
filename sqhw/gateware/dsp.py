"""A registered multiplier for DSP blocks: ``p = a · b`` two cycles later.

On an ECP5 (``platform.family == "ecp5"``) it is one ``MULT18X18D`` with its input and
output registers on (``REG_INPUTA_CLK``/``REG_INPUTB_CLK``/``REG_OUTPUT_CLK`` = ``CLK0``):
nextpnr then times the block as registered, and Yosys's own DSP inference, which leaves the
registers in the fabric, is not used. Everywhere else (the generator's portable Verilog,
simulation, other FPGAs) it is the same two register stages around a plain ``*``, which any
flow with DSP inference maps onto one multiplier.
"""

from amaranth.hdl import ClockSignal, Const, Instance, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..format.pipeline import DSP_BITS, DSP_STAGES
from .refuse import refused

__all__ = ["DspMul"]


def _signed_width(shape):
    return shape.width + (0 if shape.signed else 1)


class DspMul(wiring.Component):
    """``p = a · b``, registered at the inputs and at the output (latency 2).

    Parameters
    ----------
    a_shape, b_shape : Shape
        Operand shapes (signed or unsigned); each must fit an 18-bit signed port (an
        unsigned operand counts one bit more).

    Attributes
    ----------
    a : In(a_shape)
    b : In(b_shape)
    p : Out(signed(wa + wb))
        The exact product, ``wa``/``wb`` the operands' signed widths.

    Raises
    ------
    ValueError
        If an operand does not fit an 18-bit signed port.
    """

    LATENCY = DSP_STAGES

    def __init__(self, a_shape, b_shape):
        wa, wb = _signed_width(a_shape), _signed_width(b_shape)
        if wa > DSP_BITS or wb > DSP_BITS:
            raise refused(self, ValueError(f"a DSP product's operands must fit {DSP_BITS} "
                                           f"signed bits, not {wa} and {wb}"))
        self._wa, self._wb = wa, wb
        super().__init__({"a": In(a_shape), "b": In(b_shape), "p": Out(signed(wa + wb))})

    def elaborate(self, platform):
        m = Module()
        if getattr(platform, "family", None) == "ecp5":
            a = Signal(signed(DSP_BITS))
            b = Signal(signed(DSP_BITS))
            p = Signal(signed(2 * DSP_BITS))
            m.d.comb += [a.eq(self.a), b.eq(self.b), self.p.eq(p)]
            ports = {}
            for i in range(DSP_BITS):
                ports[f"i_A{i}"] = a[i]
                ports[f"i_B{i}"] = b[i]
                ports[f"i_C{i}"] = Const(0, 1)
            for i in range(2 * DSP_BITS):
                ports[f"o_P{i}"] = p[i]
            for i in range(4):
                ports[f"i_CLK{i}"] = ClockSignal("sync") if i == 0 else Const(0, 1)
                ports[f"i_CE{i}"] = Const(1 if i == 0 else 0, 1)
                ports[f"i_RST{i}"] = Const(0, 1)
            m.submodules.mult = Instance(
                "MULT18X18D",
                p_REG_INPUTA_CLK="CLK0", p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
                p_REG_INPUTB_CLK="CLK0", p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
                p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE",
                p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
                p_CLK0_DIV="ENABLED", p_CLK1_DIV="ENABLED", p_CLK2_DIV="ENABLED",
                p_CLK3_DIV="ENABLED", p_HIGHSPEED_CLK="NONE", p_GSR="DISABLED",
                p_CAS_MATCH_REG="FALSE", p_SOURCEB_MODE="B_SHIFT", p_MULT_BYPASS="DISABLED",
                p_RESETMODE="SYNC",
                i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1), i_SOURCEA=Const(0, 1),
                i_SOURCEB=Const(0, 1),
                **ports,
            )
            return m
        a_r = Signal(self.a.shape(), reset_less=True)
        b_r = Signal(self.b.shape(), reset_less=True)
        p_r = Signal(signed(self._wa + self._wb), reset_less=True)
        m.d.sync += [a_r.eq(self.a), b_r.eq(self.b), p_r.eq(a_r * b_r)]
        m.d.comb += self.p.eq(p_r)
        return m

