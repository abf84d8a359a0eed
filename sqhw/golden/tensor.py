"""The containers of both modes and their validation.

Weight mode: :class:`SQTensor` (a weight in SQ-format). Activation mode: :class:`SQActivation`
(activations in SQ-format with a static mask), :class:`DenseWeight` (the dense weights it
multiplies), and the static mask's checks and offline channel order
(:func:`check_activation_mask`, :func:`reorder_permutation`).
"""

from dataclasses import dataclass, field

import torch

from ..format import WEIGHT_BITS, SQFormat

__all__ = ["SQTensor", "MalformedSQError", "SQActivation", "DenseWeight",
           "check_activation_mask", "reorder_permutation"]


class MalformedSQError(ValueError):
    """An SQ tensor or memory image breaks the format: wrong vmask count, a code out of
    range, a wrong shape, or a truncated image. The message names the first bad bank."""


@dataclass(frozen=True, eq=False)
class SQTensor:
    """A weight ``W[K, N]`` in SQ-format, exactly as the hardware holds it.

    Attributes
    ----------
    low : torch.int8 [K, N]
        Low-precision codes; the vmask code marks the k high positions of every bank.
    high : torch.int8 [k·K/b, N]
        High-precision values, bank by bank, in increasing position order.
    scale_low, scale_high : torch.int32 [K/b, N]
        Unsigned per-(bank, column) scale codes (datasheet §3).
    col_scale : torch.float32 [N]
        Per-column float scale (host side only).
    fmt : SQFormat

    Notes
    -----
    The integer effective weight used by :func:`~sqhw.golden.hw_matmul` is cached and keyed
    on the code tensors' torch version counters, so any in-place edit through torch
    (views included) invalidates it. An edit made behind torch's back, through
    ``tensor.numpy()``, does not bump the counter: build a new SQTensor instead.
    """

    low: torch.Tensor
    high: torch.Tensor
    scale_low: torch.Tensor
    scale_high: torch.Tensor
    col_scale: torch.Tensor
    fmt: SQFormat
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def _key(self):
        # Tensor version counters change on every in-place edit, so nothing cached can
        # outlive a change to the codes. Inference-mode tensors have no version counter
        # (and may still be edited inside inference mode): never cache those (key None).
        tensors = (self.low, self.high, self.scale_low, self.scale_high)
        if any(t.is_inference() for t in tensors):
            return None
        return tuple((id(t), t._version) for t in tensors)

    def _cached(self, name, compute):
        key = self._key()
        hit = self._cache.get(name)
        if key is None or hit is None or hit[0] != key:
            hit = (key, compute())
            self._cache[name] = hit
        return hit[1]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.low.shape)

    @property
    def n_banks(self) -> int:
        return self.low.shape[0] // self.fmt.bank_size

    @property
    def mask(self) -> torch.Tensor:
        """bool [K, N]: True where the element is held in high precision."""
        return self.low == self.fmt.vmask

    def low_values(self) -> torch.Tensor:
        """int64 [K, N]: low codes with vmask counted as 0 (what the low path multiplies)."""
        return self.low.to(torch.int64).masked_fill(self.mask, 0)

    def _high_gathered(self, dtype) -> torch.Tensor:
        """[nb, b, N]: high values at their positions, 0 elsewhere (needs valid counts)."""
        nb, b, k, N = self.n_banks, self.fmt.bank_size, self.fmt.k, self.shape[1]
        if not k:
            return torch.zeros(nb, b, N, dtype=dtype)
        mask = self.mask.view(nb, b, N).to(torch.int16)
        # rank of each vmask position among its bank's (1..k), 0 elsewhere; slot 0 of the
        # padded high values holds 0, so non-vmask positions gather a 0.
        rank = mask.cumsum(1, dtype=torch.int16).mul_(mask).long()
        padded = torch.cat([torch.zeros(nb, 1, N, dtype=dtype),
                            self.high.view(nb, k, N).to(dtype)], dim=1)
        return torch.gather(padded, 1, rank)

    def high_dense(self) -> torch.Tensor:
        """int64 [K, N]: the high values scattered back to their positions, 0 elsewhere.

        Call :meth:`validate` first; it assumes exactly k vmask codes per bank.
        """
        return self._high_gathered(torch.int64).reshape(self.shape)

    def effective_weight(self) -> torch.Tensor:
        """int64 [K, N]: ``scale_low·low + scale_high·high`` per element: the integer weight
        whose plain dot product equals the hardware's banked sum (distributivity)."""
        return self._effective(torch.int64)

    def _effective(self, dtype) -> torch.Tensor:
        nb, b, N = self.n_banks, self.fmt.bank_size, self.shape[1]
        w = self.low.view(nb, b, N).to(dtype).masked_fill_(self.mask.view(nb, b, N), 0)
        w.mul_(self.scale_low.to(dtype)[:, None, :])
        hv = self._high_gathered(dtype).mul_(self.scale_high.to(dtype)[:, None, :])
        return w.add_(hv).view(self.shape)

    def effective_weight_f64(self) -> torch.Tensor:
        """float64 [K, N] copy of :meth:`effective_weight`, validated and cached per tensor
        version (exact: every value is below 2^24)."""
        def compute():
            self.validate()
            return self._effective(torch.float32).to(torch.float64)
        return self._cached("eff64", compute)

    def dequantize(self) -> torch.Tensor:
        """float32 [K, N]: the real weights the codes stand for."""
        self.validate()
        w = self.effective_weight().to(torch.float64) * self.col_scale.to(torch.float64)
        return w.to(torch.float32)

    def validate(self) -> "SQTensor":
        """Check shapes, dtypes, code ranges and the vmask count of every bank.

        Raises
        ------
        MalformedSQError
            Naming the first bad (bank, column).
        """
        fmt = self.fmt
        b, k = fmt.bank_size, fmt.k
        if self.low.dim() != 2 or self.low.shape[0] % b:
            raise MalformedSQError(
                f"low must be [K, N] with K a multiple of bank_size {b}, "
                f"not {list(self.low.shape)}")
        K, N = self.low.shape
        nb = K // b
        expect = {"low": (K, N), "high": (k * nb, N), "scale_low": (nb, N),
                  "scale_high": (nb, N), "col_scale": (N,)}
        for name, shape in expect.items():
            t = getattr(self, name)
            if tuple(t.shape) != shape:
                raise MalformedSQError(f"{name} must have shape {list(shape)}, "
                                       f"not {list(t.shape)}")
            if name != "col_scale" and (t.dtype.is_floating_point or t.dtype == torch.bool):
                raise MalformedSQError(f"{name} must hold integer codes, not {t.dtype}")
        counts = self.mask.reshape(nb, b, N).sum(dim=1, dtype=torch.int16)
        _first_bad(counts != k, "bank {j} of column {n} has {v} vmask codes, expected "
                   f"{k}", counts)
        low = self.low
        _first_bad((low < fmt.vmask) | (low > fmt.low_max), "low code {v} out of range "
                   f"[{fmt.vmask}, {fmt.low_max}] in bank {{j}} of column {{n}}",
                   low, bank=b)
        high = self.high
        if k:
            _first_bad((high < -fmt.high_max) | (high > fmt.high_max),
                       "high code {v} out of range "
                       f"±{fmt.high_max} in bank {{j}} of column {{n}}", high, bank=k)
        for name in ("scale_low", "scale_high"):
            s = getattr(self, name)
            _first_bad((s < 0) | (s > fmt.scale_max), name + " code {v} out of range "
                       f"0..{fmt.scale_max} in bank {{j}} of column {{n}}", s)
        absent = [name for name, present in (("scale_low", fmt.has_low_scale),
                                             ("scale_high", fmt.has_high)) if not present]
        for name in absent:  # the image has no field for it (datasheet §4)
            s = getattr(self, name).to(torch.int64)
            _first_bad(s != 0, name + " code {v} in bank {j} of column {n} must be 0: "
                       f"{fmt.name} has no such group", s)
        if not torch.isfinite(self.col_scale).all() or (self.col_scale < 0).any():
            raise MalformedSQError("col_scale must be finite and non-negative")
        return self


