"""The MAC array: R rows, a double-buffered weight store and the tile protocol.

Datasheet §7 (operation) and §8 (errors) are the specification of this module.
"""

from amaranth.hdl import Cat, Const, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..format import HWConfig
from .row import SQRow, word_layout
from .unpack import Unpacker

__all__ = ["MacArray", "weight_layout", "act_layout", "result_layout", "LATENCY"]

#: Cycles from the cycle an activation beat with ``last`` is accepted to the cycle its
#: result beat is first valid (with no stall in between): one cycle of weight-memory read /
#: activation register, then the row pipeline.
LATENCY = 1 + SQRow.LATENCY


def weight_layout(cfg: HWConfig) -> data.StructLayout:
    """Payload of the weight stream: one raw record (datasheet §4) and ``last``."""
    return data.StructLayout({"data": unsigned(cfg.weight_data_bits), "last": 1})


def act_layout(cfg: HWConfig) -> data.StructLayout:
    """Payload of the activation stream: one bank, ``last`` (of a token), ``user``
    (last token of the tile)."""
    return data.StructLayout({
        "data": data.ArrayLayout(signed(cfg.act_bits), cfg.fmt.bank_size),
        "last": 1,
        "user": 1,
    })


def result_layout(cfg: HWConfig) -> data.StructLayout:
    """Payload of the result stream: R sums and ``user`` (1 = error, sums are 0)."""
    return data.StructLayout({
        "data": data.ArrayLayout(signed(cfg.acc_bits), cfg.rows),
        "user": 1,
    })


