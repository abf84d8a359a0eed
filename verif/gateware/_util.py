"""Shared helpers of the amaranth.sim gateware tests: seeds, bit packing, simulation."""

import os
import random

from amaranth.sim import Simulator

__all__ = ["seeded_rng", "pack_fields", "unpack_fields", "run_sim"]


def seeded_rng(request, salt=0) -> random.Random:
    """A ``random.Random`` seeded from ``SQHW_SEED`` (default 1) and the test id.

    The seed is printed (pytest shows it on failure); replay a failure with
    ``SQHW_SEED=<seed> pytest <test id>``.
    """
    base = int(os.environ.get("SQHW_SEED", "1"))
    # Not hash(): str hashes are salted per process; this derivation is stable.
    seed = (base * 1_000_003 + sum(map(ord, request.node.nodeid)) * 7919 + salt) & 0xFFFF_FFFF
    print(f"random seed: SQHW_SEED={base} (derived {seed}) for {request.node.nodeid}")
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

    With ``SQHW_WAVES=1`` in the environment, a waveform named after ``vcd_name`` is written
    to the current directory.
    """
    sim = Simulator(dut)
    if clocked:
        sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    if os.environ.get("SQHW_WAVES") and vcd_name:
        with sim.write_vcd(f"{vcd_name}.vcd"):
            sim.run()
    else:
        sim.run()
