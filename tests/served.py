"""Helpers for tests against a served app (`lookalike serve` in its own process) driven by a
real browser (Debian's Chromium through Playwright; never a downloaded browser)."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from db.models import Participant, Response
from db.pgserver import free_port
from survey.web import serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (apt-get install chromium)"
)
needs_nginx = pytest.mark.skipif(
    not (shutil.which("nginx") or Path(serving.NGINX).exists()),
    reason="Debian nginx is not installed (apt-get install nginx)",
)
#: where browser tests leave screenshots
ARTIFACTS = Path(os.environ.get("LOOKALIKE_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / ".artifacts"))
#: The mark this run's browsers carry (in their User-Agent) and its servers know: their participants are
#: the project's tests, never flagged as automated (survey/web/views/browser_signals.py). New every run,
#: so a bot cannot know it.
TEST_MARK = secrets.token_hex(16)
#: the trials of one participant of the shared study (conftest.built_study): 3 protocols x (4 + 1 attention check)
TRIALS = 15


def participant_token(page) -> str:
    """The participant token in a study page's URL."""
    return parse_qs(urlparse(page.url).query)["p"][0]


def stored_answers(make_session, token: str) -> dict[int, tuple]:
    """A participant's stored answers by trial id: (rating, choice, best, worst, created_at)."""
    with make_session() as s:
        p = s.scalar(select(Participant).where(Participant.token == token))
        return {
            r.trial_id: (r.rating, r.choice, r.best, r.worst, r.created_at)
            for r in s.scalars(select(Response).where(Response.participant_id == p.id))
        }


