"""Pure-Python checks of the host-link protocol (no simulator): CRC, framing, chunking."""

import random

import pytest

from sqhw.format import HWConfig, SQFormat
from sqhw.link import protocol as P


def test_crc_is_ibm_3740():
    # The catalogue check value of CRC-16/IBM-3740 (CCITT-FALSE).
    assert P.CRC.compute(b"123456789") == 0x29B1


def test_encode_literal():
    # SYNC, type, LEN (LE), payload, CRC (LE) over type+LEN+payload.
    frame = P.encode(P.T_STATUS)
    assert frame[:4] == bytes([0xA5, 0x03, 0x00, 0x00])
    assert int.from_bytes(frame[4:], "little") == P.CRC.compute(b"\x03\x00\x00")


def test_decoder_roundtrip_and_resync():
    rng = random.Random(1)
    frames = [P.encode(rng.choice(P.DEVICE_TYPES), rng.randbytes(rng.randint(0, 40)))
              for _ in range(50)]
    stream = b"\x00\xa5garbage" + b"".join(frames)
    d = P.Decoder(types=P.DEVICE_TYPES)
    got = []
    for i in range(0, len(stream), 7):
        got += d.feed(stream[i:i + 7])
    assert [P.encode(f.type, f.payload) for f in got] == frames
    bad = bytearray(frames[0])
    bad[-1] ^= 1
    d = P.Decoder()
    assert d.feed(bytes(bad) + frames[1]) == [P.Frame(frames[1][1], frames[1][4:-2])]
    assert d.bad_frames == 1


def test_weight_frames_flags_and_chunks():
    cfg = HWConfig(fmt=SQFormat(), rows=3, k_max=64)
    rb = cfg.fmt.record_bytes
    tile = bytes(range(256))[:3 * 2 * rb]
    frames = P.weight_frames(cfg, tile, nb=2, max_payload=2 * (1 + rb))
    assert len(frames) == 3
    beats = []
    for f in frames:
        (fr,) = P.Decoder().feed(f)
        assert fr.type == P.T_WEIGHTS
        beats += [fr.payload[i:i + 1 + rb] for i in range(0, len(fr.payload), 1 + rb)]
    assert [b[0] for b in beats] == [0, 1, 0, 1, 0, 1]
    assert b"".join(b[1:] for b in beats) == tile


def test_activation_frames_pack_bits():
    cfg = HWConfig(fmt=SQFormat(bank_size=8, sparsity=0.75), rows=1, k_max=16, act_bits=4,
                   acc_bits=32)
    (fr,) = P.Decoder().feed(P.activation_frames(cfg, [[1, -1, 2, -8, 7, 0, 0, 3] * 2])[0])
    beats = [fr.payload[i:i + 5] for i in range(0, len(fr.payload), 5)]
    assert [b[0] for b in beats] == [0, P.F_LAST | P.F_USER]
    assert beats[0][1:] == bytes([0xF1, 0x82, 0x07, 0x30])


def test_job_exchange_rejects_bad_shapes():
    cfg = HWConfig(fmt=SQFormat(), rows=2, k_max=32)
    with pytest.raises(ValueError, match="multiple of 16"):
        next(P.job_exchange(cfg, b"", [[0] * 10]))
    with pytest.raises(ValueError, match="pad N"):
        next(P.job_exchange(cfg, bytes(12 * 3), [[0] * 16]))


def test_fpga_cli_usage_errors(capsys):
    from sqhw.fpga.cli import main
    with pytest.raises(SystemExit) as e:
        main(["build", "--board", "icebreaker"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["build", "--board", "icebreaker", "--rows", "1", "--k-max", "40"])
    assert e.value.code == 2
    assert "k_max must be a multiple" in capsys.readouterr().err


def test_pll_dividers():
    from sqhw.fpga.boards import ecp5_pll, ice40_pll
    p, f = ice40_pll(12e6, 24e6)
    assert f == 24e6 and p == {"DIVR": 0, "DIVF": 63, "DIVQ": 5, "FILTER_RANGE": 1}
    p, f = ecp5_pll(25e6, 50e6)
    assert f == 50e6 and 400 <= 25 / p["CLKI_DIV"] * p["CLKFB_DIV"] * p["CLKOP_DIV"] <= 800
    with pytest.raises(ValueError, match="cannot make"):
        ice40_pll(12e6, 1e6)


@pytest.mark.parametrize("args, says", [
    (["--baud", "0"], "--baud must be a positive bit rate, not 0"),
    (["--baud", "-9600"], "--baud must be a positive bit rate, not -9600"),
    (["--freq", "0"], "it makes 3.125 to 800 MHz"),
    (["--freq", "5000"], "pick --freq in that range"),
])
def test_bad_clock_and_baud_one_line_exit_2(capsys, tmp_path, args, says):
    """A clock the PLL cannot make says which it can; a baud of 0 is a usage error, not a
    division by zero. Refused before any tool runs, nothing written."""
    from sqhw.fpga.cli import main
    with pytest.raises(SystemExit) as e:
        main(["build", "--board", "ulx3s-85f", "--rows", "1", "--k-max", "32", *args,
              "--out", str(tmp_path / "out")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and "Traceback" not in err[0]
    assert list(tmp_path.iterdir()) == []


def test_link_refuses_activation_mode(capsys, tmp_path):
    """The host link speaks weight-mode payloads only: an activation-mode core is refused
    before any tool runs, and nothing is written."""
    cfg = HWConfig(fmt=SQFormat(), rows=2, k_max=32, operand="activation", weight_bits=4,
                   acc_bits=24)
    with pytest.raises(ValueError, match="weight-mode cores only"):
        P.beat_sizes(cfg)
    from sqhw.fpga.cli import main
    out = tmp_path / "fpga"
    with pytest.raises(SystemExit) as e:
        main(["build", "--board", "icebreaker", "--rows", "1", "--k-max", "32",
              "--operand", "activation", "--weight-bits", "4", "--out", str(out)])
    assert e.value.code == 2
    assert "weight-mode cores only" in capsys.readouterr().err
    assert not out.exists()
