"""Select & gather: ``ref_gather(...) == rtl(...)``, exhaustive masks for b = 4 and 8, random
masks up to b = 64, malformed masks, code ranges; and the model against the golden one."""

import itertools

import pytest
import torch

from sqhw.format import SQFormat
from sqhw.format.pipeline import adder_levels, prefix_stages
from sqhw.gateware.gather import SelectGather, ref_gather
from sqhw.golden import quantize_activation_sq

from ._util import pack_fields, run_sim, seeded_rng, unpack_fields


def fmt_of(b, k, low_bits=4, high_bits=8):
    return SQFormat(bank_size=b, sparsity=1 - k / b, high_bits=high_bits, low_bits=low_bits)


def check_gather(fmt, cases, act_bits=8, stages=0):
    """Drive every ``(act, mask)`` of ``cases``, a new one every cycle, and compare all
    outputs with the model ``stages`` cycles later."""
    dut = SelectGather(fmt, act_bits, stages)
    b, k = fmt.bank_size, fmt.k
    n_low = b - k if fmt.low_bits else 0
    mismatches = []

    async def tb(ctx):
        for n in range(len(cases) + stages):
            if n < len(cases):
                ctx.set(dut.act.as_value(), pack_fields(cases[n][0], act_bits))
                ctx.set(dut.mask, cases[n][1])
            if n < stages:
                await ctx.tick()
                continue
            act, mask = cases[n - stages]   # the outputs belong to the case of `stages` ago
            high = unpack_fields(ctx.get(dut.high.as_value()), act_bits, k) if k else []
            low = unpack_fields(ctx.get(dut.low.as_value()), act_bits, n_low) if n_low else []
            got = (high, low, bool(ctx.get(dut.malformed)), bool(ctx.get(dut.code_error)))
            exp = ref_gather(fmt, act, mask)
            if got != exp:
                mismatches.append((act, f"{mask:0{b}b}", got, exp))
            if stages:
                await ctx.tick()

    run_sim(dut, tb, clocked=bool(stages))
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[0]}"
    return len(cases)


def distinct_bank(b, act_bits, rng=None):
    """Codes that differ channel to channel (any misrouting shows), signs mixed."""
    top = (1 << (act_bits - 1)) - 1
    vals = [((i % top) + 1) * (-1 if i % 2 else 1) for i in range(b)]
    if rng is not None:
        rng.shuffle(vals)
    return vals


def in_range_bank(fmt, mask, rng):
    return [rng.randint(-fmt.high_max, fmt.high_max) if mask >> i & 1
            else rng.randint(-fmt.low_max, fmt.low_max) for i in range(fmt.bank_size)]


@pytest.mark.parametrize("b,k,low_bits", [
    (4, 1, 4), (4, 2, 4), (4, 3, 4), (4, 2, 0), (8, 1, 4), (8, 2, 4), (8, 4, 2), (8, 6, 4),
])
def test_exhaustive_masks(request, b, k, low_bits):
    """Every mask of the bank (well-formed or not), each with distinct channel codes and
    with random in-range codes."""
    fmt = fmt_of(b, k, low_bits)
    rng = seeded_rng(request)
    cases = []
    for mask in range(1 << b):
        cases.append((distinct_bank(b, 8), mask))
        cases.append((distinct_bank(b, 8, rng), mask))
        cases.append((in_range_bank(fmt, mask, rng), mask))
    check_gather(fmt, cases)


@pytest.mark.parametrize("low_bits", [2, 0])
def test_exhaustive_codes_b4(low_bits):
    """``code_error`` over every code of every channel under every mask (b = 4, 4-bit codes:
    high group INT4, low group INT2 or absent)."""
    fmt = fmt_of(4, 2, low_bits, high_bits=4)
    cases = []
    for mask in range(16):
        for i in range(4):
            for code in range(-8, 8):
                act = [1 if (mask >> j & 1) else 0 for j in range(4)]
                act[i] = code
                cases.append((act, mask))
    check_gather(fmt, cases, act_bits=4)


def random_masks(b, k, rng, count):
    """Mostly well-formed masks (k ones), with the ones crowded at either end now and then;
    some with k-1, k+1 or a random number of ones (malformed)."""
    masks = []
    for n in range(count):
        kind = n % 6
        nv = {0: k, 1: k, 2: k, 3: max(k - 1, 0), 4: min(k + 1, b)}.get(kind,
                                                                      rng.randrange(b + 1))
        pos = rng.sample(range(b), nv)
        if n % 11 == 0:
            pos = range(b - nv, b)
        elif n % 11 == 1:
            pos = range(nv)
        masks.append(sum(1 << i for i in pos))
    return masks


@pytest.mark.parametrize("b,k,low_bits", [
    (16, 2, 4), (16, 4, 4), (16, 8, 2), (32, 4, 4), (32, 1, 4), (32, 16, 3), (64, 8, 4),
    (64, 4, 0), (64, 32, 4),
])
def test_random(request, b, k, low_bits):
    fmt = fmt_of(b, k, low_bits)
    rng = seeded_rng(request)
    cases = []
    for mask in random_masks(b, k, rng, 120):
        cases.append((distinct_bank(b, 8, rng), mask))
        cases.append((in_range_bank(fmt, mask, rng), mask))
    check_gather(fmt, cases)


