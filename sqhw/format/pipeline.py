"""The pipeline plan of a row: how many partial-product terms each sum has, and so how many
register stages each part of the row takes (datasheet §9).

Pure arithmetic on the configuration, no gateware: :class:`~sqhw.format.HWConfig` derives
its latency from :func:`row_plan`, and the gateware (:class:`sqhw.gateware.row.SQRow`)
builds exactly the stages this plan counts (it checks that its trees fit and pads the
shorter branch with delay registers).

A product ``x·y`` built in LUTs is radix-4 Booth recoded over ``y``: one partial-product
row plus one negate bit per digit, so :func:`booth_terms` terms. A sum of ``n`` terms is a
balanced tree of two-input adders, ``ceil(log2 n)`` levels, with a register after every
``tree_levels`` levels (the first stage also holds the Booth recoding). A product on a DSP
block takes two stages (input and output registers of the ``MULT18X18D``), and both of its
operands must fit its 18-bit signed ports.
"""

from dataclasses import dataclass

__all__ = ["MULTS", "ROW_MULTS", "DSP_BITS", "packed_shift", "packed_bits",
           "packing_problem", "booth_digits", "booth_terms", "adder_levels",
           "tree_stages", "RowPlan", "row_plan", "DSP_STAGES", "PREFIX_LEVELS", "MEM_OUT_REGS",
           "FANOUT_ROWS", "fanout_groups", "prefix_stages"]

#: ``HWConfig.mults``: where the row's products are built.
#:
#: - ``"lut"``: every product as Booth rows in LUTs;
#: - ``"dsp"``: the high-precision products (``act × high``) and the two scale products on
#:   DSP blocks (registered ``MULT18X18D`` on ECP5), the low products in LUTs;
#: - ``"dsp_all"``: every product on a DSP block (the classic INT8-on-DSP array);
#: - ``"dsp_packed"``: as ``"dsp"``, and the low products of two neighbouring rows, which
#:   share the activation, packed two per DSP block: ``a · (w0 + w1·2^S)`` gives both
#:   (:func:`packed_shift`; weight mode, ``act_bits + 2·low_bits + 1 ≤ 18``);
#: - ``"auto"``: the first ``HWConfig.dsp_rows`` rows as ``"dsp_all"``, the others as
#:   ``"lut"`` (an array split between the DSP blocks and the LUTs, for ``--fit``).
MULTS = ("lut", "dsp", "dsp_all", "dsp_packed", "auto")
#: The structures a single row can have (``"auto"`` is a mix of rows).
ROW_MULTS = ("lut", "dsp", "dsp_all", "dsp_packed")
#: Signed width of a DSP multiplier port (ECP5 ``MULT18X18D``).
DSP_BITS = 18
#: Register stages of one DSP product: input registers, output register.
DSP_STAGES = 2
#: Registers after a block RAM's read data: one next to the RAM and one next to its
#: consumers. The RAM's own output register cannot be used on the open ECP5 flow (Yosys
#: maps every DP16KD with ``REGMODE = NOREG``), and its unregistered clock-to-output
#: (5.8 ns) plus a route across the chip to the rows missed 100 MHz in the 16-row build.
MEM_OUT_REGS = 2
#: Rows served by one copy of a broadcast register (the activation bank, the control bits,
#: the weight memories' read address and write port): an array of R rows keeps
#: ``ceil(R / FANOUT_ROWS)`` copies of each, so no register drives more than this many rows
#: and each copy can sit beside its rows. The copies add no cycle. Synthesis tools merge
#: identical registers unless told not to: the copies are named ``*_fo<g>_*`` and the FPGA
#: build marks them ``keep``.
FANOUT_ROWS = 4
#: Adder levels per register stage of a mask prefix count (the weight decoder's and the
#: activation mode's select-and-gather unit's).
PREFIX_LEVELS = 2


