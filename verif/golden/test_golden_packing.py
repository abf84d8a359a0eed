"""pack / unpack: literal bit patterns, exhaustive small formats, round trips, bad images.

The bit order of datasheet §4 is pinned three ways: hand-built bytes for tiny records, an
independent packer written with Python integer shifts (sqref.ref_pack), and exhaustive
sweeps over every code of the small formats.
"""

import random

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sqref import (
    formats,
    hsettings,
    make_sq,
    ref_pack,
    ref_pack_record,
    ref_read_field,
    ref_record_fields,
)

from sqhw.format import SQFormat
from sqhw.golden import MalformedSQError, pack, random_sqtensor, unpack
from sqhw.golden.packing import record_fields


def assert_same_codes(a, b):
    for name in ("low", "high", "scale_low", "scale_high"):
        ta, tb = getattr(a, name), getattr(b, name)
        assert ta.shape == tb.shape, name
        assert torch.equal(ta.to(torch.int64), tb.to(torch.int64)), name


# -- literal bit patterns ---------------------------------------------------------------------

INT4 = SQFormat()          # B16-(8/4)-0.875: b = 16, k = 2, 96-bit records


def test_literal_int4_record():
    # byte 0 = 0b1000_0111: low[0] = 0111b = 7 (bits 3..0), low[1] = 1000b = vmask -8
    # byte 1 = 0x18: low[2] = 1000b = vmask, low[3] = 0001b = 1; low[4..15] = 0 (bytes 2..7)
    # byte 8 = high[0] = -1 = 0xFF, byte 9 = high[1] = 5
    # byte 10 = scale_low = 3, byte 11 = scale_high = 200 = 0xC8
    image = bytes([0b1000_0111, 0x18, 0, 0, 0, 0, 0, 0, 0xFF, 0x05, 3, 0xC8])
    sq = unpack(image, INT4, 16, 1)
    assert sq.low[:, 0].tolist() == [7, -8, -8, 1] + [0] * 12
    assert sq.high[:, 0].tolist() == [-1, 5]
    assert (int(sq.scale_low[0, 0]), int(sq.scale_high[0, 0])) == (3, 200)
    built = make_sq(INT4, [[v] for v in [7, -8, -8, 1] + [0] * 12], [[-1], [5]], [[3]], [[200]])
    assert pack(built) == image


def test_literal_first_byte_only():
    # The datasheet's example on its own: 0b1000_0111 -> (7, vmask).
    image = bytearray(12)
    image[0] = 0b1000_0111
    image[1] = 0x08            # low[2] = vmask, so the bank has k = 2 vmask codes
    sq = unpack(bytes(image), INT4, 16, 1)
    assert (int(sq.low[0, 0]), int(sq.low[1, 0])) == (7, INT4.vmask) == (7, -8)


def test_literal_two_four_record():
    # 2:4 (low_width 1: the low field is the mask): 4 + 8 + 8 + 8 = 28 bits, 4 pad bits.
    # mask 1010b (positions 1 and 3 high), high = (0x12, -3 = 0xFD), scale_high = 0xA5:
    #   value = 0xA | 0x12 << 4 | 0xFD << 12 | 0xA5 << 20 = 0x0A5FD12A
    fmt = SQFormat.two_four()
    image = bytes([0x2A, 0xD1, 0x5F, 0x0A])
    sq = unpack(image, fmt, 4, 1)
    assert sq.low[:, 0].tolist() == [0, -1, 0, -1]
    assert sq.mask[:, 0].tolist() == [False, True, False, True]
    assert sq.high[:, 0].tolist() == [0x12, -3]
    assert (int(sq.scale_low[0, 0]), int(sq.scale_high[0, 0])) == (0, 0xA5)
    assert pack(sq) == image
    # dequantized: zero off the mask, high values at positions 1 and 3
    assert sq.effective_weight()[:, 0].tolist() == [0, 0x12 * 0xA5, 0, -3 * 0xA5]
    with pytest.raises(MalformedSQError, match="padding"):
        unpack(bytes([0x2A, 0xD1, 0x5F, 0x1A]), fmt, 4, 1)


