"""Post-training quantization of weights into SQ-format: the paper's Algorithm 1 and baselines.

Everything works on a weight ``W[K, N]`` with K the reduction dimension (for ``nn.Linear``
pass ``weight.T``) and on calibration statistics of the layer's input ``X[M, K]``:

- :class:`HessianAccumulator` gathers ``H = XᵀX / M`` (float64) and the per-channel
  ``max |X|`` over calibration tokens.
- :func:`smooth_factors` / :func:`smooth` apply SmoothQuant: ``W' = diag(s)·W`` and
  ``X' = X·diag(1/s)``, so ``X'W' = XW``; the Hessian of ``X'`` is ``H / (s sᵀ)``.
- :func:`saliency` is the SparseGPT / OBS saliency ``W'² / [H⁻¹]_ii``.
- :func:`quantize_sq` is Algorithm 1 without error compensation: the top-(1-s) per bank per
  column by that importance go to high precision, then :func:`quantize_weight`.
- :func:`gptq_quantize` adds GPTQ-style error compensation adapted to SQ banks.
- :func:`quantize_layer` runs any of these from a :class:`PTQMethod`, which also expresses the
  baselines (RTN per-channel ``W8A8 … W4A4``, GPTQ ``W4A8``, 2:4 by magnitude or saliency).

The activation mode's offline step lives here too (``docs/activation-mode.md``):
:func:`calibrate_activation_mask` fixes one bit per input channel (exactly k high channels
per bank) from the importance ``I_j = |Ā_j · Σ_n W'[j, n]|`` (:func:`activation_importance`)
and records the weight-row permutation that puts, inside every bank, the high channels first
(:class:`ActCalibration`).

The paper writes the importance as ``W'²/([H⁻¹]_ii)²`` after SparseGPT, whose algorithm
denotes by ``H⁻¹`` the upper Cholesky factor ``U`` of the inverse Hessian (``H⁻¹ = UᵀU``):
squaring that factor's diagonal gives the inverse-Hessian diagonal of the weights not yet
fixed. Both forms are the optimal-brain-surgeon error of dropping a weight; this module
uses the full ``[H⁻¹]_ii`` in the one-shot path and the exact conditional form (given the
banks already quantized) inside :func:`gptq_quantize`.
"""

from dataclasses import dataclass

import torch

from ..format import SQFormat
from .quantize import quantize_weight, quantize_weight_float, select_high
from .tensor import (
    DenseWeight,
    SQTensor,
    check_float_2d,
    check_reduction_dim,
    reorder_permutation,
)

__all__ = [
    "HessianAccumulator", "PTQMethod", "damp_hessian", "inverse_hessian_diag",
    "smooth_factors", "smooth", "saliency", "quantize_sq", "gptq_quantize",
    "gptq_quantize_float", "quantize_layer", "gptq_quantize_dense",
    "ActCalibration", "activation_importance", "calibrate_activation_mask",
]


class HessianAccumulator:
    """Running calibration statistics of one linear layer's input.

    Parameters
    ----------
    in_features : int
        K, the width of the layer input.

    Attributes
    ----------
    xtx : float64 tensor [K, K]
        ``Σ xᵀx`` over the tokens seen.
    absmax : float64 tensor [K]
        Per-channel ``max |x|`` over the tokens seen.
    count : int
        Number of tokens seen.
    """

    def __init__(self, in_features: int):
        self.xtx = torch.zeros(in_features, in_features, dtype=torch.float64)
        self.absmax = torch.zeros(in_features, dtype=torch.float64)
        self.count = 0

    def add(self, x: torch.Tensor) -> None:
        """Accumulate a batch of tokens ``x[..., K]`` (all leading dimensions are tokens)."""
        x = x.detach().reshape(-1, self.xtx.shape[0]).to(torch.float64)
        if x.shape[0] == 0:
            return
        self.xtx.addmm_(x.T, x)
        torch.maximum(self.absmax, x.abs().amax(dim=0), out=self.absmax)
        self.count += x.shape[0]

    @property
    def hessian(self) -> torch.Tensor:
        """``H = XᵀX / M`` (float64 [K, K]); GPTQ's ``2XᵀX`` differs by a constant factor,
        which changes no ranking and no GPTQ update (damping is relative)."""
        if self.count == 0:
            raise ValueError("no calibration tokens were accumulated")
        return self.xtx / self.count


