"""The import contracts in pyproject.toml (`make lint` runs import-linter): they hold for the
code as it is, and an import across a layer or a new cycle breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (make install)")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the copy, not the installed project
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for package in ("similarity", "survey", "db"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def _add_line(path: Path, line: str) -> None:
    """Append ``line`` inside a function at the end of ``path``: deferred imports count too."""
    path.write_text(path.read_text() + f"\n\ndef _added_by_the_test() -> None:\n    {line}\n")


def test_the_code_keeps_every_contract(copy):
    result = _lint(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_backend_importing_the_survey_breaks_a_contract(copy):
    _add_line(copy / "similarity" / "search.py", "from survey.study import config  # noqa")
    result = _lint(copy)
    assert result.returncode == 1
    assert "survey above db above similarity" in result.stdout and "BROKEN" in result.stdout
    assert "similarity.search -> survey.study.config" in result.stdout


def test_the_study_importing_the_web_app_breaks_the_survey_layers(copy):
    _add_line(copy / "survey" / "study" / "export.py", "from survey.web import state  # noqa")
    result = _lint(copy)
    assert result.returncode == 1
    assert "survey by role" in result.stdout and "survey.study.export -> survey.web.state" in result.stdout


def test_a_cycle_between_siblings_breaks_the_acyclic_contract(copy):
    # store is below cache (cache imports store): the reverse import closes a cycle in one package
    _add_line(copy / "similarity" / "execution" / "store.py", "from similarity.execution import cache  # noqa")
    result = _lint(copy)
    assert result.returncode == 1
    assert "no import cycles between siblings" in result.stdout and "BROKEN" in result.stdout
