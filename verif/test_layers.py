"""The import floors of ``docs/layout.md`` hold, and a broken one fails ``lint-imports``.

``lint-imports`` (import-linter, contracts in ``pyproject.toml``) runs in ``make lint``. These
tests run it on the real tree (every contract kept) and on a copy of the package with an
upward import planted inside a function (import-linter counts lazy imports too) and an
import of ``verif``: both contracts must be reported broken, so the check can fail.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(),
                                reason="import-linter is not installed (dev extra)")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    # lint-imports puts its working folder first on sys.path: the tree in `cwd` is analysed.
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_contracts_kept():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_planted_upward_import_fails(tmp_path):
    shutil.copytree(ROOT / "sqhw", tmp_path / "sqhw",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "verif").mkdir()
    (tmp_path / "verif" / "__init__.py").write_text("")
    (tmp_path / "verif" / "harness.py").write_text("")
    # Clean copy first: the planted lines below are what breaks it.
    clean = _lint(tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    # The golden model reaching up into the report, lazily, inside a function.
    (tmp_path / "sqhw" / "golden" / "planted.py").write_text(
        "def f():\n    from ..report import pareto\n    return pareto\n")
    # The package importing the test tree.
    (tmp_path / "sqhw" / "synth" / "planted.py").write_text("import verif.coverage\n")
    proc = _lint(tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "sqhw floors: each imports only from the floors below it BROKEN" in out
    assert "sqhw never imports verif BROKEN" in out
    assert "sqhw.golden.planted -> sqhw.report.pareto" in out
