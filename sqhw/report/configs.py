"""The configurations of the design-space report and how each maps to hardware.

A report configuration is named like the configurations of ``python -m sqhw.eval``
(:func:`sqhw.eval.configs.parse_config`: ``W8A8``, ``W4A8+gptq``, ``B16-(8/4)-0.875+gptq``,
``2:4-INT8+magnitude``, ...) or, for the activation mode (SQ-format on the activations with
a static mask, ``docs/activation-mode.md``), ``W<w>A(<SQ format>)``, e.g.
``W4A(B16-(8/4)-0.75)``: dense INT<w> weights (w = 4 or 8, per-column RTN), activations in
that SQ-format; ``+gptq`` quantizes the dense weights with GPTQ in the static mask's row
order (:func:`sqhw.golden.ptq.gptq_quantize_dense`), ``+dynamic`` replaces the static mask
by the per-token top-k one (an accuracy reference: no hardware computes it).

Every weight-mode configuration gets the same array throughput: ``macs`` MACs per cycle,
that is ``R = macs / b`` rows of one bank (``b`` MACs) per cycle each (datasheet §9). The
activation mode gets the same ``R``: its ``HWConfig`` (``operand="activation"``) is the
:class:`~sqhw.gateware.actarray.ActArray` that ``python -m sqhw.gen --operand activation``
emits, costed as ``R`` :class:`~sqhw.gateware.actrow.ActRow` plus its one shared
select-and-gather unit. Its utilization comes from the activation-mode schedule
(``R + 1`` weight columns per tile, latency 5: :func:`sqhw.golden.schedule.schedule_cycles_for`);
it is not placed and routed, so it has no Fmax or measured GMAC/s in the report.
"""

import re
from dataclasses import dataclass

from ..format import WEIGHT_BITS, HWConfig, SQFormat, act_min_acc_bits, min_acc_bits
from ..synth.area import K_MAX

__all__ = ["ReportConfig", "parse_report_config", "SQ_SWEEP", "BASELINES", "ACT_SWEEP", "ABLATION",
           "DEFAULT_CONFIGS", "SMALL_CONFIGS", "K_MAX"]

#: W(SQ)A8: bank size {16, 32, 64} x s {0.5, 0.75, 0.875, 0.9375}, saliency + GPTQ (the
#: best weight algorithm measured in docs/accuracy.md).
SQ_SWEEP = tuple(f"B{b}-(8/4)-{s}+gptq" for b in (16, 32, 64)
                 for s in ("0.5", "0.75", "0.875", "0.9375"))

#: Dense and 2:4 baselines. ``2:4-INT8+gptq`` is saliency selection with SparseGPT
#: compensation; ``2:4-INT8+magnitude`` keeps the two largest of every four.
BASELINES = ("W8A8", "W6A8", "W6A8+gptq", "W4A8", "W4A8+gptq", "W4A4", "2:4-INT8+magnitude",
             "2:4-INT8+gptq")

#: W4A(SQ): static activation masks over the same grid.
ACT_SWEEP = tuple(f"W4A(B{b}-(8/4)-{s})" for b in (16, 32, 64)
                  for s in ("0.5", "0.75", "0.875", "0.9375"))

#: Does GPTQ compensation help SQ? The same formats with saliency selection only.
ABLATION = ("B16-(8/4)-0.875", "B64-(8/4)-0.875")

DEFAULT_CONFIGS = SQ_SWEEP + BASELINES + ACT_SWEEP + ABLATION

#: The test sweep (``--small``).
SMALL_CONFIGS = ("W8A8", "W4A4", "B16-(8/4)-0.875+gptq", "W4A(B16-(8/4)-0.75)")

#: ``W<w>A(<SQ format>)``: the format is read by :meth:`SQFormat.parse` (its ``B`` form).
_ACT = re.compile(r"W(\d)A\((B.*)\)(.*)")


