"""The Verilog top level: :class:`~.array.MacArray` (weight mode) or
:class:`~.actarray.ActArray` (``cfg.operand == "activation"``) with flat AXI4-Stream port
names.

The port names are those of datasheet §5, so a standard AXI4-Stream client (for example
cocotbext-axi's ``AxiStreamSource``/``AxiStreamSink`` with the prefixes ``s_axis_w``,
``s_axis_a`` and ``m_axis_r``) attaches with no adapter.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..format import HWConfig
from .actarray import ActArray
from .array import MacArray
from .refuse import refused

__all__ = ["Top"]


class Top(wiring.Component):
    """The core with the flat port names of datasheet §5 (``clk``/``rst`` are the implicit
    ``sync`` domain's).

    Parameters
    ----------
    cfg : HWConfig
        The configuration.

    Attributes
    ----------
    s_axis_w_tdata : In(cfg.weight_data_bits)
        One weight record (datasheet §4; activation mode: a mask word or a dense weight row
        slice, datasheet §10).
    s_axis_w_tvalid, s_axis_w_tlast : In(1)
    s_axis_w_tready : Out(1)
    s_axis_a_tdata : In(cfg.act_data_bits)
        One activation bank, element ``i`` at bits ``[i·a, (i+1)·a)``; in activation mode
        followed by the token's ``scale_high`` (k > 0) and ``scale_low`` (l > 0) codes of
        the bank, ``sb`` bits each; the padding bits above are ignored.
    s_axis_a_tvalid, s_axis_a_tlast, s_axis_a_tuser : In(1)
    s_axis_a_tready : Out(1)
    m_axis_r_tdata : Out(8·ceil(R·acc_bits/8))
        R results, row ``r`` at bits ``[r·acc, (r+1)·acc)``; padding bits read 0.
    m_axis_r_tvalid, m_axis_r_tlast, m_axis_r_tuser : Out(1)
        ``tlast`` is always 1; ``tuser`` = 1 marks an error result (data 0).
    m_axis_r_tready : In(1)
    status : Out(4)
        Sticky error bits (datasheet §8).

    Raises
    ------
    TypeError
        If ``cfg`` is not an :class:`~sqhw.format.HWConfig`.
    """

    def __init__(self, cfg):
        if not isinstance(cfg, HWConfig):
            raise refused(self, TypeError(f"cfg must be an HWConfig, not {cfg!r}"))
        self._cfg = cfg
        super().__init__({
            "s_axis_w_tdata": In(cfg.weight_data_bits),
            "s_axis_w_tvalid": In(1),
            "s_axis_w_tready": Out(1),
            "s_axis_w_tlast": In(1),
            "s_axis_a_tdata": In(cfg.act_data_bits),
            "s_axis_a_tvalid": In(1),
            "s_axis_a_tready": Out(1),
            "s_axis_a_tlast": In(1),
            "s_axis_a_tuser": In(1),
            "m_axis_r_tdata": Out(cfg.result_data_bits),
            "m_axis_r_tvalid": Out(1),
            "m_axis_r_tready": In(1),
            "m_axis_r_tlast": Out(1),
            "m_axis_r_tuser": Out(1),
            "status": Out(4),
        })

    @property
    def cfg(self) -> HWConfig:
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        core = ActArray(cfg) if cfg.is_act_mode else MacArray(cfg)
        m.submodules.array = core
        b, a = cfg.fmt.bank_size, cfg.act_bits
        if cfg.is_act_mode:
            fmt, pos = cfg.fmt, b * a
            for name, present in (("scale_high", fmt.has_high),
                                  ("scale_low", fmt.has_low_scale)):
                if present:
                    m.d.comb += getattr(core.a.payload, name).eq(
                        self.s_axis_a_tdata[pos:pos + fmt.scale_bits])
                    pos += fmt.scale_bits
        m.d.comb += [
            core.w.payload.data.eq(self.s_axis_w_tdata),
            core.w.payload.last.eq(self.s_axis_w_tlast),
            core.w.valid.eq(self.s_axis_w_tvalid),
            self.s_axis_w_tready.eq(core.w.ready),

            core.a.payload.data.eq(self.s_axis_a_tdata[:b * a]),
            core.a.payload.last.eq(self.s_axis_a_tlast),
            core.a.payload.user.eq(self.s_axis_a_tuser),
            core.a.valid.eq(self.s_axis_a_tvalid),
            self.s_axis_a_tready.eq(core.a.ready),

            self.m_axis_r_tdata.eq(core.r.payload.data.as_value()),
            self.m_axis_r_tvalid.eq(core.r.valid),
            core.r.ready.eq(self.m_axis_r_tready),
            self.m_axis_r_tlast.eq(1),
            self.m_axis_r_tuser.eq(core.r.payload.user),

            self.status.eq(core.status),
        ]
        return m
