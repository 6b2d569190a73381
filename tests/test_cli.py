"""The `lookalike` command end to end, as a user runs it (subprocesses, real files)."""

from __future__ import annotations

import json
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


def _run(args, tmp_path, timeout=600, env=None):
    env = {
        **os.environ,
        "LOOKALIKE_HOME": str(tmp_path / "home"),
        "HF_HUB_OFFLINE": "1",
        "LOOKALIKE_OFFLINE": "1",
        **(env or {}),
    }
    env.pop("LOOKALIKE_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "survey.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_demo_no_serve_builds_the_demo_study(tmp_path, feature_cache):
    """The whole demo command on a smaller demo catalog: the test run's small catalog (seed 3, 8 per
    category), in the run's home, so its features come from the run's cache; the default size is
    checked without a build below."""
    db = tmp_path / "demo.db"
    home = {"LOOKALIKE_HOME": str(feature_cache.parent)}
    demo = ["demo", "--no-serve", "--quiet", "--db", str(db), "--seed", "3", "--per-category", "8"]
    proc = _run(demo, tmp_path, env=home)
    assert proc.returncode == 0, proc.stderr
    assert "study 'demo'" in proc.stdout
    con = sqlite3.connect(db)
    conds = con.execute("SELECT method, segmenter FROM conditions").fetchall()
    assert set(conds) >= {(m, g) for m in ("ssim", "efficientnet") for g in ("none", "u2netp")}
    refs = con.execute("SELECT COUNT(*) FROM catalog_items WHERE is_reference").fetchone()[0]
    pool = con.execute("SELECT COUNT(*) FROM catalog_items WHERE in_swipe_pool").fetchone()[0]
    queried = con.execute("SELECT COUNT(DISTINCT reference_id) FROM grids").fetchone()[0]
    cats = con.execute("SELECT COUNT(DISTINCT category) FROM catalog_items").fetchone()[0]
    items = con.execute("SELECT COUNT(*) FROM catalog_items").fetchone()[0]
    assert cats >= 4 and items >= 4 * 8 * 2 and refs == 3 * cats
    assert pool == 8 * cats  # the swipe round's pool: every packshot of the small catalog
    assert json.loads(con.execute("SELECT config FROM studies").fetchone()[0])["protocols"] == ["rating", "swipe"]
    # every condition has a grid for every reference and every pool product
    per_condition = con.execute("SELECT condition_id, COUNT(*) FROM grid_conditions GROUP BY condition_id").fetchall()
    assert len(per_condition) == len(conds) and all(n == queried for _, n in per_condition)
    # a second run reuses the study instead of rebuilding it
    again = _run(demo, tmp_path, env=home)
    assert again.returncode == 0 and "already built" in again.stdout
    report = _run(["report", "--db", str(db), "--out", str(tmp_path / "r.html")], tmp_path)
    assert report.returncode == 0 and "No ratings yet" in (tmp_path / "r.html").read_text()


def test_the_default_demo_catalog_has_four_categories_of_thirty_products_in_two_photos(tmp_path):
    import csv

    from similarity.catalogs.demo import generate_demo_catalog

    with generate_demo_catalog(tmp_path).open() as f:  # the defaults `lookalike demo` uses
        rows = list(csv.DictReader(f))
    per_category = {c: sum(r["category"] == c for r in rows) for c in {r["category"] for r in rows}}
    assert len(per_category) == 4 and set(per_category.values()) == {30 * 2}
    assert len({(r["category"], r["item_id"]) for r in rows}) == len(rows)


def test_demo_refuses_a_catalog_too_small_for_a_grid(tmp_path):
    _refused(_run(["demo", "--no-serve", "--per-category", "3"], tmp_path), "--per-category 3 is too few")


def test_build_reports_catalog_errors_clearly(tmp_path):
    (tmp_path / "manifest.csv").write_text("file,item_id\na.jpg,a\n")
    proc = _run(
        ["build", "--catalog", str(tmp_path / "manifest.csv"), "--name", "x", "--db", str(tmp_path / "x.db")], tmp_path
    )
    assert proc.returncode == 2
    assert "missing column(s) category" in proc.stderr and "Traceback" not in proc.stderr
    _refused(proc, "missing column(s) category")


def _refused(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """A user mistake: exit status 2 and exactly one line on stderr naming it, no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("lookalike: error: ") and "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def _tiny_catalog(tmp_path: Path) -> Path:
    """One category of six plain images: enough for a top-5 study."""
    from PIL import Image

    folder = tmp_path / "catalog"
    folder.mkdir()
    rows = ["file,item_id,category"]
    for k in range(6):
        Image.new("RGB", (32, 32), (40 * k, 255 - 40 * k, 128)).save(folder / f"{k}.png")
        rows.append(f"{k}.png,item{k},mugs")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder / "manifest.csv"


def _tiny_build(tmp_path: Path, *flags: str) -> list[str]:
    """`lookalike build` of :func:`_tiny_catalog` into ``tmp_path/x.db``, with ``flags``."""
    return ["build", "--catalog", str(_tiny_catalog(tmp_path)), "--name", "x", "--db", str(tmp_path / "x.db"), *flags]


@pytest.mark.parametrize(
    "flags, fragments",
    [
        (
            ["--methods", "ssim:sigmaa=2", "--segmenters", "none"],
            ["methods: method 'ssim' has no option(s) sigmaa; options: K1, K2, color, sigma, size"],
        ),
        (
            ["--methods", "ssim", "--segmenters", "u2netp:modelpath=u2netp.onnx"],
            ["segmenters: segmenter 'u2netp' has no option(s) modelpath; options: model_path"],
        ),
        (
            ["--methods", "sift", "--segmenters", "none"],
            ["methods: unknown name 'sift'; valid: clip, efficientnet, ssim"],
        ),
        (
            ["--methods", "ssim", "--segmenters", "grabcut"],
            ["segmenters: unknown name 'grabcut'; valid: maskrcnn, none"],
        ),
        (["--methods", "ssim:size", "--segmenters", "none"], ["'ssim:size': option 'size' needs the form key=value"]),
    ],
)
def test_build_refuses_unknown_components_and_options_before_any_work(tmp_path, flags, fragments):
    db = tmp_path / "x.db"
    proc = _run(_tiny_build(tmp_path, *flags), tmp_path)
    _refused(proc, *fragments)
    assert not db.exists()  # checked before the database is opened


def test_evaluate_refuses_unknown_options(tmp_path):
    proc = _run(
        [
            "evaluate",
            "--manifest",
            str(_tiny_catalog(tmp_path)),
            "--methods",
            "efficientnet:variantt=b0",
            "--segmenters",
            "none",
        ],
        tmp_path,
    )
    _refused(
        proc,
        "methods: method 'efficientnet' has no option(s) variantt; options: flip, gem_p, input_size, pooling, "
        "pretrained, runtime, scales, variant, weights_path",
    )


def test_build_refuses_a_bad_toml_key(tmp_path):
    config = tmp_path / "study.toml"
    config.write_text(f'[study]\nname = "s"\ncatalog = "{_tiny_catalog(tmp_path)}"\n[protocols]\nuses = ["rating"]\n')
    _refused(
        _run(["build", "--config", str(config), "--db", str(tmp_path / "x.db")], tmp_path),
        "protocols.uses: unknown key; valid in [protocols]: pairwise_adaptive_floor, pairwise_assignment, "
        "rating_item_ticks, trials_per_participant, use",
    )


def test_build_without_a_study_says_what_to_give(tmp_path):
    _refused(
        _run(["build", "--db", str(tmp_path / "x.db")], tmp_path), "give --config STUDY.toml, or --catalog and --name"
    )


def test_build_reports_missing_weights_in_one_line(tmp_path):
    missing = tmp_path / "missing.onnx"
    proc = _run(_tiny_build(tmp_path, "--methods", "ssim", "--segmenters", f"u2net:model_path={missing}"), tmp_path)
    _refused(proc, f"u2net model_path {missing} does not exist", "u2net:model_path=/path/to/u2net.onnx")


def test_offline_build_refuses_weights_it_would_download(tmp_path):
    from similarity.weights import clip_spec

    if clip_spec().path() is not None:
        pytest.skip("CLIP weights are cached on this machine")
    env_offline_off = {"LOOKALIKE_OFFLINE": "0"}  # the flag alone must switch downloads off
    build = _tiny_build(tmp_path, "--methods", "clip", "--segmenters", "none")
    proc = _run(["--offline", *build], tmp_path, env=env_offline_off)
    _refused(
        proc,
        "weights 'clip:ViT-B-32/laion2b_s34b_b79k'",
        "offline mode is on",
        "lookalike weights download clip:ViT-B-32/laion2b_s34b_b79k",
    )


@pytest.mark.parametrize(
    "command",
    [
        ["report", "--out", "r.html"],
        ["export", "--out", "out"],
        ["study", "list"],
        ["power"],
        ["simulate", "--participants", "2"],
        ["db", "current"],
    ],
)
@pytest.mark.parametrize("as_url", [False, True])
def test_commands_that_read_a_study_refuse_a_missing_database_file(tmp_path, command, as_url):
    db = tmp_path / "does-not-exist.db"
    proc = _run([*command, "--db", f"sqlite:///{db}" if as_url else str(db)], tmp_path)
    _refused(proc, f"database {db} does not exist", "--db")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing created: no database, WAL or output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_the_health_check(tmp_path, built_study):
    db_path, _ = built_study
    port = _free_port()
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "survey.cli", "serve", "--db", str(db_path), "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
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


#: Every user-error class (printed as one line, exit 2): all derive from similarity.errors.UserError.
USER_ERRORS = [
    ("db.backup", "BackupError"),
    ("db.migrate", "SchemaError"),
    ("db.engine", "DatabaseMissing"),
    ("similarity.catalogs.catalog", "CatalogError"),
    ("similarity.evaluation.evaluate", "EvaluationError"),
    ("similarity.registry", "UnknownName"),
    ("similarity.registry", "UnknownOption"),
    ("similarity.registry", "InvalidOption"),
    ("similarity.weights", "WeightsUnavailable"),
    ("survey.study.build", "StudyExists"),
    ("survey.study.config", "ConfigError"),
    ("survey.study.errors", "StudyUnavailable"),
    ("survey.web.serving", "ServeError"),
    ("survey.analysis.simulate", "SimulationError"),
    ("survey.prolific.client", "ProlificError"),
]


def test_user_errors_exist_and_reports_do_not_load_torch(study_db, tmp_path):
    import importlib

    from similarity.errors import UserError

    for module, name in USER_ERRORS:
        assert issubclass(getattr(importlib.import_module(module), name), UserError), (module, name)
    url = study_db[0]
    code = (
        "import sys; from survey.cli import main; "
        f"rc = main(['report', '--db', {url!r}, '--out', {str(tmp_path / 'r.html')!r}]); "
        "print(rc, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "0 False", done.stderr[-2000:]


def test_report_json_prints_json_and_writes_html_only_when_asked(tiny_study, tmp_path):
    import json

    from survey.analysis.simulate import simulate

    db, make_session, study = tiny_study("answered")
    simulate(make_session, study.id, 3, seed=1)
    alone = _run(["report", "--db", str(db), "--json", "--n-boot", "50"], tmp_path)
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout)["study"] == "answered"
    assert not (tmp_path / "report.html").exists() and not list(tmp_path.glob("*.html"))  # stdout only
    both = _run(["report", "--db", str(db), "--json", "--n-boot", "50", "--out", "r.html"], tmp_path)
    assert both.returncode == 0, both.stderr
    assert json.loads(both.stdout)["study"] == "answered"
    assert "<html" in (tmp_path / "r.html").read_text() and not (tmp_path / "report.html").exists()
    plain = _run(["report", "--db", str(db), "--n-boot", "50"], tmp_path)  # without --json: report.html, as before
    assert plain.returncode == 0 and "report written to report.html" in plain.stdout, plain.stderr
    assert "<html" in (tmp_path / "report.html").read_text()
