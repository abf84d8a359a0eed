"""Formal property wrappers: Amaranth designs whose ``Assert``/``Assume`` statements state the
contract of a gateware block over free inputs, for :func:`sqhw.toolchain.run_sby`.

Each wrapper is a :class:`~amaranth.lib.wiring.Component` whose own input ports are left
undriven: in the RTLIL given to SymbiYosys they are top-level inputs, which the solver
chooses freely in every step (the same as ``AnySeq``).
"""

from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Cat, Module, ResetSignal, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

from sqhw.format import HWConfig, SQFormat
from sqhw.gateware.array import MacArray, act_layout, weight_layout
from sqhw.gateware.unpack import Unpacker

__all__ = ["UnpackerProps", "MacArrayHandshakeProps", "to_rtlil", "stateful_cells"]


def to_rtlil(design) -> str:
    """RTLIL text of ``design`` with the top module named ``top``."""
    return rtlil.convert(design, name="top")


def stateful_cells(rtlil_text: str) -> list[str]:
    """The cell types in ``rtlil_text`` that hold state (flip-flops, memories, ``$anyinit``).

    An empty list means the design is purely combinational, so a depth-1 check over free
    inputs covers every input it can ever see: it is a complete (unbounded) proof.
    """
    kinds = []
    for line in rtlil_text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "cell":
            kind = parts[1]
            if any(s in kind for s in ("dff", "dlatch", "$mem", "$anyinit", "$ff", "sr")):
                kinds.append(kind)
    return kinds


class UnpackerProps(wiring.Component):
    """The :class:`~sqhw.gateware.unpack.Unpacker` contract (datasheet §3, §6) over a free bank.

    With ``idx[t] = rel[t] + t`` and ``n`` = the number of vmask codes in ``low`` (counted
    here by a plain adder chain, independent of the unpacker's prefix network):

    - ``mask``: ``mask[i] == (low[i] == vmask)`` for every i;
    - ``malformed``: ``malformed == (n != k)``;
    - ``vmask_at_t`` (a): when not malformed, ``low[idx[t]]`` is the vmask code, for every t;
    - ``in_range_t`` / ``increasing_t`` (b): when not malformed, ``idx[t] < b`` and
      ``idx[t] < idx[t+1]``.

    Together, when not malformed: the k outputs are k *distinct* vmask positions (strictly
    increasing), and there are exactly k vmask positions, so the outputs are exactly the
    vmask positions, in increasing order; that is, ``idx[t]`` is the t-th vmask position.

    Parameters
    ----------
    fmt : SQFormat
    unpacker : callable, optional
        Builds the design under test from ``fmt`` (default :class:`Unpacker`); a test passes
        a mutant here to check that a wrong unpacker fails the proof.
    """

    def __init__(self, fmt: SQFormat, unpacker=Unpacker):
        self._fmt = fmt
        self._make = unpacker
        super().__init__({"low": In(data.ArrayLayout(signed(fmt.low_width), fmt.bank_size))})

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt
        b, k = fmt.bank_size, fmt.k
        m.submodules.dut = dut = self._make(fmt)
        m.d.comb += dut.low.eq(self.low)

        is_vmask = Signal(b)
        m.d.comb += is_vmask.eq(Cat(*(self.low[i] == fmt.vmask for i in range(b))))
        count = Signal(range(b + 1))
        total = 0
        for i in range(b):
            total = total + is_vmask[i]
        m.d.comb += count.eq(total)

        m.d.comb += [
            Assert(dut.mask == is_vmask, "mask"),
            Assert(dut.malformed == (count != k), "malformed"),
        ]
        idx = [Signal(range(2 * b), name=f"idx{t}") for t in range(k)]
        for t in range(k):
            m.d.comb += idx[t].eq(dut.rel[t] + t)
        with m.If(~dut.malformed):
            for t in range(k):
                m.d.comb += [
                    Assert(is_vmask.bit_select(idx[t], 1), f"vmask_at_{t}"),
                    Assert(idx[t] < b, f"in_range_{t}"),
                ]
                if t + 1 < k:
                    m.d.comb += Assert(idx[t] < idx[t + 1], f"increasing_{t}")
        return m


