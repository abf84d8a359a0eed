"""PTQ building blocks (sqhw.golden.ptq) on small synthetic layers, against independent
computations: least squares, brute-force ranking, explicit folding."""

import pytest
import torch

from sqhw.format import SQFormat
from sqhw.golden import quantize_weight
from sqhw.golden.ptq import (
    HessianAccumulator,
    PTQMethod,
    damp_hessian,
    gptq_quantize,
    quantize_layer,
    quantize_sq,
    saliency,
    smooth,
    smooth_factors,
)

SQ875 = SQFormat(16, 0.875, 8, 4)
SQ75 = SQFormat(16, 0.75, 8, 4)


def correlated_layer(K=128, N=48, M=1024, seed=0, outliers=True):
    """A layer whose input channels are strongly correlated (as in real transformers),
    with a few outlier channels."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(K, K, generator=g, dtype=torch.float64) / K ** 0.5
    mix += 0.2 * torch.eye(K, dtype=torch.float64)
    X = torch.randn(M, K, generator=g, dtype=torch.float64) @ mix
    if outliers:
        X[:, :3] *= 15.0
    W = torch.randn(K, N, generator=g, dtype=torch.float64) * 0.05
    return X, W


def hessian_of(X):
    acc = HessianAccumulator(X.shape[1])
    acc.add(X)
    return acc.hessian


def out_err(X, W, sq, s=None):
    Wq = sq.dequantize().to(torch.float64)
    if s is not None:
        Wq = Wq / s.to(torch.float64)[:, None]
    return float((X @ W - X @ Wq).norm() / (X @ W).norm())


def test_hessian_accumulator_batches_equal_one_shot():
    X, _ = correlated_layer(K=32, M=300)
    acc = HessianAccumulator(32)
    for part in X.split(77):
        acc.add(part.to(torch.float32))
    X32 = X.to(torch.float32).to(torch.float64)
    torch.testing.assert_close(acc.hessian, X32.T @ X32 / 300, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(acc.absmax, X32.abs().amax(0))
    assert acc.count == 300
    with pytest.raises(ValueError, match="no calibration tokens"):
        _ = HessianAccumulator(4).hessian


def test_damp_hessian_dead_channels_and_damping():
    H = torch.diag(torch.tensor([2.0, 0.0, 4.0], dtype=torch.float64))
    Hd, dead = damp_hessian(H, 0.1)
    assert dead.tolist() == [False, True, False]
    mean = (2.0 + 1.0 + 4.0) / 3                      # dead diagonal set to 1 first
    torch.testing.assert_close(torch.diagonal(Hd),
                               torch.tensor([2.0, 1.0, 4.0], dtype=torch.float64) + 0.1 * mean)
    assert H[1, 1] == 0                               # input untouched


def test_smoothing_folds_without_changing_the_product():
    X, W = correlated_layer(K=64, N=20, M=200)
    acc = HessianAccumulator(64)
    acc.add(X)
    for alpha in (0.0, 0.5, 0.85, 1.0):
        s = smooth_factors(acc.absmax, W, alpha)
        assert (s > 0).all() and torch.isfinite(s).all()
        W2, H2 = smooth(W, s, acc.hessian)
        X2 = X / s.to(torch.float64)
        # the float product is unchanged (float32 weight storage: relative 1e-6)
        torch.testing.assert_close(X2 @ W2.to(torch.float64), X @ W, rtol=1e-5, atol=1e-5)
        # and the folded Hessian is the Hessian of the divided input
        torch.testing.assert_close(H2, X2.T @ X2 / X.shape[0], rtol=1e-10, atol=1e-12)
    # alpha = 0.5 balances: max|X'_j| == max|W'_j| channel by channel
    s = smooth_factors(acc.absmax, W, 0.5)
    W2, _ = smooth(W, s)
    torch.testing.assert_close((X / s.to(torch.float64)).abs().amax(0),
                               W2.abs().amax(1).to(torch.float64), rtol=1e-5, atol=0)


def test_smooth_factors_zero_channel_and_bad_alpha():
    a = torch.tensor([0.0, 2.0])
    w = torch.tensor([[0.0, 0.0], [1.0, -3.0]])
    s = smooth_factors(a, w, 0.5)
    assert s[0] == 1.0 and torch.isclose(s[1], torch.tensor((2.0 / 3.0) ** 0.5))
    with pytest.raises(ValueError, match="alpha"):
        smooth_factors(a, w, 1.5)


def test_saliency_equals_brute_force_refit_loss():
    """w²/[H⁻¹]_ii is the output error left after dropping weight i and re-fitting the
    others optimally: computed here by least squares on X itself."""
    X, W = correlated_layer(K=12, N=3, M=400, outliers=False)
    M = X.shape[0]
    sal = saliency(W, hessian_of(X), percdamp=0.0).to(torch.float64)
    brute = torch.empty_like(W)
    for n in range(W.shape[1]):
        y = X @ W[:, n]
        for i in range(W.shape[0]):
            keep = [j for j in range(W.shape[0]) if j != i]
            v = torch.linalg.lstsq(X[:, keep], y[:, None]).solution
            brute[i, n] = (y - (X[:, keep] @ v)[:, 0]).square().sum() / M
    torch.testing.assert_close(sal, brute, rtol=1e-4, atol=1e-9)
    assert torch.equal(sal.argsort(dim=0), brute.argsort(dim=0))


def test_quantize_sq_keeps_the_most_salient_per_bank():
    X, W = correlated_layer(K=64, N=8)
    H = hessian_of(X)
    sq = quantize_sq(W, SQ875, H)
    sal = saliency(W, H)
    mask = sq.mask.view(4, 16, 8)
    for j in range(4):
        for n in range(8):
            top = set(sal.view(4, 16, 8)[j, :, n].argsort(descending=True)[:2].tolist())
            assert set(mask[j, :, n].nonzero()[:, 0].tolist()) == top
    # magnitude importance ignores H
    sqm = quantize_sq(W, SQ875, H, importance="magnitude")
    assert torch.equal(sqm.mask, quantize_weight(W.float(), SQ875).mask)
    with pytest.raises(ValueError, match="needs the Hessian"):
        quantize_sq(W, SQ875, None)


@pytest.mark.parametrize("fmt,per_channel", [
    (SQFormat.dense(4), True), (SQFormat.dense(4), False), (SQ875, False), (SQ75, False),
    (SQFormat.two_four(8), False), (SQFormat.dense(8), True),
], ids=lambda v: getattr(v, "name", str(v)))
def test_gptq_beats_rtn_on_a_correlated_layer(fmt, per_channel):
    X, W = correlated_layer()
    H = hessian_of(X)
    rtn = out_err(X, W, quantize_sq(W, fmt, H, per_channel=per_channel))
    sq = gptq_quantize(W, H, fmt, per_channel=per_channel)
    sq.validate()
    gptq = out_err(X, W, sq)
    assert gptq < 0.8 * rtn, (gptq, rtn)


def test_gptq_with_identity_hessian_is_rtn():
    """Without input correlation there is nothing to compensate: GPTQ must give the same
    codes as one-shot quantize_weight (same masks, scales and rounding)."""
    _, W = correlated_layer(K=64, N=16)
    H = torch.eye(64, dtype=torch.float64)
    for fmt, pc in ((SQ875, False), (SQFormat.dense(4), True), (SQFormat.two_four(8), False)):
        g = gptq_quantize(W, H, fmt, per_channel=pc, percdamp=0.0)
        r = quantize_weight(W.float(), fmt, per_channel=pc)
        assert torch.equal(g.mask, r.mask)
        assert torch.equal(g.scale_low, r.scale_low) and torch.equal(g.scale_high, r.scale_high)
        diff = (g.effective_weight() != r.effective_weight()).float().mean()
        assert diff < 1e-3          # only float32-vs-float64 ties at half a step may differ


def test_gptq_dead_channels_and_shapes():
    X, W = correlated_layer(K=32, N=4)
    X[:, 5] = 0.0
    H = hessian_of(X)
    sq = gptq_quantize(W, H, SQ875)
    assert (sq.dequantize()[5] == 0).all()
    assert torch.isfinite(sq.dequantize()).all()
    with pytest.raises(ValueError, match="multiple of bank_size"):
        gptq_quantize(W[:30], H[:30, :30], SQ875)
    with pytest.raises(ValueError, match="H must be"):
        gptq_quantize(W, H[:16, :16], SQ875)


def test_quantize_layer_with_smoothing_undoes_in_the_input():
    X, W = correlated_layer()
    acc = HessianAccumulator(X.shape[1])
    acc.add(X)
    m = PTQMethod(SQFormat.dense(8), per_channel=True, smooth_alpha=0.5)
    sq, s = quantize_layer(W.float(), m, acc.hessian, acc.absmax)
    assert s is not None
    assert out_err(X, W, sq, s) < 0.02                 # INT8 with folding undone
    with pytest.raises(ValueError, match="act_absmax"):
        quantize_layer(W.float(), m, acc.hessian, None)
    with pytest.raises(ValueError, match="needs the calibration Hessian"):
        quantize_layer(W.float(), PTQMethod(SQ875), None, None)


def test_parse_config():
    from sqhw.eval.configs import SWEEP, parse_config
    m = parse_config("W4A4")
    assert m.fmt == SQFormat.dense(4) and m.act_bits == 4 and m.per_channel and not m.gptq
    m = parse_config("B16-(8/4)-0.875+gptq+smooth0.5+magnitude")
    assert m.fmt == SQ875 and m.gptq and m.smooth_alpha == 0.5 and m.importance == "magnitude"
    assert not m.per_channel and m.act_bits == 8
    assert parse_config("2:4-INT8").fmt == SQFormat.two_four(8)
    assert parse_config("INT4+A6+bank", gptq=True).act_bits == 6
    for bad in ("W4", "B16-(8/4)-0.3", "W8A8+nope", "W9A8"):
        with pytest.raises(ValueError):
            parse_config(bad)
    assert [parse_config(s) for s in SWEEP]