def test_literal_unaligned_record():
    # B4-(3/2)-0.75, sb = 3: 4·2 + 3 + 3 + 3 = 17 bits -> 3 bytes, 7 pad bits.
    # low = (1, vmask -2, -1, 0) = 01, 10, 11, 00 -> byte 0 = 0b00_11_10_01 = 0x39
    # high[0] = -3 = 101b at bits 8..10, scale_low = 5 = 101b at 11..13,
    # scale_high = 6 = 110b at 14..16 -> byte 1 = 0b1010_1101 = 0xAD, byte 2 = 0x01
    fmt = SQFormat(bank_size=4, sparsity=0.75, high_bits=3, low_bits=2, scale_bits=3)
    image = bytes([0x39, 0xAD, 0x01])
    sq = make_sq(fmt, [[1], [-2], [-1], [0]], [[-3]], [[5]], [[6]])
    assert pack(sq) == image
    back = unpack(image, fmt, 4, 1)
    assert_same_codes(back, sq)
    for bit in range(17, 24):
        bad = bytearray(image)
        bad[bit // 8] |= 1 << (bit % 8)
        with pytest.raises(MalformedSQError, match="padding bits in bank 0 of column 0"):
            unpack(bytes(bad), fmt, 4, 1)


def test_literal_16bit_scales_little_endian():
    # sb = 16: dense INT8, b = 4 -> 4 bytes of low codes, then scale_low LSB first.
    fmt = SQFormat.dense(8, bank_size=4, scale_bits=16)
    sq = make_sq(fmt, [[127], [-127], [0], [1]], [], [[0xBEEF]], [[0]])
    assert pack(sq) == bytes([0x7F, 0x81, 0x00, 0x01, 0xEF, 0xBE])


def test_field_order_and_record_order():
    # Columns in order, banks in order inside a column; fields low, high, scale_low,
    # scale_high. Tag every record with its (column, bank) in its scale codes.
    fmt = SQFormat(bank_size=4, sparsity=0.5, high_bits=8, low_bits=4, scale_bits=8)
    nb, N = 3, 2
    low = [[0] * N for _ in range(4 * nb)]
    for n in range(N):
        for j in range(nb):
            low[4 * j + 0][n] = -8
            low[4 * j + 2][n] = -8
            low[4 * j + 1][n] = j + 1
            low[4 * j + 3][n] = -(n + 1)
    high = [[10 * n + j for n in range(N)] for j in range(2 * nb)]
    sl = [[16 * n + j for n in range(N)] for j in range(nb)]
    sh = [[200 + 16 * n + j for n in range(N)] for j in range(nb)]
    sq = make_sq(fmt, low, high, sl, sh)
    image = pack(sq)
    assert len(image) == N * nb * 6          # 4·4 + 2·8 + 8 + 8 = 48 bits = 6 bytes
    for n in range(N):
        for j in range(nb):
            rec = image[(n * nb + j) * 6:(n * nb + j + 1) * 6]
            # low nibbles: (vmask, j+1) then (vmask, -(n+1))
            assert rec[0] == (0x8 | ((j + 1) << 4))
            assert rec[1] == (0x8 | (((-(n + 1)) & 0xF) << 4))
            assert rec[2] == 10 * n + 2 * j and rec[3] == 10 * n + 2 * j + 1
            assert rec[4] == 16 * n + j and rec[5] == 200 + 16 * n + j


def test_record_fields_table():
    fmt = SQFormat()
    assert record_fields(fmt) == [("low", 16, 4, True), ("high", 2, 8, True),
                                  ("scale_low", 1, 8, False), ("scale_high", 1, 8, False)]
    assert record_fields(SQFormat.two_four()) == [("low", 4, 1, True), ("high", 2, 8, True),
                                                  ("scale_high", 1, 8, False)]
    assert record_fields(SQFormat.dense(4)) == [("low", 16, 4, True),
                                                ("scale_low", 1, 8, False)]
    for f in (fmt, SQFormat.two_four(), SQFormat.dense(3, bank_size=8, scale_bits=3)):
        assert record_fields(f) == ref_record_fields(f)
        assert sum(c * w for _, c, w, _ in record_fields(f)) == f.record_bits


# -- exhaustive over the codes of small formats ------------------------------------------------

SMALL = [(lo, hi) for lo in (2, 3, 4) for hi in (4, 8) if lo < hi]


@pytest.mark.parametrize("low_bits,high_bits", SMALL)
def test_every_low_code_at_every_position(low_bits, high_bits):
    fmt = SQFormat(bank_size=8, sparsity=0.875, high_bits=high_bits, low_bits=low_bits,
                   scale_bits=3)
    values = list(range(-fmt.low_max, fmt.low_max + 1)) + [fmt.vmask]
    cols = []
    for p in range(8):
        for v in values:
            col = [0] * 8
            col[p] = v
            if v != fmt.vmask:
                col[(p + 3) % 8] = fmt.vmask          # keep exactly k = 1 vmask
            cols.append(col)
    N = len(cols)
    low = [[cols[n][i] for n in range(N)] for i in range(8)]
    rng = random.Random(low_bits * 10 + high_bits)
    high = [[rng.randint(-fmt.high_max, fmt.high_max) for _ in range(N)]]
    sl = [[rng.randint(0, 7) for _ in range(N)]]
    sh = [[rng.randint(0, 7) for _ in range(N)]]
    sq = make_sq(fmt, low, high, sl, sh)
    image = pack(sq)
    assert image == ref_pack(sq)
    rb = fmt.record_bytes
    wl = fmt.low_width
    for n, col in enumerate(cols):
        rec = image[n * rb:(n + 1) * rb]
        assert [ref_read_field(rec, i * wl, wl, True) for i in range(8)] == col
    assert_same_codes(unpack(image, fmt, 8, N), sq)


@pytest.mark.parametrize("low_bits,high_bits", SMALL + [(0, 2), (0, 4), (0, 8), (2, 3)])
def test_every_high_code_in_every_slot(low_bits, high_bits):
    fmt = SQFormat(bank_size=4, sparsity=0.5, high_bits=high_bits, low_bits=low_bits,
                   scale_bits=2)
    values = list(range(-fmt.high_max, fmt.high_max + 1))
    N = 2 * len(values)
    low = [[fmt.vmask] * N, [0] * N, [fmt.vmask] * N, [fmt.low_max] * N]
    high = [[values[n % len(values)] if n < len(values) else 0 for n in range(N)],
            [values[n % len(values)] if n >= len(values) else 0 for n in range(N)]]
    sl = [[1 if low_bits else 0] * N]
    sh = [[3] * N]
    sq = make_sq(fmt, low, high, sl, sh)
    image = pack(sq)
    assert image == ref_pack(sq)
    back = unpack(image, fmt, 4, N)
    assert_same_codes(back, sq)
    # the out-of-range code -2^(h-1) is rejected in both slots, as a tensor and as an image
    for t in range(2):
        bad_sq = make_sq(fmt, low, [[0] * N, [0] * N], sl, sh)
        bad_sq.high[t, 0] = -(1 << (high_bits - 1))
        with pytest.raises(MalformedSQError, match="high code"):
            bad_sq.validate()
        with pytest.raises(MalformedSQError, match="high code"):
            pack(bad_sq)
        rec = bytearray(ref_pack_record(fmt, {
            "low": [fmt.vmask, 0, fmt.vmask, 0],
            "high": [-(1 << (high_bits - 1)) if s == t else 0 for s in range(2)],
            "scale_low": [1 if low_bits else 0], "scale_high": [3]}))
        with pytest.raises(MalformedSQError, match="high code .* in bank 0 of column 0"):
            unpack(bytes(rec), fmt, 4, 1)


@pytest.mark.parametrize("scale_bits", [2, 3, 4, 5])
@pytest.mark.parametrize("fmt_kind", ["sq", "dense", "two_four"])
def test_every_scale_code(scale_bits, fmt_kind):
    fmt = {"sq": SQFormat(bank_size=4, sparsity=0.75, high_bits=4, low_bits=2,
                          scale_bits=scale_bits),
           "dense": SQFormat.dense(2, bank_size=4, scale_bits=scale_bits),
           "two_four": SQFormat.two_four(bits=4, scale_bits=scale_bits)}[fmt_kind]
    codes = list(range(fmt.scale_max + 1))
    N = len(codes)
    sq = random_sqtensor(fmt, 4, N, generator=torch.Generator().manual_seed(scale_bits))
    if fmt.has_low_scale:
        sq.scale_low[0] = torch.tensor(codes)
    if fmt.has_high:
        sq.scale_high[0] = torch.tensor([codes[(7 * c + 3) % N] for c in codes])
    image = pack(sq)
    assert image == ref_pack(sq)
    assert_same_codes(unpack(image, fmt, 4, N), sq)
    for name, present in (("scale_low", fmt.has_low_scale), ("scale_high", fmt.has_high)):
        if not present:
            continue
        for bad in (-1, fmt.scale_max + 1):
            t = getattr(sq, name)
            old = int(t[0, 1])
            t[0, 1] = bad
            with pytest.raises(MalformedSQError, match=f"{name} code {bad} out of range "
                               f"0..{fmt.scale_max} in bank 0 of column 1"):
                pack(sq)
            t[0, 1] = old


def test_every_record_of_a_16bit_format():
    # B4-(4/2)-0.75, sb = 2: 8 + 4 + 2 + 2 = 16 bits, so every 2-byte value is a record.
    fmt = SQFormat(bank_size=4, sparsity=0.75, high_bits=4, low_bits=2, scale_bits=2)
    assert fmt.record_bits == 16
    records = np.arange(1 << 16, dtype=np.uint32)

    def field(pos, width, signed):
        v = (records >> pos) & ((1 << width) - 1)
        return np.where(signed & (v >= 1 << (width - 1)), v.astype(np.int64) - (1 << width),
                        v.astype(np.int64))

    lows = [field(2 * i, 2, True) for i in range(4)]
    high = field(8, 4, True)
    vm = sum((lw == -2).astype(int) for lw in lows)
    valid = (vm == 1) & (high != -8)
    # count by hand: 4 vmask positions x 3^3 other lows x 15 highs x 4 x 4 scales
    assert int(valid.sum()) == 4 * 27 * 15 * 16
    good = records[valid]
    image = good.astype("<u2").tobytes()
    sq = unpack(image, fmt, 4, len(good))
    assert np.array_equal(sq.low.numpy().T, np.stack([lw[valid] for lw in lows], 1))
    assert np.array_equal(sq.high.numpy()[0], high[valid])
    assert np.array_equal(sq.scale_low.numpy()[0], field(12, 2, False)[valid])
    assert np.array_equal(sq.scale_high.numpy()[0], field(14, 2, False)[valid])
    assert pack(sq) == image
    # every malformed record is rejected (a sample: 400 of the 39616)
    bad = records[~valid]
    assert len(bad) == (1 << 16) - 4 * 27 * 15 * 16
    for r in np.random.default_rng(0).choice(bad, 400, replace=False):
        with pytest.raises(MalformedSQError, match="bank 0 of column 0"):
            unpack(int(r).to_bytes(2, "little"), fmt, 4, 1)


@pytest.mark.parametrize("low_bits", [2, 3, 4])
def test_low_code_beyond_range_in_tensor(low_bits):
    # As stored in the tensor (int8), a low code outside [vmask, low_max] is malformed.
    fmt = SQFormat(bank_size=4, sparsity=0.75, high_bits=8, low_bits=low_bits)
    for bad in (fmt.low_max + 1, fmt.vmask - 1, 127, -128):
        sq = make_sq(fmt, [[fmt.vmask], [bad], [0], [0]], [[1]], [[1]], [[1]])
        with pytest.raises(MalformedSQError, match=f"low code {bad} out of range "
                           rf"\[{fmt.vmask}, {fmt.low_max}\] in bank 0 of column 0"):
            sq.validate()
        with pytest.raises(MalformedSQError):
            pack(sq)


# -- hypothesis round trips --------------------------------------------------------------------

@hsettings(80)
@given(fmt=formats(), nb=st.integers(1, 3), N=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_pack_unpack_round_trip(fmt, nb, N, seed):
    K = nb * fmt.bank_size
    sq = random_sqtensor(fmt, K, N, generator=torch.Generator().manual_seed(seed))
    image = pack(sq)
    assert len(image) == N * nb * fmt.record_bytes
    assert image == ref_pack(sq)
    back = unpack(image, fmt, K, N)
    assert_same_codes(back, sq)
    assert pack(back) == image


@hsettings(40)
@given(fmt=formats(), nb=st.integers(1, 2), N=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_unpack_of_random_well_formed_records(fmt, nb, N, seed):
    # Build the image first (from random field values, independent packer), then unpack.
    rng = random.Random(seed)
    b, k = fmt.bank_size, fmt.k
    image = bytearray()
    expect = []
    for _n in range(N):
        for _j in range(nb):
            pos = set(rng.sample(range(b), k))
            low = [fmt.vmask if i in pos else rng.randint(-fmt.low_max, fmt.low_max)
                   for i in range(b)]
            vals = {"low": low,
                    "high": [rng.randint(-fmt.high_max, fmt.high_max) for _ in range(k)],
                    "scale_low": [rng.randint(0, fmt.scale_max) if fmt.low_bits else 0],
                    "scale_high": [rng.randint(0, fmt.scale_max) if k else 0]}
            image += ref_pack_record(fmt, vals)
            expect.append(vals)
    sq = unpack(bytes(image), fmt, nb * b, N)
    for idx, vals in enumerate(expect):
        n, j = divmod(idx, nb)
        assert sq.low[j * b:(j + 1) * b, n].tolist() == vals["low"]
        assert sq.high[j * k:(j + 1) * k, n].tolist() == vals["high"]
        assert int(sq.scale_low[j, n]) == vals["scale_low"][0]
        assert int(sq.scale_high[j, n]) == vals["scale_high"][0]


# -- malformed images --------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", [SQFormat(), SQFormat.two_four(), SQFormat.dense(4),
                                 SQFormat(bank_size=4, sparsity=0.75, high_bits=3,
                                          low_bits=2, scale_bits=3)],
                         ids=lambda f: f.name)
def test_truncated_and_over_long_images(fmt):
    K, N = 2 * fmt.bank_size, 3
    image = pack(random_sqtensor(fmt, K, N, generator=torch.Generator().manual_seed(1)))
    n = len(image)
    for cut in (n - 1, n - fmt.record_bytes, 1, 0):
        with pytest.raises(MalformedSQError, match=f"truncated image: {cut} bytes, "
                           f"expected {n}"):
            unpack(image[:cut], fmt, K, N)
    for extra in (b"\x00", bytes(fmt.record_bytes)):
        with pytest.raises(MalformedSQError, match="over-long image"):
            unpack(image + extra, fmt, K, N)
    # the same image read with the wrong N or K is a length error too
    with pytest.raises(MalformedSQError):
        unpack(image, fmt, K, N + 1)
    with pytest.raises(MalformedSQError):
        unpack(image, fmt, K + fmt.bank_size, N)


def test_unpack_bad_arguments():
    fmt = SQFormat()
    for K, N in ((0, 1), (8, 1), (16, 0), (-16, 1)):
        with pytest.raises(ValueError):
            unpack(b"", fmt, K, N)


@pytest.mark.parametrize("fmt", [SQFormat(), SQFormat(sparsity=0.75, low_bits=3),
                                 SQFormat.two_four(), SQFormat(bank_size=8, sparsity=0.5,
                                                               high_bits=4, low_bits=2)],
                         ids=lambda f: f.name)
def test_wrong_vmask_count_in_image(fmt):
    b, k, nb, N = fmt.bank_size, fmt.k, 3, 4
    sq = random_sqtensor(fmt, nb * b, N, generator=torch.Generator().manual_seed(5))
    good = pack(sq)
    rb = fmt.record_bytes
    for n, j in ((0, 0), (2, 1), (3, 2)):
        low = sq.low[j * b:(j + 1) * b, n].tolist()
        high = sq.high[j * k:(j + 1) * k, n].tolist()
        vals = {"high": high, "scale_low": [int(sq.scale_low[j, n])],
                "scale_high": [int(sq.scale_high[j, n])]}
        first_low = low.index(next(v for v in low if v != fmt.vmask))
        first_vm = low.index(fmt.vmask)
        too_many = list(low)
        too_many[first_low] = fmt.vmask
        too_few = list(low)
        too_few[first_vm] = 0
        for bad_low, count in ((too_many, k + 1), (too_few, k - 1)):
            rec = ref_pack_record(fmt, {**vals, "low": bad_low})
            at = (n * nb + j) * rb
            image = good[:at] + rec + good[at + rb:]
            with pytest.raises(MalformedSQError,
                               match=f"bank {j} of column {n} has {count} vmask codes, "
                               f"expected {k}"):
                unpack(image, fmt, nb * b, N)


def test_every_padding_bit_is_checked():
    fmt = SQFormat.two_four(bits=5, scale_bits=3)    # 4 + 10 + 3 = 17 bits, 7 pad
    sq = random_sqtensor(fmt, 8, 2, generator=torch.Generator().manual_seed(2))
    good = pack(sq)
    rb = fmt.record_bytes
    for rec_idx in range(4):
        for bit in range(fmt.record_bits, 8 * rb):
            bad = bytearray(good)
            bad[rec_idx * rb + bit // 8] |= 1 << (bit % 8)
            n, j = divmod(rec_idx, 2)
            with pytest.raises(MalformedSQError,
                               match=f"non-zero padding bits in bank {j} of column {n}"):
                unpack(bytes(bad), fmt, 8, 2)


def test_pack_refuses_malformed_tensor():
    fmt = SQFormat()
    sq = random_sqtensor(fmt, 32, 2, generator=torch.Generator().manual_seed(3))
    j, n = 1, 1
    col = sq.low[16:32, n]
    col[(col != fmt.vmask).nonzero()[0, 0]] = fmt.vmask
    with pytest.raises(MalformedSQError, match=f"bank {j} of column {n} has 3 vmask"):
        pack(sq)


# -- activation-mode streams (datasheet §10.3, §10.4) -----------------------------------------

def _act_cfg(weight_bits=4, rows=1):
    from sqhw.format import HWConfig, act_min_acc_bits
    fmt = SQFormat(bank_size=4, sparsity=0.5, high_bits=8, low_bits=4)     # k = 2
    return HWConfig(fmt=fmt, rows=rows, act_bits=8, k_max=8, operand="activation",
                    weight_bits=weight_bits, acc_bits=act_min_acc_bits(fmt, weight_bits, 8))


def test_literal_act_weight_image():
    """Mask word 0b1010 (channels 1 and 3 high), then the column's codes reordered high
    first, [2, 3 | 1, -1], 4 bits each from bit 0: 0xF132; 16-bit records, little-endian."""
    from sqhw.golden.packing import act_weight_image
    cfg = _act_cfg()
    mask = torch.tensor([False, True, False, True])
    w = torch.tensor([[1], [2], [-1], [3]], dtype=torch.int8)
    assert act_weight_image(cfg, mask, w) == bytes([0x0A, 0x00, 0x32, 0xF1])
    # Two tiles of one column each: the mask column is repeated per tile.
    # Column 1 is [0, 0, 0, 7]: reordered [0, 7 | 0, 0] = 0x0070.
    w2 = torch.tensor([[1, 0], [2, 0], [-1, 0], [3, 7]], dtype=torch.int8)
    assert act_weight_image(cfg, mask, w2) == bytes([0x0A, 0, 0x32, 0xF1, 0x0A, 0, 0x70, 0])
    with pytest.raises(ValueError, match="multiple of rows 2"):
        act_weight_image(_act_cfg(rows=2), mask, w)


def test_literal_act_token_image():
    """Codes in natural order (8 bits each, two's complement), then scale_high, scale_low."""
    from sqhw.golden.packing import act_token_image
    img = act_token_image(_act_cfg(), [[1, -1, 2, -2]], [[5]], [[7]])
    assert img.dtype == np.uint8
    assert img.tolist() == [[0x01, 0xFF, 0x02, 0xFE, 0x05, 0x07]]