@pytest.mark.parametrize("b,k,low_bits", [(4, 2, 0), (8, 2, 4), (16, 2, 4), (64, 8, 4)])
@pytest.mark.parametrize("stages", ["core", "max"])
def test_pipelined(request, b, k, low_bits, stages):
    """The pipelined unit (the core's stage count, and one register per prefix level) on a
    new bank and mask every cycle: the model's outputs, ``stages`` cycles later."""
    fmt = fmt_of(b, k, low_bits)
    rng = seeded_rng(request)
    n = prefix_stages(b) if stages == "core" else adder_levels(b)
    cases = []
    for mask in random_masks(b, k, rng, 60):
        cases.append((distinct_bank(b, 8, rng), mask))
        cases.append((in_range_bank(fmt, mask, rng), mask))
    check_gather(fmt, cases, stages=n)


def test_wide_act_and_narrow_formats(request):
    """act_bits wider than the format's high precision: out-of-range codes are flagged."""
    fmt = fmt_of(8, 2, low_bits=2, high_bits=4)
    rng = seeded_rng(request)
    cases = [([rng.randint(-128, 127) for _ in range(8)], mask)
             for mask in random_masks(8, 2, rng, 300)]
    check_gather(fmt, cases, act_bits=8)


def test_ref_against_golden(request):
    """The model's lanes are the golden model's gathered lanes (``SQActivation.high_codes``
    / ``low_codes``) for random quantized activations and static masks."""
    rng = seeded_rng(request)
    for b, k in [(8, 2), (16, 4), (64, 8)]:
        fmt = fmt_of(b, k)
        gen = torch.Generator().manual_seed(rng.getrandbits(32))
        mask = torch.zeros(3, b, dtype=torch.bool)
        mask.scatter_(1, torch.rand(3, b, generator=gen).argsort(dim=1)[:, :k], True)
        mask = mask.reshape(-1)
        act = quantize_activation_sq(torch.randn(5, 3 * b, generator=gen), mask, fmt)
        hi, lo = act.high_codes(), act.low_codes()
        for m in range(5):
            for j in range(3):
                bank = act.codes[m, j * b:(j + 1) * b].tolist()
                mbits = sum(1 << i for i in range(b) if mask[j * b + i])
                high, low, bad, code_err = ref_gather(fmt, bank, mbits)
                assert not bad and not code_err
                assert high == hi[m, j].tolist() and low == lo[m, j].tolist()


def test_ref_lanes_definition():
    """Literal examples of the lane order (b = 8, k = 2)."""
    fmt = fmt_of(8, 2)
    act = [10, 11, 12, 13, 14, 15, 16, 17]
    # (codes 10.. on low channels are outside INT4's ±7: code_error)
    assert ref_gather(fmt, act, 0b0010_0100) == ([12, 15], [10, 11, 13, 14, 16, 17],
                                                 False, True)
    assert ref_gather(fmt, act, 0b1100_0000) == ([16, 17], [10, 11, 12, 13, 14, 15],
                                                 False, True)
    assert ref_gather(fmt, [7, -7, 100, 7, -7, 7, -127, 7], 0b0100_0100)[3] is False
    # malformed, three high channels (0, 1, 3): the third has no lane; low lane u can only
    # reach channels u..u+2, so the low channels 4.. are out of reach of lanes 1.. (read 0)
    high, low, bad, _ = ref_gather(fmt, act, 0b0000_1011)
    assert bad and high == [10, 11] and low == [12, 0, 0, 0, 0, 0]


def test_mask_count_exhaustive_small():
    """``malformed`` iff popcount != k, over all masks, in the model itself."""
    for b, k in itertools.product((4, 8), (1, 2, 3)):
        fmt = fmt_of(b, k)
        for mask in range(1 << b):
            assert ref_gather(fmt, [0] * b, mask)[2] == (bin(mask).count("1") != k)


def test_parameter_checks():
    with pytest.raises(TypeError, match="fmt must be an SQFormat, not 16"):
        SelectGather(16)
    with pytest.raises(TypeError, match="act_bits must be an integer, not 8.0"):
        SelectGather(fmt_of(8, 2), 8.0)
    with pytest.raises(ValueError, match=r"act_bits must be in 8\.\.8 .* not 4"):
        SelectGather(fmt_of(8, 2), 4)
    with pytest.raises(ValueError, match=r"act_bits must be in 4\.\.8 .* not 9"):
        SelectGather(fmt_of(8, 2, low_bits=2, high_bits=4), 9)
    with pytest.raises(ValueError, match=r"stages must be in 0\.\.3 for bank size 8, not 4"):
        SelectGather(fmt_of(8, 2), 8, 4)


def _built(g):
    g._MustUse__silence = True  # inspected, not elaborated: no UnusedElaboratable warning
    return g


def test_ports():
    """Port set and widths by format: no ``high`` when k = 0, no ``low`` when l = 0."""
    g = _built(SelectGather(fmt_of(16, 4), 8))
    assert len(g.high.as_value()) == 4 * 8 and len(g.low.as_value()) == 12 * 8
    g = _built(SelectGather(SQFormat.dense(4, bank_size=8), 4))
    assert "high" not in g.signature.members and len(g.low.as_value()) == 8 * 4
    g = _built(SelectGather(fmt_of(4, 2, low_bits=0), 8))
    assert "low" not in g.signature.members and len(g.high.as_value()) == 2 * 8
