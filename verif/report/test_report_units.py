"""Pieces of ``python -m sqhw.report``: the Pareto frontier, the utilization model against
the bulk Verilator simulation, the activation-mode linear against the golden model, and
configuration parsing."""

import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sqhw.format import HWConfig, SQFormat
from sqhw.golden.schedule import timing_of
from sqhw.report import (
    Workload,
    pareto_front,
    schedule_cycles,
    schedule_cycles_for,
    schedule_utilization,
    schedule_utilization_for,
)
from sqhw.report.configs import DEFAULT_CONFIGS, SMALL_CONFIGS, parse_report_config

# -- Pareto -------------------------------------------------------------------------------


def test_pareto_front_max_min():
    # (accuracy up, area down)
    pts = [(0.99, 40.0),    # 0: best accuracy          -> front
           (0.98, 30.0),    # 1: cheaper, a bit worse   -> front
           (0.97, 35.0),    # 2: dominated by 1
           (0.70, 10.0),    # 3: cheapest               -> front
           (0.98, 30.0),    # 4: equal to 1: not dominated by it -> front
           (0.60, 10.0),    # 5: same area as 3, worse  -> dominated
           (0.99, 45.0)]    # 6: same accuracy as 0, larger -> dominated
    assert pareto_front(pts, (True, False)) == [0, 1, 3, 4]


def test_pareto_front_max_max_and_edges():
    pts = [(1.0, 1.0), (2.0, 0.5), (0.5, 2.0), (0.9, 0.9), (2.0, 2.0)]
    assert pareto_front(pts, (True, True)) == [4]
    assert pareto_front(pts, (False, False)) == [1, 2, 3]
    assert pareto_front([], (True, False)) == []
    assert pareto_front([(0.5, 3.0)], (True, False)) == [0]
    with pytest.raises(ValueError, match="point 1 has 1 values"):
        pareto_front([(1.0, 2.0), (1.0,)], (True, False))
    with pytest.raises(ValueError, match="not a finite number"):
        pareto_front([(1.0, float("nan"))], (True, False))


def test_pareto_front_random_against_brute_force():
    rng = random.Random(7)
    for _ in range(50):
        pts = [(rng.randint(0, 5) / 5, rng.randint(0, 5)) for _ in range(rng.randint(1, 12))]
        want = [i for i, (a, x) in enumerate(pts)
                if not any(b >= a and y <= x and (b, y) != (a, x) for b, y in pts)]
        assert pareto_front(pts, (True, False)) == want


# -- utilization model --------------------------------------------------------------------

def test_schedule_model_basics():
    # The bench job on the default array: 8 tiles of 4096 beats behind a 1024-cycle load.
    cfg = HWConfig()
    beats, cycles = schedule_cycles_for(cfg, Workload(64, 1024, 128))
    assert (beats, cycles) == (32768, 1024 + cfg.load_to_first - 1 + 32768 + cfg.latency)
    assert schedule_utilization_for(cfg) == 32768 / cycles
    assert schedule_utilization_for(cfg) > 0.96
    # Load-bound: R > M, so every tile waits for its weights.
    assert schedule_utilization_for(cfg, Workload(8, 1024, 128)) < 0.5
    with pytest.raises(ValueError, match="not a multiple of the bank size 64"):
        schedule_cycles(4, 64, Workload(8, 96, 8), timing=timing_of(cfg))
    with pytest.raises(ValueError, match="workload m must be a positive integer"):
        Workload(0, 64, 8)


def test_schedule_model_matches_bulk_simulation():
    """The model is cycle-exact against the bulk Verilator testbench (no stalls), for
    compute-bound and load-bound jobs and a padded last tile."""
    from sqhw.sim import bulk
    cfg = HWConfig(fmt=SQFormat(bank_size=8, sparsity=0.75, high_bits=8, low_bits=4),
                   rows=4, k_max=64)          # verif/bulk's "r4-b8-k2" build, shared
    exe, _ = bulk.build_bulk(cfg)
    run_root = bulk.BULK_DIR / "runs" / f"report-util-{random.randrange(1 << 30)}"
    for i, (m, k, n) in enumerate([(48, 64, 16), (3, 64, 13), (2, 8, 9), (6, 32, 8)]):
        job = bulk.make_job(cfg, m, k, n, seed=i)
        run = bulk.run_bulk(cfg, job, run_root / str(i), seed=i + 1, exe=exe)
        bulk.check_results(job, run)
        want = schedule_cycles_for(cfg, Workload(m, k, n))
        assert (run.summary["act_beats"], run.cycles) == want, (m, k, n, run.summary)


