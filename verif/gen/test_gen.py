"""The generator CLI: bad input, atomic output, determinism, the committed reference, lint."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sqhw.cli import PRESETS, STAMP
from sqhw.format import HWConfig, SQFormat
from sqhw.gen import config_from_args, generate
from sqhw.gen.cli import _parser
from sqhw.toolchain import verilator_lint

REPO = Path(__file__).resolve().parents[2]


def run_gen(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sqhw.gen", *args], capture_output=True,
                          text=True, cwd=cwd)


@pytest.mark.parametrize("args, names", [
    (["--rows", "0"], "rows"),
    (["--rows", "300"], "rows"),
    (["--bank-size", "12"], "bank_size"),
    (["--bank-size", "256"], "bank_size"),
    (["--sparsity", "0.3"], "sparsity"),
    (["--sparsity", "0"], "sparsity"),
    (["--high-bits", "9"], "high_bits"),
    (["--low-bits", "1"], "low_bits"),
    (["--low-bits", "8"], "low_bits"),
    (["--act-bits", "16"], "act_bits"),
    (["--k-max", "1000"], "k_max"),
    (["--k-max", "8192", "--acc-bits", "32"], "k_max"),
    (["--k-max", "65536", "--acc-bits", "64", "--bank-size", "12"], "bank_size"),
    (["--format", "w8a8", "--sparsity", "0.5"], "--sparsity"),
    (["--format", "2:4", "--bank-size", "8"], "--bank-size"),
    (["--format", "bogus"], "--format"),
    (["--rows", "x"], "--rows"),
    (["--no-such-option"], "--no-such-option"),
    (["--operand", "bogus"], "--operand"),
    (["--operand", "activation", "--weight-bits", "6"], "--weight-bits"),
    (["--weight-bits", "4"], "--weight-bits"),
    (["--operand", "activation", "--format", "w8a8"], "--format"),
    (["--operand", "activation", "--act-bits", "6"], "act_bits"),
    (["--operand", "activation", "--k-max", "8192", "--acc-bits", "32"], "k_max"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, args, names):
    out = tmp_path / "out"
    r = run_gen(*args, "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert names in lines[0] and "error" in lines[0]
    assert r.stdout == ""
    assert list(tmp_path.iterdir()) == [], "bad input must leave nothing behind"


def test_overflow_message_says_what_to_do():
    r = run_gen("--k-max", "8192", "--acc-bits", "32", "--print-config")
    assert "use k_max <= 2960 or acc_bits >= 34" in r.stderr
    # Without --acc-bits the accumulator is sized to the bound, in whole bytes.
    r = run_gen("--k-max", "8192", "--print-config")
    assert r.returncode == 0 and json.loads(r.stdout)["config"]["acc_bits"] == 40


def test_presets():
    def cfg(*argv):
        return config_from_args(_parser().parse_args(list(argv)))
    assert cfg().fmt == SQFormat()
    assert cfg().acc_bits == 32
    w8a8 = cfg("--format", "w8a8")
    assert w8a8.fmt == SQFormat.dense(8) and w8a8.acc_bits == 40
    assert cfg("--format", "w6a8").fmt == SQFormat.dense(6)
    w4a4 = cfg("--format", "w4a4")
    assert w4a4.fmt == SQFormat.dense(4) and w4a4.act_bits == 4
    assert cfg("--format", "2:4").fmt == SQFormat.two_four(8)
    assert cfg("--format", "W8A8") == w8a8           # the report's spelling works too
    c = cfg("--rows", "4", "--bank-size", "32", "--sparsity", "0.75", "--low-bits", "3",
            "--k-max", "256", "--acc-bits", "40", "--scale-bits", "6")
    assert c == HWConfig(fmt=SQFormat(32, 0.75, 8, 3, 6), rows=4, k_max=256, acc_bits=40)


def test_presets_table_in_the_datasheet():
    """Datasheet §1's table of the --format presets is what the CLI builds."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "datasheet.md").read_text()
    start = text.index("| `--format` | b | s | h | l | k |")
    lines = text[start:].splitlines()[2:]
    rows = [line for line in lines[:lines.index("")] if line.startswith("|")]
    seen = []
    for line in rows:
        cells = [c.strip().split(" ")[0].strip("`") for c in line.strip("|").split("|")]
        name = cells[0]
        c = config_from_args(_parser().parse_args(["--format", name]))
        f = c.fmt
        want = [f.bank_size, f.sparsity, f.high_bits, f.low_bits, f.k, c.act_bits, c.acc_bits]
        assert [float(x) for x in cells[1:]] == want, line
        seen.append(name)
    assert set(seen) == set(PRESETS)


