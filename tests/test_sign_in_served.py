"""The admin sign-in under attack, served as for real: `lookalike serve --processes 2` (nginx in
front of two app processes, PostgreSQL), driven over the WebSocket by a script (tests/admin_client.py)
instead of a browser, so that it can guess as fast as the app answers.

The servers are shared by the module's tests, which run in file order: the flood first, the checks
made during its lock-out, the hostile messages, and last the wait for the lock-out to end. The
limits are the defaults but for a shorter back-off and a one-minute lock-out (so that the test
sees the lock-out begin and end within about 70 s)."""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bench._stclient import Participant
from db.engine import make_engine, make_sessionmaker
from db.models import AdminSignIn
from tests.admin_client import AdminSession, alerts, signed_in
from tests.served import advance, launch, needs_chromium, needs_nginx, nginx_farm, settled, start

pytestmark = [needs_nginx, pytest.mark.slow]

PASSWORD = "a long admin password 42"
SESSIONS, PER_SESSION = 10, 20  # 200 wrong passwords, from 10 browser sessions at once
LIMITS = {
    # waits of 5, 10, ... 160 ms: the 10th failure 0.3 s after the first, well within the flood
    "LOOKALIKE_SIGN_IN_BACKOFF_S": "0.005",
    "LOOKALIKE_SIGN_IN_LOCKOUT_MINUTES": "1",
}
WRONG = "Wrong password."
NOT_CHECKED = "Too many wrong passwords: this attempt was not checked."


@dataclass
class Farm:
    base: str
    log: Path
    make_session: object
    backends: set[int]


@pytest.fixture(scope="module")
def farm(pg_built_study, postgres, tmp_path_factory):
    template, _ = pg_built_study
    url = postgres.create_database(template=template)
    engine = make_engine(url)
    try:
        env = {"LOOKALIKE_ADMIN_PASSWORD": PASSWORD, **LIMITS}
        with nginx_farm(url, tmp_path_factory.mktemp("signin-farm"), env) as served:
            yield Farm(served.url, served.log, make_sessionmaker(engine), served.backends)
    finally:
        engine.dispose()


def _rows(farm: Farm) -> list[AdminSignIn]:
    with farm.make_session() as s:
        return list(s.scalars(select(AdminSignIn).order_by(AdminSignIn.id)))


async def _guess(base: str, k: int) -> list[tuple[float, str]]:
    """One browser session's 20 wrong passwords, each sent when the last was answered."""
    out = []
    # loads the study page, not /admin, and names the admin page over its WebSocket, as a script can:
    # nginx's limit on page loads of /admin (tested below) does not slow it down
    async with AdminSession(base, page="/") as session:
        for i in range(PER_SESSION):
            screen = await session.sign_in(f"wrong password {k}-{i}")
            out.append((time.monotonic(), alerts(screen)[0]))
    return out


@dataclass
class Flood:
    started: float
    seconds: float
    replies: list[str]
    right_during_lockout: list[str]
    spoofed: list[str]


@pytest.fixture(scope="module")
def flood(farm) -> Flood:
    async def run() -> Flood:
        t0 = time.monotonic()
        replies = [r for part in await asyncio.gather(*(_guess(farm.base, k) for k in range(SESSIONS))) for r in part]
        seconds = time.monotonic() - t0
        async with AdminSession(farm.base) as fresh:  # the right password, at once, from a new session
            right = alerts(await fresh.sign_in(PASSWORD))
        # a client that names another address in every header a proxy might read
        spoof = {"X-Forwarded-For": "203.0.113.99", "X-Real-IP": "203.0.113.98", "Forwarded": "for=203.0.113.97"}
        async with AdminSession(farm.base, headers=spoof) as liar:
            spoofed = alerts(await liar.sign_in(PASSWORD))
        return Flood(t0, seconds, [text for _, text in replies], right, spoofed)

    return asyncio.run(run())


