"""The accuracy stage: all-MiniLM-L6-v2 through the golden model, scored against FP32.

Weight mode is exactly ``python -m sqhw.eval`` (:mod:`sqhw.eval.run`: calibrate,
quantize_model, evaluate on the fast path). The activation mode (SQ-format on the
activations with a static mask) uses :class:`ActSQLinear`, an :class:`~sqhw.eval.SQLinear`
whose quantized forward pass is the golden activation-mode model of
:mod:`sqhw.golden` (``docs/activation-mode.md``):

- calibration accumulates each linear's mean ``|x|`` per input channel (real tokens only,
  FP32 model) next to the usual statistics;
- :func:`~sqhw.golden.calibrate_activation_mask` fixes the static mask from it: the
  importance ``|Ā_j · Σ_n W[j, n]|`` needs only ``Ā``, so one calibration row holding ``Ā``
  gives the same mask as all calibration tokens (the mean of ``|Ā|`` over one row is
  ``Ā``). No smoothing (it cancels in this importance, docs/activation-mode.md §2);
- weights: :func:`~sqhw.golden.quantize_weight_dense`, symmetric per output column (RTN),
  or with ``+gptq`` :func:`~sqhw.golden.ptq.gptq_quantize_dense` (the dense baseline's GPTQ,
  run in the static mask's reordered row order);
- every forward pass: :func:`~sqhw.golden.quantize_activation_sq` (per token, two-level
  scales), :func:`~sqhw.golden.hw_matmul_act` (the bit-exact integers, one float64
  product, exact below 2^53), :func:`~sqhw.golden.descale_act`. With ``+dynamic`` the
  per-token top-k mask of :func:`~sqhw.golden.matmul_act_dynamic` replaces the static one
  (an accuracy reference: no hardware computes it).

A worker process loads each model once and calibrates once per calibration subset (module
globals), so a worker that runs many configurations pays for that only once.
"""

import os
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..eval.quantized import EvalContext, SQLinear, instrument
from ..golden import (
    ActCalibration,
    DenseWeight,
    descale_act,
    hw_matmul_act,
    matmul_act_dynamic,
    quantize_activation_sq,
)

__all__ = ["ActSQLinear", "ActEvalContext", "instrument_act", "quantize_act_model",
           "run_accuracy", "calibration_sentences", "mask_hex", "mask_from_hex",
           "ACCURACY_KEYS"]

#: The scalar metrics kept in the report (per-layer dictionaries are dropped).
ACCURACY_KEYS = ("cosine_mean", "cosine_min", "top1_agreement", "snr_db_mean", "snr_db_min")

BATCH_SIZE = 32


@dataclass
class ActEvalContext(EvalContext):
    """:class:`~sqhw.eval.EvalContext` plus, per layer, ``(Σ|x| per channel, tokens)`` of
    the calibration pass."""

    abs_sum: dict = field(default_factory=dict)


class ActSQLinear(SQLinear):
    """An :class:`~sqhw.eval.SQLinear` whose quantized pass is the activation mode (see
    the module docstring). Float mode, capture and SNR are the parent's; calibration also
    accumulates ``Σ|x|`` per input channel over real tokens.

    Parameters
    ----------
    name : str
    linear : nn.Linear
    ctx : ActEvalContext
    """

    def __init__(self, name: str, linear: nn.Linear, ctx: ActEvalContext):
        super().__init__(name, linear, ctx)
        self.act_cal: ActCalibration | None = None
        self.dense: DenseWeight | None = None
        self.dynamic = False

    def set_act_quantized(self, cal: ActCalibration, dense: DenseWeight,
                          dynamic: bool = False) -> None:
        """Install the static-mask calibration and the dense weight (``[in, out]``);
        ``dynamic``: use the per-token top-k mask instead (reference, not hardware)."""
        if dense.shape != (self.in_features, self.out_features):
            raise ValueError(f"{self.name}: weight shape {dense.shape} is not "
                             f"{(self.in_features, self.out_features)}")
        self.act_cal, self.dense, self.dynamic = cal, dense.validate(), dynamic

    def quant_forward(self, x: torch.Tensor, path: str) -> torch.Tensor:
        """Activation-mode output of float tokens ``x[M, in]``; always the bit-exact
        integers (``path`` is ignored: ``hw_matmul_act`` is one exact float64 product)."""
        if self.act_cal is None or self.dense is None:
            raise RuntimeError(f"{self.name}: no activation-mode quantization installed")
        if self.dynamic:
            y = matmul_act_dynamic(x, self.dense, self.act_cal.fmt)
            return y + self.bias if self.bias is not None else y
        act = quantize_activation_sq(x, self.act_cal.mask, self.act_cal.fmt)
        y = descale_act(hw_matmul_act(act, self.dense), act, self.dense)
        return y + self.bias if self.bias is not None else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ctx = self.ctx
        if ctx.mode == "float" and ctx.calibrate:
            flat = x.detach().reshape(-1, self.in_features)
            valid = ctx.valid
            if valid is not None and valid.shape[0] == flat.shape[0]:
                flat = flat[valid]      # real tokens only (as SQLinear.forward selects them)
            total, count = ctx.abs_sum.get(self.name, (0.0, 0))
            ctx.abs_sum[self.name] = (flat.to(torch.float64).abs().sum(dim=0) + total,
                                      count + flat.shape[0])
        return super().forward(x)


