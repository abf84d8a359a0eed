"""The broadcast registers' copies (:func:`sqhw.gateware.pipe.fanout`): one per group of
``FANOUT_ROWS`` rows, each driving only its rows, and kept apart by the FPGA build's
``KEEP_FANOUT`` (without it Yosys's ``opt_merge`` folds them back into one register)."""

import re

import pytest
from amaranth.back import rtlil

from sqhw.format import HWConfig, SQFormat, act_min_acc_bits
from sqhw.format.pipeline import FANOUT_ROWS, fanout_groups
from sqhw.fpga.build import KEEP_FANOUT
from sqhw.gateware.top import Top
from sqhw.toolchain.yosys import run_yosys

WEIGHT = HWConfig(rows=FANOUT_ROWS + 1, k_max=32)
ACT_FMT = SQFormat(8, 0.75, 8, 4)
ACT = HWConfig(fmt=ACT_FMT, rows=FANOUT_ROWS + 2, k_max=16, operand="activation",
               weight_bits=4, acc_bits=act_min_acc_bits(ACT_FMT, 4, 16))


def _count(il_text, tmp_path, keep: bool) -> int:
    """$dff cells that drive a ``*_fo*`` copy after ``opt_merge``."""
    (tmp_path / "top.il").write_text(il_text)
    log = run_yosys("read_rtlil top.il\n" + (KEEP_FANOUT + "\n" if keep else "")
                    + "opt_merge\nselect -count w:*_fo* %a %ci1 t:$dff %i\n", tmp_path)
    return int(re.findall(r"(\d+) objects", log)[-1])


@pytest.mark.parametrize("cfg", [WEIGHT, ACT], ids=["weight", "activation"])
def test_copies_survive_opt_merge(cfg, tmp_path):
    il_text = rtlil.convert(Top(cfg))
    # Registers a copy is made of, once per group, as the gateware names them.
    groups = fanout_groups(cfg.rows)
    chains = {re.sub(r"_fo\d+_\d+$", "", n) + re.search(r"_\d+$", n).group()
              for n in re.findall(r"wire width \d+ (?:signed )?\\(\S+_fo\d+_\d+)\b", il_text)}
    assert groups == 2 and chains
    kept = _count(il_text, tmp_path, keep=True)
    assert kept == groups * len(chains), (kept, sorted(chains))
    assert _count(il_text, tmp_path, keep=False) < kept   # what KEEP_FANOUT prevents


def test_no_copies_up_to_one_group():
    assert "_fo" not in rtlil.convert(Top(HWConfig(rows=FANOUT_ROWS, k_max=32)))
