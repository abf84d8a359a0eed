"""cocotb + Verilator regression of ``sqhw_top`` against the golden model ``hw_matmul``.

Three parts, as in verilog-axis / taxi:

- ``TB`` (in :mod:`.tb`, shared with ``test_top_act.py``): clock, reset, cocotbext-axi
  ``AxiStreamSource`` on ``s_axis_w`` / ``s_axis_a`` and ``AxiStreamSink`` on ``m_axis_r``,
  pause generators (none, source idles, sink backpressure, both, bursty), an in-order
  scoreboard and a functional-coverage collector (:mod:`verif.coverage`) that counts a bin
  only once the traffic that hit it was checked.
- ``@cocotb.test()`` coroutines: random jobs, stalls, directed corners (extreme codes, zero
  banks and scales, vmask positions, worst-case accumulator at K = k_max, single bank,
  M = 1, incomplete tile), every malformed-input class of datasheet §8 (each followed by an
  exact job), reset mid-job, and the frozen golden vectors of ``golden/``.
- ``test_top``: a pytest function that emits the Verilog of each configuration of the matrix
  and runs *all* the cocotb tests of this module on it in one simulator process, through
  :mod:`sqhw.sim.harness` (one cached build per configuration). The configuration named by
  :data:`RTL_COVERAGE_CONFIG` is built with ``--coverage-line --coverage-toggle`` instead;
  its report goes to ``build/coverage/``.

The testbench knows the core only through datasheet §4-§8 (bytes and bit positions); it
imports ``sqhw.golden`` for reference values and test data only.

Replay a failure: the failure message prints the command, e.g.
``WAVES=1 SEED=<seed> .venv/bin/python -m pytest
'verif/top/test_top.py::test_top[r4-b8-k2-4/2]'``; ``WAVES=1`` writes ``dump.fst`` in
``build/sim/<digest>/sqhw_top[-cov]-fst/runs/<config>/``. One cocotb test alone:
add ``COCOTB_TEST_FILTER=<test name>`` (cocotb reseeds ``random`` per test from the seed and
the test name, so a single test replays identically).
"""

import random

import pytest

from sqhw.format import Status
from sqhw.format.spec import HWConfig, SQFormat, min_acc_bits

from . import tb as common

# -- the configuration matrix (pytest side) -----------------------------------------------


def _cfg(b: int, k: int, h: int, low: int, rows: int, nb_max: int, *, act: int = 8,
         sb: int = 8, acc: int | None = None, mults: str = "lut",
         tree_levels: int = 1, dsp_rows: int = 0) -> HWConfig:
    """A configuration with ``k`` high elements per bank of ``b``; ``acc_bits`` defaults to
    :func:`min_acc_bits` (the narrowest accumulator that cannot overflow)."""
    fmt = SQFormat(bank_size=b, sparsity=1.0 - k / b, high_bits=h, low_bits=low,
                   scale_bits=sb)
    k_max = nb_max * b
    return HWConfig(fmt=fmt, rows=rows, act_bits=act, k_max=k_max,
                    acc_bits=acc if acc is not None else min_acc_bits(fmt, act, k_max),
                    mults=mults, tree_levels=tree_levels, dsp_rows=dsp_rows)


#: The default matrix (``make verify``). A covering set, not a cross product: rows
#: {1, 4, 16}, bank size {4 (2:4), 8, 16, 32, 64}, k {0, 1, 2, 4, 8}, high/low 8/2, 8/3, 8/4
#: and 4/2 (plus 6/3), 2:4, dense INT8 and INT4, activations of 8, 6 and 4 bits. k_max is 2-4
#: banks to keep builds short; acc_bits is min_acc_bits except in the acc24 entry.
CONFIGS: dict[str, HWConfig] = {
    "r1-b8-k2-8/4": _cfg(8, 2, 8, 4, rows=1, nb_max=4),
    "r4-b8-k1-8/2": _cfg(8, 1, 8, 2, rows=4, nb_max=2),
    "r4-b16-k4-8/3": _cfg(16, 4, 8, 3, rows=4, nb_max=2),
    "r4-b16-k8-8/4": _cfg(16, 8, 8, 4, rows=4, nb_max=2),
    "r4-b32-k2-8/4": _cfg(32, 2, 8, 4, rows=4, nb_max=2),
    "r1-b64-k8-8/3": _cfg(64, 8, 8, 3, rows=1, nb_max=2),
    "r4-b8-k2-4/2": _cfg(8, 2, 4, 2, rows=4, nb_max=4),
    "r4-2:4": _cfg(4, 2, 8, 0, rows=4, nb_max=4),
    "r4-b16-int8": _cfg(16, 0, 8, 8, rows=4, nb_max=4),
    "r1-b32-int4-a6": _cfg(32, 0, 8, 4, rows=1, nb_max=2, act=6),
    "r16-b16-k1-8/4": _cfg(16, 1, 8, 4, rows=16, nb_max=2),
    "r4-b8-k2-6/3-a4-acc24": _cfg(8, 2, 6, 3, rows=4, nb_max=4, act=4, sb=4, acc=24),
    # The other multiplier structures and pipeline depths (HWConfig.mults, tree_levels).
    "r4-b16-k2-8/4-dsp": _cfg(16, 2, 8, 4, rows=4, nb_max=2, mults="dsp"),
    "r4-b16-int8-dspall-l2": _cfg(16, 0, 8, 8, rows=4, nb_max=2, mults="dsp_all",
                                  tree_levels=2),
    "r2-b64-k32-8/4-dsp-l3": _cfg(64, 32, 8, 4, rows=2, nb_max=2, mults="dsp",
                                  tree_levels=3),
    "r4-b8-int6-auto2": _cfg(8, 0, 8, 6, rows=4, nb_max=2, mults="auto", dsp_rows=2),
    # Low products packed two per DSP (rows 0+1, 2+3, and row 4 unpaired; two groups of
    # broadcast copies), and dense INT4 split by auto: rows 0+1 packed, row 2 packed
    # unpaired, row 3 in LUTs (padded to the packed rows' latency).
    "r5-b16-k2-8/4-packed": _cfg(16, 2, 8, 4, rows=5, nb_max=2, mults="dsp_packed"),
    "r4-b16-int4-auto3-l2": _cfg(16, 0, 8, 4, rows=4, nb_max=2, mults="auto", dsp_rows=3,
                                 tree_levels=2),
}