def damp_hessian(H: torch.Tensor, percdamp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """GPTQ's conditioning of a Hessian.

    Dead input channels (``H_ii = 0``: the channel never fired) get ``H_ii = 1`` so the
    matrix is invertible (their weights are set to 0 by the callers, as GPTQ does), and
    ``percdamp · mean(diag H)`` is added to the diagonal.

    Parameters
    ----------
    H : float tensor [K, K]
        Symmetric positive semi-definite.
    percdamp : float
        Relative damping, >= 0.

    Returns
    -------
    (H_damped float64 [K, K], dead bool [K])
    """
    if H.dim() != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be a square matrix, not {list(H.shape)}")
    if percdamp < 0:
        raise ValueError(f"percdamp must be >= 0, not {percdamp}")
    H = H.to(torch.float64).clone()
    diag = torch.diagonal(H)
    dead = diag == 0
    diag[dead] = 1.0
    diag += percdamp * diag.mean()
    return H, dead


def _inverse(H: torch.Tensor) -> torch.Tensor:
    """``H⁻¹ = L⁻ᵀL⁻¹`` from the Cholesky factor (torch.cholesky_inverse is ~10x slower on
    CPU at K = 1536)."""
    L = torch.linalg.cholesky(H)
    eye = torch.eye(H.shape[0], dtype=H.dtype)
    Li = torch.linalg.solve_triangular(L, eye, upper=False)
    return Li.T @ Li


def inverse_hessian_diag(H: torch.Tensor, percdamp: float = 0.01) -> torch.Tensor:
    """``diag(H⁻¹)`` (float64 [K]) of the damped Hessian (:func:`damp_hessian`)."""
    Hd, _ = damp_hessian(H, percdamp)
    return torch.diagonal(_inverse(Hd)).clone()


def smooth_factors(act_absmax: torch.Tensor, w: torch.Tensor, alpha: float = 0.5,
                   eps: float = 1e-5) -> torch.Tensor:
    """SmoothQuant's per-input-channel factors ``s_j = max|X_j|^α / max_n|W_jn|^(1-α)``.

    Parameters
    ----------
    act_absmax : float tensor [K]
        Per-channel ``max |X|`` over calibration tokens.
    w : float tensor [K, N]
        The weight (K = reduction dimension).
    alpha : float
        Migration strength in [0, 1]: 0 leaves activations alone (s = 1 / max|W_j|, which
        only rescales), 1 moves all the range into the weights.
    eps : float
        Floor on both maxima, so no factor is 0 or infinite.

    Returns
    -------
    float32 tensor [K]
        Positive factors; a channel that is zero in both X and W gets 1.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], not {alpha}")
    a = act_absmax.detach().to(torch.float64)
    wm = w.detach().abs().amax(dim=1).to(torch.float64)
    if a.shape != wm.shape:
        raise ValueError(f"act_absmax has {a.shape[0]} channels but w has K={wm.shape[0]}")
    s = a.clamp(min=eps).pow(alpha) / wm.clamp(min=eps).pow(1.0 - alpha)
    s = torch.where((a == 0) & (wm == 0), torch.ones_like(s), s)
    return s.to(torch.float32)


def smooth(w: torch.Tensor, s: torch.Tensor, H: torch.Tensor | None = None):
    """Fold smoothing factors into a weight (and Hessian).

    ``W' = diag(s)·W`` and the input is to be divided by ``s`` (``X' = X / s``), so
    ``X'W' = XW`` exactly in real arithmetic. The Hessian of ``X'`` is ``H / (s sᵀ)``.

    Parameters
    ----------
    w : float tensor [K, N]
    s : float tensor [K]
        From :func:`smooth_factors`.
    H : float tensor [K, K], optional

    Returns
    -------
    (w' float32 [K, N], H' float64 [K, K] or None)
    """
    s64 = s.to(torch.float64)
    w2 = (w.to(torch.float64) * s64[:, None]).to(torch.float32)
    if H is None:
        return w2, None
    return w2, H.to(torch.float64) / (s64[:, None] * s64[None, :])


def saliency(w: torch.Tensor, H: torch.Tensor, percdamp: float = 0.01) -> torch.Tensor:
    """SparseGPT / OBS saliency ``w[i, n]² / [H⁻¹]_ii``.

    This is the increase of the layer's squared output error ``||X(w - w')||²`` when weight
    ``(i, n)`` alone is removed and the other weights of column n are re-fitted optimally;
    ranking by it keeps the weights whose loss would cost most.

    Parameters
    ----------
    w : float tensor [K, N]
    H : float tensor [K, K]
        The input Hessian ``XᵀX / M`` (damped here with :func:`damp_hessian`).

    Returns
    -------
    float32 tensor [K, N]
    """
    d = inverse_hessian_diag(H, percdamp)
    return (w.to(torch.float64).square() / d[:, None]).to(torch.float32)


def quantize_sq(w: torch.Tensor, fmt: SQFormat, H: torch.Tensor | None = None,
                importance: str = "saliency", per_channel: bool = False,
                percdamp: float = 0.01, float_scales: bool = False) -> SQTensor:
    """Algorithm 1 without error compensation (also the RTN baselines).

    Parameters
    ----------
    w : float tensor [K, N]
        Already smoothed if smoothing is wanted (:func:`smooth`).
    fmt : SQFormat
    H : float tensor [K, K], optional
        Needed for ``importance="saliency"``.
    importance : {"saliency", "magnitude"}
        How the top-(1-s) per bank per column are picked.
    per_channel : bool
        Per-column scales instead of per-bank (see :func:`quantize_weight`).
    float_scales : bool
        Return the float-scale reference weight (float32 [K, N],
        :func:`~sqhw.golden.quantize.quantize_weight_float`) instead of the SQTensor.

    Returns
    -------
    SQTensor (float32 tensor with ``float_scales``)
    """
    if importance == "saliency":
        if H is None:
            raise ValueError("importance='saliency' needs the Hessian H")
        imp = saliency(w, H, percdamp) if fmt.k else None
    elif importance == "magnitude":
        imp = None
    else:
        raise ValueError(f"importance must be 'saliency' or 'magnitude', not {importance!r}")
    if H is not None:
        dead = torch.diagonal(H) == 0
        if dead.any():
            w = w.masked_fill(dead[:, None], 0.0)
    quantize = quantize_weight_float if float_scales else quantize_weight
    return quantize(w, fmt, importance=imp, per_channel=per_channel)


def _group_scales(wb: torch.Tensor, mb: torch.Tensor, fmt: SQFormat):
    """Float group scales ``(low, high)`` [..., N] of banks ``wb[..., b, N]``, mask ``mb``."""
    a = wb.abs()
    zero = torch.zeros_like(a[..., 0, :])
    low_fs = a.masked_fill(mb, 0.0).amax(dim=-2) / fmt.low_max if fmt.low_bits else zero
    high_fs = a.masked_fill(~mb, 0.0).amax(dim=-2) / fmt.high_max if fmt.k else zero
    return low_fs, high_fs


def _codes(fs: torch.Tensor, col: torch.Tensor, fmt: SQFormat) -> torch.Tensor:
    """Scale codes for float scales ``fs`` under a fixed ``col`` (as two_level_scales)."""
    c = torch.ceil(fs / col - 1e-9).clamp(0, fmt.scale_max)
    return torch.where(fs > 0, c.clamp(min=1), c)


def gptq_quantize(w: torch.Tensor, H: torch.Tensor, fmt: SQFormat,
                  importance: str = "saliency", per_channel: bool = False,
                  percdamp: float = 0.01) -> SQTensor:
    """GPTQ error compensation adapted to SQ banks.

    K is processed in order, bank by bank. At the start of a bank its high mask (top-k by
    the importance of the *current*, already compensated weights; the saliency is the exact
    ``w²/[H_rr⁻¹]_ii`` given the earlier banks fixed) and its two scale codes are fixed; then
    its rows are quantized one by one, each row's error ``(w - q) / U_ii`` being propagated to
    the later rows through the upper Cholesky factor ``U`` of ``H⁻¹`` (``H⁻¹ = UᵀU``), inside
    the bank at once and to the later banks in one block update (GPTQ's lazy batching).

    The per-column float ``col_scale`` of the two-level scales (datasheet §3) is fixed up
    front from the uncompensated weights; a bank whose compensated values outgrow
    ``255 · col_scale`` (at ``scale_bits = 8``) clips, like GPTQ's fixed grids. The codes are
    assembled directly, so :meth:`SQTensor.dequantize` is exactly the grid the compensation
    used; the result is validated.

    With ``low_bits = 0`` (2:4) the low group is pruned to 0, which makes this SparseGPT.
    With ``per_channel`` the mask and scales are fixed once from the uncompensated weights
    (GPTQ's per-channel grid).

    Parameters
    ----------
    w : float tensor [K, N]
        Already smoothed if smoothing is wanted.
    H : float tensor [K, K]
        Hessian of the (smoothed) input, ``XᵀX / M``.
    fmt : SQFormat
    importance : {"saliency", "magnitude"}
    per_channel : bool
    percdamp : float

    Returns
    -------
    SQTensor
    """
    return _gptq(w, H, fmt, importance, per_channel, percdamp, float_scales=False)


def gptq_quantize_float(w: torch.Tensor, H: torch.Tensor, fmt: SQFormat,
                        importance: str = "saliency", per_channel: bool = False,
                        percdamp: float = 0.01) -> torch.Tensor:
    """The float-scale reference of :func:`gptq_quantize` (not hardware).

    The same masks, order and error compensation, but every (bank, column, group) is
    quantized with its ideal float step ``max|group| / qmax`` (the paper's per-(bank, column)
    float scales) instead of the two-level coded step ``col_scale · code`` (datasheet §3).
    The difference in accuracy is the cost of the hardware's scale representation.

    Returns
    -------
    float32 tensor [K, N]
        The dequantized weight (codes times their float step).
    """
    return _gptq(w, H, fmt, importance, per_channel, percdamp, float_scales=True)


def _gptq(w, H, fmt, importance, per_channel, percdamp, float_scales):
    """:func:`gptq_quantize` (an SQTensor) or, with ``float_scales``, its float-scale
    reference (a float32 weight)."""
    if importance not in ("saliency", "magnitude"):
        raise ValueError(f"importance must be 'saliency' or 'magnitude', not {importance!r}")
    if w.dim() != 2:
        raise ValueError(f"w must be [K, N], not {list(w.shape)}")
    K, N = w.shape
    b, k = fmt.bank_size, fmt.k
    if K % b:
        raise ValueError(f"K must be a multiple of bank_size {b}, not {K}")
    if tuple(H.shape) != (K, K):
        raise ValueError(f"H must be [{K}, {K}], not {list(H.shape)}")
    nb = K // b
    W = w.detach().to(torch.float64).clone()
    Hd, dead = damp_hessian(H, percdamp)
    W[dead] = 0.0
    U = torch.linalg.cholesky(_inverse(Hd), upper=True)

    def imp_of(Wb, r0):
        if importance == "magnitude":
            return Wb.abs()
        Ub = U[r0:r0 + b, r0:r0 + b]
        cond = Ub.square().sum(dim=0)          # [H_rr⁻¹]_ii given rows < r0 fixed
        return Wb.square() / cond[:, None]

    # Provisional grid from the uncompensated weights: the column scale (and, per channel,
    # the whole mask and all codes).
    if k and importance == "saliency":
        d = U.square().sum(dim=0)    # diag(H⁻¹), H⁻¹ = UᵀU
        imp0 = W.square() / d[:, None]
    else:
        imp0 = W.abs()
    mask0 = select_high(imp0.to(torch.float32), fmt).view(nb, b, N)
    fl0, fh0 = _group_scales(W.view(nb, b, N), mask0, fmt)
    if per_channel:
        fl0 = fl0.amax(dim=0, keepdim=True).expand(nb, N)
        fh0 = fh0.amax(dim=0, keepdim=True).expand(nb, N)
    col = torch.maximum(fl0.amax(dim=0), fh0.amax(dim=0)) / fmt.scale_max
    col = torch.where(col > 0, col, torch.ones_like(col))

    low = torch.empty(K, N, dtype=torch.int8)
    high = torch.empty(nb * k, N, dtype=torch.int8)
    scale_low = torch.empty(nb, N, dtype=torch.int32)
    scale_high = torch.empty(nb, N, dtype=torch.int32)
    lmax, hmax = float(fmt.low_max), float(fmt.high_max)
    deq = torch.empty(K, N, dtype=torch.float64) if float_scales else None
    for j in range(nb):
        r0, r1 = j * b, (j + 1) * b
        if per_channel:
            mb = mask0[j]
            fl, fh = fl0[j], fh0[j]
        else:
            mb = select_high(imp_of(W[r0:r1], r0).to(torch.float32), fmt)
            fl, fh = _group_scales(W[r0:r1], mb, fmt)
        cl, ch = _codes(fl, col, fmt), _codes(fh, col, fmt)
        sl, sh = (fl, fh) if float_scales else (cl * col, ch * col)
        codes = torch.empty(b, N, dtype=torch.float64)
        err = torch.empty(b, N, dtype=torch.float64)
        for i in range(b):
            r = r0 + i
            m = mb[i]
            step = torch.where(m, sh, sl)
            qmax = torch.where(m, hmax, lmax)
            safe = torch.where(step > 0, step, torch.ones_like(step))
            c = torch.round(W[r] / safe)
            c = torch.minimum(torch.maximum(c, -qmax), qmax) * (step > 0)
            codes[i] = c
            e = (W[r] - c * step) / U[r, r]
            err[i] = e
            if i + 1 < b:
                W[r + 1:r1].sub_(U[r, r + 1:r1, None] * e[None, :])
        if r1 < K:
            W[r1:].sub_(U[r0:r1, r1:].T @ err)
        if float_scales:
            deq[r0:r1] = codes * torch.where(mb, sh, sl)
            continue
        ci = codes.to(torch.int8)
        low[r0:r1] = ci.masked_fill(mb, fmt.vmask)
        if k:
            pos = torch.sort(torch.sort(mb.to(torch.int8), dim=0, descending=True,
                                        stable=True).indices[:k], dim=0).values
            high[j * k:(j + 1) * k] = torch.gather(ci, 0, pos)
        scale_low[j] = cl.to(torch.int32)
        scale_high[j] = ch.to(torch.int32)
    if float_scales:
        return deq.to(torch.float32)
    sq = SQTensor(low=low, high=high, scale_low=scale_low, scale_high=scale_high,
                  col_scale=col.to(torch.float32), fmt=fmt)
    return sq.validate()


@dataclass(frozen=True)
class PTQMethod:
    """How one layer's weight is quantized.

    Parameters
    ----------
    fmt : SQFormat
        Weight format.
    act_bits : int
        Per-token activation width (the eval quantizes activations with it).
    importance : {"saliency", "magnitude"}
        High-element selection.
    gptq : bool
        GPTQ error compensation (:func:`gptq_quantize`).
    smooth_alpha : float or None
        SmoothQuant migration strength; None = no smoothing.
    per_channel : bool
        Per-column weight scales (the classic RTN/GPTQ baselines) instead of per-bank.
    percdamp : float
        Hessian damping.
    float_scales : bool
        The float-only reference of the paper's per-(bank, column) float scales instead of
        the hardware's two-level codes (:func:`gptq_quantize_float`,
        :func:`~sqhw.golden.quantize.quantize_weight_float`); not hardware.
    """

    fmt: SQFormat
    act_bits: int = 8
    importance: str = "saliency"
    gptq: bool = False
    smooth_alpha: float | None = None
    per_channel: bool = False
    percdamp: float = 0.01
    float_scales: bool = False

    def __post_init__(self):
        if self.importance not in ("saliency", "magnitude"):
            raise ValueError(f"importance must be 'saliency' or 'magnitude', "
                             f"not {self.importance!r}")
        if not 2 <= self.act_bits <= 8:
            raise ValueError(f"act_bits must be in 2..8, not {self.act_bits}")
        if self.smooth_alpha is not None and not 0.0 <= self.smooth_alpha <= 1.0:
            raise ValueError(f"smooth_alpha must be in [0, 1], not {self.smooth_alpha}")

    @property
    def name(self) -> str:
        """E.g. ``W4A8 (INT4) per-channel RTN`` or ``B16-(8/4)-0.875 A8 saliency+GPTQ``."""
        f = self.fmt
        wname = f"W{f.low_bits}" if f.k == 0 else f.name
        parts = [f"{wname}A{self.act_bits}"]
        if f.k:
            parts.append(self.importance)
        parts.append("GPTQ" if self.gptq else "RTN")
        if self.smooth_alpha is not None:
            parts.append(f"smooth{self.smooth_alpha:g}")
        parts.append("per-channel" if self.per_channel else "per-bank")
        if self.float_scales:
            parts.append("float-scales")
        return " ".join(parts)

    @property
    def needs_hessian(self) -> bool:
        return self.gptq or (self.importance == "saliency" and self.fmt.k > 0)


def quantize_layer(w: torch.Tensor, method: PTQMethod, hessian: torch.Tensor | None = None,
                   act_absmax: torch.Tensor | None = None):
    """Quantize one weight ``w[K, N]`` with ``method``.

    Parameters
    ----------
    w : float tensor [K, N]
    method : PTQMethod
    hessian : float tensor [K, K], optional
        ``XᵀX / M`` of the layer input; needed for saliency and GPTQ.
    act_absmax : float tensor [K], optional
        Per-channel ``max |X|``; needed for smoothing.

    Returns
    -------
    (SQTensor or float32 tensor [K, N], s float32 [K] or None)
        The codes (with ``method.float_scales``: the float-scale reference weight, not
        hardware) and the smoothing factors to divide the input by (None: no smoothing).
    """
    H = hessian
    s = None
    if method.smooth_alpha is not None:
        if act_absmax is None:
            raise ValueError("smoothing needs the calibration act_absmax")
        s = smooth_factors(act_absmax, w, method.smooth_alpha)
        w, H = smooth(w, s, H)
    if method.needs_hessian and H is None:
        raise ValueError(f"{method.name} needs the calibration Hessian")
    if method.gptq:
        gptq = gptq_quantize_float if method.float_scales else gptq_quantize
        sq = gptq(w, H, method.fmt, method.importance, method.per_channel, method.percdamp)
    else:
        sq = quantize_sq(w, method.fmt, H if method.needs_hessian else None,
                         method.importance if method.fmt.k else "magnitude",
                         method.per_channel, method.percdamp, method.float_scales)
    return sq, s


def gptq_quantize_dense(w: torch.Tensor, H: torch.Tensor, bits: int,
                        perm: torch.Tensor | None = None,
                        percdamp: float = 0.01) -> DenseWeight:
    """GPTQ for the activation mode's dense weights (symmetric INT``bits``, one scale per
    output column), in the hardware's row order.

    This is the GPTQ of the weight-mode baseline ``W<bits>A8+gptq`` (:func:`gptq_quantize`
    with the dense format ``SQFormat.dense(bits)`` and per-channel scales: the same grid,
    damping and lazy-batch updates), run on the rows in the order the activation mode
    stores them: ``w[perm]`` with the Hessian ``H[perm][:, perm]``, ``perm`` the static
    mask's :func:`reorder_permutation` (inside every bank the high channels first). So the
    weight rows the array holds (``DenseWeight.reordered(perm)``) are exactly the rows GPTQ
    produced, in the order it fixed them, and the compensation sees the same channel order
    as the select-and-gather unit. The mask enters only through that order: the Hessian is
    the float input's ``XᵀX / M``, as for the dense baseline, so the two are compared on
    equal terms.

    Parameters
    ----------
    w : float tensor [K, N]
        Natural channel order (K = the layer input).
    H : float tensor [K, K]
        ``XᵀX / M`` of the layer input, natural order.
    bits : int
        4 or 8.
    perm : int64 tensor [K], optional
        The processing order (:attr:`ActCalibration.perm`); natural order when None.
    percdamp : float

    Returns
    -------
    DenseWeight
        In natural channel order (as :func:`~sqhw.golden.quantize.quantize_weight_dense`
        returns), validated.
    """
    check_float_2d("w", w, "[K, N]")
    K, N = w.shape
    if perm is None:
        perm = torch.arange(K)
    if tuple(perm.shape) != (K,) or not torch.equal(torch.sort(perm).values, torch.arange(K)):
        raise ValueError(f"perm must be a permutation of range({K})")
    fmt = SQFormat.dense(bits, bank_size=_dense_bank(K))
    H = H.to(torch.float64)
    sq = gptq_quantize(w[perm], H[perm][:, perm], fmt, "magnitude", True, percdamp)
    inv = torch.argsort(perm)
    codes = sq.low[inv].contiguous()
    # Per channel, every bank of a column has the same code: the column's step is code·col.
    scale = (sq.scale_low[0].to(torch.float64) * sq.col_scale.to(torch.float64))
    scale = torch.where(scale > 0, scale, torch.ones_like(scale)).to(torch.float32)
    return DenseWeight(codes=codes, col_scale=scale, bits=bits).validate()


def _dense_bank(K: int) -> int:
    """The bank size of the dense grid: 16 as the ``W<w>A8+gptq`` baseline's
    ``SQFormat.dense``, or the largest of 8, 4 that divides K. Per channel it changes only
    GPTQ's lazy-batch block (float rounding), not the method."""
    for b in (16, 8, 4):
        if K % b == 0:
            return b
    raise ValueError(f"K must be a multiple of 4 for the dense GPTQ grid, not {K}")


