"""The bit-exact integer model of the hardware, and the float reference around it.

Weight mode: :func:`hw_matmul` is exactly what the hardware computes, :func:`hw_bank_partials`
the same datapath bank by bank, :func:`descale` the host de-scaling and :func:`matmul` the
float reference. Activation mode (``docs/activation-mode.md``): :func:`hw_matmul_act`,
:func:`hw_bank_partials_act` (select & gather, reordered weights), :func:`descale_act`,
:func:`matmul_act`, the guaranteed distance between the two (:func:`act_error_bound`) and
the dynamic top-k reference :func:`matmul_act_dynamic` (no hardware computes it).
"""

import torch

from ..format import (
    HWConfig,
    SQFormat,
    accumulator_bound,
    act_accumulator_bound,
    act_min_acc_bits,
)
from .quantize import dynamic_activation_mask, quantize_activation_sq
from .tensor import DenseWeight, SQActivation, SQTensor, reorder_permutation

__all__ = ["hw_matmul", "hw_bank_partials", "matmul", "descale",
           "act_accumulator_bound", "act_min_acc_bits",
           "hw_matmul_act", "hw_bank_partials_act", "descale_act", "matmul_act",
           "act_element_error", "act_error_bound", "matmul_act_dynamic"]

# act_accumulator_bound / act_min_acc_bits live in sqhw.format (HWConfig checks them); they
# are re-exported here, next to the model they bound.

#: Below this accumulator bound a float64 product of integers is exact (both modes).
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


def _from_config(cfg: HWConfig, act_mode: bool, fmt: SQFormat, K: int, **given) -> None:
    """Check that ``cfg`` is the configuration of these operands (its mode, its format, a K
    it can take), and that none of its fields was also ``given`` one by one."""
    if not isinstance(cfg, HWConfig):
        raise TypeError(f"cfg must be an HWConfig, not {cfg!r}")
    both = [name for name, value in given.items() if value is not None]
    if both:
        raise TypeError(f"give either cfg or {', '.join(both)}, not both")
    if cfg.is_act_mode != act_mode:
        mode = "an activation" if act_mode else "a weight"
        raise ValueError(f"cfg is not {mode}-mode configuration")
    if cfg.fmt != fmt:
        raise ValueError(f"the SQ operand is in {fmt.name} ({fmt}), but cfg is for "
                         f"{cfg.fmt.name} ({cfg.fmt})")
    if K > cfg.k_max:
        raise ValueError(f"K={K} is larger than cfg.k_max {cfg.k_max}")


def hw_matmul(x_int: torch.Tensor, sq: SQTensor, act_bits: int | None = None,
              acc_bits: int | None = None, *, cfg: HWConfig | None = None) -> torch.Tensor:
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
    act_bits : int, optional
        The activation width (8 by default).
    acc_bits : int, optional
        If given, the accumulator width: raises if K could overflow it.
    cfg : HWConfig, optional
        The hardware configuration, instead of ``act_bits`` and ``acc_bits``: its widths are
        used, and it must be a weight-mode configuration of ``sq.fmt`` with ``K <= k_max``.

    Raises
    ------
    MalformedSQError
        If ``sq`` is malformed.
    ValueError
        On a bad activation tensor, a K that could overflow ``acc_bits``, or a ``cfg`` that
        does not match ``sq``.
    TypeError
        If ``cfg`` is given together with ``act_bits`` or ``acc_bits``.
    """
    if cfg is not None:
        _from_config(cfg, False, sq.fmt, sq.shape[0], act_bits=act_bits, acc_bits=acc_bits)
        act_bits, acc_bits = cfg.act_bits, cfg.acc_bits
    act_bits = 8 if act_bits is None else act_bits
    x = _check_act(x_int, sq, act_bits)
    bound = accumulator_bound(sq.fmt, act_bits, sq.shape[0])
    if acc_bits is not None and bound > (1 << (acc_bits - 1)) - 1:
        raise ValueError(f"K={sq.shape[0]} can overflow a {acc_bits}-bit accumulator")
    if bound < _EXACT_F64:
        w = sq.effective_weight_f64()       # validates; cached while the codes are unchanged
        return torch.round(x.to(torch.float64) @ w).to(torch.int64)
    sq.validate()
    return x @ sq.effective_weight()


def hw_bank_partials(x_int: torch.Tensor, sq: SQTensor, act_bits: int | None = None, *,
                     cfg: HWConfig | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bank integer partial sums ``(P_low, P_high)``, each int64 [M, K/b, N].

    This is the hardware's datapath spelled out bank by bank (the vmask positions gather
    the activations of the high path). ``act_bits`` (8 by default) or ``cfg`` as for
    :func:`hw_matmul`.
    """
    if cfg is not None:
        _from_config(cfg, False, sq.fmt, sq.shape[0], act_bits=act_bits)
        act_bits = cfg.act_bits
    act_bits = 8 if act_bits is None else act_bits
    sq.validate()
    x = _check_act(x_int, sq, act_bits)
    M = x.shape[0]
    b, nb, N = sq.fmt.bank_size, sq.n_banks, sq.shape[1]
    xb = x.reshape(M, nb, b)
    p_low = torch.einsum("mji,jin->mjn", xb, sq.low_values().reshape(nb, b, N))
    p_high = torch.einsum("mji,jin->mjn", xb, sq.high_dense().reshape(nb, b, N))
    return p_low, p_high


