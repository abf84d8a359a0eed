"""A drop-in ``nn.Linear`` replacement computed through the golden model.

Every :class:`SQLinear` of a model shares one :class:`EvalContext`, which says what the
next forward pass does:

- ``mode = "float"``: the original float layer; with ``calibrate`` it accumulates the
  input statistics (:class:`~sqhw.golden.ptq.HessianAccumulator`), with ``capture`` it keeps
  its output as the FP32 reference of the coming quantized pass.
- ``mode = "quant"``: activations quantized per token (``quantize_activation``), weights as
  an :class:`~sqhw.golden.SQTensor`, along one of two paths:

  - ``"hw"``: ``descale(hw_matmul(x_int, sq), sx, sq)``, the bit-exact hardware integers;
  - ``"fast"``: ``descale(x_int @ W_eff)`` with the integer effective weight held in float32:
    the same integers summed in float32, so it differs from ``"hw"`` only by float32
    summation rounding, ``|Δacc| ≤ γ_K · (|x_int| @ |W_eff|)`` with ``γ_K = K·u/(1-K·u)``,
    ``u = 2⁻²⁴`` (checked by ``verif/eval``).

Padding tokens (``attention_mask = 0``) are skipped: their outputs are 0, which no real
token can see (attention masks them and pooling ignores them). An input whose rows are not
the batch's tokens (BERT's pooler, which sees only [CLS]) is taken whole.
"""

from dataclasses import dataclass, field

import torch
from torch import nn

from ..golden import SQTensor, descale, hw_matmul, quantize_activation
from ..golden.ptq import HessianAccumulator

__all__ = ["EvalContext", "LayerSNR", "SQLinear", "instrument", "fast_matmul", "hw_path_matmul"]


@dataclass
class LayerSNR:
    """Signal and noise energies of one layer's output, summed over real tokens."""

    signal: float = 0.0
    noise: float = 0.0

    def add(self, ref: torch.Tensor, y: torch.Tensor) -> None:
        self.signal += float(ref.square().sum(dtype=torch.float64))
        self.noise += float((y - ref).square().sum(dtype=torch.float64))

    @property
    def db(self) -> float:
        """``10·log10(signal / noise)``; ``inf`` when the output is exact."""
        if self.noise == 0.0:
            return float("inf")
        return 10.0 * torch.log10(torch.tensor(self.signal / self.noise)).item()


@dataclass
class EvalContext:
    """Shared state of all the :class:`SQLinear` of one model (see the module docstring)."""

    layers: dict = field(default_factory=dict)
    mode: str = "float"
    path: str = "fast"
    valid: torch.Tensor | None = None
    calibrate: bool = False
    capture: bool = False
    local_snr: bool = True
    stats: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)
    snr: dict = field(default_factory=dict)
    snr_local: dict = field(default_factory=dict)

    def set_attention_mask(self, attention_mask: torch.Tensor) -> None:
        self.valid = attention_mask.reshape(-1).bool()

    def reset_snr(self) -> None:
        self.snr = {name: LayerSNR() for name in self.layers}
        self.snr_local = {name: LayerSNR() for name in self.layers}


def fast_matmul(x_int: torch.Tensor, sq: SQTensor, w_eff32: torch.Tensor | None = None):
    """Integer activations times the effective weight, summed in float32 (not exact)."""
    if w_eff32 is None:
        w_eff32 = sq.effective_weight_f64().to(torch.float32)
    return x_int.to(torch.float32) @ w_eff32


def hw_path_matmul(x_int: torch.Tensor, sq: SQTensor, act_bits: int) -> torch.Tensor:
    """The bit-exact hardware result (:func:`sqhw.golden.hw_matmul`)."""
    return hw_matmul(x_int, sq, act_bits=act_bits)


