"""cocotb + Verilator regression of the activation-mode ``sqhw_top`` (``operand="activation"``)
against the golden model ``hw_matmul_act``.

The drivers, monitor, in-order scoreboard and stall patterns are those of the weight-mode
regression (:class:`verif.top.tb.TB`); what differs is the job: a tile is the static
mask (the first "column" of the weight stream, one ``b``-bit word per bank) and ``R``
columns of reordered dense weight rows, and a token beat carries ``b`` activation codes in
natural channel order and the token's scale codes of that bank (datasheet §10). The
testbench packs those bytes itself from the datasheet; ``sqhw.golden`` gives only the test
data and the expected results.

Tests: the frozen golden vectors of ``golden/`` (``act_frozen_vectors``: stored stream
bytes, stored results, no model call), random jobs, every stall pattern, extreme codes at
K = k_max (the accumulator near its bound), mask patterns, single bank / single token, the
measured latency, a malformed mask (popcount k ± 1), an out-of-range weight code,
out-of-range activation codes (high and low group), wrong column and token lengths, each
followed by an exact job, and a reset mid-job followed by an exact job. Functional bins
(:data:`verif.coverage.ACT_BINS`) are judged per configuration by :func:`test_top_act`.

Replay, from the repository root: ``WAVES=1 SEED=<seed> .venv/bin/python -m pytest
'verif/top/test_top_act.py::test_top_act[<name>]'``.
"""

import random

import pytest

from sqhw.format import Status
from sqhw.format.pipeline import fanout_groups
from sqhw.format.spec import HWConfig, SQFormat, act_min_acc_bits

from . import tb as common

#: Datasheet §10: cycles from the accepted ``last`` beat of a token to its result.


def _cfg(b: int, k: int, h: int, low: int, rows: int, nb_max: int, wb: int, *,
         act: int = 8) -> HWConfig:
    fmt = SQFormat(bank_size=b, sparsity=1.0 - k / b, high_bits=h, low_bits=low)
    k_max = nb_max * b
    return HWConfig(fmt=fmt, rows=rows, act_bits=act, k_max=k_max,
                    acc_bits=act_min_acc_bits(fmt, wb, k_max), operand="activation",
                    weight_bits=wb)


#: Small builds (k_max ≤ 64, rows ≤ 6): W4A(SQ) with the paper's B16-(8/4)-0.875, W8A(SQ)
#: with B8-(8/2)-0.5 over 3 rows, and 6 rows: two groups of the broadcast registers' copies
#: (``FANOUT_ROWS`` = 4).
CONFIGS: dict[str, HWConfig] = {
    "act-r4-b16-k2-8/4-w4": _cfg(16, 2, 8, 4, rows=4, nb_max=4, wb=4),
    "act-r3-b8-k4-8/2-w8": _cfg(8, 4, 8, 2, rows=3, nb_max=4, wb=8),
    "act-r6-b8-k2-8/4-w4": _cfg(8, 2, 8, 4, rows=6, nb_max=2, wb=4),
}


#: Datapath variants the default matrix does not build (no low group: 2:4 on the activations;
#: no high group: dense INT4 activations, k = 0; narrow code fields, a = 4): linted by
#: default, simulated with every cocotb test under ``pytest -m slow`` (test_top_act_slow).
LINT_ONLY: dict[str, HWConfig] = {
    "act-r2-2:4-w8": HWConfig(fmt=SQFormat.two_four(8), rows=2, k_max=32, operand="activation",
                              acc_bits=act_min_acc_bits(SQFormat.two_four(8), 8, 32)),
    "act-r2-b16-int4-w4": HWConfig(fmt=SQFormat.dense(4), rows=2, k_max=32, acc_bits=
                                   act_min_acc_bits(SQFormat.dense(4), 4, 32),
                                   operand="activation", weight_bits=4),
    "act-r1-b8-k2-4/2-a4-w4": _cfg(8, 2, 4, 2, rows=1, nb_max=2, wb=4, act=4),
}


