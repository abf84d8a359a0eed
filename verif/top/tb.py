"""What the two top-level regressions share (``test_top.py``, weight mode, and
``test_top_act.py``, activation mode): the Verilog they simulate, the pytest side that runs a
module's cocotb tests on one configuration, and the cocotb testbench :class:`TB` (drivers,
stall patterns, monitor, in-order scoreboard, functional coverage) with the handshake
watcher their latency tests use. Each module keeps its own job (what a tile and its tokens
are) and its own cocotb tests.
"""

import logging
import os
import random
from pathlib import Path

from sqhw.format.spec import HWConfig

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["ROOT", "verilog_for", "run_config", "TB", "cfg_and_rng", "start_tb", "watch_handshakes",
           "check_stalls_and_backpressure", "check_reset_mid_job"]


def verilog_for(cfg: HWConfig) -> Path:
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


def run_config(name: str, cfg: HWConfig, record_property, module: str, bins_name: str,
               *, build_args=(), variant: str = ""):
    """Run every cocotb test of ``module`` on ``cfg`` in one simulator; record the seed, the
    configuration and the coverage file (``bins_name`` in the run folder, which
    ``verif/conftest.py`` reads for the end-of-run summary) as test properties. Returns the
    seed and the run folder.

    Raises
    ------
    AssertionError
        If the run wrote no coverage file.
    """
    from sqhw.sim.harness import pick_seed, run_cocotb, sim_build_dir, waves_requested
    seed = pick_seed()
    run_name = name.replace("/", "_").replace(":", "_")
    run_dir = sim_build_dir(cfg, "sqhw_top", waves_requested(), variant) / "runs" / run_name
    bins_file = run_dir / bins_name
    bins_file.unlink(missing_ok=True)
    (run_dir / "coverage.dat").unlink(missing_ok=True)
    prop = "sqhw_act_bins" if bins_name == ACT_BINS_FILE else "sqhw_bins"
    for key, value in (("sqhw_config", name), ("sqhw_digest", cfg.digest()),
                       ("sqhw_seed", seed), (prop, str(bins_file))):
        record_property(key, value)
    run_cocotb(cfg, verilog_for(cfg), module, top="sqhw_top", seed=seed, run_name=run_name,
               build_args=build_args, variant=variant,
               extra_env={"SQHW_CONFIG_NAME": name, "SQHW_BINS_FILE": bins_name})
    assert bins_file.is_file(), f"the cocotb run wrote no coverage bins ({bins_file})"
    return seed, run_dir


#: The coverage files of the two regressions (weight mode, activation mode).
BINS_FILE, ACT_BINS_FILE = "coverage.json", "coverage_act.json"


# -- the cocotb side ----------------------------------------------------------------------

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, Event, ReadOnly, RisingEdge, with_timeout
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


class TB:
    """Drivers, monitor, scoreboard and coverage around ``sqhw_top``."""

    def __init__(self, dut, cfg: HWConfig, bins=None):
        """``bins``: the bins this run's collector counts (default ``verif.coverage.BINS``,
        the weight mode's; the activation mode passes ``ACT_BINS``)."""
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
        self.max_result = 0                     # extremes of the checked exact results
        self.min_result = 0
        self.stall_mode = "none"
        self.cov = _collector(cfg, bins)
        self._done = Event()
        self._want = 0
        self._mon = None

    def set_stalls(self, rng: random.Random | None, mode: str = "random"):
        """Stall pattern: ``none`` (or rng None), ``src`` (random idles on both sources),
        ``sink`` (random backpressure on the result sink), ``random`` (both), ``bursty``
        (long idle / busy runs on all three streams)."""
        if rng is None:
            mode = "none"
        self.stall_mode = mode
        for drv in (self.w_src, self.a_src, self.r_sink):
            on = (mode in ("random", "bursty") or (mode == "src" and drv is not self.r_sink)
                  or (mode == "sink" and drv is self.r_sink))
            if not on:
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

    def status(self) -> int:
        return self.dut.status.value.to_unsigned()

    def cover(self, *names: str):
        """Count bins (call only after the checks that justify them) and save."""
        self.cov.hit(*names)
        self.cov.save()

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
                self.max_result = max(self.max_result, *rows)
                self.min_result = min(self.min_result, *rows)
            self.checked += 1
            if self.checked >= self._want:
                self._done.set()

    def start_monitor(self):
        if self._mon is None:
            self._mon = cocotb.start_soon(self._monitor())

    async def run_jobs(self, jobs, timeout_cycles: int | None = None):
        """Queue every job's tile and tokens, then wait for all results, in order; then
        count the coverage bins of the jobs, the stall mode and the accumulator range."""
        self.start_monitor()
        for job in jobs:
            self.expected.extend(job.expected_results())
        self._want = self.checked + sum(job.m for job in jobs)
        self._done.clear()
        for job in jobs:
            for f in job.weight_frames():
                await self.w_src.send(f)
            for f in job.token_frames():
                await self.a_src.send(f)
        await self.wait_results(jobs, timeout_cycles)
        self.cover_jobs(jobs)

    async def wait_results(self, jobs, timeout_cycles: int | None = None):
        beats = sum(job.m * job.nb + self.cfg.rows * job.nb for job in jobs)
        limit = timeout_cycles or (200 + 20 * beats)
        await with_timeout(self._done.wait(), limit * 10, "ns")
        # Nothing extra may follow: wait a little and check no beat is left over.
        await ClockCycles(self.dut.clk, 20)
        assert self.r_sink.empty(), "more result beats than tokens"
        assert not self.expected, f"{len(self.expected)} results missing"

    def cover_jobs(self, jobs):
        from verif.coverage import STALL_BINS
        names = set()
        for job in jobs:
            names |= job.bins()
        if any(not (j.tile_error or j.bad_tokens) for j in jobs):
            names |= set(STALL_BINS[self.stall_mode])
        bound = self.cfg.acc_bound
        if 2 * self.max_result >= bound:
            names.add("acc:near_bound_pos")
        if 2 * self.min_result <= -bound:
            names.add("acc:near_bound_neg")
        self.cover(*sorted(names))