@pytest.mark.slow
def test_schedule_model_matches_bench_utilization():
    """The figure of ``python -m sqhw.bench sim`` (0.970, 16 rows) from the model."""
    from sqhw.sim import bulk
    cfg = HWConfig()
    job = bulk.make_job(cfg, 64, 1024, 128, 0)
    run = bulk.run_bulk(cfg, job, bulk.BULK_DIR / "runs" / "report-util-bench", seed=1)
    bulk.check_results(job, run)
    assert (run.summary["act_beats"], run.cycles) == schedule_cycles_for(cfg, Workload())


def test_schedule_model_activation_mode():
    """The activation-mode schedule: R + 1 columns per tile, buffer freed after select and
    gather (1 + 2 cycles later at b = 16), its own load-to-first and latency; the weight-mode
    results are those of the plain functions with the weight mode's parameters."""
    wcfg = HWConfig()
    acfg = HWConfig(fmt=SQFormat(16, 0.75, 8, 4), rows=16, k_max=1024, operand="activation",
                    weight_bits=4, acc_bits=32)
    assert timing_of(wcfg).extra_columns == 0 and timing_of(acfg).extra_columns == 1
    assert (timing_of(wcfg).free_after, timing_of(acfg).free_after) == (1, 4)
    assert schedule_cycles_for(wcfg, Workload()) == schedule_cycles(
        16, 16, Workload(), timing=timing_of(wcfg))
    assert schedule_utilization_for(wcfg) == schedule_utilization(
        16, 16, timing=timing_of(wcfg))
    # The bench job: 8 tiles of 4096 beats behind a (16 + 1)·64-record load.
    assert schedule_cycles_for(acfg, Workload()) == (
        32768, 17 * 64 + acfg.load_to_first - 1 + 32768 + acfg.latency)
    assert schedule_utilization_for(acfg) < schedule_utilization_for(wcfg)


def _act_job_beats(cfg, m, k, n, seed):
    """A legal activation-mode job for ``ActArray``: weight records ``(payload int)``, token
    beats ``(payload int)`` (every tile streams the same M tokens) and the expected results
    ``[M, T·R]`` of ``hw_matmul_act`` (output columns beyond N are zero padding)."""
    from sqhw.gateware.actarray import act_layout
    from sqhw.golden import hw_matmul_act, quantize_activation_sq, quantize_weight_dense
    from sqhw.golden.packing import act_token_image, act_weight_image
    fmt, R, wb = cfg.fmt, cfg.rows, cfg.weight_bits
    b, nb, tiles = fmt.bank_size, k // fmt.bank_size, -(-n // cfg.rows)
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(k, dtype=torch.bool)
    for j in range(nb):                               # exactly k high channels per bank
        for c in rng.sample(range(b), fmt.k):
            mask[j * b + c] = True
    x = torch.randn(m, k, generator=g) * torch.rand(m, k, generator=g).pow(4) * 8
    act = quantize_activation_sq(x, mask, fmt)
    w = torch.randn(k, tiles * R, generator=g)
    w[:, n:] = 0.0                                    # the padded columns of the last tile
    weight = quantize_weight_dense(w, wb)
    assert weight.codes.min() > -(1 << (wb - 1))      # no -2^(wb-1): a legal tile
    expect = hw_matmul_act(act, weight, cfg.acc_bits).tolist()
    image = act_weight_image(cfg, mask, weight.codes)
    rb, wbits = cfg.weight_data_bits // 8, cfg.weight_data_bits
    w_beats = [int.from_bytes(image[i:i + rb], "little") | (int(r % nb == nb - 1) << wbits)
               for r, i in enumerate(range(0, len(image), rb))]
    assert len(w_beats) == tiles * (R + 1) * nb
    lay = act_layout(cfg)
    fields = lay["last"].offset                       # codes + scale codes, then last, user
    lanes = cfg.act_data_bits // 8
    img = act_token_image(cfg, act.codes, act.scale_high, act.scale_low)
    tok = [[int.from_bytes(img[t, j * lanes:(j + 1) * lanes].tobytes(), "little")
            & ((1 << fields) - 1) for j in range(nb)] for t in range(m)]
    a_beats = [tok[t][j] | (int(j == nb - 1) << fields)
               | (int(j == nb - 1 and t == m - 1) << lay["user"].offset)
               for _ in range(tiles) for t in range(m) for j in range(nb)]
    return w_beats, a_beats, expect