def fanout_groups(rows: int) -> int:
    """Copies of each broadcast register in an array of ``rows`` rows."""
    return -(-rows // FANOUT_ROWS)


def packed_shift(act_bits: int, low_bits: int) -> int:
    """``S`` of a packed DSP product ``a · (w0 + w1·2^S)``: the signed width of one product
    ``a·w``, ``act_bits + low_bits``. ``a·w0`` then fits the product's low ``S`` bits
    exactly (read back as signed), and ``a·w1 = P[S:] + P[S-1]``: the upper field, plus the
    borrow of a negative lower one."""
    return act_bits + low_bits


def packed_bits(act_bits: int, low_bits: int) -> int:
    """Signed width of the packed operand ``w0 + w1·2^S``: ``low_bits + S + 1`` (the most
    negative ``w1`` shifted, plus a negative ``w0``, is one below the most negative value
    of ``low_bits + S`` bits)."""
    return low_bits + packed_shift(act_bits, low_bits) + 1


def packing_problem(fmt, act_bits: int) -> str | None:
    """Why two low products of ``fmt`` against ``act_bits``-bit activations cannot share
    one DSP block, or None: there must be a low group, and the packed operand
    ``w0 + w1·2^S`` must fit an 18-bit port: :func:`packed_bits` signed bits."""
    if not fmt.has_low_scale:
        return f"{fmt.name} has no low-precision group to pack"
    need = packed_bits(act_bits, fmt.low_bits)
    if need > DSP_BITS:
        return (f"two {fmt.low_bits}-bit codes against {act_bits}-bit activations need "
                f"{need} signed bits in one {DSP_BITS}-bit DSP port "
                f"(act_bits + 2·low_bits + 1 <= {DSP_BITS})")
    return None


def booth_digits(y_bits: int, y_signed: bool) -> int:
    """Radix-4 digits of a ``y_bits``-bit multiplier (one sign bit added when unsigned,
    then rounded up to an even width)."""
    n = y_bits + (0 if y_signed else 1)
    return (n + n % 2) // 2


def booth_terms(n_products: int, y_bits: int, y_signed: bool) -> int:
    """Terms of ``n_products`` Booth products: a row and a negate bit per digit."""
    return n_products * 2 * booth_digits(y_bits, y_signed)


def adder_levels(n_terms: int) -> int:
    """Levels of a balanced two-input adder tree over ``n_terms`` terms."""
    return max(0, (n_terms - 1).bit_length())


def prefix_stages(bank_size: int) -> int:
    """Register stages of a prefix count over a bank's mask: the weight decoder's
    (:class:`sqhw.gateware.unpack.Unpacker`) and the select-and-gather unit's
    (:class:`sqhw.gateware.gather.SelectGather`). ``ceil(log2 b)`` adder levels,
    registered after every :data:`PREFIX_LEVELS` levels and after the last."""
    return -(-adder_levels(bank_size) // PREFIX_LEVELS)


def tree_stages(n_terms: int, levels: int) -> int:
    """Register stages of a tree over ``n_terms`` terms with ``levels`` adder levels per
    stage (at least 1: the terms themselves are registered once)."""
    return max(1, -(-adder_levels(n_terms) // levels))


@dataclass(frozen=True)
class RowPlan:
    """Stages of one row, counted from its input registers (stage 1).

    Attributes
    ----------
    low_stages : int
        The low dot product ``P_low`` (0 without a low group).
    high_stages : int
        The high dot product ``P_high``, gather stage included (0 without a high group).
    scale_stages : int
        ``scale_low·P_low + scale_high·P_high``.
    low_width, high_width : int
        Signed widths of ``P_low`` and ``P_high``.
    dsp_low, dsp_high, dsp_scale_low, dsp_scale_high : bool
        Which products are on DSP blocks (``dsp_low``: one per DSP).
    packed_low : bool
        The low products are packed two per DSP with the neighbouring row's
        (``mults="dsp_packed"``): ``P_low`` comes from the pair's unit.
    dsps : int
        DSP blocks of the row (a packed row counts half of its pair's ``b``).
    latency : int
        Input register + dot products + scale + accumulator.
    """

    low_stages: int
    high_stages: int
    scale_stages: int
    low_width: int
    high_width: int
    dsp_low: bool
    dsp_high: bool
    dsp_scale_low: bool
    dsp_scale_high: bool
    dsps: int
    packed_low: bool = False

    @property
    def dot_stages(self) -> int:
        return max(self.low_stages, self.high_stages)

    @property
    def latency(self) -> int:
        return 1 + self.dot_stages + self.scale_stages + 1


def row_plan(fmt, act_bits: int, mults: str, levels: int) -> RowPlan:
    """The :class:`RowPlan` of a row computing ``fmt`` against ``act_bits``-bit activations
    (weight mode; the activation mode's row is this row with the roles swapped), built
    with the structure ``mults`` (one of :data:`ROW_MULTS`)."""
    if mults not in ROW_MULTS:
        raise ValueError(f"a row's mults must be one of {', '.join(ROW_MULTS)}, not {mults!r}")
    b, k = fmt.bank_size, fmt.k
    has_low, has_high = fmt.has_low_scale, fmt.has_high
    sb = fmt.scale_bits
    dsp_any = mults in ("dsp", "dsp_all", "dsp_packed")
    packed_low = has_low and mults == "dsp_packed"
    # A sum of n products grows by the levels of its adder tree: ceil(log2 n) bits.
    low_width = act_bits + fmt.low_bits + adder_levels(b) if has_low else 0
    high_width = act_bits + fmt.high_bits + adder_levels(k) if has_high else 0
    dsp_low = has_low and mults == "dsp_all"
    dsp_high = has_high and dsp_any
    low_stages = high_stages = 0
    if packed_low:
        # b packed products, then per row a tree of b fields (and b borrow bits).
        low_stages = DSP_STAGES + tree_stages(2 * b, levels)
    elif has_low:
        low_stages = (DSP_STAGES + tree_stages(b, levels) if dsp_low
                      else tree_stages(booth_terms(b, fmt.low_bits, True) + 1, levels))
    if has_high:
        # The gather register, then the products (a DSP's own registers, or Booth rows).
        high_stages = 1 + (DSP_STAGES + tree_stages(k, levels) if dsp_high
                           else tree_stages(booth_terms(k, fmt.high_bits, True) + 1, levels))
    dsp_scale_low = has_low and dsp_any and low_width <= DSP_BITS and sb + 1 <= DSP_BITS
    dsp_scale_high = has_high and dsp_any and high_width <= DSP_BITS and sb + 1 <= DSP_BITS
    groups = [(has_low, dsp_scale_low), (has_high, dsp_scale_high)]
    lut_groups = sum(1 for present, dsp in groups if present and not dsp)
    dsp_groups = sum(1 for present, dsp in groups if present and dsp)
    # Every scale product's terms enter one adder tree: the Booth rows of the LUT products
    # and the DSP outputs (which arrive DSP_STAGES - 1 stages later, so the LUT part is
    # summed first and the DSP outputs join it).
    if dsp_groups and not lut_groups:
        scale_stages = DSP_STAGES + (1 if dsp_groups > 1 else 0)
    elif dsp_groups:
        lut = tree_stages(booth_terms(1, sb, False) + 1, levels)
        scale_stages = max(lut, DSP_STAGES) + 1
    else:
        scale_stages = tree_stages(booth_terms(lut_groups, sb, False) + 1, levels)
    dsps = ((b if dsp_low else b // 2 if packed_low else 0) + (k if dsp_high else 0)
            + dsp_groups)
    return RowPlan(low_stages=low_stages, high_stages=high_stages, scale_stages=scale_stages,
                   low_width=low_width, high_width=high_width, dsp_low=dsp_low,
                   dsp_high=dsp_high, dsp_scale_low=dsp_scale_low,
                   dsp_scale_high=dsp_scale_high, dsps=dsps, packed_low=packed_low)
