"""Parse the configuration names the eval CLI accepts into :class:`PTQMethod`."""

import re

from ..format import SQFormat
from ..golden.ptq import PTQMethod

__all__ = ["parse_config", "SWEEP"]

# The configurations measured in docs/accuracy.md (python -m sqhw.eval --sweep).
SWEEP = (
    "W8A8", "W4A8", "W4A8+gptq",
    "B16-(8/4)-0.875", "B16-(8/4)-0.875+gptq", "B16-(8/4)-0.75", "B16-(8/4)-0.75+gptq",
    "2:4-INT8", "W4A4", "2:4-INT8+gptq", "B16-(8/4)-0.875+magnitude",
)

_WA = re.compile(r"W(\d)A(\d)")
_SMOOTH = re.compile(r"smooth=?([0-9.]+)")
_ACT = re.compile(r"A(\d)")


def parse_config(spec: str, importance: str = "saliency", gptq: bool = False,
                 smooth_alpha: float | None = None, act_bits: int = 8,
                 percdamp: float = 0.01) -> PTQMethod:
    """``FORMAT[+OPTION...]`` to a :class:`PTQMethod`.

    FORMAT is one of ``W<w>A<a>`` (dense INT<w> weights, per-channel scales, A<a>
    activations), ``INT<w>``, ``2:4-INT<h>`` or ``B<b>-(<h>/<l>)-<s>`` (per-bank scales).
    OPTIONs override the defaults given as arguments: ``gptq`` / ``rtn``, ``saliency`` /
    ``magnitude``, ``smooth<alpha>`` (or ``smooth=<alpha>``) / ``nosmooth``, ``channel`` /
    ``bank`` (weight scales), ``A<bits>``, ``floatscale`` (the float-only reference of the
    paper's per-(bank, column) float scales instead of the hardware's codes; not hardware).

    Raises
    ------
    ValueError
        Naming the part that is not understood.
    """
    base, *opts = spec.strip().split("+")
    per_channel = False
    float_scales = False
    if m := _WA.fullmatch(base):
        fmt, act_bits, per_channel = SQFormat.dense(int(m[1])), int(m[2]), True
    else:
        try:
            fmt = SQFormat.parse(base)
        except ValueError as e:
            raise ValueError(f"{e}; or W<w>A<a> (e.g. W8A8); in {spec!r}") from None
        # A dense format named INT<w> gets per-channel scales, as W<w>A<a> does; written as
        # B<b>-(<h>/<l>)-1 it keeps per-bank scales.
        per_channel = base.startswith("INT")
    for opt in opts:
        if opt == "gptq":
            gptq = True
        elif opt == "rtn":
            gptq = False
        elif opt in ("saliency", "magnitude"):
            importance = opt
        elif opt == "nosmooth":
            smooth_alpha = None
        elif m := _SMOOTH.fullmatch(opt):
            smooth_alpha = float(m[1])
        elif opt in ("channel", "bank"):
            per_channel = opt == "channel"
        elif m := _ACT.fullmatch(opt):
            act_bits = int(m[1])
        elif opt == "floatscale":
            float_scales = True
        else:
            raise ValueError(f"unknown option {opt!r} in {spec!r}: use gptq, rtn, saliency, "
                             f"magnitude, smooth<alpha>, nosmooth, channel, bank, A<bits> "
                             f"or floatscale")
    return PTQMethod(fmt=fmt, act_bits=act_bits, importance=importance, gptq=gptq,
                     smooth_alpha=smooth_alpha, per_channel=per_channel, percdamp=percdamp,
                     float_scales=float_scales)