def _run_act_array_no_stalls(cfg, w_beats, a_beats, n_results):
    """Drive ``ActArray`` in amaranth.sim with tvalid always high on both inputs (while they
    have beats) and tready always high on the results. Counted as ``verif/bulk`` counts:
    from the cycle of the first weight beat to the cycle of the last result, both included.

    Returns ``(act_beats, cycles, results)``, results as ``(user, [R sums])``."""
    from amaranth.hdl import ClockDomain, Module

    from sqhw.gateware.actarray import ActArray
    from verif.gateware._util import run_sim, unpack_fields
    dut = ActArray(cfg)
    top = Module()
    top.domains.sync = ClockDomain("sync")
    top.submodules.dut = dut
    rbits = cfg.rows * cfg.acc_bits
    out = {}

    async def tb(ctx):
        wi = ai = 0
        got, first_w, last_r = [], None, None
        cycle = 0
        ctx.set(dut.r.ready, 1)
        while len(got) < n_results:
            cycle += 1
            assert cycle < 10 * (len(w_beats) + len(a_beats)) + 100, "stuck"
            ctx.set(dut.w.valid, wi < len(w_beats))
            ctx.set(dut.w.payload.as_value(), w_beats[min(wi, len(w_beats) - 1)])
            ctx.set(dut.a.valid, ai < len(a_beats))
            ctx.set(dut.a.payload.as_value(), a_beats[min(ai, len(a_beats) - 1)])
            if wi < len(w_beats) and ctx.get(dut.w.ready):
                first_w = cycle if first_w is None else first_w
                wi += 1
            if ai < len(a_beats) and ctx.get(dut.a.ready):
                ai += 1
            if ctx.get(dut.r.valid):
                word = ctx.get(dut.r.payload.as_value())
                got.append((word >> rbits, unpack_fields(word, cfg.acc_bits, cfg.rows)))
                last_r = cycle
            await ctx.tick()
        out.update(act_beats=ai, cycles=last_r - first_w + 1, results=got)

    run_sim(top, tb, vcd_name="actarray_schedule")
    return out["act_beats"], out["cycles"], out["results"]


def _act_cfg(b, sparsity, rows, k_max):
    from sqhw.format import act_min_acc_bits
    fmt = SQFormat(b, sparsity, 8, 4)
    return HWConfig(fmt=fmt, rows=rows, k_max=k_max, operand="activation", weight_bits=4,
                    acc_bits=act_min_acc_bits(fmt, 4, k_max))


#: (config, [(M, K, N)]): compute-bound (M ≥ R·nb-ish, 3 tiles), M = R + 1 (a tile's
#: compute as long as its load: the later buffer release decides), load-bound tiny M with
#: a padded last tile (N not a multiple of R), and single-bank K.
ACT_SCHEDULE_JOBS = [
    (_act_cfg(16, 0.875, 3, 64), [(12, 64, 9), (4, 64, 12), (1, 32, 8), (5, 16, 7)]),
    (_act_cfg(8, 0.75, 2, 32), [(9, 32, 6), (3, 32, 6), (2, 8, 5)]),
]


