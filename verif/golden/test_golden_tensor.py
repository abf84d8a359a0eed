"""SQTensor validation (every kind of malformed tensor) and the effective-weight cache."""

import pytest
import torch
from sqref import make_sq, ref_hw_matmul

from sqhw.format import SQFormat
from sqhw.golden import MalformedSQError, hw_bank_partials, hw_matmul, pack, random_sqtensor
from sqhw.golden.tensor import SQTensor

FMT = SQFormat()                 # b = 16, k = 2, INT4 low, INT8 high, 8-bit scales


def fresh(fmt=FMT, K=48, N=5, seed=0):
    return random_sqtensor(fmt, K, N, generator=torch.Generator().manual_seed(seed))


def replace(sq, **kw):
    d = {n: getattr(sq, n) for n in ("low", "high", "scale_low", "scale_high", "col_scale",
                                     "fmt")}
    d.update(kw)
    return SQTensor(**d)


def all_entry_points(sq):
    """Every public consumer of an SQTensor must refuse a malformed one."""
    x = torch.zeros(2, sq.low.shape[0] if sq.low.dim() == 2 else 16, dtype=torch.int32)
    return [sq.validate, lambda: pack(sq), sq.dequantize, lambda: hw_matmul(x, sq),
            lambda: hw_bank_partials(x, sq)]


def test_random_sqtensor_is_well_formed():
    for fmt in (FMT, SQFormat.two_four(), SQFormat.dense(3), SQFormat(bank_size=128,
                                                                       sparsity=0.5)):
        sq = fresh(fmt, K=2 * fmt.bank_size)
        assert sq.validate() is sq
        counts = sq.mask.view(2, fmt.bank_size, -1).sum(1)
        assert (counts == fmt.k).all()


@pytest.mark.parametrize("j,n", [(0, 0), (1, 3), (2, 4)])
def test_vmask_count_names_bank_and_column(j, n):
    b, k = FMT.bank_size, FMT.k
    for delta in (+1, -1, +5, -2):
        sq = fresh()
        col = sq.low[j * b:(j + 1) * b, n]
        if delta > 0:
            idx = (col != FMT.vmask).nonzero()[:delta, 0]
            col[idx] = FMT.vmask
        else:
            idx = (col == FMT.vmask).nonzero()[:-delta, 0]
            col[idx] = 3
        for call in all_entry_points(sq):
            with pytest.raises(MalformedSQError,
                               match=f"^bank {j} of column {n} has {k + delta} vmask codes, "
                               f"expected {k}$"):
                call()


def test_first_bad_bank_is_named():
    sq = fresh()
    for j, n in ((2, 4), (1, 2)):
        col = sq.low[j * 16:(j + 1) * 16, n]
        col[(col == FMT.vmask).nonzero()[0, 0]] = 0
    # (1, 2) comes before (2, 4) in (bank, column) order
    with pytest.raises(MalformedSQError, match="bank 1 of column 2"):
        sq.validate()


@pytest.mark.parametrize("name,shape", [
    ("low", (47, 5)), ("low", (48,)), ("low", (48, 5, 1)),
    ("high", (5, 5)), ("high", (6, 4)), ("high", (7, 5)),
    ("scale_low", (3, 4)), ("scale_low", (2, 5)), ("scale_high", (4, 5)),
    ("col_scale", (4,)), ("col_scale", (5, 1)),
])
def test_wrong_shapes(name, shape):
    sq = fresh()
    src = getattr(sq, name)
    bad = torch.zeros(shape, dtype=src.dtype)
    bad = replace(sq, **{name: bad})
    with pytest.raises(MalformedSQError, match=name):
        bad.validate()
    with pytest.raises(MalformedSQError):
        pack(bad)


@pytest.mark.parametrize("name", ["low", "high", "scale_low", "scale_high"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bool])
def test_wrong_dtypes(name, dtype):
    sq = fresh()
    bad = replace(sq, **{name: getattr(sq, name).to(dtype)})
    with pytest.raises(MalformedSQError, match=f"{name} must hold integer codes"):
        bad.validate()
    with pytest.raises(MalformedSQError):
        pack(bad)


def test_wider_integer_dtypes_are_accepted_and_checked():
    sq = fresh()
    wide = replace(sq, low=sq.low.to(torch.int32), high=sq.high.to(torch.int64),
                   scale_low=sq.scale_low.to(torch.int64))
    assert pack(wide) == pack(sq)
    wide.high[0, 0] = 300
    with pytest.raises(MalformedSQError, match="high code 300 out of range ±127"):
        wide.validate()


@pytest.mark.parametrize("name", ["scale_low", "scale_high"])
@pytest.mark.parametrize("bad", [-1, 256, 1 << 20])
def test_scale_code_out_of_range(name, bad):
    sq = fresh()
    getattr(sq, name)[2, 1] = bad
    for call in all_entry_points(sq):
        with pytest.raises(MalformedSQError,
                           match=f"{name} code {bad} out of range 0..255 in bank 2 of column 1"):
            call()


