"""The admin page as served (`lookalike serve`, /admin) in Debian's Chromium: the researcher signs
in, sees progress, unblinds and downloads the report; a participant reaches no admin content by any
URL or password. tests/test_admin.py drives the page as a function with AppTest, which never sees how
the served app routes a URL: a `pages/` folder beside survey/web/app.py once made Streamlit run
pages/admin.py as a script, and /admin crashed (issue 11). Each server here is opened at /admin
first, which is the request that crashed."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from sqlalchemy import select

from db.engine import make_engine, make_sessionmaker
from db.models import Condition
from db.pgserver import free_port
from survey.participants import service
from survey.study import monitor
from tests.helpers import answer_all, sqlite_copy
from tests.served import Server, launch, needs_chromium, settled, start

PASSWORD = "correct horse 7"
#: texts only the signed-in admin page shows (the login form shows none of them)
ADMIN_TEXTS = (
    "Progress: judgements per reference and condition",
    "Median s / trial",
    "In progress",
    "Unblind: show results by condition",
    "Download report",
    "Close the study",
    "Study configuration",
)
#: what a page shows once it has rendered (participant page, admin login, disabled admin page)
RENDERED = ("I agree, start", "Sign in", "The admin page is disabled", "Screen ")


@pytest.fixture(scope="module")
def answered_study(built_study, tmp_path_factory):
    """A copy of the built study with six participants: four attentive ones finished, one finished
    failing every check, one only started. Shared by the module's tests, which run in file order:
    the admin's view of these six first, then the tests that only add participants."""
    from survey.analysis.simulate import ResponseModel, simulate

    url = sqlite_copy(built_study, tmp_path_factory.mktemp("answered"))
    engine = make_engine(url)
    make_session = make_sessionmaker(engine)
    study = service.current_study(make_session)
    simulate(make_session, study.id, 4, seed=5, model=ResponseModel(inattentive=0.0))
    rng = np.random.default_rng(0)
    answer_all(make_session, service.start_participant(make_session, study.id, {}, rng), rng, fail_checks=True)
    service.start_participant(make_session, study.id, {}, rng)
    with make_session() as s:
        labels = sorted(c.label for c in s.scalars(select(Condition)))
        names = {n for c in s.scalars(select(Condition)) for n in (c.method, c.segmenter)} - {"none"}
    yield url, make_session, study, labels, names
    engine.dispose()


@pytest.fixture(scope="module")
def admin_server(answered_study, tmp_path_factory):
    """The answered study served with the admin password (one server for the tests that sign in)."""
    server = _server(answered_study[0], tmp_path_factory.mktemp("admin-server"), PASSWORD).start()
    yield server
    server.stop()


def _server(url: str, tmp_path: Path, password: str | None) -> Server:
    # five wrong guesses below test what a participant reaches, not the limiter (tests/test_sign_in_served.py)
    env: dict[str, str | None] = {"LOOKALIKE_ADMIN_PASSWORD": password, "LOOKALIKE_SIGN_IN_FREE_ATTEMPTS": "9"}
    if password is None:  # HOME in tmp_path: no ~/.streamlit/secrets.toml configures one behind the test's back
        env["HOME"] = str(tmp_path)
    return Server(url, free_port(), env=env, log=tmp_path / f"serve-{password is not None}.log")


