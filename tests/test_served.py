"""The served app under real conditions, in Debian's Chromium: two app processes on one
database, the app killed mid-study and restarted, and everything the browser receives checked
for blinding. The database tests run on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import http.client
import os
import re
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import select

from db.models import Condition, Grid, GridCondition, Participant, Response, Trial
from db.pgserver import free_port
from survey.participants import assignment, planning, service
from tests.served import (
    TRIALS,
    Server,
    advance,
    launch,
    needs_chromium,
    participant_token,
    screen_number,
    settled,
    start,
    stored_answers,
)


@needs_chromium
def test_two_app_processes_share_one_database(study_db):
    from playwright.sync_api import sync_playwright

    url, make_session, _ = study_db
    a, b = Server(url, free_port()), Server(url, free_port())
    try:
        a.start(), b.start()
        with sync_playwright() as pw:
            browser = launch(pw)
            pages = [browser.new_context().new_page() for _ in range(4)]
            for i, page in enumerate(pages):
                start(page, (a, b)[i % 2].url + f"?PROLIFIC_PID=two-{i}")
            switched = False
            active = set(range(4))
            while active:  # one screen each in turn, so both processes write at the same time
                for i in sorted(active):
                    if i == 3 and not switched and screen_number(pages[3]) == 8:
                        # no sticky sessions behind the proxy: the next request lands on process A
                        pages[3].goto(pages[3].url.replace(b.url, a.url))
                        settled(pages[3], "Screen 8 of")
                        switched = True
                    if advance(pages[i]) == "done":
                        active.discard(i)
            assert switched
            browser.close()
    finally:
        a.stop(), b.stop()
    with make_session() as s:
        study = service.current_study(make_session)
        people = s.scalars(select(Participant).where(Participant.external_id.like("two-%"))).all()
        assert len(people) == 4 and all(p.completed_at is not None for p in people)
        for p in people:
            trials = s.scalars(select(Trial).where(Trial.participant_id == p.id)).all()
            answers = s.scalars(select(Response).where(Response.participant_id == p.id)).all()
            assert len(trials) == TRIALS and sorted(r.trial_id for r in answers) == sorted(t.id for t in trials)
        for protocol in ("rating", "pairwise", "ranking"):  # assignments stay balanced across processes
            units = [u.key for u in assignment.study_units(planning.grids_by_reference(s, study.id)[0], protocol)]
            counts = Counter(s.scalars(select(Trial.unit).where(Trial.protocol == protocol, Trial.is_catch.is_(False))))
            per_unit = [counts.get(u, 0) for u in units]
            assert sum(per_unit) == 4 * 4 and max(per_unit) - min(per_unit) <= 1, (protocol, per_unit)
        # the counts both processes kept (under the study-row lock) are the trials counted
        real = Counter(s.scalars(select(Trial.unit).where(Trial.is_catch.is_(False))))
        assert planning.unit_counts(s, study.id) == real


@needs_chromium
def test_app_killed_mid_study_resumes_with_every_answer(study_db):
    from playwright.sync_api import sync_playwright

    url, make_session, _ = study_db
    server = Server(url, free_port())
    try:
        server.start()
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page()
            # the recruiter's completion page (there is no internet here): answered by the browser
            page.route("https://example.org/**", lambda route: route.fulfill(body="<p>recruiter</p>"))
            start(page, server.url + "?PROLIFIC_PID=crash-1")
            for _ in range(5):
                advance(page)
            token = participant_token(page)
            before = stored_answers(make_session, token)
            assert len(before) == 5
            server.kill()  # SIGKILL, mid-study
            server.start()  # same port, same database
            page.goto(page.url)  # the participant reloads
            settled(page, "Screen 6 of")
            assert stored_answers(make_session, token) == before  # every earlier answer, unchanged
            while advance(page) != "done":
                pass
            assert "DONE42" in page.inner_text("body")
            # after the visible countdown (redirect_seconds, 5 s) the page itself goes to the recruiter
            page.wait_for_url("https://example.org/complete?cc=DONE42", timeout=20_000)
            assert page.inner_text("body") == "recruiter"
            browser.close()
    finally:
        server.stop()
    after = stored_answers(make_session, token)
    assert len(after) == TRIALS and all(after[k] == v for k, v in before.items())


def _static_file(path: str, root: Path | None = None) -> Path | None:
    """The file a URL path names inside ``root`` (default: Streamlit's installed static folder), or
    None when the path leads outside it or names no file. Both sides are resolved, so an install
    behind a symlink (a linked virtualenv) still matches."""
    if root is None:
        import streamlit

        root = Path(streamlit.__file__).parent / "static"
    static = root.resolve()
    candidate = (static / path.lstrip("/")).resolve()
    return candidate if candidate.is_relative_to(static) and candidate.is_file() else None


def test_static_file_is_found_through_a_symlinked_install(tmp_path):
    import streamlit

    real = tmp_path / "real" / "static"
    (real / "static" / "js").mkdir(parents=True)
    (real / "static" / "js" / "main.js").write_text("bundle")
    (tmp_path / "outside.txt").write_text("not streamlit's")
    (tmp_path / "venv").symlink_to(tmp_path / "real", target_is_directory=True)
    linked = tmp_path / "venv" / "static"
    assert _static_file("/static/js/main.js", linked) == (real / "static" / "js" / "main.js").resolve()
    assert _static_file("/static/../../../outside.txt", linked) is None
    assert _static_file("/static/js/missing.js", linked) is None
    installed = (Path(streamlit.__file__).parent / "static" / "index.html").resolve()
    assert _static_file("/index.html") == installed


@needs_chromium
def test_nothing_the_browser_receives_unblinds_a_grid(sqlite_study_db):
    """Every HTTP response and every websocket frame of a whole participation (all three
    protocols) is searched for method and segmenter names, condition ids and grid ids."""
    from playwright.sync_api import sync_playwright

    url, make_session, _ = sqlite_study_db
    with make_session() as s:
        secrets = {g.encode() for g in s.scalars(select(Grid.id))}
        for c in s.scalars(select(Condition)):
            secrets |= {c.method.encode(), c.segmenter.encode(), c.label.encode()}
            secrets |= {f'"{k}"'.encode() for k in c.method_params} | {f'"{k}"'.encode() for k in c.segmenter_params}
        assert s.scalar(select(GridCondition.grid_id)) is not None
    secrets.discard(b"none")  # the "no segmentation" variant's name is an everyday word; its label stays
    secrets |= {b"efficientnet", b"lite0", b"u2net", b"maskrcnn", b"ssim", b"catch", b"segmenter"}
    server = Server(url, free_port())
    bodies: list[tuple[str, bytes]] = []
    static_checked = 0
    try:
        server.start()
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page()
            page.on(
                "websocket",
                lambda ws: ws.on(
                    "framereceived",
                    lambda payload: bodies.append(
                        ("websocket frame", payload if isinstance(payload, bytes) else payload.encode())
                    ),
                ),
            )
            responses = []
            page.on("response", lambda r: responses.append(r))
            start(page, server.url + "?PROLIFIC_PID=blind-1")
            n = 0
            while advance(page) != "done":
                n += 1
            assert n == TRIALS + 1  # trials, then the closing questions
            # the participant app never loads the similarity stack (tests/test_app_imports.py)
            maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
            assert re.findall(r"/(torch|torchvision|onnxruntime|numba|open_clip)/", maps) == []
            page.wait_for_load_state("networkidle")
            for r in responses:
                if r.status >= 300:
                    continue
                body = r.body()
                path = urlparse(r.url).path
                shipped = _static_file(path) if path.startswith("/static/") else None
                if shipped is not None:  # Streamlit's own bundle: byte-identical to the installed file
                    assert body == shipped.read_bytes(), r.url
                    static_checked += 1
                else:
                    bodies.append((r.url, body))
            browser.close()
    finally:
        server.stop()
    media = [u for u, _ in bodies if urlparse(u).path.startswith("/media/")]
    assert len(media) >= 30 and static_checked > 0 and sum(u == "websocket frame" for u, _ in bodies) > 50
    # the search works on what the browser got: texts the participant saw are found the same way
    assert all(any(seen in body for _, body in bodies) for seen in (b"Least similar set", b"Screen 15 of 15"))
    leaks = [(where, s.decode()) for where, body in bodies for s in secrets if s in body.lower() or s in body]
    assert leaks == []


@pytest.mark.parametrize(
    "path",
    [
        "/media/../../../../etc/passwd",
        "/media/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/static/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/app/static/../../../../etc/passwd",
        "/_stcore/../../../etc/passwd",
        "/media//etc/passwd",
        "/component/../../../../etc/passwd",
    ],
)
def test_served_files_cannot_be_made_to_read_outside_the_app(sqlite_study_db, path, _one_server):
    server = _one_server(sqlite_study_db[0])
    con = http.client.HTTPConnection("localhost", server.port, timeout=10)
    con.request("GET", path)  # sent as written: no client-side normalisation of '..'
    resp = con.getresponse()
    body = resp.read()
    assert b"root:" not in body
    assert resp.status in (200, 301, 302, 400, 403, 404)
    if resp.status == 200:  # the app's own HTML page (client-side routing), never a file
        assert b"<!doctype html>" in body[:200].lower()


@pytest.fixture(scope="module")
def _one_server():
    servers: dict[str, Server] = {}

    def get(url: str) -> Server:
        if not servers:
            servers["only"] = Server(url, free_port()).start()
        return servers["only"]

    yield get
    for s in servers.values():
        s.stop()


@needs_chromium
def test_database_crash_mid_study_shows_a_calm_message_then_resumes(small_catalog, feature_cache):
    """PostgreSQL killed under a served study: the participant sees a plain message (no traceback,
    no internals), and after the restart a reload continues with every answer intact."""
    from playwright.sync_api import sync_playwright

    from bench.load import build_load_study
    from db.engine import make_engine, make_sessionmaker
    from db.pgserver import PostgresUnavailable, TempPostgres

    try:
        pg = TempPostgres.start()
    except PostgresUnavailable as e:
        if os.environ.get("LOOKALIKE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here: {e}")
        pytest.skip(str(e))
    server = None
    try:
        url = pg.create_database("crash")
        build_load_study(url, small_catalog, feature_cache, trials=3)
        engine = make_engine(url)
        make_session = make_sessionmaker(engine)
        server = Server(url, free_port()).start()
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page()
            start(page, server.url + "?PROLIFIC_PID=db-crash")
            advance(page), advance(page)
            token = participant_token(page)
            before = stored_answers(make_session, token)
            assert len(before) == 2
            engine.dispose()
            pg.halt()  # the database goes away mid-study
            page.goto(page.url)
            page.wait_for_function("document.body.innerText.includes('briefly unavailable')", timeout=60_000)
            body = page.inner_text("body")
            assert all(
                word not in body.lower()
                for word in ("traceback", "psycopg", "sqlalchemy", "select ", "operationalerror", "grid")
            )
            pg.resume()
            page.goto(page.url)
            settled(page, "Screen 3 of")
            while advance(page) != "done":
                pass
            browser.close()
        after = stored_answers(make_session, token)
        assert all(after[k] == v for k, v in before.items()) and len(after) > len(before)
        engine.dispose()
    finally:
        if server is not None:
            server.stop()
        pg.stop()