def test_scale_code_for_absent_group():
    two_four = fresh(SQFormat.two_four(), K=8, N=3)
    two_four.scale_low[1, 2] = 5
    with pytest.raises(MalformedSQError, match="scale_low code 5 in bank 1 of column 2 must "
                       "be 0: 2:4-INT8 has no such group"):
        two_four.validate()
    dense = fresh(SQFormat.dense(4), K=32, N=3)
    dense.scale_high[0, 1] = 1
    for call in all_entry_points(dense):
        with pytest.raises(MalformedSQError, match="scale_high code 1 in bank 0 of column 1"):
            call()


@pytest.mark.parametrize("fmt", [FMT, SQFormat(bank_size=8, sparsity=0.75, high_bits=4,
                                                 low_bits=2)], ids=lambda f: f.name)
def test_high_code_out_of_range(fmt):
    h = fmt.high_bits
    for bad in (-(1 << (h - 1)),) + ((1 << (h - 1), -(1 << (h - 1)) - 1) if h < 8 else ()):
        sq = fresh(fmt, K=3 * fmt.bank_size)
        sq.high[fmt.k + 1, 2] = bad          # slot 1 of bank 1
        for call in all_entry_points(sq):
            with pytest.raises(MalformedSQError, match=f"high code {bad} out of range "
                               f"±{fmt.high_max} in bank 1 of column 2"):
                call()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_bad_col_scale(value):
    sq = fresh()
    sq.col_scale[3] = value
    with pytest.raises(MalformedSQError, match="col_scale"):
        sq.validate()
    with pytest.raises(MalformedSQError, match="col_scale"):
        sq.dequantize()


def test_two_four_low_must_be_mask_or_zero():
    fmt = SQFormat.two_four()
    sq = make_sq(fmt, [[-1], [1], [-1], [0]], [[3], [4]], [[0]], [[1]])
    with pytest.raises(MalformedSQError, match=r"low code 1 out of range \[-1, 0\]"):
        sq.validate()


# -- the effective weight cache ----------------------------------------------------------------

def _ref(x, sq):
    return torch.tensor(ref_hw_matmul(x, sq)[0], dtype=torch.int64)


def test_in_place_edits_are_never_stale():
    sq = fresh(K=32, N=3, seed=7)
    x = torch.randint(-128, 128, (4, 32), generator=torch.Generator().manual_seed(8))
    y0 = hw_matmul(x, sq)
    assert torch.equal(y0, _ref(x, sq))
    assert torch.equal(hw_matmul(x, sq), y0)              # cached, same answer

    # a valid edit of a low code: swap a non-vmask value for a different one
    i = int((sq.low[:, 1] != FMT.vmask).nonzero()[0, 0])
    sq.low[i, 1] = 7 if int(sq.low[i, 1]) != 7 else -7
    y1 = hw_matmul(x, sq)
    assert torch.equal(y1, _ref(x, sq)) and not torch.equal(y1, y0)

    # edits through a view, and of the other code tensors
    sq.high.view(-1)[0] = 99 if int(sq.high[0, 0]) != 99 else -99
    assert torch.equal(hw_matmul(x, sq), _ref(x, sq))
    sq.scale_low.add_(1).clamp_(max=255)
    assert torch.equal(hw_matmul(x, sq), _ref(x, sq))
    sq.scale_high[1].zero_()
    assert torch.equal(hw_matmul(x, sq), _ref(x, sq))

    # moving a vmask inside a bank (still k per bank) changes which activations go high
    col = sq.low[0:16, 0]
    vm = (col == FMT.vmask).nonzero()[0, 0]
    other = (col != FMT.vmask).nonzero()[0, 0]
    col[vm], col[other] = int(col[other]), FMT.vmask
    assert torch.equal(hw_matmul(x, sq), _ref(x, sq))

    # a malformed in-place edit raises on the next call, never returns the cached value
    sq.low[17, 2] = FMT.vmask if int(sq.low[17, 2]) != FMT.vmask else 0
    with pytest.raises(MalformedSQError, match="bank 1 of column 2"):
        hw_matmul(x, sq)
    with pytest.raises(MalformedSQError):
        hw_matmul(x, sq)
    sq.high[0, 0] = -128
    with pytest.raises(MalformedSQError):
        sq.effective_weight_f64()


def test_inference_mode_tensors():
    # LLM pipelines build weights under torch.inference_mode(); such tensors carry no
    # version counter, so the golden model must not rely on one for them.
    with torch.inference_mode():
        sq = fresh(K=32, N=3, seed=11)
        x = torch.randint(-128, 128, (2, 32), generator=torch.Generator().manual_seed(1))
        y0 = hw_matmul(x, sq)
        assert torch.equal(y0, _ref(x, sq))
        sq.scale_low.zero_()
        sq.scale_high.fill_(1)
        assert torch.equal(hw_matmul(x, sq), _ref(x, sq))
        sq.high[0, 0] = -128
        with pytest.raises(MalformedSQError):
            hw_matmul(x, sq)
