"""Activation mode (sqhw.golden, docs/activation-mode.md): calibration vs brute force,
the offline reordering, the host quantizer, the integer semantics vs a loop model, the float
error bound, the dynamic reference and malformed masks."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sqref import formats, hsettings

from sqhw.format import SQFormat
from sqhw.golden import (
    DenseWeight,
    MalformedSQError,
    SQActivation,
    act_accumulator_bound,
    act_element_error,
    act_error_bound,
    act_min_acc_bits,
    calibrate_activation_mask,
    check_activation_mask,
    descale_act,
    dynamic_activation_mask,
    hw_bank_partials_act,
    hw_matmul_act,
    matmul_act,
    matmul_act_dynamic,
    quantize_activation_sq,
    quantize_weight_dense,
    reorder_permutation,
)
from sqhw.golden import hwmodel as hwmodel_module
from sqhw.golden.ptq import smooth_factors


def fmt_of(b, k, low_bits=4, high_bits=8, scale_bits=8):
    return SQFormat(bank_size=b, sparsity=1 - k / b, high_bits=high_bits, low_bits=low_bits,
                    scale_bits=scale_bits)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def random_mask(fmt, K, g):
    b, k = fmt.bank_size, fmt.k
    order = torch.rand(K // b, b, generator=g).argsort(dim=1)
    return torch.zeros(K // b, b, dtype=torch.bool).scatter_(1, order[:, :k], True).reshape(K)


def outlier_data(M, K, N, seed, channels=(3, 17, 40), gain=60.0):
    """Activations with a few persistent outlier channels (as in LLMs), and weights."""
    g = gen(seed)
    x = torch.randn(M, K, generator=g)
    for c in channels:
        if c < K:
            x[:, c] *= gain
    w = torch.randn(K, N, generator=g) / K ** 0.5
    return x, w


def ref_top_k(values, k):
    """Brute force: indices of the k largest values, ties to the lower index, sorted."""
    return sorted(sorted(range(len(values)), key=lambda i: (-values[i], i))[:k])


# -- calibration ------------------------------------------------------------------------------

@pytest.mark.parametrize("alpha", [None, 0.5])
def test_importance_and_mask_brute_force(alpha):
    fmt = fmt_of(8, 2)
    T, K, N = 5, 24, 4
    x, w = outlier_data(T, K, N, seed=1, channels=(5,))
    cal = calibrate_activation_mask(x, w, fmt, smooth_alpha=alpha)
    xs, ws = x.double().tolist(), w.double().tolist()
    if alpha is not None:
        s = smooth_factors(x.abs().amax(dim=0), w, alpha).double().tolist()
        assert torch.equal(cal.smooth, smooth_factors(x.abs().amax(dim=0), w, alpha))
        xs = [[xs[t][j] / s[j] for j in range(K)] for t in range(T)]
        ws = [[ws[j][n] * s[j] for n in range(N)] for j in range(K)]
    else:
        assert cal.smooth is None
    imp = []
    for j in range(K):
        a_bar = sum(abs(xs[t][j]) for t in range(T)) / T
        imp.append(abs(a_bar * sum(ws[j][n] for n in range(N))))
    torch.testing.assert_close(cal.importance, torch.tensor(imp, dtype=torch.float64),
                               rtol=1e-6, atol=0)
    for j in range(K // 8):
        top = ref_top_k(cal.importance[j * 8:(j + 1) * 8].tolist(), fmt.k)
        assert torch.nonzero(cal.mask[j * 8:(j + 1) * 8]).flatten().tolist() == top


def test_smoothing_keeps_the_product_and_the_ranking():
    """``X' W' = X W`` (float), and smoothing cancels in ``|Ā_j Σ W_j|`` up to rounding."""
    fmt = fmt_of(16, 4)
    x, w = outlier_data(32, 64, 8, seed=2)
    plain = calibrate_activation_mask(x, w, fmt)
    cal = calibrate_activation_mask(x, w, fmt, smooth_alpha=0.7)
    y = cal.smooth_input(x).double() @ cal.smooth_weight(w).double()
    torch.testing.assert_close(y, x.double() @ w.double(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cal.importance, plain.importance, rtol=1e-5, atol=0)
    # the outlier channels rank first in their banks
    for c in (3, 17, 40):
        assert bool(cal.mask[c]) and bool(plain.mask[c])


def test_ties_go_to_the_lower_channel():
    fmt = fmt_of(8, 3)
    x = torch.ones(4, 16)
    w = torch.ones(16, 2)
    cal = calibrate_activation_mask(x, w, fmt)
    assert cal.mask.tolist() == ([True] * 3 + [False] * 5) * 2


def test_signed_row_sum():
    """The paper's importance uses the signed row sum: cancelling weights rank low."""
    fmt = fmt_of(4, 1)
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    w = torch.tensor([[5.0, -5.0], [1.0, 0.0], [0.5, 0.0], [0.0, 0.0]])
    cal = calibrate_activation_mask(x, w, fmt)
    assert cal.mask.tolist() == [False, True, False, False]


