"""Board tops: a PLL, a power-on reset, the UART pins and :class:`~.link.LinkTop`.

Two boards, both from ``amaranth-boards`` (``amaranth_boards.ulx3s``,
``amaranth_boards.icebreaker``):

========== ============ ========== ====================== ================================
board      FPGA         clock pin  UART (FPGA rx / tx)    PLL
========== ============ ========== ====================== ================================
ulx3s-85f  LFE5U-85F-6  G2, 25 MHz M1 / L4 (FTDI FT231X)  EHXPLLL, CLKOP fed back
icebreaker iCE40UP5K    35, 12 MHz 6 / 9 (FTDI FT2232H B) SB_PLL40_PAD, SIMPLE feedback
========== ============ ========== ====================== ================================

LEDs show the core's sticky ``status`` bits and a heartbeat.
"""

import importlib
from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

from ..link.protocol import check_config
from .link import DEFAULT_TIMEOUT_BITS, LinkTop

__all__ = ["Board", "BOARDS", "ecp5_pll", "ice40_pll", "BoardTop"]


@dataclass(frozen=True)
class Board:
    """What the build needs to know about one board.

    Attributes
    ----------
    name : str
        The ``--board`` name.
    module, cls : str
        Where the ``amaranth-boards`` platform class lives.
    family : ``"ecp5"`` or ``"ice40"``
    clk_in_hz : float
        Board oscillator frequency.
    default_hz : float
        Default core clock (the PLL output).
    leds : int
        LEDs used for status.
    """

    name: str
    module: str
    cls: str
    family: str
    clk_in_hz: float
    default_hz: float
    leds: int

    def platform(self):
        """A fresh ``amaranth-boards`` platform instance (raises ImportError without it)."""
        return getattr(importlib.import_module(self.module), self.cls)()

    def pll(self, fout_hz: float) -> tuple[dict, float]:
        """``(parameters, achieved frequency in Hz)`` of the PLL for ``fout_hz``."""
        if self.family == "ecp5":
            return ecp5_pll(self.clk_in_hz, fout_hz)
        return ice40_pll(self.clk_in_hz, fout_hz)


BOARDS = {
    "ulx3s-85f": Board("ulx3s-85f", "amaranth_boards.ulx3s", "ULX3S_85F_Platform", "ecp5",
                       25e6, 50e6, 8),
    "icebreaker": Board("icebreaker", "amaranth_boards.icebreaker", "ICEBreakerPlatform",
                        "ice40", 12e6, 24e6, 2),
}


def ecp5_pll(fin_hz: float, fout_hz: float) -> tuple[dict, float]:
    """EHXPLLL dividers for ``fout_hz`` from ``fin_hz``, CLKOP fed back (the search of
    ``ecppll``: PFD 3.125..400 MHz, VCO 400..800 MHz; closest output, then VCO nearest
    600 MHz).

    Raises
    ------
    ValueError
        If no divider setting comes within 1 % of ``fout_hz``.
    """
    fin = fin_hz / 1e6
    fout = fout_hz / 1e6
    best = None
    for idiv in range(1, 129):
        fpfd = fin / idiv
        if not 3.125 <= fpfd <= 400:
            continue
        for fbdiv in range(1, 81):
            f = fpfd * fbdiv
            for odiv in range(1, 129):
                fvco = f * odiv
                if not 400 <= fvco <= 800:
                    continue
                key = (abs(f - fout), abs(fvco - 600))
                if best is None or key < best[0]:
                    best = (key, idiv, fbdiv, odiv, f)
    if best is None or best[0][0] > fout * 0.01:
        raise ValueError(f"the ECP5 PLL cannot make {fout:g} MHz from {fin:g} MHz (it makes "
                         f"3.125 to 800 MHz: VCO 400..800 MHz over an output divider "
                         f"1..128); pick --freq in that range")
    _, idiv, fbdiv, odiv, f = best
    params = {"CLKI_DIV": idiv, "CLKFB_DIV": fbdiv, "CLKOP_DIV": odiv,
              "CLKOP_CPHASE": odiv - 1, "CLKOP_FPHASE": 0}
    return params, f * 1e6


def ice40_pll(fin_hz: float, fout_hz: float) -> tuple[dict, float]:
    """SB_PLL40 dividers (SIMPLE feedback) for ``fout_hz`` from ``fin_hz`` (the search of
    ``icepll``: PFD 10..133 MHz, VCO 533..1066 MHz).

    Raises
    ------
    ValueError
        If no divider setting comes within 1 % of ``fout_hz``.
    """
    fin = fin_hz / 1e6
    fout = fout_hz / 1e6
    best = None
    for divr in range(16):
        fpfd = fin / (divr + 1)
        if not 10 <= fpfd <= 133:
            continue
        for divf in range(128):
            fvco = fpfd * (divf + 1)
            if not 533 <= fvco <= 1066:
                continue
            for divq in range(1, 7):
                f = fvco / (1 << divq)
                key = abs(f - fout)
                if best is None or key < best[0]:
                    best = (key, divr, divf, divq, fpfd, f)
    if best is None or best[0] > fout * 0.01:
        raise ValueError(f"the iCE40 PLL cannot make {fout:g} MHz from {fin:g} MHz (it makes "
                         f"about 8.4 to 533 MHz: VCO 533..1066 MHz over 2..64); pick --freq "
                         f"in that range")
    _, divr, divf, divq, fpfd, f = best
    filt = next(i for i, lim in enumerate((17, 26, 44, 66, 101, 1e9), start=1) if fpfd < lim)
    params = {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filt}
    return params, f * 1e6


