"""ActRow (activation mode): gathered lanes × reordered weight rows, with random stalls, against
``hw_matmul_act`` and the per-bank partials of ``hw_bank_partials_act``."""

import dataclasses

import pytest
import torch

from sqhw.format import HWConfig, SQFormat
from sqhw.gateware.actrow import ActRow
from sqhw.golden import (
    act_min_acc_bits,
    hw_bank_partials_act,
    hw_matmul_act,
    quantize_activation_sq,
    quantize_weight_dense,
    reorder_permutation,
)

from ._util import drive_row, pack_fields, seeded_rng


def act_cfg(fmt, weight_bits, k_max):
    """The activation-mode configuration of one row (its own bound's accumulator)."""
    return HWConfig(fmt=fmt, k_max=k_max, operand="activation", weight_bits=weight_bits,
                    acc_bits=act_min_acc_bits(fmt, weight_bits, k_max))


def random_mask(fmt: SQFormat, K: int, gen) -> torch.Tensor:
    b, k = fmt.bank_size, fmt.k
    mask = torch.zeros(K, dtype=torch.bool)
    for j in range(K // b):
        mask[j * b + torch.randperm(b, generator=gen)[:k]] = True
    return mask


def run_actrow(fmt, weight_bits, rng, nb, M, stall=0.3, bubble=0.15, extremes=False):
    b = fmt.bank_size
    K = nb * b
    gen = torch.Generator().manual_seed(rng.getrandbits(32))
    # Heavy-tailed activations, so both groups' scale codes vary from bank to bank.
    x = torch.randn(M, K, generator=gen) * torch.rand(M, K, generator=gen).pow(4) * 8
    w = torch.randn(K, 1, generator=gen)
    mask = random_mask(fmt, K, gen)
    act = quantize_activation_sq(x, mask, fmt)
    weight = quantize_weight_dense(w, weight_bits)
    if extremes:
        # Every code at its negative extreme: the largest magnitudes the format allows.
        top = (1 << fmt.scale_bits) - 1
        act = dataclasses.replace(
            act,
            codes=torch.where(mask, -fmt.high_max, -fmt.low_max).expand(M, K).to(torch.int32),
            scale_high=torch.full_like(act.scale_high, top if fmt.k else 0),
            scale_low=torch.full_like(act.scale_low, top if fmt.low_bits else 0))
        weight = dataclasses.replace(weight, codes=torch.full_like(weight.codes, -weight.qmax))
    expect = hw_matmul_act(act, weight)[:, 0].tolist()
    p_high, p_low = hw_bank_partials_act(act, weight)
    assert expect == (act.scale_high[:, :, None] * p_high
                      + act.scale_low[:, :, None] * p_low).sum(1)[:, 0].tolist()
    high, low = act.high_codes(), act.low_codes()
    w_rows = weight.codes.to(torch.int64)[reorder_permutation(mask, fmt), 0].reshape(nb, b)

    dut = ActRow(act_cfg(fmt, weight_bits, K))
    assert dut.cfg.acc_bits >= act_min_acc_bits(fmt, weight_bits, K)

    def bank(m, j):
        v = {"w": pack_fields(w_rows[j].tolist(), weight_bits)}
        if fmt.k:
            v["high"] = pack_fields(high[m, j].tolist(), fmt.high_bits)
            v["scale_high"] = int(act.scale_high[m, j])
        if fmt.low_bits:
            v["low"] = pack_fields(low[m, j].tolist(), fmt.low_bits)
            v["scale_low"] = int(act.scale_low[m, j])
        return v

    got, latencies = drive_row(dut, rng, M, nb, bank, stall=stall, bubble=bubble,
                               vcd_name="actrow")
    assert got == expect
    return latencies


FORMATS = {
    "b16-8/4-k2-w4": (SQFormat(16, 0.875, 8, 4), 4),
    "b16-8/4-k4-w8": (SQFormat(16, 0.75, 8, 4), 8),
    "b8-8/2-k1-w8": (SQFormat(8, 0.875, 8, 2), 8),
    "b32-8/4-k4-w4": (SQFormat(32, 0.875, 8, 4), 4),
    "b4-2:4-w8": (SQFormat.two_four(8), 8),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_actrow_random(request, name):
    fmt, wb = FORMATS[name]
    rng = seeded_rng(request)
    for nb in (1, 3):
        run_actrow(fmt, wb, rng, nb, M=10 if fmt.bank_size < 32 else 5)


@pytest.mark.parametrize("name", ["b16-8/4-k2-w4", "b16-8/4-k4-w8"])
def test_actrow_extremes(request, name):
    """All codes and scale codes at their extremes over K = k_max: the accumulator bound."""
    fmt, wb = FORMATS[name]
    run_actrow(fmt, wb, seeded_rng(request), 4, M=3, extremes=True)


def test_actrow_no_stall(request):
    """Back-to-back banks: one bank per cycle, latency ``cfg.swapped_row.row_latency``."""
    fmt, wb = FORMATS["b16-8/4-k2-w4"]
    assert run_actrow(fmt, wb, seeded_rng(request), 1, M=12, stall=0.0, bubble=0.0) == \
        [act_cfg(fmt, wb, 64).swapped_row.row_latency] * 12


def test_weight_bits_checked():
    with pytest.raises(ValueError, match="weight_bits must be 4 or 8, not 6"):
        act_cfg(SQFormat(), 6, 64)
    with pytest.raises(ValueError, match="ActRow needs an activation-mode configuration"):
        ActRow(HWConfig())
    with pytest.raises(TypeError, match="cfg must be an HWConfig"):
        ActRow(SQFormat())
