"""The commit-msg hook (.ci/check_commit_message.py) that .pre-commit-config.yaml installs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HOOK = Path(__file__).resolve().parents[1] / ".ci" / "check_commit_message.py"


def _check(tmp_path: Path, message: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "COMMIT_EDITMSG"
    path.write_text(message)
    return subprocess.run([sys.executable, str(HOOK), str(path)], capture_output=True, text=True)


def test_a_short_subject_with_a_body_passes(tmp_path):
    assert _check(tmp_path, "Cut the cache/store cycle\n\nWhy and how, at length.\n# a comment\n").returncode == 0


def test_a_long_subject_or_a_missing_blank_line_fails(tmp_path):
    long = _check(tmp_path, "x" * 72 + "\n")
    assert long.returncode == 1 and "72 characters" in long.stderr
    glued = _check(tmp_path, "Subject\nbody right below\n")
    assert glued.returncode == 1 and "blank line" in glued.stderr
    assert _check(tmp_path, "\n\n").returncode == 1
