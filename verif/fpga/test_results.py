"""``python -m sqhw.fpga record``: the whole-array table's records and rebuild commands."""

import hashlib
import json
import shlex

import pytest

from sqhw.format import HWConfig, SQFormat
from sqhw.fpga.cli import _parser, main
from sqhw.fpga.results import rebuild_command, record
from sqhw.golden.schedule import schedule_utilization_for


def _report(cfg, met=True, fmax=101.2):
    return {"board": "ulx3s-85f", "name": cfg.fmt.name, "digest": cfg.digest(),
            "config": cfg.to_dict(), "fits": True, "timing_met": met, "seed": 3,
            "verdict": "v", "clock": {"requested_mhz": 100.0, "core_mhz": 100.0},
            "fmax": {"clk": {"achieved_mhz": fmax, "constraint_mhz": 100.0}},
            "seconds": {"total": 1234.5},
            "utilization": {k: {"used": n, "available": 1, "percent": 1.0}
                            for k, n in (("lut4", 40000), ("ff", 30000), ("dsp", 64),
                                         ("bram", 49))}}


@pytest.mark.parametrize("cfg", [
    HWConfig(mults="dsp"),
    HWConfig(fmt=SQFormat.dense(8), rows=9, acc_bits=40, mults="dsp_all", tree_levels=2),
    HWConfig(fmt=SQFormat.two_four(), rows=8, k_max=256, acc_bits=32),
])
def test_record_and_rebuild_command(cfg):
    rec = record(_report(cfg))
    u = schedule_utilization_for(cfg)
    assert rec["whole_array"] and rec["rows"] == cfg.rows and rec["dsp"] == 64
    assert rec["gmacs"] == round(cfg.rows * cfg.fmt.bank_size * 100.0 * u / 1000, 2)
    # The command rebuilds exactly this configuration.
    argv = shlex.split(rec["command"])[3:]
    args = _parser().parse_args(argv)
    from sqhw.cli import config_from_args
    assert config_from_args(args).digest() == cfg.digest()
    assert rebuild_command(_report(cfg)) == rec["command"]


def test_no_gmacs_when_timing_missed():
    rec = record(_report(HWConfig(), met=False, fmax=62.8))
    assert rec["gmacs"] is None and rec["fmax_mhz"] == 62.8


def test_record_cli_merges_by_digest(tmp_path, capsys):
    build = tmp_path / "b"
    build.mkdir()
    (build / "report.json").write_text(json.dumps(_report(HWConfig(mults="dsp"))))
    (build / "top.il").write_text("module top\nend\n")
    table = tmp_path / "fpga.json"
    assert main(["record", str(build), "--table", str(table)]) == 0
    first = json.loads(table.read_text())["builds"][0]["design_sha256"]
    # A rebuild (same digest and clock) of changed gateware replaces the record.
    (build / "top.il").write_text("module top\n  wire w\nend\n")
    assert main(["record", str(build), "--table", str(table)]) == 0
    builds = json.loads(table.read_text())["builds"]
    assert len(builds) == 1
    assert builds[0]["design_sha256"] == hashlib.sha256(b"module top\n  wire w\nend").hexdigest()
    assert builds[0]["design_sha256"] != first
    # Source positions are not the design: moving the generator's lines keeps the hash.
    (build / "top.il").write_text('module top\n  attribute \\src "x.py:7"\n  wire w\nend\n')
    assert main(["record", str(build), "--table", str(table)]) == 0
    assert json.loads(table.read_text())["builds"][0]["design_sha256"] == \
        builds[0]["design_sha256"]
    with pytest.raises(SystemExit) as e:
        main(["record", str(tmp_path / "nope"), "--table", str(table)])
    assert e.value.code == 2
