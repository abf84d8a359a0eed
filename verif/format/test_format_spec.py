"""SQFormat / HWConfig: validation messages, derived values, digests, accumulator bound.

Expected values are hand-derived from docs/datasheet.md §1, §2, §4 and §6 (the arithmetic
is written out next to each literal) or computed by brute force.
"""

import itertools
import json
import math
import re

import pytest
import torch

from sqhw.format import HWConfig, SQFormat, accumulator_bound

# -- SQFormat validation ---------------------------------------------------------------------

# (kwargs, exception, substrings the message must contain: field, accepted range, bad value)
BAD_FORMATS = [
    ({"bank_size": 12}, ValueError, ["bank_size", "power of two", "4..128", "12"]),
    ({"bank_size": 2}, ValueError, ["bank_size", "4..128", "2"]),
    ({"bank_size": 256}, ValueError, ["bank_size", "4..128", "256"]),
    ({"bank_size": 0}, ValueError, ["bank_size", "4..128"]),
    ({"bank_size": 16.0}, TypeError, ["bank_size", "integer"]),
    ({"bank_size": True}, TypeError, ["bank_size", "integer"]),
    # (1 - 0.8) * 16 = 3.2 high elements: not an integer
    ({"sparsity": 0.8}, ValueError, ["sparsity", "non-integer", "3.2", "1/16"]),
    ({"bank_size": 8, "sparsity": 0.9}, ValueError, ["sparsity", "1/8"]),
    ({"sparsity": 0.0}, ValueError, ["sparsity", "(0, 1]"]),
    ({"sparsity": -0.5}, ValueError, ["sparsity", "(0, 1]"]),
    ({"sparsity": 1.5}, ValueError, ["sparsity", "(0, 1]"]),
    ({"sparsity": float("nan")}, ValueError, ["sparsity", "(0, 1]"]),
    ({"sparsity": "0.5"}, TypeError, ["sparsity", "number"]),
    ({"high_bits": 1}, ValueError, ["high_bits", "2..8", "1"]),
    ({"high_bits": 9}, ValueError, ["high_bits", "2..8", "9"]),
    ({"high_bits": 8.0}, TypeError, ["high_bits", "integer"]),
    ({"low_bits": 1}, ValueError, ["low_bits", "0 or in 2..8", "1"]),
    ({"low_bits": 9, "sparsity": 1.0}, ValueError, ["low_bits", "0 or in 2..8", "9"]),
    ({"low_bits": -1}, ValueError, ["low_bits", "0 or in 2..8"]),
    ({"low_bits": None}, TypeError, ["low_bits", "integer"]),
    # k = 2 > 0: low must be narrower than high
    ({"low_bits": 8, "high_bits": 8}, ValueError, ["low_bits", "less than high_bits", "(8)"]),
    ({"low_bits": 4, "high_bits": 4}, ValueError, ["low_bits", "less than high_bits", "(4)"]),
    ({"low_bits": 6, "high_bits": 4}, ValueError, ["low_bits", "high_bits"]),
    ({"sparsity": 1.0, "low_bits": 0}, ValueError, ["low_bits", "2..8"]),
    ({"scale_bits": 1}, ValueError, ["scale_bits", "2..16", "1"]),
    ({"scale_bits": 17}, ValueError, ["scale_bits", "2..16", "17"]),
    ({"scale_bits": "8"}, TypeError, ["scale_bits", "integer"]),
]


@pytest.mark.parametrize("kwargs,exc,needles", BAD_FORMATS,
                         ids=[repr(k) for k, _, _ in BAD_FORMATS])
def test_sqformat_rejects(kwargs, exc, needles):
    with pytest.raises(exc) as info:
        SQFormat(**kwargs)
    msg = str(info.value)
    for needle in needles:
        assert needle in msg, (needle, msg)


