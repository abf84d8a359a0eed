"""The SQTensor container and its validation."""

from dataclasses import dataclass, field

import torch

from ..format import SQFormat

__all__ = ["SQTensor", "MalformedSQError"]


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