class SQLinear(nn.Module):
    """``y = x Wᵀ + b`` through the SQ golden model (see the module docstring).

    Parameters
    ----------
    name : str
        The layer's dotted name in the model.
    linear : nn.Linear
        The float layer (its parameters are kept, not copied).
    ctx : EvalContext
    """

    def __init__(self, name: str, linear: nn.Linear, ctx: EvalContext):
        super().__init__()
        self.name = name
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        self.ctx = ctx
        self.sq: SQTensor | None = None
        self.smooth: torch.Tensor | None = None
        self.act_bits = 8
        self._w_eff32: torch.Tensor | None = None
        self.w_float: torch.Tensor | None = None

    def set_quantized(self, sq: SQTensor, smooth: torch.Tensor | None, act_bits: int) -> None:
        """Install the quantized weight ``sq`` ([in, out]), the smoothing factors to divide
        the input by (or None) and the activation width."""
        if sq.shape != (self.in_features, self.out_features):
            raise ValueError(f"{self.name}: SQTensor shape {sq.shape} is not "
                             f"{(self.in_features, self.out_features)}")
        self.sq, self.smooth, self.act_bits = sq, smooth, act_bits
        self._w_eff32 = sq.effective_weight_f64().to(torch.float32)   # validates
        self.w_float = None

    def set_float_weight(self, w: torch.Tensor, smooth: torch.Tensor | None,
                         act_bits: int) -> None:
        """Install a float weight ``w`` ([in, out]) instead of an SQTensor: the float-scale
        reference (ideal per-(bank, column) float scales), which no hardware computes. The
        activations are still quantized per token; only the ``"fast"`` path exists."""
        if tuple(w.shape) != (self.in_features, self.out_features):
            raise ValueError(f"{self.name}: weight shape {tuple(w.shape)} is not "
                             f"{(self.in_features, self.out_features)}")
        self.sq, self._w_eff32 = None, None
        self.w_float, self.smooth, self.act_bits = w.to(torch.float32), smooth, act_bits

    def float_forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias)

    def quant_forward(self, x: torch.Tensor, path: str) -> torch.Tensor:
        """Quantized output of float tokens ``x[M, in]`` along ``path`` ("fast" or "hw")."""
        if self.sq is None and self.w_float is None:
            raise RuntimeError(f"{self.name}: no quantized weight installed")
        if self.smooth is not None:
            x = x / self.smooth
        x_int, sx = quantize_activation(x, self.act_bits)
        if self.sq is None:
            if path != "fast":
                raise ValueError(f"{self.name}: a float-scale reference weight has no "
                                 f"hardware path; use path='fast'")
            y = (x_int.to(torch.float32) @ self.w_float) * sx[:, None]
            return y + self.bias if self.bias is not None else y
        if path == "hw":
            acc = hw_path_matmul(x_int, self.sq, self.act_bits)
        elif path == "fast":
            acc = fast_matmul(x_int, self.sq, self._w_eff32)
        else:
            raise ValueError(f"path must be 'fast' or 'hw', not {path!r}")
        y = descale(acc, sx, self.sq)
        return y + self.bias if self.bias is not None else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ctx = self.ctx
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.in_features)
        valid = ctx.valid
        if valid is not None and valid.shape[0] != flat.shape[0]:
            valid = None        # not per token (BERT's pooler sees only [CLS]): all rows real
        xv = flat[valid] if valid is not None else flat
        if ctx.mode == "float":
            yv = self.float_forward(xv)
            if ctx.calibrate:
                ctx.stats.setdefault(self.name, HessianAccumulator(self.in_features)).add(xv)
            if ctx.capture:
                ctx.reference[self.name] = yv
        elif ctx.mode == "quant":
            yv = self.quant_forward(xv, ctx.path)
            ref = ctx.reference.pop(self.name, None)
            if ref is not None:
                ctx.snr[self.name].add(ref, yv)
            if ctx.local_snr:
                ctx.snr_local[self.name].add(self.float_forward(xv), yv)
        else:
            raise ValueError(f"mode must be 'float' or 'quant', not {ctx.mode!r}")
        if valid is None:
            return yv.reshape(*lead, self.out_features)
        y = yv.new_zeros(flat.shape[0], self.out_features)
        y[valid] = yv
        return y.reshape(*lead, self.out_features)


def instrument(model: nn.Module, ctx: EvalContext | None = None,
               layer: type[SQLinear] = SQLinear) -> EvalContext:
    """Replace every ``nn.Linear`` of ``model`` (in place) by a ``layer`` (an
    :class:`SQLinear` or a subclass of it) sharing ``ctx``.

    Parameters
    ----------
    model : nn.Module
    ctx : EvalContext, optional
        The shared context (a fresh :class:`EvalContext` by default); a subclass for a layer
        class that keeps more state (the activation mode's, :mod:`sqhw.report.accuracy`).
    layer : type
        The replacement, called as ``layer(name, linear, ctx)``.

    Returns
    -------
    EvalContext
        ``ctx``, with ``layers`` mapping each dotted name to its replacement, in model order.
    """
    ctx = EvalContext() if ctx is None else ctx
    targets = [(name, mod) for name, mod in model.named_modules() if isinstance(mod, nn.Linear)]
    for name, lin in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        q = layer(name, lin, ctx)
        setattr(parent, attr, q)
        ctx.layers[name] = q
    ctx.reset_snr()
    return ctx
