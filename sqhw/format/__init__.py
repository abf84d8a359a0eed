"""The SQ-format specification: pure Python, no gateware and no torch.

See ``docs/datasheet.md`` for the meaning of every field.
"""

from .spec import HWConfig, SQFormat, accumulator_bound, canonical_digest, min_acc_bits

__all__ = ["SQFormat", "HWConfig", "accumulator_bound", "min_acc_bits", "canonical_digest"]