def test_200_wrong_passwords_fewer_than_20_evaluated_within_a_minute(farm, flood):
    rows = _rows(farm)[: SESSIONS * PER_SESSION]
    assert len(rows) == 200 and {r.outcome for r in rows} == {"failure", "refused"}
    evaluated = [r for r in rows if r.outcome == "failure"]
    first = rows[0].attempted_at
    within_a_minute = [r for r in evaluated if r.attempted_at < first + timedelta(minutes=1)]
    assert len(within_a_minute) < 20
    assert len(evaluated) == 10  # 3 free, 6 after a back-off, the 10th locks out
    # what the guesser read: "Wrong password." exactly for those evaluated, "not checked" for the rest
    assert sum(r.startswith(WRONG) for r in flood.replies) == 10
    assert sum(r.startswith(NOT_CHECKED) for r in flood.replies) == 190
    assert flood.seconds < 60  # all 200 were sent within the minute
    print(  # the figures the README quotes (pytest -s)
        f"\nflood: 200 attempts in {flood.seconds:.1f} s ({200 / flood.seconds:.0f}/s) over {SESSIONS} sessions; "
        f"evaluated {len(evaluated)} (within a minute: {len(within_a_minute)}), the last "
        f"{(evaluated[-1].attempted_at - first).total_seconds():.1f} s after the first"
    )


def test_the_right_password_is_refused_during_the_lock_out(flood):
    assert flood.right_during_lockout[0].startswith(NOT_CHECKED)
    assert "Sign-in is locked for this browser and address until" in flood.right_during_lockout[0]


def test_a_spoofed_forwarded_for_does_not_reset_the_limit(farm, flood):
    assert flood.spoofed[0].startswith(NOT_CHECKED) and "locked" in flood.spoofed[0]
    rows = _rows(farm)
    assert {r.address for r in rows} == {"127.0.0.1"}  # nginx's own finding, never the client's headers
    assert [r.outcome for r in rows[200:]] == ["refused", "refused"]


def _app_pids(ports: set[int]) -> list[int]:
    """The app processes serving ``ports`` (their command line names the port)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0") if proc.name.isdigit() else []
        except OSError:
            continue
        if b"streamlit" in b" ".join(args) and any(str(p).encode() in args for p in ports):
            pids.append(int(proc.name))
    return pids


def _peak_mb(pid: int) -> int:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmHWM:")[1].split()[0]) // 1024


def test_oversized_and_malformed_websocket_messages_leave_the_app_serving(farm):
    from websockets.exceptions import ConnectionClosedError

    malformed = [b"", b"\x00" * 10, b"\xff" * 1000, os.urandom(100_000), b"\x0a\xff\xff\xff\xff\x0f"]
    pids = _app_pids(farm.backends)
    assert len(pids) == 2

    async def run() -> list[int]:
        # each from a session that loads the study page, not /admin: nginx limits page loads of /admin (the
        # flood above used them up), not which page a WebSocket asks for
        for data in malformed:  # refused by the app (logged): the session goes on, or the app closes it
            async with AdminSession(farm.base, page="/") as s:
                await s.send_raw(data)
                try:
                    outcome = "served" if (await s.rerun([])).button("Sign in") is not None else "other"
                except ConnectionClosedError as e:
                    outcome = f"closed {e.rcvd.code if e.rcvd else None}"
                print(f"malformed message of {len(data)} bytes: {outcome}")
                assert outcome == "served" or outcome.startswith("closed 10")

        async def oversized() -> int:
            try:
                async with AdminSession(farm.base, page="/") as s:
                    await s.send_raw(b"B" * 150_000_000)
                    await s.rerun([])
            except ConnectionClosedError as e:  # 1009; or no close frame read while the client was still sending
                return e.rcvd.code if e.rcvd else -1
            return 0  # not closed

        codes = await asyncio.gather(*(oversized() for _ in range(5)))  # five at once, 750 MB in all
        # others are served: participants' first pages (on both processes, by their fresh route cookies)
        for i in range(4):
            participant = Participant(farm.base, f"after-hostile-{i}", think_s=0, rng=random.Random(i))
            participant.first_page_only = True
            await participant.run()
            assert participant.first_page_s is not None
        return codes

    codes = asyncio.run(run())
    print(f"five 150 MB messages at once: closed with {codes}")
    # every one closed: with 1009 ("message too big") when the client reads the server's close frame, or
    # abruptly while it is still sending (which of the two depends on timing: seen both)
    assert set(codes) <= {1009, -1}
    log = farm.log.read_text()
    assert log.count("Error deserializing back message") >= 4 and "exited" not in log  # logged; no process died
    assert _app_pids(farm.backends) == pids
    assert max(_peak_mb(p) for p in pids) < 500  # never held a 150 MB message (README "Security")


def test_the_proxy_limits_page_loads_of_the_admin_page_per_address(farm):
    """nginx's own limit (limit_req): 30 quick page loads of /admin from one address, most refused with
    429, while the study page loads. It cannot see the passwords a WebSocket carries: the limit that
    counts is the app's (above)."""
    statuses = []
    for _ in range(30):
        try:
            with urllib.request.urlopen(farm.base + "admin", timeout=10) as r:
                statuses.append(r.status)
        except urllib.error.HTTPError as e:
            statuses.append(e.code)
    assert set(statuses) <= {200, 429} and statuses.count(429) >= 20
    with urllib.request.urlopen(farm.base, timeout=10) as r:
        assert r.status == 200


