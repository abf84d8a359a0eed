"""``python -m sqhw.report`` end to end: a small sweep through the real model and Yosys, the
cache on a re-run, a Dask ``LocalCluster`` with worker processes, and bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: A small sweep: one SQ weight config with GPTQ (calibration), an RTN baseline and an
#: activation-mode config, on few sentences so the test stays under a couple of minutes.
SMALL = ["W4A4", "B16-(8/4)-0.875+gptq", "W4A(B16-(8/4)-0.875)"]
SIZES = ["--n-eval", "24", "--n-calib", "16", "--snr-sentences", "8"]


def _report(*args, timeout=1200):
    return subprocess.run([sys.executable, "-m", "sqhw.report", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The small sweep run twice into one folder: the second run must be all cache hits."""
    out = tmp_path_factory.mktemp("report")
    first = _report("--configs", *SMALL, *SIZES, "--out", str(out))
    assert first.returncode == 0, first.stderr
    report1 = json.loads((out / "report.json").read_text())
    second = _report("--configs", *SMALL, *SIZES, "--out", str(out))
    assert second.returncode == 0, second.stderr
    report2 = json.loads((out / "report.json").read_text())
    return out, first, report1, second, report2


def test_small_sweep_outputs(sweep):
    out, first, report, _, _ = sweep
    recs = {r["name"]: r for r in report["configs"]}
    assert list(recs) == SMALL
    for r in recs.values():
        assert r["errors"] == {}, r["errors"]
        acc = r["accuracy"]
        assert acc["n_eval"] == 24 and 0.0 < acc["cosine_mean"] <= 1.0
        assert 0.0 <= acc["top1_agreement"] <= 1.0
        assert r["area"]["lut4"] > 0 and r["area"]["ff"] > 0 and r["hw"]["macs_per_cycle"] == 256
    sq, w4a4, act = recs[SMALL[1]], recs["W4A4"], recs[SMALL[2]]
    # What the accuracy study measured (docs/accuracy.md): SQ 0.875 + GPTQ is far ahead of
    # W4A4, which collapses; the activation mode keeps most of W4A8's accuracy.
    assert sq["accuracy"]["cosine_mean"] > w4a4["accuracy"]["cosine_mean"] + 0.1
    assert act["accuracy"]["cosine_mean"] > w4a4["accuracy"]["cosine_mean"]
    # Array = R rows (+ the activation mode's one shared gather unit).
    assert sq["area"]["lut4"] == 16 * sq["area_row"]["nodsp"]["lut4"]
    shared = act["area_row"]["shared"]["nodsp"]["lut4"]
    assert shared > 0
    assert act["area"]["lut4"] == 16 * act["area_row"]["nodsp"]["lut4"] + shared
    # The activation mode gets its schedule (datasheet §10.7) and the assumed-clock figures.
    assert 0.0 < act["utilization"]["value"] <= 1.0
    assert act["utilization"]["value"] < sq["utilization"]["value"]   # R + 1 columns
    mhz = report["settings"]["assumed_mhz"]
    assert act["gmacs_assumed_clock"] == pytest.approx(256 * mhz * act["utilization"]["value"]
                                                       / 1000)
    assert act["gmacs_per_klut_assumed_clock"] == pytest.approx(
        act["gmacs_assumed_clock"] / act["klut"])
    assert "not placed and routed" in " ".join(act["notes"])
    assert 0.9 < sq["utilization"]["value"] < 1.0
    # Without --pnr there is no measured figure, and none is made up.
    assert all(r["fmax_mhz"] is None and r["gmacs"] is None for r in recs.values())
    # Pareto: on the area front at least the most accurate point; names are real configs.
    front = report["pareto"]["accuracy_vs_area"]
    best = max(recs.values(), key=lambda r: r["accuracy"]["cosine_mean"])
    assert best["name"] in front and set(front) <= set(SMALL)
    # Outputs: markdown with a row per config, PNGs that are PNGs, progress on stderr.
    md = (out / "report.md").read_text()
    assert all(f"`{n}`" in md for n in SMALL)
    assert report["plots"] and all((out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
                                   for p in report["plots"])
    assert "[sqhw.report" in first.stderr and "6/6" in first.stderr
    assert not list(out.glob(".*.tmp"))


def test_rerun_is_cached(sweep):
    _, _, report1, second, report2 = sweep
    assert "cached" in second.stderr and "running" not in second.stderr
    for r1, r2 in zip(report1["configs"], report2["configs"], strict=True):
        assert set(r2["status"].values()) <= {"cached", "not run"}
        assert r1["accuracy"] == r2["accuracy"] and r1["area"] == r2["area"]


def test_dask_local_cluster(tmp_path):
    """The same tasks on a Dask LocalCluster with two worker processes."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        run = _report("--configs", "W8A8", "W4A4", "--stages", "accuracy", "--n-eval", "16",
                      "--snr-sentences", "4", "--scheduler", cluster.scheduler_address,
                      "--out", str(tmp_path))
        pids = {str(w.pid) for w in cluster.workers.values()}     # the Nannies' workers
    assert run.returncode == 0, run.stderr
    assert "Dask scheduler" in run.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["settings"]["executor"] == "dask"
    accs = [r["accuracy"]["cosine_mean"] for r in report["configs"]]
    assert accs[0] > accs[1] > 0           # W8A8 is near-lossless, W4A4 is not
    # Each task ran in one of the cluster's worker processes, not in the command's.
    ran_on = {json.loads(f.read_text())["ran_on"].rpartition(":")[2]
              for f in (tmp_path / "cache").glob("accuracy-*.json")}
    assert ran_on and ran_on <= pids, (ran_on, pids)


@pytest.mark.parametrize("args, match", [
    (["--configs", "X8A8"], "unknown format"),
    (["--configs", "W8A8", "W8A8"], "given twice"),
    (["--macs", "0"], "must be a positive integer"),
    (["--configs", "B64-(8/4)-0.875", "--workload", "8", "96", "8"], "not a multiple"),
    (["--out", "/proc/sqhw-report"], "cannot write to --out"),
    (["--scheduler", "tcp://127.0.0.1:1"], "cannot connect to the Dask scheduler"),
    (["--stages", "bogus"], "invalid choice"),
    (["--pnr-macs", "64"], "--pnr-macs needs --pnr"),
    (["--pnr", "--pnr-macs", "512"], "a slice cannot be larger than the array"),
    (["--configs", "B64-(8/4)-0.875", "--pnr", "--pnr-macs", "32"],
     "not a multiple of the bank size 64"),
])
def test_bad_input_exits_2(args, match, tmp_path):
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "out")]
    run = _report(*args, timeout=120)
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], run.stderr
    assert not (tmp_path / "out" / "report.json").exists()
