"""The float-scale reference (``+floatscale``) through the eval: parsing, quantize_layer and
SQLinear's float-weight path."""

import pytest
import torch
from torch import nn

from sqhw.eval.configs import parse_config
from sqhw.eval.quantized import EvalContext, SQLinear
from sqhw.golden import quantize_activation
from sqhw.golden.ptq import quantize_layer
from sqhw.golden.quantize import quantize_weight, quantize_weight_float


def test_parse_floatscale():
    m = parse_config("B16-(8/4)-0.875+gptq+floatscale")
    assert m.float_scales and m.gptq and m.name.endswith("float-scales")
    assert not parse_config("B16-(8/4)-0.875+gptq").float_scales


def test_quantize_layer_float_reference():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 8, generator=g)
    m = parse_config("B16-(8/4)-0.875+magnitude+floatscale")
    ref, s = quantize_layer(w, m)
    assert s is None and torch.equal(ref, quantize_weight_float(w, m.fmt))
    coded, _ = quantize_layer(w, parse_config("B16-(8/4)-0.875+magnitude"))
    assert torch.equal(coded.dequantize(), quantize_weight(w, m.fmt).dequantize())
    assert not torch.equal(ref, coded.dequantize())


def test_sqlinear_float_weight_path():
    g = torch.Generator().manual_seed(1)
    lin = nn.Linear(32, 4)
    layer = SQLinear("l", lin, EvalContext())
    w = torch.randn(32, 4, generator=g)
    layer.set_float_weight(w, None, 8)
    x = torch.randn(5, 32, generator=g)
    x_int, sx = quantize_activation(x, 8)
    want = (x_int.float() @ w) * sx[:, None] + lin.bias
    assert torch.allclose(layer.quant_forward(x, "fast"), want)
    with pytest.raises(ValueError, match="no hardware path"):
        layer.quant_forward(x, "hw")
    with pytest.raises(ValueError, match="shape"):
        layer.set_float_weight(torch.zeros(4, 32), None, 8)
