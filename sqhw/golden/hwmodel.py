"""The bit-exact integer model of the hardware, and the float reference around it."""

import torch

from ..format import accumulator_bound
from .tensor import SQTensor

__all__ = ["hw_matmul", "hw_bank_partials", "matmul", "quantize_activation", "descale"]

_EXACT_F64 = 1 << 53


def _check_act(x_int: torch.Tensor, sq: SQTensor, act_bits: int) -> torch.Tensor:
    if not isinstance(x_int, torch.Tensor) or x_int.dim() != 2:
        raise ValueError(f"x_int must be a 2-D integer tensor [M, K], "
                         f"not {getattr(x_int, 'shape', x_int)!r}")
    if x_int.dtype.is_floating_point or x_int.dtype == torch.bool:
        raise ValueError(f"x_int must hold integers, not {x_int.dtype}; quantize it first "
                         f"(sqhw.golden.quantize_activation)")
    if x_int.shape[1] != sq.shape[0]:
        raise ValueError(f"x_int has K={x_int.shape[1]} but the weight has K={sq.shape[0]}")
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    x = x_int.to(torch.int64)
    if x.numel() and (x.min() < lo or x.max() > hi):
        raise ValueError(f"x_int codes must be in {lo}..{hi} for act_bits={act_bits}")
    return x


def hw_matmul(x_int: torch.Tensor, sq: SQTensor, act_bits: int = 8,
              acc_bits: int | None = None) -> torch.Tensor:
    """Exactly what the hardware computes: ``y[m, n] = Σ_j (scale_low·P_low + scale_high·P_high)``
    (datasheet §6), as an int64 tensor [M, N].

    Integer arithmetic is exact, so the banked sum equals one product with the integer
    effective weight ``scale_low·low + scale_high·high`` (:meth:`SQTensor.effective_weight`);
    that product is done in float64, which is exact while the accumulator bound is below
    2^53 (checked; int64 otherwise). The effective weight is prepared once per SQTensor, as
    a hardware weight load is, and rebuilt if any code tensor is edited.
    :func:`hw_bank_partials` gives the per-bank terms.

    Parameters
    ----------
    acc_bits : int, optional
        If given, the accumulator width: raises if K could overflow it.

    Raises
    ------
    MalformedSQError
        If ``sq`` is malformed.
    ValueError
        On a bad activation tensor, or a K that could overflow ``acc_bits``.
    """
    x = _check_act(x_int, sq, act_bits)
    bound = accumulator_bound(sq.fmt, act_bits, sq.shape[0])
    if acc_bits is not None and bound > (1 << (acc_bits - 1)) - 1:
        raise ValueError(f"K={sq.shape[0]} can overflow a {acc_bits}-bit accumulator")
    if bound < _EXACT_F64:
        w = sq.effective_weight_f64()       # validates; cached while the codes are unchanged
        return torch.round(x.to(torch.float64) @ w).to(torch.int64)
    sq.validate()
    return x @ sq.effective_weight()


def hw_bank_partials(x_int: torch.Tensor, sq: SQTensor,
                     act_bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bank integer partial sums ``(P_low, P_high)``, each int64 [M, K/b, N].

    This is the hardware's datapath spelled out bank by bank (the vmask positions gather
    the activations of the high path).
    """
    sq.validate()
    x = _check_act(x_int, sq, act_bits)
    M = x.shape[0]
    b, nb, N = sq.fmt.bank_size, sq.n_banks, sq.shape[1]
    xb = x.reshape(M, nb, b)
    p_low = torch.einsum("mji,jin->mjn", xb, sq.low_values().reshape(nb, b, N))
    p_high = torch.einsum("mji,jin->mjn", xb, sq.high_dense().reshape(nb, b, N))
    return p_low, p_high


def quantize_activation(x: torch.Tensor, act_bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Host-side dynamic symmetric per-token quantization.

    Returns ``(x_int int32 [M, K], scale float32 [M])`` with ``x ≈ x_int · scale[:, None]``
    and codes in ``±(2^(a-1) - 1)``. An all-zero token gets scale 1 and codes 0.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.dtype.is_floating_point:
        raise ValueError("x must be a 2-D float tensor [M, K]")
    if not torch.isfinite(x).all():
        raise ValueError("x has non-finite values")
    qmax = (1 << (act_bits - 1)) - 1
    amax = x.detach().abs().amax(dim=1).to(torch.float64)
    scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    x_int = torch.round(x.to(torch.float64) / scale[:, None]).clamp(-qmax, qmax)
    return x_int.to(torch.int32), scale.to(torch.float32)


def descale(acc: torch.Tensor, x_scale: torch.Tensor, sq: SQTensor) -> torch.Tensor:
    """Host de-scaling of the hardware's integers: ``acc · x_scale[m] · col_scale[n]``."""
    y = acc.to(torch.float64) * x_scale.to(torch.float64)[:, None]
    return (y * sq.col_scale.to(torch.float64)[None, :]).to(torch.float32)


def matmul(x: torch.Tensor, sq: SQTensor) -> torch.Tensor:
    """Float reference: ``x @ sq.dequantize()`` in float32."""
    return x.to(torch.float32) @ sq.dequantize()
