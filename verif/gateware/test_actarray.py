"""ActArray / Top in activation mode: parameter checks, payload layouts, port widths and
deterministic Verilog. The array's behaviour is verified end to end through ``sqhw_top`` by
``verif/top/test_top_act.py`` (cocotb + Verilator against ``hw_matmul_act``)."""

from pathlib import Path

import pytest

from sqhw.format import HWConfig, SQFormat, act_min_acc_bits
from sqhw.gateware.actarray import ActArray, act_layout, weight_layout
from sqhw.gateware.emit import verilog_text
from sqhw.gateware.top import Top


def act_cfg(fmt=None, wb=4, rows=2, k_max=32, act_bits=8):
    fmt = fmt or SQFormat(16, 0.875, 8, 4)
    return HWConfig(fmt=fmt, rows=rows, act_bits=act_bits, k_max=k_max,
                    acc_bits=act_min_acc_bits(fmt, wb, k_max), operand="activation",
                    weight_bits=wb)


def test_parameter_check():
    with pytest.raises(TypeError, match="cfg must be an HWConfig, not None"):
        ActArray(None)
    with pytest.raises(ValueError, match="cfg.operand must be 'activation' for ActArray"):
        ActArray(HWConfig())


def test_layouts():
    cfg = act_cfg()
    assert weight_layout(cfg).size == 64 + 1
    lay = act_layout(cfg)
    # 16 codes of 8 bits, scale_high then scale_low, last, user
    assert [name for name, _ in lay] == ["data", "scale_high", "scale_low", "last", "user"]
    assert lay.size == 16 * 8 + 8 + 8 + 2
    assert lay["scale_high"].offset == 128 and lay["scale_low"].offset == 136
    # 2:4 has no low group: one scale code
    lay24 = act_layout(act_cfg(SQFormat.two_four(8), wb=8))
    assert lay24.size == 4 * 8 + 8 + 2 and "scale_low" not in dict(lay24)
    # dense (k = 0) has no high group
    layd = act_layout(act_cfg(SQFormat.dense(4), wb=4, act_bits=4))
    assert "scale_high" not in dict(layd) and layd["scale_low"].offset == 16 * 4
    # Activation mode's select and gather adds its pipelined mask prefix count (2 at b = 16).
    assert cfg.latency == HWConfig(fmt=cfg.fmt, k_max=cfg.k_max).latency + 2 == 22


def test_top_builds_the_act_array_with_the_datasheet_widths():
    cfg = act_cfg(rows=3)
    top = Top(cfg)
    top._MustUse__silence = True        # only its signature is inspected here
    members = top.signature.members
    assert members["s_axis_w_tdata"].shape == 64        # 16 codes of INT4
    assert members["s_axis_a_tdata"].shape == 144       # 16 x 8 + 2 x 8
    text = verilog_text(cfg)
    assert text == verilog_text(cfg), "Verilog output is not deterministic"
    # No source locations (they would carry this machine's paths into the output).
    assert str(Path(__file__).resolve().parents[2]) not in text and "src =" not in text
    assert "input [63:0] s_axis_w_tdata;" in text
    assert "input [143:0] s_axis_a_tdata;" in text
    assert f"output [{3 * cfg.acc_bits - 1}:0] m_axis_r_tdata;" in text
    # weight mode's Top is unchanged by the new mode
    assert "input [95:0] s_axis_w_tdata;" in verilog_text(HWConfig(rows=1, k_max=32))
