"""Select & gather: splits one activation bank by the static mask (activation mode).

In activation mode (``docs/activation-mode.md``) the host sends every activation bank in
natural channel order and the weight rows are reordered offline so that, inside a bank, the
k high channels come first. This unit puts the activations in the same order: the k codes
of the high channels on the high lanes and the b-k others on the low lanes, each group in
increasing channel order. The mask is static (loaded once), so one unit serves every row of
the array (its outputs are broadcast).

How it works: ``c[i] = m[0] + … + m[i-1]`` is the exclusive prefix count of the mask (a
Sklansky parallel prefix, shared with :mod:`.unpack`). Channel ``i`` is the ``t``-th high
channel exactly when ``m[i] and c[i] == t``, and the ``u``-th low channel exactly when
``not m[i] and i - c[i] == u``. With exactly k high channels, high lane ``t`` can only hold
channels ``t .. b-k+t`` and low lane ``u`` only channels ``u .. u+k``, so each lane is a
one-hot AND-OR multiplexer over ``b-k+1`` (resp. ``k+1``) candidates, not over all b.
"""

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..format import SQFormat
from .pipe import delay
from .refuse import refused
from .unpack import _or_tree, _prefix_sums, check_stages

__all__ = ["SelectGather", "ref_gather"]


def ref_gather(fmt: SQFormat, act, mask) -> tuple[list[int], list[int], bool, bool]:
    """Pure-Python model of :class:`SelectGather`: ``(high, low, malformed, code_error)``.

    ``act`` is a bank of b codes, ``mask`` b booleans (or an int, bit i = channel i).
    ``high`` has k entries: lane t holds the t-th high channel's code if that channel lies
    in ``t .. b-k+t``, else 0. ``low`` has b-k entries (none when ``low_bits = 0``): lane u
    holds the u-th low channel's code if it lies in ``u .. u+k``, else 0. With a well-formed
    mask every lane is filled; the "else 0" only happens when ``malformed``.
    ``code_error`` is 1 when a high channel's code is outside ``±(2^(h-1) - 1)`` or a low
    channel's outside ``±(2^(l-1) - 1)``.
    """
    b, k = fmt.bank_size, fmt.k
    if isinstance(mask, int):
        mask = [bool(mask >> i & 1) for i in range(b)]
    hi_pos = [i for i in range(b) if mask[i]]
    lo_pos = [i for i in range(b) if not mask[i]]
    high = [0] * k
    for t, i in enumerate(hi_pos[:k]):
        if i <= b - k + t:
            high[t] = act[i]
    low = [0] * (b - k) if fmt.low_bits else []
    for u, i in enumerate(lo_pos[:len(low)]):
        if i <= u + k:
            low[u] = act[i]
    code_error = any(abs(act[i]) > (fmt.high_max if mask[i] else fmt.low_max)
                     for i in range(b))
    return high, low, len(hi_pos) != k, code_error


