"""PackedLowPair (``mults="dsp_packed"``): two rows' low products packed two per DSP
product, ``a · (w0 + w1·2^S)``, split back exactly. Every combination of extreme codes (the
most negative activation and code, where the lower field's borrow and the packed operand's
width are tightest), then random banks, one bank per cycle, against Python integers.

The same datapath inside whole arrays, against the golden model, is in the ``make verify``
matrix of ``verif/top/test_top.py`` (``*-packed`` configurations)."""

import itertools

import pytest

from sqhw.format import HWConfig, SQFormat
from sqhw.format.pipeline import DSP_BITS, packed_bits
from sqhw.gateware.row import PackedLowPair

from ._util import pack_fields, run_sim, seeded_rng

CONFIGS = {
    "b16-8/4-a8": HWConfig(fmt=SQFormat(16, 0.875, 8, 4), rows=2, k_max=64, mults="dsp_packed"),
    "w4a8": HWConfig(fmt=SQFormat.dense(4), rows=2, k_max=64, acc_bits=40,
                     mults="dsp_packed"),
    "b8-3/2-a4-l2": HWConfig(fmt=SQFormat(8, 0.875, 3, 2, scale_bits=3), rows=2, act_bits=4,
                             k_max=64, mults="dsp_packed", tree_levels=2),
    # The widest packing an 18-bit port holds: act_bits + 2·low_bits + 1 = 18.
    "b16-8/6-a5-l3": HWConfig(fmt=SQFormat(16, 0.875, 8, 6), rows=2, act_bits=5, k_max=64,
                              mults="dsp_packed", tree_levels=3),
}


def _extremes(bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return sorted({lo, lo + 1, -1, 0, 1, hi})


def _banks(cfg, rng, n_random):
    """(act, low0, low1) banks: every (a, w0, w1) of extreme values, b per bank, then
    random ones."""
    b, a_bits, l_bits = cfg.fmt.bank_size, cfg.act_bits, cfg.fmt.low_bits
    triples = list(itertools.product(_extremes(a_bits), _extremes(l_bits), _extremes(l_bits)))
    triples += [(0, 0, 0)] * (-len(triples) % b)
    banks = [tuple(zip(*triples[i:i + b], strict=True)) for i in range(0, len(triples), b)]
    for _ in range(n_random):
        banks.append(tuple([rng.randint(-(1 << (w - 1)), (1 << (w - 1)) - 1) for _ in range(b)]
                           for w in (a_bits, l_bits, l_bits)))
    return banks


@pytest.mark.parametrize("name", list(CONFIGS))
def test_packed_pair_exact(request, name):
    cfg = CONFIGS[name]
    plan = cfg.row_plan
    assert plan.packed_low
    rng = seeded_rng(request)
    banks = _banks(cfg, rng, 40)
    dut = PackedLowPair(cfg)
    latency = 1 + plan.low_stages
    got = []

    async def tb(ctx):
        for cycle in range(len(banks) + latency):
            if cycle < len(banks):
                act, w0, w1 = banks[cycle]
                ctx.set(dut.act.as_value(), pack_fields(act, cfg.act_bits))
                ctx.set(dut.low0.as_value(), pack_fields(w0, cfg.fmt.low_bits))
                ctx.set(dut.low1.as_value(), pack_fields(w1, cfg.fmt.low_bits))
            if cycle >= latency:
                got.append((ctx.get(dut.p0), ctx.get(dut.p1)))
            await ctx.tick()

    run_sim(dut, tb, vcd_name=f"packed_{name}")
    want = [(sum(a * w for a, w in zip(act, w0, strict=True)),
             sum(a * w for a, w in zip(act, w1, strict=True))) for act, w0, w1 in banks]
    assert got == want


def test_packing_limits():
    # The widest configuration above uses the whole port; one bit more is refused.
    assert packed_bits(5, 6) == DSP_BITS and packed_bits(8, 4) == 17
    with pytest.raises(ValueError, match=r"need 19 signed bits in one 18-bit DSP port"):
        HWConfig(fmt=SQFormat(16, 0.875, 8, 5), mults="dsp_packed")
    with pytest.raises(ValueError, match="has no low-precision group to pack"):
        HWConfig(fmt=SQFormat.two_four(), mults="dsp_packed")
    with pytest.raises(ValueError, match="applies to operand 'weight' only"):
        HWConfig(operand="activation", weight_bits=4, acc_bits=40, mults="dsp_packed")
    with pytest.raises(ValueError, match="PackedLowPair needs packed rows"):
        PackedLowPair(HWConfig())


def test_dsp_count():
    # A pair shares b DSP blocks for its low products; an unpaired last row uses b.
    even = HWConfig(rows=4, mults="dsp_packed")
    odd = HWConfig(rows=5, mults="dsp_packed")
    per_row_rest = HWConfig(rows=1, mults="dsp").dsps          # high and scale products
    assert even.dsps == 4 * per_row_rest + 2 * 16
    assert odd.dsps == 5 * per_row_rest + 3 * 16
