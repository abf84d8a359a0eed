"""``python -m sqhw.host --port sim`` and ``--build DIR``.

The simulated board is the real Verilator model of the board's core and UART link
(:mod:`sqhw.sim.board`), one small configuration: the ``make fpga`` one (one row, k_max 32),
compiled once (about a minute here) and cached under ``build/board-sim/``. The bad ``--build``
folders are refused before any port opens.
"""

import json

import pytest

from sqhw.cli import STAMP, config_from_args, config_parser
from sqhw.host.cli import main
from sqhw.link import protocol as P

ARGS = ["--rows", "1", "--k-max", "32"]
CFG = config_from_args(config_parser().parse_args(ARGS))


def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_matmul_on_the_simulated_board(capsys):
    code, out, err = _run(["matmul", "--port", "sim", *ARGS, "--m", "3", "--n", "3",
                           "--seed", "7"], capsys)
    assert code == 0, err
    assert "3x32 @ 32x3: 9 results bit-exact vs hw_matmul" in out, out


def test_the_simulated_board_is_the_link_gateware():
    """Frames cross the real UART and frame checker: a bad CRC is answered ERROR(CRC) and
    counted, a host with another configuration is refused by the digest, then a job is
    exact."""
    import torch

    from sqhw.golden import hw_matmul
    from sqhw.host.driver import Device, matmul, prepare_matmul
    from sqhw.sim.board import SimBoard, build_board
    other = config_from_args(config_parser().parse_args(["--rows", "1", "--k-max", "64"]))
    with SimBoard(build_board(CFG)) as board:
        with pytest.raises(P.LinkError, match=f"runs config {CFG.digest()}"):
            Device(board, other, reply_timeout=30).check_config()
        dev = Device(board, CFG, reply_timeout=30)
        assert dev.check_config().link_errors == 0
        job = prepare_matmul(CFG, torch.randn(32, 1), torch.randn(1, 32))
        frame = bytearray(next(job.exchange()))
        frame[-1] ^= 0x40
        replies = dev.exchange(bytes(frame))
        assert [(f.type, f.payload[0]) for f in replies] == [(P.T_ERROR, P.ERR_CRC)], replies
        st = dev.status()
        assert (st.core, st.link_errors) == (0, 1), st
        g = torch.Generator().manual_seed(3)
        w, x = torch.randn(32, 2, generator=g), torch.randn(2, 32, generator=g)
        _, acc, job = matmul(dev, w, x)
        assert acc.tolist() == hw_matmul(job.x_int, job.sq, CFG.act_bits,
                                         CFG.acc_bits)[:, :2].tolist()


def _fpga_build(folder, cfg=CFG, **changes):
    """A folder as ``python -m sqhw.fpga build`` leaves it (the fields the host reads)."""
    folder.mkdir()
    rep = {"board": "ulx3s-85f", "digest": cfg.digest(), "config": cfg.to_dict(),
           "clock": {"baud": 115200, "divisor": 434}, "link": {"timeout_bits": 2048},
           "verdict": "fits and meets timing", "bitstream": "top.bit"}
    rep.update(changes)
    (folder / "report.json").write_text(json.dumps(rep, indent=2) + "\n")
    (folder / STAMP).write_text("fpga\n")
    return folder


def test_build_gives_the_configuration(tmp_path, capsys):
    # Without --build the host's defaults (--k-max 1024) are not this board's.
    build = _fpga_build(tmp_path / "b")
    code, out, err = _run(["status", "--port", "sim", "--build", str(build)], capsys)
    assert code == 0, err
    assert f"config {CFG.digest()}" in out, out
    code, _, err = _run(["status", "--port", "sim", "--build", str(build), "--k-max", "64"],
                        capsys)
    assert code == 2 and "--build gives the configuration; drop --k-max" in err, err


def _bad(tmp_path, case):
    d = tmp_path / case
    if case == "missing":
        return d, "no such folder"
    if case == "file":
        d.write_text("x")
        return d, "is not a folder"
    if case == "empty":
        d.mkdir()
        return d, "is not a bitstream build (no report.json)"
    if case == "gen-output":
        d.mkdir()
        (d / STAMP).write_text("gen\n")
        (d / "config.json").write_text(json.dumps({"config": CFG.to_dict()}))
        return d, "is an output of python -m sqhw.gen, not a bitstream build"
    if case == "not-json":
        _fpga_build(d)
        (d / "report.json").write_text('{"board": "ulx3s-85f", "conf')
        return d, "report.json is corrupted (not JSON"
    if case == "no-config":
        _fpga_build(d)
        rep = json.loads((d / "report.json").read_text())
        del rep["config"]
        (d / "report.json").write_text(json.dumps(rep))
        return d, "report.json is corrupted (no 'config')"
    if case == "bad-config":
        _fpga_build(d, config={**CFG.to_dict(), "rows": 0})
        return d, "report.json is corrupted (rows must be"
    if case == "digest-mismatch":
        _fpga_build(d, digest="0123456789ab")
        return d, "not the recorded 0123456789ab"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing", "file", "empty", "gen-output", "not-json",
                                  "no-config", "bad-config", "digest-mismatch"])
def test_bad_build_folder_is_one_line(tmp_path, capsys, case):
    folder, says = _bad(tmp_path, case)
    # The port does not exist: reaching it would give "cannot open" and exit 1.
    code, out, err = _run(["status", "--port", "/nonexistent/tty", "--build", str(folder)],
                          capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], err
    assert "Traceback" not in err and out == ""


def test_rows_or_build_required(capsys):
    code, _, err = _run(["status", "--port", "/nonexistent/tty"], capsys)
    assert code == 2 and "give --rows" in err, err
