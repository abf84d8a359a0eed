"""Former home of the activation mode; it now lives along the seams of the weight mode.

Nothing is defined here. The names are re-exported from :mod:`.tensor` (containers, mask),
:mod:`.quantize` (quantizers), :mod:`.hwmodel` (integer semantics, bounds, references) and
:mod:`.ptq` (calibration) only for importers that still spell ``sqhw.golden.actmode``;
import them from :mod:`sqhw.golden` instead. Remove this module when none is left.
"""

from .hwmodel import (  # noqa: F401
    act_accumulator_bound,
    act_element_error,
    act_error_bound,
    act_min_acc_bits,
    descale_act,
    hw_bank_partials_act,
    hw_matmul_act,
    matmul_act,
    matmul_act_dynamic,
)
from .ptq import ActCalibration, activation_importance, calibrate_activation_mask  # noqa: F401
from .quantize import (  # noqa: F401
    dynamic_activation_mask,
    quantize_activation_sq,
    quantize_weight_dense,
)
from .tensor import (  # noqa: F401
    DenseWeight,
    SQActivation,
    check_activation_mask,
    reorder_permutation,
)

__all__ = [
    "ActCalibration", "SQActivation", "DenseWeight",
    "activation_importance", "calibrate_activation_mask", "check_activation_mask",
    "reorder_permutation",
    "quantize_activation_sq", "quantize_weight_dense",
    "act_accumulator_bound", "act_min_acc_bits",
    "hw_matmul_act", "hw_bank_partials_act", "descale_act", "matmul_act",
    "act_element_error", "act_error_bound",
    "dynamic_activation_mask", "matmul_act_dynamic",
]