def _bins_for(cfg: HWConfig) -> set[str]:
    """The bins of ``ACT_BINS`` one configuration must hit."""
    from verif.coverage import ACT_BINS
    own = {f"act:k:{cfg.fmt.k}", f"act:wb:{cfg.weight_bits}"}
    out = {b for b in ACT_BINS if not b.startswith(("act:k:", "act:wb:"))} | own
    if not cfg.fmt.low_bits:
        out.discard("act:malformed:low_code")
    if cfg.fmt.k < 2:
        out -= {"act:mask:adjacent", "act:mask:spread"}
    if cfg.fmt.k == 0:
        out -= {"act:mask:first", "act:mask:last", "act:malformed:mask_low",
                "act:malformed:high_code"}
    return out


@pytest.mark.parametrize("name", list(CONFIGS))
def test_top_act(name, record_property):
    """Every cocotb test of this module on one configuration, in one simulator; then the
    configuration's functional bins must all be hit."""
    _run(name, CONFIGS[name], record_property)


def _run(name, cfg, record_property):
    from verif import coverage
    seed, run_dir = common.run_config(name, cfg, record_property, "verif.top.test_top_act",
                               common.ACT_BINS_FILE)
    hits = coverage.load(run_dir / common.ACT_BINS_FILE)["hits"]
    miss = sorted(_bins_for(cfg) - {b for b, n in hits.items() if n})
    assert not miss, f"{name}: activation-mode bins never hit: {miss} (SEED={seed})"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LINT_ONLY))
def test_top_act_slow(name, record_property):
    """The lint-only variants simulated too (``make verify-all``, or ``pytest -m slow
    verif/top/test_top_act.py``)."""
    _run(name, LINT_ONLY[name], record_property)


