"""The suite's xdist groups hold (tests/conftest.py): under ``--dist loadgroup``, as ``make test``
runs, the tests of a module that share a module fixture run on one worker, which sets it up once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

#: starts a pytest session with two workers, each importing the suite's conftest (about 25 s here)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

MODULE = """
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def server():  # stands for a module's server: set up once per worker that runs a test using it
    with Path(os.environ["SETUPS"]).open("a") as f:
        f.write(os.environ.get("PYTEST_XDIST_WORKER", "none") + "\\n")


@pytest.mark.parametrize("k", range(6))
def test_uses_the_server(server, k):
    pass


@pytest.mark.parametrize("k", range(6))
def test_alone(k):
    pass
"""


def test_a_module_fixture_is_set_up_once_on_one_worker(tmp_path):
    (tmp_path / "test_grouped.py").write_text(MODULE)
    setups = tmp_path / "setups.txt"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "-v",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_grouped.py"),
        ],
        cwd=ROOT,
        env={**os.environ, "SETUPS": str(setups), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "12 passed" in done.stdout
    # without the groups, each worker would take some of the six and set the server up again
    assert len(setups.read_text().split()) == 1, setups.read_text()
    grouped = set(re.findall(r"test_grouped\.py::(\w+\[\d\])@test_grouped\.py", done.stdout))
    assert grouped == {f"test_uses_the_server[{k}]" for k in range(6)}  # their ids name their group