@dataclass
class Server:
    """One `lookalike serve` process (its own process group, so a kill takes Streamlit with it)."""

    db_url: str
    port: int
    #: environment for the server on top of this process's own; a value of None removes the variable
    env: dict[str, str | None] = field(default_factory=dict)
    #: where the server's output goes (for its log: errors are logged there, never shown); None drops it
    log: Path | None = None
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}/"

    def start(self, timeout: float = 90) -> Server:
        env = {
            **os.environ,
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
            "LOOKALIKE_BROWSER_TEST_MARK": TEST_MARK,
            **self.env,
        }
        log = self.log.open("ab") if self.log is not None else None
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "survey.cli", "serve", "--db", self.db_url, "--port", str(self.port)],
                env={k: v for k, v in env.items() if v is not None},
                stdout=log or subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if log is not None:
                log.close()  # the server holds its own copy
        deadline = time.monotonic() + timeout
        while True:
            try:
                if urllib.request.urlopen(f"{self.url}_stcore/health", timeout=2).read() == b"ok":
                    return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the app did not come up on port {self.port}") from None
                time.sleep(0.3)

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, as in a crash or an OOM kill."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def nginx_accepts(config: str, prefix: Path) -> None:
    """``nginx -t`` accepts the configuration text ``config`` (written to ``prefix/nginx.conf``, with
    ``prefix`` as nginx's prefix folder, its ``tmp`` folder created)."""
    (prefix / "tmp").mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(config)
    done = subprocess.run(
        [serving.find_nginx(), "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@dataclass
class NginxFarm:
    """A running `lookalike serve --processes 2`: nginx on ``port`` in front of two app processes."""

    proc: subprocess.Popen
    port: int
    #: the serve command's output (nginx's and both app processes')
    log: Path
    #: the app processes' ports
    backends: set[int]
    #: the folder of nginx's configuration and access log (removed when the farm stops cleanly)
    run_dir: Path

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}/"


@contextlib.contextmanager
def nginx_farm(db_url: str, tmp: Path, env: dict[str, str], timeout: float = 180) -> Iterator[NginxFarm]:
    """`lookalike serve --processes 2` on ``db_url`` (PostgreSQL), its home and log in ``tmp``, ``env``
    on top of this process's environment; yields once it has printed its ports, and stops it with
    SIGTERM on the way out (its exit status is then in ``farm.proc.returncode``)."""
    port, log = free_port(), tmp / "serve.log"
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "LOOKALIKE_HOME": str(tmp / "home"), **env}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "survey.cli", "serve", "--db", db_url, "--port", str(port), "--processes", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not (m := re.search(r"\(ports (\d+), (\d+); config (\S+)/nginx\.conf\)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        yield NginxFarm(proc, port, log, {int(m.group(1)), int(m.group(2))}, Path(m.group(3)))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@functools.cache
def marked_user_agent() -> str:
    """Headless Chromium's own User-Agent with the test mark appended."""
    version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"HeadlessChrome/{version} Safari/537.36 LookalikeTest/{TEST_MARK}"
    )


def launch(pw, *, marked: bool = True):
    """Debian's Chromium; ``marked``: as the project's own test (see :data:`TEST_MARK`), else as
    any automated browser would come."""
    args = [*ARGS, f"--user-agent={marked_user_agent()}"] if marked else ARGS
    return pw.chromium.launch(executable_path=CHROMIUM, args=args)


def settled(page, text: str, timeout_ms: int = 30_000) -> None:
    """Wait until the page shows ``text`` and Streamlit has finished the rerun: no stale
    elements from the previous screen, no running indicator and, on a trial screen ("Screen N
    of"), every image loaded. Waiting for a trial screen also ends at the closing questions or
    the completion code (after the last trial)."""
    page.wait_for_function(
        """([text]) => {
            const body = document.body.innerText;
            const idle = !document.querySelector('[data-stale="true"]')
                && !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]');
            const trial = text.startsWith('Screen ');
            if (trial && (body.includes('Your completion code') || body.includes('Almost done'))) return idle;
            if (!idle || !body.includes(text)) return false;
            const imgs = [...document.querySelectorAll('img')];
            return !trial || (imgs.length >= 2 && imgs.every(i => i.complete && i.naturalWidth > 0));
        }""",
        arg=[text],
        timeout=timeout_ms,
    )


def screen_number(page) -> int | None:
    """The 'Screen N of M' number on a trial screen; None elsewhere."""
    body = page.inner_text("body")
    if "Screen " not in body:
        return None
    return int(body.split("Screen ", 1)[1].split(" ", 1)[0])


def answer_screen(page, n: int) -> None:
    """Answer the trial on screen (any protocol), varying the answer with ``n``, and wait for
    the next screen."""
    questions = ("How similar are the five", "Which set is more similar", "Least similar set")
    # the screen arrives in pieces: wait for its question and the submit button before reading it
    page.wait_for_function(
        """(qs) => {
        const body = document.body.innerText;
        return qs.some(q => body.includes(q)) && !!document.querySelector('[data-testid="stFormSubmitButton"]');
    }""",
        arg=list(questions),
        timeout=30_000,
    )
    body = page.inner_text("body")

    def option(label: str):  # a radio option by its exact label (several groups: one per group, in order)
        return page.locator('[data-testid="stRadioOption"]', has_text=re.compile(f"^{re.escape(label)}$"))

    if "How similar are the five" in body:
        option(("1 · not at all similar", "3", "4 · somewhat similar", "6", "7 · extremely similar")[n % 5]).click()
    elif "Which set is more similar" in body:
        option(("A is more similar", "Equally similar", "B is more similar")[n % 3]).click()
    else:  # best-worst: two groups, "Most similar set" then "Least similar set"
        option("Set 1").nth(0).click()
        option("Set 2").nth(1).click()
    page.get_by_role("button", name="Submit", exact=True).click()


def start(page, url: str) -> None:
    """Consent and read the instructions; ends on the first trial screen."""
    page.goto(url)
    page.get_by_role("button", name="I agree, start").click()
    page.get_by_role("button", name="Start", exact=True).click()
    settled(page, "Screen 1 of")


def advance(page) -> str:
    """Answer the current screen (trial or closing questions); returns what was on screen."""
    n = screen_number(page)
    if n is not None:
        answer_screen(page, n)
        settled(page, f"Screen {n + 1} of")
        return "trial"
    if "Almost done" in page.inner_text("body"):
        page.get_by_role("button", name="Finish", exact=True).click()
        settled(page, "Your completion code")
        return "questions"
    return "done"
