"""Calibrate, quantize and score all-MiniLM-L6-v2 against its FP32 self."""

import math
import time
from collections.abc import Callable, Sequence

import torch

from ..golden.ptq import PTQMethod, quantize_layer
from .model import encode, load_minilm, tokenized_batches
from .quantized import EvalContext, instrument

__all__ = ["load_instrumented", "calibrate", "quantize_model", "fp32_embeddings", "evaluate",
           "embedding_metrics", "top1_neighbours"]

Progress = Callable[[str], None] | None


def load_instrumented():
    """``(tokenizer, model, ctx)``: the model with its 37 linears replaced by SQLinear."""
    tok, model = load_minilm()
    ctx = instrument(model)
    return tok, model, ctx


def calibrate(tok, model, ctx: EvalContext, sentences: Sequence[str], batch_size: int = 32,
              progress: Progress = None) -> None:
    """Run the FP32 model over ``sentences`` and accumulate every linear's input
    statistics (``ctx.stats``: Hessian and per-channel max, over real tokens only)."""
    ctx.stats.clear()
    ctx.mode, ctx.calibrate, ctx.capture = "float", True, False
    try:
        encode(tok, model, sentences, batch_size, before_batch=ctx.set_attention_mask,
               progress=_reporter(progress, "calibrate"))
    finally:
        ctx.calibrate, ctx.valid = False, None


def quantize_model(ctx: EvalContext, method: PTQMethod, progress: Progress = None) -> dict:
    """Quantize every linear of the model with ``method`` (needs :func:`calibrate` first
    when the method uses the Hessian or smoothing).

    Returns
    -------
    dict
        ``weight_rel_err``: mean over layers of ``||W - Ŵ||_F / ||W||_F``, with ``Ŵ`` the
        dequantized weight with any smoothing undone; ``seconds``.
    """
    t0 = time.perf_counter()
    errs = []
    names = list(ctx.layers)
    for i, (name, layer) in enumerate(ctx.layers.items()):
        st = ctx.stats.get(name)
        if st is None and (method.needs_hessian or method.smooth_alpha is not None):
            raise RuntimeError(f"{name}: no calibration statistics (run calibrate first)")
        w = layer.weight.detach().T.contiguous()           # [K = in, N = out]
        sq, s = quantize_layer(w, method, st.hessian if st is not None else None,
                               st.absmax if st is not None else None)
        if method.float_scales:        # the float-scale reference: a float weight
            layer.set_float_weight(sq, s, method.act_bits)
            wq = sq.to(torch.float64)
        else:
            layer.set_quantized(sq, s, method.act_bits)
            wq = sq.dequantize().to(torch.float64)
        if s is not None:
            wq = wq / s.to(torch.float64)[:, None]
        errs.append(float((wq - w.to(torch.float64)).norm() / w.to(torch.float64).norm()))
        if progress is not None:
            progress(f"quantize {method.name}: {i + 1}/{len(names)} {name}")
    return {"weight_rel_err": sum(errs) / len(errs), "seconds": time.perf_counter() - t0}


def top1_neighbours(emb: torch.Tensor) -> torch.Tensor:
    """Index of each row's nearest other row by cosine (rows are unit vectors)."""
    sim = emb @ emb.T
    sim.fill_diagonal_(-math.inf)
    return sim.argmax(dim=1)


def embedding_metrics(ref: torch.Tensor, emb: torch.Tensor) -> dict:
    """Cosine similarity and top-1 retrieval agreement of ``emb`` against ``ref``.

    Both are ``[S, D]`` with unit rows. ``top1_agreement`` is the fraction of sentences whose
    nearest neighbour among the others is the same under both.
    """
    cos = (ref.to(torch.float64) * emb.to(torch.float64)).sum(dim=1)
    agree = (top1_neighbours(ref) == top1_neighbours(emb)).to(torch.float64)
    return {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
            "top1_agreement": float(agree.mean())}


def fp32_embeddings(tok, model, ctx: EvalContext, sentences: Sequence[str],
                    batch_size: int = 32, progress: Progress = None) -> torch.Tensor:
    """Embeddings of the unquantized model (every SQLinear in float mode)."""
    ctx.mode, ctx.capture, ctx.calibrate = "float", False, False
    try:
        return encode(tok, model, sentences, batch_size, before_batch=ctx.set_attention_mask,
                      progress=_reporter(progress, "FP32"))
    finally:
        ctx.valid = None


def evaluate(tok, model, ctx: EvalContext, sentences: Sequence[str], path: str = "fast",
             batch_size: int = 32, ref: torch.Tensor | None = None,
             snr_sentences: int | None = 256, local_snr: bool = True,
             progress: Progress = None) -> dict:
    """Score the quantized model against FP32 on ``sentences``.

    Embedding metrics use all ``sentences`` (``ref``: their FP32 embeddings, computed if not
    given). Per-layer SNR uses the first ``snr_sentences`` (all if None): each batch runs
    FP32 (capturing every linear's output) then quantized. It is reported two ways:
    ``snr_db`` compares with the FP32 model's same layer (errors of the earlier layers
    included), ``snr_local_db`` with the float layer applied to the same quantized-model
    input (this layer's own error).

    Returns
    -------
    dict
        ``cosine_mean``, ``cosine_min``, ``top1_agreement``, ``snr_db`` and
        ``snr_local_db`` (per layer), their mean and minimum, ``snr_sentences`` and
        ``seconds``.
    """
    if path not in ("fast", "hw"):
        raise ValueError(f"path must be 'fast' or 'hw', not {path!r}")
    t0 = time.perf_counter()
    if ref is None:
        ref = fp32_embeddings(tok, model, ctx, sentences, batch_size, progress)
    ctx.path = path
    try:
        ctx.mode, ctx.capture, ctx.local_snr = "quant", False, False
        ctx.reset_snr()
        emb = encode(tok, model, sentences, batch_size, before_batch=ctx.set_attention_mask,
                     progress=_reporter(progress, f"quantized ({path})"))
        snr_set = sentences[:snr_sentences] if snr_sentences is not None else sentences
        ctx.reset_snr()
        ctx.local_snr = local_snr
        for _idx, enc in tokenized_batches(tok, snr_set, batch_size):
            ctx.set_attention_mask(enc["attention_mask"])
            with torch.inference_mode():
                ctx.mode, ctx.capture = "float", True
                model(**enc)
                ctx.mode, ctx.capture = "quant", False
                model(**enc)
    finally:
        ctx.mode, ctx.capture, ctx.valid = "float", False, None
        ctx.reference.clear()
    out = embedding_metrics(ref, emb)
    snr = {n: s.db for n, s in ctx.snr.items()}
    out["snr_sentences"] = len(snr_set)
    out["snr_db"] = snr
    out["snr_db_mean"] = _mean(snr.values())
    out["snr_db_min"] = min(snr.values())
    if local_snr:
        loc = {n: s.db for n, s in ctx.snr_local.items()}
        out["snr_local_db"] = loc
        out["snr_local_db_mean"] = _mean(loc.values())
        out["snr_local_db_min"] = min(loc.values())
    out["seconds"] = time.perf_counter() - t0
    return out


def _mean(values) -> float:
    v = [x for x in values if math.isfinite(x)]
    return sum(v) / len(v) if v else float("inf")


def _reporter(progress: Progress, what: str):
    if progress is None:
        return None
    return lambda done, total: progress(f"{what}: {done}/{total} sentences")
