"""The datasheet's §9.1 table of row stages and latencies is what ``HWConfig`` derives."""

import re
from pathlib import Path

from sqhw.format import HWConfig, SQFormat

DATASHEET = Path(__file__).resolve().parents[2] / "docs" / "datasheet.md"
FORMATS = {"B16-(8/4)-0.875": SQFormat(), "W8A8 (b = 16)": SQFormat.dense(8),
           "W4A8 (b = 16)": SQFormat.dense(4), "2:4-INT8": SQFormat.two_four()}


def test_pipeline_table_matches_hwconfig():
    text = DATASHEET.read_text()
    start = text.index("| format | mults | tree_levels |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    assert len(rows) >= 8
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        fmt, mults, levels = FORMATS[cells[0]], cells[1], int(cells[2])
        cfg = HWConfig(fmt=fmt, mults=mults, tree_levels=levels, acc_bits=48)
        plan = cfg.row_plan
        want = [plan.low_stages, plan.high_stages, plan.scale_stages, cfg.row_latency,
                cfg.latency, cfg.result_fifo_depth, plan.dsps]
        assert [int(c) for c in cells[3:]] == want, line
    # §9 states the default configuration's latency in words.
    default = re.search(r"(\d+) for the default configuration", text)
    assert default and int(default.group(1)) == HWConfig().latency
