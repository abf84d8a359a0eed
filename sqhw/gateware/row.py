"""One processing element: the SQ dot product of one output column (datasheet §6).

Per cycle the row takes one activation bank and the decoded weight word of that bank (see
:func:`word_layout`) and accumulates ``scale_low·P_low + scale_high·P_high`` over the banks
of a token. It is a free-running pipeline (no enable): its stages are those of
:attr:`HWConfig.row_plan <sqhw.format.HWConfig.row_plan>`.
"""

from amaranth.hdl import Array, Cat, Const, Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..format import HWConfig, SQFormat
from ..format.pipeline import packed_bits, packed_shift
from .dsp import DspMul
from .pipe import delay, pipelined_sum
from .refuse import refused
from .unpack import rel_width

__all__ = ["SQRow", "PackedLowPair", "word_layout", "tree_sum", "ProductSum"]


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

    def terms(self):
        """The unsigned terms whose sum modulo ``2^width`` is the result: every partial
        product row at its shift, and the constant (when not 0)."""
        terms = [Cat(Const(0, s), r) if s else r for s, r in self.rows]
        c = self.const % (1 << self.width)
        if c or not terms:
            terms.append(Const(c, self.width))
        return terms

    def sum(self):
        """The sum as a signed Value of :attr:`width` bits (combinational)."""
        # A balanced tree (a chain this long would nest too deep for the simulator).
        return tree_sum(self.terms())[:self.width].as_signed()


def _booth_sum(m, pairs, width, levels, stages, name):
    """``Σ x·y`` over ``pairs`` as Booth rows in one pipelined adder tree of ``stages``
    register stages: a signed Signal of ``width`` bits (exact when the sum fits)."""
    acc = ProductSum(width)
    for x, y in pairs:
        acc.add_product(x, y)
    return pipelined_sum(m, acc.terms(), width, levels, stages, name).as_signed()


def _dsp_sum(m, pairs, width, levels, stages, name, prefix):
    """``Σ x·y`` with every product on a :class:`~.dsp.DspMul` (its input registers take
    ``x`` and ``y`` as they are), then a pipelined adder tree: ``stages`` in all."""
    products = []
    for i, (x, y) in enumerate(pairs):
        mul = DspMul(x.shape(), y.shape())
        m.submodules[f"{prefix}{i}"] = mul
        m.d.comb += [mul.a.eq(x), mul.b.eq(y)]
        products.append(mul.p)
    tree_stages = stages - DspMul.LATENCY
    if tree_stages < 1:
        raise AssertionError(f"{name}: {stages} stages cannot hold a DSP product and its sum")
    return pipelined_sum(m, products, width, levels, tree_stages, name).as_signed()