def test_schedule_model_matches_act_array_simulation():
    """The activation-mode model is cycle-exact against ``ActArray`` in amaranth.sim (no
    stalls), and every result is the correct, non-error result."""
    free_sensitive = False
    for ci, (cfg, jobs) in enumerate(ACT_SCHEDULE_JOBS):
        for i, (m, k, n) in enumerate(jobs):
            w_beats, a_beats, expect = _act_job_beats(cfg, m, k, n, seed=100 * ci + i)
            tiles = -(-n // cfg.rows)
            beats, cycles, got = _run_act_array_no_stalls(cfg, w_beats, a_beats, tiles * m)
            want = schedule_cycles_for(cfg, Workload(m, k, n))
            assert (beats, cycles) == want, (cfg.rows, cfg.fmt.name, (m, k, n))
            R = cfg.rows
            assert got == [(0, expect[t][j * R:(j + 1) * R])
                           for j in range(tiles) for t in range(m)], (m, k, n)
            # With the weight mode's buffer release, some job must come out differently.
            early = replace(timing_of(cfg), free_after=1)
            free_sensitive |= schedule_cycles(R, cfg.fmt.bank_size, Workload(m, k, n),
                                              timing=early) != want
    assert free_sensitive, "no job where the buffer release time matters"


# -- activation mode ----------------------------------------------------------------------

def test_act_linear_is_the_golden_model():
    """ActSQLinear: mean-|x| calibration gives the same static mask as all calibration
    tokens, and its quantized pass is quantize_activation_sq → hw_matmul_act →
    descale_act (+ bias) on real tokens only."""
    from sqhw.eval.run import quantize_model  # noqa: F401 -- the eval package imports
    from sqhw.golden import (
        calibrate_activation_mask,
        descale_act,
        hw_matmul_act,
        quantize_activation_sq,
        quantize_weight_dense,
    )
    from sqhw.report.accuracy import instrument_act, quantize_act_model

    g = torch.Generator().manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(64, 24))
    ctx = instrument_act(model)
    layer = ctx.layers["0"]
    x = torch.randn(2, 5, 64, generator=g) * torch.linspace(0.1, 4.0, 64)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    ctx.set_attention_mask(mask)
    ctx.mode, ctx.calibrate = "float", True
    with torch.no_grad():
        model(x)
    ctx.calibrate = False
    fmt = SQFormat(bank_size=16, sparsity=0.75, high_bits=8, low_bits=4)
    quantize_act_model(ctx, fmt, 4)

    real = x.reshape(-1, 64)[mask.reshape(-1).bool()]
    w = layer.weight.detach().T.contiguous()
    ref_cal = calibrate_activation_mask(real, w, fmt)
    assert torch.equal(layer.act_cal.mask, ref_cal.mask)

    ctx.mode = "quant"
    ctx.reset_snr()
    with torch.no_grad():
        y = model(x).reshape(-1, 24)
    dense = quantize_weight_dense(w, 4)
    act = quantize_activation_sq(real, ref_cal.mask, fmt)
    want = descale_act(hw_matmul_act(act, dense), act, dense) + layer.bias
    assert torch.equal(y[mask.reshape(-1).bool()], want)
    assert not y[~mask.reshape(-1).bool()].any()


# -- configurations -----------------------------------------------------------------------

def test_configs_parse_and_hardware():
    for name in DEFAULT_CONFIGS + SMALL_CONFIGS:
        c = parse_report_config(name)
        assert c.hw.rows * c.hw.fmt.bank_size == 256 == c.rows * c.fmt.bank_size
        assert c.hw.is_act_mode == (c.mode == "activation")
    w8 = parse_report_config("W8A8")
    assert (w8.mode, w8.hw.rows, w8.storage_bits) == ("weight", 16, 8.5)   # 8 + 8/16 scale
    sq = parse_report_config("B64-(8/4)-0.875+gptq")
    assert sq.hw.rows == 4 and sq.equivalent_bits["weights"] == 4.5
    # 64 low codes (vmask included) + 8 high values + two 8-bit scale codes, per 64.
    assert sq.storage_bits == (64 * 4 + 8 * 8 + 16) / 64
    two4 = parse_report_config("2:4-INT8+magnitude", macs=256)
    assert two4.hw.rows == 64 and two4.storage_bits == (4 * 1 + 2 * 8 + 8) / 4
    act = parse_report_config("W4A(B16-(8/4)-0.75)")
    assert act.mode == "activation" and act.storage_bits == 4
    assert (act.hw.weight_bits, act.hw.operand, act.row_hw) == (4, "activation", None)
    assert act.rows == 16
    assert act.equivalent_bits == {"weights": 4.0, "activations": 5.0}
    assert parse_report_config("W4A4").hw.act_bits == 4


