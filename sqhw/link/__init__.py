"""The UART host link: protocol definitions (frames, CRC, job planner) without gateware and
without I/O, shared by the board gateware (:mod:`sqhw.fpga.link`), the host driver
(:mod:`sqhw.host`) and the testbenches. See :mod:`sqhw.link.protocol`."""

from . import protocol

__all__ = ["protocol"]
