"""MacArray: weight tiles from ``pack()`` images and token streams, with random idle cycles on
both input streams and random backpressure on the result stream; every result beat is
compared, in order, with ``hw_matmul`` (datasheet §7-§8)."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from amaranth.hdl import ClockDomain, Module

from sqhw.format import HWConfig, SQFormat, Status
from sqhw.gateware.array import MacArray
from sqhw.gateware.emit import verilog_text
from sqhw.gateware.top import Top
from sqhw.golden import hw_matmul, pack, random_sqtensor
from sqhw.golden.schedule import Workload, schedule_cycles_for

from ._util import pack_fields, run_sim, seeded_rng, unpack_fields
from .test_row import random_acts

ERR_WEIGHT, ERR_TILE_LEN, ERR_TOKEN_LEN = (Status.ERR_WEIGHT, Status.ERR_TILE_LEN,
                                          Status.ERR_TOKEN_LEN)


@dataclass
class Tile:
    """One weight tile on the wire and the tokens run on it, with their expected results."""
    records: list = field(default_factory=list)   # (data int, last)
    tokens: list = field(default_factory=list)    # list of beats: (data int, last, user)
    expect: list = field(default_factory=list)    # (user, [R sums])


def records_of(cfg, image: bytes, nb: int):
    rb = cfg.fmt.record_bytes
    recs = [int.from_bytes(image[i:i + rb], "little") for i in range(0, len(image), rb)]
    return [(rec, (i % nb) == nb - 1) for i, rec in enumerate(recs)]


def make_tile(cfg, rng, nb, n_tokens, *, corrupt=None, token_len=None):
    """A random well-formed tile of ``nb`` banks per column, ``n_tokens`` tokens.

    ``corrupt``: None, "vmask" (flip one low code to/from the vmask), "high" (an
    out-of-range high code), "pad" (a padding bit of one record set), "short"/"long"
    (column R-1 one record short / long; column 0 when R = 1), "col0_over" (column 0 has
    nb_max + 1 records).
    ``token_len``: {token index: beat count} for tokens of the wrong length.
    """
    fmt, R, b = cfg.fmt, cfg.rows, cfg.fmt.bank_size
    gen = torch.Generator().manual_seed(rng.getrandbits(32))
    sq = random_sqtensor(fmt, nb * b, R, generator=gen)
    x = random_acts(rng, cfg.act_bits, n_tokens, nb * b)
    y = hw_matmul(x, sq, act_bits=cfg.act_bits, acc_bits=cfg.acc_bits)
    tile = Tile(records=records_of(cfg, pack(sq), nb))
    bad_tile = corrupt is not None
    if corrupt == "vmask":
        i = rng.randrange(len(tile.records))
        rec, last = tile.records[i]
        wl = fmt.low_width
        vm = (1 << wl) - 1 & fmt.vmask
        low0 = rec & ((1 << wl) - 1)
        rec = (rec & ~((1 << wl) - 1)) | (0 if low0 == vm else vm)
        tile.records[i] = (rec, last)
    elif corrupt == "high":
        i = rng.randrange(len(tile.records))
        rec, last = tile.records[i]
        off = b * fmt.low_width
        hmask = ((1 << fmt.high_bits) - 1) << off
        tile.records[i] = ((rec & ~hmask) | (1 << (fmt.high_bits - 1)) << off, last)
    elif corrupt == "pad":
        i = rng.randrange(len(tile.records))
        rec, last = tile.records[i]
        bit = rng.randrange(fmt.record_bits, 8 * fmt.record_bytes)
        tile.records[i] = (rec | 1 << bit, last)
    elif corrupt in ("short", "long"):
        c = R - 1
        col = tile.records[c * nb:(c + 1) * nb]
        if corrupt == "short":
            assert nb > 1 and R > 1
            col = col[:-1]
            col[-1] = (col[-1][0], True)
        else:
            col = col[:-1] + [(col[-1][0], False), (col[0][0], True)]
        tile.records[c * nb:(c + 1) * nb] = col
    elif corrupt == "col0_over":
        assert nb == cfg.nb_max
        col = tile.records[:nb]
        tile.records[:nb] = col[:-1] + [(col[-1][0], False), (col[0][0], True)]
    token_len = token_len or {}
    for m in range(n_tokens):
        beats = token_len.get(m, nb)
        banks = [x[m, (j % nb) * b:((j % nb) + 1) * b].tolist() for j in range(beats)]
        tile.tokens.append([(pack_fields(bank, cfg.act_bits), j == beats - 1,
                             j == beats - 1 and m == n_tokens - 1)
                            for j, bank in enumerate(banks)])
        if bad_tile or beats != nb:
            tile.expect.append((1, [0] * R))
        else:
            tile.expect.append((0, y[m].tolist()))
    return tile


class ArrayPorts:
    """The streams of a MacArray as (valid, ready, payload-as-one-integer) accessors."""

    def __init__(self, cfg):
        self.dut = dut = MacArray(cfg)
        self.w_valid, self.w_ready, self.a_valid, self.a_ready = (
            dut.w.valid, dut.w.ready, dut.a.valid, dut.a.ready)
        self.r_valid, self.r_ready, self.status = dut.r.valid, dut.r.ready, dut.status
        self.a_bits = cfg.fmt.bank_size * cfg.act_bits
        self.r_bits = cfg.rows * cfg.acc_bits

    def set_w(self, ctx, data, last):
        ctx.set(self.dut.w.payload.as_value(), data | (int(last) << len(self.dut.w.payload.data)))

    def set_a(self, ctx, data, last, user):
        ctx.set(self.dut.a.payload.as_value(),
                data | (int(last) << self.a_bits) | (int(user) << (self.a_bits + 1)))

    def get_r(self, ctx):
        word = ctx.get(self.dut.r.payload.as_value())
        return word & ((1 << self.r_bits) - 1), word >> self.r_bits


class TopPorts(ArrayPorts):
    """The same through :class:`~sqhw.gateware.top.Top`'s flat AXI4-Stream ports; the
    padding bits of ``s_axis_a_tdata`` are driven with garbage (they must be ignored) and
    those of ``m_axis_r_tdata`` must read 0."""

    def __init__(self, cfg, rng):
        self.dut = dut = Top(cfg)
        self.rng = rng
        self.w_valid, self.w_ready = dut.s_axis_w_tvalid, dut.s_axis_w_tready
        self.a_valid, self.a_ready = dut.s_axis_a_tvalid, dut.s_axis_a_tready
        self.r_valid, self.r_ready, self.status = (
            dut.m_axis_r_tvalid, dut.m_axis_r_tready, dut.status)
        self.a_bits = cfg.fmt.bank_size * cfg.act_bits
        self.r_bits = cfg.rows * cfg.acc_bits

    def set_w(self, ctx, data, last):
        ctx.set(self.dut.s_axis_w_tdata, data)
        ctx.set(self.dut.s_axis_w_tlast, last)

    def set_a(self, ctx, data, last, user):
        pad = self.rng.getrandbits(len(self.dut.s_axis_a_tdata) - self.a_bits)
        ctx.set(self.dut.s_axis_a_tdata, data | (pad << self.a_bits))
        ctx.set(self.dut.s_axis_a_tlast, last)
        ctx.set(self.dut.s_axis_a_tuser, user)

    def get_r(self, ctx):
        word = ctx.get(self.dut.m_axis_r_tdata)
        assert word >> self.r_bits == 0, "m_axis_r_tdata padding bits must be 0"
        assert ctx.get(self.dut.m_axis_r_tlast) == 1
        return word, ctx.get(self.dut.m_axis_r_tuser)


def run_array(cfg, rng, tiles, *, w_idle=0.3, a_idle=0.3, r_busy=0.3, expect_status=0,
              top=False, reset_after=None):
    """Stream ``tiles`` through a MacArray (or the Top); check every result beat in order
    and the final status.

    Returns ``(cycles, latencies)``: the cycle count, and for each result the cycles from
    the acceptance of its token's last beat to its first valid cycle.

    ``reset_after``: ``(junk_tiles, cycles)``: first stream ``junk_tiles`` for that many
    cycles (with stalls), then hold ``rst`` for 2 cycles; only then the checked run.
    """
    p = TopPorts(cfg, rng) if top else ArrayPorts(cfg)
    dut = Module()
    dut.domains.sync = sync = ClockDomain("sync")
    dut.submodules.dut = p.dut
    wdb, b, R, acc = cfg.weight_data_bits, cfg.fmt.bank_size, cfg.rows, cfg.acc_bits
    w_beats = [rec for t in tiles for rec in t.records]
    a_beats = [beat for t in tiles for tok in t.tokens for beat in tok]
    expect = [e for t in tiles for e in t.expect]
    got, last_at, valid_at = [], [], []
    state = {}

    async def junk(ctx, junk_tiles, n_cycles):
        jw = [rec for t in junk_tiles for rec in t.records]
        ja = [beat for t in junk_tiles for tok in t.tokens for beat in tok]
        for _ in range(n_cycles):
            ctx.set(p.w_valid, bool(jw) and rng.random() < 0.7)
            if jw:
                p.set_w(ctx, *jw[0])
            ctx.set(p.a_valid, bool(ja) and rng.random() < 0.7)
            if ja:
                p.set_a(ctx, *ja[0])
            ctx.set(p.r_ready, rng.random() < 0.5)
            if ctx.get(p.w_valid) and ctx.get(p.w_ready):
                jw.pop(0)
            if ctx.get(p.a_valid) and ctx.get(p.a_ready):
                ja.pop(0)
            await ctx.tick()
        ctx.set(p.w_valid, 0)
        ctx.set(p.a_valid, 0)
        ctx.set(sync.rst, 1)
        for _ in range(2):  # not ctx.tick(): it raises DomainReset while rst is high
            await ctx.posedge(sync.clk)
        ctx.set(sync.rst, 0)
        assert ctx.get(p.status) == 0, "status not cleared by rst"

    async def tb(ctx):
        if reset_after is not None:
            await junk(ctx, *reset_after)
        wi = ai = 0
        w_on = a_on = False
        r_was_valid = False
        cycle = 0
        limit = 50 * (len(w_beats) + len(a_beats) + len(expect)) + 200
        while len(got) < len(expect) or wi < len(w_beats) or ai < len(a_beats):
            cycle += 1
            assert cycle < limit, (f"stuck: {len(got)}/{len(expect)} results, "
                                   f"{wi}/{len(w_beats)} records, {ai}/{len(a_beats)} beats")
            # Sources keep valid (and data) until accepted; they may idle between beats.
            if not w_on and wi < len(w_beats) and rng.random() >= w_idle:
                w_on = True
            if not a_on and ai < len(a_beats) and rng.random() >= a_idle:
                a_on = True
            ctx.set(p.w_valid, w_on)
            if w_on:
                p.set_w(ctx, *w_beats[wi])
            else:  # garbage while not valid
                p.set_w(ctx, rng.getrandbits(wdb), rng.getrandbits(1))
            ctx.set(p.a_valid, a_on)
            if a_on:
                p.set_a(ctx, *a_beats[ai])
            else:
                p.set_a(ctx, rng.getrandbits(b * cfg.act_bits), rng.getrandbits(1),
                        rng.getrandbits(1))
            r_ready = rng.random() >= r_busy
            ctx.set(p.r_ready, r_ready)

            w_fire = w_on and ctx.get(p.w_ready)
            a_fire = a_on and ctx.get(p.a_ready)
            r_valid = ctx.get(p.r_valid)
            if r_valid and not r_was_valid:
                valid_at.append(cycle)
            if r_valid and r_ready:
                word, user = p.get_r(ctx)
                got.append((user, unpack_fields(word, acc, R)))
            r_was_valid = r_valid and not r_ready
            if w_fire:
                wi += 1
                w_on = False
            if a_fire:
                if a_beats[ai][1]:
                    last_at.append(cycle)
                ai += 1
                a_on = False
            await ctx.tick()
        # Drain: nothing more may come out.
        ctx.set(p.w_valid, 0)
        ctx.set(p.a_valid, 0)
        ctx.set(p.r_ready, 1)
        for _ in range(cfg.latency + 2):
            assert not ctx.get(p.r_valid), "extra result beat"
            await ctx.tick()
        state["status"] = ctx.get(p.status)
        state["cycles"] = cycle

    run_sim(dut, tb, vcd_name="array")
    assert len(got) == len(expect)
    for i, (g, e) in enumerate(zip(got, expect, strict=True)):
        assert g == e, f"result {i}: got {g}, expected {e}"
    assert state["status"] == expect_status
    return state["cycles"], [v - a for a, v in zip(last_at, valid_at, strict=True)]


def cfg_of(b, k, low_bits, rows, *, high_bits=8, act_bits=8, k_max=None, fmt=None,
           mults="lut", tree_levels=1, dsp_rows=0):
    fmt = fmt or SQFormat(b, 1 - k / b, high_bits, low_bits)
    return HWConfig(fmt=fmt, rows=rows, act_bits=act_bits,
                    k_max=k_max or 4 * fmt.bank_size, mults=mults, tree_levels=tree_levels,
                    dsp_rows=dsp_rows)


CONFIGS = {
    "r1-b4-k1": cfg_of(4, 1, 4, 1),
    "r4-b8-k2": cfg_of(8, 2, 4, 4, act_bits=6),
    "r4-b16-k2": cfg_of(16, 2, 4, 4),
    "r1-b16-k4": cfg_of(16, 4, 3, 1, high_bits=6, k_max=48),
    "r4-b8-k0": cfg_of(8, 0, 4, 4, fmt=SQFormat.dense(4, bank_size=8)),
    "r4-2:4": cfg_of(4, 2, 0, 4, fmt=SQFormat.two_four()),
    "r4-dense8": cfg_of(16, 0, 8, 4, fmt=SQFormat.dense(8)),
    "r1-dense8": cfg_of(16, 0, 8, 1, fmt=SQFormat.dense(8), k_max=16),
    "r2-b8-k2-dsp": cfg_of(8, 2, 4, 2, mults="dsp"),
    "r2-dense8-dspall-l3": cfg_of(16, 0, 8, 2, fmt=SQFormat.dense(8), k_max=32,
                                  mults="dsp_all", tree_levels=3),
    # A mixed array: row 0 on DSPs, rows 1-2 in LUTs, padded to one latency.
    "r3-b8-k2-auto1": cfg_of(8, 2, 4, 3, mults="auto", dsp_rows=1),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_tiles_with_stalls(request, name):
    """Several good tiles of different lengths, ping-ponging the two buffers."""
    cfg = CONFIGS[name]
    rng = seeded_rng(request)
    nbs = [cfg.nb_max, 1, min(2, cfg.nb_max), rng.randint(1, cfg.nb_max)]
    tiles = [make_tile(cfg, rng, nb, rng.randint(1, 4)) for nb in nbs]
    run_array(cfg, rng, tiles)


@pytest.mark.parametrize("cfg", [
    HWConfig(),                                                          # the default: R = 16
    HWConfig(fmt=SQFormat(128, 0.875, 8, 4, scale_bits=4), rows=2, k_max=512),
    HWConfig(fmt=SQFormat(64, 0.9375, 8, 2), rows=2, act_bits=3, k_max=320, acc_bits=24),
], ids=["default", "r2-b128-k16", "r2-b64-k4-a3"])
def test_big_configs(request, cfg):
    rng = seeded_rng(request)
    tiles = [make_tile(cfg, rng, min(nb, cfg.nb_max), 3) for nb in (2, 5, 1)]
    run_array(cfg, rng, tiles)


@pytest.mark.parametrize("name", ["r4-b16-k2", "r1-b4-k1", "r4-2:4", "r4-b8-k0"])
def test_errors(request, name):
    """Malformed tiles and wrong-length tokens give error beats; good tiles after them are
    exact; the status bits are sticky."""
    cfg = CONFIGS[name]
    rng = seeded_rng(request)
    nb = cfg.nb_max
    tiles = [
        make_tile(cfg, rng, 2, 2),
        make_tile(cfg, rng, 2, 3, corrupt="vmask"),
        make_tile(cfg, rng, nb, 2),
        make_tile(cfg, rng, 2, 3, token_len={0: 1, 1: 3}),
        make_tile(cfg, rng, 1, 2, token_len={1: nb + 2}),
        make_tile(cfg, rng, 2, 2),
    ]
    status = ERR_WEIGHT | ERR_TOKEN_LEN
    if cfg.fmt.k:
        tiles += [make_tile(cfg, rng, 1, 2, corrupt="high"), make_tile(cfg, rng, 1, 1)]
    if cfg.fmt.record_bits % 8:
        tiles += [make_tile(cfg, rng, 2, 2, corrupt="pad"), make_tile(cfg, rng, 1, 2)]
    run_array(cfg, rng, tiles, expect_status=status)


@pytest.mark.parametrize("corrupt", ["short", "long", "col0_over", "col0_over+token"])
def test_tile_length(request, corrupt):
    """A column of the wrong length makes the tile bad (status bit 1). Column 0 longer than
    nb_max: the tile's nb is nb_max, so its tokens of nb_max beats set only bit 1 and a
    token of nb_max + 1 beats sets bit 2 as well (datasheet §8)."""
    cfg = CONFIGS["r4-b8-k2"]
    rng = seeded_rng(request)
    over = corrupt.startswith("col0_over")
    nb = cfg.nb_max if over else 2
    token_len = {1: cfg.nb_max + 1} if corrupt.endswith("+token") else None
    tiles = [make_tile(cfg, rng, 3, 2),
             make_tile(cfg, rng, nb, 3, corrupt=corrupt.removesuffix("+token"),
                       token_len=token_len),
             make_tile(cfg, rng, 2, 2), make_tile(cfg, rng, cfg.nb_max, 1)]
    run_array(cfg, rng, tiles, expect_status=ERR_TILE_LEN | (ERR_TOKEN_LEN if token_len else 0))


@pytest.mark.parametrize("junk_cycles", [3, 11, 40])
def test_reset_mid_job(request, junk_cycles):
    """Reset with a tile half loaded, tokens in flight and a result waiting, then exact."""
    cfg = CONFIGS["r4-b8-k2"]
    rng = seeded_rng(request, junk_cycles)
    junk = [make_tile(cfg, rng, 3, 3, corrupt="vmask"), make_tile(cfg, rng, 3, 3)]
    tiles = [make_tile(cfg, rng, 2, 3), make_tile(cfg, rng, 3, 2)]
    run_array(cfg, rng, tiles, reset_after=(junk, junk_cycles))


def test_only_token_length_error(request):
    cfg = CONFIGS["r4-b8-k2"]
    rng = seeded_rng(request)
    tiles = [make_tile(cfg, rng, 3, 3, token_len={1: 2}), make_tile(cfg, rng, 3, 2)]
    run_array(cfg, rng, tiles, expect_status=ERR_TOKEN_LEN)


@pytest.mark.parametrize("nb", [1, 3])
def test_throughput_and_latency(request, nb):
    """With nothing stalling, one activation bank per cycle, no bubble between tokens or
    between tiles once the next tile is loaded, and a fixed latency."""
    cfg = CONFIGS["r4-b8-k2"]
    rng = seeded_rng(request)
    tiles = [make_tile(cfg, rng, nb, 6) for _ in range(3)]
    cycles, latencies = run_array(cfg, rng, tiles, w_idle=0, a_idle=0, r_busy=0)
    assert latencies == [cfg.latency] * 18
    # The cycle count is the datasheet's schedule (§9): the first tile's load (R·nb
    # records, then the cycles to decode and write them) precedes compute; a later tile
    # loads behind it, into a buffer freed `free_after` cycles after its last token. Then
    # 18·nb beats at one per cycle, except where a tile is not yet loaded (nb = 1: a 4-record
    # tile decodes longer than its 6 tokens take), then the latency.
    job = Workload(m=6, k=nb * cfg.fmt.bank_size, n=3 * cfg.rows)
    assert (18 * nb, cycles) == schedule_cycles_for(cfg, job)


def test_top_flat_ports(request):
    """The Top adapter: flat AXI4-Stream names, padded tdata (a = 5, acc = 30 bits)."""
    cfg = HWConfig(fmt=SQFormat(4, 0.75, 8, 4), rows=3, act_bits=5, k_max=12, acc_bits=30)
    assert (cfg.act_data_bits, cfg.result_data_bits) == (24, 96)
    rng = seeded_rng(request)
    tiles = [make_tile(cfg, rng, 3, 2), make_tile(cfg, rng, 2, 2, corrupt="vmask"),
             make_tile(cfg, rng, 1, 3, token_len={2: 2})]
    run_array(cfg, rng, tiles, top=True, expect_status=ERR_WEIGHT | ERR_TOKEN_LEN)


def test_verilog_ports_and_determinism():
    cfg = CONFIGS["r4-2:4"]
    text = verilog_text(cfg)
    assert text == verilog_text(cfg), "Verilog output is not deterministic"
    assert str(Path(__file__).resolve().parents[2]) not in text and "src =" not in text
    header = text[text.index("module sqhw_top("):]
    header = header[:header.index(");")]
    ports = {name.strip() for name in header[len("module sqhw_top("):].split(",")}
    expect = {"clk", "rst", "status"}
    for stream, sigs in (("s_axis_w", "tdata tvalid tready tlast"),
                         ("s_axis_a", "tdata tvalid tready tlast tuser"),
                         ("m_axis_r", "tdata tvalid tready tlast tuser")):
        expect |= {f"{stream}_{sig}" for sig in sigs.split()}
    assert ports == expect
    assert f"input [{cfg.weight_data_bits - 1}:0] s_axis_w_tdata;" in text
    assert f"output [{cfg.result_data_bits - 1}:0] m_axis_r_tdata;" in text


def test_parameter_check():
    with pytest.raises(TypeError, match="cfg must be an HWConfig, not None"):
        MacArray(None)
    act = HWConfig(rows=2, k_max=32, operand="activation", weight_bits=4, acc_bits=24)
    with pytest.raises(ValueError, match="'weight' for MacArray, not 'activation'; use ActArray"):
        MacArray(act)
    with pytest.raises(TypeError, match="cfg must be an HWConfig, not 4"):
        Top(4)
    with pytest.raises(TypeError, match="cfg must be an HWConfig, not 4"):
        verilog_text(4)