class MacArrayHandshakeProps(wiring.Component):
    """Stream rules of :class:`~sqhw.gateware.array.MacArray` over free stream inputs.

    Every input of the array (``w``, ``a`` payloads and valids, ``r.ready``) is a free input
    of this wrapper, chosen by the solver each cycle, constrained only by:

    - *Assume* (source rule, AXI4-Stream): on ``w`` and on ``a``, a beat that was valid and
      not accepted last cycle is still valid this cycle with the same payload;
    - *Assume* the reset is never asserted (the rules are stated from power-up; every register
      starts at its ``init`` value).

    Asserted every cycle:

    - ``r_valid_held`` / ``r_payload_held``: if ``r.valid & ~r.ready`` last cycle, then
      ``r.valid`` is 1 and ``r.payload`` is unchanged;
    - ``never_negative``: results accepted never exceed tokens accepted (an activation beat
      with ``last`` accepted): no result without a token;
    - ``within_depth``: tokens accepted − results accepted ≤ ``cfg.result_fifo_depth``: the
      credits never let more tokens in than the result FIFO can hold;
    - ``drains``: if ``r.ready`` was 1 and no token was accepted in each of the last
      ``cfg.latency + 1`` cycles, then tokens accepted == results accepted (no token lost,
      none emitted twice). Checked only once the window fits the BMC depth.

    Parameters
    ----------
    cfg : HWConfig
    bound : int, optional
        The bound of ``within_depth`` (default ``cfg.result_fifo_depth``); a test passes one
        less to check that a full FIFO is reachable (so the assumptions do not starve it)
        and that a failing assertion is reported.
    """

    def __init__(self, cfg: HWConfig, bound: int | None = None):
        self._cfg = cfg
        self._bound = cfg.result_fifo_depth if bound is None else bound
        super().__init__({
            "w_valid": In(1), "w_payload": In(weight_layout(cfg)),
            "a_valid": In(1), "a_payload": In(act_layout(cfg)),
            "r_ready": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = MacArray(self._cfg)
        m.d.comb += [
            dut.w.valid.eq(self.w_valid), dut.w.payload.eq(self.w_payload),
            dut.a.valid.eq(self.a_valid), dut.a.payload.eq(self.a_payload),
            dut.r.ready.eq(self.r_ready),
        ]
        m.d.comb += Assume(~ResetSignal("sync"), "no_reset")

        # Last cycle's handshake signals (0 before the first cycle).
        for name, port, ready in (("w", dut.w, dut.w.ready), ("a", dut.a, dut.a.ready)):
            p_valid = Signal(name=f"past_{name}_valid")
            p_ready = Signal(name=f"past_{name}_ready")
            p_payload = Signal(len(port.payload.as_value()), name=f"past_{name}_payload")
            m.d.sync += [p_valid.eq(port.valid), p_ready.eq(ready),
                         p_payload.eq(port.payload.as_value())]
            with m.If(p_valid & ~p_ready):
                m.d.comb += Assume(port.valid & (port.payload.as_value() == p_payload),
                                   f"{name}_source_holds")

        r = dut.r
        p_r_valid, p_r_ready = Signal(), Signal()
        p_r_payload = Signal(len(r.payload.as_value()))
        m.d.sync += [p_r_valid.eq(r.valid), p_r_ready.eq(r.ready),
                     p_r_payload.eq(r.payload.as_value())]
        with m.If(p_r_valid & ~p_r_ready):
            m.d.comb += [
                Assert(r.valid, "r_valid_held"),
                Assert(r.payload.as_value() == p_r_payload, "r_payload_held"),
            ]

        # Token / result counting. Counters are wide enough for any depth the tests use.
        L = self._cfg.latency + 1
        tok = Signal()
        res = Signal()
        m.d.comb += [tok.eq(dut.a.valid & dut.a.ready & dut.a.payload.last),
                     res.eq(r.valid & r.ready)]
        n_tok = Signal(8)
        n_res = Signal(8)
        m.d.sync += [n_tok.eq(n_tok + tok), n_res.eq(n_res + res)]
        outstanding = Signal(signed(10))
        m.d.comb += outstanding.eq(n_tok - n_res)
        ready_hist = Signal(L)      # bit j: r.ready was 1, j + 1 cycles ago
        tok_hist = Signal(L)        # bit j: a token was accepted j + 1 cycles ago
        m.d.sync += [ready_hist.eq(Cat(r.ready, ready_hist[:-1])),
                     tok_hist.eq(Cat(tok, tok_hist[:-1]))]
        m.d.comb += [
            Assert(outstanding >= 0, "never_negative"),
            Assert(outstanding <= self._bound, "within_depth"),
        ]
        with m.If(ready_hist.all() & ~tok_hist.any()):
            m.d.comb += Assert(outstanding == 0, "drains")
        return m
