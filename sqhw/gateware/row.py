"""One processing element: the SQ dot product of one output column (datasheet §6).

Per cycle the row takes one activation bank and the decoded weight word of that bank (see
:func:`word_layout`) and accumulates ``scale_low·P_low + scale_high·P_high`` over the banks
of a token.
"""

from amaranth.hdl import Array, Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..format import HWConfig, SQFormat
from .unpack import rel_width

__all__ = ["SQRow", "word_layout", "tree_sum"]


def word_layout(fmt: SQFormat) -> data.StructLayout:
    """Layout of a decoded weight word, as stored in each row's weight memory.

    Fields (absent ones are left out):

    - ``low``: ``ArrayLayout(signed(l), b)``, the low codes with vmask replaced by 0
      (only when ``low_bits > 0``);
    - ``high``: ``ArrayLayout(signed(h), k)``, the high values in position order (k > 0);
    - ``rel``: ``ArrayLayout(unsigned(rel_width), k)``, ``idx[t] - t`` (k > 0);
    - ``scale_low`` / ``scale_high``: ``unsigned(sb)`` (when the group exists).
    """
    if not isinstance(fmt, SQFormat):
        raise TypeError(f"fmt must be an SQFormat, not {fmt!r}")
    fields = {}
    if fmt.has_low_scale:
        fields["low"] = data.ArrayLayout(signed(fmt.low_bits), fmt.bank_size)
    if fmt.has_high:
        fields["high"] = data.ArrayLayout(signed(fmt.high_bits), fmt.k)
        fields["rel"] = data.ArrayLayout(unsigned(rel_width(fmt)), fmt.k)
    if fmt.has_low_scale:
        fields["scale_low"] = unsigned(fmt.scale_bits)
    if fmt.has_high:
        fields["scale_high"] = unsigned(fmt.scale_bits)
    return data.StructLayout(fields)


def tree_sum(values):
    """Balanced adder tree (``log2(n)`` levels instead of a chain of n adders)."""
    values = list(values)
    if not values:
        return 0
    while len(values) > 1:
        nxt = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


class SQRow(wiring.Component):
    """Processing element for one output column.

    Pipeline (every register advances only while ``en`` is 1)::

        inputs ─► P_low, P_high ─► partial ─► acc        (latency 3 cycles)

    - stage 1: ``P_low = Σ_i act[i]·low[i]`` (b multipliers, adder tree) and
      ``P_high = Σ_t act[t + rel[t]]·high[t]`` (k multipliers; the gather multiplexer of lane
      ``t`` only spans the ``b-k+1`` positions ``t .. b-k+t`` that lane can hold);
    - stage 2: ``partial = scale_low·P_low + scale_high·P_high``;
    - stage 3: ``acc = partial`` on the first bank of a token, else ``acc + partial``.

    After the last bank of a token, ``o_valid`` is 1 and ``result`` holds the token's sum
    until ``en`` is 1 again. With ``low_bits = 0`` there is no low path (2:4), with k = 0 no
    high path (dense).

    Parameters
    ----------
    cfg : HWConfig
        Uses ``fmt``, ``act_bits`` and ``acc_bits``.

    Attributes
    ----------
    en : In(1)
        Global enable: 0 freezes the whole pipeline (stall).
    valid : In(1)
        The inputs hold a bank this cycle.
    first : In(1)
        This bank is the first of its token (restarts the sum).
    last : In(1)
        This bank is the last of its token (the sum appears on ``result``).
    act : In(ArrayLayout(signed(act_bits), b))
        The activation bank.
    w : In(word_layout(fmt))
        The decoded weight word of that bank.
    o_valid : Out(1)
        ``result`` holds a finished token sum.
    result : Out(signed(acc_bits))
        The token sum.

    Raises
    ------
    TypeError
        If ``cfg`` is not an :class:`~sqhw.format.HWConfig`.
    """

    LATENCY = 3

    def __init__(self, cfg):
        if not isinstance(cfg, HWConfig):
            self._MustUse__silence = True  # not built: do not warn that it was never used
            raise TypeError(f"cfg must be an HWConfig, not {cfg!r}")
        self._cfg = cfg
        super().__init__({
            "en": In(1),
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "act": In(data.ArrayLayout(signed(cfg.act_bits), cfg.fmt.bank_size)),
            "w": In(word_layout(cfg.fmt)),
            "o_valid": Out(1),
            "result": Out(signed(cfg.acc_bits)),
        })

    @property
    def cfg(self) -> HWConfig:
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        fmt = cfg.fmt
        b, k = fmt.bank_size, fmt.k
        act = [self.act[i] for i in range(b)]

        valid1, first1, last1 = Signal(), Signal(), Signal()
        valid2, first2, last2 = Signal(), Signal(), Signal()
        o_valid = Signal()
        acc = Signal(signed(cfg.acc_bits))

        # Stage 1: the two dot products.
        stage1 = [valid1.eq(self.valid), first1.eq(self.first), last1.eq(self.last)]
        terms = []
        if fmt.has_low_scale:
            p_low_expr = tree_sum(act[i] * self.w.low[i] for i in range(b))
            p_low = Signal(p_low_expr.shape(), name="p_low")
            sl1 = Signal(fmt.scale_bits, name="scale_low1")
            stage1 += [p_low.eq(p_low_expr), sl1.eq(self.w.scale_low)]
            terms.append(sl1 * p_low)
        if fmt.has_high:
            span = b - k
            products = []
            for t in range(k):
                g = Signal(signed(cfg.act_bits), name=f"gather{t}")
                m.d.comb += g.eq(Array(act[t:t + span + 1])[self.w.rel[t]])
                products.append(g * self.w.high[t])
            p_high_expr = tree_sum(products)
            p_high = Signal(p_high_expr.shape(), name="p_high")
            sh1 = Signal(fmt.scale_bits, name="scale_high1")
            stage1 += [p_high.eq(p_high_expr), sh1.eq(self.w.scale_high)]
            terms.append(sh1 * p_high)

        # Stage 2: the scaled partial sum of the bank.
        partial_expr = tree_sum(terms)
        partial = Signal(partial_expr.shape(), name="partial")

        with m.If(self.en):
            m.d.sync += stage1
            m.d.sync += [
                partial.eq(partial_expr),
                valid2.eq(valid1), first2.eq(first1), last2.eq(last1),
                # Stage 3: accumulate over the banks of a token.
                o_valid.eq(valid2 & last2),
            ]
            with m.If(valid2):
                with m.If(first2):
                    m.d.sync += acc.eq(partial)
                with m.Else():
                    m.d.sync += acc.eq(acc + partial)
        m.d.comb += [self.o_valid.eq(o_valid), self.result.eq(acc)]
        return m
