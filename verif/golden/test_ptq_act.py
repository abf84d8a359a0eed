"""GPTQ for the activation mode's dense weights (``gptq_quantize_dense``) and the float-only
references of the paper's per-(bank, column) float scales."""

import pytest
import torch

from sqhw.format import SQFormat
from sqhw.golden import calibrate_activation_mask, quantize_weight_dense
from sqhw.golden.ptq import (
    gptq_quantize,
    gptq_quantize_dense,
    gptq_quantize_float,
    quantize_sq,
)
from sqhw.golden.quantize import quantize_weight, quantize_weight_float

FMT = SQFormat.parse("B16-(8/4)-0.875")


def _layer(seed=0, K=64, N=24, T=256):
    """Correlated activations with two outlier channels, a random weight, its Hessian."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(K) + 0.4 * torch.randn(K, K, generator=g)
    x = torch.randn(T, K, generator=g) @ mix
    x[:, 5] *= 12.0
    x[:, 40] *= 6.0
    w = torch.randn(K, N, generator=g)
    H = x.T.to(torch.float64) @ x.to(torch.float64) / T
    return x, w, H


def _out_err(x, w, wq):
    ref = x.to(torch.float64) @ w.to(torch.float64)
    return float((x.to(torch.float64) @ wq.to(torch.float64) - ref).norm() / ref.norm())


def test_identity_hessian_is_rtn():
    """Without input correlation there is nothing to compensate: GPTQ gives RTN's codes."""
    _, w, _ = _layer()
    eye = torch.eye(w.shape[0], dtype=torch.float64)
    for bits in (4, 8):
        g = gptq_quantize_dense(w, eye, bits)
        r = quantize_weight_dense(w, bits)
        assert torch.equal(g.codes, r.codes)
        assert torch.allclose(g.col_scale, r.col_scale, rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gptq_lowers_output_error(seed):
    x, w, H = _layer(seed)
    cal = calibrate_activation_mask(x, w, FMT)
    g = gptq_quantize_dense(w, H, 4, cal.perm)
    r = quantize_weight_dense(w, 4)
    assert g.validate().bits == 4 and g.shape == w.shape
    assert g.codes.abs().max() <= 7
    # GPTQ trades weight error for output error on the calibration data.
    assert _out_err(x, w, g.dequantize()) < 0.8 * _out_err(x, w, r.dequantize())


def test_rows_in_the_mask_order():
    """The array's weight rows (DenseWeight.reordered(perm)) are GPTQ's rows when it is run
    on the reordered layer; the order matters (natural order gives other codes)."""
    x, w, H = _layer(3)
    cal = calibrate_activation_mask(x, w, FMT)
    perm = cal.perm
    assert not torch.equal(perm, torch.arange(len(perm)))
    g = gptq_quantize_dense(w, H, 4, perm)
    direct = gptq_quantize_dense(w[perm], H[perm][:, perm], 4)
    assert torch.equal(g.reordered(perm).codes, direct.codes)
    assert torch.equal(g.col_scale, direct.col_scale)
    natural = gptq_quantize_dense(w, H, 4)
    assert not torch.equal(natural.codes, g.codes)


def test_bad_arguments():
    _, w, H = _layer()
    with pytest.raises(ValueError, match="permutation"):
        gptq_quantize_dense(w, H, 4, torch.zeros(w.shape[0], dtype=torch.int64))
    with pytest.raises(ValueError, match="4 or 8|bits"):
        gptq_quantize_dense(w, H, 5)


def test_float_scale_reference_rtn():
    """Ideal float steps: every element within half of max|group|/qmax of its value, the
    same high elements as the coded quantizer, and no worse than the coded steps."""
    _, w, _ = _layer(4)
    coded = quantize_weight(w, FMT)
    ref = quantize_weight_float(w, FMT)
    nb, b, N = w.shape[0] // 16, 16, w.shape[1]
    mask = coded.mask.view(nb, b, N)
    wb = w.view(nb, b, N)
    hs = wb.abs().masked_fill(~mask, 0).amax(dim=1, keepdim=True) / FMT.high_max
    ls = wb.abs().masked_fill(mask, 0).amax(dim=1, keepdim=True) / FMT.low_max
    step = torch.where(mask, hs, ls)
    err = (ref.view(nb, b, N) - wb).abs()
    assert bool((err <= step / 2 * (1 + 1e-5) + 1e-7).all())
    # The coded steps are never finer, so the float reference's error is not larger.
    assert (ref - w).norm() <= (coded.dequantize() - w).norm() * (1 + 1e-6)
    # quantize_sq passes the option through.
    assert torch.equal(quantize_sq(w, FMT, importance="magnitude", float_scales=True), ref)


def test_float_scale_reference_gptq():
    x, w, H = _layer(5)
    coded = gptq_quantize(w, H, FMT)
    ref = gptq_quantize_float(w, H, FMT)
    assert ref.dtype == torch.float32 and ref.shape == w.shape
    # Not the coded result, but close to it: the same algorithm on a slightly finer grid.
    assert not torch.equal(ref, coded.dequantize())
    e_ref, e_coded = _out_err(x, w, ref), _out_err(x, w, coded.dequantize())
    assert e_ref < 0.2 and abs(e_ref - e_coded) < 0.25 * e_coded