#: Wider matrix, ``pytest -m slow verif/top``: bigger arrays, the largest bank, deep tiles
#: (up to 64 banks, which also exercises the memory depth), 2-bit activations, a 16-bit
#: scale code, an accumulator wider than needed.
SLOW_CONFIGS: dict[str, HWConfig] = {
    "r16-b16-k2-8/4": _cfg(16, 2, 8, 4, rows=16, nb_max=4),
    "r16-b64-k8-8/4": _cfg(64, 8, 8, 4, rows=16, nb_max=2),
    "r4-b128-k16-8/4": _cfg(128, 16, 8, 4, rows=4, nb_max=2),
    "r4-b16-k2-8/4-deep": _cfg(16, 2, 8, 4, rows=4, nb_max=64),
    "r4-b16-int6-a2": _cfg(16, 0, 8, 6, rows=4, nb_max=4, act=2),
    "r4-b8-k4-8/2-sb16": _cfg(8, 4, 8, 2, rows=4, nb_max=4, sb=16),
    "r16-2:4": _cfg(4, 2, 8, 0, rows=16, nb_max=8),
    "r4-b8-k2-8/4-acc64": _cfg(8, 2, 8, 4, rows=4, nb_max=4, acc=64),
}

#: The configuration built with Verilator line + toggle coverage (report in build/coverage/).
RTL_COVERAGE_CONFIG = "r4-b16-k4-8/3"
RTL_COVERAGE_ARGS = ("--coverage-line", "--coverage-toggle")
COVERAGE_DIR = common.ROOT / "build" / "coverage"


def _run_config(name: str, cfg: HWConfig, record_property, rtl_coverage: bool = False):
    """Every cocotb test of this module on ``cfg`` in one simulator (:func:`.tb.run_config`);
    the configuration :data:`RTL_COVERAGE_CONFIG` is built with Verilator line and toggle
    coverage, its summary recorded as a test property and its report in ``build/coverage/``."""
    from verif import coverage
    _, run_dir = common.run_config(name, cfg, record_property, "verif.top.test_top",
                                   common.BINS_FILE,
                                   build_args=RTL_COVERAGE_ARGS if rtl_coverage else (),
                                   variant="cov" if rtl_coverage else "")
    if rtl_coverage:
        run_name = run_dir.name
        dat = run_dir / "coverage.dat"
        assert dat.is_file(), f"the coverage build wrote no {dat}"
        line = coverage.write_reports(dat, COVERAGE_DIR / run_name,
                                      source_dir=run_dir.parent.parent)
        (COVERAGE_DIR / "summary.txt").write_text(f"{name} ({cfg.digest()}): {line}\n")
        record_property("sqhw_rtl_coverage", line)
        print(f"[sqhw] {name}: {line}; report in {COVERAGE_DIR / run_name}")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_top(name, record_property):
    _run_config(name, CONFIGS[name], record_property,
                rtl_coverage=name == RTL_COVERAGE_CONFIG)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW_CONFIGS))
def test_top_slow(name, record_property):
    # The wide matrix costs a build per configuration: `make verify` leaves it out
    # (-m "not slow"); `make verify-all` and `pytest -m slow verif/top` run it.
    _run_config(name, SLOW_CONFIGS[name], record_property)


#: ``verilator --lint-only -Wall`` of every matrix configuration but the rows=16 one (a
#: minute of lint alone; verif/gen lints the default rows=16 array).
LINT_CONFIGS = [name for name, cfg in CONFIGS.items() if cfg.rows < 16]


@pytest.mark.parametrize("name", LINT_CONFIGS)
def test_top_lint(name):
    from sqhw.toolchain import verilator_lint
    verilator_lint(common.verilog_for(CONFIGS[name]), "sqhw_top")


