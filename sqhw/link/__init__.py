"""The UART host link: the protocol definitions (:mod:`.protocol`: frames, CRC, job
planner, no I/O), shared by the board gateware, the host driver (:mod:`sqhw.host`) and the
testbenches, and the link's gateware (:mod:`.gateware`: UART, frame checker, and
:class:`~.gateware.LinkTop`, the core behind the link, which the board tops of
:mod:`sqhw.fpga.boards` and the simulated board of :mod:`sqhw.sim.board` both use).

Importing this package loads the protocol only; import :mod:`.gateware` for the rest."""

from . import protocol

__all__ = ["protocol"]
