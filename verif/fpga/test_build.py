"""One real bitstream build (Yosys + nextpnr + packer from YoWASP) and its report.

The quick build is the ULX3S-85F with one row and K ≤ 32: the report must say it fits and
meets timing at the core clock, and the bitstream must exist. Bigger builds are ``slow``.
The first call of each YoWASP tool compiles its WebAssembly (cached in ~/.cache/YoWASP).
"""

import json

import pytest

from sqhw.format import HWConfig, SQFormat

pytestmark = pytest.mark.fpga

QUICK = {"ulx3s-85f-r1": ("ulx3s-85f", HWConfig(fmt=SQFormat(), rows=1, k_max=32), {})}
SLOW = {
    "ulx3s-85f-r4": ("ulx3s-85f", HWConfig(fmt=SQFormat(), rows=4, k_max=256), {}),
    # The UP5K has 8 DSPs (a b = 8 bank needs 12) and 5280 logic cells; 24 MHz was missed
    # at 22.9 MHz, so this asks the PLL for 20 MHz.
    "icebreaker-r1-b8": ("icebreaker", HWConfig(fmt=SQFormat(bank_size=8, sparsity=0.75),
                                                rows=1, k_max=16),
                         {"nodsp": True, "freq_hz": 20e6}),
}


def _check(board, cfg, out, options):
    from sqhw.fpga.build import build
    path, rep = build(cfg, board, out=out, **options)
    assert path == out
    saved = json.loads((out / "report.json").read_text())
    assert saved["fits"] and saved["timing_met"], saved["verdict"]
    assert saved["digest"] == cfg.digest()
    assert saved["fmax_core_mhz"] >= saved["clock"]["core_mhz"]
    for key in ("lut4", "ff", "dsp", "bram"):
        item = saved["utilization"][key]
        assert item["available"] and 0 <= item["used"] <= item["available"], (key, item)
    assert saved["utilization"]["lut4"]["used"] > 0 and saved["utilization"]["ff"]["used"] > 0
    assert (out / saved["bitstream"]).stat().st_size > 1000
    assert "meets timing" in (out / "report.md").read_text()
    # What python -m sqhw.host --build reads from this folder.
    from sqhw.host.driver import read_build
    b = read_build(out)
    assert (b.cfg, b.board, b.baud) == (cfg, board, saved["clock"]["baud"]), b
    return saved


@pytest.mark.parametrize("name", list(QUICK))
def test_build(name, tmp_path):
    board, cfg, options = QUICK[name]
    _check(board, cfg, tmp_path / name, options)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW))
def test_build_slow(name, tmp_path):
    board, cfg, options = SLOW[name]
    _check(board, cfg, tmp_path / name, options)
