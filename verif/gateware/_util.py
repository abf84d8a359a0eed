"""Shared helpers of the amaranth.sim gateware tests: seeds, bit packing, simulation."""

import os
import random
import shlex
from pathlib import Path

from amaranth.sim import Simulator

_ROOT = Path(__file__).resolve().parents[2]

__all__ = ["base_seed", "seeded_rng", "pack_fields", "unpack_fields", "run_sim"]


_BASE_SEED: int | None = None


def base_seed() -> int:
    """The run's base seed: ``SEED`` from the environment (the same variable the cocotb
    harness reads, :func:`verif.harness.pick_seed`), else one fresh seed per process."""
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
