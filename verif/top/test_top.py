"""cocotb + Verilator regression of ``sqhw_top`` against the golden model ``hw_matmul``.

Three parts, as in verilog-axis / taxi:

- ``TB``: clock, reset, cocotbext-axi ``AxiStreamSource`` on ``s_axis_w`` / ``s_axis_a`` and
  ``AxiStreamSink`` on ``m_axis_r``, random pause generators, and an in-order scoreboard.
- ``@cocotb.test()`` coroutines: random jobs (bit-exact vs ``hw_matmul``), stalls and
  backpressure, reset mid-job, malformed tile and wrong token length (error beats with
  ``tuser = 1``, data 0, sticky ``status``) each followed by an exact job.
- ``test_top``: a pytest function that emits the Verilog of each configuration of a small
  matrix and runs the cocotb tests on it through :mod:`verif.harness` (one cached build per
  configuration).

The testbench knows the core only through datasheet §4-§8 (bytes and bit positions); it
imports ``sqhw.golden`` for reference values and test data only.

Replay a failure: ``SEED=<seed> .venv/bin/pytest verif/top/test_top.py -k <config id>``
(the seed is printed and is in the failure message); ``WAVES=1`` adds ``dump.fst`` in
``build/sim/<digest>/sqhw_top-fst/runs/<test>/``.
"""

import logging
import os
import random
from pathlib import Path

import pytest

from sqhw.format.spec import HWConfig, SQFormat

ROOT = Path(__file__).resolve().parents[2]

# -- the configuration matrix (pytest side) -----------------------------------------------

_FMT_8_4 = SQFormat(bank_size=8, sparsity=0.75, high_bits=8, low_bits=4)      # k = 2
_FMT_16_4 = SQFormat(bank_size=16, sparsity=0.9375, high_bits=8, low_bits=4)  # k = 1
CONFIGS = {
    "r1-b8-k2": HWConfig(fmt=_FMT_8_4, rows=1, k_max=32),
    "r4-b8-k2": HWConfig(fmt=_FMT_8_4, rows=4, k_max=32),
    "r4-b16-k1": HWConfig(fmt=_FMT_16_4, rows=4, k_max=64),
    "r4-b16-k0-int8": HWConfig(fmt=SQFormat.dense(8, bank_size=16), rows=4, k_max=64),
    "r4-2:4": HWConfig(fmt=SQFormat.two_four(8), rows=4, k_max=16),
    "r4-b8-k2-a4-acc24": HWConfig(fmt=SQFormat(bank_size=8, sparsity=0.75, high_bits=6,
                                               low_bits=3, scale_bits=4),
                                  rows=4, act_bits=4, k_max=32, acc_bits=24),
}
SLOW_CONFIGS = {
    "r16-b16-k2": HWConfig(rows=16, k_max=64),
}


def _verilog_for(cfg: HWConfig) -> Path:
    """Emit ``sqhw_top.v`` for ``cfg`` under build/rtl/<digest>/ (rewritten only on change)."""
    from sqhw.gateware.emit import verilog_text
    path = ROOT / "build" / "rtl" / cfg.digest() / "sqhw_top.v"
    text = verilog_text(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(path)
    return path


@pytest.mark.parametrize("name", list(CONFIGS))
def test_top(name):
    from verif.harness import run_cocotb
    cfg = CONFIGS[name]
    run_cocotb(cfg, _verilog_for(cfg), "verif.top.test_top", top="sqhw_top", run_name=name)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW_CONFIGS))
def test_top_slow(name):
    from verif.harness import run_cocotb
    cfg = SLOW_CONFIGS[name]
    run_cocotb(cfg, _verilog_for(cfg), "verif.top.test_top", top="sqhw_top", run_name=name)


def test_top_lint():
    from sqhw.toolchain import verilator_lint
    for cfg in CONFIGS.values():
        verilator_lint(_verilog_for(cfg), "sqhw_top")


# -- the cocotb side ----------------------------------------------------------------------

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, Event, RisingEdge, with_timeout
except ImportError:  # pragma: no cover
    cocotb = None


def _pause(rng: random.Random, p_idle: float):
    """Pause generator for cocotbext-axi: idle with probability ``p_idle`` per cycle."""
    while True:
        yield rng.random() < p_idle


def _bursty(rng: random.Random):
    """Long idle / busy runs (a stall pattern that random per-cycle pauses rarely make)."""
    while True:
        for _ in range(rng.randrange(1, 20)):
            yield False
        for _ in range(rng.randrange(1, 12)):
            yield True