class MacArray(wiring.Component):
    """R SQ rows sharing one activation stream, with a double-buffered weight store.

    Weight path: a record accepted on ``w`` is registered, decoded by the one shared
    :class:`~.unpack.Unpacker` and written, decoded, into the weight memory of the row it
    belongs to (one :class:`~amaranth.lib.memory.Memory` of depth ``2·nb_max`` per row: two
    tile buffers). Compute path: each accepted activation bank reads the decoded word of
    every row at the same address and is broadcast to all rows. One bank per cycle, with no
    bubble between tokens or tiles, while nothing stalls. The whole compute pipeline stalls
    (one global enable) only when a result is valid and ``r.ready`` is 0; so ``a.ready``
    depends combinationally on ``r.ready``.

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
    """

    def __init__(self, cfg):
        if not isinstance(cfg, HWConfig):
            self._MustUse__silence = True  # not built: do not warn that it was never used
            raise TypeError(f"cfg must be an HWConfig, not {cfg!r}")
        self._cfg = cfg
        super().__init__({
            "w": In(stream.Signature(weight_layout(cfg))),
            "a": In(stream.Signature(act_layout(cfg))),
            "r": Out(stream.Signature(result_layout(cfg))),
            "status": Out(4),
        })

    @property
    def cfg(self) -> HWConfig:
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        fmt = cfg.fmt
        R, b, k, nb_max = cfg.rows, fmt.bank_size, fmt.k, cfg.nb_max
        h = fmt.high_bits

        err_weight = Signal()
        err_tile_len = Signal()
        err_token_len = Signal()
        m.d.comb += self.status.eq(Cat(err_weight, err_tile_len, err_token_len, Const(0, 1)))

        # Per tile buffer: loaded, bad (any error while loading), last bank index (nb - 1).
        full = [Signal(name=f"full{i}") for i in range(2)]
        bad = [Signal(name=f"bad{i}") for i in range(2)]
        nbl = [Signal(range(nb_max), name=f"nbl{i}") for i in range(2)]
        set_full = [Signal(name=f"set_full{i}") for i in range(2)]
        clr_full = [Signal(name=f"clr_full{i}") for i in range(2)]
        for i in range(2):
            with m.If(set_full[i]):
                m.d.sync += full[i].eq(1)
            with m.Elif(clr_full[i]):
                m.d.sync += full[i].eq(0)

        # ---- weight path, stage 0: accept a record, count columns and banks ----------------
        wbuf = Signal()                       # buffer being loaded
        col = Signal(range(R))
        bank = Signal(range(nb_max + 1))      # saturates at nb_max (= too many records)
        nbl_load = Signal(range(nb_max))      # nb - 1 of the tile being loaded (column 0)
        bank_clamped = Signal(range(nb_max))
        m.d.comb += bank_clamped.eq(Mux(bank >= nb_max, nb_max - 1, bank))
        # No handshake completes while rst is high (the state is being reset anyway).
        in_reset = ResetSignal()
        m.d.comb += self.w.ready.eq(~Mux(wbuf, full[1], full[0]) & ~in_reset)
        w_acc = Signal()
        m.d.comb += w_acc.eq(self.w.valid & self.w.ready)
        w_last = self.w.payload.last

        len_err = Signal()
        m.d.comb += len_err.eq((bank >= nb_max) | ((col != 0) & (
            (bank > nbl_load) | (w_last & (bank != nbl_load)))))
        tile_end = Signal()
        m.d.comb += tile_end.eq(w_last & (col == R - 1))

        s1_valid = Signal()
        s1_data = Signal(cfg.weight_data_bits)
        s1_row = Signal(range(R))
        s1_addr = Signal(range(2 * nb_max))
        s1_we = Signal()
        s1_len_err = Signal()
        s1_start = Signal()
        s1_end = Signal()
        s1_buf = Signal()
        s1_nbl = Signal(range(nb_max))

        m.d.sync += s1_valid.eq(w_acc)
        with m.If(w_acc):
            m.d.sync += [
                s1_data.eq(self.w.payload.data),
                s1_row.eq(col),
                s1_addr.eq(Mux(wbuf, nb_max, 0) + bank_clamped),
                s1_we.eq(bank < nb_max),
                s1_len_err.eq(len_err),
                s1_start.eq((col == 0) & (bank == 0)),
                s1_end.eq(tile_end),
                s1_buf.eq(wbuf),
                s1_nbl.eq(Mux(col == 0, bank_clamped, nbl_load)),
            ]
            with m.If(w_last):
                m.d.sync += bank.eq(0)
                with m.If(col == 0):
                    m.d.sync += nbl_load.eq(bank_clamped)
                with m.If(col == R - 1):
                    m.d.sync += [col.eq(0), wbuf.eq(~wbuf)]
                with m.Else():
                    m.d.sync += col.eq(col + 1)
            with m.Elif(bank < nb_max):
                m.d.sync += bank.eq(bank + 1)

        # ---- weight path, stage 1: decode once, write the row's memory ---------------------
        m.submodules.unpacker = unpacker = Unpacker(fmt)
        rec = data.View(_record_layout(cfg), s1_data)
        m.d.comb += unpacker.low.eq(rec.low)
        word = Signal(word_layout(fmt))
        malformed = Signal()
        bad_high = Const(0, 1)
        if fmt.has_low_scale:
            for i in range(b):
                m.d.comb += word.low[i].eq(Mux(unpacker.mask[i], 0, rec.low[i]))
            m.d.comb += word.scale_low.eq(rec.scale_low)
        if fmt.has_high:
            for t in range(k):
                m.d.comb += [word.high[t].eq(rec.high[t]), word.rel[t].eq(unpacker.rel[t])]
            m.d.comb += word.scale_high.eq(rec.scale_high)
            bad_high = Cat(*(rec.high[t] == -(1 << (h - 1)) for t in range(k))).any()
        m.d.comb += malformed.eq(unpacker.malformed | bad_high)

        bad_acc = Signal()
        bad_next = Signal()
        m.d.comb += bad_next.eq(Mux(s1_start, 0, bad_acc) | malformed | s1_len_err)
        with m.If(s1_valid):
            m.d.sync += bad_acc.eq(bad_next)
            with m.If(malformed):
                m.d.sync += err_weight.eq(1)
            with m.If(s1_len_err):
                m.d.sync += err_tile_len.eq(1)
            with m.If(s1_end):
                for i in range(2):
                    with m.If(s1_buf == i):
                        m.d.comb += set_full[i].eq(1)
                        m.d.sync += [bad[i].eq(bad_next), nbl[i].eq(s1_nbl)]

        # ---- compute path: accept an activation bank, read the weights ---------------------
        adv = Signal()                        # global enable of the compute pipeline
        r_valid = Signal()                    # the result register holds a result
        m.d.comb += adv.eq(~r_valid | self.r.ready)
        cbuf = Signal()                       # buffer the tokens run on (oldest loaded)
        beat = Signal(range(nb_max + 1))      # saturates at nb_max (= too many beats)
        cur_full = Mux(cbuf, full[1], full[0])
        cur_bad = Mux(cbuf, bad[1], bad[0])
        cur_nbl = Mux(cbuf, nbl[1], nbl[0])
        m.d.comb += self.a.ready.eq(adv & cur_full & ~in_reset)
        a_acc = Signal()
        m.d.comb += a_acc.eq(self.a.valid & self.a.ready)
        beat_clamped = Mux(beat >= nb_max, nb_max - 1, beat)
        rd_addr = Signal(range(2 * nb_max))
        m.d.comb += rd_addr.eq(Mux(cbuf, nb_max, 0) + beat_clamped)
        len_bad = Signal()
        m.d.comb += len_bad.eq(beat != cur_nbl)

        act_r = Signal(data.ArrayLayout(signed(cfg.act_bits), b))
        c_valid = Signal()
        c_first = Signal()
        c_last = Signal()
        c_err = Signal()
        with m.If(adv):
            m.d.sync += [
                act_r.eq(self.a.payload.data),
                c_valid.eq(a_acc),
                c_first.eq(beat == 0),
                c_last.eq(self.a.payload.last),
                c_err.eq(cur_bad | len_bad),
            ]
        with m.If(a_acc):
            with m.If(self.a.payload.last):
                m.d.sync += beat.eq(0)
                with m.If(len_bad):
                    m.d.sync += err_token_len.eq(1)
                with m.If(self.a.payload.user):
                    m.d.sync += cbuf.eq(~cbuf)
                    for i in range(2):
                        with m.If(cbuf == i):
                            m.d.comb += clr_full[i].eq(1)
            with m.Elif(beat < nb_max):
                m.d.sync += beat.eq(beat + 1)

        # ---- rows, their memories, and the error tag pipeline ------------------------------
        rows = []
        for r in range(R):
            mem = Memory(shape=word_layout(fmt), depth=2 * nb_max, init=[])
            m.submodules[f"wmem{r}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(domain="sync")
            m.d.comb += [
                wp.addr.eq(s1_addr),
                wp.data.eq(word),
                wp.en.eq(s1_valid & s1_we & (s1_row == r)),
                rp.addr.eq(rd_addr),
                rp.en.eq(adv),
            ]
            row = SQRow(cfg)
            m.submodules[f"row{r}"] = row
            m.d.comb += [
                row.en.eq(adv),
                row.valid.eq(c_valid),
                row.first.eq(c_first),
                row.last.eq(c_last),
                row.act.eq(act_r),
                row.w.eq(rp.data),
            ]
            rows.append(row)

        tag = c_err
        for i in range(SQRow.LATENCY):
            nxt = Signal(name=f"err_tag{i + 1}")
            with m.If(adv):
                m.d.sync += nxt.eq(tag)
            tag = nxt
        m.d.comb += [
            r_valid.eq(rows[0].o_valid),
            self.r.valid.eq(r_valid & ~in_reset),
            self.r.payload.user.eq(tag),
        ]
        for r in range(R):
            m.d.comb += self.r.payload.data[r].eq(Mux(tag, 0, rows[r].result))
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
