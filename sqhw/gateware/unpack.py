"""The SQ unpacker: finds the k vmask positions of a bank (datasheet §3, §6).

There is exactly one unpacker in the core, on the weight-load path (:mod:`.array`): each
record is decoded once, when it is loaded, and the decoded positions are stored next to the
weights. So the unpacker is built for clarity and a short logic depth rather than for area.

How it works: ``m[i]`` is 1 where ``low[i]`` is the vmask. ``c[i] = m[0] + … + m[i-1]`` is
the exclusive prefix count (a Sklansky parallel prefix, ``log2(b)`` adder levels). Position
``i`` is the ``t``-th vmask exactly when ``m[i] and c[i] == t``; lane ``t`` can only hold
positions ``t .. b-k+t``, so it one-hot selects among those ``b-k+1`` candidates and emits
the *relative* index ``rel[t] = idx[t] - t``. In the core the prefix network is pipelined
(:func:`sqhw.format.pipeline.prefix_stages` register stages, two adder levels each), so the
decoder never limits the clock; the combinational form (``stages = 0``) is the one proved.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..format import SQFormat
from ..format.pipeline import adder_levels
from .pipe import delay
from .refuse import refused

__all__ = ["Unpacker", "rel_width", "ref_unpack"]


def rel_width(fmt: SQFormat) -> int:
    """Width of a relative index ``rel[t]`` in ``0 .. b-k``: ``ceil(log2(b-k+1))``, min 1."""
    return max(1, (fmt.bank_size - fmt.k).bit_length())


def ref_unpack(fmt: SQFormat, low) -> tuple[list[int], bool]:
    """Pure-Python model of :class:`Unpacker`: ``(rel, malformed)`` for a bank of low codes.

    ``rel`` has k entries; the lanes past the last vmask (a malformed bank) read 0.
    """
    pos = [i for i, code in enumerate(low) if code == fmt.vmask]
    rel = [0] * fmt.k
    for t, i in enumerate(pos[:fmt.k]):
        if i - t <= fmt.bank_size - fmt.k:
            rel[t] = i - t
    return rel, len(pos) != fmt.k


def _prefix_sums(m, bits, stages: int = 0, name: str = "pre"):
    """Inclusive prefix sums of a list of 1-bit values: a Sklansky network, built level by
    level (``ceil(log2 n)`` adder levels), with ``stages`` register stages spread evenly
    over the levels, the last one after the last level.

    Returns the ``n`` sums, ``stages`` cycles after ``bits``. Every sum is a named signal,
    so that the netlist (and the simulator) share it rather than re-expanding it.
    """
    n = len(bits)
    levels = adder_levels(n)
    check_stages(n, stages)
    reg_after = {-(-(s + 1) * levels // stages) for s in range(stages)}

    def most(i, d):
        """The largest sum at ``i`` after level ``d``: it counts the bits from the start of
        its block of ``2^(d+1)`` up to ``i`` (all up to ``i`` after the last level)."""
        return (i & ((2 << d) - 1)) + 1

    vals = [bit.as_unsigned() for bit in bits]
    for d in range(levels):
        nxt = []
        for i, v in enumerate(vals):
            if i >> d & 1:
                s = Signal(range(most(i, d) + 1), name=f"{name}{d}_{i}")
                m.d.comb += s.eq(v + vals[(i >> d << d) - 1])
                v = s
            nxt.append(v)
        vals = nxt
        if d + 1 in reg_after:
            regs = [Signal(range(most(i, d) + 1), name=f"{name}{d}_{i}_q", reset_less=True)
                    for i in range(n)]
            m.d.sync += [r.eq(v) for r, v in zip(regs, vals, strict=True)]
            vals = regs
    return vals


def check_stages(bank_size: int, stages) -> None:
    """Raise ValueError unless ``stages`` is a register count a prefix network over
    ``bank_size`` inputs can take: 0 .. ``ceil(log2 b)``."""
    levels = adder_levels(bank_size)
    if isinstance(stages, bool) or not isinstance(stages, int) or not 0 <= stages <= levels:
        raise ValueError(f"stages must be in 0..{levels} for bank size {bank_size}, "
                         f"not {stages!r}")


def _or_tree(values):
    values = list(values)
    while len(values) > 1:
        nxt = [values[i] | values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0] if values else 0


class Unpacker(wiring.Component):
    """Decodes the vmask positions of one bank, in ``stages`` clock cycles.

    Parameters
    ----------
    fmt : SQFormat
        The weight format: bank size ``b``, high elements per bank ``k``, low-code width.
    stages : int
        Register stages in the prefix network (0 = combinational, at most
        ``ceil(log2 b)``): every output is valid ``stages`` cycles after its ``low``. The
        core uses :func:`sqhw.format.pipeline.prefix_stages`.

    Attributes
    ----------
    low : In(ArrayLayout(signed(fmt.low_width), b))
        The bank's low codes, two's complement.
    mask : Out(b)
        Bit ``i`` is 1 where ``low[i]`` is the vmask code.
    rel : Out(ArrayLayout(unsigned(rel_width(fmt)), k))
        Present only when k > 0. ``rel[t] = idx[t] - t`` where ``idx[0] < idx[1] < …`` are
        the vmask positions. Lanes with no matching position (a malformed bank) read 0.
    malformed : Out(1)
        1 when the number of vmask codes is not exactly k.

    Raises
    ------
    TypeError
        If ``fmt`` is not an :class:`~sqhw.format.SQFormat`.
    ValueError
        If ``stages`` is not in ``0 .. ceil(log2 b)``.
    """

    def __init__(self, fmt, stages: int = 0):
        if not isinstance(fmt, SQFormat):
            raise refused(self, TypeError(f"fmt must be an SQFormat, not {fmt!r}"))
        try:
            check_stages(fmt.bank_size, stages)
        except ValueError as e:
            refused(self, e)
            raise
        self._fmt = fmt
        self._stages = stages
        b, k = fmt.bank_size, fmt.k
        members = {
            "low": In(data.ArrayLayout(signed(fmt.low_width), b)),
            "mask": Out(b),
            "malformed": Out(1),
        }
        if k:
            members["rel"] = Out(data.ArrayLayout(unsigned(rel_width(fmt)), k))
        super().__init__(members)

    @property
    def fmt(self) -> SQFormat:
        return self._fmt

    @property
    def stages(self) -> int:
        return self._stages

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt
        b, k = fmt.bank_size, fmt.k
        span = b - k  # lane t holds a position in t .. t + span

        mask = Signal(b)
        m.d.comb += mask.eq(Cat(*(self.low[i] == fmt.vmask for i in range(b))))
        incl = _prefix_sums(m, [mask[i] for i in range(b)], self._stages)
        m.d.comb += self.mask.eq(delay(m, mask, self._stages, "mask_q"))
        marks = [self.mask[i] for i in range(b)]
        total = incl[-1]
        m.d.comb += self.malformed.eq(total != k)

        for t in range(k):
            terms = []
            for i in range(t, t + span + 1):
                # Exclusive prefix count at i is incl[i-1] (0 at i = 0, which needs t = 0).
                hit = marks[i] if i == 0 else marks[i] & (incl[i - 1] == t)
                if i - t:
                    terms.append(Mux(hit, i - t, 0))
            m.d.comb += self.rel[t].eq(_or_tree(terms))
        return m