def _rendered(page) -> None:
    """Wait until the app has rendered one of its screens and finished running; a URL that loads
    no app at all (e.g. /pages/admin: the bundle's relative paths do not resolve) ends the wait too."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function(
        """(texts) => {
        if (!document.querySelector('[data-testid="stApp"]')) return true;
        const idle = !document.querySelector('[data-stale="true"]')
            && !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]');
        return idle && texts.some(t => document.body.innerText.includes(t));
    }""",
        arg=list(RENDERED),
        timeout=30_000,
    )


def _sign_in(page, password: str) -> None:
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def _grid(page, n: int) -> list[str]:
    """The column headers of the n-th data grid on the page, once the grid has drawn its cells."""
    page.wait_for_function(
        """(n) => {
        const grid = [...document.querySelectorAll('[data-testid="stDataFrame"]')].at(n);
        return grid && grid.querySelectorAll('[role="gridcell"]').length > 1
            && [...grid.querySelectorAll('[role="columnheader"]')].every(h => h.innerText.trim());
    }""",
        arg=n,
        timeout=30_000,
    )
    return page.locator('[data-testid="stDataFrame"]').nth(n).locator('[role="columnheader"]').all_inner_texts()


def _log_errors(server: Server) -> list[str]:
    """Tracebacks and exception names (``OperationalError: ...``) in the server's log; a word that
    only contains "Error" (the start-up line names ``client.showErrorDetails``) is none."""
    log = server.log.read_text(errors="replace")
    return [line for line in log.splitlines() if re.search(r"Traceback|Error\b", line)]


@needs_chromium
def test_admin_signs_in_sees_progress_unblinds_and_downloads_the_report(answered_study, admin_server):
    from playwright.sync_api import sync_playwright

    from survey.analysis.report import render_html
    from survey.analysis.results import compute_results

    _, make_session, study, labels, _ = answered_study
    server = admin_server
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(server.url + "admin")
        settled(page, "Sign in")
        assert "Study administration" in page.inner_text("body")
        _sign_in(page, PASSWORD)
        settled(page, "Unblind: show results by condition")  # the end of the signed-in page
        page.locator('[data-testid="stMetric"]').nth(4).wait_for(timeout=30_000)
        metrics = dict(m.split("\n", 1) for m in page.locator('[data-testid="stMetric"]').all_inner_texts())
        overview = monitor.overview(make_session, study.id)
        assert {k: v.strip() for k, v in metrics.items() if k != "Median s / trial"} == {
            "Participants": str(overview.participants),
            "In progress": str(overview.in_progress),
            "Completed": str(overview.completed),
            "Flagged": str(overview.flagged),
        }
        assert (overview.participants, overview.completed, overview.in_progress) == (6, 5, 1)
        progress = monitor.progress(make_session, study.id)
        assert _grid(page, 0) == ["protocol", "reference", *sorted(progress["condition"].unique())]
        assert sorted(progress["condition"].unique()) == labels  # every condition has judgements
        body = page.inner_text("body")
        assert "Results are hidden" in body and "Download report" not in body  # blinded until asked

        page.get_by_text("Unblind: show results by condition", exact=True).click()
        settled(page, "Download report (HTML)")
        results_grid = _grid(page, -1)
        assert results_grid[:2] == ["condition", "ratings"]
        with page.expect_download() as download:
            page.get_by_role("button", name="Download report (HTML)").click()
        assert download.value.suggested_filename == f"{study.name}-report.html"
        report = Path(download.value.path()).read_text(encoding="utf-8")

        other = browser.new_context().new_page()  # another browser: the sign-in is per session
        other.goto(server.url + "admin")
        settled(other, "Sign in")
        assert not any(t in other.inner_text("body") for t in ADMIN_TEXTS)
        browser.close()
    assert _log_errors(server) == []
    assert "client.showErrorDetails=none" in server.log.read_text()  # the start-up line is there, and no error
    assert report.startswith("<!doctype html>") and report.rstrip().endswith("</html>")
    assert f"<title>Lookalike report: {study.name}</title>" in report
    assert "<h2>Participants</h2><p>6 started, 5 completed the trials" in report
    assert all(f"<td>{label}</td>" in report for label in labels)
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', report)
    assert images and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)

    def comparable(html: str) -> str:  # the same report, up to its timestamp and the rendered charts
        return re.sub(r'base64,[^"]+"', 'base64,"', re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", "", html))

    results = compute_results(make_session, study.id, n_boot=1000)
    assert sorted(r.condition for r in results.conditions) == labels  # the attentive participants are analysed
    expected = render_html(results)
    assert comparable(report) == comparable(expected)
    assert len(images) == expected.count("data:image/png;base64,")


def _watch(page, received: list[tuple[str, bytes]]) -> None:
    """Collect every websocket frame and every response body outside Streamlit's static bundle."""
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived",
            lambda payload: received.append(
                ("websocket frame", payload if isinstance(payload, bytes) else payload.encode())
            ),
        ),
    )

    def response(r) -> None:
        if r.status < 300 and not urlparse(r.url).path.startswith("/static/"):
            received.append((r.url, r.body()))

    page.on("response", response)


def _assert_no_admin_content(page, received: list[tuple[str, bytes]], secrets: set[bytes]) -> None:
    body = page.inner_text("body")
    assert not [t for t in ADMIN_TEXTS if t in body], (page.url, body[:300])
    assert page.locator('[data-testid="stMetric"], [data-testid="stDataFrame"]').count() == 0, page.url
    leaks = [(where, s.decode()) for where, data in received for s in secrets if s in data or s in data.lower()]
    assert leaks == [], page.url


