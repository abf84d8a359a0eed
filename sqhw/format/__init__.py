"""The SQ-format specification: pure Python, no gateware and no torch.

See ``docs/datasheet.md`` for the meaning of every field.
"""

from .pipeline import MULTS, RowPlan, row_plan
from .spec import (
    OPERANDS,
    TREE_LEVELS,
    WEIGHT_BITS,
    HWConfig,
    SQFormat,
    accumulator_bound,
    act_accumulator_bound,
    act_min_acc_bits,
    canonical_digest,
    min_acc_bits,
)
from .status import Status

__all__ = ["SQFormat", "HWConfig", "accumulator_bound", "min_acc_bits",
           "act_accumulator_bound", "act_min_acc_bits", "canonical_digest",
           "OPERANDS", "WEIGHT_BITS", "MULTS", "TREE_LEVELS", "RowPlan", "row_plan", "Status"]
