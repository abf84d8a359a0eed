"""Simulation throughput: sustained utilization of the 16-row array and simulated cycles/s
of the bulk-stimulus path (:mod:`sqhw.sim.bulk`) against cocotb driving every edge from Python.

One multi-tile job, ``Y[64, 128] = X[64, 1024] · W[1024, 128]`` on the default
configuration (B16-(8/4)-0.875, 16 rows, k_max 1024): 8 tiles of 16 columns, each tile's
64 tokens of 64 banks, the next tile's 1024 weight records streaming while the current one
computes. Both paths run exactly that job (same stimulus files) and both results are
checked bit-exactly against ``hw_matmul`` before any number is printed.

- utilization = cycles with an activation beat accepted / cycles from the first weight beat
  to the last result (loads and pipeline latency included), zero stalls; ideal 1.0.
- bulk cycles/s = simulated cycles / wall time of the whole ``verilator --binary`` process
  (start-up and ``$readmemh`` included), best of 5; the cocotb figure times only its
  per-cycle loop (start-up excluded), on the harness build of the same Verilog. The bulk
  row also shows cycles per CPU second of the simulator process (the machine is shared:
  wall time includes waiting for a core).
- the activation-mode array (W4A(SQ), the same format on the activations, same rows, same
  job) has no bulk testbench: its utilization is the schedule model of
  :mod:`sqhw.golden.schedule`, held cycle-exact against ``ActArray`` in ``amaranth.sim`` by
  ``verif/report``, printed against the weight mode's measured figure.
- build times are printed on their own rows (measured when each build was made; a cached
  build reports the time it took then). They are not part of any ratio.
"""

from ..format import HWConfig, act_min_acc_bits
from ..golden.schedule import Workload, schedule_cycles_for
from ..sim.bulk import BULK_DIR, build_bulk, check_results, make_job, run_bulk, run_pokes
from .core import Row

__all__ = ["run"]


def run(m: int = 64, k: int = 1024, tiles: int = 8, seed: int = 0) -> list[Row]:
    cfg = HWConfig()
    job = make_job(cfg, m, k, tiles * cfg.rows, seed)
    exe, bulk_build = build_bulk(cfg)
    runs = BULK_DIR / cfg.digest() / "runs"
    best = None
    for i in range(5):
        r = run_bulk(cfg, job, runs / f"bench-{i}", seed=seed + i, exe=exe)
        check_results(job, r)
        if best is None or r.wall < best.wall:
            best = r
    pokes = run_pokes(cfg, job, runs / "bench-pokes", seed=seed)
    check_results(job, pokes)
    shape = f"M={m} K={k} N={tiles}x{cfg.rows}"
    act = HWConfig(fmt=cfg.fmt, rows=cfg.rows, act_bits=8, k_max=cfg.k_max,
                   operand="activation", weight_bits=4,
                   acc_bits=act_min_acc_bits(cfg.fmt, 4, cfg.k_max))
    act_beats, act_cycles = schedule_cycles_for(act, Workload(m, k, tiles * cfg.rows))
    return [
        Row(f"sustained utilization, {cfg.rows} rows, {shape}, loads included "
            f"({best.summary['act_beats']} beats / {best.cycles} cycles)",
            best.utilization, 1.0, "", "ideal", target=0.95, higher=True),
        Row(f"activation-mode array utilization, W4A({cfg.fmt.name}), {cfg.rows} rows, same "
            f"job ({act_beats} beats / {act_cycles} cycles, schedule model)",
            act_beats / act_cycles, best.utilization, "", "weight mode, measured",
            higher=True),
        Row("bulk sim speed [cycles/s] (target >= 200k)", best.sim_cycles_per_s, 200e3,
            "cyc/s", "target", target=1.0, higher=True),
        Row(f"bulk sim speed, {best.summary['sim_cycles']} cycles in {best.wall:.3f} s "
            f"({best.summary['sim_cycles'] / best.cpu:.3g} per CPU-s)",
            best.sim_cycles_per_s, pokes.sim_cycles_per_s, "cyc/s",
            "cocotb per-cycle Python", higher=True),
        Row("build time, verilator --binary -O2 (not in a ratio)", bulk_build,
            pokes.summary["build_seconds"], "s", "cocotb harness build"),
    ]
