"""Formal proof of the select-and-gather unit.

:class:`~sqhw.gateware.gather.SelectGather` is combinational, so a proof over free inputs
(every activation bank and every mask at once) is a complete, unbounded proof. Two routes:
SymbiYosys from YoWASP (``smtbmc z3``, :func:`prove_z3`) for b = 4, 8 and 16 (k = 2), and
Yosys's own SAT prover (:func:`prove_sat_route`, :func:`sqhw.toolchain.prove_sat`) for b = 16,
32 and 64, where z3 needs many minutes. For each
configuration the harness asserts, against a specification written independently of the
implementation (a ripple count instead of the parallel prefix, plain indexing instead of the
restricted one-hot multiplexers):

1. ``malformed`` iff the mask's popcount is not k;
2. with a well-formed mask, for every channel i with ``c_i`` high channels before it: a high
   channel is on high lane ``c_i``, a low channel on low lane ``i - c_i`` (so every lane
   holds the channel the t-th high / u-th low channel of the mask, each group in increasing
   channel order);
3. for any mask, each lane equals :func:`~sqhw.gateware.gather.ref_gather`'s definition
   (the t-th high channel if it lies in ``t .. b-k+t``, else 0; likewise for low lanes);
4. ``code_error`` iff some channel's code is outside its group's symmetric range.

Two planted bugs (a corner of the high lanes' restricted range; two swapped low lanes under
one rare mask) must make the proof fail.
"""

from pathlib import Path

import pytest
from amaranth.hdl import Array, Assert, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from sqhw.format import SQFormat
from sqhw.gateware.gather import SelectGather
from sqhw.toolchain import SbyResult, prove_sat, run_sby, sby_text

from .props import to_rtlil

ACT_BITS = 8
ROOT = Path(__file__).resolve().parents[2]


def _workdir(name: str) -> Path:
    return ROOT / "build" / "formal" / name


def prove_z3(design, name: str) -> SbyResult:
    """Prove ``design`` (an Elaboratable holding ``Assert``\\ s, no state) with sby, z3.

    ``mode bmc``, ``depth 1``: the design has no registers and its inputs are free, so the
    one step checks every input at once, which is a complete proof (k-induction would only
    run the same check a second time).
    """
    sby = sby_text(mode="bmc", depth=1, files=["design.il"])
    return run_sby(sby, {"design.il": to_rtlil(design)}, _workdir(name),
                   timeout=900)


def prove_sat_route(design, name: str) -> bool:
    """The same proof with Yosys's SAT prover (:func:`sqhw.toolchain.prove_sat`): z3 through
    sby takes many minutes from b = 32 on (the count equivalences between the parallel
    prefix and the ripple specification); bit-level SAT takes seconds."""
    return prove_sat(to_rtlil(design), _workdir(name))


class GatherSpec(wiring.Component):
    """The proof harness: free ``act`` and ``mask`` inputs, the DUT, and the assertions."""

    def __init__(self, fmt, dut_cls=SelectGather):
        self._fmt = fmt
        self._dut_cls = dut_cls
        super().__init__({
            "act": In(ACT_BITS * fmt.bank_size),
            "mask": In(fmt.bank_size),
        })

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt
        b, k = fmt.bank_size, fmt.k
        m.submodules.dut = dut = self._dut_cls(fmt, ACT_BITS)
        m.d.comb += [dut.act.as_value().eq(self.act), dut.mask.eq(self.mask)]
        act = [self.act[i * ACT_BITS:(i + 1) * ACT_BITS].as_signed() for i in range(b)]
        mk = [self.mask[i] for i in range(b)]

        # Ripple count: cnt[i] = high channels before channel i.
        cnt = []
        run = Signal(range(b + 1), name="cnt_0")
        m.d.comb += run.eq(0)
        for i in range(b):
            cnt.append(run)
            nxt = Signal(range(b + 1), name=f"cnt_{i + 1}")
            m.d.comb += nxt.eq(run + mk[i])
            run = nxt
        total = run
        well_formed = total == k

        # 1. malformed
        m.d.comb += Assert(dut.malformed == ~well_formed, "malformed iff popcount != k")

        high = [dut.high[t] for t in range(k)] if k else []
        low = [dut.low[u] for u in range(b - k)] if fmt.low_bits else []
        # Lane arrays padded so any index (even a nonsensical one) is defined.
        pad = [Signal(signed(ACT_BITS), name=f"pad{i}") for i in range(b + 1)]
        high_arr = Array(high + pad[:b + 1 - len(high)])
        low_arr = Array(low + pad[:b + 1 - len(low)])

        # 2. well-formed: each channel lands on its lane.
        for i in range(b):
            with m.If(well_formed):
                with m.If(mk[i]):
                    m.d.comb += Assert(high_arr[cnt[i]] == act[i], f"high channel {i}")
                if low:
                    with m.Else():
                        lows_before = Signal(range(b + 1), name=f"lows_before_{i}")
                        m.d.comb += lows_before.eq(i - cnt[i])
                        m.d.comb += Assert(low_arr[lows_before] == act[i], f"low channel {i}")

        # 3. any mask: the documented lane contents.
        for t, lane in enumerate(high):
            exp = 0
            for i in range(b):
                in_reach = t <= i <= b - k + t
                if in_reach:
                    exp = Mux(mk[i] & (cnt[i] == t), act[i], exp)
            m.d.comb += Assert(lane == exp, f"high lane {t}")
        for u, lane in enumerate(low):
            exp = 0
            for i in range(u, u + k + 1):
                exp = Mux(~mk[i] & (i - cnt[i] == u), act[i], exp)
            m.d.comb += Assert(lane == exp, f"low lane {u}")

        # 4. code ranges.
        err = 0
        for i in range(b):
            mag = Mux(act[i] < 0, -act[i], act[i])
            err = err | Mux(mk[i], mag > fmt.high_max, mag > fmt.low_max)
        m.d.comb += Assert(dut.code_error == err, "code_error iff a code is out of range")
        return m