def test_matrix_covers_the_brief():
    """Each value the matrix promises appears at least once (a drifted matrix fails here)."""
    cfgs = list(CONFIGS.values())
    assert len(cfgs) >= 12
    assert {c.rows for c in cfgs} >= {1, 4, 16}
    assert sum(c.rows == 16 for c in cfgs) == 1          # the slow one, once
    assert {c.fmt.bank_size for c in cfgs} >= {8, 16, 32, 64}
    assert {c.fmt.k for c in cfgs} >= {0, 1, 2, 4, 8}
    assert {c.fmt.low_bits for c in cfgs if c.fmt.high_bits == 8 and c.fmt.k} >= {2, 3, 4}
    assert any((c.fmt.high_bits, c.fmt.low_bits) == (4, 2) for c in cfgs)
    assert any(c.fmt.name.startswith("2:4") for c in cfgs)
    assert any(c.fmt.k == 0 for c in cfgs)
    assert all(c.nb_max >= 2 for c in cfgs)              # tile_short needs nb >= 2
    assert RTL_COVERAGE_CONFIG in CONFIGS


# -- the cocotb side ----------------------------------------------------------------------

try:
    import cocotb
    from cocotb.triggers import RisingEdge
except ImportError:  # pragma: no cover
    cocotb = None


def make_sq(cfg: HWConfig, nb: int, N: int, rng: random.Random, *, positions=None,
            low=None, high=None, scale_low=None, scale_high=None):
    """An SQTensor [nb·b, N] built from per-(bank, column) choices.

    Each keyword is a function ``f(j, n)`` returning, for bank j of column n: ``positions``
    the sorted k high positions; ``low`` a list of b low values (vmask positions ignored);
    ``high`` a list of k high values; ``scale_low`` / ``scale_high`` one code. Omitted ones
    are random over their valid range.
    """
    import torch

    from sqhw.golden import SQTensor
    fmt = cfg.fmt
    b, k = fmt.bank_size, fmt.k
    K = nb * b
    lo = torch.zeros(K, N, dtype=torch.int8)
    hi = torch.zeros(nb * k, N, dtype=torch.int8)
    sl = torch.zeros(nb, N, dtype=torch.int32)
    sh = torch.zeros(nb, N, dtype=torch.int32)
    for n in range(N):
        for j in range(nb):
            pos = positions(j, n) if positions else sorted(rng.sample(range(b), k))
            assert len(pos) == k and len(set(pos)) == k
            lv = low(j, n) if low else [rng.randint(-fmt.low_max, fmt.low_max)
                                        for _ in range(b)]
            for i in range(b):
                lo[j * b + i, n] = fmt.vmask if i in pos else lv[i]
            hv = high(j, n) if high else [rng.randint(-fmt.high_max, fmt.high_max)
                                          for _ in range(k)]
            for t in range(k):
                hi[j * k + t, n] = hv[t]
            if fmt.low_bits:
                sl[j, n] = scale_low(j, n) if scale_low else rng.randint(0, fmt.scale_max)
            if k:
                sh[j, n] = scale_high(j, n) if scale_high else rng.randint(0, fmt.scale_max)
    return SQTensor(low=lo, high=hi, scale_low=sl, scale_high=sh, col_scale=torch.ones(N),
                    fmt=fmt)


