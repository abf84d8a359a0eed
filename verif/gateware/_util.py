"""Shared helpers of the amaranth.sim gateware tests: seeds, bit packing, simulation."""

import os
import random
import shlex
from pathlib import Path

from amaranth.lib import wiring
from amaranth.sim import Simulator

_ROOT = Path(__file__).resolve().parents[2]

__all__ = ["base_seed", "seeded_rng", "pack_fields", "unpack_fields", "run_sim",
           "drive_row"]


_BASE_SEED: int | None = None


def base_seed() -> int:
    """The run's base seed: ``SEED`` from the environment (the same variable the cocotb
    harness reads, :func:`sqhw.sim.harness.pick_seed`), else one fresh seed per process."""
    global _BASE_SEED
    if os.environ.get("SEED"):
        return int(os.environ["SEED"], 0)
    if _BASE_SEED is None:
        _BASE_SEED = random.SystemRandom().randrange(1, 2**31)
    return _BASE_SEED


def seeded_rng(request, salt=0) -> random.Random:
    """A ``random.Random`` seeded from :func:`base_seed` and the test id.

    The seed and the command that replays the test are printed (pytest shows them on
    failure): ``SEED=<seed> .venv/bin/python -m pytest '<test id>'``, run from the
    repository root (pytest node ids are relative to it).
    """
    base = base_seed()
    # Not hash(): str hashes are salted per process; this derivation is stable.
    seed = (base * 1_000_003 + sum(map(ord, request.node.nodeid)) * 7919 + salt) & 0xFFFF_FFFF
    print(f"random seed: SEED={base} (derived {seed}) for {request.node.nodeid}\n"
          f"replay: cd {shlex.quote(str(_ROOT))} && SEED={base} .venv/bin/python -m pytest "
          f"{shlex.quote(request.node.nodeid)}")
    return random.Random(seed)


def pack_fields(values, width) -> int:
    """Two's complement values → one integer, element i at bits [i·width, (i+1)·width)."""
    mask = (1 << width) - 1
    out = 0
    for i, v in enumerate(values):
        out |= (int(v) & mask) << (i * width)
    return out


def unpack_fields(word, width, count, signed=True) -> list[int]:
    """Inverse of :func:`pack_fields`."""
    mask = (1 << width) - 1
    out = []
    for i in range(count):
        u = (word >> (i * width)) & mask
        if signed and u >> (width - 1):
            u -= 1 << width
        out.append(u)
    return out


def run_sim(dut, testbench, *, clocked=True, vcd_name=None):
    """Run ``testbench`` (an ``async def tb(ctx)``) against ``dut``.

    With ``WAVES=1`` in the environment (the variable the cocotb harness reads; amaranth.sim
    writes VCD, not FST), a waveform named after ``vcd_name`` is written to the current
    directory.
    """
    sim = Simulator(dut)
    if clocked:
        sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    waves = os.environ.get("WAVES", "").strip().lower() not in ("", "0", "false", "no", "off")
    if waves and vcd_name:
        with sim.write_vcd(f"{vcd_name}.vcd"):
            sim.run()
    else:
        sim.run()


_ROW_CONTROL = ("valid", "first", "last")


def drive_row(dut, rng, M: int, nb: int, bank_values, *, stall=0.3, bubble=0.15,
              vcd_name="row"):
    """Push ``M`` tokens of ``nb`` banks through a row (``SQRow`` or ``ActRow``: ports
    ``valid``, ``first``, ``last``, data inputs, ``o_valid``, ``result``), with random idle
    cycles (probability ``stall``, then ``bubble``: the row is free-running, so both are
    cycles with ``valid = 0``), and collect the token sums.

    ``bank_values(m, j)`` gives ``{port name: int}`` for the data inputs of token m, bank j.
    On idle cycles every data input and ``first``/``last`` carry random bits, so a row that
    samples at the wrong time computes garbage.

    Returns ``(results, latencies)``: the token sums in order, and per token the cycles from
    presenting its last bank to its result.
    """
    data_ports = [name for name, member in dut.signature.members.items()
                  if member.flow == wiring.In and name not in _ROW_CONTROL]
    got, sent_at, got_at = [], [], []

    async def tb(ctx):
        queue = [(m, j) for m in range(M) for j in range(nb)]
        cycles = 0
        while len(got) < M:
            cycles += 1
            assert cycles < 20 * M * nb + 200, "row stopped producing results"
            if queue and rng.random() >= stall and rng.random() >= bubble:
                m, j = queue.pop(0)
                ctx.set(dut.valid, 1)
                ctx.set(dut.first, j == 0)
                ctx.set(dut.last, j == nb - 1)
                for name, value in bank_values(m, j).items():
                    ctx.set(_bits(getattr(dut, name)), value)
                if j == nb - 1:
                    sent_at.append(cycles)
            else:
                ctx.set(dut.valid, 0)
                ctx.set(dut.first, rng.getrandbits(1))
                ctx.set(dut.last, rng.getrandbits(1))
                for name in data_ports:
                    port = _bits(getattr(dut, name))
                    ctx.set(port, rng.getrandbits(len(port)))
            if ctx.get(dut.o_valid):
                got.append(ctx.get(dut.result))
                got_at.append(cycles)
            await ctx.tick()

    run_sim(dut, tb, vcd_name=vcd_name)
    return got, [g - s for s, g in zip(sent_at, got_at, strict=True)]


def _bits(port):
    """The raw bits of a port (a plain Signal, or the value under an ``amaranth.lib.data``
    view)."""
    return port.as_value() if hasattr(port, "as_value") else port
