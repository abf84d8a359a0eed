"""Unpacker: ``ref_unpack(...) == rtl(...)`` over exhaustive small banks and random big ones."""

import itertools

import pytest
import torch

from sqhw.format import SQFormat
from sqhw.format.pipeline import adder_levels, prefix_stages
from sqhw.gateware.unpack import Unpacker, ref_unpack, rel_width
from sqhw.golden import random_sqtensor

from ._util import pack_fields, run_sim, seeded_rng, unpack_fields


def check_unpacker(fmt, banks, stages=0):
    """Drive ``banks`` (lists of low codes), a new one every cycle, and compare each with
    the model ``stages`` cycles later."""
    dut = Unpacker(fmt, stages)
    k, wl, rw = fmt.k, fmt.low_width, rel_width(fmt)
    mismatches = []

    async def tb(ctx):
        for n in range(len(banks) + stages):
            if n < len(banks):
                ctx.set(dut.low.as_value(), pack_fields(banks[n], wl))
            if n < stages:
                await ctx.tick()
                continue
            low = banks[n - stages]   # the outputs now belong to the bank of `stages` ago
            rel_exp, bad_exp = ref_unpack(fmt, low)
            mask_exp = sum(1 << i for i, c in enumerate(low) if c == fmt.vmask)
            bad = ctx.get(dut.malformed)
            mask = ctx.get(dut.mask)
            rel = unpack_fields(ctx.get(dut.rel.as_value()), rw, k, signed=False) if k else []
            if (bool(bad), mask) != (bad_exp, mask_exp) or (not bad_exp and rel != rel_exp):
                mismatches.append((low, (rel, bad, mask), (rel_exp, bad_exp, mask_exp)))
            if stages:
                await ctx.tick()

    run_sim(dut, tb, clocked=bool(stages))
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[0]}"


def fmt_of(b, k, low_bits, high_bits=8):
    return SQFormat(bank_size=b, sparsity=1 - k / b, high_bits=high_bits, low_bits=low_bits)


@pytest.mark.parametrize("k,low_bits", [(k, lb) for k in range(4) for lb in (0, 2, 3)
                                        if k or lb])  # a dense format needs low bits
def test_exhaustive_b4(k, low_bits):
    """Every code combination of a 4-element bank, well-formed or not."""
    fmt = fmt_of(4, k, low_bits, high_bits=4)
    wl = fmt.low_width
    codes = range(-(1 << (wl - 1)), 1 << (wl - 1))
    check_unpacker(fmt, [list(c) for c in itertools.product(codes, repeat=4)])


def test_ref_against_golden(request):
    """The pure-Python model agrees with the golden model's mask on random tensors."""
    rng = seeded_rng(request)
    for b, k in [(8, 2), (16, 3), (64, 8)]:
        fmt = fmt_of(b, k, 4)
        gen = torch.Generator().manual_seed(rng.getrandbits(32))
        sq = random_sqtensor(fmt, 4 * b, 3, generator=gen)
        for n in range(3):
            for j in range(4):
                low = sq.low[j * b:(j + 1) * b, n].tolist()
                rel, bad = ref_unpack(fmt, low)
                idx = torch.nonzero(sq.mask[j * b:(j + 1) * b, n]).flatten().tolist()
                assert not bad and [i - t for t, i in enumerate(idx)] == rel


def random_banks(fmt, rng, count):
    """Random banks: mostly well-formed (k vmask at random places, extreme codes common),
    some with k-1, k+1 or random vmask counts (malformed)."""
    b, k = fmt.bank_size, fmt.k
    values = [v for v in range(-fmt.low_max, fmt.low_max + 1)] or [0]
    banks = []
    for n in range(count):
        kind = n % 5
        nv = {0: k, 1: k, 2: max(k - 1, 0) if k else 1, 3: min(k + 1, b)}.get(
            kind, rng.randrange(b + 1))
        pos = set(rng.sample(range(b), nv))
        if n % 7 == 0 and nv:  # vmask crowded at the end of the bank
            pos = set(range(b - nv, b))
        banks.append([fmt.vmask if i in pos else rng.choice(values) for i in range(b)])
    return banks


@pytest.mark.parametrize("b,k,low_bits", [
    (8, 1, 4), (8, 4, 2), (16, 2, 4), (16, 0, 8), (32, 4, 3), (64, 8, 4), (64, 32, 4),
    (128, 16, 4),
    (128, 1, 4), (128, 127, 2), (128, 0, 4), (4, 2, 0),
])
def test_random(request, b, k, low_bits):
    fmt = fmt_of(b, k, low_bits)
    rng = seeded_rng(request)
    check_unpacker(fmt, random_banks(fmt, rng, 150))


@pytest.mark.parametrize("b,k,low_bits", [(4, 1, 2), (16, 2, 4), (32, 4, 3), (128, 16, 4)])
@pytest.mark.parametrize("stages", ["core", "max"])
def test_pipelined(request, b, k, low_bits, stages):
    """The pipelined decoder, at the core's stage count and at one register per level,
    on a new bank every cycle: the outputs are the model's, ``stages`` cycles later."""
    fmt = fmt_of(b, k, low_bits)
    n = prefix_stages(b) if stages == "core" else adder_levels(b)
    check_unpacker(fmt, random_banks(fmt, seeded_rng(request), 120), n)


def test_parameter_check():
    with pytest.raises(TypeError, match="fmt must be an SQFormat, not 16"):
        Unpacker(16)
    with pytest.raises(ValueError, match=r"stages must be in 0..4 for bank size 16, not 5"):
        Unpacker(fmt_of(16, 2, 4), 5)
