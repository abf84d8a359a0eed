"""hw_matmul / hw_bank_partials against a per-bank loop model (datasheet §6), activation
checks, the accumulator bound, and the float path (quantize_activation, descale, matmul)."""

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sqref import formats, hsettings, make_sq, ref_hw_matmul

from sqhw.format import HWConfig, SQFormat, accumulator_bound
from sqhw.golden import (
    descale,
    hw_bank_partials,
    hw_matmul,
    matmul,
    quantize_activation,
    quantize_weight,
    random_sqtensor,
)
from sqhw.golden import hwmodel as hwmodel_module


def rand_act(M, K, act_bits, seed):
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(lo, hi + 1, (M, K), generator=g, dtype=torch.int32)
    # make sure both extremes (-2^(a-1) included) occur
    x.view(-1)[0] = lo
    x.view(-1)[-1] = hi
    return x


# -- integer model vs loops --------------------------------------------------------------------

@hsettings(50)
@given(fmt=formats(), nb=st.integers(1, 3), M=st.integers(1, 3), N=st.integers(1, 3),
       act_bits=st.integers(2, 8), seed=st.integers(0, 2**31))
def test_hw_matmul_matches_loop_model(fmt, nb, M, N, act_bits, seed):
    K = nb * fmt.bank_size
    sq = random_sqtensor(fmt, K, N, generator=torch.Generator().manual_seed(seed))
    x = rand_act(M, K, act_bits, seed + 1)
    y_ref, pl_ref, ph_ref = ref_hw_matmul(x, sq)
    y = hw_matmul(x, sq, act_bits=act_bits)
    assert y.dtype == torch.int64 and y.shape == (M, N)
    assert y.tolist() == y_ref
    p_low, p_high = hw_bank_partials(x, sq, act_bits=act_bits)
    assert p_low.dtype == p_high.dtype == torch.int64
    assert p_low.tolist() == pl_ref and p_high.tolist() == ph_ref
    recombined = (sq.scale_low[None].long() * p_low + sq.scale_high[None].long() * p_high).sum(1)
    assert torch.equal(recombined, y)
    assert int(y.abs().max()) <= accumulator_bound(fmt, act_bits, K)


def test_hw_matmul_literal():
    # B4-(8/4)-0.5, one bank, one column: low = (3, vmask, -2, vmask), high = (10, -5),
    # scale_low 2, scale_high 7, x = (1, 2, 3, 4):
    # P_low = 1·3 + 3·(-2) = -3, P_high = 2·10 + 4·(-5) = 0 -> y = 2·(-3) + 7·0 = -6
    # x = (-128, 1, 1, -1): P_low = -384 - 2 = -386, P_high = 10 + 5 = 15 -> -772 + 105
    fmt = SQFormat(bank_size=4, sparsity=0.5, high_bits=8, low_bits=4)
    sq = make_sq(fmt, [[3], [-8], [-2], [-8]], [[10], [-5]], [[2]], [[7]])
    x = torch.tensor([[1, 2, 3, 4], [-128, 1, 1, -1]], dtype=torch.int8)
    assert hw_matmul(x, sq).tolist() == [[-6], [-667]]
    p_low, p_high = hw_bank_partials(x, sq)
    assert p_low[:, 0, 0].tolist() == [-3, -386] and p_high[:, 0, 0].tolist() == [0, 15]


@pytest.mark.parametrize("fmt", [SQFormat(), SQFormat.two_four(), SQFormat.dense(8)],
                         ids=lambda f: f.name)
def test_int64_path_equals_float64_path(fmt, monkeypatch):
    K = 4 * fmt.bank_size
    sq = random_sqtensor(fmt, K, 5, generator=torch.Generator().manual_seed(4))
    x = rand_act(6, K, 8, 5)
    y_f64 = hw_matmul(x, sq)
    monkeypatch.setattr(hwmodel_module, "_EXACT_F64", 0)     # force the int64 product
    y_i64 = hw_matmul(x, sq)
    assert torch.equal(y_f64, y_i64)
    assert y_i64.tolist() == ref_hw_matmul(x, sq)[0]


