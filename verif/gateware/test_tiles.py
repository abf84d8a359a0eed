"""The tile handshakes of datasheet §7, §9 and §10.7, cycle by cycle, in both modes.

Directed runs of ``MacArray`` and ``ActArray`` in ``amaranth.sim`` that check *when* the
ready signals are high, which the random tests only check through the results:

- ``s_axis_w_tready`` is high exactly while the buffer the next record goes into is free
  (neither loaded nor holding a record not yet written): high out of reset, through the
  first two tiles' loads, low from the cycle after the second tile's last record;
- under a result stall (``r.ready`` held low), the token with ``tuser = 1`` accepted in
  cycle ``c`` frees its buffer ``free_after`` cycles later (weight mode 1, activation mode
  2), and the next tile's first beat is accepted in cycle ``c + 1``;
- a token of the wrong length with ``tuser = 1`` frees its tile all the same.

The record and beat contents do not matter here (only the handshakes are checked), so they
are zero; in activation mode that makes each tile's mask malformed, which changes results,
not timing.
"""

import pytest
from amaranth.hdl import ClockDomain, Module

from sqhw.format import HWConfig, SQFormat, act_min_acc_bits
from sqhw.gateware.actarray import ActArray
from sqhw.gateware.array import MacArray

from ._util import run_sim

NB = 2


def _configs():
    fmt = SQFormat(8, 0.75, 8, 4)
    weight = HWConfig(fmt=fmt, rows=3, k_max=4 * 8)
    act = HWConfig(fmt=fmt, rows=3, k_max=4 * 8, operand="activation", weight_bits=4,
                   acc_bits=act_min_acc_bits(fmt, 4, 4 * 8))
    return {"weight": weight, "activation": act}


CONFIGS = _configs()


def run_handshakes(cfg, token_beats):
    """Load two tiles of ``NB`` banks, then run tile 0's tokens (``token_beats`` beats each,
    ``tuser`` on the last) and one beat of tile 1, with ``r.ready`` low throughout.

    Returns ``(w_ready, a_acc, c)``: ``w_ready[i]`` the value of ``w.ready`` in cycle i,
    ``a_acc`` the cycles in which an activation beat was accepted, ``c`` the cycle of the
    ``tuser`` beat.
    """
    dut = ActArray(cfg) if cfg.is_act_mode else MacArray(cfg)
    top = Module()
    top.domains.sync = ClockDomain("sync")
    top.submodules.dut = dut
    records = 2 * cfg.tile_columns * NB
    beats = [(j == n - 1, j == n - 1 and t == len(token_beats) - 1)
             for t, n in enumerate(token_beats) for j in range(n)]
    beats.append((False, False))          # tile 1's first beat
    assert len(token_beats) <= cfg.result_fifo_depth, "the credits would stall the tokens"
    trace = {"w_ready": [], "a_acc": [], "c": None}

    async def tb(ctx):
        ctx.set(dut.r.ready, 0)
        sent = bi = 0
        for cycle in range(records + 4 * len(beats) + 40):
            # Records column by column: `last` on the last record of each column.
            ctx.set(dut.w.valid, sent < records)
            ctx.set(dut.w.payload.last, sent % NB == NB - 1)
            # Tokens only once both tiles are in (so the tile switch is what is measured).
            a_on = sent == records and bi < len(beats)
            ctx.set(dut.a.valid, a_on)
            if a_on:
                ctx.set(dut.a.payload.last, beats[bi][0])
                ctx.set(dut.a.payload.user, beats[bi][1])
            w_ready = ctx.get(dut.w.ready)
            trace["w_ready"].append(w_ready)
            if sent < records and w_ready:
                sent += 1
            if a_on and ctx.get(dut.a.ready):
                trace["a_acc"].append(cycle)
                if beats[bi][1]:
                    trace["c"] = cycle
                bi += 1
            await ctx.tick()
        assert bi == len(beats), f"only {bi} of {len(beats)} beats accepted"

    run_sim(top, tb)
    return trace["w_ready"], trace["a_acc"], trace["c"]


@pytest.mark.parametrize("mode", list(CONFIGS))
@pytest.mark.parametrize("token_beats", [[NB, NB, NB], [NB, NB + 1]],
                         ids=["good", "wrong-length-last"])
def test_tile_switch_under_result_stall(mode, token_beats):
    cfg = CONFIGS[mode]
    w_ready, a_acc, c = run_handshakes(cfg, token_beats)
    records = 2 * cfg.tile_columns * NB
    # Both buffers free: ready in every cycle of the two loads, then low (no buffer free).
    assert all(w_ready[:records]), "s_axis_w_tready low while a buffer was free"
    assert not any(w_ready[records:c + cfg.free_after]), (
        "s_axis_w_tready high with both buffers loaded")
    # The tuser beat in cycle c frees its buffer at c + free_after, result stall or not.
    assert w_ready[c + cfg.free_after] == 1, (
        f"buffer not free {cfg.free_after} cycles after the tile's last token")
    # The next tile's first beat goes in the very next cycle.
    assert a_acc[-1] == c + 1
    # No beat of tile 0 waited either: its beats were accepted back to back.
    n = sum(token_beats)
    assert a_acc[:n] == list(range(a_acc[0], a_acc[0] + n))


@pytest.mark.parametrize("mode", list(CONFIGS))
def test_consumed_tile_is_not_run_again(mode):
    """A tile of NB banks, then a tile of one bank with one one-beat token: after that
    token the tokens must wait for a new tile, although the first tile's buffer is not yet
    free for the weight stream (activation mode frees it only after select and gather)."""
    cfg = CONFIGS[mode]
    dut = ActArray(cfg) if cfg.is_act_mode else MacArray(cfg)
    top = Module()
    top.domains.sync = ClockDomain("sync")
    top.submodules.dut = dut
    cols = cfg.tile_columns
    lasts = [j == NB - 1 for _ in range(cols) for j in range(NB)] + [True] * cols
    beats = [(j == NB - 1, j == NB - 1) for j in range(NB)] + [(True, True), (True, True)]
    accepted = []

    async def tb(ctx):
        ctx.set(dut.r.ready, 1)
        sent = bi = 0
        for cycle in range(len(lasts) + 40):
            ctx.set(dut.w.valid, sent < len(lasts))
            ctx.set(dut.w.payload.last, lasts[min(sent, len(lasts) - 1)])
            a_on = sent == len(lasts) and bi < len(beats)
            ctx.set(dut.a.valid, a_on)
            if a_on:
                ctx.set(dut.a.payload.last, beats[bi][0])
                ctx.set(dut.a.payload.user, beats[bi][1])
            if sent < len(lasts) and ctx.get(dut.w.ready):
                sent += 1
            if a_on and ctx.get(dut.a.ready):
                accepted.append(cycle)
                bi += 1
            await ctx.tick()

    run_sim(top, tb)
    # Tile 0's NB beats and tile 1's one beat go in; the extra beat has no tile to run on.
    assert len(accepted) == NB + 1, f"a beat ran on a consumed tile (cycles {accepted})"