@dataclass(frozen=True)
class ReportConfig:
    """One point of the design space.

    Attributes
    ----------
    name : str
        The name as given (the key of the report).
    mode : {"weight", "activation"}
        Which operand is in SQ-format (weight mode: every SQ, dense and 2:4 configuration).
    fmt : SQFormat
        The SQ operand's format (the weights in weight mode, the activations otherwise).
    act_bits : int
        Weight mode: activation width.
    weight_bits : int or None
        Activation mode: dense weight width (4 or 8).
    ptq : str
        How the weights are quantized (``PTQMethod.name`` in weight mode).
    hw : HWConfig
        The array (``R`` rows, ``k_max`` :data:`K_MAX`, narrowest safe accumulator), in
        either mode.
    rows : int
        ``R = macs / b``, in both modes.
    gptq : bool
        Activation mode: the dense weights by GPTQ (weight mode: see ``ptq``).
    dynamic : bool
        Activation mode: the per-token top-k mask (a reference, not hardware).
    """

    name: str
    mode: str
    fmt: SQFormat
    act_bits: int
    weight_bits: int | None
    ptq: str
    hw: HWConfig
    rows: int
    gptq: bool = False
    dynamic: bool = False

    @property
    def row_hw(self) -> HWConfig | None:
        """The one-row configuration whose area is synthesised (the array is R of them)."""
        if self.mode != "weight":
            return None
        return HWConfig(fmt=self.hw.fmt, rows=1, act_bits=self.hw.act_bits,
                        k_max=self.hw.k_max, acc_bits=self.hw.acc_bits)

    @property
    def equivalent_bits(self) -> dict:
        """Equivalent bits ``(1-s)·h + s·l`` of each operand."""
        if self.mode == "weight":
            return {"weights": self.fmt.equivalent_bits, "activations": float(self.act_bits)}
        return {"weights": float(self.weight_bits), "activations": self.fmt.equivalent_bits}

    @property
    def storage_bits(self) -> float:
        """Stored weight bits per element, scale codes and masks included.

        Weight mode: one bank record of the memory image (datasheet §4, ``SQFormat.
        record_bits``: low codes with the vmask, high values, scale codes) over ``b``.
        Activation mode: the dense INT<w> weight codes. Both leave out the one float scale
        per output column (32 bits per column: below 0.1 bit per element at K >= 384).
        """
        if self.mode == "weight":
            return self.fmt.record_bits / self.fmt.bank_size
        return float(self.weight_bits)

    @property
    def storage_bits_padded(self) -> float | None:
        """Weight mode: bits per element of the byte-padded record (``record_bytes``), as
        the hardware's weight stream carries it."""
        if self.mode == "weight":
            return 8 * self.fmt.record_bytes / self.fmt.bank_size
        return None


def parse_report_config(spec: str, macs: int = 256) -> ReportConfig:
    """A report configuration from its name.

    Parameters
    ----------
    spec : str
        A ``python -m sqhw.eval`` configuration name, or ``W<w>A(<SQ format>)`` for the
        activation mode.
    macs : int
        MACs per cycle of every weight-mode array (``R = macs / b`` rows).

    Raises
    ------
    ValueError
        Naming what is wrong: an unknown format or option, or a bank size that does not
        divide ``macs`` into 1..256 rows.
    """
    from ..eval.configs import parse_config

    spec = spec.strip()
    if m := _ACT.fullmatch(spec):
        wbits, fmt_name, rest = int(m[1]), m[2], m[3]
        gptq = dynamic = False
        if rest and not rest.startswith("+"):
            raise ValueError(f"activation-mode configuration {spec!r}: options follow a "
                             f"'+' (got {rest!r})")
        for opt in rest.split("+")[1:]:
            if opt in ("gptq", "rtn"):
                gptq = opt == "gptq"
            elif opt in ("dynamic", "static"):
                dynamic = opt == "dynamic"
            else:
                raise ValueError(f"unknown option {opt!r} in {spec!r}: an activation-mode "
                                 f"configuration takes gptq, rtn, dynamic or static")
        if wbits not in WEIGHT_BITS:
            raise ValueError(f"activation-mode weights must be "
                             f"{' or '.join(f'W{b}' for b in WEIGHT_BITS)}, not W{wbits} in "
                             f"{spec!r}")
        fmt = SQFormat.parse(fmt_name)
        if fmt.k == 0:
            raise ValueError(f"{spec!r}: the activation format has no high elements")
        hw = _act_hw(fmt, wbits, _rows(spec, fmt, macs))
        weights = "GPTQ (mask row order)" if gptq else "RTN"
        mask = "dynamic per-token top-k mask (reference, no hardware)" if dynamic else \
            "static mask"
        return ReportConfig(name=spec, mode="activation", fmt=fmt, act_bits=fmt.high_bits,
                            weight_bits=wbits,
                            ptq=f"W{wbits} per-column {weights}, A {mask} {fmt.name}",
                            hw=hw, rows=hw.rows, gptq=gptq, dynamic=dynamic)
    method = parse_config(spec)
    fmt = method.fmt
    hw = HWConfig(fmt=fmt, rows=_rows(spec, fmt, macs), act_bits=method.act_bits, k_max=K_MAX,
                  acc_bits=min_acc_bits(fmt, method.act_bits, K_MAX))
    return ReportConfig(name=spec, mode="weight", fmt=fmt, act_bits=method.act_bits,
                        weight_bits=None, ptq=method.name, hw=hw, rows=hw.rows)


def _act_hw(fmt: SQFormat, weight_bits: int, rows: int) -> HWConfig:
    return HWConfig(fmt=fmt, rows=rows, act_bits=max(fmt.high_bits, fmt.low_bits),
                    k_max=K_MAX, operand="activation", weight_bits=weight_bits,
                    acc_bits=act_min_acc_bits(fmt, weight_bits, K_MAX))


def _rows(spec: str, fmt: SQFormat, macs: int) -> int:
    b = fmt.bank_size
    if macs % b or not 1 <= macs // b <= 256:
        raise ValueError(f"{spec!r}: bank size {b} does not divide {macs} MACs/cycle into "
                         f"1..256 rows; pick --macs as a multiple of {b}")
    return macs // b
