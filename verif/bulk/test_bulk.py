"""Bulk-stimulus regression of ``sqhw_top`` (``verilator --binary``, no Python per cycle).

- ``test_bulk_stalls``: a multi-tile job (N padded to a multiple of R with zero columns) with
  random source stalls and result backpressure: every result bit-exact against
  ``hw_matmul``, in order, the count exact, no error flag.
- ``test_bulk_utilization``: the same without stalls, long enough that the fixed latency is
  amortised: utilization >= 0.95, and the only cycles without an activation beat are the
  first tile's load and the pipeline latency (later loads hide behind compute). These are
  cycle counts of the RTL, not timing measurements.
- ``test_bulk_planted_failure``: the comparison must catch a wrong value, a missing beat and
  an error flag.

Replay: ``SEED=<n> .venv/bin/pytest verif/bulk/test_bulk.py`` (the seed is in every failure
message); the run folder (stimulus, ``results.txt``, ``cmd.txt`` to rerun the simulator) is
kept under ``build/bulk/<digest>/runs/`` when a test fails.
"""

import os
import random
import shutil

import pytest

from sqhw.format.spec import HWConfig, SQFormat
from sqhw.sim.bulk import BULK_DIR, build_bulk, check_results, make_job, run_bulk
from sqhw.sim.harness import pick_seed

CONFIGS = {
    # b = 8, k = 2, 4 rows: nb up to 8.
    "r4-b8-k2": HWConfig(fmt=SQFormat(bank_size=8, sparsity=0.75, high_bits=8, low_bits=4),
                         rows=4, k_max=64),
    # Odd widths: 3 rows of a 24-bit accumulator (72-bit result beat), 4-bit activations
    # (32-bit activation beat), 6/3-bit elements, 4-bit scales (44-bit records).
    "r3-b8-a4-acc24": HWConfig(fmt=SQFormat(bank_size=8, sparsity=0.75, high_bits=6,
                                            low_bits=3, scale_bits=4),
                               rows=3, act_bits=4, k_max=32, acc_bits=24),
}


def _run_dir(name: str):
    return BULK_DIR / "runs" / f"{name}-{os.getpid()}"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_bulk_stalls(name):
    cfg = CONFIGS[name]
    seed = pick_seed()
    rng = random.Random(seed)
    b = cfg.fmt.bank_size
    k = b * rng.randint(1, cfg.nb_max)
    n = cfg.rows * rng.randint(3, 5) - rng.randint(0, cfg.rows - 1)   # often padded
    job = make_job(cfg, rng.randint(3, 12), k, n, seed)
    run_dir = _run_dir(f"stalls-{name}")
    for i, (p_w, p_a, p_r) in enumerate([(0.3, 0.3, 0.5), (0.6, 0.1, 0.1),
                                         (0.05, 0.6, 0.3)]):
        run = run_bulk(cfg, job, run_dir / str(i), seed=seed + i, p_w=p_w, p_a=p_a, p_r=p_r)
        assert check_results(job, run) == job.tiles * job.m
        assert run.summary["act_beats"] == job.act_beats
        assert run.summary["w_beats"] == job.weight_beats
        assert run.summary["extra"] == 0
    shutil.rmtree(run_dir, ignore_errors=True)


def test_bulk_utilization():
    cfg = CONFIGS["r4-b8-k2"]
    seed = pick_seed()
    nb, tiles, m = cfg.nb_max, 4, 48
    job = make_job(cfg, m, nb * cfg.fmt.bank_size, tiles * cfg.rows, seed)
    run_dir = _run_dir("utilization")
    run = run_bulk(cfg, job, run_dir, seed=seed)
    check_results(job, run)
    s = run.summary
    assert s["act_beats"] == tiles * m * nb
    first_load = cfg.rows * nb
    # Datasheet §9: the first tile's tokens can start load_to_first cycles after its last
    # record and a result appears `latency` cycles after its token; everything else is one
    # beat per cycle (the later tiles load behind the earlier ones' tokens).
    assert run.cycles == s["act_beats"] + first_load + cfg.load_to_first - 1 + cfg.latency, s
    assert run.utilization >= 0.95, s
    shutil.rmtree(run_dir, ignore_errors=True)


def test_bulk_planted_failure():
    cfg = CONFIGS["r4-b8-k2"]
    seed = pick_seed()
    job = make_job(cfg, 5, 2 * cfg.fmt.bank_size, 2 * cfg.rows, seed)
    run_dir = _run_dir("planted")
    run = run_bulk(cfg, job, run_dir, seed=seed, p_a=0.2, p_r=0.2)
    assert check_results(job, run) == 10
    want = job.expected_beats()
    bad = [list(rows) for rows in want]
    bad[7][2] += 1
    with pytest.raises(AssertionError, match=r"result 7 \(tile 1, token 2\), row 2"):
        check_results(job, run, bad)
    run.beats.pop()
    with pytest.raises(AssertionError, match="9 result beats, expected 10"):
        check_results(job, run)
    cyc, _user, last, word = run.beats[3]
    run.beats[3] = (cyc, 1, last, word)
    run.beats.append(run.beats[-1])
    with pytest.raises(AssertionError, match="result 3 .*tuser 1"):
        check_results(job, run)
    shutil.rmtree(run_dir, ignore_errors=True)


def test_bulk_build_is_cached():
    cfg = CONFIGS["r4-b8-k2"]
    exe, _ = build_bulk(cfg)
    mtime = exe.stat().st_mtime_ns
    assert build_bulk(cfg)[0].stat().st_mtime_ns == mtime
