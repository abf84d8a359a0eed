"""End-to-end simulation of a board: UART host link + core (``LinkTop``) in cocotb +
Verilator, driven bit by bit on ``uart_rx`` and read bit by bit on ``uart_tx``.

The board's PLL and power-on reset are replaced by the simulator's clock and ``rst``; every
other flip-flop is the one a board top contains. The frames are made and parsed by the SAME
code the host driver uses (:mod:`sqhw.link.protocol` and :mod:`sqhw.host.driver`), and the
results are checked bit-exactly against :func:`sqhw.golden.hw_matmul`.

The same module, with its pins on a pipe instead of cocotb, is the simulated board of
``python -m sqhw.host --port sim`` (:mod:`sqhw.sim.board`, ``verif/fpga/test_host_sim.py``).

Replay: ``SEED=<seed> .venv/bin/pytest verif/fpga/test_board_sim.py``; ``WAVES=1`` for FST.
"""

from pathlib import Path

import pytest

from sqhw.format import HWConfig, SQFormat, min_acc_bits

DIVISOR = 4          # clocks per UART bit: keeps the simulation short
TIMEOUT_BITS = 40    # a frame silent for 40 bit times (160 clocks) is dropped

_FMT = SQFormat()    # B16-(8/4)-0.875: b = 16, k = 2, 12-byte records
CONFIGS = {
    "r2-b16-k2": HWConfig(fmt=_FMT, rows=2, k_max=64, acc_bits=min_acc_bits(_FMT, 8, 64)),
}


def _verilog_for(cfg: HWConfig) -> Path:
    # The simulated board's Verilog (python -m sqhw.host --port sim runs the same module).
    from sqhw.sim.board import board_verilog_path
    return board_verilog_path(cfg, DIVISOR, TIMEOUT_BITS)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_board_sim(name):
    from sqhw.sim.harness import run_cocotb
    cfg = CONFIGS[name]
    run_cocotb(cfg, _verilog_for(cfg), "verif.fpga.test_board_sim", top="sqhw_link_top",
               run_name=name)


def test_link_lint():
    from sqhw.toolchain import verilator_lint
    for cfg in CONFIGS.values():
        verilator_lint(_verilog_for(cfg), "sqhw_link_top")


# -- the cocotb side ----------------------------------------------------------------------

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.queue import Queue
    from cocotb.triggers import ClockCycles, FallingEdge, with_timeout
except ImportError:  # pragma: no cover
    cocotb = None