class _BugHighCorner(SelectGather):
    """Planted bug: the last high lane reads 0 when all high channels sit at the end of the
    bank (the edge of the restricted range, ``t = b-k+t``)."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        b, k = self.fmt.bank_size, self.fmt.k
        end = ((1 << k) - 1) << (b - k)
        with m.If(self.mask == end):
            m.d.comb += self.high[k - 1].eq(0)
        return m


class _BugLowSwap(SelectGather):
    """Planted bug: low lanes 0 and 1 swapped under a single rare mask."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        k = self.fmt.k
        rare = ((1 << k) - 1) << 2          # channels 2..k+1 high, 0 and 1 low
        with m.If(self.mask == rare):
            m.d.comb += [self.low[0].eq(self.act[1]), self.low[1].eq(self.act[0])]
        return m


def fmt_of(b, k, low_bits=4, high_bits=8):
    return SQFormat(bank_size=b, sparsity=1 - k / b, high_bits=high_bits, low_bits=low_bits)


PROOFS = [(4, 1, 4), (4, 2, 4), (4, 2, 0), (8, 2, 4), (8, 4, 2), (16, 2, 4)]


@pytest.mark.parametrize("b,k,low_bits", PROOFS)
def test_prove_gather(b, k, low_bits):
    fmt = fmt_of(b, k, low_bits)
    res = prove_z3(GatherSpec(fmt), f"gather_b{b}_k{k}_l{low_bits}")
    assert res.status == "PASS", res


@pytest.mark.parametrize("b,k,low_bits", [
    (16, 4, 4),
    pytest.param(32, 4, 4, marks=pytest.mark.slow),
    pytest.param(32, 8, 4, marks=pytest.mark.slow),
    pytest.param(64, 8, 4, marks=pytest.mark.slow),
])
def test_prove_gather_wide(b, k, low_bits):
    """Wider banks with Yosys's SAT prover (z3 takes a minute at b = 16, k = 4 and many from
    b = 32 on)."""
    fmt = fmt_of(b, k, low_bits)
    name = f"gather_sat_b{b}_k{k}_l{low_bits}"
    assert prove_sat_route(GatherSpec(fmt), name), f"counterexample in {_workdir(name)}"


@pytest.mark.parametrize("bug", [_BugHighCorner, _BugLowSwap])
def test_planted_bug_is_caught(bug):
    fmt = fmt_of(8, 2)
    res = prove_z3(GatherSpec(fmt, bug), f"bug_{bug.__name__.strip('_')}")
    assert res.status == "FAIL", "a planted bug was proven correct: the harness cannot fail"
    assert res.failed, res


def test_planted_bug_is_caught_by_sat():
    """The SAT route of the wide proofs fails on a planted bug too."""
    assert not prove_sat_route(GatherSpec(fmt_of(8, 2), _BugHighCorner), "bug_sat")
