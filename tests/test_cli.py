"""The `lookalike` command end to end, as a user runs it (subprocesses, real files)."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from survey.cli import parser

ROOT = Path(__file__).resolve().parents[1]


def _run(args, tmp_path, timeout=600):
    env = {**os.environ, "LOOKALIKE_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1",
           "LOOKALIKE_OFFLINE": "1"}
    env.pop("LOOKALIKE_DB", None)
    return subprocess.run([sys.executable, "-m", "survey.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_demo_no_serve_builds_the_demo_study(tmp_path):
    db = tmp_path / "demo.db"
    proc = _run(["demo", "--no-serve", "--quiet", "--db", str(db)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "study 'demo'" in proc.stdout
    con = sqlite3.connect(db)
    conds = con.execute("SELECT method, segmenter FROM conditions").fetchall()
    assert set(conds) >= {(m, g) for m in ("ssim", "efficientnet") for g in ("none", "u2netp")}
    refs = con.execute("SELECT COUNT(DISTINCT reference_id) FROM grids").fetchone()[0]
    cats = con.execute("SELECT COUNT(DISTINCT category) FROM catalog_items").fetchone()[0]
    items = con.execute("SELECT COUNT(*) FROM catalog_items").fetchone()[0]
    assert cats >= 4 and items >= 4 * 30 * 2 and refs == 3 * cats
    # every condition has a grid for every reference
    per_condition = con.execute("SELECT condition_id, COUNT(*) FROM grid_conditions GROUP BY condition_id").fetchall()
    assert len(per_condition) == len(conds) and all(n == refs for _, n in per_condition)
    # a second run reuses the study instead of rebuilding it
    again = _run(["demo", "--no-serve", "--quiet", "--db", str(db)], tmp_path)
    assert again.returncode == 0 and "already built" in again.stdout
    report = _run(["report", "--db", str(db), "--out", str(tmp_path / "r.html")], tmp_path)
    assert report.returncode == 0 and "No ratings yet" in (tmp_path / "r.html").read_text()


def test_build_reports_catalog_errors_clearly(tmp_path):
    (tmp_path / "manifest.csv").write_text("file,item_id\na.jpg,a\n")
    proc = _run(["build", "--catalog", str(tmp_path / "manifest.csv"), "--name", "x",
                 "--db", str(tmp_path / "x.db")], tmp_path)
    assert proc.returncode == 2
    assert "missing column(s) category" in proc.stderr and "Traceback" not in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_the_health_check(tmp_path, built_study):
    db_path, _ = built_study
    port = _free_port()
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "survey.cli", "serve", "--db", str(db_path),
                             "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, body = time.monotonic() + 90, ""
        while time.monotonic() < deadline and body != "ok":
            try:
                body = urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2).read().decode()
            except OSError:
                time.sleep(0.5)
        assert body == "ok"
        assert b"<html" in urllib.request.urlopen(f"http://localhost:{port}/", timeout=5).read().lower()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_every_command_and_registered_name_is_documented():
    from similarity.methods import list_methods
    from similarity.segmenters import list_segmenters

    readme = (ROOT / "README.md").read_text()
    commands = parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        assert f"lookalike {name}" in readme, f"README does not document `lookalike {name}`"
    for name in [*list_methods(), *list_segmenters()]:
        assert f"`{name}`" in readme, f"README does not document `{name}`"
    assert "make demo" in readme and "make test" in readme


def test_user_errors_exist_and_reports_do_not_load_torch(study_db, tmp_path):
    import importlib

    from survey.cli import USER_ERRORS

    for module, name in USER_ERRORS.items():
        assert issubclass(getattr(importlib.import_module(module), name), Exception), (module, name)
    url = study_db[0]
    code = ("import sys; from survey.cli import main; "
            f"rc = main(['report', '--db', {url!r}, '--out', {str(tmp_path / 'r.html')!r}]); "
            "print(rc, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "0 False", done.stderr[-2000:]
