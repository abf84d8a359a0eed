"""What :class:`~.array.MacArray` and :class:`~.actarray.ActArray` share as components: the
configuration check, the three streams and the status port, and the status bits.

The logic they share (tile buffers, loader, token bookkeeping, result queue) is in
:mod:`.tiles`; this is the component around it.
"""

from amaranth.hdl import Cat, Const, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..format import HWConfig, Status
from .refuse import refused

__all__ = ["TileArray", "weight_layout", "result_layout"]


def weight_layout(cfg: HWConfig) -> data.StructLayout:
    """Payload of the weight stream: one record and ``last``. A raw SQ record (datasheet §4)
    in weight mode; in activation mode a mask word or a dense weight row slice (§10), both
    ``cfg.weight_data_bits`` wide."""
    return data.StructLayout({"data": unsigned(cfg.weight_data_bits), "last": 1})


def result_layout(cfg: HWConfig) -> data.StructLayout:
    """Payload of the result stream: R sums and ``user`` (1 = error, sums are 0)."""
    return data.StructLayout({
        "data": data.ArrayLayout(signed(cfg.acc_bits), cfg.rows),
        "user": 1,
    })


class TileArray(wiring.Component):
    """Base of the two arrays: ports ``w`` (weight records), ``a`` (activation banks, the
    subclass's payload), ``r`` (results) and ``status`` (:class:`~sqhw.format.Status`).

    Subclasses set :attr:`OPERAND` (the mode they build) and :attr:`OTHER` (the class for
    the other mode, named in the error).

    Raises
    ------
    TypeError
        If ``cfg`` is not an :class:`~sqhw.format.HWConfig`.
    ValueError
        If ``cfg.operand`` is not the subclass's mode.
    """

    OPERAND = ""
    OTHER = ""

    def __init__(self, cfg, act_layout):
        if not isinstance(cfg, HWConfig):
            raise refused(self, TypeError(f"cfg must be an HWConfig, not {cfg!r}"))
        if cfg.operand != self.OPERAND:
            raise refused(self, ValueError(
                f"cfg.operand must be {self.OPERAND!r} for {type(self).__name__}, not "
                f"{cfg.operand!r}; use {self.OTHER} in {cfg.operand} mode"))
        self._cfg = cfg
        super().__init__({
            "w": In(stream.Signature(weight_layout(cfg))),
            "a": In(stream.Signature(act_layout(cfg))),
            "r": Out(stream.Signature(result_layout(cfg))),
            "status": Out(len(Status)),
        })

    @property
    def cfg(self) -> HWConfig:
        return self._cfg

    def status_bits(self, m) -> dict:
        """The sticky status bits as signals (named ``err_weight`` …), driving ``status``;
        ``ERR_ACT_CODE`` is a constant 0 in weight mode."""
        bits = {s: Signal(name=s.name.lower()) for s in Status}
        if not self._cfg.is_act_mode:
            bits[Status.ERR_ACT_CODE] = Const(0, 1)
        m.d.comb += self.status.eq(Cat(*(bits[s] for s in Status)))
        return bits

