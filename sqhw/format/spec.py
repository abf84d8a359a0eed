"""Format and hardware configuration: frozen, validated, digestible."""

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field

from .pipeline import MEM_OUT_REGS, MULTS, RowPlan, packing_problem, prefix_stages, row_plan

__all__ = ["SQFormat", "HWConfig", "accumulator_bound", "min_acc_bits",
           "act_accumulator_bound", "act_min_acc_bits", "canonical_digest",
           "OPERANDS", "WEIGHT_BITS", "MULTS", "TREE_LEVELS"]

#: ``HWConfig.operand``: which operand is in SQ format (``docs/activation-mode.md``).
OPERANDS = ("weight", "activation")
#: ``HWConfig.weight_bits``: widths of the dense weights of the activation mode.
WEIGHT_BITS = (4, 8)
#: ``HWConfig.tree_levels``: accepted adder levels between two pipeline registers.
TREE_LEVELS = (1, 2, 3, 4)


def canonical_digest(obj) -> str:
    """12 hex digits of SHA-256 over the canonical JSON of ``obj``."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _check_int(name, value, lo, hi, extra=""):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}{extra}, not {value}")


@dataclass(frozen=True)
class SQFormat:
    """An SQ-format ``B-(high/low)-s``.

    Parameters
    ----------
    bank_size : int
        Elements per bank along the reduction dimension: a power of two in 4..128.
    sparsity : float
        Fraction of each bank held in low precision, in (0, 1]; ``(1-s)·b`` must be an
        integer. ``s = 1`` (k = 0) is dense low precision.
    high_bits : int
        Width of a high-precision element, 2..8; greater than ``low_bits`` when k > 0.
    low_bits : int
        Width of a low-precision element: 0 (low part absent, as in 2:4) or 2..8.
    scale_bits : int
        Width of an unsigned per-(bank, column) scale code, 2..16.

    Raises
    ------
    ValueError, TypeError
        Naming the bad field and the accepted range.
    """

    bank_size: int = 16
    sparsity: float = 0.875
    high_bits: int = 8
    low_bits: int = 4
    scale_bits: int = 8

    def __post_init__(self):
        b = self.bank_size
        if isinstance(b, bool) or not isinstance(b, int):
            raise TypeError(f"bank_size must be an integer, not {b!r}")
        if b < 4 or b > 128 or b & (b - 1):
            raise ValueError(f"bank_size must be a power of two in 4..128, not {b}")
        s = self.sparsity
        if isinstance(s, bool) or not isinstance(s, (int, float)):
            raise TypeError(f"sparsity must be a number, not {s!r}")
        if not (0.0 < s <= 1.0):
            raise ValueError(f"sparsity must be in (0, 1], not {s}")
        k_real = (1.0 - s) * b
        if abs(k_real - round(k_real)) > 1e-9:
            raise ValueError(
                f"sparsity {s} gives a non-integer number of high elements per bank "
                f"((1-s)*b = {k_real:g} for bank_size {b}); use a multiple of 1/{b}"
            )
        # Normalise the float so that equal formats compare and digest equal.
        object.__setattr__(self, "sparsity", float(1.0 - round(k_real) / b))
        _check_int("high_bits", self.high_bits, 2, 8)
        _check_int("scale_bits", self.scale_bits, 2, 16)
        if isinstance(self.low_bits, bool) or not isinstance(self.low_bits, int):
            raise TypeError(f"low_bits must be an integer, not {self.low_bits!r}")
        if not (self.low_bits == 0 or 2 <= self.low_bits <= 8):
            raise ValueError(f"low_bits must be 0 or in 2..8, not {self.low_bits}")
        if self.k > 0 and self.low_bits >= self.high_bits:
            raise ValueError(
                f"low_bits must be less than high_bits ({self.high_bits}) when the format "
                f"has high elements, not {self.low_bits}"
            )
        if self.k == 0 and self.low_bits == 0:
            raise ValueError("low_bits must be 2..8 when sparsity is 1 (dense low precision)")

    # -- derived values -------------------------------------------------------------------
    @property
    def k(self) -> int:
        """High-precision elements per bank."""
        return round((1.0 - self.sparsity) * self.bank_size)

    @property
    def low_width(self) -> int:
        """Bits of a low-code field (at least 1: with ``low_bits = 0`` it is a mask bit)."""
        return max(self.low_bits, 1)

    @property
    def vmask(self) -> int:
        """The reserved low code marking a high position: the most negative code."""
        return -(1 << (self.low_width - 1))

    @property
    def low_max(self) -> int:
        """Largest magnitude of a low value (symmetric range)."""
        return (1 << (self.low_bits - 1)) - 1 if self.low_bits else 0

    @property
    def high_max(self) -> int:
        """Largest magnitude of a high value (symmetric range)."""
        return (1 << (self.high_bits - 1)) - 1

    @property
    def scale_max(self) -> int:
        return (1 << self.scale_bits) - 1

    @property
    def equivalent_bits(self) -> float:
        """The compute mix ``(1-s)·h_high + s·h_low``."""
        return (1.0 - self.sparsity) * self.high_bits + self.sparsity * self.low_bits

    @property
    def has_low_scale(self) -> bool:
        return self.low_bits > 0

    @property
    def has_high(self) -> bool:
        return self.k > 0

    @property
    def record_bits(self) -> int:
        """Bits of one bank record in the memory image (datasheet §4), before padding."""
        return (self.bank_size * self.low_width + self.k * self.high_bits
                + self.scale_bits * (int(self.has_low_scale) + int(self.has_high)))

    @property
    def record_bytes(self) -> int:
        return (self.record_bits + 7) // 8

    @property
    def name(self) -> str:
        """``B<b>-(h/l)-s``, e.g. ``B16-(8/4)-0.875``; dense (k = 0) formats read ``INT4``,
        2:4 reads ``2:4-INT8``."""
        if self.k == 0:
            return f"INT{self.low_bits}"
        if self.low_bits == 0 and self.bank_size == 4 and self.k == 2:
            return f"2:4-INT{self.high_bits}"
        return f"B{self.bank_size}-({self.high_bits}/{self.low_bits})-{self.sparsity:g}"

    @classmethod
    def parse(cls, name: str) -> "SQFormat":
        """The format named ``name``: the inverse of :attr:`name`.

        Accepted forms, in any letter case: ``B<b>-(<h>/<l>)-<s>`` (``B16-(8/4)-0.875``),
        ``INT<l>`` (dense, as :meth:`dense`) and ``2:4-INT<h>`` (as :meth:`two_four`).

        A name does not carry ``scale_bits``, nor, for a dense format, the bank size or
        ``high_bits``: these take their defaults (8; bank size 16 and ``high_bits`` 8, as
        :meth:`dense`). So ``SQFormat.parse(f.name) == f`` for every format with
        ``scale_bits = 8`` that is not dense or is ``SQFormat.dense(l)``; for any other
        format ``SQFormat.parse(f.name).name == f.name``.

        ``s`` is read as the multiple of ``1/b`` whose ``:g`` spelling (six significant
        digits, as :attr:`name` writes it) it has, so ``B128-(8/4)-0.992188`` is ``k = 1``;
        any spelling of the same number (``0.50``, ``.5``) is accepted. The ``B`` form also
        reads a dense or 2:4 format (``B16-(8/4)-1`` is ``INT4``).

        Raises
        ------
        ValueError
            In one line: naming the accepted forms when ``name`` has none of them, or
            the field that is out of range.
        TypeError
            If ``name`` is not a string.
        """
        if not isinstance(name, str):
            raise TypeError(f"format name must be a string, not {name!r}")
        forms = "use B<b>-(<h>/<l>)-<s> (e.g. B16-(8/4)-0.875), INT<l> or 2:4-INT<h>"
        try:
            if m := re.fullmatch(r"INT(\d+)", name, re.IGNORECASE):
                return cls.dense(int(m[1]))
            if m := re.fullmatch(r"2:4-INT(\d+)", name, re.IGNORECASE):
                return cls.two_four(int(m[1]))
            if m := re.fullmatch(r"B(\d+)-\((\d+)/(\d+)\)-(\d+\.?\d*|\.\d+)", name,
                                 re.IGNORECASE):
                b, s = int(m[1]), float(m[4])
                if b > 0 and 0.0 <= s <= 1.0:
                    on_grid = 1.0 - round((1.0 - s) * b) / b
                    if f"{on_grid:g}" == f"{s:g}":
                        s = on_grid
                return cls(bank_size=b, sparsity=s, high_bits=int(m[2]), low_bits=int(m[3]))
        except ValueError as e:
            raise ValueError(f"format name {name!r}: {e}") from None
        raise ValueError(f"unknown format name {name!r}: {forms}")

    # -- constructors for the baselines --------------------------------------------------
    @classmethod
    def dense(cls, bits: int, bank_size: int = 16, scale_bits: int = 8) -> "SQFormat":
        """Dense symmetric INT``bits`` (the k = 0 family)."""
        return cls(bank_size=bank_size, sparsity=1.0, high_bits=8, low_bits=bits,
                   scale_bits=scale_bits)

    @classmethod
    def two_four(cls, bits: int = 8, scale_bits: int = 8) -> "SQFormat":
        """2:4 sparsity: two INT``bits`` values kept per bank of four."""
        return cls(bank_size=4, sparsity=0.5, high_bits=bits, low_bits=0,
                   scale_bits=scale_bits)

    def to_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        return canonical_digest({"SQFormat": self.to_dict()})


def accumulator_bound(fmt: SQFormat, act_bits: int, k_max: int) -> int:
    """Largest |accumulator| any K ≤ ``k_max`` can reach (datasheet §6)."""
    b, k = fmt.bank_size, fmt.k
    a_mag = 1 << (act_bits - 1)
    low = (b - k) * fmt.low_max
    high = k * (1 << (fmt.high_bits - 1))
    per_bank = fmt.scale_max * a_mag * (low + high)
    return (k_max // b) * per_bank


def min_acc_bits(fmt: SQFormat, act_bits: int, k_max: int, multiple: int = 8) -> int:
    """The narrowest accumulator (rounded up to ``multiple`` bits) that can never overflow."""
    need = accumulator_bound(fmt, act_bits, k_max).bit_length() + 1
    return -(-need // multiple) * multiple


def act_accumulator_bound(fmt: SQFormat, weight_bits: int, k_max: int) -> int:
    """Largest ``|y|`` for any K ≤ ``k_max`` in activation mode (``docs/activation-mode.md``
    §4), the one bound that both :class:`HWConfig` (``operand="activation"``) and the
    activation-mode row (:attr:`HWConfig.swapped_row`) size the accumulator by.

    ``per_bank = (2^sb - 1) · 2^(wb-1) · (k·2^(h-1) + (b-k)·2^(l-1))`` (the low term only
    when l > 0) and ``bound = (k_max / b) · per_bank``. Magnitudes ``2^(x-1)`` rather than
    ``2^(x-1) - 1``, so that even an unflagged out-of-range code cannot overflow.
    """
    if weight_bits not in WEIGHT_BITS:
        raise ValueError(f"weight_bits must be 4 or 8, not {weight_bits}")
    b, k = fmt.bank_size, fmt.k
    if k_max < b or k_max % b:
        raise ValueError(f"k_max must be a positive multiple of bank_size {b}, not {k_max}")
    low = (b - k) * (1 << (fmt.low_bits - 1)) if fmt.low_bits else 0
    high = k * (1 << (fmt.high_bits - 1))
    return (k_max // b) * fmt.scale_max * (1 << (weight_bits - 1)) * (low + high)


def act_min_acc_bits(fmt: SQFormat, weight_bits: int, k_max: int, multiple: int = 8) -> int:
    """Narrowest accumulator (rounded up to ``multiple`` bits) that never overflows in
    activation mode."""
    need = act_accumulator_bound(fmt, weight_bits, k_max).bit_length() + 1
    return -(-need // multiple) * multiple


@dataclass(frozen=True)
class HWConfig:
    """The whole hardware configuration: the one object every tool takes.

    Parameters
    ----------
    fmt : SQFormat
        The weight format.
    rows : int
        Output columns computed in parallel, 1..256.
    act_bits : int
        Activation width, 2..8.
    k_max : int
        Largest reduction length K of a weight tile: a multiple of the bank size, ≤ 65536.
    acc_bits : int
        Accumulator and result width, 8..64; must hold :attr:`acc_bound`
        (:func:`accumulator_bound`, or :func:`act_accumulator_bound` in activation mode).
    operand : str
        ``"weight"`` (default): the weights are in SQ format ``fmt``, the activations dense
        INT(``act_bits``). ``"activation"``: the activations are in SQ format ``fmt`` with a
        static mask (``docs/activation-mode.md``), sent as ``act_bits``-bit code fields
        (``max(h, l) ≤ act_bits``), and the weights are dense INT(``weight_bits``).
    weight_bits : int
        4 or 8: the dense weight width of the activation mode. Must stay 8 (the default) in
        weight mode, where it has no meaning.
    mults : str
        Where the row's products are built, one of :data:`~sqhw.format.pipeline.MULTS`:
        ``"lut"`` (default), ``"dsp"`` (high and scale products on DSP blocks),
        ``"dsp_all"`` (every product on a DSP block), ``"dsp_packed"`` (as ``"dsp"``, with
        the low products of two neighbouring rows packed two per DSP block; weight mode,
        ``act_bits + 2·low_bits + 1 ≤ 18``) or ``"auto"`` (the first
        ``dsp_rows`` rows as :attr:`dsp_row_mults`, the others as ``"lut"``). The same integers
        either way.
    tree_levels : int
        Adder-tree levels between two pipeline registers, 1..4 (default 1: the fastest
        clock, the longest latency).
    dsp_rows : int
        With ``mults="auto"`` (weight mode): how many rows are built on DSP blocks, 0..rows.
        Must stay 0 otherwise.

    Notes
    -----
    :meth:`to_dict` (and so :meth:`digest`) lists ``operand`` and ``weight_bits`` only in
    activation mode, and ``mults`` / ``tree_levels`` only when they differ from their
    defaults, so every digest of a configuration that could be written before those fields
    existed is unchanged.
    """

    fmt: SQFormat = field(default_factory=SQFormat)
    rows: int = 16
    act_bits: int = 8
    k_max: int = 1024
    acc_bits: int = 32
    operand: str = "weight"
    weight_bits: int = 8
    mults: str = "lut"
    tree_levels: int = 1
    dsp_rows: int = 0

    def __post_init__(self):
        if not isinstance(self.fmt, SQFormat):
            raise TypeError(f"fmt must be an SQFormat, not {self.fmt!r}")
        _check_int("rows", self.rows, 1, 256)
        _check_int("act_bits", self.act_bits, 2, 8)
        _check_int("acc_bits", self.acc_bits, 8, 64)
        if self.operand not in OPERANDS:
            raise ValueError(f"operand must be 'weight' or 'activation', not {self.operand!r}")
        if isinstance(self.weight_bits, bool) or not isinstance(self.weight_bits, int):
            raise TypeError(f"weight_bits must be an integer, not {self.weight_bits!r}")
        if self.operand == "activation":
            if self.weight_bits not in WEIGHT_BITS:
                raise ValueError(f"weight_bits must be 4 or 8, not {self.weight_bits}")
            fmt = self.fmt
            widest = max(fmt.high_bits if fmt.has_high else 0, fmt.low_bits)
            if self.act_bits < widest:
                raise ValueError(
                    f"act_bits must be at least {widest} in activation mode (the widest code "
                    f"of {fmt.name}), not {self.act_bits}; use act_bits >= {widest}")
        elif self.weight_bits != 8:
            raise ValueError(f"weight_bits applies to operand 'activation' only, not "
                             f"{self.weight_bits} with operand 'weight'; leave it at 8")
        if self.mults not in MULTS:
            raise ValueError(f"mults must be one of {', '.join(MULTS)}, not {self.mults!r}")
        _check_int("tree_levels", self.tree_levels, TREE_LEVELS[0], TREE_LEVELS[-1])
        if self.mults == "dsp_packed":
            if self.operand != "weight":
                raise ValueError("mults 'dsp_packed' applies to operand 'weight' only; use "
                                 "lut, dsp or dsp_all in activation mode")
            problem = packing_problem(self.fmt, self.act_bits)
            if problem:
                raise ValueError(f"mults 'dsp_packed' cannot pack {self.fmt.name}: {problem}; "
                                 f"use dsp or dsp_all")
        if self.mults == "auto":
            if self.operand != "weight":
                raise ValueError("mults 'auto' applies to operand 'weight' only; use lut, dsp "
                                 "or dsp_all in activation mode")
            _check_int("dsp_rows", self.dsp_rows, 0, self.rows)
        elif self.dsp_rows != 0:
            raise ValueError(f"dsp_rows applies to mults 'auto' only, not {self.dsp_rows} with "
                             f"mults {self.mults!r}; leave it at 0")
        b = self.fmt.bank_size
        _check_int("k_max", self.k_max, b, 65536)
        if self.k_max % b:
            raise ValueError(f"k_max must be a multiple of bank_size {b}, not {self.k_max}")
        bound = self.acc_bound
        if bound > (1 << (self.acc_bits - 1)) - 1:
            need = bound.bit_length() + 1
            per_bank = bound // self.nb_max
            fit = ((1 << (self.acc_bits - 1)) - 1) // per_bank * b
            # Suggest a smaller k_max only when one bank fits at all (never "k_max <= 0").
            fix = f"k_max <= {fit} or acc_bits >= {need}" if fit >= b else f"acc_bits >= {need}"
            raise ValueError(
                f"k_max {self.k_max} can overflow a {self.acc_bits}-bit accumulator "
                f"(worst case needs {need} bits); use {fix}"
            )

    @property
    def nb_max(self) -> int:
        return self.k_max // self.fmt.bank_size

    @property
    def is_act_mode(self) -> bool:
        """True in activation mode (``operand == "activation"``)."""
        return self.operand == "activation"

    @property
    def swapped_row(self) -> "HWConfig":
        """Activation mode: the configuration of the weight-mode row every activation-mode
        row is built on, with the roles swapped: the activations' format in the weight
        role, ``weight_bits`` in the activation role, one row, this accumulator. It always
        validates: this accumulator holds the activation-mode bound, which is never below
        that row's own (it counts a low code as ``2^(l-1)``, not ``2^(l-1) - 1``).

        Raises
        ------
        ValueError
            In weight mode (there is no swapped row).
        """
        if not self.is_act_mode:
            raise ValueError("swapped_row is an activation-mode configuration's; this one "
                             "is weight mode")
        return HWConfig(fmt=self.fmt, rows=1, act_bits=self.weight_bits, k_max=self.k_max,
                        acc_bits=self.acc_bits, mults=self.mults,
                        tree_levels=self.tree_levels)

    @property
    def acc_bound(self) -> int:
        if self.is_act_mode:
            return act_accumulator_bound(self.fmt, self.weight_bits, self.k_max)
        return accumulator_bound(self.fmt, self.act_bits, self.k_max)

    @property
    def act_beat_bits(self) -> int:
        """Bits of one activation beat before padding: ``b`` codes, and in activation mode
        the token's scale codes of the bank (``scale_high`` if k > 0, ``scale_low`` if
        l > 0)."""
        bits = self.fmt.bank_size * self.act_bits
        if self.is_act_mode:
            bits += self.fmt.scale_bits * (int(self.fmt.has_high) + int(self.fmt.has_low_scale))
        return bits

    @property
    def act_data_bits(self) -> int:
        return 8 * math.ceil(self.act_beat_bits / 8)

    @property
    def result_data_bits(self) -> int:
        return 8 * math.ceil(self.rows * self.acc_bits / 8)

    @property
    def weight_data_bits(self) -> int:
        """Weight-stream record width: an SQ record (weight mode) or one dense weight row
        slice of ``b`` codes of ``weight_bits`` (activation mode; the b-bit mask records
        are zero-padded to it)."""
        if self.is_act_mode:
            return 8 * math.ceil(self.fmt.bank_size * self.weight_bits / 8)
        return 8 * self.fmt.record_bytes

    # -- the pipeline (datasheet §9, §10.7) ------------------------------------------------
    @property
    def row_plan(self) -> RowPlan:
        """Stages of one row (:func:`~sqhw.format.pipeline.row_plan`); in activation mode
        the row's roles are swapped (the weights take the activation role). With
        ``mults="auto"``, the plan of the first row."""
        return self.plan_of(0)

    def row_mults(self, row: int) -> str:
        """The structure row ``row`` is built with (``"auto"`` resolved)."""
        if self.mults != "auto":
            return self.mults
        return self.dsp_row_mults if row < self.dsp_rows else "lut"

    @property
    def dsp_row_mults(self) -> str:
        """The structure of ``mults="auto"``'s DSP rows: ``"dsp_packed"`` when the low
        products pack two per DSP block (:func:`~.pipeline.packing_problem`), else
        ``"dsp_all"``."""
        if self.is_act_mode or packing_problem(self.fmt, self.act_bits):
            return "dsp_all"
        return "dsp_packed"

    @property
    def packed_rows(self) -> int:
        """Rows whose low products are packed two per DSP block (rows 0 .. n-1)."""
        return sum(self.row_mults(r) == "dsp_packed" for r in range(self.rows))

    def plan_of(self, row: int) -> RowPlan:
        """The :class:`~sqhw.format.pipeline.RowPlan` of row ``row``."""
        other = self.weight_bits if self.is_act_mode else self.act_bits
        return row_plan(self.fmt, other, self.row_mults(row), self.tree_levels)

    @property
    def row_latency(self) -> int:
        """Cycles through a row; with ``mults="auto"`` the longer of the two structures
        (the shorter rows are padded to it)."""
        return max(self.plan_of(r).latency for r in {0, self.rows - 1})

    @property
    def prefix_stages(self) -> int:
        """Register stages of the mask prefix counts (:func:`~.pipeline.prefix_stages` of
        the bank size): the weight decoder's, or in activation mode select and gather's
        and the mask check's."""
        return prefix_stages(self.fmt.bank_size)

    @property
    def latency(self) -> int:
        """Cycles from the cycle a token's last beat is accepted to the first cycle its
        result is valid, with no stall: 4 to read the weights (the registered read address,
        the block RAM, :data:`~.pipeline.MEM_OUT_REGS` output registers; activation mode
        reads the mask word in the first of them and then waits :attr:`prefix_stages`
        cycles for select and gather), the row, and the result FIFO (2)."""
        gather = self.prefix_stages if self.is_act_mode else 0
        return 2 + MEM_OUT_REGS + gather + self.row_latency + 2

    @property
    def result_fifo_depth(self) -> int:
        """Results the core can hold: the credits of its issue logic. A token is accepted
        only while a slot is free for its result, so the pipeline never stalls; ``latency
        + 3`` slots keep one result per cycle flowing when the sink is always ready."""
        return self.latency + 3

    @property
    def load_to_first(self) -> int:
        """Cycles from the cycle a tile's last weight record is accepted to the first cycle
        its first activation beat can be: the record is registered, decoded (in
        :attr:`prefix_stages` stages) and registered again, then written (weight mode); or
        registered, written and checked (the mask's popcount in :attr:`prefix_stages`
        stages), then booked (activation mode)."""
        return (2 if self.is_act_mode else 3) + self.prefix_stages

    @property
    def free_after(self) -> int:
        """Cycles from the cycle a tile's last beat is accepted to the first cycle its
        buffer accepts a weight record (activation mode reads the weight rows
        ``1 + prefix_stages`` cycles after the beat, after select and gather)."""
        return 2 + self.prefix_stages if self.is_act_mode else 1

    @property
    def tile_columns(self) -> int:
        """Weight columns of a tile: the R rows' (and the mask column in activation
        mode)."""
        return self.rows + (1 if self.is_act_mode else 0)

    @property
    def macs_per_cycle(self) -> int:
        """Multiply-accumulates per cycle at full rate: one bank per row per cycle."""
        return self.rows * self.fmt.bank_size

    @property
    def dsps(self) -> int:
        """DSP blocks of the array (one per DSP product; with ``mults="dsp_packed"`` one per
        pair of low products, and an unpaired last row uses ``b`` for its own)."""
        unpaired = self.packed_rows % 2
        return (sum(self.plan_of(r).dsps for r in range(self.rows))
                + (self.fmt.bank_size // 2 if unpaired else 0))

    def to_dict(self) -> dict:
        d = {"fmt": self.fmt.to_dict(), "rows": self.rows, "act_bits": self.act_bits,
             "k_max": self.k_max, "acc_bits": self.acc_bits}
        if self.is_act_mode:
            # Only here: weight-mode dicts (and digests) stay what they always were.
            d["operand"] = self.operand
            d["weight_bits"] = self.weight_bits
        if self.mults != "lut":
            d["mults"] = self.mults
        if self.tree_levels != 1:
            d["tree_levels"] = self.tree_levels
        if self.mults == "auto":
            d["dsp_rows"] = self.dsp_rows
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "HWConfig":
        return cls(fmt=SQFormat(**d["fmt"]), rows=d["rows"], act_bits=d["act_bits"],
                   k_max=d["k_max"], acc_bits=d["acc_bits"],
                   operand=d.get("operand", "weight"), weight_bits=d.get("weight_bits", 8),
                   mults=d.get("mults", "lut"), tree_levels=d.get("tree_levels", 1),
                   dsp_rows=d.get("dsp_rows", 0))

    def digest(self) -> str:
        return canonical_digest({"HWConfig": self.to_dict()})
