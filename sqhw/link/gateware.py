"""UART host link: a framed protocol over 8N1 UART in front of the core.

The protocol (``docs/host-link.md``) is defined once, in :mod:`sqhw.link.protocol`; this
module is its gateware. :class:`LinkTop` is the core (:class:`~sqhw.gateware.top.Top`)
behind a :class:`HostLink`: the board tops (:mod:`sqhw.fpga.boards`) wrap it with a PLL and
pins; the simulated board (:mod:`sqhw.sim.board`, ``python -m sqhw.host --port sim``) and
the cocotb test (``verif/fpga/test_board_sim.py``) run it as it is.

Flow control is stop-and-wait: the host sends one frame and waits for its reply (ACK,
ERROR or STATUS) before the next one; RESULT frames are sent as the core produces them.
A frame is buffered whole and checked (CRC, length, type) before any byte of it reaches
the core, so a corrupted or truncated frame never leaves the core half-fed.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..format import HWConfig
from ..gateware.top import Top
from . import protocol as P

__all__ = ["UARTRx", "UARTTx", "HostLink", "LinkTop", "link_verilog", "DEFAULT_TIMEOUT_BITS"]

#: A frame that stops for this many bit times is dropped with an ERROR (timeout) reply.
DEFAULT_TIMEOUT_BITS = 2048


def _check_divisor(divisor):
    if isinstance(divisor, bool) or not isinstance(divisor, int):
        raise TypeError(f"divisor must be an integer, not {divisor!r}")
    if divisor < 4:
        raise ValueError(f"divisor must be at least 4 clocks per bit, not {divisor}")


class UARTRx(wiring.Component):
    """8N1 UART receiver sampling mid-bit.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4.

    Attributes
    ----------
    rx : In(1)
        The line, already synchronised to the clock domain (idle high).
    data : Out(8)
        The byte received (LSB first on the line); valid with ``valid``.
    valid : Out(1)
        High for one cycle when ``data`` is a new byte with a good stop bit.
    """

    rx: In(1, init=1)
    data: Out(8)
    valid: Out(1)

    def __init__(self, divisor):
        _check_divisor(divisor)
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        count = Signal(range(d))
        bit = Signal(range(8))
        shreg = Signal(8)
        m.d.comb += self.data.eq(shreg)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~self.rx):
                    m.d.sync += count.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += count.eq(count - 1)
                with m.If(count == 0):
                    with m.If(self.rx):       # a glitch, not a start bit
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [count.eq(d - 1), bit.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += count.eq(count - 1)
                with m.If(count == 0):
                    m.d.sync += [count.eq(d - 1), shreg.eq(Cat(shreg[1:], self.rx)),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += count.eq(count - 1)
                with m.If(count == 0):
                    with m.If(self.rx):
                        m.d.comb += self.valid.eq(1)
                        m.next = "IDLE"
                    with m.Else():            # framing error or break: wait for idle
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(self.rx):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """8N1 UART transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4.

    Attributes
    ----------
    data : In(8)
    valid : In(1)
    ready : Out(1)
        A byte moves when ``valid & ready``; ``ready`` is high only while the line is idle.
    tx : Out(1)
        The line (a register, idle high).
    """

    data: In(8)
    valid: In(1)
    ready: Out(1)
    tx: Out(1)

    def __init__(self, divisor):
        _check_divisor(divisor)
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        count = Signal(range(d))
        bit = Signal(range(10))
        shreg = Signal(10, init=0x3FF)
        m.d.comb += self.tx.eq(shreg[0])
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.ready.eq(1)
                with m.If(self.valid):
                    m.d.sync += [shreg.eq(Cat(Const(0, 1), self.data, Const(1, 1))),
                                 count.eq(d - 1), bit.eq(0)]
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.sync += count.eq(count - 1)
                with m.If(count == 0):
                    m.d.sync += [count.eq(d - 1), shreg.eq(Cat(shreg[1:], Const(1, 1))),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 9):
                        m.next = "IDLE"
        return m


class HostLink(wiring.Component):
    """The protocol engine: UART in and out, one frame buffer, the core's three streams.

    Parameters
    ----------
    cfg : HWConfig
        The core's configuration (beat sizes, and the digest reported by STATUS).
    divisor : int
        Clock cycles per UART bit (clock frequency / baud rate), at least 4.
    timeout_bits : int
        A frame with no new byte for this many bit times is dropped (ERROR timeout).
    max_payload : int
        Bytes of the frame buffer: the largest LEN accepted. At least one beat
        (1 + the larger of record_bytes and the activation bytes).

    Attributes
    ----------
    rx : In(1)
        UART line from the host, synchronised (idle high).
    tx : Out(1)
        UART line to the host.
    w_data, w_last, w_valid : Out
        Weight stream to the core (datasheet §5 ``s_axis_w_*``); ``w_ready`` In.
    a_data, a_last, a_user, a_valid : Out
        Activation stream (``s_axis_a_*``); ``a_ready`` In.
    r_data, r_user, r_valid : In
        Result stream (``m_axis_r_*``); ``r_ready`` Out.
    status : In(4)
        The core's sticky error bits, reported by STATUS.
    link_errors : Out(8)
        Frames rejected so far (saturating), also reported by STATUS.

    Raises
    ------
    TypeError, ValueError
        On a bad parameter.
    """

    def __init__(self, cfg, divisor, *, timeout_bits=DEFAULT_TIMEOUT_BITS,
                 max_payload=P.DEFAULT_MAX_PAYLOAD):
        if not isinstance(cfg, HWConfig):
            raise TypeError(f"cfg must be an HWConfig, not {cfg!r}")
        _check_divisor(divisor)
        if isinstance(timeout_bits, bool) or not isinstance(timeout_bits, int) \
                or timeout_bits < 20:
            raise ValueError(f"timeout_bits must be an integer of at least 20, "
                             f"not {timeout_bits!r}")
        sizes = P.beat_sizes(cfg)
        need = 1 + max(sizes["weights"], sizes["acts"])
        if isinstance(max_payload, bool) or not isinstance(max_payload, int) \
                or not need <= max_payload <= 0xFFFF:
            raise ValueError(f"max_payload must be an integer in {need}..65535 (one beat), "
                             f"not {max_payload!r}")
        self._cfg = cfg
        self._divisor = divisor
        self._timeout_bits = timeout_bits
        self._max_payload = max_payload
        self._sizes = sizes
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1),
            "w_data": Out(8 * sizes["weights"]),
            "w_last": Out(1),
            "w_valid": Out(1),
            "w_ready": In(1),
            "a_data": Out(8 * sizes["acts"]),
            "a_last": Out(1),
            "a_user": Out(1),
            "a_valid": Out(1),
            "a_ready": In(1),
            "r_data": In(8 * sizes["result"]),
            "r_user": In(1),
            "r_valid": In(1),
            "r_ready": Out(1),
            "status": In(4),
            "link_errors": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, sizes = self._cfg, self._sizes
        wb, ab, rbytes = sizes["weights"], sizes["acts"], sizes["result"]
        m.submodules.uart_rx = urx = UARTRx(self._divisor)
        m.submodules.uart_tx = utx = UARTTx(self._divisor)
        m.submodules.rx_crc = rcrc = P.CRC.create()
        m.submodules.tx_crc = tcrc = P.CRC.create()
        m.submodules.buf = buf = Memory(shape=8, depth=self._max_payload, init=[])
        wr = buf.write_port()
        rd = buf.read_port()
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]

        byte, got = urx.data, urx.valid
        # The frame buffer's read data, registered once (no reset, no enable: Yosys packs it
        # into the block RAM's output register, whose clock-to-out is a sixth of the RAM's).
        rd_q = Signal(8, reset_less=True)
        m.d.sync += rd_q.eq(rd.data)

        # -- requests from the receiver to the transmitter ----------------------------------
        K_ACK, K_ERROR, K_STATUS = 0, 1, 2
        req = Signal()
        req_kind = Signal(2)
        req_code = Signal(8)
        req_done = Signal()

        # -- receiver ------------------------------------------------------------------------
        ftype = Signal(8)
        length = Signal(16)
        count = Signal(16)
        crc_rx = Signal(16)
        beat_bytes = Signal(range(2 + max(wb, ab)))   # flags + data of one beat
        phase = Signal.like(beat_bytes)                # payload bytes mod beat_bytes
        limit = self._timeout_bits * self._divisor
        idle = Signal(range(limit + 1))
        ptr = Signal(16)
        idx = Signal.like(beat_bytes)
        beat = Signal(8 * (1 + max(wb, ab)))
        is_w = ftype == P.T_WEIGHTS
        is_a = ftype == P.T_ACTS

        m.d.comb += [
            wr.addr.eq(count), wr.data.eq(byte),
            rd.addr.eq(ptr),
            self.w_data.eq(beat[8:8 + 8 * wb]), self.w_last.eq(beat[0]),
            self.a_data.eq(beat[8:8 + 8 * ab]), self.a_last.eq(beat[0]),
            self.a_user.eq(beat[1]),
            rcrc.data.eq(byte),
        ]
        # Inactivity timer: counts clocks since the last byte while inside a frame.
        with m.If(got):
            m.d.sync += idle.eq(0)
        with m.Elif(idle != limit):
            m.d.sync += idle.eq(idle + 1)
        timed_out = idle == limit

        def error(code):
            m.d.sync += [req_code.eq(code), req_kind.eq(K_ERROR)]
            with m.If(self.link_errors != 0xFF):
                m.d.sync += self.link_errors.eq(self.link_errors + 1)
            m.next = "REPLY"

        with m.FSM():
            with m.State("HUNT"):
                with m.If(got & (byte == P.SYNC)):
                    m.d.comb += rcrc.start.eq(1)
                    m.d.sync += [ftype.eq(0), count.eq(0), phase.eq(0)]
                    m.next = "TYPE"
            for state, nxt in (("TYPE", "LEN0"), ("LEN0", "LEN1"), ("LEN1", None),
                               ("PAYLOAD", None), ("CRC0", "CRC1"), ("CRC1", "CHECK")):
                with m.State(state):
                    with m.If(got):
                        if state in ("TYPE", "LEN0", "LEN1", "PAYLOAD"):
                            m.d.comb += rcrc.valid.eq(1)
                        if state == "TYPE":
                            m.d.sync += ftype.eq(byte)
                        elif state == "LEN0":
                            m.d.sync += length[:8].eq(byte)
                        elif state == "LEN1":
                            full = Cat(length[:8], byte)
                            m.d.sync += length[8:].eq(byte)
                            with m.Switch(ftype):
                                with m.Case(P.T_WEIGHTS):
                                    m.d.sync += beat_bytes.eq(1 + wb)
                                with m.Case(P.T_ACTS):
                                    m.d.sync += beat_bytes.eq(1 + ab)
                            with m.If((ftype != P.T_WEIGHTS) & (ftype != P.T_ACTS)
                                      & (ftype != P.T_STATUS)):
                                error(P.ERR_TYPE)
                            with m.Elif((ftype == P.T_STATUS) & (full != 0)):
                                error(P.ERR_LENGTH)
                            with m.Elif((ftype != P.T_STATUS)
                                        & ((full == 0) | (full > self._max_payload))):
                                error(P.ERR_LENGTH)
                            with m.Elif(full == 0):
                                m.next = "CRC0"
                            with m.Else():
                                m.next = "PAYLOAD"
                        elif state == "PAYLOAD":
                            m.d.comb += wr.en.eq(1)
                            m.d.sync += [count.eq(count + 1),
                                         phase.eq(Mux(phase == beat_bytes - 1, 0, phase + 1))]
                            with m.If(count + 1 == length):
                                m.next = "CRC0"
                        elif state == "CRC0":
                            m.d.sync += crc_rx[:8].eq(byte)
                        elif state == "CRC1":
                            m.d.sync += crc_rx[8:].eq(byte)
                        if nxt is not None:
                            m.next = nxt
                    with m.Elif(timed_out):
                        error(P.ERR_TIMEOUT)
            with m.State("CHECK"):
                with m.If(rcrc.crc != crc_rx):
                    error(P.ERR_CRC)
                with m.Elif(ftype == P.T_STATUS):
                    m.d.sync += req_kind.eq(K_STATUS)
                    m.next = "REPLY"
                with m.Elif(phase != 0):
                    error(P.ERR_LENGTH)
                with m.Else():
                    m.d.sync += [ptr.eq(0), idx.eq(0)]
                    m.next = "FETCH"
            # Replay the checked frame into the core, one beat at a time.
            with m.State("FETCH"):                    # rd.addr = ptr; data next cycle
                m.next = "HOLD"
            with m.State("HOLD"):                     # the byte in the RAM's output register
                m.next = "LATCH"
            with m.State("LATCH"):
                m.d.sync += [beat.word_select(idx, 8).eq(rd_q), ptr.eq(ptr + 1)]
                with m.If(idx == beat_bytes - 1):
                    m.next = "PUSH"
                with m.Else():
                    m.d.sync += idx.eq(idx + 1)
                    m.next = "FETCH"
            with m.State("PUSH"):
                m.d.comb += [self.w_valid.eq(is_w), self.a_valid.eq(is_a)]
                with m.If((is_w & self.w_ready) | (is_a & self.a_ready)):
                    m.d.sync += idx.eq(0)
                    with m.If(ptr == length):
                        m.d.sync += req_kind.eq(K_ACK)
                        m.next = "REPLY"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("REPLY"):
                m.d.comb += req.eq(1)
                with m.If(req_done):
                    m.next = "HUNT"

        # -- transmitter ---------------------------------------------------------------------
        pay_bytes = max(1 + rbytes, 8)
        pay = Signal(8 * pay_bytes)
        tx_type = Signal(8)
        tx_len = Signal(16)
        tx_idx = Signal(16)
        digest = int.from_bytes(P.digest_bytes(cfg), "little")
        m.d.comb += tcrc.data.eq(utx.data)
        # What the frame carries: set in IDLE, loaded into ``pay`` in LOAD. Every enable of
        # the wide ``pay`` register is a register (the FSM state, ``shift_q``): its fan-out
        # to every result bit is routing only, never a chain of logic.
        K_RESULT = 3
        src = Signal(2)
        shift_q = Signal()                   # a payload byte went out last cycle
        m.d.sync += shift_q.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(req):
                    m.d.comb += req_done.eq(1)
                    m.d.sync += src.eq(req_kind)
                    with m.Switch(req_kind):
                        with m.Case(K_ACK):
                            m.d.sync += [tx_type.eq(P.T_ACK), tx_len.eq(1)]
                        with m.Case(K_ERROR):
                            m.d.sync += [tx_type.eq(P.T_ERROR), tx_len.eq(2)]
                        with m.Default():
                            m.d.sync += [tx_type.eq(P.T_STATUS_REPLY), tx_len.eq(8)]
                    m.next = "LOAD"
                with m.Elif(self.r_valid):
                    m.d.sync += [src.eq(K_RESULT), tx_type.eq(P.T_RESULT),
                                 tx_len.eq(1 + rbytes)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += tcrc.start.eq(1)
                m.d.sync += tx_idx.eq(0)
                with m.Switch(src):
                    with m.Case(K_ACK):
                        m.d.sync += pay.eq(ftype)
                    with m.Case(K_ERROR):
                        m.d.sync += pay.eq(Cat(req_code, ftype))
                    with m.Case(K_STATUS):
                        m.d.sync += pay.eq(Cat(self.status, Const(0, 4), self.link_errors,
                                               Const(digest, 48)))
                    with m.Default():
                        # The result stays on r_data until r_ready: take it now.
                        m.d.comb += self.r_ready.eq(1)
                        m.d.sync += pay.eq(Cat(self.r_user, Const(0, 7), self.r_data))
                m.next = "SEND"
            with m.State("SEND"):
                in_pay = (tx_idx >= 4) & (tx_idx < tx_len + 4)
                with m.If(shift_q):
                    m.d.sync += pay.eq(pay[8:])
                with m.If(tx_idx == 0):
                    m.d.comb += utx.data.eq(P.SYNC)
                with m.Elif(tx_idx == 1):
                    m.d.comb += utx.data.eq(tx_type)
                with m.Elif(tx_idx == 2):
                    m.d.comb += utx.data.eq(tx_len[:8])
                with m.Elif(tx_idx == 3):
                    m.d.comb += utx.data.eq(tx_len[8:])
                with m.Elif(in_pay):
                    m.d.comb += utx.data.eq(pay[:8])
                with m.Elif(tx_idx == tx_len + 4):
                    m.d.comb += utx.data.eq(tcrc.crc[:8])
                with m.Else():
                    m.d.comb += utx.data.eq(tcrc.crc[8:])
                m.d.comb += utx.valid.eq(1)
                with m.If(utx.ready):
                    m.d.comb += tcrc.valid.eq((tx_idx != 0) & (tx_idx < tx_len + 4))
                    m.d.sync += [tx_idx.eq(tx_idx + 1), shift_q.eq(in_pay)]
                    with m.If(tx_idx == tx_len + 5):
                        m.next = "IDLE"
        return m


class LinkTop(wiring.Component):
    """The core behind a UART host link: what a board top instantiates, and what the
    simulation test runs (with a small ``divisor``).

    Parameters
    ----------
    cfg : HWConfig
    divisor, timeout_bits, max_payload
        As for :class:`HostLink`.

    Attributes
    ----------
    uart_rx : In(1)
        From the host (asynchronous: synchronised here with two flip-flops).
    uart_tx : Out(1)
        To the host.
    status : Out(4)
        The core's sticky error bits (for LEDs).
    """

    uart_rx: In(1, init=1)
    uart_tx: Out(1)
    status: Out(4)

    def __init__(self, cfg, divisor, *, timeout_bits=DEFAULT_TIMEOUT_BITS,
                 max_payload=P.DEFAULT_MAX_PAYLOAD):
        self._link = HostLink(cfg, divisor, timeout_bits=timeout_bits,
                              max_payload=max_payload)
        self._cfg = cfg
        super().__init__()

    @property
    def cfg(self) -> HWConfig:
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = self._link
        m.submodules.core = core = Top(self._cfg)
        m.submodules.rx_sync = FFSynchronizer(self.uart_rx, link.rx, init=1)
        m.d.comb += [
            self.uart_tx.eq(link.tx),
            self.status.eq(core.status),
            core.s_axis_w_tdata.eq(link.w_data),
            core.s_axis_w_tlast.eq(link.w_last),
            core.s_axis_w_tvalid.eq(link.w_valid),
            link.w_ready.eq(core.s_axis_w_tready),
            core.s_axis_a_tdata.eq(link.a_data),
            core.s_axis_a_tlast.eq(link.a_last),
            core.s_axis_a_tuser.eq(link.a_user),
            core.s_axis_a_tvalid.eq(link.a_valid),
            link.a_ready.eq(core.s_axis_a_tready),
            link.r_data.eq(core.m_axis_r_tdata),
            link.r_user.eq(core.m_axis_r_tuser),
            link.r_valid.eq(core.m_axis_r_tvalid),
            core.m_axis_r_tready.eq(link.r_ready),
            link.status.eq(core.status),
        ]
        return m


def link_verilog(cfg, divisor, *, name="sqhw_link_top", **kwargs) -> str:
    """Verilog of :class:`LinkTop` (ports ``clk``, ``rst``, ``uart_rx``, ``uart_tx``,
    ``status``), deterministic (``emit_src=False``): the simulation model of a board."""
    from amaranth.back import verilog
    top = LinkTop(cfg, divisor, **kwargs)
    return verilog.convert(top, name=name, emit_src=False,
                           ports=[top.uart_rx, top.uart_tx, top.status])