@pytest.mark.parametrize("name, macs, match", [
    ("X8A8", 256, "unknown format"),
    ("B16-(8/4)-0.875+bogus", 256, "unknown option"),
    ("W4A(B16-(8/4)-0.75)+smooth0.5", 256, "unknown option"),  # +gptq, +dynamic are options
    ("W6A(B16-(8/4)-0.75)", 256, "must be W4 or W8"),
    ("B64-(8/4)-0.875", 32, "does not divide 32 MACs/cycle"),
])
def test_configs_bad(name, macs, match):
    with pytest.raises(ValueError, match=match):
        parse_report_config(name, macs)


def test_package_imports_light():
    """Importing sqhw.report does not load torch-heavy or tool modules by itself."""
    import subprocess
    import sys
    code = ("import sys, sqhw.report; "
            "print(any(m in sys.modules for m in ('torch', 'amaranth', 'transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], check=True)
    assert out.stdout.strip() == "False"


def test_cache_key_code_ignores_documentation_only():
    """The code digest in a cache key changes with what the code computes and not with
    docstrings, comments or layout (a docstring edit once forced a 10-minute re-run)."""
    from sqhw.report.stages import _code, _sources
    base = 'def f(x):\n    """Doc."""\n    # a comment\n    return x + 1\n'
    assert _code(base) == _code("def f(x):\n    return (x +\n            1)  # other\n")
    assert _code(base) == _code('"""Module doc."""\n' + base)
    assert _code(base) != _code("def f(x):\n    return x + 2\n")
    assert _code(base) != _code("def f(y):\n    return y + 1\n")
    assert _code('def f():\n    """Only a docstring."""\n') == _code("def f():\n    pass\n")
    # A real package: stable across calls, and different packages differ.
    assert _sources("sqhw.golden") == _sources("sqhw.golden")
    assert _sources("sqhw.golden") != _sources("sqhw.eval")
    assert _sources("sqhw.golden") != _sources("sqhw.golden", extra="x = 1")


def test_pnr_slice_task_and_record():
    """``--pnr-macs``: the task places ``macs / b`` rows (its own cache key), and a record
    with a slice's Fmax gets GMAC/s/kLUT (and a note) but no full-array GMAC/s;
    a whole-array Fmax gets both."""
    from sqhw.report.assemble import config_record
    from sqhw.report.stages import pnr_task

    cfg = parse_report_config("B16-(8/4)-0.875")
    whole, part = pnr_task(cfg, Path("p"), 256), pnr_task(cfg, Path("p"), 64)
    assert whole["key"]["hw"]["rows"] == 16 and part["key"]["hw"]["rows"] == 4
    assert whole["key"]["digest"] != part["key"]["digest"]
    assert parse_report_config("B64-(8/4)-0.875").hw.rows == 4
    assert pnr_task(parse_report_config("B64-(8/4)-0.875"), Path("p"), 64)["key"]["hw"][
        "rows"] == 1

    row = {"nodsp": {"lut4": 1000, "ff": 10, "carry": 0, "lut_eq": 1000},
           "dsp": {"lut4": 500, "ff": 10, "carry": 0, "dsp": 2},
           "neutral": {"gates": 1, "dff": 1, "transistors": 1}}
    wl = Workload()
    util = schedule_utilization_for(HWConfig(), wl)

    def record(placed_macs):
        pnr = {"rows": placed_macs // 16, "macs_per_cycle": placed_macs, "fits": True,
               "fmax_mhz": 40.0}
        res = {"area": {"result": row, "cached": True}, "pnr": {"result": pnr, "cached": True}}
        return config_record(cfg, res, macs=256, workload=wl, assumed_mhz=100.0,
                             stages=("area", "pnr"))

    full, sliced = record(256), record(64)
    assert full["klut"] == sliced["klut"] == 16.0
    assert full["gmacs"] == pytest.approx(256 * 40.0 * util / 1000)
    assert full["gmacs_per_klut"] == pytest.approx(full["gmacs"] / 16.0)
    assert sliced["fmax_mhz"] == 40.0 and sliced["gmacs"] is None
    assert sliced["gmacs_per_klut"] == pytest.approx(full["gmacs_per_klut"])
    assert any("64-MAC/cycle slice (4 of the 16 rows)" in n for n in sliced["notes"])
    assert not any("slice" in n for n in full["notes"])