class TB:
    """Clock, reset, a UART driver on ``uart_rx``, a UART monitor on ``uart_tx`` that
    decodes frames with :class:`sqhw.link.protocol.Decoder`."""

    def __init__(self, dut):
        from sqhw.link import protocol as P
        from sqhw.sim.harness import config_from_env
        self.dut = dut
        self.cfg = config_from_env()
        self.P = P
        self.decoder = P.Decoder(types=P.DEVICE_TYPES)
        self.frames = Queue()
        self.framing_errors = 0
        dut.uart_rx.value = 1
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        cocotb.start_soon(self._monitor())

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 5)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 5)

    async def send(self, data: bytes):
        """Drive bytes on ``uart_rx``, 8N1, LSB first, back to back."""
        for byte in data:
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                self.dut.uart_rx.value = bit
                await ClockCycles(self.dut.clk, DIVISOR)

    async def _monitor(self):
        dut = self.dut
        while True:
            await FallingEdge(dut.uart_tx)
            await ClockCycles(dut.clk, DIVISOR // 2)
            if int(dut.uart_tx.value) != 0:
                continue                       # a glitch, not a start bit
            byte = 0
            for i in range(8):
                await ClockCycles(dut.clk, DIVISOR)
                byte |= int(dut.uart_tx.value) << i
            await ClockCycles(dut.clk, DIVISOR)
            if int(dut.uart_tx.value) != 1:
                self.framing_errors += 1
            for f in self.decoder.feed(bytes([byte])):
                await self.frames.put(f)

    async def replies(self, timeout_cycles: int = 200_000):
        """Frames up to and including the reply (ACK, ERROR or STATUS) to one host frame."""
        got = []
        while True:
            f = await with_timeout(self.frames.get(), timeout_cycles * 10, "ns")
            got.append(f)
            if self.P.is_reply(f):
                return got

    async def exchange(self, frame: bytes):
        await self.send(frame)
        return await self.replies()

    async def run(self, gen):
        """Drive a :func:`sqhw.link.protocol.job_exchange`-style generator (the host
        driver's :meth:`~sqhw.host.driver.Device.run` does the same over a serial port)."""
        try:
            frame = next(gen)
            while True:
                frame = gen.send(await self.exchange(frame))
        except StopIteration as stop:
            return stop.value

    async def status(self):
        replies = await self.exchange(self.P.encode(self.P.T_STATUS))
        assert [f.type for f in replies] == [self.P.T_STATUS_REPLY], replies
        return self.P.decode_status(replies[-1])


def _random_job(cfg, rng, tiles=2):
    """A random float matrix product through the host driver's own preparation."""
    import torch

    from sqhw.host.driver import prepare_matmul
    b = cfg.fmt.bank_size
    nb = rng.randint(1, cfg.nb_max)
    M, K, N = rng.randint(1, 4), nb * b, tiles * cfg.rows - rng.randint(0, cfg.rows - 1)
    g = torch.Generator().manual_seed(rng.getrandbits(62))
    w = torch.randn(K, N, generator=g)
    x = torch.randn(M, K, generator=g)
    return prepare_matmul(cfg, w, x)


async def _run_job(tb, rng, tiles=2):
    from sqhw.golden import hw_matmul
    from sqhw.host.driver import finish_matmul
    job = _random_job(tb.cfg, rng, tiles)
    results = await tb.run(job.exchange())
    acc, y = finish_matmul(job, results)
    expect = hw_matmul(job.x_int, job.sq, tb.cfg.act_bits, tb.cfg.acc_bits)[:, :job.n]
    assert acc.tolist() == expect.tolist(), f"hardware {acc.tolist()} != golden {expect.tolist()}"
    assert y.shape == (job.x_int.shape[0], job.n)
    tb.dut._log.info("job M=%d K=%d N=%d: %d results exact", job.x_int.shape[0],
                     job.x_int.shape[1], job.n, acc.numel())
    return job


if cocotb is not None:

    @cocotb.test()
    async def test_status_and_jobs(dut):
        """STATUS reports the config digest; random jobs (several tiles, padded N) are exact."""
        import random
        tb = TB(dut)
        await tb.reset()
        st = await tb.status()
        assert st.digest == tb.cfg.digest(), (st, tb.cfg.digest())
        assert (st.core, st.link_errors) == (0, 0), st
        rng = random.Random()
        for _ in range(3):
            await _run_job(tb, rng)
        st = await tb.status()
        assert (st.core, st.link_errors) == (0, 0), st
        assert tb.framing_errors == 0 and tb.decoder.bad_frames == 0

    @cocotb.test()
    async def test_bad_crc_then_good(dut):
        """A WEIGHTS frame with a wrong CRC gets ERROR(CRC) and reaches nothing; then a good
        job is exact."""
        import random
        P = None
        tb = TB(dut)
        P = tb.P
        await tb.reset()
        rng = random.Random()
        job = _random_job(tb.cfg, rng, tiles=1)
        frame = bytearray(next(job.exchange()))
        assert frame[1] == P.T_WEIGHTS
        frame[-1] ^= 0x40
        replies = await tb.exchange(bytes(frame))
        assert [(f.type, f.payload[0]) for f in replies] == [(P.T_ERROR, P.ERR_CRC)], replies
        # A corrupted payload byte is caught the same way.
        frame = bytearray(next(job.exchange()))
        frame[6] ^= 0x01
        replies = await tb.exchange(bytes(frame))
        assert [(f.type, f.payload[0]) for f in replies] == [(P.T_ERROR, P.ERR_CRC)], replies
        st = await tb.status()
        assert st.link_errors == 2 and st.core == 0, st
        await _run_job(tb, rng)

    @cocotb.test()
    async def test_truncated_then_good(dut):
        """A frame cut short gets ERROR(TIMEOUT) after TIMEOUT_BITS bit times; an unknown
        type and a bad length get their errors; then a good job is exact."""
        import random
        tb = TB(dut)
        P = tb.P
        await tb.reset()
        rng = random.Random()
        job = _random_job(tb.cfg, rng, tiles=1)
        frame = next(job.exchange())
        cut = rng.randint(2, len(frame) - 1)
        await tb.send(frame[:cut])
        replies = await tb.replies(timeout_cycles=(TIMEOUT_BITS + 40) * DIVISOR * 2)
        assert [(f.type, f.payload[0]) for f in replies] == [(P.T_ERROR, P.ERR_TIMEOUT)], \
            (cut, replies)
        replies = await tb.exchange(P.encode(0x55, b"\x00"))
        assert [(f.type, f.payload[0]) for f in replies] == [(P.T_ERROR, P.ERR_TYPE)], replies
        # A payload that is not a whole number of beats is rejected before the core sees it.
        replies = await tb.exchange(P.encode(P.T_WEIGHTS, frame[4:-3]))
        assert [(f.type, f.payload[0]) for f in replies] == [(P.T_ERROR, P.ERR_LENGTH)], \
            replies
        st = await tb.status()
        assert st.link_errors == 3 and st.core == 0, st
        await _run_job(tb, rng)
        st = await tb.status()
        assert st.core == 0, st
