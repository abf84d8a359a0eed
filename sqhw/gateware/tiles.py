"""The tile protocol shared by both arrays: two tile buffers, the weight-stream loader and the
token bookkeeping (datasheet §7-§8).

:class:`~.array.MacArray` (weight mode) and :class:`~.actarray.ActArray` (activation mode)
differ only in what a weight record holds and how a bank is computed; how records fill the
two tile buffers, how a tile's length is checked and marked bad, and how tokens walk a
loaded tile and free it are the same, and live here. These are plain helpers that add
logic to the caller's :class:`~amaranth.hdl.Module` (not components), so the caller's
signal names and the emitted Verilog stay what they were before they were factored out.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Mux, Signal
from amaranth.lib.fifo import SyncFIFOBuffered

from .pipe import delay

__all__ = ["TileBuffers", "ResultQueue"]


class TileBuffers:
    """The two tile buffers' flags and the logic that loads and frees them.

    Per buffer ``i``: ``full[i]`` (loaded, not yet consumed), ``bad[i]`` (an error while
    loading: every token run on it gives an error result), ``nbl[i]`` (its last bank index,
    ``nb - 1``). A tile is ``ncols`` columns of ``nb`` records each, ``last`` on the last
    record of a column; column 0 fixes ``nb``.

    Parameters
    ----------
    m : Module
        The caller's module; logic is added to it.
    nb_max : int
        Largest number of banks of a tile (the depth of one buffer).
    """

    def __init__(self, m, nb_max: int):
        self.m = m
        self.nb_max = nb_max
        self.full = [Signal(name=f"full{i}") for i in range(2)]
        self.bad = [Signal(name=f"bad{i}") for i in range(2)]
        self.nbl = [Signal(range(nb_max), name=f"nbl{i}") for i in range(2)]
        # A consumed buffer whose last beat's weights are still to be read: free for the
        # tokens (they have moved on), not yet for the weight stream (see token_end).
        self.draining = [Signal(name=f"draining{i}") for i in range(2)]
        self.set_full = [Signal(name=f"set_full{i}") for i in range(2)]
        self.clr_full = [Signal(name=f"clr_full{i}") for i in range(2)]
        for i in range(2):
            with m.If(self.set_full[i]):
                m.d.sync += self.full[i].eq(1)
            with m.Elif(self.clr_full[i]):
                m.d.sync += self.full[i].eq(0)

    def load(self, w, ncols: int, data_bits: int, in_reset):
        """Weight path, stage 0: accept a record on stream ``w`` (payload ``data``,
        ``last``), count columns and banks, check the column lengths, and register the
        record with where it goes (stage 1).

        Returns a namespace of the stage-1 registers: ``valid``, ``data``, ``row`` (the
        column), ``addr`` (buffer base + bank), ``we`` (write: the bank is within
        ``nb_max``), ``len_err``, ``start`` (first record of a tile), ``end`` (last record
        of a tile), ``buf``, ``nbl``.
        """
        m, nb_max, full = self.m, self.nb_max, self.full
        R = ncols
        wbuf = Signal()                       # buffer being loaded
        col = Signal(range(R))
        bank = Signal(range(nb_max + 1))      # saturates at nb_max (= too many records)
        nbl_load = Signal(range(nb_max))      # nb - 1 of the tile being loaded (column 0)
        bank_clamped = Signal(range(nb_max))
        m.d.comb += bank_clamped.eq(Mux(bank >= nb_max, nb_max - 1, bank))
        # A buffer whose last record is accepted but not yet written (``landing``) is no
        # more free than a loaded one: the next tile but one must not start loading into it.
        landing = [Signal(name=f"landing{i}") for i in range(2)]
        busy = [full[i] | landing[i] | self.draining[i] for i in range(2)]
        # No handshake completes while rst is high (the state is being reset anyway).
        m.d.comb += w.ready.eq(~Mux(wbuf, busy[1], busy[0]) & ~in_reset)
        w_acc = Signal()
        m.d.comb += w_acc.eq(w.valid & w.ready)
        w_last = w.payload.last

        len_err = Signal()
        m.d.comb += len_err.eq((bank >= nb_max) | ((col != 0) & (
            (bank > nbl_load) | (w_last & (bank != nbl_load)))))
        tile_end = Signal()
        m.d.comb += tile_end.eq(w_last & (col == R - 1))
        for i in range(2):
            with m.If(w_acc & tile_end & (wbuf == i)):
                m.d.sync += landing[i].eq(1)
            with m.Elif(self.set_full[i]):
                m.d.sync += landing[i].eq(0)

        s1_valid = Signal()
        s1_data = Signal(data_bits)
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
                s1_data.eq(w.payload.data),
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
        return SimpleNamespace(valid=s1_valid, data=s1_data, row=s1_row, addr=s1_addr,
                               we=s1_we, len_err=s1_len_err, start=s1_start, end=s1_end,
                               buf=s1_buf, nbl=s1_nbl)

    def stage(self, s1, prefix: str):
        """The stage namespace ``s1`` of :meth:`load` registered once more (without
        ``data``), its registers named ``{prefix}_*``: for a weight path that decodes in
        the stages between :meth:`load` and :meth:`commit`."""
        m = self.m
        s2 = SimpleNamespace()
        for name in ("valid", "row", "addr", "we", "len_err", "start", "end", "buf", "nbl"):
            v = getattr(s1, name)
            reg = Signal(v.shape(), name=f"{prefix}_{name}", reset_less=name != "valid")
            m.d.sync += reg.eq(v)
            setattr(s2, name, reg)
        return s2

    def commit(self, s1, malformed, err_weight, err_tile_len):
        """Weight path, stage 1: fold this record's errors into the tile's ``bad`` flag, set
        the sticky ``err_weight`` (``malformed``) / ``err_tile_len`` bits, and mark the
        buffer loaded after its last record."""
        m = self.m
        bad_acc = Signal()
        bad_next = Signal()
        m.d.comb += bad_next.eq(Mux(s1.start, 0, bad_acc) | malformed | s1.len_err)
        with m.If(s1.valid):
            m.d.sync += bad_acc.eq(bad_next)
            with m.If(malformed):
                m.d.sync += err_weight.eq(1)
            with m.If(s1.len_err):
                m.d.sync += err_tile_len.eq(1)
            with m.If(s1.end):
                for i in range(2):
                    with m.If(s1.buf == i):
                        m.d.comb += self.set_full[i].eq(1)
                        m.d.sync += [self.bad[i].eq(bad_next), self.nbl[i].eq(s1.nbl)]

    def tokens(self, a, adv, in_reset):
        """Compute path, accept side: ``a.ready``, the beat counter and the buffer the tokens
        run on. Call :meth:`token_end` after the caller's stage-1 registers.

        Returns a namespace: ``a_acc`` (a beat accepted), ``rd_addr`` (its bank's address in
        the buffer), ``first`` (first beat of a token), ``len_bad`` (a ``last`` beat here
        ends a token of the wrong length), ``over`` (the beat is beyond the tile's length:
        its bank holds no data of this tile), ``cur_bad`` (the tile is bad), ``cbuf``, ``beat``.
        """
        m, nb_max, full, bad, nbl = self.m, self.nb_max, self.full, self.bad, self.nbl
        cbuf = Signal()                       # buffer the tokens run on (oldest loaded)
        beat = Signal(range(nb_max + 1))      # saturates at nb_max (= too many beats)
        cur_full = Mux(cbuf, full[1], full[0])
        cur_bad = Mux(cbuf, bad[1], bad[0])
        cur_nbl = Mux(cbuf, nbl[1], nbl[0])
        m.d.comb += a.ready.eq(adv & cur_full & ~in_reset)
        a_acc = Signal()
        m.d.comb += a_acc.eq(a.valid & a.ready)
        beat_clamped = Mux(beat >= nb_max, nb_max - 1, beat)
        rd_addr = Signal(range(2 * nb_max))
        m.d.comb += rd_addr.eq(Mux(cbuf, nb_max, 0) + beat_clamped)
        len_bad = Signal()
        m.d.comb += len_bad.eq(beat != cur_nbl)
        return SimpleNamespace(a_acc=a_acc, rd_addr=rd_addr, first=beat == 0, len_bad=len_bad,
                               over=beat > cur_nbl, cur_bad=cur_bad, cbuf=cbuf, beat=beat)

    def token_end(self, a, tok, err_token_len, free_delay: int = 0):
        """Compute path: count the beats of a token; at its ``last`` beat flag a wrong
        length (sticky ``err_token_len``) and, at the tile's last token (``user``), switch to
        the other buffer and free this one.

        ``free_delay``: the buffer is freed for the weight stream that many cycles after the
        tile's last beat is accepted: 0 when the weights are read with the beat, more when
        the last beat's weights are read later in the pipeline (no new tile may overwrite a
        bank before it has been read). The tokens leave it at once: it is ``draining`` in
        between, so the next tile's beats never see it as loaded.
        """
        m, nb_max = self.m, self.nb_max
        cbuf, beat = tok.cbuf, tok.beat
        free = [Signal(name=f"free{i}") for i in range(2)]
        for i in range(2):
            m.d.comb += self.clr_full[i].eq(free[i])
            if free_delay:
                freed = delay(m, free[i], free_delay, f"free_d{i}_", reset_less=False)
                with m.If(free[i]):
                    m.d.sync += self.draining[i].eq(1)
                with m.Elif(freed):
                    m.d.sync += self.draining[i].eq(0)
        with m.If(tok.a_acc):
            with m.If(a.payload.last):
                m.d.sync += beat.eq(0)
                with m.If(tok.len_bad):
                    m.d.sync += err_token_len.eq(1)
                with m.If(a.payload.user):
                    m.d.sync += cbuf.eq(~cbuf)
                    for i in range(2):
                        with m.If(cbuf == i):
                            m.d.comb += free[i].eq(1)
            with m.Elif(beat < nb_max):
                m.d.sync += beat.eq(beat + 1)


class ResultQueue:
    """The result FIFO and the credits that keep the compute pipeline from ever stalling.

    A token's last beat is accepted only while a slot of the FIFO is reserved for its
    result (:attr:`credit`); the credit comes back when the result leaves on ``r``. So the
    free-running pipeline always has a place for what it produces, ``a.ready`` depends on
    no combinational path from ``r.ready``, and ``cfg.result_fifo_depth`` slots keep one
    result per cycle flowing while ``r.ready`` stays high.

    Parameters
    ----------
    m : Module
        The caller's module; the FIFO is added as its submodule ``results``.
    cfg : HWConfig
        ``rows``, ``acc_bits`` and ``result_fifo_depth``.
    r : stream interface
        The array's result stream (payload ``data``, ``user``).
    in_reset : Value
        The domain's reset: no result is valid while it is high.
    """

    def __init__(self, m, cfg, r, in_reset):
        self.m, self.cfg, self.r = m, cfg, r
        depth = cfg.result_fifo_depth
        width = cfg.rows * cfg.acc_bits
        self.fifo = fifo = SyncFIFOBuffered(width=width + 1, depth=depth)
        m.submodules.result_fifo = fifo
        self.credits = Signal(range(depth + 1), init=depth)
        self.credit = Signal()
        m.d.comb += self.credit.eq(self.credits != 0)
        # An error result is stored as it is and zeroed on the way out: the zeroing is one
        # gate beside the FIFO's output register, not a gate in front of every row's long
        # route into the FIFO.
        user = fifo.r_data[width]
        m.d.comb += [
            r.valid.eq(fifo.r_rdy & ~in_reset),
            fifo.r_en.eq(r.ready & ~in_reset),
            r.payload.data.eq(Mux(user, 0, fifo.r_data[:width])),
            r.payload.user.eq(user),
        ]
        self._pop = Signal()
        m.d.comb += self._pop.eq(r.valid & r.ready)

    def issue(self, take):
        """``take``: a token's last beat is accepted this cycle (it spends a credit)."""
        with self.m.If(take & ~self._pop):
            self.m.d.sync += self.credits.eq(self.credits - 1)
        with self.m.Elif(~take & self._pop):
            self.m.d.sync += self.credits.eq(self.credits + 1)

    def push(self, valid, error, results):
        """Write a token's ``results`` (one per row) when ``valid``; an ``error`` result is
        all zeros with ``user`` set."""
        self.m.d.comb += [
            self.fifo.w_en.eq(valid),
            self.fifo.w_data.eq(Cat(*results, error)),
        ]