class Job:
    """One weight tile and its tokens, with the expected results.

    The tile is ``R`` consecutive columns of a ``pack`` image; tokens are ``M`` rows of X.
    ``sq`` / ``x`` replace the random weights / activations; ``tags`` are coverage bins this
    job hits once its results are checked.
    """

    def __init__(self, cfg: HWConfig, rng: random.Random, nb: int | None = None,
                 m: int | None = None, act_extremes: bool = False, sq=None, x=None,
                 tags=()):
        import torch

        from sqhw.golden import hw_matmul, pack, random_sqtensor
        self.cfg = cfg
        fmt = cfg.fmt
        R = cfg.rows
        if sq is not None:
            nb = sq.n_banks
        self.nb = nb if nb is not None else rng.randint(1, min(cfg.nb_max, 4))
        if x is not None:
            m = x.shape[0]
        self.m = m if m is not None else rng.randint(1, 4)
        K = self.nb * fmt.bank_size
        g = torch.Generator().manual_seed(rng.getrandbits(62))
        self.sq = sq if sq is not None else random_sqtensor(fmt, K, R, generator=g)
        lo, hi = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
        if x is None and act_extremes:
            x = torch.tensor([[rng.choice((lo, hi)) for _ in range(K)] for _ in range(self.m)])
        elif x is None:
            x = torch.randint(lo, hi + 1, (self.m, K), generator=g)
        self.x = x
        self.expected = hw_matmul(x, self.sq, cfg.act_bits, cfg.acc_bits).tolist()  # [M, R]
        self.image = bytearray(pack(self.sq))
        assert len(self.image) == R * self.nb * fmt.record_bytes
        self.tags = set(tags)
        self.bad_tokens: set[int] = set()   # tokens expected to give an error beat
        self.tile_error = False             # every token gives an error beat
        self.short: dict[int, int] = {}     # token index -> beats sent instead of nb
        self.col_records: dict[int, int] = {}   # column -> records sent instead of nb

    @classmethod
    def frozen(cls, cfg: HWConfig, image: bytes, nb: int, x, expected):
        """A job from stored bytes and results (the frozen golden vectors): no model call."""
        job = cls.__new__(cls)
        job.cfg, job.nb, job.m = cfg, nb, len(x)
        job.sq = None
        job.x = x
        job.expected = [[int(v) for v in row] for row in expected]
        job.image = bytearray(image)
        assert len(job.image) == cfg.rows * nb * cfg.fmt.record_bytes
        job.tags = {"frozen:vectors"}
        job.bad_tokens, job.tile_error, job.short, job.col_records = set(), False, {}, {}
        return job

    # datasheet §4: record of (column n, bank j) at byte offset (n·nb + j)·record_bytes
    def record_slice(self, n: int, j: int) -> slice:
        rb = self.cfg.fmt.record_bytes
        off = (n * self.nb + j) * rb
        return slice(off, off + rb)

    def _edit_low(self, rng, pick):
        """Set one low field: ``pick(fields, vm)`` returns (position, new raw field)."""
        fmt = self.cfg.fmt
        n, j = rng.randrange(self.cfg.rows), rng.randrange(self.nb)
        s = self.record_slice(n, j)
        rec = int.from_bytes(self.image[s], "little")
        wl = fmt.low_width
        vm = 1 << (wl - 1)
        fields = [(rec >> (i * wl)) & ((1 << wl) - 1) for i in range(fmt.bank_size)]
        i, new = pick(fields, vm)
        rec = (rec & ~(((1 << wl) - 1) << (i * wl))) | (new << (i * wl))
        self.image[s] = rec.to_bytes(fmt.record_bytes, "little")
        self.tile_error = True

    def corrupt_vmask_count(self, rng: random.Random, more: bool = True):
        """Make one record malformed: one more vmask (count k+1), or one fewer (k-1: a vmask
        field becomes the valid low code 0; needs k > 0)."""
        if more:
            self._edit_low(rng, lambda f, vm: (rng.choice(
                [i for i, v in enumerate(f) if v != vm]), vm))
        else:
            assert self.cfg.fmt.k > 0
            self._edit_low(rng, lambda f, vm: (rng.choice(
                [i for i, v in enumerate(f) if v == vm]), 0))

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

    def weight_frames(self, columns=None):
        """One frame per column (tlast on its last record). ``col_records`` makes a column
        over-long (extra copies of its last record) or truncated (records dropped)."""
        from cocotbext.axi import AxiStreamFrame
        frames = []
        for n in range(self.cfg.rows) if columns is None else columns:
            recs = [bytes(self.image[self.record_slice(n, j)]) for j in range(self.nb)]
            count = self.col_records.get(n, self.nb)
            recs = (recs + [recs[-1]] * count)[:count]
            frames.append(AxiStreamFrame(b"".join(recs)))
        return frames

    def token_frames(self, last_of_tile: bool = True):
        """One frame per token: nb beats (``short`` overrides), ``tuser`` = 1 on the tlast
        beat of the last token."""
        from cocotbext.axi import AxiStreamFrame
        cfg = self.cfg
        b, a = cfg.fmt.bank_size, cfg.act_bits
        lanes = cfg.act_data_bits // 8
        mask = (1 << a) - 1
        frames = []
        for m in range(self.m):
            beats = self.short.get(m, self.nb)
            row = [int(v) & mask for v in self.x[m].tolist()]
            data = bytearray()
            for j in range(beats):
                word = 0
                base = (j % self.nb) * b
                for i in range(b):
                    word |= row[base + i] << (i * a)
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
                out.append((self.expected[m], 0))
        return out

    def bins(self) -> set[str]:
        """Coverage bins of this job's data (counted once its results were checked)."""
        cfg, fmt = self.cfg, self.cfg.fmt
        out = set(self.tags)
        if self.tile_error:
            return out
        if f"k:{fmt.k}" in _defined_bins():
            out.add(f"k:{fmt.k}")
        if self.nb == cfg.nb_max:
            out.add("corner:k_max")
        if self.nb == 1:
            out.add("corner:single_bank")
        if self.m == 1:
            out.add("corner:m1")
        lo = -(1 << (cfg.act_bits - 1))
        if any(int(v) == lo for row in self.x.tolist() for v in row):
            out.add("corner:act_min")
        if self.sq is None:
            return out
        import torch
        b, k, nb, N = fmt.bank_size, fmt.k, self.nb, cfg.rows
        mask = self.sq.mask.view(nb, b, N)
        if k:
            out |= {"vmask:first"} if bool(mask[:, 0, :].any()) else set()
            out |= {"vmask:last"} if bool(mask[:, b - 1, :].any()) else set()
            if k >= 2:
                idx = torch.arange(b).view(1, b, 1).expand(nb, b, N)
                first = torch.where(mask, idx, b).amin(dim=1)
                last = torch.where(mask, idx, -1).amax(dim=1)
                run = (last - first) == (k - 1)
                out |= {"vmask:adjacent"} if bool(run.any()) else set()
                out |= {"vmask:spread"} if bool((~run).any()) else set()
        eff = self.sq.effective_weight().view(nb, b, N)
        if bool((eff == 0).all(dim=1).any()):
            out.add("corner:zero_bank")
        nz_low = (self.sq.low_values().view(nb, b, N) != 0).any(dim=1)
        zero = (self.sq.scale_low == 0) & nz_low if fmt.low_bits else torch.zeros(1).bool()
        if k:
            nz_high = (self.sq.high.view(nb, k, N) != 0).any(dim=1)
            zero = zero | ((self.sq.scale_high == 0) & nz_high)
        if bool(zero.any()):
            out.add("corner:zero_scale")
        return out