@needs_chromium
def test_a_participant_reaches_no_admin_content(answered_study, admin_server):
    """No password, a wrong one, the study page, any URL: never progress, results or condition names,
    neither on screen nor in anything the browser receives. The admin signs in on the same server
    first, so the refusals below are the page's, not a broken page's."""
    from playwright.sync_api import sync_playwright

    _, _, _, labels, names = answered_study
    secrets = {s.encode() for s in (*labels, *names, *ADMIN_TEXTS, "failed_check")}
    server = admin_server
    with sync_playwright() as pw:
        browser = launch(pw)
        admin = browser.new_page()
        admin.goto(server.url + "admin")
        settled(admin, "Sign in")
        _sign_in(admin, PASSWORD)
        settled(admin, "Unblind: show results by condition")

        received: list[tuple[str, bytes]] = []
        page = browser.new_context().new_page()  # the participant: a browser of their own
        _watch(page, received)
        start(page, server.url + "?PROLIFIC_PID=curious-1")  # consented, on the first trial screen
        study_page = page.url
        page.goto(server.url + "admin")  # same session, straight from the study
        settled(page, "Sign in")
        _assert_no_admin_content(page, received, secrets)
        for guess in ("", "guess", PASSWORD.upper(), PASSWORD + " ", PASSWORD[:-1]):
            _sign_in(page, guess)
            settled(page, "Wrong password.")
            _assert_no_admin_content(page, received, secrets)
        page.goto(study_page)  # back to the study: still a participant's screen
        settled(page, "Screen 1 of")
        _assert_no_admin_content(page, received, secrets)
        for path in (
            "admin/",
            "admin?admin=1",
            "Admin",
            "ADMIN",
            "admin.py",
            "pages/admin",
            "views/admin",
            "survey/web/views/admin",
            "study",
            "study?page=admin",
            "?page=admin",
            "nonexistent",
        ):
            page.goto(server.url + path)
            _rendered(page)
            _assert_no_admin_content(page, received, secrets)
        assert sum(where == "websocket frame" for where, _ in received) > 20  # the search saw the traffic
        assert any(b"Wrong password." in data for _, data in received)
        browser.close()
    assert _log_errors(server) == []


@needs_chromium
def test_admin_page_without_a_configured_password_is_disabled(answered_study, tmp_path):
    from playwright.sync_api import sync_playwright

    url, _, _, labels, names = answered_study
    secrets = {s.encode() for s in (*labels, *names, *ADMIN_TEXTS, "failed_check")}
    server = _server(url, tmp_path, None).start()
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page()
            received: list[tuple[str, bytes]] = []
            _watch(page, received)
            page.goto(server.url + "admin")
            settled(page, "The admin page is disabled")
            assert "set LOOKALIKE_ADMIN_PASSWORD" in page.inner_text("body")
            assert page.locator('input[type="password"]').count() == 0
            _assert_no_admin_content(page, received, secrets)
            browser.close()
    finally:
        server.stop()
    assert _log_errors(server) == []


def test_no_pages_folder_beside_the_main_script():
    """Streamlit treats a `pages` folder beside the main script as old-style pages, whatever else
    the script does; the page modules live in survey/web/views/."""
    import survey.web.app

    assert not (Path(survey.web.app.__file__).parent / "pages").exists()


def test_serve_refuses_a_stale_pages_folder(tmp_path, monkeypatch, capsys):
    """A `pages` folder left behind (e.g. its __pycache__ after a pull that moved the modules)
    would turn /admin into a crash: `lookalike serve` refuses to start and says what to remove."""
    from survey.cli import main
    from survey.cli import study as study_cli
    from survey.web import serving

    def execve(*args: object) -> None:
        raise AssertionError("lookalike serve started Streamlit beside a pages folder")

    root = tmp_path.resolve()
    (root / "survey" / "web" / "pages" / "__pycache__").mkdir(parents=True)
    monkeypatch.setattr(serving, "APP", root / "survey" / "web" / "app.py")  # the check looks beside the app
    monkeypatch.setattr(study_cli.os, "execve", execve)
    assert main(["serve", "--db", f"sqlite:///{root / 'x.db'}", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert f"remove the folder {root / 'survey' / 'web' / 'pages'}" in err and len(err.splitlines()) == 1
