"""The MAC array: R rows, a double-buffered weight store and the tile protocol.

Datasheet §7 (operation) and §8 (errors) are the specification of this module.
"""

from amaranth.hdl import Cat, Const, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory

from ..format import HWConfig, Status
from ..format.pipeline import MEM_OUT_REGS, prefix_stages
from .pipe import delay, fanout
from .row import PackedLowPair, SQRow, word_layout
from .skeleton import TileArray, result_layout, weight_layout
from .tiles import ResultQueue, TileBuffers
from .unpack import Unpacker

__all__ = ["MacArray", "weight_layout", "act_layout", "result_layout"]


def act_layout(cfg: HWConfig) -> data.StructLayout:
    """Payload of the activation stream: one bank, ``last`` (of a token), ``user``
    (last token of the tile)."""
    return data.StructLayout({
        "data": data.ArrayLayout(signed(cfg.act_bits), cfg.fmt.bank_size),
        "last": 1,
        "user": 1,
    })


class MacArray(TileArray):
    """R SQ rows sharing one activation stream, with a double-buffered weight store.

    Weight path: a record accepted on ``w`` is registered, decoded by the one shared
    :class:`~.unpack.Unpacker` (pipelined: ``prefix_stages(b)`` stages), registered again
    and written, decoded, into the weight memory of the row it belongs to (one
    :class:`~amaranth.lib.memory.Memory` of depth ``2·nb_max`` per row: two tile buffers).
    Compute path: each accepted activation bank reads the decoded word of every row at the
    same (registered) address and is broadcast to all rows. One bank per cycle, with no
    bubble between tokens or tiles. The pipeline has no enable: a token is accepted only
    while the :class:`~.tiles.ResultQueue` holds a slot for its result, so ``a.ready``
    depends on no combinational path from ``r.ready`` (datasheet §9).

    Parameters
    ----------
    cfg : HWConfig
        The configuration.

    Attributes
    ----------
    w : In(stream.Signature(weight_layout(cfg)))
        Weight records; ``last`` marks the last record of a column.
    a : In(stream.Signature(act_layout(cfg)))
        Activation banks; ``last`` marks the last bank of a token, ``user`` (sampled with
        ``last``) the last token of the tile.
    r : Out(stream.Signature(result_layout(cfg)))
        One result per token, in token order.
    status : Out(4)
        Sticky error bits: 0 ``err_weight``, 1 ``err_tile_len``, 2 ``err_token_len``,
        3 reserved (0). Cleared only by reset.

    Raises
    ------
    TypeError
        If ``cfg`` is not an :class:`~sqhw.format.HWConfig`.
    ValueError
        If ``cfg`` is an activation-mode configuration (that is :class:`~.actarray.ActArray`).
    """

    OPERAND, OTHER = "weight", "ActArray"

    def __init__(self, cfg):
        super().__init__(cfg, act_layout)

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        fmt = cfg.fmt
        R, b, k, nb_max = cfg.rows, fmt.bank_size, fmt.k, cfg.nb_max
        h = fmt.high_bits

        err = self.status_bits(m)
        err_weight, err_tile_len, err_token_len = (
            err[Status.ERR_WEIGHT], err[Status.ERR_TILE_LEN], err[Status.ERR_TOKEN_LEN])

        # Per tile buffer: loaded, bad (any error while loading), last bank index (nb - 1).
        tiles = TileBuffers(m, nb_max)
        in_reset = ResetSignal()

        # ---- weight path, stage 0: accept a record, count columns and banks ----------------
        s1 = tiles.load(self.w, R, cfg.weight_data_bits, in_reset)
        s1_data = s1.data

        # ---- weight path, stages 1 .. S: decode once (S = prefix_stages(b) registers in
        # the prefix count), then register the decoded word ---------------------------------
        S = prefix_stages(b)
        m.submodules.unpacker = unpacker = Unpacker(fmt, S)
        m.d.comb += unpacker.low.eq(data.View(_record_layout(cfg), s1_data).low)
        rec = data.View(_record_layout(cfg), delay(m, s1_data, S, "rec"))
        word_c = Signal(word_layout(fmt))
        malformed_c = Signal()
        bad_high = Const(0, 1)
        if fmt.has_low_scale:
            for i in range(b):
                m.d.comb += word_c.low[i].eq(Mux(unpacker.mask[i], 0, rec.low[i]))
            m.d.comb += word_c.scale_low.eq(rec.scale_low)
        if fmt.has_high:
            for t in range(k):
                m.d.comb += [word_c.high[t].eq(rec.high[t]), word_c.rel[t].eq(unpacker.rel[t])]
            m.d.comb += word_c.scale_high.eq(rec.scale_high)
            bad_high = Cat(*(rec.high[t] == -(1 << (h - 1)) for t in range(k))).any()
        # Non-zero padding is malformed, as in the golden model's image parser (§4).
        pad = rec.as_value()[fmt.record_bits:]
        bad_pad = pad.any() if len(pad) else Const(0, 1)
        m.d.comb += malformed_c.eq(unpacker.malformed | bad_high | bad_pad)
        sd = s1
        for i in range(S):
            sd = tiles.stage(sd, f"sd{i}")

        # ---- weight path, stage S + 2: write the row's memory (the write port's fields
        # registered once per group of rows, :func:`~.pipe.fanout`), book the record -------
        s2 = tiles.stage(sd, "s2")
        malformed = delay(m, malformed_c, 1, "malformed")
        tiles.commit(s2, malformed, err_weight, err_tile_len)
        wr_c = Signal(data.StructLayout({"en": 1, "row": len(sd.row), "addr": len(sd.addr),
                                         "word": word_layout(fmt)}))
        m.d.comb += [wr_c.en.eq(sd.valid & sd.we), wr_c.row.eq(sd.row),
                     wr_c.addr.eq(sd.addr), wr_c.word.eq(word_c)]
        wr = fanout(m, wr_c, R, 1, "wr")

        # ---- compute path: issue a beat when its result has a place in the queue ----------
        queue = ResultQueue(m, cfg, self.r, in_reset)
        tok = tiles.tokens(self.a, queue.credit, in_reset)
        queue.issue(tok.a_acc & self.a.payload.last)

        # Cycle c+1: the beat's registers and the read address registered (it goes to the
        # block RAMs of every row); c+2: the memories' outputs; c+2+MEM_OUT_REGS: those
        # registered twice (beside the RAM, then beside the row) beside the beat, and so
        # presented to every row. Each register after the beat's own is kept once per
        # group of rows (:func:`~.pipe.fanout`): no register drives the whole array.
        act_r = Signal(data.ArrayLayout(signed(cfg.act_bits), b), reset_less=True)
        ctl_r = Signal(4)                     # valid, first, last, err
        m.d.sync += [
            act_r.eq(self.a.payload.data),
            ctl_r.eq(Cat(tok.a_acc, tok.first, self.a.payload.last,
                         tok.cur_bad | tok.len_bad)),
        ]
        rd_addr = fanout(m, tok.rd_addr, R, 1, "rd_addr_r", reset_less=False)
        act_q = fanout(m, act_r, R, 1 + MEM_OUT_REGS, "act_q")
        ctl_q = fanout(m, ctl_r, R, 1 + MEM_OUT_REGS, "ctl_q", reset_less=False)
        tiles.token_end(self.a, tok, err_token_len)

        # ---- rows and their memories -------------------------------------------------------
        rows, w_q = [], []
        for r in range(R):
            mem = Memory(shape=word_layout(fmt), depth=2 * nb_max, init=[])
            m.submodules[f"wmem{r}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(domain="sync")
            m.d.comb += [
                wp.addr.eq(wr[r].addr),
                wp.data.eq(wr[r].word),
                wp.en.eq(wr[r].en & (wr[r].row == r)),
                rp.addr.eq(rd_addr[r]),
            ]
            w_q.append(delay(m, rp.data, MEM_OUT_REGS, f"w_q{r}_"))
            row = SQRow(cfg, row=r)
            m.submodules[f"row{r}"] = row
            m.d.comb += [
                row.valid.eq(ctl_q[r][0]),
                row.first.eq(ctl_q[r][1]),
                row.last.eq(ctl_q[r][2]),
                row.act.eq(act_q[r]),
                row.w.eq(w_q[r]),
            ]
            rows.append(row)
        # Packed rows (cfg.packed_rows): the low products of rows 2p and 2p+1 (the same
        # activation copy: FANOUT_ROWS is even) on one set of DSP blocks; an unpaired last
        # packed row packs a 0 beside its codes.
        n_packed = cfg.packed_rows
        for p in range(0, n_packed, 2):
            m.submodules[f"pair{p // 2}"] = pair = PackedLowPair(cfg)
            m.d.comb += [pair.act.eq(act_q[p]), pair.low0.eq(w_q[p].low),
                         rows[p].p_low.eq(pair.p0)]
            if p + 1 < n_packed:
                m.d.comb += [pair.low1.eq(w_q[p + 1].low), rows[p + 1].p_low.eq(pair.p1)]

        tag = delay(m, ctl_q[0][3], rows[0].latency, "err_tag")
        queue.push(rows[0].o_valid, tag, [row.result for row in rows])
        return m


def _record_layout(cfg: HWConfig) -> data.StructLayout:
    """The raw record of datasheet §4 as a layout (fields from bit 0 up, then padding)."""
    fmt = cfg.fmt
    fields = {"low": data.ArrayLayout(signed(fmt.low_width), fmt.bank_size)}
    if fmt.has_high:
        fields["high"] = data.ArrayLayout(signed(fmt.high_bits), fmt.k)
    if fmt.has_low_scale:
        fields["scale_low"] = unsigned(fmt.scale_bits)
    if fmt.has_high:
        fields["scale_high"] = unsigned(fmt.scale_bits)
    pad = cfg.weight_data_bits - fmt.record_bits
    if pad:
        fields["padding"] = unsigned(pad)
    return data.StructLayout(fields)