# -- activation mode: the static mask ---------------------------------------------------

@dataclass(frozen=True, eq=False)
class ActCalibration:
    """The offline result of :func:`calibrate_activation_mask`.

    Attributes
    ----------
    mask : torch.bool [K]
        True for a high-precision channel; exactly ``fmt.k`` per bank.
    importance : torch.float64 [K]
        ``|Ā_j · Σ_n W'[j, n]|``, the ranking the mask was taken from.
    perm : torch.int64 [K]
        :func:`reorder_permutation` of ``mask``.
    smooth : torch.float32 [K] or None
        SmoothQuant factors ``s`` (``W' = diag(s)·W``, ``X' = X / s``); None = no smoothing.
    fmt : SQFormat
        The activation format (its ``high_bits``/``low_bits`` are activation precisions).
    """

    mask: torch.Tensor
    importance: torch.Tensor
    perm: torch.Tensor
    smooth: torch.Tensor | None
    fmt: SQFormat

    @property
    def inverse_perm(self) -> torch.Tensor:
        """int64 [K]: ``inv[perm[p]] = p``."""
        return torch.argsort(self.perm)

    @property
    def reordered_mask(self) -> torch.Tensor:
        """bool [K]: the mask in reordered channel order (the first k of every bank)."""
        return self.mask[self.perm]

    def smooth_input(self, x: torch.Tensor) -> torch.Tensor:
        """``X' = X / s`` (unchanged without smoothing)."""
        if self.smooth is None:
            return x
        return (x.to(torch.float64) / self.smooth.to(torch.float64)).to(x.dtype)

    def smooth_weight(self, w: torch.Tensor) -> torch.Tensor:
        """``W' = diag(s)·W`` (unchanged without smoothing)."""
        if self.smooth is None:
            return w
        return smooth(w, self.smooth)[0]

    def reorder_weight(self, w: torch.Tensor) -> torch.Tensor:
        """Rows of ``w`` in the offline order: ``w[perm]``."""
        return w[self.perm]

    def reorder_input(self, x: torch.Tensor) -> torch.Tensor:
        """Columns of ``x`` in the offline order (the host-side gather): ``x[:, perm]``."""
        return x[:, self.perm]


