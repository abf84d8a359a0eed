"""SQRow: random banks through the row pipeline, with random stalls, against hw_matmul."""

import pytest
import torch

from sqhw.format import HWConfig, SQFormat
from sqhw.gateware.row import SQRow
from sqhw.golden import hw_matmul, random_sqtensor

from ._util import drive_row, pack_fields, seeded_rng
from ._words import decoded_words


def random_acts(rng, act_bits, M, K) -> torch.Tensor:
    """Activations over the full range, with the extremes common."""
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    vals = [[rng.choice((lo, hi, 0)) if rng.random() < 0.2 else rng.randint(lo, hi)
             for _ in range(K)] for _ in range(M)]
    return torch.tensor(vals, dtype=torch.int64)


def run_row(cfg, rng, nb, M, stall=0.3, bubble=0.15):
    fmt = cfg.fmt
    b = fmt.bank_size
    gen = torch.Generator().manual_seed(rng.getrandbits(32))
    sq = random_sqtensor(fmt, nb * b, 1, generator=gen)
    x = random_acts(rng, cfg.act_bits, M, nb * b)
    expect = hw_matmul(x, sq, act_bits=cfg.act_bits)[:, 0].tolist()
    words = decoded_words(sq)
    dut = SQRow(cfg)

    def bank(m, j):
        return {"act": pack_fields(x[m, j * b:(j + 1) * b].tolist(), cfg.act_bits),
                "w": words[j]}

    got, latencies = drive_row(dut, rng, M, nb, bank, stall=stall, bubble=bubble)
    assert got == expect
    return latencies


CONFIGS = {
    "b16-8/4-k2": HWConfig(fmt=SQFormat(16, 0.875, 8, 4), rows=1, k_max=64),
    "b8-3/2-k1-a4": HWConfig(fmt=SQFormat(8, 0.875, 3, 2, scale_bits=3), rows=1, act_bits=4,
                            k_max=64),
    "b32-8/4-k4": HWConfig(fmt=SQFormat(32, 0.875, 8, 4), rows=1, k_max=64),
    "b128-8/4-k16": HWConfig(fmt=SQFormat(128, 0.875, 8, 4, scale_bits=4), rows=1, k_max=256),
    "b4-k3": HWConfig(fmt=SQFormat(4, 0.25, 8, 2), rows=1, k_max=32),
    "2:4": HWConfig(fmt=SQFormat.two_four(), rows=1, k_max=64),
    "dense8": HWConfig(fmt=SQFormat.dense(8), rows=1, k_max=64),
    "dense4-b4": HWConfig(fmt=SQFormat.dense(4, bank_size=4, scale_bits=16), rows=1,
                          k_max=16, acc_bits=40),
    # DSP products (high and scale; every product) and deeper adder levels per stage. The
    # b = 128 row's P_high is 20 bits: its scale product stays in LUTs beside a DSP one.
    "b16-8/4-k2-dsp": HWConfig(fmt=SQFormat(16, 0.875, 8, 4), rows=1, k_max=64, mults="dsp"),
    "b16-8/4-k2-dspall-l2": HWConfig(fmt=SQFormat(16, 0.875, 8, 4), rows=1, k_max=64,
                                     mults="dsp_all", tree_levels=2),
    "b128-8/4-k16-dsp-l4": HWConfig(fmt=SQFormat(128, 0.875, 8, 4, scale_bits=4), rows=1,
                                    k_max=256, mults="dsp", tree_levels=4),
    "2:4-dsp-l3": HWConfig(fmt=SQFormat.two_four(), rows=1, k_max=64, mults="dsp",
                           tree_levels=3),
    "dense8-dspall": HWConfig(fmt=SQFormat.dense(8), rows=1, k_max=64, mults="dsp_all"),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_row_random(request, name):
    cfg = CONFIGS[name]
    rng = seeded_rng(request)
    nb_max = cfg.nb_max
    for nb in sorted({1, min(3, nb_max), nb_max}):
        run_row(cfg, rng, nb, M=12 if cfg.fmt.bank_size < 64 else 4)


def test_row_no_stall(request):
    """Back-to-back banks: one bank per cycle, latency ``cfg.row_latency``."""
    cfg = CONFIGS["b16-8/4-k2"]
    rng = seeded_rng(request)
    latencies = run_row(cfg, rng, 1, M=20, stall=0.0, bubble=0.0)
    assert latencies == [cfg.row_latency] * 20


def test_parameter_check():
    with pytest.raises(TypeError, match=r"cfg must be an HWConfig, not SQFormat\("):
        SQRow(SQFormat())
