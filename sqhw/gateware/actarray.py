"""The activation-mode array (``W(INT4|INT8)·A(SQ)``): R :class:`~.actrow.ActRow` columns, a
double-buffered store of dense weight rows and of the static mask, one shared
:class:`~.gather.SelectGather`, and the tile protocol of :class:`~.array.MacArray`.

``docs/activation-mode.md`` §10 and ``docs/datasheet.md`` §10 are the specification of this
module. In short: a tile on the weight stream is ``R + 1`` columns of ``nb`` records, the
first "column" being the mask (one ``b``-bit word per bank, zero-padded to the record) and
column ``1 + r`` row ``r``'s reordered dense weight rows (``b`` codes of ``weight_bits`` per
bank, high channels first). An activation beat is one bank of one token in natural channel
order plus the token's scale codes of that bank.
"""

from amaranth.hdl import Cat, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory

from ..format import HWConfig, Status
from ..format.pipeline import MEM_OUT_REGS, PREFIX_LEVELS, prefix_stages
from .actrow import ActRow
from .gather import SelectGather
from .pipe import delay, fanout, pipelined_sum
from .skeleton import TileArray, result_layout, weight_layout
from .tiles import ResultQueue, TileBuffers

__all__ = ["ActArray", "weight_layout", "act_layout", "result_layout"]


def act_layout(cfg: HWConfig) -> data.StructLayout:
    """Payload of the activation stream: one bank of one token (``b`` codes of ``act_bits``
    in natural channel order), the token's ``scale_high`` (k > 0) and ``scale_low``
    (l > 0) codes of this bank, ``last`` (of a token), ``user`` (last token of the tile)."""
    fmt = cfg.fmt
    fields = {"data": data.ArrayLayout(signed(cfg.act_bits), fmt.bank_size)}
    if fmt.has_high:
        fields["scale_high"] = unsigned(fmt.scale_bits)
    if fmt.has_low_scale:
        fields["scale_low"] = unsigned(fmt.scale_bits)
    fields["last"] = 1
    fields["user"] = 1
    return data.StructLayout(fields)