def descale(acc: torch.Tensor, x_scale: torch.Tensor, sq: SQTensor) -> torch.Tensor:
    """Host de-scaling of the hardware's integers: ``acc · x_scale[m] · col_scale[n]``."""
    y = acc.to(torch.float64) * x_scale.to(torch.float64)[:, None]
    return (y * sq.col_scale.to(torch.float64)[None, :]).to(torch.float32)


def matmul(x: torch.Tensor, sq: SQTensor) -> torch.Tensor:
    """Float reference: ``x @ sq.dequantize()`` in float32."""
    return x.to(torch.float32) @ sq.dequantize()


# -- activation mode -----------------------------------------------------------------------

def _check_pair(act: SQActivation, weight: DenseWeight):
    if not isinstance(act, SQActivation):
        raise TypeError(f"act must be an SQActivation, not {act!r}")
    if not isinstance(weight, DenseWeight):
        raise TypeError(f"weight must be a DenseWeight, not {weight!r}")
    act.validate()
    weight.validate()
    if not act.is_static:
        raise ValueError("the hardware takes a static mask; a per-token mask is a reference "
                         "only (matmul_act_dynamic)")
    if act.shape[1] != weight.shape[0]:
        raise ValueError(f"act has K={act.shape[1]} but the weight has K={weight.shape[0]}")


def hw_matmul_act(act: SQActivation, weight: DenseWeight, acc_bits: int | None = None, *,
                  cfg: HWConfig | None = None) -> torch.Tensor:
    """Exactly what the activation-mode hardware computes, int64 [M, N].

    For token m, column n and bank j, with ``pos_0 < … < pos_{k-1}`` the high channels and
    ``q_0 < … < q_{b-k-1}`` the low channels of bank j (natural-order weight rows)::

        P_high = Σ_t a_high[m, j, t] · w[j·b + pos_t, n]
        P_low  = Σ_u a_low[m, j, u]  · w[j·b + q_u, n]
        y[m, n] = Σ_j (scale_high[m, j] · P_high + scale_low[m, j] · P_low)

    Integer arithmetic is exact, so this equals one product of the effective activation
    (:meth:`SQActivation.effective`) with the weight codes, done in float64 (exact while
    :func:`act_accumulator_bound` is below 2^53; int64 otherwise).
    :func:`hw_bank_partials_act` gives the per-bank terms through the gather.

    Parameters
    ----------
    acc_bits : int, optional
        The accumulator width: raises if K could overflow it.
    cfg : HWConfig, optional
        The hardware configuration, instead of ``acc_bits``: its accumulator width is used,
        and it must be an activation-mode configuration of ``act.fmt`` and
        ``weight.bits`` with ``K <= k_max``.

    Raises
    ------
    MalformedSQError
        If a bank of the mask does not hold exactly k high channels, or a code is out of
        range.
    ValueError
        On a per-token mask, mismatched K, a K that could overflow ``acc_bits``, or a
        ``cfg`` that does not match the operands.
    TypeError
        If ``cfg`` is given together with ``acc_bits``.
    """
    _check_pair(act, weight)
    if cfg is not None:
        _from_config(cfg, True, act.fmt, act.shape[1], acc_bits=acc_bits)
        if cfg.weight_bits != weight.bits:
            raise ValueError(f"the weights are INT{weight.bits}, but cfg is for "
                             f"INT{cfg.weight_bits} weights")
        acc_bits = cfg.acc_bits
    bound = act_accumulator_bound(act.fmt, weight.bits, act.shape[1])
    if acc_bits is not None and bound > (1 << (acc_bits - 1)) - 1:
        raise ValueError(f"K={act.shape[1]} can overflow a {acc_bits}-bit accumulator")
    x = act.effective()
    w = weight.codes.to(torch.int64)
    if bound < _EXACT_F64:
        return torch.round(x.to(torch.float64) @ w.to(torch.float64)).to(torch.int64)
    return x @ w