def test_every_attempt_is_logged_and_the_right_password_works_after_the_lock_out(farm, flood):
    rows = _rows(farm)
    last_failure = max(r.attempted_at for r in rows if r.outcome == "failure")
    wait = (last_failure + timedelta(minutes=1) - datetime.now(last_failure.tzinfo)).total_seconds()
    time.sleep(max(0.0, wait) + 0.5)

    async def right() -> bool:
        async with AdminSession(farm.base) as s:
            return signed_in(await s.sign_in(PASSWORD))

    assert asyncio.run(right())
    rows = _rows(farm)
    assert rows[-1].outcome == "success"
    log = farm.log.read_text()
    logged = re.findall(r"admin sign-in (\w+): target=admin address=127\.0\.0\.1 session=(\w+) at=", log)
    assert sorted(logged) == sorted((r.outcome, r.browser_session) for r in rows)  # every attempt, once
    assert len(set(re.findall(r"lookalike\.admin\[(\d+)\]", log))) == 2  # both app processes took attempts
    assert PASSWORD not in log and "wrong password" not in log


#: collects every Content-Security-Policy violation the page reports, before any of its scripts runs
CSP_WATCH = """document.addEventListener('securitypolicyviolation', e =>
    (window.__csp = window.__csp || []).push(`${e.violatedDirective} ${e.blockedURI}`));"""


@needs_chromium
def test_the_participant_and_admin_pages_work_under_the_content_security_policy(farm):
    """In Chromium, through nginx: a participant consents and answers trial screens (images, forms),
    the researcher signs in, unblinds and downloads the report; the browser reports no violation of
    the policy and no console error about it. Runs last: the lock-out above has ended."""
    from playwright.sync_api import sync_playwright

    console: list[str] = []
    with sync_playwright() as pw:
        browser = launch(pw)
        context = browser.new_context()
        context.add_init_script(CSP_WATCH)
        page = context.new_page()
        page.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
        response = page.goto(farm.base + "?PROLIFIC_PID=csp-1")
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert (headers["x-frame-options"], headers["referrer-policy"]) == ("DENY", "no-referrer")
        assert headers["x-content-type-options"] == "nosniff"
        start(page, farm.base + "?PROLIFIC_PID=csp-1")
        for _ in range(3):
            advance(page)
        violations = page.evaluate("window.__csp || []")
        admin = context.new_page()
        admin.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
        admin.goto(farm.base + "admin")
        settled(admin, "Sign in")
        admin.get_by_label("Password", exact=True).fill(PASSWORD)
        admin.get_by_role("button", name="Sign in", exact=True).click()
        settled(admin, "Unblind: show results by condition")
        admin.get_by_text("Unblind: show results by condition", exact=True).click()
        settled(admin, "Download report (HTML)")
        with admin.expect_download() as download:
            admin.get_by_role("button", name="Download report (HTML)").click()
        assert Path(download.value.path()).read_text(encoding="utf-8").startswith("<!doctype html>")
        violations += admin.evaluate("window.__csp || []")
        browser.close()
    assert violations == [], violations
    assert [c for c in console if "Content Security Policy" in c or "Refused to" in c] == []