# -- activation checks -------------------------------------------------------------------------

SQ = random_sqtensor(SQFormat(), 32, 3, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("x,match", [
    (torch.zeros(2, 32), "integers"),
    (torch.zeros(2, 32, dtype=torch.float64), "integers"),
    (torch.zeros(2, 32, dtype=torch.bool), "integers"),
    (torch.full((2, 32), 128), r"-128\.\.127"),
    (torch.full((2, 32), -129), r"-128\.\.127"),
    (torch.zeros(2, 16, dtype=torch.int32), "K=16 but the weight has K=32"),
    (torch.zeros(2, 48, dtype=torch.int32), "K=48"),
    (torch.zeros(32, dtype=torch.int32), "2-D"),
    ([[0] * 32], "2-D"),
])
def test_hw_matmul_rejects_activations(x, match):
    with pytest.raises(ValueError, match=match):
        hw_matmul(x, SQ)
    with pytest.raises(ValueError, match=match):
        hw_bank_partials(x, SQ)


def test_activation_range_follows_act_bits():
    x = torch.zeros(1, 32, dtype=torch.int32)
    x[0, 3] = 8
    with pytest.raises(ValueError, match=r"-8\.\.7 for act_bits=4"):
        hw_matmul(x, SQ, act_bits=4)
    x[0, 3] = -8                                   # most negative 4-bit code: accepted
    assert hw_matmul(x, SQ, act_bits=4).tolist() == ref_hw_matmul(x, SQ)[0]


def test_most_negative_activation_accepted():
    x = torch.full((2, 32), -128, dtype=torch.int16)
    x[1, ::2] = 127
    assert hw_matmul(x, SQ).tolist() == ref_hw_matmul(x, SQ)[0]
    assert hw_matmul(torch.zeros(0, 32, dtype=torch.int32), SQ).shape == (0, 3)


def test_acc_bits_argument():
    fmt = SQFormat()
    cfg = HWConfig()
    sq = random_sqtensor(fmt, cfg.k_max, 1, generator=torch.Generator().manual_seed(1))
    x = torch.zeros(1, cfg.k_max, dtype=torch.int32)
    hw_matmul(x, sq, acc_bits=cfg.acc_bits)                    # K = k_max fits 32 bits
    with pytest.raises(ValueError, match="K=1024 can overflow a 30-bit accumulator"):
        hw_matmul(x, sq, acc_bits=30)


def test_cfg_argument():
    """``cfg=`` takes the widths from the HWConfig: the same integers as passing them one by
    one, and a configuration that does not match the operands is refused."""
    fmt = SQFormat(bank_size=8, sparsity=0.75, low_bits=2, high_bits=4)
    cfg = HWConfig(fmt=fmt, rows=2, act_bits=4, k_max=32, acc_bits=24)
    sq = random_sqtensor(fmt, 32, 3, generator=torch.Generator().manual_seed(2))
    x = rand_act(4, 32, 4, seed=3)
    y = hw_matmul(x, sq, cfg=cfg)
    assert torch.equal(y, hw_matmul(x, sq, 4, 24)) and y.tolist() == ref_hw_matmul(x, sq)[0]
    assert all(torch.equal(a, b) for a, b in zip(hw_bank_partials(x, sq, cfg=cfg),
                                                 hw_bank_partials(x, sq, 4), strict=True))
    with pytest.raises(ValueError, match="x_int codes must be in -8..7"):
        hw_matmul(rand_act(1, 32, 8, seed=4), sq, cfg=cfg)          # act_bits from cfg
    with pytest.raises(TypeError, match="either cfg or act_bits, not both"):
        hw_matmul(x, sq, 4, cfg=cfg)
    with pytest.raises(ValueError, match=r"in B8-\(4/2\)-0.75 .* but cfg is for B16"):
        hw_matmul(x, sq, cfg=HWConfig())
    with pytest.raises(ValueError, match="K=32 is larger than cfg.k_max 16"):
        hw_matmul(x, sq, cfg=HWConfig(fmt=fmt, act_bits=4, k_max=16, acc_bits=24))
    with pytest.raises(ValueError, match="not a weight-mode configuration"):
        hw_matmul(x, sq, cfg=HWConfig(fmt=fmt, act_bits=4, k_max=32, operand="activation",
                                      weight_bits=4, acc_bits=32))


# -- the accumulator bound, reached ------------------------------------------------------------

def test_worst_case_reaches_bound_default_config():
    # All activations -128, every low code +7, every high code +127, every scale code 255:
    # |y| = nb · 255 · 128 · (14·7 + 2·127) = bound - nb · 255 · 128 · 2 (the bound allows
    # the out-of-range high code -128). Flipping the signs gives the same magnitude.
    cfg = HWConfig()
    fmt, K = cfg.fmt, cfg.k_max
    nb = K // 16
    low = torch.full((K, 1), 7, dtype=torch.int8)
    low.view(nb, 16)[:, 5] = -8
    low.view(nb, 16)[:, 11] = -8
    for sign in (1, -1):
        sq = make_sq(fmt, (sign * low).where(low != -8, low).tolist(),
                     [[sign * 127]] * (2 * nb), [[255]] * nb, [[255]] * nb)
        y = hw_matmul(torch.full((1, K), -128, dtype=torch.int32), sq, acc_bits=32)
        expect = nb * 255 * 128 * (14 * 7 + 2 * 127)
        assert int(y) == -sign * expect
        assert expect == cfg.acc_bound - nb * 255 * 128 * 2
        assert expect <= (1 << 31) - 1


def test_worst_case_brute_force_tiny_config():
    # Every well-formed record of B4-(3/2)-0.75 with 2-bit scales, against every 2-bit
    # activation vector: the largest |y| is the bound minus the -2^(h-1) slack.
    fmt = SQFormat(bank_size=4, sparsity=0.75, high_bits=3, low_bits=2, scale_bits=2)
    cols = []
    for p in range(4):
        for lv in itertools.product((-1, 0, 1), repeat=3):
            for hv in range(-3, 4):
                for sl in range(4):
                    for sh in range(4):
                        low = list(lv)
                        low.insert(p, fmt.vmask)
                        cols.append((low, hv, sl, sh))
    N = len(cols)
    sq = make_sq(fmt, [[c[0][i] for c in cols] for i in range(4)], [[c[1] for c in cols]],
                 [[c[2] for c in cols]], [[c[3] for c in cols]])
    x = torch.tensor(list(itertools.product(range(-2, 2), repeat=4)), dtype=torch.int32)
    y = hw_matmul(x, sq, act_bits=2)
    assert y.shape == (256, N)
    bound = accumulator_bound(fmt, 2, 4)
    assert bound == 3 * 2 * (3 * 1 + 1 * 4)                     # = 42
    assert int(y.abs().max()) == bound - 3 * 2 * 1              # = 36, high code 3 not 4
    # and spot-check the loop model on a slice of the columns
    idx = torch.arange(0, N, 97)
    sub = make_sq(fmt, sq.low[:, idx].tolist(), sq.high[:, idx].tolist(),
                  sq.scale_low[:, idx].tolist(), sq.scale_high[:, idx].tolist())
    assert y[:, idx].tolist() == ref_hw_matmul(x, sub)[0]


# -- host float path ---------------------------------------------------------------------------

def make_x(kind, M, K, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(M, K, generator=g)
    if kind == "student_t":
        x = x / torch.sqrt((torch.randn(2, M, K, generator=g) ** 2).sum(0) / 2)
    elif kind == "spikes":             # outlier channels, as in LLM activations
        ch = torch.randint(0, K, (max(1, K // 32),), generator=g)
        x[:, ch] *= 50
    elif kind == "zero_token":
        x[0] = 0
    return x


KIND_FMT = list(itertools.product(
    ["normal", "student_t", "spikes", "zero_token"],
    [SQFormat(), SQFormat(bank_size=64, sparsity=0.9375, low_bits=3), SQFormat.two_four(),
     SQFormat.dense(4), SQFormat(bank_size=8, sparsity=0.5, high_bits=6, low_bits=2,
                                 scale_bits=12)]))


@pytest.mark.parametrize("kind,fmt", KIND_FMT, ids=[f"{k}-{f.name}" for k, f in KIND_FMT])
def test_descaled_hw_matmul_vs_float_matmul(kind, fmt):
    M, K, N = 5, 256, 7
    w = make_x("student_t" if kind == "spikes" else kind, K, N, 100)   # heavy-tailed W too
    if kind == "spikes":
        w[torch.randint(0, K, (4,)), torch.randint(0, N, (4,))] *= 50
    sq = quantize_weight(w, fmt)
    x = make_x(kind, M, K, 200)
    x_int, sx = quantize_activation(x)
    assert x_int.dtype == torch.int32 and int(x_int.abs().max()) <= 127
    y_hw = descale(hw_matmul(x_int, sq), sx, sq).to(torch.float64)
    y_ref = matmul(x, sq).to(torch.float64)
    deq = sq.dequantize().to(torch.float64)
    x64 = x.to(torch.float64)
    mag = x64.abs() @ deq.abs()
    # activation rounding moves each x by at most sx/2, and nothing else differs
    bound = sx.to(torch.float64)[:, None] / 2 * deq.abs().sum(0)[None, :]
    err = (y_hw - y_ref).abs()
    assert (err <= bound + 1e-5 * mag + 1e-30).all(), (err - bound).max()
    if kind == "zero_token":
        assert (y_hw[0] == 0).all() and float(sx[0]) == 1.0
    # exactness: the integer path is the float product of the quantized activations
    xq = x_int.to(torch.float32) * sx[:, None]
    y_exact = matmul(xq, sq).to(torch.float64)
    magq = xq.to(torch.float64).abs() @ deq.abs()
    assert ((y_hw - y_exact).abs() <= 2e-6 * magq + 1e-30).all()


def test_quantize_activation():
    x = torch.tensor([[1.0, -2.0, 0.5, 2.0], [0.0, 0.0, 0.0, 0.0], [-3.0, 1.0, 0.0, 0.0]])
    x_int, s = quantize_activation(x)
    # token 0: scale 2/127, codes round(127·(0.5, -1, 0.25, 1)) = (64 [63.5 half-even],
    # -127, 32 [31.75], 127); token 1: scale 1, codes 0; token 2: scale 3/127
    assert x_int.tolist() == [[64, -127, 32, 127], [0, 0, 0, 0], [-127, 42, 0, 0]]
    assert s.tolist() == pytest.approx([2 / 127, 1.0, 3 / 127], rel=1e-7)
    x_int4, s4 = quantize_activation(x, act_bits=4)
    assert x_int4.tolist()[0] == [4, -7, 2, 7]                  # 3.5 -> 4, 1.75 -> 2
    assert int(x_int4.abs().max()) <= 7
    for bad in (torch.zeros(2, 3, dtype=torch.int32), torch.zeros(3),
                torch.tensor([[float("nan")]])):
        with pytest.raises(ValueError):
            quantize_activation(bad)


def test_descale_literal():
    fmt = SQFormat.dense(4, bank_size=4)
    sq = make_sq(fmt, [[1, 0]] * 4, [], [[1, 1]], [[0, 0]],
                 col_scale=torch.tensor([0.5, 4.0]))
    acc = torch.tensor([[10, -3], [0, 7]])
    y = descale(acc, torch.tensor([2.0, 0.25]), sq)
    assert y.dtype == torch.float32
    assert y.tolist() == [[10.0, -24.0], [0.0, 7.0]]
