"""Activation mode (SQ-format §4): SQ on the activations with a static mask, dense weights.

The contract is written out in ``docs/activation-mode.md``; in short:

- :func:`calibrate_activation_mask` fixes offline one bit per input channel (exactly k high
  channels per bank) from the importance ``I_j = |Ā_j · Σ_n W'[j, n]|`` and records the
  weight-row permutation that puts, inside every bank, the high channels first
  (:class:`ActCalibration`).
- :func:`quantize_activation_sq` is the host's dynamic activation quantizer: per token and
  bank, the high channels in symmetric INT(h), the low channels in symmetric INT(l), with
  two-level scales (one float per token, integer codes per (token, bank, group)), returned
  as an :class:`SQActivation` whose codes stay in natural channel order.
- :func:`quantize_weight_dense` gives the dense symmetric INT4/INT8 weights with one float
  per output column (:class:`DenseWeight`).
- :func:`hw_matmul_act` is the bit-exact integer result, :func:`hw_bank_partials_act` the
  same datapath spelled out bank by bank (select & gather, reordered weights),
  :func:`descale_act` the host de-scaling, :func:`matmul_act` the float reference and
  :func:`act_error_bound` the guaranteed distance between the two.
- :func:`dynamic_activation_mask` / :func:`matmul_act_dynamic` are the per-token top-k
  variant: an accuracy reference only, the hardware has no top-k unit.
"""

from dataclasses import dataclass

import torch

from ..format import SQFormat, act_accumulator_bound, act_min_acc_bits
from ..format.spec import WEIGHT_BITS
from .hwmodel import quantize_activation
from .quantize import _quantize_group, select_high, two_level_scales
from .tensor import MalformedSQError

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

_EXACT_F64 = 1 << 53
# act_accumulator_bound / act_min_acc_bits live in sqhw.format (HWConfig checks them); they
# are re-exported here, next to the model they bound.


# -- masks -------------------------------------------------------------------------------

def _check_float_2d(name, t, shape_doc):
    if not isinstance(t, torch.Tensor) or t.dim() != 2 or not t.dtype.is_floating_point:
        raise ValueError(f"{name} must be a 2-D float tensor {shape_doc}, "
                         f"not {getattr(t, 'shape', t)!r}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} has non-finite values")


def _check_k(K, fmt):
    if not isinstance(fmt, SQFormat):
        raise TypeError(f"fmt must be an SQFormat, not {fmt!r}")
    b = fmt.bank_size
    if K == 0 or K % b:
        raise ValueError(f"K must be a positive multiple of bank_size {b}, not {K} "
                         f"(pad with zero channels)")