def hw_bank_partials_act(act: SQActivation,
                         weight: DenseWeight) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bank integer partial sums ``(P_high, P_low)``, each int64 [M, K/b, N].

    The datapath spelled out: the select-and-gather lanes (:meth:`SQActivation.high_codes`,
    :meth:`~SQActivation.low_codes`) times the **reordered** weight rows (high rows first),
    exactly as the hardware holds them. ``weight`` is given in natural order.
    """
    _check_pair(act, weight)
    fmt = act.fmt
    b, k, nb = fmt.bank_size, fmt.k, act.n_banks
    N = weight.shape[1]
    perm = reorder_permutation(act.mask, fmt)
    wr = weight.codes.to(torch.int64)[perm].reshape(nb, b, N)
    p_high = torch.einsum("mjt,jtn->mjn", act.high_codes(), wr[:, :k, :])
    p_low = torch.einsum("mju,jun->mjn", act.low_codes(), wr[:, k:, :])
    return p_high, p_low


def descale_act(acc: torch.Tensor, act: SQActivation, weight: DenseWeight) -> torch.Tensor:
    """Host de-scaling: ``acc[m, n] · token_scale[m] · col_scale[n]`` (float64 inside),
    float32 [M, N]."""
    y = acc.to(torch.float64) * act.token_scale.to(torch.float64)[:, None]
    return (y * weight.col_scale.to(torch.float64)[None, :]).to(torch.float32)


def matmul_act(x: torch.Tensor, weight: DenseWeight) -> torch.Tensor:
    """Float reference: ``x @ weight.dequantize()`` (float64 inside), float32 [M, N]."""
    return (x.to(torch.float64) @ weight.dequantize().to(torch.float64)).to(torch.float32)


def act_element_error(x: torch.Tensor, act: SQActivation) -> torch.Tensor:
    """float64 [M, K]: the guaranteed ``|x̂ - x|`` per element: half a step for a quantized
    element (no clipping: a coded step is never smaller than the float one), ``|x|`` for a
    low channel of a format without a low part (``l = 0``: low channels are dropped)."""
    half = 0.5 * act.steps()
    if act.fmt.low_bits:
        return half
    return torch.where(act.mask.expand(act.shape), half, x.detach().to(torch.float64).abs())


def act_error_bound(x: torch.Tensor, act: SQActivation, weight: DenseWeight) -> torch.Tensor:
    """float64 [M, N]: a guaranteed bound on ``|descale_act(hw_matmul_act) - matmul_act|``.

    The de-scaled integer result is ``x̂ @ ŵ`` with ``x̂ = act.dequantize()``, so
    ``|x̂ŵ - xŵ| ≤ e @ |ŵ|`` with ``e`` from :func:`act_element_error` (half a step; ``|x|``
    for dropped channels). The bound adds ``2^-20 · (|x| + e) @ |ŵ|`` for the float32
    roundings (of the codes' float steps, the de-scaled result and the reference; each a
    few 2^-24 relative).
    """
    wd = weight.dequantize().to(torch.float64).abs()
    e = act_element_error(x, act)
    slack = 2.0 ** -20 * ((x.detach().to(torch.float64).abs() + e) @ wd)
    return e @ wd + slack


def matmul_act_dynamic(x: torch.Tensor, weight: DenseWeight, fmt: SQFormat) -> torch.Tensor:
    """Accuracy reference of the dynamic variant: per token, the top-k ``|x|`` of every bank
    in high precision (:func:`dynamic_activation_mask`), then ``x̂ @ ŵ`` in float64.

    No hardware computes this; compare it with the static mask's
    ``descale_act(hw_matmul_act(...))``.
    """
    act = quantize_activation_sq(x, dynamic_activation_mask(x, fmt), fmt)
    wd = weight.dequantize().to(torch.float64)
    return (act.dequantize().to(torch.float64) @ wd).to(torch.float32)
