"""The per-cycle-Python baseline of the bulk path: the same job, driven from cocotb.

One cocotb test, ``drive_job``, reads the stimulus files that :func:`sqhw.sim.bulk.
write_stimulus` wrote (the plusargs as JSON in ``SQHW_BULK_PLUS``) and drives ``sqhw_top``
from Python on every clock edge: set ``tdata``/``tvalid`` of both sources, sample the
readies in ``ReadOnly``, collect result beats. It writes ``results.txt`` in the wrapper's
format (so :func:`~sqhw.sim.bulk.check_results` checks it the same way) and
``pokes.json`` with the cycle count and the wall time of the loop (simulator start-up not
included). It is the baseline of ``make bench`` section ``sim``; it is not a regression test
(``verif/top/test_top.py`` is).
"""

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge


def _read_hex(path: str, count: int) -> list[int]:
    words = [int(line, 16) for line in Path(path).read_text().split()]
    return words[:count]


@cocotb.test()
async def drive_job(dut):
    """Drive one job from Python, one beat per cycle on each stream, no stalls."""
    from .harness import config_from_env
    cfg = config_from_env()
    plus = json.loads(os.environ["SQHW_BULK_PLUS"])
    ww, aw = cfg.weight_data_bits, cfg.act_data_bits
    weights = _read_hex(plus["wfile"], plus["nw"])
    acts = _read_hex(plus["afile"], plus["na_file"])    # one tile's beats, every tile
    na = plus["na"]
    nr = plus["nr"]
    limit = int(plus.get("timeout", 10_000_000))

    Clock(dut.clk, 10, unit="ns").start()
    w_data, w_valid, w_last = dut.s_axis_w_tdata, dut.s_axis_w_tvalid, dut.s_axis_w_tlast
    a_data, a_valid = dut.s_axis_a_tdata, dut.s_axis_a_tvalid
    a_last, a_user = dut.s_axis_a_tlast, dut.s_axis_a_tuser
    w_ready, a_ready = dut.s_axis_w_tready, dut.s_axis_a_tready
    r_valid, r_data, r_user, r_last = (dut.m_axis_r_tvalid, dut.m_axis_r_tdata,
                                       dut.m_axis_r_tuser, dut.m_axis_r_tlast)
    dut.rst.value = 1
    w_valid.value = 0
    a_valid.value = 0
    dut.m_axis_r_tready.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0

    wmask, amask = (1 << ww) - 1, (1 << aw) - 1
    wi = ai = 0
    w_fire = a_fire = False
    word_a = acts[0]
    beats = []
    cycle = 0
    t0 = time.perf_counter()
    while len(beats) < nr and cycle < limit:
        await RisingEdge(dut.clk)
        cycle += 1
        wi += w_fire
        if a_fire:
            ai += 1
            word_a = acts[ai % len(acts)]
        if wi < len(weights):
            word = weights[wi]
            w_data.value = word & wmask
            w_last.value = word >> ww
            w_valid.value = 1
        else:
            w_valid.value = 0
        if ai < na:
            a_data.value = word_a & amask
            a_last.value = (word_a >> aw) & 1
            a_user.value = word_a >> (aw + 1)
            a_valid.value = 1
        else:
            a_valid.value = 0
        await ReadOnly()
        w_fire = wi < len(weights) and bool(w_ready.value)
        a_fire = ai < na and bool(a_ready.value)
        if r_valid.value:
            beats.append((cycle, int(r_user.value), int(r_last.value),
                          r_data.value.to_unsigned()))
    wall = time.perf_counter() - t0
    with open(plus["rfile"], "w") as f:
        for cyc, user, last, word in beats:
            f.write(f"{cyc} {user} {last} {word:x}\n")
    Path(plus["rfile"]).with_name("pokes.json").write_text(json.dumps(
        {"cycles": cycle, "wall": wall, "results": len(beats),
         "status": dut.status.value.to_unsigned()}) + "\n")
    assert len(beats) == nr, f"{len(beats)} of {nr} results after {cycle} cycles"