@pytest.mark.parametrize("b", [4, 8, 16, 32, 64, 128])
def test_sqformat_accepts_every_bank_and_k(b):
    for k in range(b):
        fmt = SQFormat(bank_size=b, sparsity=1 - k / b, high_bits=8,
                       low_bits=4 if k else 8)
        assert fmt.k == k
    for bad in (b - 1, b + 1, 3 * b // 2 if b > 4 else 6):
        if bad & (bad - 1):
            with pytest.raises(ValueError, match="bank_size"):
                SQFormat(bank_size=bad)


def test_k_equal_zero_allows_low_not_less_than_high():
    # With no high elements the low/high order is irrelevant: W8A8 is l = 8, s = 1.
    fmt = SQFormat(sparsity=1.0, high_bits=4, low_bits=8)
    assert fmt.k == 0 and fmt.name == "INT8"


# -- SQFormat derived values -----------------------------------------------------------------

@pytest.mark.parametrize("kwargs,k,vmask,low_max,high_max,low_width", [
    ({}, 2, -8, 7, 127, 4),                                            # B16-(8/4)-0.875
    ({"bank_size": 4, "sparsity": 0.5, "low_bits": 0}, 2, -1, 0, 127, 1),  # 2:4
    ({"sparsity": 1.0, "low_bits": 8}, 0, -128, 127, 127, 8),          # INT8 dense
    ({"bank_size": 8, "sparsity": 0.75, "high_bits": 4, "low_bits": 2}, 2, -2, 1, 7, 2),
    ({"bank_size": 32, "sparsity": 0.5, "high_bits": 8, "low_bits": 3}, 16, -4, 3, 127, 3),
    ({"bank_size": 128, "sparsity": 1 - 1 / 128}, 1, -8, 7, 127, 4),
])
def test_derived_codes(kwargs, k, vmask, low_max, high_max, low_width):
    fmt = SQFormat(**kwargs)
    assert (fmt.k, fmt.vmask, fmt.low_max, fmt.high_max, fmt.low_width) == \
        (k, vmask, low_max, high_max, low_width)


@pytest.mark.parametrize("s,bits", [(0.5, 6.0), (0.75, 5.0), (0.875, 4.5), (1.0, 4.0)])
def test_equivalent_bits(s, bits):
    # (1-s)·8 + s·4: 0.5 → 4+2, 0.75 → 2+3, 0.875 → 1+3.5, 1 → 4
    assert SQFormat(bank_size=16, sparsity=s, high_bits=8, low_bits=4).equivalent_bits == bits


@pytest.mark.parametrize("fmt,name", [
    (SQFormat(), "B16-(8/4)-0.875"),
    (SQFormat(bank_size=16, sparsity=0.75), "B16-(8/4)-0.75"),
    (SQFormat(bank_size=64, sparsity=0.5, low_bits=2), "B64-(8/2)-0.5"),
    (SQFormat.dense(4), "INT4"),
    (SQFormat.dense(8), "INT8"),
    (SQFormat.two_four(), "2:4-INT8"),
    (SQFormat.two_four(bits=4), "2:4-INT4"),
])
def test_name(fmt, name):
    assert fmt.name == name
    assert SQFormat.parse(name) == fmt


def _every_format(scale_bits=(8,)):
    """Every valid SQFormat over bank sizes, k, element widths and the given scale widths."""
    for b in (4, 8, 16, 32, 64, 128):
        for k, h, lo, sb in itertools.product(range(b + 1), range(2, 9), (0, *range(2, 9)),
                                              scale_bits):
            try:
                yield SQFormat(bank_size=b, sparsity=1 - k / b, high_bits=h, low_bits=lo,
                               scale_bits=sb)
            except ValueError:
                pass


def test_parse_inverts_name_exhaustively():
    """``parse(f.name) == f`` for every format whose name is unambiguous (scale_bits 8; a
    dense format only as ``SQFormat.dense``): 128 banks with k = 1 included, whose sparsity
    the name rounds to six digits (0.992188)."""
    seen = 0
    names = set()
    for f in _every_format():
        if f.k == 0 and f != SQFormat.dense(f.low_bits):
            continue        # the name drops a dense format's bank size and high_bits
        assert SQFormat.parse(f.name) == f, f
        names.add(f.name)
        seen += 1
    assert seen > 6000 and len(names) == seen        # unambiguous: one format per name
    assert SQFormat.parse("B128-(8/4)-0.992188").k == 1


def test_parse_of_an_ambiguous_name_keeps_the_name():
    """Formats whose name drops a field parse to the default of that field, same name."""
    for f in _every_format(scale_bits=(4, 16)):
        g = SQFormat.parse(f.name)
        assert g.name == f.name and g.scale_bits == 8, f
    assert SQFormat.parse(SQFormat.dense(3, bank_size=64).name) == SQFormat.dense(3)


@pytest.mark.parametrize("text, fmt", [
    ("B16-(8/4)-0.50", SQFormat(sparsity=0.5)),
    ("B16-(8/4)-.5", SQFormat(sparsity=0.5)),
    ("B16-(8/4)-1", SQFormat.dense(4)),
    ("B4-(8/0)-0.5", SQFormat.two_four()),
    ("b16-(8/4)-0.875", SQFormat()),
    ("int8", SQFormat.dense(8)),
    ("2:4-int8", SQFormat.two_four()),
])
def test_parse_other_spellings(text, fmt):
    assert SQFormat.parse(text) == fmt


@pytest.mark.parametrize("text, needles", [
    ("X8A8", ["unknown format name", "B<b>-(<h>/<l>)-<s>", "INT<l>", "2:4-INT<h>"]),
    ("W8A8", ["unknown format name"]),
    ("B16-(8/4)-", ["unknown format name"]),
    (" B16-(8/4)-0.875", ["unknown format name"]),
    ("B12-(8/4)-0.5", ["'B12-(8/4)-0.5'", "bank_size", "power of two"]),
    ("B16-(8/4)-0.8", ["sparsity", "non-integer"]),
    ("B128-(8/4)-0.99", ["sparsity", "non-integer"]),
    ("B16-(4/8)-0.5", ["low_bits", "less than high_bits"]),
    ("B16-(8/4)-1.5", ["sparsity", "(0, 1]"]),
    ("B16-(8/4)-1.2.3", ["unknown format name"]),
    ("INT1", ["low_bits"]),
    ("2:4-INT9", ["high_bits", "2..8"]),
])
def test_parse_rejects(text, needles):
    with pytest.raises(ValueError) as e:
        SQFormat.parse(text)
    msg = str(e.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, (n, msg)


def test_parse_rejects_non_strings():
    with pytest.raises(TypeError, match="must be a string"):
        SQFormat.parse(None)


@pytest.mark.parametrize("fmt,bits,nbytes", [
    (SQFormat(), 96, 12),                          # 16·4 + 2·8 + 8 + 8
    (SQFormat(sparsity=0.75), 112, 14),            # 16·4 + 4·8 + 8 + 8
    (SQFormat.dense(4), 72, 9),                    # 16·4 + 8 (no high, no scale_high)
    (SQFormat.two_four(), 28, 4),                  # 4·1 + 2·8 + 8 (no scale_low)
    (SQFormat(bank_size=4, sparsity=0.75, high_bits=3, low_bits=2, scale_bits=3), 17, 3),
    (SQFormat(bank_size=128, sparsity=0.5, high_bits=8, low_bits=7, scale_bits=16),
     128 * 7 + 64 * 8 + 32, 180),               # 1440 bits = 180 bytes
])
def test_record_bits(fmt, bits, nbytes):
    assert (fmt.record_bits, fmt.record_bytes) == (bits, nbytes)


def test_baseline_constructors():
    d = SQFormat.dense(3, bank_size=32, scale_bits=5)
    assert (d.k, d.low_bits, d.bank_size, d.scale_bits, d.sparsity) == (0, 3, 32, 5, 1.0)
    t = SQFormat.two_four(bits=6, scale_bits=4)
    assert (t.k, t.low_bits, t.high_bits, t.bank_size, t.scale_bits) == (2, 0, 6, 4, 4)
    assert not t.has_low_scale and t.has_high and d.has_low_scale and not d.has_high


def test_frozen():
    with pytest.raises(AttributeError):
        SQFormat().bank_size = 8
    with pytest.raises(AttributeError):
        HWConfig().rows = 4


# -- digests -----------------------------------------------------------------------------------

def test_default_digest_pinned():
    # Regression pin: these digests name the rtl_out/ folders and the frozen golden vectors.
    # A change here means every output name changes; update deliberately, never casually.
    assert HWConfig().digest() == "4423477a1d66"
    assert SQFormat().digest() == "951cef795bb4"


def test_digest_equal_configs():
    assert SQFormat().digest() == SQFormat(16, 0.875, 8, 4, 8).digest()
    # sparsity is normalised: 0.875 and 1 - 2/16 (and an int 1 vs 1.0) are the same format
    assert SQFormat(sparsity=1 - 2 / 16) == SQFormat(sparsity=0.875)
    assert SQFormat(sparsity=1 - 2 / 16).digest() == SQFormat(sparsity=0.875).digest()
    assert SQFormat(sparsity=1, low_bits=4).digest() == SQFormat(sparsity=1.0).digest()
    assert HWConfig(fmt=SQFormat()).digest() == HWConfig().digest()
    assert re.fullmatch(r"[0-9a-f]{12}", HWConfig().digest())


def test_digest_changes_with_every_field():
    base = HWConfig()
    variants = [
        HWConfig(fmt=SQFormat(bank_size=32, sparsity=1 - 2 / 32)),
        HWConfig(fmt=SQFormat(sparsity=0.75)),
        HWConfig(fmt=SQFormat(high_bits=7)),
        HWConfig(fmt=SQFormat(low_bits=3)),
        HWConfig(fmt=SQFormat(scale_bits=7)),
        HWConfig(rows=8),
        HWConfig(act_bits=7),
        HWConfig(k_max=512),
        HWConfig(acc_bits=40),
    ]
    digests = {base.digest()} | {v.digest() for v in variants}
    assert len(digests) == len(variants) + 1
    fmts = [v.fmt for v in variants[:5]]
    assert len({SQFormat().digest()} | {f.digest() for f in fmts}) == 6


def test_hwconfig_dict_round_trip():
    cfg = HWConfig(fmt=SQFormat(bank_size=32, sparsity=0.75, high_bits=6, low_bits=3,
                                scale_bits=5), rows=4, act_bits=6, k_max=256, acc_bits=40)
    back = HWConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and back.digest() == cfg.digest()


# -- HWConfig validation -----------------------------------------------------------------------

BAD_CONFIGS = [
    ({"rows": 0}, ValueError, ["rows", "1..256", "0"]),
    ({"rows": 257}, ValueError, ["rows", "1..256", "257"]),
    ({"rows": 1.5}, TypeError, ["rows", "integer"]),
    ({"rows": True}, TypeError, ["rows", "integer"]),
    ({"act_bits": 1}, ValueError, ["act_bits", "2..8"]),
    ({"act_bits": 9}, ValueError, ["act_bits", "2..8"]),
    ({"acc_bits": 7}, ValueError, ["acc_bits", "8..64"]),
    ({"acc_bits": 65}, ValueError, ["acc_bits", "8..64"]),
    ({"k_max": 24}, ValueError, ["k_max", "multiple of bank_size 16", "24"]),
    ({"k_max": 8}, ValueError, ["k_max", "16..65536", "8"]),
    ({"k_max": 65536 + 16}, ValueError, ["k_max", "16..65536"]),
    ({"k_max": 1024.0}, TypeError, ["k_max", "integer"]),
    ({"fmt": "B16-(8/4)-0.875"}, TypeError, ["fmt", "SQFormat"]),
]


@pytest.mark.parametrize("kwargs,exc,needles", BAD_CONFIGS,
                         ids=[repr(k) for k, _, _ in BAD_CONFIGS])
def test_hwconfig_rejects(kwargs, exc, needles):
    with pytest.raises(exc) as info:
        HWConfig(**kwargs)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


def test_hwconfig_derived():
    cfg = HWConfig()
    assert cfg.nb_max == 1024 // 16
    assert cfg.act_data_bits == 128            # 16 activations x 8 bits
    assert cfg.result_data_bits == 16 * 32
    assert cfg.weight_data_bits == 96
    # act bank of 4 x 3-bit activations = 12 bits -> 2 bytes
    small = HWConfig(fmt=SQFormat(bank_size=4, sparsity=0.5, low_bits=0), rows=3,
                     act_bits=3, k_max=64, acc_bits=24)
    assert (small.act_data_bits, small.result_data_bits) == (16, 72)   # 3x24 = 72 bits


@pytest.mark.parametrize("acc_bits", [30, 26, 24, 8])
def test_overflow_message_suggests_a_working_fix(acc_bits):
    with pytest.raises(ValueError) as info:
        HWConfig(acc_bits=acc_bits)
    msg = str(info.value)
    assert "k_max 1024" in msg and f"{acc_bits}-bit accumulator" in msg
    need = int(re.search(r"acc_bits >= (\d+)", msg).group(1))
    # bound 739_491_840 (see test_accumulator_bound_literals) has 30 bits: needs 31 signed
    assert need == 31
    HWConfig(acc_bits=need)
    with pytest.raises(ValueError):
        HWConfig(acc_bits=need - 1)
    m = re.search(r"k_max <= (\d+)", msg)
    per_bank = 739_491_840 // 64
    fits = ((1 << (acc_bits - 1)) - 1) // per_bank
    if fits:
        assert m, msg
        fit = int(m.group(1))
        assert fit == fits * 16
        HWConfig(acc_bits=acc_bits, k_max=fit)          # the suggestion works ...
        with pytest.raises(ValueError):                  # ... and is the largest that does
            HWConfig(acc_bits=acc_bits, k_max=fit + 16)
    else:
        # not even one bank fits: suggesting "k_max <= 0" would be no fix at all
        assert m is None, msg


# -- accumulator bound -------------------------------------------------------------------------

def test_accumulator_bound_literals():
    # default: 255 · 128 · (14·7 + 2·128) = 11_554_560 per bank, 64 banks
    assert accumulator_bound(SQFormat(), 8, 1024) == 739_491_840
    assert HWConfig().acc_bound == 739_491_840
    # 2:4 INT8: 255 · 128 · (2·0 + 2·128) = 8_355_840 per bank, K = 16 → 4 banks
    assert accumulator_bound(SQFormat.two_four(), 8, 16) == 33_423_360
    # dense INT8: 255 · 128 · 16·127 = 66_324_480 per bank
    assert accumulator_bound(SQFormat.dense(8), 8, 16) == 66_324_480
    # act_bits 4: |a| ≤ 8
    assert accumulator_bound(SQFormat(), 4, 16) == 255 * 8 * 354


def _brute_force_bank_max(fmt: SQFormat, act_bits: int, high_codes) -> int:
    """max |partial| of one bank over every record and every activation vector."""
    b, k = fmt.bank_size, fmt.k
    lows = range(-fmt.low_max, fmt.low_max + 1)
    scales = range(fmt.scale_max + 1)
    weights = []
    for pos in itertools.combinations(range(b), k):
        rest = [i for i in range(b) if i not in pos]
        for lv in itertools.product(lows, repeat=b - k):
            for hv in itertools.product(high_codes, repeat=k):
                for sl in scales if fmt.low_bits else [0]:
                    for sh in scales if k else [0]:
                        w = [0] * b
                        for i, v in zip(rest, lv, strict=True):
                            w[i] = sl * v
                        for i, v in zip(pos, hv, strict=True):
                            w[i] = sh * v
                        weights.append(w)
    a = 1 << (act_bits - 1)
    acts = torch.tensor(list(itertools.product(range(-a, a), repeat=b)), dtype=torch.int64)
    partials = acts @ torch.tensor(weights, dtype=torch.int64).T
    return int(partials.abs().max())


@pytest.mark.parametrize("fmt,act_bits", [
    (SQFormat(bank_size=4, sparsity=0.75, high_bits=3, low_bits=2, scale_bits=2), 2),
    (SQFormat(bank_size=4, sparsity=0.5, high_bits=3, low_bits=0, scale_bits=2), 3),
    (SQFormat(bank_size=4, sparsity=1.0, high_bits=2, low_bits=3, scale_bits=2), 2),
], ids=["B4-(3/2)-0.75", "2:4-INT3", "INT3"])
def test_accumulator_bound_brute_force(fmt, act_bits):
    h = fmt.high_bits
    # The bound allows the out-of-range code -2^(h-1) (datasheet §6), so it is attained
    # exactly when that code is included, ...
    worst = _brute_force_bank_max(fmt, act_bits, range(-(1 << (h - 1)), 1 << (h - 1)))
    b = fmt.bank_size
    assert accumulator_bound(fmt, act_bits, b) == worst
    assert accumulator_bound(fmt, act_bits, 3 * b) == 3 * worst
    # ... and valid codes stay below it by exactly scale_max · 2^(a-1) · k.
    valid = _brute_force_bank_max(fmt, act_bits, range(-fmt.high_max, fmt.high_max + 1))
    assert valid == worst - fmt.scale_max * (1 << (act_bits - 1)) * fmt.k


def test_accumulator_bound_fits_acc_bits_exactly():
    # The generator accepts a config iff bound ≤ 2^(acc-1) - 1: probe both sides.
    fmt = SQFormat()
    for k_max in (16, 256, 1024, 4096):
        bound = accumulator_bound(fmt, 8, k_max)
        need = math.ceil(math.log2(bound + 1)) + 1
        HWConfig(fmt=fmt, k_max=k_max, acc_bits=need)
        with pytest.raises(ValueError, match="overflow"):
            HWConfig(fmt=fmt, k_max=k_max, acc_bits=need - 1)


# -- activation mode (operand / weight_bits) ---------------------------------------------------

ACT_FMT = SQFormat(bank_size=16, sparsity=0.875, high_bits=8, low_bits=4)


def _act_cfg(**kw):
    args = dict(fmt=ACT_FMT, rows=4, act_bits=8, k_max=64, acc_bits=24, operand="activation",
                weight_bits=4)
    args.update(kw)
    return HWConfig(**args)


def test_weight_mode_dict_and_digest_unchanged_by_the_new_fields():
    # The new fields appear only in activation mode: every weight-mode digest (rtl_out/
    # folders, frozen golden vectors) is what it was.
    d = HWConfig().to_dict()
    assert "operand" not in d and "weight_bits" not in d
    assert HWConfig(operand="weight", weight_bits=8).digest() == "4423477a1d66"
    assert HWConfig.from_dict(d) == HWConfig()


def test_activation_mode_dict_round_trip_and_digest():
    cfg = _act_cfg()
    d = cfg.to_dict()
    assert d["operand"] == "activation" and d["weight_bits"] == 4
    back = HWConfig.from_dict(json.loads(json.dumps(d)))
    assert back == cfg and back.digest() == cfg.digest()
    # The digest covers the mode and the weight width.
    weight_twin = HWConfig(fmt=ACT_FMT, rows=4, act_bits=8, k_max=64, acc_bits=32)
    assert len({cfg.digest(), _act_cfg(weight_bits=8, acc_bits=32).digest(),
                weight_twin.digest()}) == 3


def test_activation_mode_bound_is_the_act_bound():
    from sqhw.format import act_accumulator_bound, act_min_acc_bits
    cfg = _act_cfg()
    assert cfg.acc_bound == act_accumulator_bound(ACT_FMT, 4, 64)
    # 4 banks · 255 · 8 · (2·128 + 14·8) = 3_003_392: 23 bits signed -> 24
    assert cfg.acc_bound == 4 * 255 * 8 * (2 * 128 + 14 * 8) == 3_002_880
    need = act_min_acc_bits(ACT_FMT, 4, 64)
    assert need == 24
    # The activation-mode row is built on the swapped row of the same accumulator.
    assert cfg.swapped_row.acc_bits == cfg.acc_bits == need
    assert cfg.swapped_row.act_bits == 4 and cfg.swapped_row.rows == 1
    with pytest.raises(ValueError, match="swapped_row is an activation-mode"):
        _ = HWConfig().swapped_row
    with pytest.raises(ValueError, match=r"acc_bits >= 23"):
        _act_cfg(acc_bits=16)
    # The weight-mode bound of the same numbers would accept a narrower accumulator in some
    # cases; activation mode must use its own (2^(l-1) low magnitudes).
    assert cfg.acc_bound > accumulator_bound(ACT_FMT, 4, 64)


def test_activation_mode_payload_widths():
    cfg = _act_cfg()
    assert cfg.weight_data_bits == 16 * 4                 # b codes of weight_bits
    assert cfg.act_data_bits == 16 * 8 + 2 * 8            # codes + scale_high + scale_low
    c8 = _act_cfg(fmt=SQFormat(bank_size=8, sparsity=0.75, high_bits=8, low_bits=2),
                  weight_bits=8, acc_bits=32)
    assert (c8.weight_data_bits, c8.act_data_bits) == (64, 80)
    # 2:4 (no low group): one scale code per beat; 4 codes of 8 bits + 8 = 40 bits
    c24 = _act_cfg(fmt=SQFormat.two_four(8), acc_bits=32)
    assert (c24.weight_data_bits, c24.act_data_bits) == (16, 40)
    # weight mode unchanged
    assert HWConfig().weight_data_bits == 96 and HWConfig().act_data_bits == 128


ACT_BAD = [
    ({"operand": "activations"}, ValueError, ["operand", "'weight' or 'activation'"]),
    ({"operand": None}, ValueError, ["operand"]),
    ({"weight_bits": 6}, ValueError, ["weight_bits", "4 or 8", "6"]),
    ({"weight_bits": 4.0}, TypeError, ["weight_bits", "integer"]),
    ({"act_bits": 6}, ValueError, ["act_bits", "at least 8", "act_bits >= 8"]),
]


@pytest.mark.parametrize("kwargs,exc,needles", ACT_BAD, ids=[repr(k) for k, _, _ in ACT_BAD])
def test_activation_mode_rejects(kwargs, exc, needles):
    with pytest.raises(exc) as info:
        _act_cfg(**kwargs)
    msg = str(info.value)
    for needle in needles:
        assert needle in msg, (needle, msg)
    assert msg.count(".") <= 2 and "\n" not in msg


def test_weight_bits_only_in_activation_mode():
    with pytest.raises(ValueError, match="weight_bits applies to operand 'activation' only"):
        HWConfig(weight_bits=4)
    # act_bits narrower than the widest code is fine when the format's codes fit.
    _act_cfg(fmt=SQFormat(bank_size=8, sparsity=0.75, high_bits=4, low_bits=2), act_bits=4)