def activation_importance(x_calib: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """float64 [K]: ``I_j = |Ā_j · Σ_n W[j, n]|`` with ``Ā_j = mean_t |x_calib[t, j]|``.

    Pass the smoothed tensors (``X' = X / s``, ``W' = diag(s)·W``) for smoothed importance.
    The row sum is signed, as in the paper: a channel whose weights cancel ranks low.
    """
    a_bar = x_calib.detach().to(torch.float64).abs().mean(dim=0)
    return (a_bar * w.detach().to(torch.float64).sum(dim=1)).abs()


def calibrate_activation_mask(x_calib: torch.Tensor, w: torch.Tensor, fmt: SQFormat,
                              smooth_alpha: float | None = None) -> ActCalibration:
    """Fix the static activation mask of one layer from calibration data.

    Parameters
    ----------
    x_calib : float tensor [T, K]
        Calibration activations (T tokens).
    w : float tensor [K, N]
        The layer's weight (K = reduction dimension; ``nn.Linear.weight.T``).
    fmt : SQFormat
        The activation format; K must be a multiple of its bank size.
    smooth_alpha : float, optional
        SmoothQuant migration strength in [0, 1] (:func:`sqhw.golden.ptq.smooth_factors`,
        from the per-channel ``max |x_calib|``). The factors are recorded; the importance is
        computed on ``X' = X / s`` and ``W' = diag(s)·W``, so ``X'W' = XW``.

    Returns
    -------
    ActCalibration
        The top-k channels per bank by importance (ties: lower channel first, as
        :func:`~sqhw.golden.quantize.select_high`), and the reordering permutation.

    Raises
    ------
    ValueError, TypeError
        On bad shapes, non-finite values, a K that is not a multiple of the bank size or an
        ``smooth_alpha`` outside [0, 1].
    """
    check_float_2d("x_calib", x_calib, "[T, K]")
    check_float_2d("w", w, "[K, N]")
    K = w.shape[0]
    check_reduction_dim(K, fmt)
    if x_calib.shape[1] != K or x_calib.shape[0] == 0:
        raise ValueError(f"x_calib must be [T, K] with T > 0 and K = {K} (w's rows), "
                         f"not {list(x_calib.shape)}")
    s = None
    if smooth_alpha is not None:
        s = smooth_factors(x_calib.detach().abs().amax(dim=0), w, smooth_alpha)
        w = smooth(w, s)[0]
        x_calib = x_calib.to(torch.float64) / s.to(torch.float64)
    imp = activation_importance(x_calib, w)
    mask = select_high(imp[:, None], fmt)[:, 0].clone()
    return ActCalibration(mask=mask, importance=imp, perm=reorder_permutation(mask, fmt),
                          smooth=s, fmt=fmt)
