"""Independent reference implementations and hypothesis strategies for the golden-model tests.

Everything here is written straight from docs/datasheet.md with plain Python integers and
loops, deliberately *not* reusing sqhw.golden's numpy/torch code paths, so that a test
comparing the two can fail.
"""

import math
from fractions import Fraction

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sqhw.format import SQFormat
from sqhw.golden import SQTensor

__all__ = [
    "SETTINGS", "hsettings", "formats", "BANK_SIZES",
    "ref_record_fields", "ref_pack_record", "ref_pack", "ref_read_field",
    "ref_hw_matmul", "ref_top_mask", "make_sq",
]

BANK_SIZES = [4, 8, 16, 32, 64, 128]


def hsettings(max_examples: int) -> settings:
    """Reproducible hypothesis settings: no example database, derandomized, no deadline."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True,
                    database=None, suppress_health_check=[HealthCheck.too_slow])


SETTINGS = hsettings(40)


@st.composite
def formats(draw, bank_sizes=tuple(BANK_SIZES), max_k: int | None = None) -> SQFormat:
    """Any valid SQFormat: bank 4..128, k in 0..b-1, bits and scale bits over their ranges."""
    b = draw(st.sampled_from(bank_sizes))
    hi_k = b - 1 if max_k is None else min(b - 1, max_k)
    k = draw(st.one_of(st.integers(1, min(hi_k, 4)), st.integers(1, hi_k), st.just(0)))
    scale_bits = draw(st.integers(2, 16))
    if k == 0:
        low_bits = draw(st.integers(2, 8))
        high_bits = draw(st.integers(2, 8))
    else:
        high_bits = draw(st.integers(2, 8))
        low_bits = draw(st.sampled_from([0] + list(range(2, high_bits))))
    return SQFormat(bank_size=b, sparsity=1 - k / b, high_bits=high_bits,
                    low_bits=low_bits, scale_bits=scale_bits)


# -- the memory image, bit by bit with Python ints ---------------------------------------------

def ref_record_fields(fmt: SQFormat):
    """(name, count, width, signed) in bit order, straight from the datasheet §4 table."""
    wl = max(fmt.low_bits, 1)
    out = [("low", fmt.bank_size, wl, True)]
    if fmt.k > 0:
        out.append(("high", fmt.k, fmt.high_bits, True))
    if fmt.low_bits > 0:
        out.append(("scale_low", 1, fmt.scale_bits, False))
    if fmt.k > 0:
        out.append(("scale_high", 1, fmt.scale_bits, False))
    return out


def ref_pack_record(fmt: SQFormat, values: dict[str, list[int]]) -> bytes:
    """One record: field values placed LSB-first with Python integer shifts."""
    acc, pos = 0, 0
    for name, count, width, _ in ref_record_fields(fmt):
        vals = values[name]
        assert len(vals) == count
        for v in vals:
            acc |= (v & ((1 << width) - 1)) << pos
            pos += width
    nbytes = (pos + 7) // 8
    return acc.to_bytes(nbytes, "little")


def ref_read_field(record: bytes, pos: int, width: int, signed: bool) -> int:
    """Read ``width`` bits at bit ``pos`` of a record (LSB-first)."""
    v = (int.from_bytes(record, "little") >> pos) & ((1 << width) - 1)
    if signed and v >= 1 << (width - 1):
        v -= 1 << width
    return v


def ref_pack(sq: SQTensor) -> bytes:
    fmt = sq.fmt
    b, k = fmt.bank_size, fmt.k
    K, N = sq.low.shape
    out = bytearray()
    for n in range(N):
        for j in range(K // b):
            out += ref_pack_record(fmt, {
                "low": [int(sq.low[j * b + i, n]) for i in range(b)],
                "high": [int(sq.high[j * k + t, n]) for t in range(k)],
                "scale_low": [int(sq.scale_low[j, n])],
                "scale_high": [int(sq.scale_high[j, n])],
            })
    return bytes(out)


# -- the arithmetic of datasheet §6, loop by loop ----------------------------------------------

def ref_hw_matmul(x: torch.Tensor, sq: SQTensor):
    """(y, P_low, P_high) as nested Python lists, from the §6 formulas with explicit loops."""
    fmt = sq.fmt
    b, k = fmt.bank_size, fmt.k
    M, K = x.shape
    N = sq.low.shape[1]
    nb = K // b
    xs = x.tolist()
    low = sq.low.tolist()
    high = sq.high.tolist()
    sl, sh = sq.scale_low.tolist(), sq.scale_high.tolist()
    y = [[0] * N for _ in range(M)]
    p_low = [[[0] * N for _ in range(nb)] for _ in range(M)]
    p_high = [[[0] * N for _ in range(nb)] for _ in range(M)]
    for n in range(N):
        for j in range(nb):
            idx = [i for i in range(b) if low[j * b + i][n] == fmt.vmask]
            assert len(idx) == k
            for m in range(M):
                pl = sum(xs[m][j * b + i] * low[j * b + i][n]
                         for i in range(b) if i not in idx)
                ph = sum(xs[m][j * b + idx[t]] * high[j * k + t][n] for t in range(k))
                p_low[m][j][n], p_high[m][j][n] = pl, ph
                y[m][n] += sl[j][n] * pl + sh[j][n] * ph
    return y, p_low, p_high


# -- quantization references -------------------------------------------------------------------

def ref_top_mask(w: torch.Tensor, b: int, k: int) -> torch.Tensor:
    """Top-k |w| of every bank of every column; ties go to the lower position."""
    K, N = w.shape
    mask = torch.zeros(K, N, dtype=torch.bool)
    a = w.abs().tolist()
    for n in range(N):
        for j in range(K // b):
            order = sorted(range(b), key=lambda i: (-a[j * b + i][n], i))
            for i in order[:k]:
                mask[j * b + i, n] = True
    return mask


def exact_ceil_ratio(num: float, den: float) -> int:
    """ceil(num / den) with exact rational arithmetic."""
    return math.ceil(Fraction(num) / Fraction(den))


def make_sq(fmt: SQFormat, low, high, scale_low, scale_high, col_scale=None) -> SQTensor:
    """An SQTensor from nested lists (no validation)."""
    low = torch.tensor(low, dtype=torch.int8)
    N = low.shape[1]
    high = torch.tensor(high, dtype=torch.int8).reshape(-1, N)
    return SQTensor(low=low, high=high,
                    scale_low=torch.tensor(scale_low, dtype=torch.int32).reshape(-1, N),
                    scale_high=torch.tensor(scale_high, dtype=torch.int32).reshape(-1, N),
                    col_scale=torch.ones(N) if col_scale is None else col_scale, fmt=fmt)
