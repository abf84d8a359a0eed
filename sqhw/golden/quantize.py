"""The quantizers of both modes (vectorised: no Python loops over elements).

Weight mode: :func:`quantize_weight` (SQ-format weights), :func:`quantize_activation` (the
host's dense per-token activations), :func:`random_sqtensor` (test data). Activation mode:
:func:`quantize_activation_sq` (the host's SQ activations under a mask),
:func:`quantize_weight_dense` (dense per-column weights), :func:`dynamic_activation_mask`
(the per-token top-k reference mask). Both modes pick their high elements with
:func:`select_high`, turn group scales into codes with :func:`two_level_scales` and round
each group with :func:`quantize_group`.
"""

import torch

from ..format import WEIGHT_BITS, SQFormat
from .tensor import (
    DenseWeight,
    MalformedSQError,
    SQActivation,
    SQTensor,
    check_activation_mask,
    check_float_2d,
    check_reduction_dim,
)

__all__ = ["quantize_weight", "quantize_weight_float", "random_sqtensor", "select_high",
           "two_level_scales", "quantize_group", "quantize_activation",
           "quantize_activation_sq", "quantize_weight_dense", "dynamic_activation_mask"]


def _top_positions(importance: torch.Tensor, fmt: SQFormat) -> torch.Tensor:
    """int64 [nb, k, N]: the top-k positions of every bank, in increasing order."""
    K, N = importance.shape
    b, k = fmt.bank_size, fmt.k
    order = torch.sort(importance.reshape(K // b, b, N), dim=1, descending=True,
                       stable=True).indices
    return torch.sort(order[:, :k, :], dim=1).values


def select_high(importance: torch.Tensor, fmt: SQFormat) -> torch.Tensor:
    """bool [K, N]: the top-k elements of every bank of every column.

    Ties are broken towards the lower position: the sort is stable and descending, so among
    equal importances the element that comes first in the bank wins.
    """
    K, N = importance.shape
    b, nb = fmt.bank_size, K // fmt.bank_size
    mask = torch.zeros(nb, b, N, dtype=torch.bool)
    if fmt.k:
        mask.scatter_(1, _top_positions(importance, fmt), True)
    return mask.reshape(K, N)


def two_level_scales(group_scales: list[torch.Tensor], fmt: SQFormat):
    """Turn float group scales ``[nb, N]`` into integer codes and one float per column.

    ``col_scale[n] = max over the column's group scales / (2^sb - 1)`` and each code is
    ``ceil(scale / col_scale)``, so the coded scale is never smaller than the float one and
    no value clips. A column of all zeros gets ``col_scale = 1`` and codes 0.
    """
    stacked = torch.stack(group_scales).to(torch.float64)        # [G, nb, N]
    col = stacked.amax(dim=(0, 1)) / fmt.scale_max                # [N]
    col = torch.where(col > 0, col, torch.ones_like(col))
    codes = torch.ceil(stacked / col - 1e-9).clamp(0, fmt.scale_max)
    # A code of 0 means "this group is all zero" (datasheet §2): a non-zero group, however
    # small next to its column's largest, keeps code >= 1 so its values are not dropped.
    codes = torch.where(stacked > 0, codes.clamp(min=1), codes).to(torch.int32)
    return [c for c in codes], col


def quantize_group(w: torch.Tensor, step: torch.Tensor, qmax: int) -> torch.Tensor:
    """int8 codes of ``w`` with the coded step ``step`` (broadcast): symmetric
    round-half-to-even, clamped to ``±qmax``; a zero step (all-zero group) gives code 0.
    The one group quantizer of both modes."""
    safe = torch.where(step > 0, step, torch.ones_like(step))
    q = torch.round(w / safe).clamp_(-qmax, qmax).mul_(step > 0)
    return q.to(torch.int8)


def quantize_weight(w: torch.Tensor, fmt: SQFormat, importance: torch.Tensor | None = None,
                    per_channel: bool = False) -> SQTensor:
    """Quantize a weight ``w[K, N]`` (K = reduction dimension) into SQ-format.

    Parameters
    ----------
    w : float tensor [K, N]
        K must be a multiple of ``fmt.bank_size``.
    fmt : SQFormat
    importance : float tensor [K, N], optional
        Saliency for picking the high elements; ``|w|`` by default. The top-k per bank per
        column go to high precision (ties: lower position first).
    per_channel : bool
        One float scale per (group, column) instead of per (group, bank, column): the
        classic per-channel baseline. The codes are then constant down a column.

    Both groups are quantized symmetrically with round-half-to-even (``torch.round``), each
    with its coded scale ``col_scale·code`` (datasheet §3), so every element is within half
    a scale step of its dequantized value. A group of all zeros gets code 0 and value 0.

    Raises
    ------
    ValueError
        On a wrong shape, a K that is not a multiple of the bank size, or non-finite values.
    """
    return _quantize_weight(w, fmt, importance, per_channel, float_scales=False)


def quantize_weight_float(w: torch.Tensor, fmt: SQFormat,
                          importance: torch.Tensor | None = None,
                          per_channel: bool = False) -> torch.Tensor:
    """The float-scale reference of :func:`quantize_weight` (not hardware).

    The same high elements, but each (bank, column, group) is quantized with its ideal float
    step ``max|group| / qmax`` (the paper's per-(bank, column) float scales, SQ-FORMAT.md
    §3) instead of the two-level coded step ``col_scale · code`` (datasheet §3): what the
    hardware's scale representation costs is the difference.

    Returns
    -------
    float32 tensor [K, N]
        The dequantized weight.
    """
    return _quantize_weight(w, fmt, importance, per_channel, float_scales=True)


def _quantize_weight(w, fmt, importance, per_channel, float_scales):
    """:func:`quantize_weight` (an SQTensor) or, with ``float_scales``, its float-scale
    reference (a float32 weight)."""
    if not isinstance(w, torch.Tensor) or w.dim() != 2:
        raise ValueError(f"w must be a 2-D tensor [K, N], not {getattr(w, 'shape', w)!r}")
    K, N = w.shape
    b, k = fmt.bank_size, fmt.k
    if K == 0 or N == 0 or K % b:
        raise ValueError(f"K must be a positive multiple of bank_size {b}, not {K} (pad W "
                         f"with zero rows)")
    w = w.detach().to(torch.float32)
    if not torch.isfinite(w).all():
        raise ValueError("w has non-finite values")
    if importance is None:
        importance = w.abs()
    elif tuple(importance.shape) != (K, N):
        raise ValueError(f"importance must have the shape of w {[K, N]}, "
                         f"not {list(importance.shape)}")
    nb = K // b
    wb = w.reshape(nb, b, N)
    mb = torch.zeros(nb, b, N, dtype=torch.bool)
    if k:
        pos = _top_positions(importance.detach().to(torch.float32), fmt)   # [nb, k, N]
        mb.scatter_(1, pos, True)
        high_w = torch.gather(wb, 1, pos)                                  # [nb, k, N]

    low_abs = wb.abs().masked_fill_(mb, 0.0).amax(dim=1)           # [nb, N]
    low_fs = low_abs / fmt.low_max if fmt.low_bits else torch.zeros_like(low_abs)
    high_fs = (high_w.abs().amax(dim=1) / fmt.high_max if k
               else torch.zeros_like(low_abs))
    if per_channel:
        low_fs = low_fs.amax(dim=0, keepdim=True).expand(nb, N)
        high_fs = high_fs.amax(dim=0, keepdim=True).expand(nb, N)
    if float_scales:
        steps = torch.where(mb, high_fs[:, None, :], low_fs[:, None, :])
        qmax = torch.where(mb, fmt.high_max, fmt.low_max)
        safe = torch.where(steps > 0, steps, torch.ones_like(steps))
        q = torch.round(wb / safe).clamp_(-qmax, qmax).mul_(steps > 0)
        return (q * steps).reshape(K, N).to(torch.float32)
    (code_low, code_high), col = two_level_scales([low_fs, high_fs], fmt)

    step_low = (code_low.to(torch.float64) * col).to(torch.float32)[:, None, :]
    low = quantize_group(wb, step_low, fmt.low_max)
    low = low.masked_fill_(mb, fmt.vmask).reshape(K, N)

    if k:
        step_high = (code_high.to(torch.float64) * col).to(torch.float32)[:, None, :]
        high = quantize_group(high_w, step_high, fmt.high_max).reshape(nb * k, N)
    else:
        high = torch.zeros(0, N, dtype=torch.int8)
    return SQTensor(low=low, high=high, scale_low=code_low, scale_high=code_high,
                    col_scale=col.to(torch.float32), fmt=fmt)


def random_sqtensor(fmt: SQFormat, K: int, N: int,
                    generator: torch.Generator | None = None) -> SQTensor:
    """A random well-formed SQTensor with codes spread over their full ranges (test data).

    High positions are a uniformly random k-subset of every bank; codes are uniform over
    their valid range, extremes included; ``col_scale`` is 1.
    """
    b, k, nb = fmt.bank_size, fmt.k, K // fmt.bank_size
    if K % b:
        raise ValueError(f"K must be a multiple of bank_size {b}, not {K}")
    g = generator

    def uniform(lo, hi, *shape):
        return torch.randint(lo, hi + 1, shape, generator=g)

    perm = torch.rand(nb, b, N, generator=g).argsort(dim=1)
    mask = torch.zeros(nb, b, N, dtype=torch.bool).scatter_(1, perm[:, :k, :], True)
    low = uniform(-fmt.low_max, fmt.low_max, nb, b, N)
    low = torch.where(mask, fmt.vmask, low).reshape(K, N).to(torch.int8)
    high = uniform(-fmt.high_max, fmt.high_max, nb * k, N).to(torch.int8)
    scale_low = uniform(0, fmt.scale_max, nb, N).to(torch.int32)
    scale_high = uniform(0, fmt.scale_max, nb, N).to(torch.int32)
    if not fmt.low_bits:
        scale_low.zero_()
    if not k:
        scale_high.zero_()
    return SQTensor(low=low, high=high, scale_low=scale_low, scale_high=scale_high,
                    col_scale=torch.ones(N), fmt=fmt)


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


# -- activation mode -----------------------------------------------------------------------

def dynamic_activation_mask(x: torch.Tensor, fmt: SQFormat) -> torch.Tensor:
    """bool [M, K]: per token, the top-k ``|x|`` of every bank (ties: lower channel first).

    The dynamic variant is a **reference only**: the hardware uses a static mask.
    """
    check_float_2d("x", x, "[M, K]")
    check_reduction_dim(x.shape[1], fmt)
    return select_high(x.detach().abs().T.contiguous(), fmt).T.contiguous()


def quantize_activation_sq(x: torch.Tensor, mask: torch.Tensor, fmt: SQFormat) -> SQActivation:
    """Host-side dynamic activation quantization into SQ-format with a given mask.

    Per token and bank, the high channels (``mask`` True) are quantized to symmetric
    INT(``fmt.high_bits``) and the low ones to symmetric INT(``fmt.low_bits``), each group with
    float scale ``max|group| / qmax``. The scales become two-level exactly as for weights
    (:func:`~sqhw.golden.quantize.two_level_scales`, with the token in the role of the
    column): ``token_scale[m] = max group scale / (2^sb - 1)``, codes ``ceil(scale /
    token_scale)``, and each group is quantized (round half to even) with its coded step
    ``token_scale·code``, so no value clips and every element is within half a step.

    Parameters
    ----------
    x : float tensor [M, K]
    mask : bool tensor [K] (static) or [M, K] (per token, the dynamic reference)
    fmt : SQFormat
        The activation format.

    Raises
    ------
    MalformedSQError
        When a bank of ``mask`` does not hold exactly k high channels.
    ValueError
        On a bad ``x``.
    """
    check_float_2d("x", x, "[M, K]")
    M, K = x.shape
    check_reduction_dim(K, fmt)
    check_activation_mask(mask, fmt, K)
    if mask.dim() == 2 and mask.shape[0] != M:
        raise MalformedSQError(f"a per-token mask must have {M} rows, not {mask.shape[0]}")
    b, nb = fmt.bank_size, K // fmt.bank_size
    xb = x.detach().to(torch.float32).reshape(M, nb, b)
    mb = mask.expand(M, K).reshape(M, nb, b)
    a = xb.abs()
    high_fs = (a.masked_fill(~mb, 0.0).amax(dim=2) / fmt.high_max if fmt.k
               else torch.zeros(M, nb))
    low_fs = (a.masked_fill(mb, 0.0).amax(dim=2) / fmt.low_max if fmt.low_bits
              else torch.zeros(M, nb))
    (code_high, code_low), tok = two_level_scales([high_fs.T, low_fs.T], fmt)
    code_high, code_low = code_high.T.contiguous(), code_low.T.contiguous()   # [M, nb]
    step_h = (code_high.to(torch.float64) * tok[:, None]).to(torch.float32)[:, :, None]
    step_l = (code_low.to(torch.float64) * tok[:, None]).to(torch.float32)[:, :, None]
    q_h = quantize_group(xb, step_h, fmt.high_max)
    q_l = quantize_group(xb, step_l, fmt.low_max)
    codes = torch.where(mb, q_h, q_l).reshape(M, K).to(torch.int32)
    return SQActivation(codes=codes, scale_high=code_high, scale_low=code_low,
                        token_scale=tok.to(torch.float32), mask=mask.clone(), fmt=fmt)


def quantize_weight_dense(w: torch.Tensor, bits: int = 8) -> DenseWeight:
    """Per-output-column symmetric INT``bits`` (4 or 8): ``scale[n] = max|w[:, n]| / qmax``,
    round half to even. An all-zero column gets scale 1 and codes 0."""
    if bits not in WEIGHT_BITS:
        raise ValueError(f"bits must be 4 or 8, not {bits}")
    check_float_2d("w", w, "[K, N]")
    codes_t, scale = quantize_activation(w.T, bits)   # per row of w.T = per column of w
    return DenseWeight(codes=codes_t.T.contiguous().to(torch.int8), col_scale=scale, bits=bits)
