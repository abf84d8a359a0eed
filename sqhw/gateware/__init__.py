"""Amaranth 0.5 gateware of the SQ-format MAC array (``wiring.Component``s only).

- :mod:`.unpack`: :class:`~.unpack.Unpacker`, the vmask position decoder;
- :mod:`.row`: :class:`~.row.SQRow`, one output column's processing element;
- :mod:`.array`: :class:`~.array.MacArray`, R rows, the weight store and the tile protocol;
- :mod:`.top`: :class:`~.top.Top`, flat AXI4-Stream port names (datasheet §5);
- :mod:`.emit`: :func:`~.emit.verilog_text`.
"""

from .array import MacArray
from .row import SQRow
from .top import Top
from .unpack import Unpacker

__all__ = ["Unpacker", "SQRow", "MacArray", "Top"]