def instrument_act(model) -> ActEvalContext:
    """Replace every ``nn.Linear`` of ``model`` (in place) by an :class:`ActSQLinear`
    (:func:`sqhw.eval.instrument` with an :class:`ActEvalContext`).

    Returns
    -------
    ActEvalContext
        With ``layers`` in model order and an ``abs_sum`` dict for calibration.
    """
    return instrument(model, ActEvalContext(), ActSQLinear)


def quantize_act_model(ctx, fmt, weight_bits: int, gptq: bool = False,
                       dynamic: bool = False, percdamp: float = 0.01) -> dict:
    """Fix every layer's static activation mask and quantize its weight densely.

    Needs :func:`sqhw.eval.run.calibrate` first (it fills ``ctx.abs_sum`` and, for
    ``gptq``, the Hessians in ``ctx.stats``).

    Parameters
    ----------
    ctx : ActEvalContext
    fmt : SQFormat
        The activation format.
    weight_bits : int
        4 or 8.
    gptq : bool
        GPTQ (:func:`~sqhw.golden.ptq.gptq_quantize_dense`, in the mask's reordered row
        order) instead of per-column RTN.
    dynamic : bool
        Evaluate with the per-token top-k mask (reference) instead of the static one.
    percdamp : float
        GPTQ's Hessian damping.

    Returns
    -------
    dict
        ``weight_rel_err`` (mean over layers of ``||W - Ŵ||_F / ||W||_F``), ``seconds`` and
        ``mask_hex``: every layer's static mask, in model order, as one hex string (bit j of
        the concatenated masks is ``mask[j]``, least significant bit first per byte).
    """
    from ..golden import calibrate_activation_mask, quantize_weight_dense
    from ..golden.ptq import gptq_quantize_dense
    t0 = time.perf_counter()
    errs, masks = [], []
    for name, layer in ctx.layers.items():
        if name not in ctx.abs_sum:
            raise RuntimeError(f"{name}: no calibration statistics (run calibrate first)")
        total, count = ctx.abs_sum[name]
        a_bar = (total / max(count, 1))[None, :]
        w = layer.weight.detach().T.contiguous()                  # [K = in, N = out]
        cal = calibrate_activation_mask(a_bar, w, fmt)
        if gptq:
            st = ctx.stats.get(name)
            if st is None:
                raise RuntimeError(f"{name}: no calibration Hessian (run calibrate first)")
            dense = gptq_quantize_dense(w, st.hessian, weight_bits, cal.perm, percdamp)
        else:
            dense = quantize_weight_dense(w, weight_bits)
        layer.set_act_quantized(cal, dense, dynamic)
        masks.append(cal.mask)
        w64 = w.to(torch.float64)
        errs.append(float((dense.dequantize().to(torch.float64) - w64).norm() / w64.norm()))
    return {"weight_rel_err": sum(errs) / len(errs), "seconds": time.perf_counter() - t0,
            "mask_hex": mask_hex(torch.cat(masks))}


def mask_hex(mask: torch.Tensor) -> str:
    """A bool tensor as hex, 8 bits per byte, least significant bit first (zero-padded)."""
    bits = torch.nn.functional.pad(mask.to(torch.uint8), (0, -mask.numel() % 8))
    weights = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)
    return bytes((bits.view(-1, 8) * weights).sum(dim=1).tolist()).hex()


def mask_from_hex(text: str, n: int) -> torch.Tensor:
    """The inverse of :func:`mask_hex` for ``n`` bits."""
    raw = torch.tensor(list(bytes.fromhex(text)), dtype=torch.uint8)
    bits = (raw[:, None] >> torch.arange(8, dtype=torch.uint8)) & 1
    return bits.reshape(-1)[:n].bool()


# -- per-process state ----------------------------------------------------------------------

_STATE: dict = {"models": {}, "calibrated": {}, "ref": {}, "corpus": None}


def _corpus():
    if _STATE["corpus"] is None:
        from ..eval.corpus import load_corpus
        _STATE["corpus"] = load_corpus()
    return _STATE["corpus"]


