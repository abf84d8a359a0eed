"""Verilog emission of :class:`~.top.Top`: deterministic, with the datasheet's port names."""

from amaranth.back import verilog

from ..format import HWConfig
from .top import Top

__all__ = ["verilog_text", "TOP_NAME"]

#: Module name of the emitted top level.
TOP_NAME = "sqhw_top"


def verilog_text(cfg: HWConfig) -> str:
    """The Verilog of the core for ``cfg``: module ``sqhw_top`` with ports ``clk``, ``rst``
    and the flat AXI4-Stream names of datasheet §5.

    No source locations are emitted (``emit_src=False``), so the text depends only on
    ``cfg`` and the toolchain version: regeneration is byte-identical.

    Raises
    ------
    TypeError
        If ``cfg`` is not an :class:`~sqhw.format.HWConfig`.
    """
    if not isinstance(cfg, HWConfig):
        raise TypeError(f"cfg must be an HWConfig, not {cfg!r}")
    top = Top(cfg)
    ports = []
    for _path, _member, value in top.signature.flatten(top):
        ports.append(value)
    return verilog.convert(top, name=TOP_NAME, emit_src=False, ports=ports)
