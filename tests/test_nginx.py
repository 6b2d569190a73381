"""`lookalike serve --processes 2`: Debian's nginx in front of two app processes on a real
PostgreSQL server, all started here. Affinity by route cookie; a Chromium participant takes the
study through nginx; the process serving them is killed mid-study, they reload, land on the other
process and resume with every answer intact, and the killed process is restarted on its port."""

from __future__ import annotations

import os
import re
import secrets
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from survey.web import serving
from tests.served import (
    TRIALS,
    NginxFarm,
    advance,
    launch,
    needs_chromium,
    needs_nginx,
    nginx_farm,
    participant_token,
    settled,
    start,
    stored_answers,
)

pytestmark = [needs_chromium, needs_nginx, pytest.mark.slow]  # real servers, real weights (built_study)


def _established(ports: set[int]) -> set[int]:
    """Which of ``ports`` (app processes) hold an open connection: with no request in flight, only
    a browser's WebSocket stays open (nginx closes every other upstream connection)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) in ports:
                found.add(int(local.rsplit(":", 1)[1], 16))
    return found


def _one_established(ports: set[int]) -> int:
    deadline = time.monotonic() + 20
    while len(open_ := _established(ports)) != 1:
        assert time.monotonic() < deadline, f"open connections to {open_} (expected one process)"
        time.sleep(0.2)
    return open_.pop()


def _app_pid(port: int) -> int:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"streamlit" in b" ".join(args) and f"{port}".encode() in args:
                return int(proc.name)
    raise AssertionError(f"no app process on port {port}")


def _get(url: str, cookie: str | None = None) -> tuple[str, str]:
    req = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode(), resp.headers.get("Set-Cookie") or ""


def _upstreams(access_log: Path, probe: str, n: int) -> dict[str, str]:
    """``probe`` id -> the upstream nginx sent that request to (read from its access log)."""
    deadline = time.monotonic() + 10
    while True:  # the log is flushed every second
        text = access_log.read_text() if access_log.exists() else ""
        found = dict(re.findall(rf"probe={probe}-(\d+) HTTP[^\n]* upstream=([\d.:]+|-)", text))
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_nginx_in_front_of_two_processes_on_postgresql(pg_built_study, postgres, tmp_path):
    from db.engine import make_engine, make_sessionmaker

    template, _ = pg_built_study
    url = postgres.create_database(template=template)
    engine = make_engine(url)
    make_session = make_sessionmaker(engine)
    try:
        with nginx_farm(url, tmp_path, {}) as farm:
            _affinity_and_static_files(farm)
            killed = _a_participant_survives_the_death_of_their_process(farm, make_session)
            _the_killed_process_is_restarted(farm, *killed)
    finally:
        engine.dispose()
    assert farm.proc.returncode == 0 and not farm.run_dir.exists()  # stopped cleanly, its run folder removed
    with pytest.raises(OSError):
        _get(farm.url)
    for p in farm.backends:  # the restarted process too
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{p}/_stcore/health", timeout=2)


def _affinity_and_static_files(farm: NginxFarm) -> None:
    """Affinity: a first visit gets a route cookie; one cookie always reaches the same process,
    and fresh cookies (say, participants behind one NAT address) spread over both."""
    _, set_cookie = _get(farm.url)
    assert set_cookie.startswith("lookalike_route=") and "HttpOnly" in set_cookie
    route = set_cookie.split(";", 1)[0]
    _, again = _get(farm.url, route)
    assert again == ""  # set once
    for i in range(10):
        _get(f"{farm.url}_stcore/health?probe=same-{i}", route)
    for i in range(40):
        _get(f"{farm.url}_stcore/health?probe=fresh-{i}", f"lookalike_route={secrets.token_hex(16)}")
    same = _upstreams(farm.run_dir / "access.log", "same", 10)
    fresh = _upstreams(farm.run_dir / "access.log", "fresh", 40)
    assert len(same) == 10 and len(set(same.values())) == 1
    assert {int(u.rsplit(":", 1)[1]) for u in fresh.values()} == farm.backends

    # Streamlit's bundle comes from nginx itself (no app process in the log), byte for byte
    static = next(serving.streamlit_static().glob("js/index.*.js"))
    with urllib.request.urlopen(f"{farm.url}static/js/{static.name}?probe=static-0", timeout=10) as resp:
        assert resp.read() == static.read_bytes() and "max-age" in resp.headers.get("Cache-Control", "")
        assert resp.headers.get("Content-Type") == "application/javascript"  # else browsers refuse it
    assert _upstreams(farm.run_dir / "access.log", "static", 1) == {"0": "-"}


def _a_participant_survives_the_death_of_their_process(farm: NginxFarm, make_session) -> tuple[int, int]:
    """A Chromium participant's process is killed mid-study: they reload, land on the other process
    and finish with every answer intact. Returns the killed process's port and pid."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_context().new_page()
        start(page, farm.url + "?PROLIFIC_PID=nginx-1")
        for _ in range(5):
            advance(page)
        token = participant_token(page)
        before = stored_answers(make_session, token)
        assert len(before) == 5
        serving_port = _one_established(farm.backends)
        killed_pid = _app_pid(serving_port)
        os.killpg(killed_pid, signal.SIGKILL)  # the participant's process dies mid-study
        page.goto(page.url)  # the participant reloads
        try:  # nginx finds the port dead and the other process reruns the script (slow in a loaded full run)
            settled(page, "Screen 6 of", timeout_ms=60_000)
        except Exception as exc:  # say what the participant saw instead
            raise AssertionError(f"after the reload the page shows: {page.inner_text('body')[:1500]!r}") from exc
        assert _one_established(farm.backends) == (farm.backends - {serving_port}).pop()  # now on the other process
        assert stored_answers(make_session, token) == before  # every earlier answer, unchanged
        while advance(page) != "done":
            pass
        assert "DONE42" in page.inner_text("body")
        browser.close()
    after = stored_answers(make_session, token)
    assert len(after) == TRIALS and all(after[k] == v for k, v in before.items())
    return serving_port, killed_pid


def _the_killed_process_is_restarted(farm: NginxFarm, serving_port: int, killed_pid: int) -> None:
    """A new process answers on the dead one's port, and it serves."""
    deadline = time.monotonic() + 120
    while not re.search(rf"app process on port {serving_port} exited \(-9\); restarted it", farm.log.read_text()):
        assert time.monotonic() < deadline, farm.log.read_text()[-3000:]
        time.sleep(0.3)
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{serving_port}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            assert time.monotonic() < deadline, farm.log.read_text()[-3000:]
            time.sleep(0.5)
    assert _app_pid(serving_port) != killed_pid