class SQRow(wiring.Component):
    """Processing element for one output column: a free-running pipeline.

    Stages (counts from :attr:`HWConfig.row_plan <sqhw.format.HWConfig.row_plan>`)::

        inputs ─► input registers ─► P_low, P_high ─► scaled partial ─► acc

    - input registers: the activation bank and the weight word (each row has its own copy,
      so the array's broadcast fans out through one register level);
    - ``P_low = Σ_i act[i]·low[i]`` (b Booth products in one pipelined adder tree, or b DSP
      products) and ``P_high = Σ_t act[t + rel[t]]·high[t]`` (a registered gather
      multiplexer per lane ``t`` over the ``b-k+1`` positions ``t .. b-k+t`` it can hold,
      then k products); the shorter branch is delayed to the longer;
    - ``partial = scale_low·P_low + scale_high·P_high`` (Booth over the scale code, or DSP);
    - ``acc = partial`` on the first bank of a token, else ``acc + partial``.

    After the last bank of a token, ``o_valid`` is 1 for one cycle and ``result`` holds
    the token's sum (until the next bank reaches the accumulator). With ``low_bits = 0``
    there is no low path (2:4), with k = 0 no high path (dense).

    Parameters
    ----------
    cfg : HWConfig
        Uses ``fmt``, ``act_bits``, ``acc_bits``, ``mults`` and ``tree_levels``.
    row : int
        Which row of the array this is (default 0): with ``mults="auto"`` it decides the
        row's structure (``cfg.row_mults(row)``). A row whose structure is faster than
        ``cfg.row_latency`` delays its partial sums to it, so every row of an array has the
        same latency.

    Attributes
    ----------
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
        ``result`` holds a finished token sum (one cycle per token).
    result : Out(signed(acc_bits))
        The token sum.
    p_low : In(signed(low_width))
        Only with ``mults="dsp_packed"``: this row's ``P_low``, from the
        :class:`PackedLowPair` the row shares with its neighbour, ``low_stages`` cycles
        after the inputs it was computed from reached this row (the row's own low codes
        are then unused).

    Raises
    ------
    TypeError
        If ``cfg`` is not an :class:`~sqhw.format.HWConfig`.
    """

    def __init__(self, cfg, *, row: int = 0):
        if not isinstance(cfg, HWConfig):
            raise refused(self, TypeError(f"cfg must be an HWConfig, not {cfg!r}"))
        if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < cfg.rows:
            raise refused(self, ValueError(f"row must be in 0..{cfg.rows - 1}, not {row!r}"))
        self._cfg = cfg
        self._row = row
        plan = cfg.plan_of(row)
        ports = {
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "act": In(data.ArrayLayout(signed(cfg.act_bits), cfg.fmt.bank_size)),
            "w": In(word_layout(cfg.fmt)),
            "o_valid": Out(1),
            "result": Out(signed(cfg.acc_bits)),
        }
        if plan.packed_low:
            ports["p_low"] = In(signed(plan.low_width))
        super().__init__(ports)

    @property
    def cfg(self) -> HWConfig:
        return self._cfg

    @property
    def latency(self) -> int:
        """Cycles from the inputs to ``o_valid``: ``cfg.row_latency``."""
        return self._cfg.row_latency

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        fmt = cfg.fmt
        plan = cfg.plan_of(self._row)
        pad = cfg.row_latency - plan.latency     # > 0 only in a mixed ("auto") array
        lv = cfg.tree_levels
        b, k = fmt.bank_size, fmt.k

        # Stage 1: this row's copy of the inputs.
        act_i = Signal(data.ArrayLayout(signed(cfg.act_bits), b), name="act_i",
                       reset_less=True)
        w_i = Signal(word_layout(fmt), name="w_i", reset_less=True)
        ctl = Signal(3, name="ctl_i")
        m.d.sync += [act_i.eq(self.act), w_i.eq(self.w),
                     ctl.eq(Cat(self.valid, self.first, self.last))]
        act = [act_i[i] for i in range(b)]

        # Dot products, each ending after plan.dot_stages stages.
        dot = plan.dot_stages
        terms = []
        if fmt.has_low_scale:
            pairs = [(act[i], w_i.low[i]) for i in range(b)]
            if plan.packed_low:
                p_low = self.p_low               # from the pair's PackedLowPair
            elif plan.dsp_low:
                p_low = _dsp_sum(m, pairs, plan.low_width, lv, plan.low_stages, "p_low",
                                 "mul_low")
            else:
                p_low = _booth_sum(m, pairs, plan.low_width, lv, plan.low_stages, "p_low")
            p_low = delay(m, p_low, dot - plan.low_stages, "p_low_d")
            terms.append((p_low, delay(m, w_i.scale_low, dot, "scale_low_d"),
                          plan.dsp_scale_low))
        if fmt.has_high:
            span = b - k
            gathered = []
            for t in range(k):
                # Registered in the fabric even in front of a DSP: the multiplexer stays
                # next to its inputs and the route to the DSP column is a stage of its own.
                g = Signal(signed(cfg.act_bits), name=f"gather{t}", reset_less=True)
                m.d.sync += g.eq(Array(act[t:t + span + 1])[w_i.rel[t]])
                gathered.append(g)
            high_r = [delay(m, w_i.high[t], 1, f"high_r{t}") for t in range(k)]
            pairs = list(zip(gathered, high_r, strict=True))
            if plan.dsp_high:
                p_high = _dsp_sum(m, pairs, plan.high_width, lv, plan.high_stages - 1,
                                  "p_high", "mul_high")
            else:
                p_high = _booth_sum(m, pairs, plan.high_width, lv, plan.high_stages - 1,
                                    "p_high")
            p_high = delay(m, p_high, dot - plan.high_stages, "p_high_d")
            terms.append((p_high, delay(m, w_i.scale_high, dot, "scale_high_d"),
                          plan.dsp_scale_high))

        # The scaled partial sum of the bank.
        s_stages = plan.scale_stages
        partial_w = max(len(p) + len(s) + 1 for p, s, _ in terms) + 1
        lut = [(p, s) for p, s, dsp in terms if not dsp]
        dsp = [(p, s) for p, s, dsp in terms if dsp]
        n_parts = len(dsp) + bool(lut)
        pre = s_stages if n_parts == 1 else s_stages - 1   # stages before the final add
        parts = []
        for i, (p, s) in enumerate(dsp):
            mul = DspMul(p.shape(), unsigned(len(s)))
            m.submodules[f"mul_scale{i}"] = mul
            m.d.comb += [mul.a.eq(p), mul.b.eq(s)]
            parts.append(delay(m, mul.p, pre - DspMul.LATENCY, f"scaled{i}"))
        if lut:
            parts.append(_booth_sum(m, lut, partial_w, lv, pre, "partial_lut"))
        if n_parts == 1:
            partial = parts[0]
        else:
            partial = Signal(signed(partial_w), name="partial", reset_less=True)
            m.d.sync += partial.eq(parts[0] + parts[1])

        # Accumulate over the banks of a token.
        partial = delay(m, partial, pad, "partial_pad")
        c = delay(m, ctl, plan.latency - 2 + pad, "ctl_d", reset_less=False)
        valid, first, last = c[0], c[1], c[2]
        acc = Signal(signed(cfg.acc_bits), reset_less=True)
        o_valid = Signal()
        m.d.sync += o_valid.eq(valid & last)
        with m.If(valid):
            with m.If(first):
                m.d.sync += acc.eq(partial)
            with m.Else():
                m.d.sync += acc.eq(acc + partial)
        m.d.comb += [self.o_valid.eq(o_valid), self.result.eq(acc)]
        return m