class BoardTop(Elaboratable):
    """The whole design of one board: PLL → ``sync`` domain, power-on reset held until the
    PLL locks (plus 256 cycles: iCE40 block RAMs read 0 for ~3 µs after configuration),
    the UART pins and :class:`~.link.LinkTop`.

    Parameters
    ----------
    board : Board
    cfg : HWConfig
    freq_hz : float
        Requested core clock; the PLL's nearest (:meth:`Board.pll`) is used.
    baud : int
        UART rate; the divisor is ``round(f_core / baud)``.
    timeout_bits : int
        See :class:`~.link.HostLink`.

    Attributes
    ----------
    pll_params : dict
    f_core_hz : float
        The PLL output frequency (the core clock).
    divisor : int
        Clocks per UART bit.
    baud_error : float
        Relative error of the achieved baud rate.
    """

    def __init__(self, board, cfg, freq_hz, baud, *, timeout_bits=DEFAULT_TIMEOUT_BITS):
        # A refused top is never built: no "unused" warning unless validation passes.
        self._MustUse__silence = True
        check_config(cfg)                     # before any tool runs
        self.board = board
        self.cfg = cfg
        if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
            raise ValueError(f"--baud must be a positive bit rate, not {baud!r}")
        self.pll_params, self.f_core_hz = board.pll(freq_hz)
        self.divisor = round(self.f_core_hz / baud)
        if self.divisor < 4:
            raise ValueError(f"baud {baud} is too fast for a {self.f_core_hz / 1e6:g} MHz "
                             f"core clock (needs at least 4 clocks per bit)")
        self.baud_error = self.f_core_hz / self.divisor / baud - 1
        if abs(self.baud_error) > 0.02:
            raise ValueError(f"baud {baud} is {self.baud_error:+.1%} off at "
                             f"{self.f_core_hz / 1e6:g} MHz; pick another --freq or --baud")
        self.timeout_bits = timeout_bits
        self._MustUse__silence = False

    def elaborate(self, platform):
        m = Module()
        board = self.board
        # The iCE40 PLL's reference is its dedicated pin (SB_PLL40_PAD): the raw port, with
        # no input buffer (on the UP5K, pin 35 is that pin, and a buffer there conflicts).
        clk_port = platform.request(platform.default_clk, 0, dir="-")
        if board.family == "ecp5":
            m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_port)
        m.domains.sync = cd_sync = ClockDomain("sync")
        m.domains.por = ClockDomain("por", reset_less=True)
        m.d.comb += ClockSignal("por").eq(cd_sync.clk)
        locked = Signal()
        p = self.pll_params
        if board.family == "ecp5":
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{board.clk_in_hz / 1e6:g}",
                a_FREQUENCY_PIN_CLKOP=f"{self.f_core_hz / 1e6:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
                a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED",
                p_STDBY_ENABLE="DISABLED", p_DPHASE_SOURCE="DISABLED",
                p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
                p_CLKOP_ENABLE="ENABLED", p_FEEDBK_PATH="CLKOP",
                **{f"p_{k}": v for k, v in p.items()},
                i_CLKI=clk_buf.i, i_CLKFB=cd_sync.clk, o_CLKOP=cd_sync.clk,
                i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1,
                i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_LOCK=locked)
        else:
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
                **{f"p_{k}": v for k, v in p.items()},
                i_PACKAGEPIN=clk_port.io, o_PLLOUTGLOBAL=cd_sync.clk,
                i_RESETB=1, i_BYPASS=0, o_LOCK=locked)
        # No explicit constraint on the core clock: nextpnr derives it from the PLL's
        # parameters and the oscillator's constraint (the report checks that it did).

        # Power-on reset: held while the PLL is unlocked and 256 cycles after.
        locked_s = Signal()
        m.submodules.lock_sync = FFSynchronizer(locked, locked_s, o_domain="por")
        hold = Signal(8, init=0xFF)
        with m.If(~locked_s):
            m.d.por += hold.eq(0xFF)
        with m.Elif(hold != 0):
            m.d.por += hold.eq(hold - 1)
        # The reset itself is a register (the core uses it combinationally in its
        # handshakes), fed by a second one beside the counter: the route to wherever the
        # reset's loads pull it is then the whole of its one path.
        rst_early = Signal(init=1)
        rst = Signal(init=1)
        m.d.por += [rst_early.eq(hold != 0), rst.eq(rst_early)]
        m.d.comb += cd_sync.rst.eq(rst)

        m.submodules.link_top = top = LinkTop(self.cfg, self.divisor,
                                              timeout_bits=self.timeout_bits)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [top.uart_rx.eq(rx_buf.i), tx_buf.o.eq(top.uart_tx)]

        # LEDs: status bits 0..2, then a ~1 Hz heartbeat.
        beat = Signal(range(max(2, int(self.f_core_hz))))
        m.d.sync += beat.eq(beat + 1)
        leds = []
        for i in range(board.leds):
            buf = io.Buffer("o", platform.request("led", i, dir="-"))
            m.submodules[f"led_buf_{i}"] = buf
            leds.append(buf.o)
        shown = [top.status[0], top.status[1], top.status[2]][:board.leds - 1]
        for led, value in zip(leds, shown, strict=False):
            m.d.comb += led.eq(value)
        m.d.comb += leds[len(shown)].eq(beat[-1])
        return m