def check_activation_mask(mask: torch.Tensor, fmt: SQFormat, K: int | None = None) -> None:
    """Check a static mask ``bool [K]`` (or a per-token one, ``bool [M, K]``).

    Raises
    ------
    MalformedSQError
        On a wrong shape or dtype, or when a bank does not hold exactly ``fmt.k`` high
        channels; the message names the first bad bank (and token).
    """
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.dim() not in (1, 2):
        raise MalformedSQError(f"mask must be a bool tensor [K] (or [M, K]), not "
                               f"{getattr(mask, 'dtype', type(mask))} "
                               f"{list(getattr(mask, 'shape', []))}")
    b, k = fmt.bank_size, fmt.k
    Km = mask.shape[-1]
    if K is not None and Km != K:
        raise MalformedSQError(f"mask has {Km} channels, expected {K}")
    if Km % b or Km == 0:
        raise MalformedSQError(f"mask has {Km} channels, not a positive multiple of "
                               f"bank_size {b}")
    counts = mask.reshape(-1, Km // b, b).sum(dim=2)
    bad = counts != k
    if bool(bad.any()):
        m, j = (int(i) for i in bad.nonzero()[0])
        where = f"mask bank {j}" if mask.dim() == 1 else f"mask bank {j} of token {m}"
        raise MalformedSQError(f"{where} has {int(counts[m, j])} high channels, expected {k}")


def reorder_permutation(mask: torch.Tensor, fmt: SQFormat) -> torch.Tensor:
    """int64 [K]: the offline channel order of a static mask.

    Inside every bank the high channels come first, in increasing channel order, then the
    low channels, also in increasing order. ``perm[p]`` is the original channel at
    reordered position ``p``: reorder weights with ``w[perm]`` and activations with
    ``x[:, perm]``. Channels never leave their bank.
    """
    check_activation_mask(mask, fmt)
    if mask.dim() != 1:
        raise ValueError("reorder_permutation needs a static mask [K]")
    K, b = mask.shape[0], fmt.bank_size
    key = (~mask).reshape(K // b, b).to(torch.int8)          # 0 = high, 1 = low
    local = torch.sort(key, dim=1, stable=True).indices
    return (local + torch.arange(0, K, b)[:, None]).reshape(K)


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
        from .ptq import smooth
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
    _check_float_2d("x_calib", x_calib, "[T, K]")
    _check_float_2d("w", w, "[K, N]")
    K = w.shape[0]
    _check_k(K, fmt)
    if x_calib.shape[1] != K or x_calib.shape[0] == 0:
        raise ValueError(f"x_calib must be [T, K] with T > 0 and K = {K} (w's rows), "
                         f"not {list(x_calib.shape)}")
    s = None
    if smooth_alpha is not None:
        # SmoothQuant lives with the weight PTQ; imported here so that the integer model
        # does not depend on it.
        from .ptq import smooth, smooth_factors
        s = smooth_factors(x_calib.detach().abs().amax(dim=0), w, smooth_alpha)
        w = smooth(w, s)[0]
        x_calib = x_calib.to(torch.float64) / s.to(torch.float64)
    imp = activation_importance(x_calib, w)
    mask = select_high(imp[:, None], fmt)[:, 0].clone()
    return ActCalibration(mask=mask, importance=imp, perm=reorder_permutation(mask, fmt),
                          smooth=s, fmt=fmt)


def dynamic_activation_mask(x: torch.Tensor, fmt: SQFormat) -> torch.Tensor:
    """bool [M, K]: per token, the top-k ``|x|`` of every bank (ties: lower channel first).

    The dynamic variant is a **reference only**: the hardware uses a static mask.
    """
    _check_float_2d("x", x, "[M, K]")
    _check_k(x.shape[1], fmt)
    return select_high(x.detach().abs().T.contiguous(), fmt).T.contiguous()


# -- activations ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SQActivation:
    """Activations ``X[M, K]`` in SQ-format with a static mask, as the hardware receives them.

    Attributes
    ----------
    codes : torch.int32 [M, K]
        Natural channel order. A high channel holds a symmetric INT(h) code
        (``±(2^(h-1) - 1)``), a low channel a symmetric INT(l) code (``±(2^(l-1) - 1)``; 0
        when ``l = 0``). No vmask: the mask is static and known to the hardware.
    scale_high, scale_low : torch.int32 [M, K/b]
        Unsigned scale codes per (token, bank) of each group (``0 .. 2^sb - 1``; 0 = the
        group is all zero; ``scale_high`` is 0 when k = 0, ``scale_low`` when l = 0).
    token_scale : torch.float32 [M]
        One float per token (host side only).
    mask : torch.bool [K] (static) or [M, K] (dynamic reference only)
    fmt : SQFormat
        The activation format.

    The real value of element ``(m, i)`` in bank ``j`` is
    ``token_scale[m] · scale_<group>[m, j] · codes[m, i]``.
    """

    codes: torch.Tensor
    scale_high: torch.Tensor
    scale_low: torch.Tensor
    token_scale: torch.Tensor
    mask: torch.Tensor
    fmt: SQFormat

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.codes.shape)

    @property
    def n_banks(self) -> int:
        return self.codes.shape[1] // self.fmt.bank_size

    @property
    def is_static(self) -> bool:
        return self.mask.dim() == 1

    def _mask2d(self) -> torch.Tensor:
        return self.mask.expand(self.shape)

    def scale_codes(self) -> torch.Tensor:
        """int64 [M, K]: the scale code that multiplies each element (its group's)."""
        b = self.fmt.bank_size
        hi = self.scale_high.to(torch.int64).repeat_interleave(b, dim=1)
        lo = self.scale_low.to(torch.int64).repeat_interleave(b, dim=1)
        return torch.where(self._mask2d(), hi, lo)

    def effective(self) -> torch.Tensor:
        """int64 [M, K]: ``scale_code · code`` per element. Its plain dot product with the
        weights equals the hardware's banked sum (distributivity)."""
        return self.scale_codes() * self.codes.to(torch.int64)

    def steps(self) -> torch.Tensor:
        """float64 [M, K]: the quantization step of each element, ``token_scale·code``."""
        return self.scale_codes().to(torch.float64) * self.token_scale.to(torch.float64)[:, None]

    def dequantize(self) -> torch.Tensor:
        """float32 [M, K]: the real activations the codes stand for."""
        self.validate()
        x = self.effective().to(torch.float64) * self.token_scale.to(torch.float64)[:, None]
        return x.to(torch.float32)

    def high_codes(self) -> torch.Tensor:
        """int64 [M, K/b, k]: the high lanes of every bank, in increasing channel order
        (what the select-and-gather unit puts on its high outputs). Static masks only."""
        return self._lanes(True)

    def low_codes(self) -> torch.Tensor:
        """int64 [M, K/b, b-k]: the low lanes of every bank, in increasing channel order."""
        return self._lanes(False)

    def _lanes(self, high: bool) -> torch.Tensor:
        if not self.is_static:
            raise ValueError("lanes exist for a static mask only")
        self.validate()
        M, K = self.shape
        b, k = self.fmt.bank_size, self.fmt.k
        perm = reorder_permutation(self.mask, self.fmt).reshape(K // b, b)
        sel = perm[:, :k] if high else perm[:, k:]
        return self.codes.to(torch.int64)[:, sel]

    def reordered(self, perm: torch.Tensor) -> "SQActivation":
        """The same activations with channels in the order ``perm`` (host-side gather).

        ``perm`` must keep every channel inside its bank (as :func:`reorder_permutation`
        does), so the per-bank scale codes stay valid.
        """
        b = self.fmt.bank_size
        if not torch.equal(perm // b, torch.arange(perm.shape[0]) // b):
            raise ValueError("perm moves a channel out of its bank")
        mask = self.mask[..., perm]
        return SQActivation(codes=self.codes[:, perm], scale_high=self.scale_high,
                            scale_low=self.scale_low, token_scale=self.token_scale,
                            mask=mask, fmt=self.fmt)

    def validate(self) -> "SQActivation":
        """Check shapes, the mask and every code's range.

        Raises
        ------
        MalformedSQError
            Naming the first bad bank (and token).
        """
        fmt = self.fmt
        b = fmt.bank_size
        c = self.codes
        if c.dim() != 2 or c.shape[1] % b or c.dtype.is_floating_point or c.dtype == torch.bool:
            raise MalformedSQError(f"codes must be integer [M, K] with K a multiple of "
                                   f"bank_size {b}, not {c.dtype} {list(c.shape)}")
        M, K = c.shape
        nb = K // b
        for name, shape in (("scale_high", (M, nb)), ("scale_low", (M, nb)),
                            ("token_scale", (M,))):
            t = getattr(self, name)
            if tuple(t.shape) != shape:
                raise MalformedSQError(f"{name} must have shape {list(shape)}, "
                                       f"not {list(t.shape)}")
        check_activation_mask(self.mask, fmt, K)
        if self.mask.dim() == 2 and self.mask.shape[0] != M:
            raise MalformedSQError(f"a per-token mask must have {M} rows, "
                                   f"not {self.mask.shape[0]}")
        lim = torch.where(self._mask2d(), fmt.high_max, fmt.low_max)
        bad = c.to(torch.int64).abs() > lim
        if bool(bad.any()):
            m, i = (int(v) for v in bad.nonzero()[0])
            grp = "high" if bool(self._mask2d()[m, i]) else "low"
            raise MalformedSQError(f"{grp} code {int(c[m, i])} out of range "
                                   f"±{int(lim[m, i])} at channel {i} (bank {i // b}) "
                                   f"of token {m}")
        for name, present in (("scale_high", fmt.has_high), ("scale_low", fmt.has_low_scale)):
            s = getattr(self, name).to(torch.int64)
            hi = fmt.scale_max if present else 0
            bad = (s < 0) | (s > hi)
            if bool(bad.any()):
                m, j = (int(v) for v in bad.nonzero()[0])
                raise MalformedSQError(f"{name} code {int(s[m, j])} out of range 0..{hi} "
                                       f"in bank {j} of token {m}")
        if not torch.isfinite(self.token_scale).all() or (self.token_scale < 0).any():
            raise MalformedSQError("token_scale must be finite and non-negative")
        return self


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
    _check_float_2d("x", x, "[M, K]")
    M, K = x.shape
    _check_k(K, fmt)
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
    q_h = _quantize_group(xb, step_h, fmt.high_max)
    q_l = _quantize_group(xb, step_l, fmt.low_max)
    codes = torch.where(mb, q_h, q_l).reshape(M, K).to(torch.int32)
    return SQActivation(codes=codes, scale_high=code_high, scale_low=code_low,
                        token_scale=tok.to(torch.float32), mask=mask.clone(), fmt=fmt)


# -- weights -------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class DenseWeight:
    """Dense symmetric INT(``bits``) weights with one float scale per output column.

    Attributes
    ----------
    codes : torch.int8 [K, N]
        In ``±(2^(bits-1) - 1)``; rows in whatever channel order the caller keeps (natural
        order unless :meth:`reordered`).
    col_scale : torch.float32 [N]
    bits : int
        4 or 8.
    """

    codes: torch.Tensor
    col_scale: torch.Tensor
    bits: int

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.codes.shape)

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def validate(self) -> "DenseWeight":
        """Raises :class:`MalformedSQError` on a bad shape or an out-of-range code."""
        if self.bits not in WEIGHT_BITS:
            raise MalformedSQError(f"weight bits must be 4 or 8, not {self.bits}")
        c = self.codes
        if c.dim() != 2 or c.dtype.is_floating_point or c.dtype == torch.bool:
            raise MalformedSQError(f"weight codes must be integer [K, N], not "
                                   f"{c.dtype} {list(c.shape)}")
        if tuple(self.col_scale.shape) != (c.shape[1],):
            raise MalformedSQError(f"col_scale must have shape [{c.shape[1]}], "
                                   f"not {list(self.col_scale.shape)}")
        bad = c.to(torch.int64).abs() > self.qmax
        if bool(bad.any()):
            i, n = (int(v) for v in bad.nonzero()[0])
            raise MalformedSQError(f"weight code {int(c[i, n])} out of range ±{self.qmax} "
                                   f"at row {i} of column {n}")
        return self

    def dequantize(self) -> torch.Tensor:
        """float32 [K, N]."""
        self.validate()
        w = self.codes.to(torch.float64) * self.col_scale.to(torch.float64)[None, :]
        return w.to(torch.float32)

    def reordered(self, perm: torch.Tensor) -> "DenseWeight":
        """Rows in the order ``perm`` (the offline weight reordering)."""
        return DenseWeight(codes=self.codes[perm], col_scale=self.col_scale, bits=self.bits)


def quantize_weight_dense(w: torch.Tensor, bits: int = 8) -> DenseWeight:
    """Per-output-column symmetric INT``bits`` (4 or 8): ``scale[n] = max|w[:, n]| / qmax``,
    round half to even. An all-zero column gets scale 1 and codes 0."""
    if bits not in WEIGHT_BITS:
        raise ValueError(f"bits must be 4 or 8, not {bits}")
    _check_float_2d("w", w, "[K, N]")
    codes_t, scale = quantize_activation(w.T, bits)   # per row of w.T = per column of w
    return DenseWeight(codes=codes_t.T.contiguous().to(torch.int8), col_scale=scale, bits=bits)


# -- integer semantics ---------------------------------------------------------------------

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


def hw_matmul_act(act: SQActivation, weight: DenseWeight,
                  acc_bits: int | None = None) -> torch.Tensor:
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

    Raises
    ------
    MalformedSQError
        If a bank of the mask does not hold exactly k high channels, or a code is out of
        range.
    ValueError
        On a per-token mask, mismatched K, or a K that could overflow ``acc_bits``.
    """
    _check_pair(act, weight)
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
