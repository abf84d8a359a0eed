"""Former home of the activation mode; it now lives along the seams of the weight mode.

Nothing is defined here: :mod:`.tensor` holds the containers and the mask checks,
:mod:`.quantize` the quantizers, :mod:`.hwmodel` the integer semantics, bounds and
references, :mod:`.ptq` the calibration and :mod:`.packing` the streams. A name asked of
this module is looked up there, only for importers that still spell
``sqhw.golden.actmode``; import from :mod:`sqhw.golden` instead. Remove this module when
none is left.
"""

from . import hwmodel, packing, ptq, quantize, tensor

_HOMES = (tensor, quantize, hwmodel, ptq, packing)


def __getattr__(name):
    for module in _HOMES:
        if name in module.__all__:
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