def _first_bad(bad: torch.Tensor, template: str, values: torch.Tensor, bank: int = 1):
    if bool(bad.any()):
        r, n = (int(i) for i in bad.nonzero()[0])
        raise MalformedSQError(template.format(j=r // bank, n=n, v=int(values[r, n])))


# -- argument checks shared by the quantizers and the calibration (package-internal) --------

def check_float_2d(name: str, t, shape_doc: str) -> None:
    """Raise ValueError unless ``t`` is a finite 2-D float tensor (``shape_doc`` names its
    shape in the message). Package-internal: not part of ``__all__``."""
    if not isinstance(t, torch.Tensor) or t.dim() != 2 or not t.dtype.is_floating_point:
        raise ValueError(f"{name} must be a 2-D float tensor {shape_doc}, "
                         f"not {getattr(t, 'shape', t)!r}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} has non-finite values")


def check_reduction_dim(K: int, fmt: SQFormat) -> None:
    """Raise unless ``fmt`` is an SQFormat and ``K`` a positive multiple of its bank size.
    Package-internal: not part of ``__all__``."""
    if not isinstance(fmt, SQFormat):
        raise TypeError(f"fmt must be an SQFormat, not {fmt!r}")
    b = fmt.bank_size
    if K == 0 or K % b:
        raise ValueError(f"K must be a positive multiple of bank_size {b}, not {K} "
                         f"(pad with zero channels)")


# -- activation mode: the static mask -------------------------------------------------------

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



# -- activation mode: the containers -------------------------------------------------------

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
