"""A fuzz of the configuration flags of gen, fpga build and host: any mix of flags and values
(good, out of range, wrong type, empty) ends in exit 0 or a one-line usage error (exit 2),
never a traceback, and writes nothing (``--print-config`` stops before any output; host
stops at a port that does not exist, exit 1, with one line).

``--fit`` is left out: it runs Yosys (seconds per example), and its bad values are tested
in ``verif/gen/test_fit.py``.
"""

import contextlib
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqhw.fpga.cli import main as fpga_main
from sqhw.gen.cli import main as gen_main
from sqhw.host.cli import main as host_main

VALUES = {
    "--format": ["sq", "w8a8", "W4A8", "2:4", "w6a8", "w4a4", "bogus", ""],
    "--bank-size": ["4", "16", "128", "12", "0", "-4", "x", "1e3"],
    "--sparsity": ["0.5", "0.875", "1", "0", "1.5", "0.3", "nan", "x"],
    "--high-bits": ["8", "6", "2", "9", "1", "0", "x"],
    "--low-bits": ["4", "0", "2", "8", "1", "-1"],
    "--scale-bits": ["8", "2", "16", "1", "17"],
    "--act-bits": ["8", "4", "2", "1", "9"],
    "--rows": ["1", "2", "0", "-1", "300", "x"],
    "--k-max": ["32", "64", "1024", "0", "40", "65536", "131072"],
    "--acc-bits": ["32", "24", "8", "7", "65", "x"],
    "--mults": ["lut", "dsp", "dsp_all", "auto", "DSP", "bogus"],
    "--dsp-rows": ["0", "1", "-1", "999"],
    "--tree-levels": ["1", "4", "0", "5"],
    "--operand": ["weight", "activation", "bogus"],
    "--weight-bits": ["4", "8", "6"],
}
FPGA_VALUES = {"--freq": ["50", "100", "0", "-5", "5000", "x"],
               "--baud": ["115200", "0", "-1", "3", "x"],
               "--board": ["ulx3s-85f", "icebreaker", "nope"]}


def flags(values):
    return st.lists(st.sampled_from(sorted(values)), max_size=6, unique=True).flatmap(
        lambda names: st.tuples(*(st.sampled_from(values[n]) for n in names)).map(
            lambda vals: [x for pair in zip(names, vals, strict=True) for x in pair]))


def run(main, argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


def check(code, err, allowed):
    assert code in allowed, (code, err)
    assert "Traceback" not in err, err
    if code:
        assert len(err.strip().splitlines()) == 1, err


FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(flags(VALUES))
def test_gen_flags(argv):
    code, err = run(gen_main, [*argv, "--print-config"])
    check(code, err, (0, 2))


@FUZZ
@given(flags({**VALUES, **FPGA_VALUES}))
def test_fpga_flags(argv):
    if "--board" not in argv:
        argv = ["--board", "ulx3s-85f", *argv]
    code, err = run(fpga_main, ["build", *argv, "--print-config"])
    check(code, err, (0, 2))


@FUZZ
@given(flags({k: v for k, v in VALUES.items() if k not in ("--mults", "--dsp-rows")}))
def test_host_flags(argv):
    code, err = run(host_main, ["status", "--port", "/nonexistent/tty", *argv])
    check(code, err, (1, 2))