class SelectGather(wiring.Component):
    """Splits an activation bank into its high and low lanes by a static mask.

    Its outputs are valid ``stages`` cycles after its inputs (0: combinational; the
    consumer registers them in its pipeline).

    Parameters
    ----------
    fmt : SQFormat
        The activation format: bank size ``b``, high channels per bank ``k``, and the
        element precisions ``high_bits`` / ``low_bits`` used by ``code_error``.
    act_bits : int
        Width of an incoming code field, 2..8; at least ``fmt.high_bits`` when k > 0 and
        at least ``fmt.low_bits``.
    stages : int
        Register stages in the mask's prefix count (0 .. ``ceil(log2 b)``; the codes are
        delayed beside it). The core uses :func:`sqhw.format.pipeline.prefix_stages`.

    Attributes
    ----------
    act : In(ArrayLayout(signed(act_bits), b))
        One activation bank in natural channel order.
    mask : In(b)
        The bank's static mask: bit ``i`` is 1 for a high-precision channel.
    high : Out(ArrayLayout(signed(act_bits), k))
        Present only when k > 0. Lane ``t`` is the code of the ``t``-th high channel
        (increasing channel order).
    low : Out(ArrayLayout(signed(act_bits), b-k))
        Present only when ``low_bits > 0``. Lane ``u`` is the code of the ``u``-th low
        channel (increasing channel order).
    malformed : Out(1)
        1 when the mask does not hold exactly k ones. The lanes then hold what
        :func:`ref_gather` says (some may read 0); they must not be used.
    code_error : Out(1)
        1 when a high channel's code is outside ``±(2^(h-1) - 1)`` or a low channel's outside
        ``±(2^(l-1) - 1)`` (0 when ``l = 0``): the consumer may then use narrower multipliers
        (``h`` bits for high lanes, ``l`` bits for low lanes) and report the error instead.

    Raises
    ------
    TypeError
        If ``fmt`` is not an :class:`~sqhw.format.SQFormat` or ``act_bits`` not an integer.
    ValueError
        If ``act_bits`` or ``stages`` is out of range.
    """

    def __init__(self, fmt, act_bits=8, stages=0):
        try:
            if not isinstance(fmt, SQFormat):
                raise TypeError(f"fmt must be an SQFormat, not {fmt!r}")
            if isinstance(act_bits, bool) or not isinstance(act_bits, int):
                raise TypeError(f"act_bits must be an integer, not {act_bits!r}")
            need = max(fmt.high_bits if fmt.k else 0, fmt.low_bits, 2)
            if not need <= act_bits <= 8:
                raise ValueError(f"act_bits must be in {need}..8 for {fmt.name} "
                                 f"(it must hold a {'high' if fmt.k else 'low'} code), "
                                 f"not {act_bits}")
            check_stages(fmt.bank_size, stages)
        except (TypeError, ValueError) as e:
            refused(self, e)
            raise
        self._fmt = fmt
        self._act_bits = act_bits
        self._stages = stages
        b, k = fmt.bank_size, fmt.k
        members = {
            "act": In(data.ArrayLayout(signed(act_bits), b)),
            "mask": In(b),
            "malformed": Out(1),
            "code_error": Out(1),
        }
        if k:
            members["high"] = Out(data.ArrayLayout(signed(act_bits), k))
        if fmt.low_bits:
            members["low"] = Out(data.ArrayLayout(signed(act_bits), b - k))
        super().__init__(members)

    @property
    def fmt(self) -> SQFormat:
        return self._fmt

    @property
    def act_bits(self) -> int:
        return self._act_bits

    @property
    def stages(self) -> int:
        return self._stages

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt
        b, k = fmt.bank_size, fmt.k
        S = self._stages
        incl = _prefix_sums(m, [self.mask[i] for i in range(b)], S)
        act_s = delay(m, self.act, S, "act_q")
        mask_s = delay(m, self.mask, S, "mask_q")
        act = [act_s[i] for i in range(b)]
        marks = [mask_s[i] for i in range(b)]

        def excl(i):
            """Exclusive prefix count at channel i (high channels before it)."""
            return 0 if i == 0 else incl[i - 1]

        m.d.comb += self.malformed.eq(incl[-1] != k)

        # High lane t: channel i in t .. b-k+t with m[i] and c[i] == t (one-hot).
        for t in range(k):
            terms = []
            for i in range(t, b - k + t + 1):
                hit = marks[i] if i == 0 else marks[i] & (excl(i) == t)
                terms.append(Mux(hit, act[i], 0))
            m.d.comb += self.high[t].eq(_or_tree(terms))

        # Low lane u: channel i in u .. u+k with not m[i] and c[i] == i - u (one-hot).
        if fmt.low_bits:
            for u in range(b - k):
                terms = []
                for i in range(u, u + k + 1):
                    hit = ~marks[i] if i == u == 0 else ~marks[i] & (excl(i) == i - u)
                    terms.append(Mux(hit, act[i], 0))
                m.d.comb += self.low[u].eq(_or_tree(terms))

        # Code ranges, per channel by its group (independent of the lanes).
        bad = []
        for i in range(b):
            hi_bad = (act[i] > fmt.high_max) | (act[i] < -fmt.high_max)
            lo_bad = (act[i] > fmt.low_max) | (act[i] < -fmt.low_max)
            bad.append(Mux(marks[i], hi_bad, lo_bad))
        m.d.comb += self.code_error.eq(_or_tree(bad))
        return m
