"""The link's gateware, where the board tops found it first: it lives in
:mod:`sqhw.link.gateware` (below the simulation engine, which runs it as the simulated
board), and this module re-exports it for :mod:`.boards`, :mod:`.build` and :mod:`.cli`."""

from ..link.gateware import (
    DEFAULT_TIMEOUT_BITS,
    HostLink,
    LinkTop,
    UARTRx,
    UARTTx,
    link_verilog,
)

__all__ = ["UARTRx", "UARTTx", "HostLink", "LinkTop", "link_verilog", "DEFAULT_TIMEOUT_BITS"]
