"""Bit-exact golden model of the SQ-format hardware, plus the float reference.

Integer semantics are the contract (docs/datasheet.md §6): :func:`hw_matmul` computes exactly
what the RTL computes. Floats appear only at the host boundary (scale choice, de-scaling).

Both modes (SQ on the weights; SQ on the activations with a static mask,
``docs/activation-mode.md``) split along the same seams:

- :mod:`.tensor`: the containers (:class:`SQTensor`; :class:`SQActivation`,
  :class:`DenseWeight`) and their validation;
- :mod:`.quantize`: the quantizers (one group quantizer shared by both modes);
- :mod:`.hwmodel`: the integer semantics (``hw_matmul``, ``hw_matmul_act``), the host
  de-scaling, the float references and the activation mode's error bound;
- :mod:`.ptq`: post-training quantization of the weights and the activation mode's
  calibration (:func:`calibrate_activation_mask`);
- :mod:`.packing`: the streams the hardware takes (the weight-mode memory image; the
  activation mode's weight and token streams).
"""

from .hwmodel import (
    act_accumulator_bound,
    act_element_error,
    act_error_bound,
    act_min_acc_bits,
    descale,
    descale_act,
    hw_bank_partials,
    hw_bank_partials_act,
    hw_matmul,
    hw_matmul_act,
    matmul,
    matmul_act,
    matmul_act_dynamic,
)
from .packing import pack, unpack
from .ptq import ActCalibration, activation_importance, calibrate_activation_mask
from .quantize import (
    dynamic_activation_mask,
    quantize_activation,
    quantize_activation_sq,
    quantize_weight,
    quantize_weight_dense,
    random_sqtensor,
)
from .tensor import (
    DenseWeight,
    MalformedSQError,
    SQActivation,
    SQTensor,
    check_activation_mask,
    reorder_permutation,
)

__all__ = [
    "SQTensor", "MalformedSQError",
    "quantize_weight", "random_sqtensor",
    "pack", "unpack",
    "hw_matmul", "hw_bank_partials", "matmul", "quantize_activation", "descale",
    # activation mode (docs/activation-mode.md)
    "ActCalibration", "SQActivation", "DenseWeight",
    "activation_importance", "calibrate_activation_mask", "check_activation_mask",
    "reorder_permutation",
    "quantize_activation_sq", "quantize_weight_dense",
    "act_accumulator_bound", "act_min_acc_bits",
    "hw_matmul_act", "hw_bank_partials_act", "descale_act", "matmul_act",
    "act_element_error", "act_error_bound",
    "dynamic_activation_mask", "matmul_act_dynamic",
]
