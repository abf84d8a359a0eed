"""quantize_weight, select_high, two_level_scales against hand-derived values and
independent loop implementations (datasheet §3)."""

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sqref import formats, hsettings, ref_top_mask

from sqhw.format import SQFormat
from sqhw.golden import quantize_weight
from sqhw.golden.quantize import select_high, two_level_scales

# -- test data ---------------------------------------------------------------------------------

KINDS = ["normal", "student_t", "spikes", "zero_groups", "wide_range", "ties"]


def make_weight(kind: str, K: int, N: int, b: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(K, N, generator=g)
    if kind == "student_t":            # df = 3: z / sqrt(chi2_3 / 3), heavy tails
        chi2 = (torch.randn(3, K, N, generator=g) ** 2).sum(0)
        w = w / torch.sqrt(chi2 / 3)
    elif kind == "spikes":             # a few ×50 outliers
        idx = torch.randint(0, K * N, (max(1, K * N // 50),), generator=g)
        w.view(-1)[idx] *= 50
    elif kind == "zero_groups":        # all-zero banks and an all-zero column
        nb = K // b
        zero = (torch.rand(nb, 1, N, generator=g) < 0.4).expand(nb, b, N).reshape(K, N)
        w = w.masked_fill(zero, 0.0)
        w[:, torch.randint(0, N, (1,), generator=g)] = 0
    elif kind == "wide_range":         # columns and banks over 12 decades
        w = w * 10.0 ** torch.randint(-6, 6, (K // b, 1, N), generator=g).float() \
            .expand(K // b, b, N).reshape(K, N)
    elif kind == "ties":               # few distinct magnitudes: many equal |w|
        w = torch.randint(-2, 3, (K, N), generator=g).float() * 0.25
    return w


def check_half_step(w: torch.Tensor, sq) -> None:
    """Every element is within half of its group's step col_scale·code (datasheet §3)."""
    fmt = sq.fmt
    b = fmt.bank_size
    K, N = w.shape
    deq = sq.dequantize()
    assert torch.isfinite(deq).all() and torch.isfinite(sq.col_scale).all()
    mask = sq.mask
    col = sq.col_scale.to(torch.float64)
    sl = sq.scale_low.repeat_interleave(b, 0).to(torch.float64) * col
    sh = sq.scale_high.repeat_interleave(b, 0).to(torch.float64) * col
    step = torch.where(mask, sh, sl)
    err = (w.to(torch.float64) - deq.to(torch.float64)).abs()
    tol = 4e-6 * (w.abs().to(torch.float64) + step) + 1e-38
    if fmt.low_bits == 0:
        # no low part (2:4): the low elements are pruned to exactly 0
        assert (deq[~mask] == 0).all()
        ok = err <= step / 2 + tol
        ok = ok | ~mask
    else:
        ok = err <= step / 2 + tol
    assert ok.all(), (err - step / 2)[~ok][:5]


def check_group_codes(w: torch.Tensor, sq) -> None:
    """Code 0 exactly for all-zero groups; the largest group of a column gets scale_max."""
    fmt = sq.fmt
    b, nb = fmt.bank_size, w.shape[0] // fmt.bank_size
    mask = sq.mask.view(nb, b, -1)
    wb = w.view(nb, b, -1).abs()
    low_max = wb.masked_fill(mask, 0).amax(1)
    high_max = wb.masked_fill(~mask, 0).amax(1)
    if fmt.low_bits:
        assert torch.equal(sq.scale_low == 0, low_max == 0)
    if fmt.k:
        assert torch.equal(sq.scale_high == 0, high_max == 0)
    top = torch.maximum(sq.scale_low.amax(0), sq.scale_high.amax(0))
    nonzero = w.abs().amax(0) > 0
    assert (top[nonzero] == fmt.scale_max).all()
    assert (top[~nonzero] == 0).all() and (sq.col_scale[~nonzero] == 1).all()


# -- hypothesis: error bound over random formats and data --------------------------------------

@hsettings(60)
@given(fmt=formats(), nb=st.integers(1, 3), N=st.integers(1, 5),
       kind=st.sampled_from(KINDS), seed=st.integers(0, 2**31), per_channel=st.booleans())
def test_quantize_within_half_step(fmt, nb, N, kind, seed, per_channel):
    K = nb * fmt.bank_size
    w = make_weight(kind, K, N, fmt.bank_size, seed)
    sq = quantize_weight(w, fmt, per_channel=per_channel)
    sq.validate()
    assert sq.shape == (K, N)
    check_half_step(w, sq)
    assert torch.equal(sq.mask, ref_top_mask(w, fmt.bank_size, fmt.k))
    if not per_channel:
        check_group_codes(w, sq)
    else:
        assert (sq.scale_low == sq.scale_low[:1]).all()
        assert (sq.scale_high == sq.scale_high[:1]).all()


@pytest.mark.parametrize("fmt", [SQFormat(), SQFormat.two_four(), SQFormat.dense(4),
                                 SQFormat(bank_size=64, sparsity=0.9375, low_bits=3)],
                         ids=lambda f: f.name)
def test_all_zero_weight(fmt):
    w = torch.zeros(2 * fmt.bank_size, 3)
    sq = quantize_weight(w, fmt)
    assert (sq.scale_low == 0).all() and (sq.scale_high == 0).all()
    assert (sq.col_scale == 1).all() and (sq.high == 0).all()
    assert (sq.dequantize() == 0).all()
    # exactly k vmask codes per bank even though every importance ties (lowest positions)
    assert (sq.mask.view(2, fmt.bank_size, 3)[:, :fmt.k] == True).all()  # noqa: E712
    assert sq.mask.sum() == 2 * fmt.k * 3


def test_tiny_group_next_to_huge_keeps_nonzero_code():
    # Regression: a non-zero group ~1e-14 of its column's largest used to get scale code 0,
    # which the datasheet (§2) reserves for an all-zero group, and its values were dropped.
    fmt = SQFormat(bank_size=4, sparsity=0.75)
    w = torch.tensor([[1.0], [0.5], [0.25], [0.1], [1e-14], [2e-14], [0.0], [0.0]])
    sq = quantize_weight(w, fmt)
    assert (sq.scale_low >= 1).all() and (sq.scale_high >= 1).all()
    check_half_step(w, sq)
    check_group_codes(w, sq)


# -- hand-derived literals ---------------------------------------------------------------------

def test_literal_dense_quantization():
    # INT4 dense, b = 4, sb = 2 (scale_max 3). Bank 0 = (21, 10.5, -7.5, 0): float scale
    # 21/7 = 3, the column's largest, so col_scale = 3/3 = 1 and code 3 (step 3):
    # (7, 3.5, -2.5, 0) -> round-half-even (7, 4, -2, 0). Bank 1 = (6, 1.5, -0.5, 2.4):
    # scale 6/7, code ceil(0.857) = 1 (step 1) -> (6, 2, -0, 2).
    fmt = SQFormat.dense(4, bank_size=4, scale_bits=2)
    w = torch.tensor([21, 10.5, -7.5, 0, 6, 1.5, -0.5, 2.4]).view(8, 1)
    sq = quantize_weight(w, fmt)
    assert sq.low[:, 0].tolist() == [7, 4, -2, 0, 6, 2, 0, 2]
    assert sq.scale_low[:, 0].tolist() == [3, 1]
    assert sq.col_scale.tolist() == [1.0]
    assert sq.dequantize()[:, 0].tolist() == [21, 12, -6, 0, 6, 2, 0, 2]


def test_literal_sq_quantization():
    # B4-(8/4)-0.75, sb = 2: bank (127, -3.5, 7, 0.5): high = 127 (the one largest |w|),
    # high scale 127/127 = 1; low group (-3.5, 7, 0.5): scale 7/7 = 1. col = 1/3, codes
    # ceil(3) = 3 for both (step 1): low -3.5 -> -4 and 0.5 -> 0 (round half to even).
    fmt = SQFormat(bank_size=4, sparsity=0.75, high_bits=8, low_bits=4, scale_bits=2)
    w = torch.tensor([[127.0], [-3.5], [7.0], [0.5]])
    sq = quantize_weight(w, fmt)
    assert sq.low[:, 0].tolist() == [-8, -4, 7, 0]
    assert sq.high[:, 0].tolist() == [127]
    assert (int(sq.scale_low[0, 0]), int(sq.scale_high[0, 0])) == (3, 3)
    assert sq.col_scale[0].item() == pytest.approx(1 / 3, rel=1e-7)


def test_two_level_scales_literal():
    fmt = SQFormat(scale_bits=2)                   # scale_max 3
    low = torch.tensor([[1.0, 0.0], [0.2, 0.0]])   # [nb = 2, N = 2]
    high = torch.tensor([[0.6, 0.0], [0.0, 0.0]])
    (cl, ch), col = two_level_scales([low, high], fmt)
    # column 0: max 1.0 -> col 1/3; codes ceil(3) = 3, ceil(0.6) = 1, ceil(1.8) = 2, 0
    # column 1: all zero -> col 1, codes 0
    assert cl.tolist() == [[3, 0], [1, 0]]
    assert ch.tolist() == [[2, 0], [0, 0]]
    assert col.tolist() == pytest.approx([1 / 3, 1.0])
    assert cl.dtype == torch.int32


# -- k = 0 against an independent per-(bank, column) quantizer ---------------------------------

def ref_dense_quantize(w: torch.Tensor, fmt: SQFormat, per_channel: bool):
    """Straight from datasheet §3 with Python loops and exact rationals.

    Returns (codes [K][N], scale codes [nb][N], col_scale [N], near_tie set) where near_tie
    holds the (i, n) whose value is within 1e-4 of a rounding tie (float rounding may go
    either way there) and ("s", j, n) for scale ratios within 1e-4 of an integer.
    """
    K, N = w.shape
    b, q = fmt.bank_size, fmt.low_max
    nb = K // b
    a = [[Fraction(float(v)) for v in row] for row in w.tolist()]
    fs = [[max(abs(a[j * b + i][n]) for i in range(b)) / q for n in range(N)]
          for j in range(nb)]
    if per_channel:
        fs = [[max(fs[j][n] for j in range(nb)) for n in range(N)] for _ in range(nb)]
    codes = [[0] * N for _ in range(K)]
    sc = [[0] * N for _ in range(nb)]
    col = [1.0] * N
    near = set()
    for n in range(N):
        top = max(fs[j][n] for j in range(nb))
        c = top / fmt.scale_max if top > 0 else Fraction(1)
        col[n] = float(c)
        for j in range(nb):
            ratio = fs[j][n] / c
            sc[j][n] = math.ceil(ratio)
            if sc[j][n] and abs(ratio - round(ratio)) < Fraction(1, 10_000) and \
                    ratio != round(ratio):
                near.add(("s", j, n))
            step = sc[j][n] * c
            for i in range(b):
                if step == 0:
                    continue
                v = a[j * b + i][n] / step
                r = round(v)                       # Fraction.__round__: half to even
                codes[j * b + i][n] = max(-q, min(q, r))
                if abs(abs(v - math.floor(v)) - Fraction(1, 2)) < Fraction(1, 10_000):
                    near.add((j * b + i, n))
    return codes, sc, col, near


@pytest.mark.parametrize("fmt", [SQFormat.dense(4), SQFormat.dense(2, bank_size=8),
                                 SQFormat.dense(8, bank_size=32, scale_bits=4),
                                 SQFormat.dense(3, bank_size=4, scale_bits=12)],
                         ids=lambda f: f"{f.name}-b{f.bank_size}-sb{f.scale_bits}")
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("kind", ["normal", "spikes", "zero_groups"])
def test_dense_matches_reference(fmt, per_channel, kind):
    K, N = 4 * fmt.bank_size, 6
    w = make_weight(kind, K, N, fmt.bank_size, seed=fmt.bank_size + fmt.low_bits)
    sq = quantize_weight(w, fmt, per_channel=per_channel)
    codes, sc, col, near = ref_dense_quantize(w, fmt, per_channel)
    assert not sq.mask.any() and sq.high.shape == (0, N) and (sq.scale_high == 0).all()
    assert sq.col_scale.tolist() == pytest.approx(col, rel=1e-6)
    got_sc = sq.scale_low.tolist()
    for j in range(len(sc)):
        for n in range(N):
            if ("s", j, n) not in near:
                assert got_sc[j][n] == sc[j][n], (j, n)
    got = sq.low.tolist()
    skip_cols = {n for (_, j, n) in (x for x in near if x[0] == "s")}
    mism = [(i, n) for i in range(K) for n in range(N)
            if got[i][n] != codes[i][n] and (i, n) not in near and n not in skip_cols]
    assert not mism, mism[:5]
    if per_channel:
        # one float scale per column: every code is scale_max (or 0 in a zero column)
        nz = w.abs().amax(0) > 0
        assert (sq.scale_low[:, nz] == fmt.scale_max).all()
        assert (sq.scale_low[:, ~nz] == 0).all()
        assert (sq.scale_low == sq.scale_low[:1]).all()


# -- 2:4 against magnitude pruning -------------------------------------------------------------

@pytest.mark.parametrize("kind", ["normal", "spikes", "ties", "zero_groups"])
def test_two_four_is_magnitude_pruning(kind):
    fmt = SQFormat.two_four()
    K, N = 64, 8
    w = make_weight(kind, K, N, 4, seed=3)
    sq = quantize_weight(w, fmt)
    expect = ref_top_mask(w, 4, 2)                 # top-2 |w| of every 4, ties to lower index
    assert torch.equal(sq.mask, expect)
    assert (sq.low == torch.where(expect, -1, 0).to(torch.int8)).all()
    assert (sq.scale_low == 0).all()
    deq = sq.dequantize()
    assert (deq[~expect] == 0).all()
    check_half_step(w, sq)


def test_two_four_literal_ties():
    fmt = SQFormat.two_four()
    w = torch.tensor([[1.0, 0.5, 3.0, 0.0],
                      [1.0, -2.0, -3.0, 0.0],
                      [1.0, 2.0, 3.0, 0.0],
                      [1.0, 1.0, -3.0, 0.0]])
    sq = quantize_weight(w, fmt)
    # column 0: all |w| equal -> positions 0, 1; column 1: |.| = .5, 2, 2, 1 -> 1, 2;
    # column 2: 3 and -3 tie with 3 -> 0, 1; column 3: all zero -> 0, 1
    assert sq.mask.T.tolist() == [[True, True, False, False], [False, True, True, False],
                                  [True, True, False, False], [True, True, False, False]]


# -- tie-breaking and importance ---------------------------------------------------------------

def test_select_high_ties_go_to_lower_positions():
    # Documented rule: among equal importances the element that comes first in the bank
    # wins (stable descending sort).
    fmt = SQFormat(bank_size=8, sparsity=1 - 3 / 8, high_bits=8, low_bits=4)
    imp = torch.tensor([[5, 1, 5, 1, 5, 1, 5, 5],        # five 5s -> positions 0, 2, 4
                        [1, 1, 1, 1, 1, 1, 1, 1],        # all equal -> 0, 1, 2
                        [0, 0, 0, 0, 0, 9, 9, 0],        # 5, 6 then the first 0 -> 0
                        [0, 0, 0, 0, 0, 0, 0, 9]], dtype=torch.float32).T
    m = select_high(imp, fmt)
    assert [c.nonzero()[:, 0].tolist() for c in m.T] == [[0, 2, 4], [0, 1, 2], [0, 5, 6],
                                                          [0, 1, 7]]


def test_importance_overrides_magnitude():
    fmt = SQFormat(bank_size=4, sparsity=0.5, high_bits=8, low_bits=4)
    w = torch.tensor([[4.0], [3.0], [2.2], [1.0]])
    imp = torch.tensor([[0.0], [1.0], [0.0], [1.0]])
    sq = quantize_weight(w, fmt, importance=imp)
    assert sq.mask[:, 0].tolist() == [False, True, False, True]
    # low group (4, 2.2): scale 4/7, the column's largest, so col = 4/(7·255); high group
    # (3, 1): scale 3/127 -> code ceil(3·7·255 / (127·4)) = ceil(10.54) = 11, step 44/1785:
    # 3/step = 121.7 -> 122, 1/step = 40.6 -> 41; low (4, 2.2), code 255 (step 4/7): 7, 3.85->4
    assert sq.high[:, 0].tolist() == [122, 41]
    assert (int(sq.scale_low[0, 0]), int(sq.scale_high[0, 0])) == (255, 11)
    assert sq.low[:, 0].tolist() == [7, -8, 4, -8]
    check_half_step(w, sq)


@hsettings(30)
@given(fmt=formats(bank_sizes=(4, 8, 16)), seed=st.integers(0, 2**31))
def test_select_high_matches_reference(fmt, seed):
    g = torch.Generator().manual_seed(seed)
    imp = torch.randint(0, 4, (2 * fmt.bank_size, 3), generator=g).float()   # many ties
    assert torch.equal(select_high(imp, fmt), ref_top_mask(imp, fmt.bank_size, fmt.k))
    w = torch.randn(2 * fmt.bank_size, 3, generator=g)
    assert torch.equal(quantize_weight(w, fmt, importance=imp).mask,
                       ref_top_mask(imp, fmt.bank_size, fmt.k))


# -- bad arguments -----------------------------------------------------------------------------

@pytest.mark.parametrize("w,match", [
    (torch.zeros(16), "2-D"),
    (torch.zeros(2, 16, 1), "2-D"),
    (torch.zeros(24, 2), "multiple of bank_size 16"),
    (torch.zeros(0, 2), "multiple of bank_size"),
    (torch.zeros(16, 0), "multiple of bank_size"),
    (torch.full((16, 2), float("nan")), "non-finite"),
    (torch.full((16, 2), float("inf")), "non-finite"),
    ([[0.0] * 2] * 16, "2-D"),
])
def test_quantize_rejects(w, match):
    with pytest.raises(ValueError, match=match):
        quantize_weight(w, SQFormat())


def test_quantize_rejects_importance_shape():
    with pytest.raises(ValueError, match="importance must have the shape"):
        quantize_weight(torch.zeros(16, 2), SQFormat(), importance=torch.zeros(16, 3))
