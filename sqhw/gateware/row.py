"""One processing element: the SQ dot product of one output column (datasheet §6).

Per cycle the row takes one activation bank and the decoded weight word of that bank (see
:func:`word_layout`) and accumulates ``scale_low·P_low + scale_high·P_high`` over the banks
of a token.
"""

from amaranth.hdl import Array, Cat, Const, Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..format import HWConfig, SQFormat
from .unpack import rel_width

__all__ = ["SQRow", "word_layout", "tree_sum", "ProductSum", "MULTS"]

#: Multiplier structures :class:`SQRow` can generate (see ``docs/area.md``):
#:
#: - ``"booth"`` (default): every product as radix-4 Booth partial-product rows with the
#:   sign extension folded into one constant, each dot product summed as one adder tree;
#: - ``"dsp_high"``: the low path as ``"booth"``, the high-path and scale products as plain
#:   ``*`` so that an FPGA flow maps them onto DSP blocks;
#: - ``"yosys"``: every product as plain ``*`` (Yosys's own ``$mul``/``$macc`` mapping).
MULTS = ("booth", "dsp_high", "yosys")


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


class ProductSum:
    """An exact sum of products, built as unsigned partial-product rows plus one constant.

    Every signed operand's sign extension is folded into :attr:`const` (the negative weight
    of a sign bit ``s`` at ``2^p`` is written as ``~s`` at ``2^p`` minus ``2^p``), so the
    adder tree only ever adds the bits a product really has. The sum is computed modulo
    ``2^width`` and read back as signed: exact whenever the true sum fits in ``width`` bits.

    Yosys's own mapping of a signed ``$mul`` inside a ``$macc`` sign-extends both operands
    to the full output width, which roughly triples the partial products of a small signed
    product; this class is the remedy.
    """

    def __init__(self, width: int):
        self.width = width
        self.rows = []      # (shift, unsigned Value)
        self.const = 0

    def _bits(self, shift, bits):
        bits = bits[:max(0, self.width - shift)]
        if bits:
            self.rows.append((shift, Cat(*bits)))

    def add(self, v, shift: int = 0):
        """Add the Value ``v`` (signed or unsigned) times ``2^shift``."""
        bits = [v[i] for i in range(len(v))]
        if v.shape().signed:
            bits[-1] = ~bits[-1]
            self.const -= 1 << (len(v) - 1 + shift)
        self._bits(shift, bits)

    def add_product(self, x, y):
        """Add ``x·y`` with ``y`` radix-4 Booth recoded: one row of ``len(x)+1`` bits plus a
        negate bit per digit ``d ∈ {0, ±1, ±2}`` (``ceil((len(y)+1)/2)`` digits, or
        ``len(y)/2`` for an even-width signed ``y``)."""
        n = len(x)
        xb = [x[i] for i in range(n)] + [x[n - 1] if x.shape().signed else Const(0, 1)]
        yb = [y[i] for i in range(len(y))]
        if not y.shape().signed:
            yb.append(Const(0, 1))
        if len(yb) % 2:
            yb.append(yb[-1])
        for d in range(len(yb) // 2):
            y0 = yb[2 * d - 1] if d else Const(0, 1)
            y1, y2 = yb[2 * d], yb[2 * d + 1]
            one = y1 ^ y0
            two = (y2 & ~y1 & ~y0) | (~y2 & y1 & y0)
            row = [((one & xb[j]) | (two & (xb[j - 1] if j else Const(0, 1)))) ^ y2
                   for j in range(n + 1)]
            # row is the signed (n+1)-bit value d·x - neg (one's complement when negative):
            # fold its sign bit into the constant, and add neg back at the row's LSB.
            row[-1] = ~row[-1]
            self.const -= 1 << (n + 2 * d)
            self._bits(2 * d, row)
            self._bits(2 * d, [y2])

    def sum(self):
        """The sum as a signed Value of :attr:`width` bits."""
        terms = [Cat(Const(0, s), r) if s else r for s, r in self.rows]
        c = self.const % (1 << self.width)
        if c or not terms:
            terms.append(Const(c, self.width))
        # A balanced tree (a chain this long would nest too deep for the simulator); Yosys's
        # alumacc merges it into one multi-operand adder all the same.
        return tree_sum(terms)[:self.width].as_signed()


def _dot(pairs, booth: bool):
    """``Σ x·y`` over ``pairs``: Booth rows in one adder tree, or plain ``*`` products."""
    plain = tree_sum(x * y for x, y in pairs)
    if not booth:
        return plain
    acc = ProductSum(plain.shape().width)
    for x, y in pairs:
        acc.add_product(x, y)
    return acc.sum()


class SQRow(wiring.Component):
    """Processing element for one output column.

    Pipeline (every register advances only while ``en`` is 1)::

        inputs ─► P_low, P_high ─► partial ─► acc        (latency 3 cycles)

    - stage 1: ``P_low = Σ_i act[i]·low[i]`` (b products as Booth rows in one adder tree) and
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
    mults : str
        Multiplier structure, one of :data:`MULTS` (default ``"booth"``). All give the same
        integers; they differ only in area (``docs/area.md``).

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
    ValueError
        If ``mults`` is not one of :data:`MULTS`.
    """

    LATENCY = 3

    def __init__(self, cfg, *, mults: str = "booth"):
        if not isinstance(cfg, HWConfig):
            self._MustUse__silence = True  # not built: do not warn that it was never used
            raise TypeError(f"cfg must be an HWConfig, not {cfg!r}")
        if mults not in MULTS:
            self._MustUse__silence = True
            raise ValueError(f"mults must be one of {MULTS}, not {mults!r}")
        self._cfg = cfg
        self._mults = mults
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
        booth_low = self._mults != "yosys"
        booth_rest = self._mults == "booth"

        valid1, first1, last1 = Signal(), Signal(), Signal()
        valid2, first2, last2 = Signal(), Signal(), Signal()
        o_valid = Signal()
        acc = Signal(signed(cfg.acc_bits))

        # Stage 1: the two dot products.
        stage1 = [valid1.eq(self.valid), first1.eq(self.first), last1.eq(self.last)]
        terms = []
        if fmt.has_low_scale:
            p_low_expr = _dot([(act[i], self.w.low[i]) for i in range(b)], booth_low)
            p_low = Signal(p_low_expr.shape(), name="p_low")
            sl1 = Signal(fmt.scale_bits, name="scale_low1")
            stage1 += [p_low.eq(p_low_expr), sl1.eq(self.w.scale_low)]
            terms.append((p_low, sl1))
        if fmt.has_high:
            span = b - k
            products = []
            for t in range(k):
                g = Signal(signed(cfg.act_bits), name=f"gather{t}")
                m.d.comb += g.eq(Array(act[t:t + span + 1])[self.w.rel[t]])
                products.append((g, self.w.high[t]))
            p_high_expr = _dot(products, booth_rest)
            p_high = Signal(p_high_expr.shape(), name="p_high")
            sh1 = Signal(fmt.scale_bits, name="scale_high1")
            stage1 += [p_high.eq(p_high_expr), sh1.eq(self.w.scale_high)]
            terms.append((p_high, sh1))

        # Stage 2: the scaled partial sum of the bank (the scale code is Booth recoded).
        partial_expr = _dot(terms, booth_rest)
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