class ActArray(TileArray):
    """R activation-mode rows sharing one activation stream and one select-and-gather unit.

    Weight path: records accepted on ``w`` are counted into columns and banks exactly as in
    :class:`~.array.MacArray` (:class:`~.tiles.TileBuffers`), with ``R + 1`` columns per
    tile: column 0 is written to the mask memory (``b`` bits, depth ``2·nb_max``), column
    ``1 + r`` to row ``r``'s weight memory (``b`` codes of ``weight_bits``, depth
    ``2·nb_max``). A mask word whose popcount is not k, or a weight code ``-2^(wb-1)``,
    marks the tile bad (every token's result is an error) and sets ``err_weight``.

    Compute path, one bank per cycle: the accepted beat is registered while the mask word
    of its bank is read; :class:`~.gather.SelectGather` splits it into k high and ``b-k``
    low lanes, which are registered (with the scale codes) while every row's weight word is
    read; then the :class:`~.actrow.ActRow`\\ s. A code outside its group's range
    (``code_error``) makes the token's result an error and sets ``err_act_code``. As in
    weight mode the pipeline has no enable (credits and a result FIFO,
    :class:`~.tiles.ResultQueue`); the buffer of a finished tile is freed once its last
    weight word has been read.

    Parameters
    ----------
    cfg : HWConfig
        The configuration, ``operand == "activation"``.

    Attributes
    ----------
    w : In(stream.Signature(weight_layout(cfg)))
        Mask and weight records; ``last`` marks the last record of a column.
    a : In(stream.Signature(act_layout(cfg)))
        Activation banks with the token's scale codes; ``last`` marks the last bank of a
        token, ``user`` (sampled with ``last``) the last token of the tile.
    r : Out(stream.Signature(result_layout(cfg)))
        One result per token, in token order.
    status : Out(4)
        Sticky error bits: 0 ``err_weight`` (mask popcount ≠ k, or weight code
        ``-2^(wb-1)``), 1 ``err_tile_len``, 2 ``err_token_len``, 3 ``err_act_code``.
        Cleared only by reset.

    Raises
    ------
    TypeError
        If ``cfg`` is not an :class:`~sqhw.format.HWConfig`.
    ValueError
        If ``cfg.operand`` is not ``"activation"``.
    """

    OPERAND, OTHER = "activation", "MacArray"

    def __init__(self, cfg):
        super().__init__(cfg, act_layout)

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        fmt = cfg.fmt
        R, b, k, nb_max = cfg.rows, fmt.bank_size, fmt.k, cfg.nb_max
        wb = cfg.weight_bits
        wlayout = data.ArrayLayout(signed(wb), b)

        err = self.status_bits(m)
        err_weight, err_tile_len, err_token_len, err_act_code = (err[s] for s in Status)

        tiles = TileBuffers(m, nb_max)
        in_reset = ResetSignal()

        # ---- weight path, stage 0: column 0 = mask, columns 1..R = rows ---------------------
        s1 = tiles.load(self.w, R + 1, cfg.weight_data_bits, in_reset)

        # ---- weight path, stage 1: write the record's memory and check it: the mask's
        # popcount in S = prefix_stages(b) stages (registered every 2 adder levels), so the
        # tile is booked (marked loaded) in stage 1 + S ---------------------------------------
        S = prefix_stages(b)
        is_mask = Signal()
        m.d.comb += is_mask.eq(s1.row == 0)
        mask_word = s1.data[:b]
        wrow = data.View(wlayout, s1.data[:b * wb])
        popcount = pipelined_sum(m, [mask_word[i] for i in range(b)], b.bit_length(),
                                 PREFIX_LEVELS, S, "popcount")
        bad_code = Signal()
        m.d.comb += bad_code.eq(Cat(*(wrow[i] == -(1 << (wb - 1)) for i in range(b))).any())
        malformed = Signal()
        m.d.comb += malformed.eq(Mux(delay(m, is_mask, S, "is_mask_q"), popcount != k,
                                     delay(m, bad_code, S, "bad_code_q")))
        sc = s1
        for i in range(S):
            sc = tiles.stage(sc, f"sc{i}")
        tiles.commit(sc, malformed, err_weight, err_tile_len)

        mask_mem = Memory(shape=unsigned(b), depth=2 * nb_max, init=[])
        m.submodules.maskmem = mask_mem
        mwp = mask_mem.write_port()
        mrp = mask_mem.read_port(domain="sync")

        # ---- compute path, cycle c: accept a bank when its result has a place ------------
        queue = ResultQueue(m, cfg, self.r, in_reset)
        tok = tiles.tokens(self.a, queue.credit, in_reset)
        queue.issue(tok.a_acc & self.a.payload.last)
        m.d.comb += [
            mwp.addr.eq(s1.addr),
            mwp.data.eq(mask_word),
            mwp.en.eq(s1.valid & s1.we & is_mask),
            mrp.addr.eq(tok.rd_addr),
        ]

        # Cycle c+1: the beat's registers and its mask word (read at the end of c).
        act_r = Signal(data.ArrayLayout(signed(cfg.act_bits), b), reset_less=True)
        scales_r = Signal(2 * fmt.scale_bits, reset_less=True)   # scale_high, scale_low
        ctl_r = Signal(5)                     # valid, first, last, err, quiet
        c_addr = Signal(range(2 * nb_max))    # the bank's address: weight rows read next
        m.d.sync += [
            act_r.eq(self.a.payload.data),
            ctl_r.eq(Cat(tok.a_acc, tok.first, self.a.payload.last,
                         tok.cur_bad | tok.len_bad,
                         tok.cur_bad | tok.over)),   # bad tile or beyond it: no err_act_code
            c_addr.eq(tok.rd_addr),
        ]
        if fmt.has_high:
            m.d.sync += scales_r[:fmt.scale_bits].eq(self.a.payload.scale_high)
        if fmt.has_low_scale:
            m.d.sync += scales_r[fmt.scale_bits:].eq(self.a.payload.scale_low)
        # The weight rows of the tile's last beat are read at the end of cycle c+1+S: the
        # buffer is freed in that cycle.
        tiles.token_end(self.a, tok, err_token_len, free_delay=1 + S)

        # Cycle c+1+MEM_OUT_REGS: the mask word registered (twice: beside the RAM, then
        # beside the unit) beside the beat, into select and gather (S stages: its mask
        # prefix count is pipelined); c+1+MEM_OUT_REGS+S: its outputs, with the beat's
        # registers delayed beside it; the lanes registered.
        mask_q = delay(m, mrp.data, MEM_OUT_REGS, "mask_q")
        act_d = delay(m, act_r, MEM_OUT_REGS, "act_d")
        scales_d = delay(m, scales_r, MEM_OUT_REGS + S, "scales_d")
        ctl_d = delay(m, ctl_r, MEM_OUT_REGS + S, "ctl_d", reset_less=False)
        d_valid, d_first, d_last, d_err, d_quiet = (ctl_d[i] for i in range(5))
        m.submodules.gather = gather = SelectGather(fmt, cfg.act_bits, S)
        m.d.comb += [gather.act.eq(act_d), gather.mask.eq(mask_q)]
        tok_err = Signal()                    # a code error earlier in this token
        tok_err_next = Signal()
        m.d.comb += tok_err_next.eq(Mux(d_first, 0, tok_err) | gather.code_error)
        with m.If(d_valid):
            m.d.sync += tok_err.eq(tok_err_next)
            # Only codes checked against this tile's own mask set the status bit: in a bad
            # tile or past its last bank the mask word is not this token's.
            with m.If(gather.code_error & ~d_quiet):
                m.d.sync += err_act_code.eq(1)

        # The lanes, the scales and the control bits registered once per group of rows
        # (:func:`~.pipe.fanout`): no register drives the whole array. Out-of-range codes
        # are cut to the lane width here; such a token is an error.
        if fmt.has_high:
            high_c = Signal(data.ArrayLayout(signed(fmt.high_bits), k))
            m.d.comb += [high_c[t].eq(gather.high[t]) for t in range(k)]
            high2 = fanout(m, high_c, R, 1, "high2")
        if fmt.has_low_scale:
            low_c = Signal(data.ArrayLayout(signed(fmt.low_bits), b - k))
            m.d.comb += [low_c[u].eq(gather.low[u]) for u in range(b - k)]
            low2 = fanout(m, low_c, R, 1, "low2")
        scales2 = fanout(m, scales_d, R, 1, "scales2")
        ctl2 = fanout(m, Cat(d_valid, d_first, d_last, d_err | tok_err_next | gather.malformed),
                      R, 1, "ctl2", reset_less=False)    # valid, first, last, err

        # ---- rows and their weight memories (read at the end of c+1+S, registered
        # MEM_OUT_REGS times: the read address waits S cycles for select and gather, its
        # last register kept once per group of rows) ---------------------------------------
        rd_w = fanout(m, delay(m, c_addr, S - 1, "rd_w"), R, 1, "rd_w_g", reset_less=False)
        rows = []
        for r in range(R):
            mem = Memory(shape=wlayout, depth=2 * nb_max, init=[])
            m.submodules[f"wmem{r}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(domain="sync")
            m.d.comb += [
                wp.addr.eq(s1.addr),
                wp.data.eq(wrow),
                wp.en.eq(s1.valid & s1.we & (s1.row == r + 1)),
                rp.addr.eq(rd_w[r]),
            ]
            row = ActRow(cfg)
            m.submodules[f"row{r}"] = row
            m.d.comb += [
                row.valid.eq(ctl2[r][0]),
                row.first.eq(ctl2[r][1]),
                row.last.eq(ctl2[r][2]),
                row.w.eq(delay(m, rp.data, MEM_OUT_REGS, f"w_q{r}_")),
            ]
            if fmt.has_high:
                m.d.comb += [row.high.eq(high2[r]),
                             row.scale_high.eq(scales2[r][:fmt.scale_bits])]
            if fmt.has_low_scale:
                m.d.comb += [row.low.eq(low2[r]),
                             row.scale_low.eq(scales2[r][fmt.scale_bits:])]
            rows.append(row)

        tag = delay(m, ctl2[0][3], rows[0].latency, "err_tag")
        queue.push(rows[0].o_valid, tag, [row.result for row in rows])
        return m