class PackedLowPair(wiring.Component):
    """The low dot products of two neighbouring rows (``mults="dsp_packed"``), which read
    the same activation bank: one DSP product per position ``i``,
    ``P_i = a_i · (w0_i + w1_i·2^S)`` (:func:`~sqhw.format.pipeline.packed_shift`), so
    ``b`` DSP blocks serve ``2b`` products. ``a_i·w0_i`` is ``P_i``'s low ``S`` bits read
    as signed, ``a_i·w1_i = P_i[S:] + P_i[S-1]``; each row's ``P_low`` is a pipelined tree
    of its fields (and, for ``w1``, the borrow bits). The same latency as a row's own low
    product: one input register stage, then ``low_stages``.

    Attributes
    ----------
    act : In(ArrayLayout(signed(act_bits), b))
    low0, low1 : In(ArrayLayout(signed(low_bits), b))
        The decoded low codes of the two rows (vmask positions 0); ``low1`` is 0 for an
        unpaired last row.
    p0, p1 : Out(signed(low_width))
        ``Σ_i a_i·low0_i`` and ``Σ_i a_i·low1_i``.
    """

    def __init__(self, cfg):
        if not isinstance(cfg, HWConfig):
            raise refused(self, TypeError(f"cfg must be an HWConfig, not {cfg!r}"))
        if not cfg.packed_rows:
            raise refused(self, ValueError(f"PackedLowPair needs packed rows (mults "
                                           f"'dsp_packed', or 'auto' with DSP rows of a "
                                           f"format that packs), not mults {cfg.mults!r}"))
        self._cfg = cfg
        fmt, plan = cfg.fmt, cfg.plan_of(0)
        low = data.ArrayLayout(signed(fmt.low_bits), fmt.bank_size)
        super().__init__({
            "act": In(data.ArrayLayout(signed(cfg.act_bits), fmt.bank_size)),
            "low0": In(low),
            "low1": In(low),
            "p0": Out(signed(plan.low_width)),
            "p1": Out(signed(plan.low_width)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, fmt, plan = self._cfg, self._cfg.fmt, self._cfg.plan_of(0)
        b, lbits = fmt.bank_size, fmt.low_bits
        shift = packed_shift(cfg.act_bits, lbits)
        # Stage 1 (as a row's input registers): the activations and the packed codes.
        act_i = Signal(self.act.shape(), name="act_i", reset_less=True)
        width = packed_bits(cfg.act_bits, lbits)
        packed = Signal(data.ArrayLayout(signed(width), b), name="packed", reset_less=True)
        m.d.sync += act_i.eq(self.act)
        m.d.sync += [packed[i].eq(self.low0[i] + (self.low1[i] << shift)) for i in range(b)]
        lo, hi = [], []
        for i in range(b):
            mul = DspMul(signed(cfg.act_bits), signed(width))
            m.submodules[f"mul_packed{i}"] = mul
            m.d.comb += [mul.a.eq(act_i[i]), mul.b.eq(packed[i])]
            lo.append(mul.p[:shift].as_signed())
            hi += [mul.p[shift:].as_signed(), mul.p[shift - 1]]
        stages = plan.low_stages - DspMul.LATENCY
        m.d.comb += [
            self.p0.eq(pipelined_sum(m, lo, plan.low_width, cfg.tree_levels, stages, "p0")),
            self.p1.eq(pipelined_sum(m, hi, plan.low_width, cfg.tree_levels, stages, "p1")),
        ]
        return m