class Job:
    """One weight tile and its tokens, with the expected results.

    The tile is ``R`` consecutive columns of a ``pack`` image; tokens are ``M`` rows of X.
    """

    def __init__(self, cfg: HWConfig, rng: random.Random, nb: int | None = None,
                 m: int | None = None, act_extremes: bool = False):
        import torch

        from sqhw.golden import hw_matmul, pack, random_sqtensor
        self.cfg = cfg
        fmt = cfg.fmt
        self.nb = nb if nb is not None else rng.randint(1, min(cfg.nb_max, 4))
        self.m = m if m is not None else rng.randint(1, 4)
        K, N, R = self.nb * fmt.bank_size, cfg.rows, cfg.rows
        g = torch.Generator().manual_seed(rng.getrandbits(62))
        self.sq = random_sqtensor(fmt, K, N, generator=g)
        lo, hi = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
        if act_extremes:
            x = torch.tensor([[rng.choice((lo, hi)) for _ in range(K)] for _ in range(self.m)])
        else:
            x = torch.randint(lo, hi + 1, (self.m, K), generator=g)
        self.x = x
        self.expected = hw_matmul(x, self.sq, cfg.act_bits, cfg.acc_bits)  # [M, R]
        self.image = bytearray(pack(self.sq))
        rb = fmt.record_bytes
        assert len(self.image) == R * self.nb * rb
        self.bad_tokens: set[int] = set()   # tokens expected to give an error beat
        self.tile_error = False             # every token gives an error beat

    # datasheet §4: record of (column n, bank j) at byte offset (n·nb + j)·record_bytes
    def record_slice(self, n: int, j: int) -> slice:
        rb = self.cfg.fmt.record_bytes
        off = (n * self.nb + j) * rb
        return slice(off, off + rb)

    def corrupt_vmask_count(self, rng: random.Random):
        """Make one record malformed: a non-vmask low position becomes vmask (count k+1)."""
        fmt = self.cfg.fmt
        n, j = rng.randrange(self.cfg.rows), rng.randrange(self.nb)
        s = self.record_slice(n, j)
        rec = int.from_bytes(self.image[s], "little")
        wl = fmt.low_width
        vm = 1 << (wl - 1)
        free = [i for i in range(fmt.bank_size) if (rec >> (i * wl)) & ((1 << wl) - 1) != vm]
        i = rng.choice(free)
        rec = (rec & ~(((1 << wl) - 1) << (i * wl))) | (vm << (i * wl))
        self.image[s] = rec.to_bytes(fmt.record_bytes, "little")
        self.tile_error = True

    def corrupt_high_code(self, rng: random.Random):
        """Make one high code the out-of-range ``-2^(h-1)`` (needs k > 0)."""
        fmt = self.cfg.fmt
        assert fmt.k > 0
        n, j = rng.randrange(self.cfg.rows), rng.randrange(self.nb)
        s = self.record_slice(n, j)
        rec = int.from_bytes(self.image[s], "little")
        t = rng.randrange(fmt.k)
        pos = fmt.bank_size * fmt.low_width + t * fmt.high_bits
        mask = ((1 << fmt.high_bits) - 1) << pos
        rec = (rec & ~mask) | ((1 << (fmt.high_bits - 1)) << pos)
        self.image[s] = rec.to_bytes(fmt.record_bytes, "little")
        self.tile_error = True

    def weight_frames(self):
        from cocotbext.axi import AxiStreamFrame
        per_col = self.nb * self.cfg.fmt.record_bytes
        return [AxiStreamFrame(bytes(self.image[n * per_col:(n + 1) * per_col]))
                for n in range(self.cfg.rows)]

    def token_frames(self, last_of_tile: bool = True, short: dict | None = None):
        """One frame per token: nb beats, ``tuser`` = 1 on the tlast beat of the last token.

        ``short`` maps a token index to a beat count to send instead of nb (a malformed
        token, datasheet §8 err_token_len).
        """
        from cocotbext.axi import AxiStreamFrame
        cfg = self.cfg
        b, a = cfg.fmt.bank_size, cfg.act_bits
        lanes = cfg.act_data_bits // 8
        frames = []
        for m in range(self.m):
            beats = self.nb if not short or m not in short else short[m]
            data = bytearray()
            for j in range(beats):
                word = 0
                for i in range(b):
                    k = (j % self.nb) * b + i
                    word |= (int(self.x[m, k]) & ((1 << a) - 1)) << (i * a)
                data += word.to_bytes(lanes, "little")
            last = int(last_of_tile and m == self.m - 1)
            tuser = [0] * (lanes * (beats - 1)) + [last] * lanes
            frames.append(AxiStreamFrame(bytes(data), tuser=tuser))
        return frames

    def expected_results(self):
        """``(data or None, tuser)`` per token, in order; None data means error (0)."""
        out = []
        for m in range(self.m):
            if self.tile_error or m in self.bad_tokens:
                out.append((None, 1))
            else:
                out.append(([int(v) for v in self.expected[m]], 0))
        return out