def test_matrix_and_latency_constant():
    # Activation mode reads the mask word in the cycle weight mode registers the read
    # address, then waits for select and gather's pipelined prefix count: the latency of
    # the weight-mode array of the role-swapped row plus prefix_stages.
    for c in CONFIGS.values():
        weight_mode = HWConfig(fmt=c.fmt, act_bits=c.weight_bits, k_max=c.k_max, acc_bits=64,
                               mults=c.mults, tree_levels=c.tree_levels)
        assert c.latency == weight_mode.latency + c.prefix_stages
        assert c.prefix_stages == -(-(c.fmt.bank_size - 1).bit_length() // 2)
    assert {c.weight_bits for c in CONFIGS.values()} == {4, 8}
    assert all(c.k_max <= 128 and c.rows <= 6 and c.is_act_mode for c in CONFIGS.values())
    assert max(fanout_groups(c.rows) for c in CONFIGS.values()) > 1


@pytest.mark.parametrize("name", ["act-r4-b16-k2-8/4-w4", *LINT_ONLY])
def test_top_act_lint(name):
    """``verilator --lint-only -Wall`` (with the project's waivers)."""
    from sqhw.toolchain import verilator_lint
    verilator_lint(common.verilog_for({**CONFIGS, **LINT_ONLY}[name]), "sqhw_top")


# -- the cocotb side ----------------------------------------------------------------------

try:
    import cocotb
    from cocotb.triggers import ClockCycles
except ImportError:  # pragma: no cover
    cocotb = None


def random_mask(fmt: SQFormat, nb: int, rng: random.Random, pick=None) -> list[int]:
    """``nb`` mask words (bit i = channel i high), exactly k bits each; ``pick(j)`` may give
    bank j's high channels."""
    b, k = fmt.bank_size, fmt.k
    words = []
    for j in range(nb):
        chans = pick(j) if pick else rng.sample(range(b), k)
        assert len(set(chans)) == k
        words.append(sum(1 << c for c in chans))
    return words


class ActJob:
    """One activation-mode tile (mask + R weight columns) and its tokens, with the expected
    results of ``hw_matmul_act``. The same interface as :class:`verif.top.test_top.Job`
    (``weight_frames``, ``token_frames``, ``expected_results``, ``bins``, ``m``, ``nb``,
    ``tile_error``, ``bad_tokens``, ``short``, ``col_records``)."""

    def __init__(self, cfg: HWConfig, rng: random.Random, nb: int | None = None,
                 m: int | None = None, *, mask_pick=None, extremes: int = 0, tags=()):
        import torch

        from sqhw.golden import (
            hw_matmul_act,
            quantize_activation_sq,
            quantize_weight_dense,
            reorder_permutation,
        )
        self.cfg = cfg
        fmt = cfg.fmt
        b, R = fmt.bank_size, cfg.rows
        self.nb = nb if nb is not None else rng.randint(1, min(cfg.nb_max, 4))
        self.m = m if m is not None else rng.randint(1, 4)
        K = self.nb * b
        g = torch.Generator().manual_seed(rng.getrandbits(62))
        self.mask_words = random_mask(fmt, self.nb, rng, mask_pick)
        mask = torch.tensor([bool(self.mask_words[i // b] >> (i % b) & 1) for i in range(K)])
        # Heavy-tailed activations, so both groups' scale codes vary from bank to bank.
        x = torch.randn(self.m, K, generator=g) * torch.rand(self.m, K, generator=g).pow(4) * 8
        act = quantize_activation_sq(x, mask, fmt)
        weight = quantize_weight_dense(torch.randn(K, R, generator=g), cfg.weight_bits)
        if extremes:
            # Every code at its extreme, scale codes at max; sign s pushes every product
            # toward +bound (s = 1) or -bound (s = -1).
            s = extremes
            top = fmt.scale_max
            act = type(act)(
                codes=torch.where(mask, -fmt.high_max, -fmt.low_max).expand(self.m, K)
                .to(torch.int32).contiguous(),
                scale_high=torch.full_like(act.scale_high, top if fmt.k else 0),
                scale_low=torch.full_like(act.scale_low, top if fmt.low_bits else 0),
                token_scale=act.token_scale, mask=act.mask, fmt=fmt)
            weight = type(weight)(codes=torch.full_like(weight.codes, -s * weight.qmax),
                                  col_scale=weight.col_scale, bits=weight.bits)
        self.expected = hw_matmul_act(act, weight, cfg.acc_bits).tolist()   # [M, R]
        self.codes = act.codes.tolist()                      # natural order, as sent
        self.scale_high = act.scale_high.tolist()
        self.scale_low = act.scale_low.tolist()
        perm = reorder_permutation(mask, fmt)
        self.w_rows = weight.codes.to(torch.int64)[perm].T.tolist()   # [R][K], reordered
        self.tags = set(tags)
        self.bad_tokens: set[int] = set()
        self.tile_error = False
        self.short: dict[int, int] = {}
        self.col_records: dict[int, int] = {}   # column (0 = mask, 1 + r = row r) -> count

    # -- corruptions (the expected results were computed before) ----------------------------
    def corrupt_mask(self, rng: random.Random, more: bool):
        """One bank's mask word gets k+1 (``more``) or k-1 high channels."""
        b = self.cfg.fmt.bank_size
        j = rng.randrange(self.nb)
        w = self.mask_words[j]
        bits = [i for i in range(b) if bool(w >> i & 1) != more]
        self.mask_words[j] = w ^ (1 << rng.choice(bits))
        self.tile_error = True

    def corrupt_weight_code(self, rng: random.Random):
        r, i = rng.randrange(self.cfg.rows), rng.randrange(self.nb * self.cfg.fmt.bank_size)
        self.w_rows[r][i] = -(1 << (self.cfg.weight_bits - 1))
        self.tile_error = True

    def corrupt_act_code(self, rng: random.Random, high: bool):
        """One code of one token outside its group's range: ``-2^(h-1)`` on a high channel
        or ``-2^(l-1)`` on a low one (both fit the ``act_bits`` field)."""
        fmt, b = self.cfg.fmt, self.cfg.fmt.bank_size
        m = rng.randrange(self.m)
        chans = [i for i in range(self.nb * b)
                 if bool(self.mask_words[i // b] >> (i % b) & 1) == high]
        i = rng.choice(chans)
        self.codes[m][i] = -(1 << ((fmt.high_bits if high else fmt.low_bits) - 1))
        self.bad_tokens.add(m)

    # -- bytes on the wire (datasheet §10) --------------------------------------------------
    def weight_frames(self, columns=None):
        """Column 0: the mask words; column 1 + r: row r's reordered weight rows."""
        from cocotbext.axi import AxiStreamFrame
        cfg = self.cfg
        b, wb = cfg.fmt.bank_size, cfg.weight_bits
        nbytes = cfg.weight_data_bits // 8
        wmask = (1 << wb) - 1
        frames = []
        for c in range(cfg.rows + 1) if columns is None else columns:
            recs = []
            for j in range(self.nb):
                if c == 0:
                    word = self.mask_words[j]
                else:
                    row = self.w_rows[c - 1][j * b:(j + 1) * b]
                    word = sum((v & wmask) << (i * wb) for i, v in enumerate(row))
                recs.append(word.to_bytes(nbytes, "little"))
            count = self.col_records.get(c, self.nb)
            recs = (recs + [recs[-1]] * count)[:count]
            frames.append(AxiStreamFrame(b"".join(recs)))
        return frames

    def token_frames(self, last_of_tile: bool = True):
        from cocotbext.axi import AxiStreamFrame
        cfg = self.cfg
        fmt = cfg.fmt
        b, a, sb = fmt.bank_size, cfg.act_bits, fmt.scale_bits
        lanes = cfg.act_data_bits // 8
        amask = (1 << a) - 1
        frames = []
        for m in range(self.m):
            beats = self.short.get(m, self.nb)
            data = bytearray()
            for jj in range(beats):
                j = jj % self.nb
                word = sum((v & amask) << (i * a)
                           for i, v in enumerate(self.codes[m][j * b:(j + 1) * b]))
                pos = b * a
                if fmt.has_high:
                    word |= self.scale_high[m][j] << pos
                    pos += sb
                if fmt.has_low_scale:
                    word |= self.scale_low[m][j] << pos
                data += word.to_bytes(lanes, "little")
            last = int(last_of_tile and m == self.m - 1)
            tuser = [0] * (lanes * (beats - 1)) + [last] * lanes
            frames.append(AxiStreamFrame(bytes(data), tuser=tuser))
        return frames

    def expected_results(self):
        return [(None, 1) if self.tile_error or m in self.bad_tokens
                else (self.expected[m], 0) for m in range(self.m)]

    def bins(self) -> set[str]:
        cfg, fmt = self.cfg, self.cfg.fmt
        out = set(self.tags)
        if self.tile_error:
            return out
        out |= {f"act:k:{fmt.k}", f"act:wb:{cfg.weight_bits}"}
        if self.nb == cfg.nb_max:
            out.add("act:corner:k_max")
        if self.nb == 1:
            out.add("act:corner:single_bank")
        if self.m == 1:
            out.add("act:corner:m1")
        b, k = fmt.bank_size, fmt.k
        for w in self.mask_words:
            chans = [i for i in range(b) if w >> i & 1]
            if 0 in chans:
                out.add("act:mask:first")
            if b - 1 in chans:
                out.add("act:mask:last")
            if k >= 2:
                out.add("act:mask:adjacent" if chans[-1] - chans[0] == k - 1
                        else "act:mask:spread")
        return out


class FrozenActJob(ActJob):
    """One tile of a frozen activation-mode vector (golden/, ``act_vectors`` of the
    manifest): the stored weight-stream bytes of the tile (mask column + R weight columns)
    and the stored token beats, checked against the stored results. No model call."""

    def __init__(self, cfg: HWConfig, tile: bytes, tokens, nb: int, expected):
        self.cfg, self.nb, self.m = cfg, nb, len(tokens)
        rec = cfg.weight_data_bits // 8
        assert len(tile) == (cfg.rows + 1) * nb * rec
        self.columns = [bytes(tile[c * nb * rec:(c + 1) * nb * rec])
                        for c in range(cfg.rows + 1)]
        self.tokens = [bytes(t) for t in tokens]
        assert all(len(t) == nb * cfg.act_data_bits // 8 for t in self.tokens)
        self.expected = [[int(v) for v in row] for row in expected]
        self.tags: set[str] = set()
        self.bad_tokens: set[int] = set()
        self.tile_error = False
        self.short: dict[int, int] = {}
        self.col_records: dict[int, int] = {}
        b = cfg.fmt.bank_size
        self.mask_words = [int.from_bytes(self.columns[0][j * rec:(j + 1) * rec], "little")
                           & ((1 << b) - 1) for j in range(nb)]

    def weight_frames(self, columns=None):
        from cocotbext.axi import AxiStreamFrame
        return [AxiStreamFrame(self.columns[c])
                for c in (range(self.cfg.rows + 1) if columns is None else columns)]

    def token_frames(self, last_of_tile: bool = True):
        from cocotbext.axi import AxiStreamFrame
        lanes = self.cfg.act_data_bits // 8
        frames = []
        for m, data in enumerate(self.tokens):
            last = int(last_of_tile and m == self.m - 1)
            tuser = [0] * (lanes * (self.nb - 1)) + [last] * lanes
            frames.append(AxiStreamFrame(data, tuser=tuser))
        return frames


def _act_bins():
    """The activation mode's functional bins, which its :class:`.tb.TB` counts."""
    from verif.coverage import ACT_BINS
    return ACT_BINS


def _make_tb(dut, cfg):
    """The shared :class:`.tb.TB`, counting the activation mode's bins."""
    return common.TB(dut, cfg, bins=_act_bins())


if cocotb is not None:
    from sqhw.sim.harness import frozen_entries as _frozen_entries
    _ACT_FROZEN = _frozen_entries("act_vectors")

    @cocotb.test(skip=_ACT_FROZEN == [])
    async def act_frozen_vectors(dut):
        """The frozen activation-mode vectors of golden/ for this configuration (by digest):
        their stored weight-stream and token bytes, tile by tile, give the **stored**
        results bit for bit (not a fresh model call), one result per token and tile."""

        from verif.golden_vectors import load_act_vector
        cfg, _ = common.cfg_and_rng()
        entries = _ACT_FROZEN
        tb = _make_tb(dut, cfg)
        await tb.reset()
        R, rec = cfg.rows, cfg.weight_data_bits // 8
        for e in entries:
            v = load_act_vector(e, common.ROOT / "golden")
            assert v["config"] == cfg.to_dict(), e["file"]
            nb, N, M, tiles = int(e["nb"]), int(e["N"]), int(e["M"]), int(e["tiles"])
            assert N == tiles * R and v["expected"].shape == (M, N)
            tile_bytes = (R + 1) * nb * rec
            assert len(v["image"]) == tiles * tile_bytes
            jobs = [FrozenActJob(cfg, v["image"][t * tile_bytes:(t + 1) * tile_bytes],
                                 v["tokens"], nb, v["expected"][:, t * R:(t + 1) * R])
                    for t in range(tiles)]
            before = tb.checked
            await tb.run_jobs(jobs)
            assert tb.checked - before == M * tiles, (tb.checked - before, M * tiles)
            tb.log.info("frozen vectors %s: %d tiles, %d results exact", e["file"], tiles,
                        tb.checked - before)
        assert tb.errors_seen == 0 and tb.status() == 0

    @cocotb.test()
    async def act_random_jobs(dut):
        """Random tiles back to back (both buffers), no stalls: bit-exact vs hw_matmul_act."""
        cfg, rng, tb = await common.start_tb(dut, _act_bins())
        jobs = [ActJob(cfg, rng) for _ in range(4)]
        jobs += [ActJob(cfg, rng, nb=1, m=1), ActJob(cfg, rng, nb=cfg.nb_max, m=3)]
        await tb.run_jobs(jobs)
        assert tb.status() == 0
        tb.log.info("checked %d results", tb.checked)

    @cocotb.test()
    async def act_stalls_and_backpressure(dut):
        """Source idles, sink backpressure, both, and bursty runs on all three streams."""
        cfg, rng, tb = await common.start_tb(dut, _act_bins())
        await common.check_stalls_and_backpressure(tb, rng, lambda: ActJob(cfg, rng), 3)

    @cocotb.test()
    async def act_extremes_and_masks(dut):
        """K = k_max with every code, weight and scale code at its extreme (results at
        ±(near) the accumulator bound, exact), and directed mask patterns: the first k
        channels, the last k, spread, under random stalls."""
        cfg, rng = common.cfg_and_rng()
        fmt = cfg.fmt
        b, k = fmt.bank_size, fmt.k
        tb = _make_tb(dut, cfg)
        await tb.reset()
        jobs = [ActJob(cfg, rng, nb=cfg.nb_max, m=2, extremes=s,
                       tags={"act:corner:extreme_codes"}) for s in (1, -1)]
        for job, s in zip(jobs, (1, -1), strict=True):
            assert all(s * v > 0 for row in job.expected for v in row)
        pats = ([list(range(k)), list(range(b - k, b)), list(range(0, b, b // k))[:k]]
                if k else [[]])
        jobs.append(ActJob(cfg, rng, nb=cfg.nb_max, m=2,
                           mask_pick=lambda j: pats[j % len(pats)]))
        tb.set_stalls(rng, "random")
        await tb.run_jobs(jobs)
        tb.set_stalls(None)
        assert tb.max_result * 2 >= cfg.acc_bound and tb.min_result * 2 <= -cfg.acc_bound, (
            tb.max_result, tb.min_result, cfg.acc_bound)
        assert tb.status() == 0

    @cocotb.test()
    async def act_latency(dut):
        """With nothing stalled, a token's result is valid ``cfg.latency`` cycles after the cycle
        its last beat is accepted; back-to-back tokens give one result per nb cycles."""
        cfg, rng, tb = await common.start_tb(dut, _act_bins())
        # Load a tile first, then send the tokens.
        job = ActJob(cfg, rng, nb=2, m=6)
        tb.start_monitor()
        tb.expected.extend(job.expected_results())
        tb._want = tb.checked + job.m
        tb._done.clear()
        for f in job.weight_frames():
            await tb.w_src.send(f)
        await tb.w_src.wait()
        await ClockCycles(dut.clk, 5)
        w = cocotb.start_soon(common.watch_handshakes(dut, job.m))
        for f in job.token_frames():
            await tb.a_src.send(f)
        await tb.wait_results([job])
        _, acc_at, valid_at = await w
        lat = [v - a for a, v in zip(acc_at, valid_at, strict=True)]
        tb.log.info("latency per token: %s (datasheet: %d)", lat, cfg.latency)
        assert lat == [cfg.latency] * job.m, lat
        gaps = [v2 - v1 for v1, v2 in zip(valid_at, valid_at[1:], strict=False)]
        assert all(gp == job.nb for gp in gaps), f"results not one per nb cycles: {gaps}"
        tb.cover_jobs([job])
        tb.cover("act:latency")
        assert tb.status() == 0

    @cocotb.test()
    async def act_buffer_reuse_under_backpressure(dut):
        """Short tiles back to back with the weight stream running ahead and the result sink
        stalling in long runs: a freed tile buffer is refilled by the next-but-one tile
        while the pipeline is stalled. The buffer may only be freed once the last beat's
        weight rows were read (one cycle after its acceptance, in the pipeline's enable);
        freeing it at acceptance let a new tile overwrite them (a mutation this test
        catches)."""
        cfg, rng, tb = await common.start_tb(dut, _act_bins())

        def sink_pattern(r):
            while True:
                for _ in range(r.randrange(1, 4)):
                    yield False
                for _ in range(r.randrange(3, 16)):
                    yield True

        for _ in range(3):
            tb.set_stalls(None)
            tb.stall_mode = "sink"
            tb.r_sink.set_pause_generator(sink_pattern(random.Random(rng.getrandbits(32))))
            await tb.run_jobs([ActJob(cfg, rng, nb=rng.randint(1, 2), m=rng.randint(1, 3))
                               for _ in range(8)])
        tb.set_stalls(None)
        assert tb.status() == 0

    async def _bad_then_good(tb, rng, corrupt, bin_name, status, *, per_token=False):
        """good, bad, good: the bad job's documented error results, the sticky status bit
        (and only it), exact jobs around it; the bit survives an exact job and clears on
        reset."""
        cfg = tb.cfg
        await tb.reset()
        bad = ActJob(cfg, rng, nb=rng.randint(2, cfg.nb_max), m=rng.randint(2, 4))
        corrupt(bad)
        tb.set_stalls(rng, rng.choice(("none", "random")))
        await tb.run_jobs([ActJob(cfg, rng), bad, ActJob(cfg, rng)])
        tb.set_stalls(None)
        want = len(bad.bad_tokens) if per_token else bad.m
        assert tb.errors_seen == want, (tb.errors_seen, want)
        assert tb.status() == status, f"{bin_name}: status {tb.status():04b}"
        await tb.run_jobs([ActJob(cfg, rng)])
        assert tb.status() == status
        tb.cover(bin_name)
        tb.errors_seen = 0
        await tb.reset()

    @cocotb.test()
    async def act_malformed_mask_and_weights(dut):
        """A mask word with k+1 and with k-1 high channels, and a weight code -2^(wb-1):
        status bit 0, every token of the tile an error beat (tuser = 1, data 0), the next
        jobs exact."""
        cfg, rng = common.cfg_and_rng()
        tb = _make_tb(dut, cfg)
        await _bad_then_good(tb, rng, lambda j: j.corrupt_mask(rng, more=True),
                             "act:malformed:mask_high", Status.ERR_WEIGHT)
        if cfg.fmt.k:
            await _bad_then_good(tb, rng, lambda j: j.corrupt_mask(rng, more=False),
                                 "act:malformed:mask_low", Status.ERR_WEIGHT)
        await _bad_then_good(tb, rng, lambda j: j.corrupt_weight_code(rng),
                             "act:malformed:weight_code", Status.ERR_WEIGHT)

    @cocotb.test()
    async def act_malformed_codes(dut):
        """An activation code outside its group's range (high, then low): that token's
        result is an error beat, status bit 3; the other tokens stay exact."""
        cfg, rng = common.cfg_and_rng()
        tb = _make_tb(dut, cfg)
        if cfg.fmt.k:
            await _bad_then_good(tb, rng, lambda j: j.corrupt_act_code(rng, high=True),
                                 "act:malformed:high_code", Status.ERR_ACT_CODE, per_token=True)
        if cfg.fmt.low_bits:
            await _bad_then_good(tb, rng, lambda j: j.corrupt_act_code(rng, high=False),
                                 "act:malformed:low_code", Status.ERR_ACT_CODE, per_token=True)

    @cocotb.test()
    async def act_malformed_lengths(dut):
        """A mask column one record too long, a weight column one too short (status bit 1,
        tile error), and tokens one beat too long / too short (status bit 2, that token
        only); each followed by exact jobs."""
        cfg, rng = common.cfg_and_rng()
        tb = _make_tb(dut, cfg)

        def tile_len(job):
            if job.nb == cfg.nb_max or rng.random() < 0.5:
                job.col_records = {1 + rng.randrange(cfg.rows): job.nb - 1}
            else:
                job.col_records = {0: job.nb + 1}
                job.short = {m: job.nb + 1 for m in range(job.m)}
            job.tile_error = True

        await _bad_then_good(tb, rng, tile_len, "act:malformed:tile_len", Status.ERR_TILE_LEN)
        for name, delta in (("act:malformed:token_long", 1), ("act:malformed:token_short", -1)):
            def tok_len(job, delta=delta):
                bad = rng.randrange(job.m)
                job.short = {bad: job.nb + delta}
                job.bad_tokens = {bad}
            await _bad_then_good(tb, rng, tok_len, name, Status.ERR_TOKEN_LEN, per_token=True)

    @cocotb.test()
    async def act_reset_mid_job(dut):
        """Reset while a job is half sent (stalls on); then exact jobs; status reads 0."""
        cfg, rng, tb = await common.start_tb(dut, _act_bins())
        await common.check_reset_mid_job(tb, rng, lambda **kw: ActJob(cfg, rng, **kw),
                                  "act:reset:mid_job")


__all__ = ["ActJob", "FrozenActJob", "CONFIGS", "LINT_ONLY"]
