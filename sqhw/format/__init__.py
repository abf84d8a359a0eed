"""The SQ-format specification: pure Python, no gateware and no torch.

See ``docs/datasheet.md`` for the meaning of every field.
"""

from .spec import (
    OPERANDS,
    WEIGHT_BITS,
    HWConfig,
    SQFormat,
    accumulator_bound,
    act_accumulator_bound,
    act_min_acc_bits,
    canonical_digest,
    min_acc_bits,
)

__all__ = ["SQFormat", "HWConfig", "accumulator_bound", "min_acc_bits",
           "act_accumulator_bound", "act_min_acc_bits", "canonical_digest",
           "OPERANDS", "WEIGHT_BITS"]