def test_calibration_errors():
    fmt = fmt_of(8, 2)
    with pytest.raises(ValueError, match="K must be a positive multiple of bank_size 8"):
        calibrate_activation_mask(torch.randn(2, 12), torch.randn(12, 3), fmt)
    with pytest.raises(ValueError, match="x_calib must be"):
        calibrate_activation_mask(torch.randn(2, 8), torch.randn(16, 3), fmt)
    with pytest.raises(ValueError, match="non-finite"):
        calibrate_activation_mask(torch.full((2, 8), float("nan")), torch.randn(8, 3), fmt)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        calibrate_activation_mask(torch.randn(2, 8), torch.randn(8, 3), fmt, smooth_alpha=2)
    with pytest.raises(TypeError, match="fmt must be an SQFormat"):
        calibrate_activation_mask(torch.randn(2, 8), torch.randn(8, 3), 8)


# -- reordering -------------------------------------------------------------------------------

@hsettings(40)
@given(fmt=formats(bank_sizes=(4, 8, 16, 32)), nb=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_permutation_brute_force(fmt, nb, seed):
    b, k = fmt.bank_size, fmt.k
    mask = random_mask(fmt, nb * b, gen(seed))
    perm = reorder_permutation(mask, fmt).tolist()
    expect = []
    for j in range(nb):
        ch = range(j * b, (j + 1) * b)
        expect += [i for i in ch if mask[i]] + [i for i in ch if not mask[i]]
    assert perm == expect
    assert mask[perm].reshape(nb, b)[:, :k].all() and not mask[perm].reshape(nb, b)[:, k:].any()


def test_reordering_round_trip_and_column_order():
    """Host-permuted activations with reordered weights give exactly the natural-order
    result; outputs stay in the original column order (the permutation is along K)."""
    fmt = fmt_of(16, 4)
    x, w = outlier_data(6, 64, 10, seed=3)
    cal = calibrate_activation_mask(x, w, fmt)
    act = quantize_activation_sq(x, cal.mask, fmt)
    wq = quantize_weight_dense(w, 8)
    y = hw_matmul_act(act, wq)
    act_p = act.reordered(cal.perm)
    assert torch.equal(act_p.mask, cal.reordered_mask)
    assert torch.equal(hw_matmul_act(act_p, wq.reordered(cal.perm)), y)
    assert torch.equal(act_p.codes[:, cal.inverse_perm], act.codes)
    # quantizing the permuted float activations with the permuted mask gives the same codes
    act_q = quantize_activation_sq(cal.reorder_input(x), cal.reordered_mask, fmt)
    assert torch.equal(act_q.codes, act_p.codes)
    assert torch.equal(hw_matmul_act(act_q, DenseWeight(cal.reorder_weight(wq.codes),
                                                        wq.col_scale, 8)), y)
    # column order: each output column alone, and a shuffled weight shuffles the outputs
    for n in range(10):
        single = DenseWeight(wq.codes[:, [n]], wq.col_scale[[n]], 8)
        assert torch.equal(hw_matmul_act(act, single)[:, 0], y[:, n])
    cols = torch.randperm(10, generator=gen(0))
    shuffled = DenseWeight(wq.codes[:, cols], wq.col_scale[cols], 8)
    assert torch.equal(hw_matmul_act(act, shuffled), y[:, cols])
    # the float product is unchanged by the reordering too
    torch.testing.assert_close(cal.reorder_input(x).double() @ cal.reorder_weight(w).double(),
                               x.double() @ w.double())


def test_reordered_rejects_cross_bank_permutation():
    fmt = fmt_of(4, 1)
    act = quantize_activation_sq(torch.randn(2, 8), random_mask(fmt, 8, gen(0)), fmt)
    with pytest.raises(ValueError, match="out of its bank"):
        act.reordered(torch.tensor([4, 1, 2, 3, 0, 5, 6, 7]))


# -- integer semantics ------------------------------------------------------------------------

def random_act(fmt, M, K, g, mask=None):
    """Codes and scale codes uniform over their full valid ranges (extremes forced)."""
    mask = random_mask(fmt, K, g) if mask is None else mask
    hi = torch.randint(-fmt.high_max, fmt.high_max + 1, (M, K), generator=g)
    lo = torch.randint(-fmt.low_max, fmt.low_max + 1, (M, K), generator=g)
    codes = torch.where(mask, hi, lo).to(torch.int32)
    nb = K // fmt.bank_size
    sh = torch.randint(0, fmt.scale_max + 1, (M, nb), generator=g, dtype=torch.int32)
    sl = torch.randint(0, fmt.scale_max + 1, (M, nb), generator=g, dtype=torch.int32)
    if fmt.k:
        codes[0, torch.nonzero(mask)[0, 0]] = -fmt.high_max
        sh[0, 0] = fmt.scale_max
    else:
        sh.zero_()
    if not fmt.low_bits:
        sl.zero_()
    return SQActivation(codes=codes, scale_high=sh, scale_low=sl,
                        token_scale=torch.rand(M, generator=g) + 0.1, mask=mask, fmt=fmt)


def random_weight(K, N, bits, g):
    q = (1 << (bits - 1)) - 1
    codes = torch.randint(-q, q + 1, (K, N), generator=g, dtype=torch.int8)
    codes.view(-1)[0] = -q
    return DenseWeight(codes=codes, col_scale=torch.rand(N, generator=g) + 0.1, bits=bits)


def ref_hw_matmul_act(act, weight):
    """Loop model with Python ints, per bank: gather the t-th high / u-th low channel."""
    fmt = act.fmt
    b = fmt.bank_size
    M, K = act.shape
    N = weight.shape[1]
    codes, w = act.codes.tolist(), weight.codes.tolist()
    mask = act.mask.tolist()
    out = [[0] * N for _ in range(M)]
    for m in range(M):
        for n in range(N):
            y = 0
            for j in range(K // b):
                ch = range(j * b, (j + 1) * b)
                pos = [i for i in ch if mask[i]]
                low = [i for i in ch if not mask[i]]
                p_high = sum(codes[m][i] * w[i][n] for i in pos)
                p_low = sum(codes[m][i] * w[i][n] for i in low)
                y += int(act.scale_high[m, j]) * p_high + int(act.scale_low[m, j]) * p_low
            out[m][n] = y
    return torch.tensor(out, dtype=torch.int64)


@hsettings(40)
@given(fmt=formats(bank_sizes=(4, 8, 16, 64)), nb=st.integers(1, 3), M=st.integers(1, 3),
       N=st.integers(1, 3), bits=st.sampled_from([4, 8]), seed=st.integers(0, 2**31))
def test_hw_matmul_act_matches_loop_model(fmt, nb, M, N, bits, seed):
    g = gen(seed)
    K = nb * fmt.bank_size
    act, wq = random_act(fmt, M, K, g), random_weight(K, N, bits, g)
    y = hw_matmul_act(act, wq)
    assert y.dtype == torch.int64
    assert torch.equal(y, ref_hw_matmul_act(act, wq))
    p_high, p_low = hw_bank_partials_act(act, wq)
    total = (act.scale_high[:, :, None].long() * p_high
             + act.scale_low[:, :, None].long() * p_low).sum(dim=1)
    assert torch.equal(total, y)
    assert y.abs().max() <= act_accumulator_bound(fmt, bits, K)


def test_int64_route(monkeypatch):
    """Above the float64-exact bound the model switches to int64; same result."""
    fmt = fmt_of(16, 4, scale_bits=16)
    g = gen(5)
    act, wq = random_act(fmt, 3, 64, g), random_weight(64, 5, 8, g)
    y = hw_matmul_act(act, wq)
    monkeypatch.setattr(hwmodel_module, "_EXACT_F64", 0)
    assert torch.equal(hw_matmul_act(act, wq), y)


def test_cfg_argument():
    """``cfg=`` takes the accumulator width from the HWConfig; a configuration of another
    format, weight width or mode, or one too short for K, is refused."""
    from sqhw.format import HWConfig
    fmt = fmt_of(16, 4)
    g = gen(6)
    act, wq = random_act(fmt, 3, 64, g), random_weight(64, 5, 4, g)
    cfg = HWConfig(fmt=fmt, rows=5, act_bits=8, k_max=64, operand="activation",
                   weight_bits=4, acc_bits=act_min_acc_bits(fmt, 4, 64))
    assert torch.equal(hw_matmul_act(act, wq, cfg=cfg), hw_matmul_act(act, wq))
    with pytest.raises(TypeError, match="either cfg or acc_bits, not both"):
        hw_matmul_act(act, wq, 32, cfg=cfg)
    with pytest.raises(ValueError, match="INT4, but cfg is for INT8 weights"):
        hw_matmul_act(act, wq, cfg=HWConfig(fmt=fmt, k_max=64, operand="activation",
                                            weight_bits=8, acc_bits=32))
    with pytest.raises(ValueError, match="K=64 is larger than cfg.k_max 32"):
        hw_matmul_act(act, wq, cfg=HWConfig(fmt=fmt, k_max=32, operand="activation",
                                            weight_bits=4, acc_bits=32))
    with pytest.raises(ValueError, match="but cfg is for B16-\\(8/4\\)-0.875"):
        hw_matmul_act(act, wq, cfg=HWConfig(fmt=SQFormat(), k_max=64, operand="activation",
                                            weight_bits=4, acc_bits=32))
    with pytest.raises(ValueError, match="not an activation-mode configuration"):
        hw_matmul_act(act, wq, cfg=HWConfig(fmt=fmt, k_max=64))


def test_accumulator_bound():
    fmt = fmt_of(16, 4)                           # B16-(8/4)-0.75, INT8 weights
    per_bank = 255 * 128 * (4 * 128 + 12 * 8)
    assert act_accumulator_bound(fmt, 8, 1024) == 64 * per_bank
    assert act_min_acc_bits(fmt, 8, 1024) == 32
    assert act_accumulator_bound(fmt_of(4, 2, low_bits=0), 4, 4) == 255 * 8 * 2 * 128
    # the bound is reached by the worst codes the datapath could see (range edges)
    K = 64
    mask = random_mask(fmt, K, gen(1))
    codes = torch.where(mask, -128, -8).to(torch.int32)[None, :]
    full = torch.full((1, K // 16), 255, dtype=torch.int32)
    x = SQActivation(codes=codes, scale_high=full, scale_low=full, token_scale=torch.ones(1),
                     mask=mask, fmt=fmt).effective()
    assert int((x * -128).sum()) == act_accumulator_bound(fmt, 8, K)
    # a K that could overflow the accumulator is refused
    g = gen(2)
    act, wq = random_act(fmt, 1, K, g), random_weight(K, 1, 8, g)
    need = act_min_acc_bits(fmt, 8, K, multiple=1)
    hw_matmul_act(act, wq, acc_bits=need)
    with pytest.raises(ValueError, match="can overflow a 24-bit accumulator"):
        hw_matmul_act(act, wq, acc_bits=24)
    with pytest.raises(ValueError, match="weight_bits must be 4 or 8"):
        act_accumulator_bound(fmt, 6, 64)


# -- host quantization and the float path ----------------------------------------------------

def test_quantize_literal():
    """One bank of four, k = 1, INT8/INT4, scale_bits 8, worked by hand."""
    fmt = fmt_of(4, 1)
    x = torch.tensor([[0.4, -1.0, 12.7, 0.7]])
    mask = torch.tensor([False, False, True, False])
    act = quantize_activation_sq(x, mask, fmt)
    # float group scales: high 12.7/127 = 0.1, low 1.0/7 = 0.142857 (the larger one), so
    # token_scale = (1/7)/255, scale_low = 255, scale_high = ceil(0.1 / token_scale) = 179
    assert act.token_scale.item() == pytest.approx(1 / 7 / 255)
    assert (act.scale_high.item(), act.scale_low.item()) == (179, 255)
    # high step 179/255/7 = 0.10034: 12.7 -> 126.57 -> 127; low step 1/7: 2.8, -7, 4.9
    assert act.codes.tolist() == [[3, -7, 127, 5]]
    assert act.high_codes().tolist() == [[[127]]]
    assert act.low_codes().tolist() == [[[3, -7, 5]]]


@hsettings(30)
@given(fmt=formats(bank_sizes=(4, 8, 16, 32)), nb=st.integers(1, 3), M=st.integers(1, 4),
       seed=st.integers(0, 2**31), outliers=st.booleans())
def test_quantize_within_half_step(fmt, nb, M, seed, outliers):
    g = gen(seed)
    K = nb * fmt.bank_size
    x = torch.randn(M, K, generator=g) * (torch.rand(M, 1, generator=g) * 10)
    if outliers:
        x[:, 0] *= 100
    mask = random_mask(fmt, K, g)
    act = quantize_activation_sq(x, mask, fmt).validate()
    err = (act.dequantize().double() - x.double()).abs()
    assert (err <= act_element_error(x, act) * (1 + 1e-5) + 1e-30).all()
    if not fmt.low_bits:                  # low channels are dropped
        assert not act.codes[:, ~mask].any()
    else:
        assert (err <= 0.5 * act.steps() * (1 + 1e-5) + 1e-30).all()
    # two-level scales: the largest group code is the full scale code (unless all zero)
    top = torch.maximum(act.scale_high.amax(dim=1), act.scale_low.amax(dim=1))
    assert ((top == fmt.scale_max) | (x.abs().amax(dim=1) == 0)).all()


def test_zero_token_and_zero_group():
    fmt = fmt_of(8, 2)
    x = torch.zeros(2, 16)
    x[1, 8:] = 3.0
    act = quantize_activation_sq(x, random_mask(fmt, 16, gen(0)), fmt)
    assert act.token_scale[0].item() == 1.0 and not act.codes[0].any()
    assert act.scale_high[1, 0].item() == 0 and act.scale_low[1, 0].item() == 0
    assert torch.equal(act.dequantize(), x)


@pytest.mark.parametrize("name,fmt,bits", [
    ("B16-(8/4)-0.75 W8", fmt_of(16, 4), 8),
    ("B16-(8/4)-0.875 W4", fmt_of(16, 2), 4),
    ("B64-(8/4)-0.875 W8", fmt_of(64, 8), 8),
    ("B8-(8/2)-0.5 W4", fmt_of(8, 4, low_bits=2), 4),
    ("B4-(8/0)-0.5 W8", fmt_of(4, 2, low_bits=0), 8),
])
@pytest.mark.parametrize("data", ["random", "outliers"])
def test_error_bound_vs_float(name, fmt, bits, data):
    """``descale(hw)`` is ``x̂ @ ŵ`` and stays within :func:`act_error_bound` of ``x @ ŵ``."""
    M, K, N = 24, 128, 16
    if data == "random":
        g = gen(7)
        x, w = torch.randn(M, K, generator=g), torch.randn(K, N, generator=g)
    else:
        x, w = outlier_data(M, K, N, seed=8, channels=(3, 17, 40, 77, 100))
    cal = calibrate_activation_mask(x[:8], w, fmt)
    act = quantize_activation_sq(x, cal.mask, fmt)
    wq = quantize_weight_dense(w, bits)
    y = descale_act(hw_matmul_act(act, wq), act, wq).double()
    ref = matmul_act(x, wq).double()
    x_hat = act.effective().double() * act.token_scale.double()[:, None]
    exact = x_hat @ (wq.codes.double() * wq.col_scale.double())
    torch.testing.assert_close(y, exact, rtol=2 ** -23, atol=1e-30)
    bound = act_error_bound(x, act, wq)
    err = (y - ref).abs()
    assert (err <= bound).all(), f"{name}: worst {float((err - bound).max())} above the bound"
    # the bound is a real one: not vacuous next to the result's scale
    assert float(bound.max()) < float(((x.abs().double()) @ wq.dequantize().abs().double())
                                      .max())


def test_calibrated_mask_beats_a_bad_mask_on_outliers():
    """Outlier channels in high precision: the error is far below a mask that avoids them,
    and close to the dynamic per-token top-k reference."""
    fmt = fmt_of(16, 2)
    x, w = outlier_data(64, 128, 16, seed=9, channels=(3, 17, 40, 77, 100))
    cal = calibrate_activation_mask(x[:32], w, fmt)
    wq = quantize_weight_dense(w, 8)
    ref = matmul_act(x[32:], wq).double()

    def err(mask):
        act = quantize_activation_sq(x[32:], mask, fmt)
        return float((descale_act(hw_matmul_act(act, wq), act, wq).double() - ref).norm())

    good = err(cal.mask)
    worst_imp = -cal.importance
    bad_mask = torch.zeros(128, dtype=torch.bool)
    for j in range(8):
        order = torch.sort(worst_imp[j * 16:(j + 1) * 16], descending=True, stable=True).indices
        bad_mask[j * 16 + order[:2]] = True
    assert good < 0.5 * err(bad_mask)
    dyn = float((matmul_act_dynamic(x[32:], wq, fmt).double() - ref).norm())
    assert dyn <= good * 1.05


# -- dynamic variant --------------------------------------------------------------------------

def test_dynamic_mask_brute_force():
    fmt = fmt_of(8, 3)
    x = torch.randn(5, 24, generator=gen(4))
    x[0, :8] = 1.0                     # ties in bank 0 of token 0
    dm = dynamic_activation_mask(x, fmt)
    assert dm.shape == (5, 24)
    for m in range(5):
        for j in range(3):
            top = ref_top_k(x[m, j * 8:(j + 1) * 8].abs().tolist(), 3)
            assert torch.nonzero(dm[m, j * 8:(j + 1) * 8]).flatten().tolist() == top
    act = quantize_activation_sq(x, dm, fmt).validate()
    assert not act.is_static
    with pytest.raises(ValueError, match="static mask"):
        hw_matmul_act(act, quantize_weight_dense(torch.randn(24, 2), 8))


# -- malformed --------------------------------------------------------------------------------

def test_malformed_mask_names_the_bank():
    fmt = fmt_of(8, 2)
    mask = random_mask(fmt, 32, gen(0))
    bank2 = mask[16:24].clone()
    mask[16:24] = False
    mask[16:19] = True                 # three high channels in bank 2
    with pytest.raises(MalformedSQError, match="mask bank 2 has 3 high channels, expected 2"):
        check_activation_mask(mask, fmt)
    with pytest.raises(MalformedSQError, match="mask bank 2 has 3"):
        quantize_activation_sq(torch.randn(2, 32), mask, fmt)
    with pytest.raises(MalformedSQError, match="mask bank 2 has 3"):
        reorder_permutation(mask, fmt)
    good = mask.clone()
    good[16:24] = bank2
    act = quantize_activation_sq(torch.randn(2, 32), good, fmt)
    bad = SQActivation(codes=act.codes, scale_high=act.scale_high, scale_low=act.scale_low,
                       token_scale=act.token_scale, mask=mask, fmt=fmt)
    with pytest.raises(MalformedSQError, match="mask bank 2 has 3 high channels"):
        hw_matmul_act(bad, quantize_weight_dense(torch.randn(32, 2), 8))
    empty = good.clone()
    empty[0:8] = False
    with pytest.raises(MalformedSQError, match="mask bank 0 has 0 high channels, expected 2"):
        check_activation_mask(empty, fmt)
    per_token = good.expand(3, 32).clone()
    per_token[2, 8:16] = True
    with pytest.raises(MalformedSQError, match="mask bank 1 of token 2 has 8"):
        check_activation_mask(per_token, fmt)
    with pytest.raises(MalformedSQError, match="mask must be a bool tensor"):
        check_activation_mask(good.to(torch.int8), fmt)
    with pytest.raises(MalformedSQError, match="mask has 24 channels, expected 32"):
        quantize_activation_sq(torch.randn(2, 32), good[:24], fmt)


def test_malformed_codes():
    fmt = fmt_of(8, 2)
    mask = random_mask(fmt, 16, gen(1))
    act = quantize_activation_sq(torch.randn(2, 16), mask, fmt)
    hi = int(torch.nonzero(mask)[0, 0])
    lo = int(torch.nonzero(~mask)[0, 0])
    wq = quantize_weight_dense(torch.randn(16, 2), 8)
    for ch, code, msg in [(hi, -128, "high code -128 out of range ±127"),
                          (lo, 8, "low code 8 out of range ±7")]:
        codes = act.codes.clone()
        codes[1, ch] = code
        bad = SQActivation(codes=codes, scale_high=act.scale_high, scale_low=act.scale_low,
                           token_scale=act.token_scale, mask=mask, fmt=fmt)
        with pytest.raises(MalformedSQError, match=f"{msg} at channel {ch} .* of token 1"):
            hw_matmul_act(bad, wq)
    sh = act.scale_high.clone()
    sh[0, 1] = 256
    with pytest.raises(MalformedSQError, match="scale_high code 256 out of range 0..255 "
                                               "in bank 1 of token 0"):
        SQActivation(codes=act.codes, scale_high=sh, scale_low=act.scale_low,
                     token_scale=act.token_scale, mask=mask, fmt=fmt).validate()
    wbad = DenseWeight(codes=torch.full((16, 2), -8, dtype=torch.int8),
                       col_scale=torch.ones(2), bits=4)
    with pytest.raises(MalformedSQError, match="weight code -8 out of range ±7"):
        hw_matmul_act(act, wbad)


def test_dense_weight_quantization():
    w = torch.tensor([[1.2, 0.0], [-2.0, 0.0], [0.3, 0.0]])
    wq = quantize_weight_dense(w, 4)
    assert wq.col_scale.tolist() == pytest.approx([2.0 / 7, 1.0])
    assert wq.codes[:, 0].tolist() == [4, -7, 1]          # 4.2, -7, 1.05 rounded
    assert not wq.codes[:, 1].any()
    with pytest.raises(ValueError, match="bits must be 4 or 8, not 6"):
        quantize_weight_dense(w, 6)