def _defined_bins():
    from verif.coverage import BINS
    return BINS


def _act(cfg, rng, m, K, choices=None):
    import torch
    lo, hi = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
    return torch.tensor([[rng.choice(choices or (lo, hi)) for _ in range(K)]
                         for _ in range(m)])


if cocotb is not None:
    @cocotb.test()
    async def random_jobs(dut):
        """Several random tiles back to back, no stalls: bit-exact vs hw_matmul."""
        cfg, rng, tb = await common.start_tb(dut)
        jobs = [Job(cfg, rng) for _ in range(4)]
        jobs.append(Job(cfg, rng, nb=cfg.nb_max, m=2, act_extremes=True))
        await tb.run_jobs(jobs)
        assert tb.status() == 0
        tb.log.info("checked %d results", tb.checked)

    @cocotb.test()
    async def throughput(dut):
        """Long job without stalls: exact, one activation beat accepted in every cycle from
        the first to the last (the second tile loads behind the first one's tokens), and
        every result ``cfg.latency`` cycles after its token's last beat (datasheet §9)."""
        import time

        from cocotb.utils import get_sim_time
        cfg, rng, tb = await common.start_tb(dut)
        jobs = [Job(cfg, rng, nb=cfg.nb_max, m=16) for _ in range(2)]   # golden first
        beats = sum(j.m * j.nb for j in jobs)
        w = cocotb.start_soon(common.watch_handshakes(dut, sum(j.m for j in jobs)))
        t0, c0 = time.perf_counter(), get_sim_time("ns")
        await tb.run_jobs(jobs)
        accepted, last_at, valid_at = await w
        wall, cycles = time.perf_counter() - t0, (get_sim_time("ns") - c0) / 10
        tb.log.info("throughput: %d cycles in %.2f s = %.0f cycles/s; %d activation beats "
                    "in %d cycles (%.2f beats/cycle)", cycles, wall, cycles / wall, beats,
                    cycles, beats / cycles)
        assert len(accepted) == beats
        assert accepted[-1] - accepted[0] == beats - 1, "a bubble between activation beats"
        lat = [v - a for a, v in zip(last_at, valid_at, strict=True)]
        assert lat == [cfg.latency] * len(lat), lat

    @cocotb.test()
    async def stalls_and_backpressure(dut):
        """Source idles only, sink backpressure only, both, and bursty runs on all three."""
        cfg, rng, tb = await common.start_tb(dut)
        await common.check_stalls_and_backpressure(tb, rng, lambda: Job(cfg, rng), 2)

    @cocotb.test()
    async def extreme_codes(dut):
        """Codes at ±max low / high, scale codes at max, activations at -2^(a-1) and
        2^(a-1)-1 only: exact."""
        cfg, rng = common.cfg_and_rng()
        fmt = cfg.fmt
        tb = common.TB(dut, cfg)
        await tb.reset()
        jobs = []
        for nb in sorted({1, cfg.nb_max}):
            sq = make_sq(cfg, nb, cfg.rows, rng,
                         low=lambda j, n: [rng.choice((-1, 1)) * fmt.low_max
                                           for _ in range(fmt.bank_size)],
                         high=lambda j, n: [rng.choice((-1, 1)) * fmt.high_max
                                            for _ in range(fmt.k)],
                         scale_low=lambda j, n: fmt.scale_max,
                         scale_high=lambda j, n: fmt.scale_max)
            x = _act(cfg, rng, 3, nb * fmt.bank_size)
            x[0, :] = -(1 << (cfg.act_bits - 1))        # one token all most-negative
            jobs.append(Job(cfg, rng, sq=sq, x=x, tags={"corner:extreme_codes"}))
        await tb.run_jobs(jobs)
        assert tb.status() == 0

    @cocotb.test()
    async def zero_banks_and_scales(dut):
        """Banks whose codes are all 0, scale codes of 0 (low, high, both) on non-zero
        codes, and a whole zero column: exact (zero where the model says so)."""
        cfg, rng = common.cfg_and_rng()
        fmt = cfg.fmt
        tb = common.TB(dut, cfg)
        await tb.reset()
        nb = cfg.nb_max
        todo = ["zero", "sl0", "sh0", "both0"]     # bank kinds, spread over cells and jobs
        jobs = []
        while todo:
            kinds = {}
            for n in range(cfg.rows):
                for j in range(nb):
                    kinds[(j, n)] = todo.pop(0) if todo else rng.choice(
                        ("zero", "sl0", "sh0", "both0", "rnd"))

            def nz_low(j, n, kinds=kinds):
                return [0 if kinds[(j, n)] == "zero" or not fmt.low_max
                        else rng.choice((-1, 1)) * rng.randint(1, fmt.low_max)
                        for _ in range(fmt.bank_size)]

            def nz_high(j, n, kinds=kinds):
                return [0 if kinds[(j, n)] == "zero"
                        else rng.choice((-1, 1)) * rng.randint(1, fmt.high_max)
                        for _ in range(fmt.k)]

            sq = make_sq(cfg, nb, cfg.rows, rng, low=nz_low, high=nz_high,
                         scale_low=lambda j, n, kinds=kinds: 0
                         if kinds[(j, n)] in ("sl0", "both0") else rng.randint(1, fmt.scale_max),
                         scale_high=lambda j, n, kinds=kinds: 0
                         if kinds[(j, n)] in ("sh0", "both0") else rng.randint(1, fmt.scale_max))
            x = _act(cfg, rng, 3, nb * fmt.bank_size,
                     choices=range(-(1 << (cfg.act_bits - 1)), 1 << (cfg.act_bits - 1)))
            jobs.append(Job(cfg, rng, sq=sq, x=x))
        # A whole zero column (every bank zero) as well.
        sq = make_sq(cfg, 1, cfg.rows, rng, low=lambda j, n: [0] * fmt.bank_size,
                     high=lambda j, n: [0] * fmt.k)
        jobs.append(Job(cfg, rng, sq=sq, m=2))
        assert jobs[0].bins() >= {"corner:zero_bank"}
        assert jobs[-1].expected == [[0] * cfg.rows] * 2
        await tb.run_jobs(jobs)
        assert tb.status() == 0

    @cocotb.test()
    async def vmask_positions(dut):
        """High elements at the first and last position of a bank, all k adjacent (a run at
        every start position, in every row) and spread; k = 0 configurations run a random
        job (no vmask exists)."""
        cfg, rng = common.cfg_and_rng()
        fmt = cfg.fmt
        b, k = fmt.bank_size, fmt.k
        tb = common.TB(dut, cfg)
        await tb.reset()
        if k == 0:
            await tb.run_jobs([Job(cfg, rng)])
            return
        # Per row (each row has its own gather muxes): first, last, runs at the start and
        # end, a random run, evenly spread, then an adjacent run at *every* start position
        # (so the t-th high element visits every position it can hold, t..b-k+t).
        def row_patterns():
            pats = [
                [0] + sorted(rng.sample(range(1, b), k - 1)),            # first
                sorted(rng.sample(range(b - 1), k - 1)) + [b - 1],       # last
                list(range(0, b, b // k))[:k],                           # evenly spread
            ]
            starts = list(range(b - k + 1))
            rng.shuffle(starts)
            return pats + [list(range(st, st + k)) for st in starts]

        todo = {n: row_patterns() for n in range(cfg.rows)}
        jobs = []
        while any(todo.values()):
            chosen = {(j, n): todo[n].pop(0) for n in range(cfg.rows)
                      for j in range(cfg.nb_max) if todo[n]}
            sq = make_sq(cfg, cfg.nb_max, cfg.rows, rng,
                         positions=lambda j, n, c=chosen: c.get((j, n)) or sorted(
                             rng.sample(range(b), k)))
            jobs.append(Job(cfg, rng, sq=sq, m=1))
        bins = set().union(*(j.bins() for j in jobs))
        want = {"vmask:first", "vmask:last"} | ({"vmask:adjacent", "vmask:spread"}
                                                if k >= 2 else set())
        assert want <= bins, f"directed vmask patterns missed {want - bins}"
        await tb.run_jobs(jobs)
        assert tb.status() == 0

    @cocotb.test()
    async def worst_case_accumulator(dut):
        """K = k_max, every activation -2^(a-1), every code at max magnitude with the sign
        that pushes the sum toward +bound (then -bound), scale codes at max: the result
        equals the closed form, is at least half the configured bound and is exact — no
        wrap (plus the most positive activation, for the other sign)."""
        cfg, rng = common.cfg_and_rng()
        fmt = cfg.fmt
        b, k, nb = fmt.bank_size, fmt.k, cfg.nb_max
        tb = common.TB(dut, cfg)
        await tb.reset()
        a_min = -(1 << (cfg.act_bits - 1))
        jobs = []
        for sign in (1, -1):
            # a_min < 0, so a code of -sign·max gives +sign·|a_min|·max per element.
            sq = make_sq(cfg, nb, cfg.rows, rng,
                         low=lambda j, n, s=sign: [-s * fmt.low_max] * b,
                         high=lambda j, n, s=sign: [-s * fmt.high_max] * k,
                         scale_low=lambda j, n: fmt.scale_max,
                         scale_high=lambda j, n: fmt.scale_max)
            x = _act(cfg, rng, 2, nb * b, choices=(a_min,))
            x[1, :] = -a_min - 1          # the most positive activation: the other sign
            job = Job(cfg, rng, sq=sq, x=x, tags={"corner:extreme_codes"})
            closed = sign * nb * fmt.scale_max * -a_min * ((b - k) * fmt.low_max
                                                           + k * fmt.high_max)
            assert job.expected[0] == [closed] * cfg.rows, (job.expected[0], closed)
            assert 2 * abs(closed) >= cfg.acc_bound
            assert abs(closed) <= (1 << (cfg.acc_bits - 1)) - 1
            jobs.append(job)
        await tb.run_jobs(jobs)
        assert tb.max_result * 2 >= cfg.acc_bound and tb.min_result * 2 <= -cfg.acc_bound
        assert tb.status() == 0

    @cocotb.test()
    async def single_bank_and_single_token(dut):
        """K = b (one bank), M = 1, and both at once, at K = b and K = k_max."""
        cfg, rng, tb = await common.start_tb(dut)
        await tb.run_jobs([Job(cfg, rng, nb=1, m=1), Job(cfg, rng, nb=1, m=5),
                           Job(cfg, rng, nb=cfg.nb_max, m=1), Job(cfg, rng, nb=1, m=1)])
        tb.set_stalls(rng, "random")
        await tb.run_jobs([Job(cfg, rng, nb=1, m=1) for _ in range(3)])
        tb.set_stalls(None)
        assert tb.status() == 0

    @cocotb.test()
    async def incomplete_tile(dut):
        """A tile with fewer than R columns is not loaded: its tokens wait (no result, no
        error) until the last column arrives; then they are exact (datasheet §8)."""
        cfg, rng, tb = await common.start_tb(dut)
        tb.start_monitor()
        job = Job(cfg, rng, m=2)
        tb.expected.extend(job.expected_results())
        tb._want = tb.checked + job.m
        tb._done.clear()
        for f in job.weight_frames(columns=range(cfg.rows - 1)):
            await tb.w_src.send(f)
        for f in job.token_frames():
            await tb.a_src.send(f)
        for _ in range(10 * job.nb * cfg.rows + 50):
            await RisingEdge(dut.clk)
            assert tb.checked == 0 and tb.r_sink.empty(), "a result came out of a partial tile"
            assert dut.s_axis_a_tready.value == 0, "tokens accepted without a loaded tile"
        assert tb.status() == 0
        for f in job.weight_frames(columns=[cfg.rows - 1]):
            await tb.w_src.send(f)
        await tb.wait_results([job])
        tb.cover_jobs([job])
        tb.cover("corner:tile_incomplete")
        assert tb.status() == 0

    @cocotb.test()
    async def reset_mid_job(dut):
        """Reset while a job is half sent; then an exact job. status reads 0 after reset."""
        cfg, rng, tb = await common.start_tb(dut)
        await common.check_reset_mid_job(tb, rng, lambda **kw: Job(cfg, rng, **kw), "reset:mid_job")

    async def _malformed_weights(tb, rng, corrupt, cls, status_bit):
        """good, bad, good: every token of the bad tile errors, the sticky status bit is
        set (and only it), the good tiles are exact; the bit survives an exact job and
        clears on reset."""
        cfg = tb.cfg
        await tb.reset()
        bad = Job(cfg, rng, nb=rng.randint(2, cfg.nb_max), m=rng.randint(1, 3))
        corrupt(bad)
        tb.set_stalls(rng, rng.choice(("none", "random")))
        await tb.run_jobs([Job(cfg, rng), bad, Job(cfg, rng)])
        tb.set_stalls(None)
        assert tb.errors_seen == bad.m, (tb.errors_seen, bad.m)
        assert tb.status() == 1 << status_bit, f"{cls}: status {tb.status():04b}"
        await tb.run_jobs([Job(cfg, rng)])
        assert tb.status() == 1 << status_bit
        tb.cover(cls)
        tb.errors_seen = 0
        await tb.reset()

    @cocotb.test()
    async def malformed_records(dut):
        """Records with one vmask too many, one too few, and an out-of-range high code
        -2^(h-1): status bit 0 (err_weight), error beats (tuser = 1, data 0) for the whole
        tile, then exact."""
        cfg, rng = common.cfg_and_rng()
        tb = common.TB(dut, cfg)
        await _malformed_weights(tb, rng, lambda j: j.corrupt_vmask_count(rng, more=True),
                                 "malformed:vmask_high", 0)
        if cfg.fmt.k:
            await _malformed_weights(tb, rng, lambda j: j.corrupt_vmask_count(rng, more=False),
                                     "malformed:vmask_low", 0)
            await _malformed_weights(tb, rng, lambda j: j.corrupt_high_code(rng),
                                     "malformed:high_code", 0)

    @cocotb.test()
    async def malformed_tile_length(dut):
        """A weight column with one record too many or too few (column 0 or another), and
        every column beyond nb_max: status bit 1 (err_tile_len), every token of the tile
        errors, the following tiles are exact. With R = 1, column 0 alone defines nb, so
        "too long" means beyond nb_max and a short column is a shorter, valid tile (its
        full-length tokens then get err_token_len)."""
        cfg, rng = common.cfg_and_rng()
        tb = common.TB(dut, cfg)
        R = cfg.rows

        def long(job):
            n = rng.randrange(R)
            if n == 0:                        # column 0 beyond nb_max
                job.col_records = {0: cfg.nb_max + 1}
                job.short = {m: cfg.nb_max for m in range(job.m)}
            else:
                job.col_records = {n: job.nb + 1}
            job.tile_error = True

        def short(job):
            n = rng.randrange(1, R) if R > 1 else 0
            if rng.random() < 0.3 and R > 1:  # column 0 short: the others are then long;
                n = 0                         # tokens use column 0's count (no token error)
                job.short = {m: job.nb - 1 for m in range(job.m)}
            job.col_records = {n: job.nb - 1}
            job.tile_error = True

        # Long: column 0 beyond nb_max needs column 0 itself at nb_max + 1 records.
        await _malformed_weights(tb, rng, long, "malformed:tile_long", 1)
        if R > 1:
            await _malformed_weights(tb, rng, short, "malformed:tile_short", 1)
        else:
            await tb.reset()
            job = Job(cfg, rng, nb=rng.randint(2, cfg.nb_max), m=3)
            job.col_records = {0: job.nb - 1}
            job.bad_tokens = set(range(job.m))
            await tb.run_jobs([job, Job(cfg, rng)])
            assert tb.errors_seen == job.m and tb.status() == Status.ERR_TOKEN_LEN, tb.status()
            tb.errors_seen = 0
        # Every column beyond nb_max (the extra records are dropped, never written past
        # the tile's buffer).
        await tb.reset()
        bad = Job(cfg, rng, nb=cfg.nb_max)
        bad.col_records = {n: cfg.nb_max + 1 for n in range(R)}
        bad.tile_error = True
        await tb.run_jobs([bad, Job(cfg, rng), Job(cfg, rng)])
        assert tb.errors_seen == bad.m and tb.status() == Status.ERR_TILE_LEN, tb.status()
        tb.errors_seen = 0
        await tb.reset()

    @cocotb.test()
    async def malformed_token_length(dut):
        """Tokens one beat too long, one too short, and beyond nb_max: each gives one error
        beat (status bit 2); the other tokens of the tile stay exact."""
        cfg, rng = common.cfg_and_rng()
        tb = common.TB(dut, cfg)
        for cls, delta in (("malformed:token_long", +1), ("malformed:token_short", -1)):
            await tb.reset()
            job = Job(cfg, rng, nb=rng.randint(2, cfg.nb_max), m=4)
            bad = rng.randrange(job.m)
            job.short = {bad: job.nb + delta}
            job.bad_tokens = {bad}
            tb.set_stalls(rng, rng.choice(("none", "random")))
            await tb.run_jobs([job, Job(cfg, rng)])
            tb.set_stalls(None)
            assert tb.errors_seen == 1
            assert tb.status() == Status.ERR_TOKEN_LEN, f"{cls}: status {tb.status():04b}"
            tb.cover(cls)
            tb.errors_seen = 0
        # Far beyond nb_max (the beat counter saturates), in a full-length tile.
        await tb.reset()
        job = Job(cfg, rng, nb=cfg.nb_max, m=3)
        job.short = {1: 2 * cfg.nb_max + 1}
        job.bad_tokens = {1}
        await tb.run_jobs([job, Job(cfg, rng)])
        assert tb.errors_seen == 1 and tb.status() == Status.ERR_TOKEN_LEN
        tb.errors_seen = 0
        await tb.reset()

    from sqhw.sim.harness import frozen_entries as _frozen_entries
    #: This run's stored vectors (None outside a harness run): without any, the test is
    #: reported as skipped, never as passed.
    _FROZEN = _frozen_entries("vectors")

    @cocotb.test(skip=_FROZEN == [])
    async def frozen_vectors(dut):
        """The frozen golden vectors of golden/ for this configuration: the RTL reproduces
        the stored results (not a fresh model call). Skipped (visibly) for a configuration
        with no stored vectors."""
        import numpy as np
        cfg, rng = common.cfg_and_rng()
        entries = _FROZEN
        tb = common.TB(dut, cfg)
        await tb.reset()
        R, rb = cfg.rows, cfg.fmt.record_bytes
        for e in entries:
            with np.load(common.ROOT / "golden" / e["file"]) as z:
                image, x, y = z["image"].tobytes(), z["x"], z["expected"]
            nb = int(e["K"]) // cfg.fmt.bank_size
            N = int(e["N"])
            assert N % R == 0
            jobs = []
            for t in range(N // R):
                tile = image[t * R * nb * rb:(t + 1) * R * nb * rb]
                jobs.append(Job.frozen(cfg, tile, nb, x, y[:, t * R:(t + 1) * R]))
            await tb.run_jobs(jobs)
            tb.log.info("frozen vectors %s: %d tiles, %d results exact", e["file"],
                        len(jobs), sum(j.m for j in jobs))
        assert tb.status() == 0


__all__ = ["Job", "make_sq", "CONFIGS", "SLOW_CONFIGS", "RTL_COVERAGE_CONFIG"]
