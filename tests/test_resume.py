"""A build killed midway (SIGKILL) resumes from its cache and ends with the same grids."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import catalog_subset


def _build_cmd(catalog: Path, db: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "survey.cli",
        "build",
        "--catalog",
        str(catalog),
        "--name",
        "s",
        "--db",
        str(db),
        "--references-per-category",
        "2",
        "--reference-filter",
        "view=packshot",
        "--seed",
        "4",
        "--quiet",
    ]


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "LOOKALIKE_HOME": str(home), "LOOKALIKE_OFFLINE": "1"}


def _grids(db: Path) -> set[tuple[str, str, str, tuple[str, ...]]]:
    con = sqlite3.connect(db)
    items = dict(con.execute("SELECT id, item_id FROM catalog_items"))
    rows = con.execute("""SELECT c.method, c.segmenter, g.reference_id, g.item_ids FROM grids g
                          JOIN grid_conditions gc ON gc.grid_id = g.id JOIN conditions c ON c.id = gc.condition_id""")
    return {(m, s, items[r], tuple(items[i] for i in json.loads(ids))) for m, s, r, ids in rows}


@pytest.mark.slow
def test_killed_build_resumes_with_the_same_grids(tmp_path, small_catalog, built_study, feature_cache):
    # two of the small catalog's four categories (32 photos): killed midway all the same, at half the model work
    catalog = catalog_subset(small_catalog, tmp_path, categories=2)
    home = tmp_path / "home"
    masks = home / "cache" / "masks"
    # the raw photos' features (segmenter none) are stored already, as after an earlier build of those
    # conditions: the build goes straight to segmenting, is killed there, and resumes
    for raw in feature_cache.glob("features/*/none-*"):
        shutil.copytree(raw, home / "cache" / raw.relative_to(feature_cache))
    proc = subprocess.Popen(
        _build_cmd(catalog, tmp_path / "a.db"),
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(masks.rglob("*.png"))) < 12:
        assert proc.poll() is None, "the build finished before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(list(masks.rglob("*.png")))
    assert 12 <= partial < 32, partial  # killed midway: some masks stored, not all
    con = sqlite3.connect(tmp_path / "a.db")
    assert con.execute("SELECT COUNT(*) FROM sqlite_master WHERE name='studies'").fetchone()[0] in (0, 1)
    if con.execute("SELECT COUNT(*) FROM sqlite_master WHERE name='studies'").fetchone()[0]:
        assert con.execute("SELECT COUNT(*) FROM studies").fetchone()[0] == 0  # no half-built study
    con.close()

    resumed = subprocess.run(
        _build_cmd(catalog, tmp_path / "a.db"), env=_env(home), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    # the uninterrupted build to compare with: its masks and features are those the shared study's
    # build computed (every default condition of the small catalog), so it runs no model again
    shutil.copytree(feature_cache, tmp_path / "fresh-home" / "cache")
    fresh = subprocess.run(
        _build_cmd(catalog, tmp_path / "b.db"),
        env=_env(tmp_path / "fresh-home"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert fresh.returncode == 0, fresh.stderr
    assert _grids(tmp_path / "a.db") == _grids(tmp_path / "b.db")
    assert len(_grids(tmp_path / "a.db")) == 4 * 4  # 4 conditions x 4 references (2 per category)
