"""The session hooks of verif/conftest.py: the coverage-closure check cannot be switched off
by an import error (a planted fault: the matrix module made unimportable)."""

import sys
import types
from types import SimpleNamespace

import pytest

from verif import conftest as session_hooks


def _finish(runs):
    """Run the closure hook on a fake controller session; returns (session, reports)."""
    reports = []
    state = {"runs": runs, "closure": None}
    hook = SimpleNamespace(pytest_runtest_logreport=lambda report: reports.append(report))
    config = SimpleNamespace(stash={session_hooks._KEY: state}, hook=hook)
    session = SimpleNamespace(config=config, exitstatus=pytest.ExitCode.OK)
    session_hooks.pytest_sessionfinish(session, pytest.ExitCode.OK)
    return session, reports, state


RUNS = {"verif/top/test_top.py::test_matrix[a]": {"name": "a", "outcome": "passed",
                                                  "duration": 0.0}}


def test_closure_import_error_fails_the_run(monkeypatch):
    monkeypatch.setitem(sys.modules, "verif.top.test_top", None)     # import raises
    session, reports, state = _finish(dict(RUNS))
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert [(r.nodeid, r.outcome) for r in reports] == [(session_hooks._CLOSURE_ID, "failed")]
    assert "failed to import" in reports[0].longrepr
    assert state["closure"] == ("error", [])


def test_closure_control_partial_matrix_is_not_judged(monkeypatch):
    """Control: the same session with an importable matrix of two configurations, one run,
    is left unjudged (no report, exit status unchanged)."""
    matrix = types.ModuleType("verif.top.test_top")
    matrix.CONFIGS = {"a": None, "b": None}
    monkeypatch.setitem(sys.modules, "verif.top.test_top", matrix)
    session, reports, state = _finish(dict(RUNS))
    assert session.exitstatus == pytest.ExitCode.OK and reports == []
    assert state["closure"] == ("partial", ["b"])