class TB:
    """Drivers, monitor and scoreboard around ``sqhw_top``."""

    def __init__(self, dut, cfg: HWConfig):
        from cocotbext.axi import AxiStreamBus, AxiStreamSink, AxiStreamSource
        self.dut = dut
        self.cfg = cfg
        self.log = logging.getLogger("cocotb.tb")
        self.log.setLevel(logging.INFO)
        Clock(dut.clk, 10, unit="ns").start()
        self.w_src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_w"), dut.clk, dut.rst)
        self.a_src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_a"), dut.clk, dut.rst)
        self.r_sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_r"), dut.clk, dut.rst)
        for drv in (self.w_src, self.a_src, self.r_sink):
            drv.log.setLevel(logging.WARNING)   # per-frame INFO logs dominate run time
        self.expected: list = []                # in-order scoreboard queue
        self.checked = 0
        self.errors_seen = 0
        self._done = Event()
        self._want = 0
        self._mon = None

    def set_stalls(self, rng: random.Random | None, mode: str = "random"):
        """Random idle cycles on both sources and backpressure on the sink (None: off)."""
        for drv in (self.w_src, self.a_src, self.r_sink):
            if rng is None:
                # clear_pause_generator() leaves `pause` at the generator's last value: a
                # driver stopped mid-pause would stay paused forever.
                drv.clear_pause_generator()
                drv.pause = False
            elif mode == "bursty":
                drv.set_pause_generator(_bursty(random.Random(rng.getrandbits(32))))
            else:
                drv.set_pause_generator(_pause(random.Random(rng.getrandbits(32)),
                                               rng.choice((0.1, 0.3, 0.6))))

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        for src in (self.w_src, self.a_src):
            src.clear()
        self.r_sink.clear()
        self.expected.clear()
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        assert self.dut.status.value.to_unsigned() == 0, "status not cleared by rst"

    # -- scoreboard ---------------------------------------------------------------------
    def _decode(self, frame):
        cfg = self.cfg
        acc = cfg.acc_bits
        assert len(frame.tdata) == cfg.result_data_bits // 8, "result beat is one token"
        word = int.from_bytes(bytes(frame.tdata), "little")
        rows = []
        for r in range(cfg.rows):
            v = (word >> (r * acc)) & ((1 << acc) - 1)
            rows.append(v - (1 << acc) if v >> (acc - 1) else v)
        pad = word >> (cfg.rows * acc)
        # recv() compacts a tuser list that is constant over the beat to one int.
        if frame.tuser is None:
            tuser = {0}
        elif isinstance(frame.tuser, int):
            tuser = {frame.tuser}
        else:
            tuser = set(frame.tuser)
        assert len(tuser) == 1, f"tuser changed within a beat: {frame.tuser}"
        return rows, pad, tuser.pop(), word

    async def _monitor(self):
        while True:
            frame = await self.r_sink.recv()
            assert self.expected, f"unexpected result beat: {frame}"
            want_data, want_user = self.expected.pop(0)
            rows, pad, tuser, word = self._decode(frame)
            idx = self.checked
            assert tuser == want_user, (
                f"result {idx}: tuser {tuser}, expected {want_user} (rows {rows})")
            if want_data is None:
                assert word == 0, f"result {idx}: error beat must carry data 0, got {rows}"
                self.errors_seen += 1
            else:
                assert pad == 0, f"result {idx}: padding bits not 0"
                assert rows == want_data, f"result {idx}: got {rows}, expected {want_data}"
            self.checked += 1
            if self.checked >= self._want:
                self._done.set()

    def start_monitor(self):
        if self._mon is None:
            self._mon = cocotb.start_soon(self._monitor())

    async def run_jobs(self, jobs, timeout_cycles: int | None = None):
        """Queue every job's tile and tokens, then wait for all results, in order."""
        self.start_monitor()
        for job in jobs:
            self.expected.extend(job.expected_results())
        self._want = self.checked + sum(job.m for job in jobs)
        self._done.clear()
        for job in jobs:
            for f in job.weight_frames():
                await self.w_src.send(f)
            for f in job.token_frames(short=getattr(job, "short", None)):
                await self.a_src.send(f)
        beats = sum(job.m * job.nb + self.cfg.rows * job.nb for job in jobs)
        limit = timeout_cycles or (200 + 20 * beats)
        await with_timeout(self._done.wait(), limit * 10, "ns")
        # Nothing extra may follow: wait a little and check no beat is left over.
        await ClockCycles(self.dut.clk, 20)
        assert self.r_sink.empty(), "more result beats than tokens"
        assert not self.expected, f"{len(self.expected)} results missing"


