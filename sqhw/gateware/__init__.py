"""Amaranth 0.5 gateware of the SQ-format MAC array (``wiring.Component``s only).

- :mod:`.unpack`: :class:`~.unpack.Unpacker`, the vmask position decoder;
- :mod:`.row`: :class:`~.row.SQRow`, one output column's processing element;
- :mod:`.array`: :class:`~.array.MacArray`, R rows, the weight store and the tile protocol;
- :mod:`.tiles`: :class:`~.tiles.TileBuffers`, the tile protocol both arrays share, and
  :mod:`.skeleton`: :class:`~.skeleton.TileArray`, their common ports and status bits;
- :mod:`.gather`, :mod:`.actrow`, :mod:`.actarray`: the activation mode
  (:class:`~.actarray.ActArray`, datasheet §10);
- :mod:`.top`: :class:`~.top.Top`, flat AXI4-Stream port names (datasheet §5);
- :mod:`.emit`: :func:`~.emit.verilog_text`.
"""

from .actarray import ActArray
from .array import MacArray
from .row import SQRow
from .top import Top
from .unpack import Unpacker

__all__ = ["Unpacker", "SQRow", "MacArray", "ActArray", "Top"]
