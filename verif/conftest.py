"""Session-level reporting of the ``sqhw_top`` regression (verif/top/test_top.py).

- Every matrix test records, as pytest ``user_properties``, its configuration name, digest,
  seed and the ``coverage.json`` its cocotb run wrote. pytest-xdist ships those properties
  to the controller with each report, so this works with ``-n``.
- At the end of the session (on the controller only) the bins of all runs are merged. When
  **every** configuration of the default matrix ran in this session, a bin that was never
  hit is a failure: it is reported as the failed test ``verif/top/test_top.py::
  coverage_closure`` and the exit status is set to "tests failed". (When only part of the
  matrix ran, e.g. ``-k r4``, the merge is printed but not judged.) If the matrix module
  cannot be imported, the closure cannot be judged: that too is reported as a failure of
  ``coverage_closure``, never a silent pass.
- The terminal summary prints one line per configuration (pass/fail, seed, duration, bins
  hit) and the Verilator line/toggle coverage summary.
"""

import traceback
from pathlib import Path

import pytest

_KEY = pytest.StashKey[dict]()
_CLOSURE_ID = "verif/top/test_top.py::coverage_closure"


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config):
    config.stash[_KEY] = {"runs": {}, "closure": None}


def pytest_runtest_logreport(report):
    props = dict(report.user_properties or ())
    name = props.get("sqhw_config")
    if name is None or report.nodeid == _CLOSURE_ID:
        return
    # The hook has no config argument; the reports of one session share one stash, found
    # through the plugin manager's config (set in pytest_configure).
    state = _STATE.get("state")
    if state is None:
        return
    run = state["runs"].setdefault(report.nodeid, {"name": name, "outcome": "passed",
                                                   "duration": 0.0})
    run.update({k: v for k, v in props.items() if k.startswith("sqhw_")})
    run["duration"] += report.duration
    if report.failed:
        run["outcome"] = "failed"
    elif report.skipped and report.when != "teardown":
        run["outcome"] = "skipped"


_STATE: dict = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    _STATE["state"] = session.config.stash[_KEY]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if _is_worker(config):
        return
    state = config.stash[_KEY]
    runs = state["runs"]
    if not runs:
        return
    from verif import coverage
    try:
        from verif.top.test_top import CONFIGS
    except Exception:
        # The matrix module did not import: the closure cannot be judged, and that must fail
        # the run, not pass it quietly.
        _report_closure(session, "failed",
                        "coverage closure not judged: verif.top.test_top failed to import:\n"
                        + traceback.format_exc())
        state["closure"] = ("error", [])
        return
    hits = coverage.merge(r["sqhw_bins"] for r in runs.values() if "sqhw_bins" in r)
    state["hits"] = hits
    ran = {r["name"] for r in runs.values() if r["outcome"] in ("passed", "failed")}
    if not set(CONFIGS) <= ran:
        state["closure"] = ("partial", sorted(set(CONFIGS) - ran))
        return
    miss = coverage.missing(hits)
    state["closure"] = ("missing", miss) if miss else ("closed", [])
    if miss:
        text = ("functional coverage not closed: these bins were never hit by the default "
                "matrix:\n" + "\n".join(f"  {b}: {coverage.BINS[b]}" for b in miss))
        _report_closure(session, "failed", text)
    else:
        _report_closure(session, "passed", None)


def _report_closure(session, outcome: str, text: str | None) -> None:
    """Report the closure check as the test :data:`_CLOSURE_ID`; a failure also sets the
    session's exit status to "tests failed"."""
    from _pytest.reports import TestReport
    config = session.config
    rep = TestReport(nodeid=_CLOSURE_ID, location=("verif/top/test_top.py", 0,
                                                   "coverage_closure"),
                     keywords={}, outcome=outcome, longrepr=text, when="call",
                     user_properties=[])
    config.hook.pytest_runtest_logreport(report=rep)
    if outcome == "failed" and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _is_worker(config):
        return
    state = config.stash.get(_KEY, None)
    if not state or not state["runs"]:
        return
    from verif import coverage
    tr = terminalreporter
    tr.section("sqhw_top regression: per configuration")
    runs = sorted(state["runs"].values(), key=lambda r: r["name"])
    width = max(len(r["name"]) for r in runs)
    for r in runs:
        # Activation-mode runs (verif/top/test_top_act.py) count their own bins (ACT_BINS,
        # judged by that module); they never enter the weight-mode closure.
        key, universe = (("sqhw_act_bins", coverage.ACT_BINS) if r.get("sqhw_act_bins")
                         else ("sqhw_bins", coverage.BINS))
        path = Path(r.get(key, ""))
        bins = coverage.load(path)["hits"] if r.get(key) and path.is_file() else {}
        tr.write_line(f"{r['name']:<{width}}  {r['outcome'].upper():<7} "
                      f"digest {r.get('sqhw_digest', '?')}  SEED={r.get('sqhw_seed', '?')}  "
                      f"{r['duration']:6.1f} s  {len(bins):2d}/{len(universe)} bins")
    for r in runs:
        if r.get("sqhw_rtl_coverage"):
            tr.write_line(f"{r['name']}: {r['sqhw_rtl_coverage']} (build/coverage/)")
    hits = state.get("hits", {})
    kind, detail = state["closure"] or ("partial", [])
    hit = len(coverage.BINS) - len(coverage.missing(hits))
    if kind == "error":
        tr.write_line("functional coverage: NOT JUDGED, the matrix module failed to import "
                      f"(see {_CLOSURE_ID})", red=True)
    elif kind == "closed":
        tr.write_line(f"functional coverage: all {hit}/{len(coverage.BINS)} bins hit")
    elif kind == "missing":
        tr.write_line(f"functional coverage: {hit}/{len(coverage.BINS)} bins hit; NEVER HIT: "
                      + ", ".join(detail), red=True)
    else:
        tr.write_line(f"functional coverage: {hit}/{len(coverage.BINS)} bins hit (not judged: "
                      f"{len(detail)} matrix configuration(s) did not run)")