def test_outputs_and_determinism(tmp_path):
    cfg = HWConfig(rows=2, k_max=64)
    a = generate(cfg, tmp_path / "a")
    b = generate(cfg, tmp_path / "b")
    names = sorted(p.name for p in a.iterdir())
    assert names == [STAMP, "config.json", "files.f", "sqhw.core", "sqhw_top.v", "sqhw_top.vlt"]
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    meta = json.loads((a / "config.json").read_text())
    assert meta["digest"] == cfg.digest()
    assert HWConfig.from_dict(meta["config"]) == cfg
    assert (a / "files.f").read_text().split() == ["sqhw_top.v"]
    text = (a / "sqhw_top.v").read_text()
    assert "module sqhw_top(" in text
    assert str(REPO) not in text and "/home/" not in text and "/tmp/" not in text
    # Regenerating over its own earlier output replaces it whole (verif/test_output_safety.py:
    # never a folder it did not write).
    (a / "stale").write_text("x")
    generate(cfg, a)
    assert sorted(p.name for p in a.iterdir()) == names


def test_default_reference_reproduces(tmp_path):
    """The default configuration's output is pinned by the SHA-256 of each file
    (``verif/gen/rtl_reference.json``; the 6 MB Verilog itself is ``make gen`` output, not
    tracked): regenerating it must give exactly those bytes."""
    cfg = HWConfig()
    pins = json.loads((Path(__file__).with_name("rtl_reference.json")).read_text())
    assert pins["digest"] == cfg.digest(), "the default configuration's digest changed"
    new = generate(cfg, tmp_path / cfg.digest())
    got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(new.iterdir())
           if p.name != STAMP}
    assert got == pins["files"], (
        "generated files differ from verif/gen/rtl_reference.json; if the change is intended, "
        f"pin the new hashes: {json.dumps(got)}")


LINT_MATRIX = [
    HWConfig(),
    HWConfig(rows=1, fmt=SQFormat(8, 0.875, 8, 4), k_max=64),
    HWConfig(rows=4, fmt=SQFormat(32, 0.75, 8, 3), k_max=256),
    HWConfig(rows=4, fmt=SQFormat(64, 0.875, 8, 2), k_max=256),
    HWConfig(rows=1, fmt=SQFormat(8, 0.5, 4, 2), k_max=64),
    HWConfig(rows=4, fmt=SQFormat.dense(8), k_max=128),
    HWConfig(rows=4, fmt=SQFormat.two_four(8), k_max=64),
    HWConfig(rows=4, fmt=SQFormat(16, 0.9375, 8, 4), act_bits=6, k_max=128, acc_bits=40),
]


@pytest.mark.parametrize("cfg", LINT_MATRIX, ids=lambda c: f"{c.fmt.name}-r{c.rows}")
def test_verilator_lint(tmp_path, cfg):
    out = generate(cfg, tmp_path / cfg.digest())
    verilator_lint(out / "sqhw_top.v", "sqhw_top")


def test_activation_mode_options(tmp_path):
    def cfg(*argv):
        return config_from_args(_parser().parse_args(list(argv)))
    # Defaults unchanged: weight mode, and its digest stays the pinned one.
    assert cfg().operand == "weight" and cfg().digest() == HWConfig().digest()
    a = cfg("--operand", "activation", "--weight-bits", "4", "--rows", "4", "--k-max", "64")
    assert a == HWConfig(fmt=SQFormat(), rows=4, k_max=64, acc_bits=24,
                         operand="activation", weight_bits=4)
    assert cfg("--operand", "activation").weight_bits == 8
    assert cfg("--operand", "activation", "--format", "2:4").fmt == SQFormat.two_four(8)
    # The stamp: config.json carries the mode, and the digest (the folder name) covers it.
    out = generate(a, tmp_path / "act")
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["operand"] == "activation" and meta["config"]["weight_bits"] == 4
    assert meta["digest"] == a.digest() != cfg("--rows", "4", "--k-max", "64").digest()
    assert HWConfig.from_dict(meta["config"]) == a
    assert meta["name"] == "W4A(B16-(8/4)-0.875)"
    assert meta["derived"]["ports"] == {"s_axis_w_tdata": 64, "s_axis_a_tdata": 144,
                                        "m_axis_r_tdata": 96}
    r = run_gen("--operand", "activation", "--weight-bits", "4", "--rows", "2", "--k-max",
                "32", "--print-config")
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    assert printed["config"]["operand"] == "activation"
    verilator_lint(out / "sqhw_top.v", "sqhw_top")
