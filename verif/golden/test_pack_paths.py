"""pack() has a byte-aligned fast path; it must produce the same image as the bit path."""

import pytest
import torch

from sqhw.format import SQFormat
from sqhw.golden import pack, random_sqtensor
from sqhw.golden.packing import _field_arrays, _pack_bits

FORMATS = [
    SQFormat(), SQFormat.dense(8), SQFormat.dense(4), SQFormat(scale_bits=16),
    SQFormat(bank_size=8, sparsity=0.5, high_bits=8, low_bits=4), SQFormat.two_four(),
    SQFormat(low_bits=3), SQFormat(bank_size=128, sparsity=0.9375, high_bits=8, low_bits=4),
    SQFormat(bank_size=4, sparsity=0.75, high_bits=4, low_bits=2, scale_bits=4),
]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name + f"-sb{f.scale_bits}")
def test_fast_path_equals_bit_path(fmt):
    g = torch.Generator().manual_seed(7)
    sq = random_sqtensor(fmt, 2 * fmt.bank_size * 4, 5, g)
    assert pack(sq) == _pack_bits(fmt, _field_arrays(sq))