def _cfg_and_rng():
    from verif.harness import config_from_env
    # cocotb reseeds `random` before each test from (COCOTB_RANDOM_SEED, module, test name).
    return config_from_env(), random.Random(random.getrandbits(64))


if cocotb is not None:
    @cocotb.test()
    async def random_jobs(dut):
        """Several random tiles back to back, no stalls: bit-exact vs hw_matmul."""
        cfg, rng = _cfg_and_rng()
        tb = TB(dut, cfg)
        await tb.reset()
        jobs = [Job(cfg, rng) for _ in range(4)]
        jobs.append(Job(cfg, rng, nb=cfg.nb_max, m=2, act_extremes=True))
        await tb.run_jobs(jobs)
        assert dut.status.value.to_unsigned() == 0
        tb.log.info("checked %d results", tb.checked)

    @cocotb.test()
    async def throughput(dut):
        """Long job without stalls: exact, and logs simulator cycles/s and beats/cycle."""
        import time

        from cocotb.utils import get_sim_time
        cfg, rng = _cfg_and_rng()
        tb = TB(dut, cfg)
        await tb.reset()
        jobs = [Job(cfg, rng, nb=cfg.nb_max, m=32) for _ in range(3)]   # golden first
        t0, c0 = time.perf_counter(), get_sim_time("ns")
        await tb.run_jobs(jobs)
        wall, cycles = time.perf_counter() - t0, (get_sim_time("ns") - c0) / 10
        beats = sum(j.m * j.nb for j in jobs)
        tb.log.info("throughput: %d cycles in %.2f s = %.0f cycles/s; %d activation beats "
                    "in %d cycles (%.2f beats/cycle)", cycles, wall, cycles / wall, beats,
                    cycles, beats / cycles)

    @cocotb.test()
    async def stalls_and_backpressure(dut):
        """Random and bursty idle cycles on both sources, backpressure on the result sink."""
        cfg, rng = _cfg_and_rng()
        tb = TB(dut, cfg)
        await tb.reset()
        for mode in ("random", "bursty"):
            tb.set_stalls(rng, mode)
            await tb.run_jobs([Job(cfg, rng) for _ in range(3)])
        tb.set_stalls(None)
        assert dut.status.value.to_unsigned() == 0

    @cocotb.test()
    async def reset_mid_job(dut):
        """Reset while a job is half sent; then an exact job. status reads 0 after reset."""
        cfg, rng = _cfg_and_rng()
        tb = TB(dut, cfg)
        await tb.reset()
        tb.set_stalls(rng)
        job = Job(cfg, rng, m=4)
        for f in job.weight_frames():
            await tb.w_src.send(f)
        for f in job.token_frames():
            await tb.a_src.send(f)
        await ClockCycles(dut.clk, rng.randrange(1, 3 * cfg.rows * job.nb + 8))
        await tb.reset()
        tb.set_stalls(None)
        await tb.run_jobs([Job(cfg, rng) for _ in range(2)])

    @cocotb.test()
    async def malformed_tile(dut):
        """A malformed record: every token of that tile errors (tuser=1, data 0), sticky
        status bit 0; the next well-formed tile is exact."""
        cfg, rng = _cfg_and_rng()
        tb = TB(dut, cfg)
        await tb.reset()
        bad = Job(cfg, rng)
        if cfg.fmt.k and rng.random() < 0.5:
            bad.corrupt_high_code(rng)
        else:
            bad.corrupt_vmask_count(rng)
        await tb.run_jobs([Job(cfg, rng), bad, Job(cfg, rng)])
        assert tb.errors_seen == bad.m
        assert dut.status.value.to_unsigned() & 0b1011 == 0b0001, dut.status.value
        # Sticky until reset.
        await tb.run_jobs([Job(cfg, rng)])
        assert dut.status.value.to_unsigned() & 1
        await tb.reset()

    @cocotb.test()
    async def wrong_token_length(dut):
        """A token with the wrong beat count gives one error beat (status bit 2); the other
        tokens of the tile stay exact."""
        cfg, rng = _cfg_and_rng()
        tb = TB(dut, cfg)
        await tb.reset()
        job = Job(cfg, rng, nb=min(2, cfg.nb_max), m=3)
        choices = [n for n in (1, 2, 3) if n != job.nb]
        job.short = {1: rng.choice(choices)}
        job.bad_tokens = {1}
        await tb.run_jobs([job, Job(cfg, rng)])
        assert tb.errors_seen == 1
        assert dut.status.value.to_unsigned() & 0b1111 == 0b0100, dut.status.value


__all__ = ["TB", "Job", "CONFIGS", "SLOW_CONFIGS"]
