"""A real browser (Debian's Chromium, driven by Playwright) takes a pairwise study end to end.

.ci/run installs the chromium package; without /usr/bin/chromium this test is skipped
with the install command.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from db.models import Participant, Response, Trial
from db.pgserver import free_port
from tests.served import ARTIFACTS, Server, launch, needs_chromium, settled

pytestmark = needs_chromium


@pytest.fixture
def served_pairwise_study(tiny_study):
    from survey.study.config import Component

    db, sessions, _ = tiny_study(
        "pw",
        methods=(Component("ssim"), Component("efficientnet")),
        references_per_category=2,
        reference_filter={"view": "packshot"},
        protocols=("pairwise",),
        trials_per_participant=4,
        attention_check_rate=0.25,
        ask_comment=False,
        completion_code="PW-OK",
    )
    server = Server(f"sqlite:///{db}", free_port()).start()
    yield server.url, sessions
    server.stop()


def test_participant_completes_a_pairwise_study_in_chromium(served_pairwise_study):
    from playwright.sync_api import sync_playwright

    url, sessions = served_pairwise_study
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    timings = []
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(url + "?PROLIFIC_PID=browser-test")
        page.get_by_role("button", name="I agree, start").click()
        page.get_by_role("button", name="Start", exact=True).click()
        n = 0
        while True:
            settled(page, f"Screen {n + 1} of")
            if "Your completion code" in page.inner_text("body"):
                break
            if n == 0:
                page.screenshot(path=str(ARTIFACTS / "pairwise-trial.png"), full_page=False)
            t0 = time.perf_counter()
            page.get_by_text(("A is more similar", "Equally similar", "B is more similar")[n % 3]).click()
            page.get_by_role("button", name="Submit", exact=True).click()
            settled(page, f"Screen {n + 2} of")
            timings.append(time.perf_counter() - t0)
            n += 1
            assert n < 50
        assert "PW-OK" in page.inner_text("body")
        browser.close()
    with sessions() as s:
        p = s.scalar(select(Participant).where(Participant.external_id == "browser-test"))
        n_trials = s.scalar(select(func.count()).select_from(Trial).where(Trial.participant_id == p.id))
        responses = s.scalars(select(Response).where(Response.participant_id == p.id)).all()
        assert n == n_trials == 5 and len(responses) == n_trials  # 4 pairs + 1 attention check
        assert len({r.trial_id for r in responses}) == n_trials  # each answer exactly once
        assert p.completed_at is not None
    print(
        f"\nbrowser: {n} trials, submit-to-next-screen {sum(timings) / len(timings):.2f} s on average; "
        f"screenshot {ARTIFACTS / 'pairwise-trial.png'}"
    )