def _model(mode: str):
    """``(tok, model, ctx)`` of this process, loaded once per mode."""
    if mode not in _STATE["models"]:
        if mode == "weight":
            from ..eval.run import load_instrumented
            _STATE["models"][mode] = load_instrumented()
        else:
            from ..eval.model import load_minilm
            tok, model = load_minilm()
            _STATE["models"][mode] = (tok, model, instrument_act(model))
    return _STATE["models"][mode]


def calibration_sentences(sentences, n_calib: int | None, draw: int | None = None) -> list:
    """The calibration subset: the first ``n_calib`` sentences (all if None) when ``draw``
    is None, else ``n_calib`` sentences drawn without replacement with seed ``draw`` (kept
    in corpus order), so draws 0, 1, 2 of one size are three reproducible subsets."""
    sentences = list(sentences)
    if draw is None:
        return sentences[:n_calib]
    n = len(sentences) if n_calib is None else min(n_calib, len(sentences))
    g = torch.Generator().manual_seed(int(draw))
    idx = torch.sort(torch.randperm(len(sentences), generator=g)[:n]).values
    return [sentences[i] for i in idx.tolist()]


def _calibrated(mode: str, n_calib: int | None, draw: int | None = None):
    tok, model, ctx = _model(mode)
    if _STATE["calibrated"].get(mode, -1) != (n_calib, draw):
        from ..eval.run import calibrate
        if mode == "activation":
            ctx.abs_sum.clear()
        calibrate(tok, model, ctx, calibration_sentences(_corpus().calibration, n_calib, draw),
                  BATCH_SIZE)
        _STATE["calibrated"][mode] = (n_calib, draw)
    return tok, model, ctx


def _reference(n_eval: int | None):
    """FP32 embeddings of the first ``n_eval`` evaluation sentences (computed once)."""
    if n_eval not in _STATE["ref"]:
        from ..eval.run import fp32_embeddings
        tok, model, ctx = _model("weight")
        evals = list(_corpus().evaluation[:n_eval])
        _STATE["ref"][n_eval] = fp32_embeddings(tok, model, ctx, evals, BATCH_SIZE)
    return _STATE["ref"][n_eval]


def run_accuracy(spec: str, n_eval: int | None, n_calib: int | None, snr_sentences: int,
                 threads: int = 1, calib_draw: int | None = None) -> dict:
    """Measure one configuration (weight or activation mode) in this process.

    Parameters
    ----------
    spec : str
        A report configuration name (:func:`~sqhw.report.configs.parse_report_config`).
    n_eval, n_calib : int or None
        First N evaluation / calibration sentences (None: all).
    snr_sentences : int
        Per-layer SNR over the first N evaluation sentences.
    threads : int
        torch intra-op threads.
    calib_draw : int, optional
        Draw the calibration subset at random with this seed
        (:func:`calibration_sentences`) instead of taking the first ``n_calib``.

    Returns
    -------
    dict
        :data:`ACCURACY_KEYS`, ``weight_rel_err``, ``n_eval``, ``n_calib``,
        ``snr_sentences``, ``quantize_seconds``, ``eval_seconds``; in activation mode also
        ``mask_hex`` (:func:`quantize_act_model`).
    """
    from ..eval.configs import parse_config
    from ..eval.run import evaluate, quantize_model
    from .configs import parse_report_config

    torch.set_num_threads(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cfg = parse_report_config(spec)
    corpus = _corpus()
    evals = list(corpus.evaluation[:n_eval])
    ref = _reference(n_eval)
    if cfg.mode == "weight":
        method = parse_config(spec)
        if method.needs_hessian or method.smooth_alpha is not None:
            tok, model, ctx = _calibrated("weight", n_calib, calib_draw)
        else:
            tok, model, ctx = _model("weight")
        q = quantize_model(ctx, method)
    else:
        tok, model, ctx = _calibrated("activation", n_calib, calib_draw)
        q = quantize_act_model(ctx, cfg.fmt, cfg.weight_bits, gptq=cfg.gptq,
                               dynamic=cfg.dynamic)
    r = evaluate(tok, model, ctx, evals, "fast", BATCH_SIZE, ref=ref,
                 snr_sentences=snr_sentences, local_snr=False)
    out = {k: r[k] for k in ACCURACY_KEYS}
    if "mask_hex" in q:
        out["mask_hex"] = q["mask_hex"]
    out.update(weight_rel_err=q["weight_rel_err"], n_eval=len(evals),
               n_calib=len(calibration_sentences(corpus.calibration, n_calib, calib_draw)),
               snr_sentences=r["snr_sentences"],
               quantize_seconds=round(q["seconds"], 2), eval_seconds=round(r["seconds"], 2))
    return out
