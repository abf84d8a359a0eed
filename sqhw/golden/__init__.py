"""Bit-exact golden model of the SQ-format hardware, plus the float reference.

Integer semantics are the contract (docs/datasheet.md §6): :func:`hw_matmul` computes exactly
what the RTL computes. Floats appear only at the host boundary (scale choice, de-scaling).
"""

from . import actmode
from .actmode import *  # noqa: F403 -- activation mode, docs/activation-mode.md
from .hwmodel import descale, hw_bank_partials, hw_matmul, matmul, quantize_activation
from .packing import pack, unpack
from .quantize import quantize_weight, random_sqtensor
from .tensor import MalformedSQError, SQTensor

__all__ = [
    "SQTensor", "MalformedSQError",
    "quantize_weight", "random_sqtensor",
    "pack", "unpack",
    "hw_matmul", "hw_bank_partials", "matmul", "quantize_activation", "descale",
    *actmode.__all__,
]