_COLLECTOR = None


def _collector(cfg: HWConfig, bins=None):
    """One collector per simulator run, saved in the run folder under the name the pytest
    side chose (``SQHW_BINS_FILE``)."""
    global _COLLECTOR
    if _COLLECTOR is None:
        from sqhw.sim.harness import run_dir
        from verif.coverage import Collector
        _COLLECTOR = Collector(run_dir() / os.environ.get("SQHW_BINS_FILE", BINS_FILE), meta={
            "config": os.environ.get("SQHW_CONFIG_NAME", ""), "digest": cfg.digest(),
            "seed": os.environ.get("SEED", "")}, **({"bins": bins} if bins else {}))
        _COLLECTOR.save()
    return _COLLECTOR


def cfg_and_rng():
    """This run's configuration and a generator seeded from cocotb's per-test seed (cocotb
    reseeds ``random`` before each test from the seed, the module and the test name)."""
    from sqhw.sim.harness import config_from_env
    return config_from_env(), random.Random(random.getrandbits(64))


async def start_tb(dut, bins=None):
    """``(cfg, rng, tb)`` of :func:`cfg_and_rng` and a :class:`TB` (counting ``bins``) whose
    core was just reset: how every cocotb test of both regressions begins."""
    cfg, rng = cfg_and_rng()
    tb = TB(dut, cfg, bins)
    await tb.reset()
    return cfg, rng, tb


async def watch_handshakes(dut, n_results: int):
    """Cycle numbers, counted from the call, of every accepted activation beat, of the
    accepted last beats of tokens, and of every accepted result, until ``n_results``
    results: what the latency and throughput tests compare with the datasheet."""
    accepted, last, results = [], [], []
    cycle = 0
    while len(results) < n_results:
        await RisingEdge(dut.clk)
        await ReadOnly()
        cycle += 1
        if dut.s_axis_a_tvalid.value and dut.s_axis_a_tready.value:
            accepted.append(cycle)
            if dut.s_axis_a_tlast.value:
                last.append(cycle)
        if dut.m_axis_r_tvalid.value and dut.m_axis_r_tready.value:
            results.append(cycle)
    return accepted, last, results


async def check_stalls_and_backpressure(tb, rng, make_job, jobs_per_mode: int):
    """Source idles only, sink backpressure only, both, and bursty runs on all three, each
    with ``jobs_per_mode`` jobs from ``make_job()``: every result exact, no status bit."""
    for mode in ("src", "sink", "random", "bursty"):
        tb.set_stalls(rng, mode)
        await tb.run_jobs([make_job() for _ in range(jobs_per_mode)])
    tb.set_stalls(None)
    assert tb.status() == 0


async def check_reset_mid_job(tb, rng, make_job, bin_name: str):
    """Reset while a job from ``make_job(m=4)`` is half sent (stalls on), then two exact
    jobs; the status reads 0 after the reset (:meth:`TB.reset` checks it). Counts
    ``bin_name``."""
    tb.set_stalls(rng)
    job = make_job(m=4)
    for f in job.weight_frames():
        await tb.w_src.send(f)
    for f in job.token_frames():
        await tb.a_src.send(f)
    columns = tb.cfg.tile_columns
    await ClockCycles(tb.dut.clk, rng.randrange(1, 3 * columns * job.nb + 8))
    await tb.reset()
    tb.set_stalls(None)
    await tb.run_jobs([make_job() for _ in range(2)])
    assert tb.status() == 0
    tb.cover(bin_name)
