"""Activation-mode processing element: the weight-mode row with the operands' roles swapped.

In activation mode (``docs/activation-mode.md``) the SQ operand is the activation bank, split
by the static mask into k high lanes (``h`` bits) and ``b-k`` low lanes (``l`` bits) by the
shared :class:`~.gather.SelectGather`, and the dense operand is the column's weight row
(``b`` codes of ``weight_bits``), stored reordered so that the bank's high channels come
first. The bank's arithmetic (§4 of that page)::

    P_high = Σ_t high[t] · w[t]          P_low = Σ_u low[u] · w[k + u]
    partial = scale_high · P_high + scale_low · P_low

is exactly what :class:`~.row.SQRow` computes for a weight word whose high values are the
high lanes with every ``rel`` 0 (lane t reads position t) and whose low codes are 0 at
positions ``0..k-1`` and the low lanes at ``k..b-1``, with the weight row in the role of
the activation bank. So this component *is* an ``SQRow`` (same product trees, same
pipeline, same accumulator) fed that word: the zero ``rel`` and the k zero low codes
are constants, which synthesis folds away (no gather multiplexers, no products for them).
"""

from amaranth.hdl import Const, Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..format import HWConfig
from .refuse import refused
from .row import SQRow

__all__ = ["ActRow"]


class ActRow(wiring.Component):
    """One output column of the activation mode (``W(INT4|INT8)·A(SQ)``).

    Parameters
    ----------
    cfg : HWConfig
        An activation-mode configuration (``operand = "activation"``): the activations'
        format, ``weight_bits``, ``k_max``, ``acc_bits``, ``mults`` and ``tree_levels``. The
        row is the weight-mode row of :attr:`~sqhw.format.HWConfig.swapped_row`.

    Attributes
    ----------
    valid, first, last : In(1)
        As :class:`~.row.SQRow`.
    high : In(ArrayLayout(signed(h), k))
        The gathered high lanes (k > 0 only).
    low : In(ArrayLayout(signed(l), b-k))
        The gathered low lanes (``low_bits > 0`` only).
    scale_high, scale_low : In(sb)
        The token's scale codes of this bank (when the group exists).
    w : In(ArrayLayout(signed(weight_bits), b))
        The column's reordered weight row of this bank (high channels first).
    o_valid : Out(1)
    result : Out(signed(acc_bits))
        The token sum, ``cfg.acc_bits`` wide.

    Latency: :attr:`latency` cycles, as the inner ``SQRow``.
    """

    def __init__(self, cfg: HWConfig):
        if not isinstance(cfg, HWConfig):
            raise refused(self, TypeError(f"cfg must be an HWConfig, not {cfg!r}"))
        if not cfg.is_act_mode:
            raise refused(self, ValueError("ActRow needs an activation-mode configuration "
                                           "(operand 'activation'), not weight mode"))
        self._cfg = cfg.swapped_row
        fmt, weight_bits = cfg.fmt, cfg.weight_bits
        b, k = fmt.bank_size, fmt.k
        ports = {"valid": In(1), "first": In(1), "last": In(1)}
        if fmt.has_high:
            ports["high"] = In(data.ArrayLayout(signed(fmt.high_bits), k))
            ports["scale_high"] = In(fmt.scale_bits)
        if fmt.has_low_scale:
            ports["low"] = In(data.ArrayLayout(signed(fmt.low_bits), b - k))
            ports["scale_low"] = In(fmt.scale_bits)
        ports["w"] = In(data.ArrayLayout(signed(weight_bits), b))
        ports["o_valid"] = Out(1)
        ports["result"] = Out(signed(self._cfg.acc_bits))
        super().__init__(ports)

    @property
    def cfg(self) -> HWConfig:
        """The inner row's configuration (``cfg.swapped_row``)."""
        return self._cfg

    @property
    def latency(self) -> int:
        return self._cfg.row_latency

    def elaborate(self, platform):
        m = Module()
        fmt = self._cfg.fmt
        b, k = fmt.bank_size, fmt.k
        m.submodules.row = row = SQRow(self._cfg)
        m.d.comb += [row.valid.eq(self.valid), row.first.eq(self.first),
                     row.last.eq(self.last), row.act.eq(self.w),
                     self.o_valid.eq(row.o_valid), self.result.eq(row.result)]
        if fmt.has_high:
            m.d.comb += row.w.scale_high.eq(self.scale_high)
            for t in range(k):
                m.d.comb += [row.w.high[t].eq(self.high[t]), row.w.rel[t].eq(Const(0))]
        if fmt.has_low_scale:
            m.d.comb += row.w.scale_low.eq(self.scale_low)
            for i in range(b):
                m.d.comb += row.w.low[i].eq(self.low[i - k] if i >= k else Const(0))
        return m
