"""`lookalike prolific review` against the fake API: a recommendation and its reason from our data
for every submission awaiting review, approvals only of the recommended ones and only when asked,
rejections one at a time with a category and message the API accepts, every call recorded; and the
faults as the command shows them (one line, exit 2, nothing changed, the token never printed)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import select, text

from db.engine import make_engine, make_sessionmaker
from db.models import Participant, ProlificAction, ProlificSync
from survey.cli import main
from survey.participants import lifecycle, service
from survey.prolific.client import Submission
from survey.prolific.review import Evidence, recommend
from tests.helpers import answer_all
from tests.prolific_fake import FakeProlific

PSTUDY = "60aca280709ee40ec37d4885"
ENTERED = {"checks": "CHECK1", "badcode": "DONE2", "unfinished": "NOCODE"}  # the codes given on Prolific
REASON = (
    "You failed both attention checks of this study: the products shown for them were of another category "
    "and were rated as very similar."
)


def _sub(code: str | None = "DONE1") -> Submission:
    return Submission("s1", "pid", "AWAITING REVIEW", None, None, code)


def _ev(status: str = "completed", code: str | None = "DONE1", failed: int = 0, fast: int = 0, other=()) -> Evidence:
    return Evidence(status, code, failed, 1, fast, tuple(other))


@pytest.mark.parametrize(
    ("sub", "ev", "expected"),
    [
        (_sub(), _ev(), ("approve", "completed", None)),
        (_sub(), None, ("review", "no participant with this PROLIFIC_PID here: no data", "NO_DATA")),
        (_sub("SCREEN1"), _ev("screened_out", "SCREEN1"), ("review", "screened out here", "FAILED_INSTRUCTIONS")),
        (_sub(None), _ev("active", None), ("review", "did not finish here (active)", "NO_CODE")),
        (_sub(None), _ev("timed_out", None), ("review", "did not finish here (timed out)", "NO_CODE")),
        (_sub("CHECK1"), _ev(code="CHECK1", failed=2), ("review", "failed attention checks (2)", "FAILED_CHECK")),
        (_sub(), _ev(fast=3), ("review", "too fast (3 answers", "TOO_QUICKLY")),
        (_sub(), _ev(other=("automated:bot",)), ("review", "flagged: automated:bot", "OTHER")),
        (_sub("NOPE"), _ev(), ("review", "entered code NOPE, the outcome's is DONE1", "BAD_CODE")),
    ],
)
def test_each_reason_from_our_data_gives_its_recommendation(sub, ev, expected):
    rec = recommend(sub, ev)
    assert (rec.recommend, rec.category) == (expected[0], expected[2]) and rec.reason.startswith(expected[1])


def test_too_fast_answers_up_to_the_allowed_number_are_approved():
    assert recommend(_sub(), _ev(fast=2), too_fast_max=2).recommend == "approve"
    assert recommend(_sub(), _ev(fast=3), too_fast_max=2).recommend == "review"


@pytest.fixture
def fake(monkeypatch):
    f = FakeProlific(page_size=2)
    with f.running():
        monkeypatch.setenv("PROLIFIC_TOKEN", f.token)
        monkeypatch.setenv("LOOKALIKE_PROLIFIC_API", f.url)
        yield f


@pytest.fixture
def study(db_url, tiny_study, fake):
    """A study with one participant of each kind, their submissions on the fake platform."""
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    _, _, info = tiny_study(
        "review", make_session=sessions, trials_per_participant=2, ask_comment=False,
        completion_code="DONE1", failed_check_code="CHECK1", prolific_study_id=PSTUDY,
    )  # fmt: skip
    rng = np.random.default_rng(3)
    tokens = {}
    for pid in ("good", "checks", "fast", "badcode", "unfinished"):
        fake.add(PSTUDY, pid, "ACTIVE")
        tokens[pid] = service.start_participant(sessions, info.id, {"PROLIFIC_PID": pid}, rng)
        if pid != "unfinished":
            answer_all(sessions, tokens[pid], rng)
        fake.set(pid, "AWAITING REVIEW", code=ENTERED.get(pid, "DONE1"))
    with sessions.begin() as s:  # the flags the answers service sets (tests/test_checks.py shows when)
        for pid, flag in (("fast", "too_fast:1"), ("checks", "failed_check:2")):
            p = s.scalar(select(Participant).where(Participant.external_id == pid))
            assert p is not None
            p.flags = [*p.flags, flag]
    fake.add(PSTUDY, "ghost", "AWAITING REVIEW", code="DONE1")
    fake.add(PSTUDY, "gone", "RETURNED")
    yield db_url, sessions, info
    engine.dispose()


def _actions(sessions) -> list[tuple[str, str | None, int | None, str]]:
    with sessions() as s:
        rows = s.scalars(select(ProlificAction).order_by(ProlificAction.id)).all()
        return [(a.action, a.participant_pid, a.status_code, a.by) for a in rows]


def test_review_lists_every_submission_awaiting_review_and_approves_only_the_recommended(study, fake, capsys):
    url, sessions, _ = study
    assert main(["prolific", "review", "--db", url]) == 0
    out = capsys.readouterr().out
    for pid, words in [
        ("good", "approve    -                    completed"),
        ("checks", "FAILED_CHECK         failed attention checks"),
        ("fast", "TOO_QUICKLY          too fast (1 answers"),
        ("badcode", "BAD_CODE             entered code DONE2"),
        ("unfinished", "NO_CODE              did not finish here (active)"),
        ("ghost", "NO_DATA              no participant"),
    ]:
        assert any(line.startswith(pid) and words in line for line in out.splitlines()), (pid, out)
    assert "gone" not in out and "6 awaiting review: 1 recommended for approval, 5 to review" in out
    assert _actions(sessions) == [] and fake.status_of("good") == "AWAITING REVIEW"  # nothing sent unasked

    pages = -(-len(fake.studies[PSTUDY]) // fake.page_size)
    fake.faults = ["none"] * pages + ["401"]  # the listing goes through, the approval is refused
    assert main(["prolific", "review", "--db", url, "--approve", "--by", "ana"]) == 2
    assert "Prolific refused PROLIFIC_TOKEN (401)" in capsys.readouterr().err
    assert _actions(sessions) == [("APPROVE", "good", None, "ana")]  # the attempt is on record
    assert fake.status_of("good") == "AWAITING REVIEW"
    with sessions.begin() as s:
        s.execute(text("DELETE FROM prolific_actions"))

    assert main(["prolific", "review", "--db", url, "--approve", "--by", "ana"]) == 0
    assert "approve good: Prolific answered 200" in capsys.readouterr().out
    assert fake.status_of("good") == "APPROVED" and fake.status_of("checks") == "AWAITING REVIEW"
    assert _actions(sessions) == [("APPROVE", "good", 200, "ana")]


def test_a_rejection_is_one_participant_with_a_category_and_a_message_the_api_accepts(study, fake, capsys):
    url, sessions, _ = study
    short = ["prolific", "review", "--db", url, "--reject", "checks", "--category", "FAILED_CHECK"]
    assert main([*short, "--reason", "Failed checks."]) == 2
    assert "Prolific requires at least 100" in capsys.readouterr().err
    assert main([*short[:-1], "WRONG_CATEGORY", "--reason", REASON]) == 2
    assert "is not one Prolific accepts: TOO_QUICKLY" in capsys.readouterr().err
    assert main([*short, "--reason", REASON, "--approve"]) == 2
    assert main(["prolific", "review", "--db", url, "--reject", "gone", "--category", "OTHER", "--reason", REASON]) == 2
    assert "no submission of this PROLIFIC_PID is awaiting review" in capsys.readouterr().err
    assert _actions(sessions) == [] and fake.status_of("checks") == "AWAITING REVIEW"

    assert main([*short, "--reason", REASON, "--by", "ana"]) == 0
    assert "reject checks: Prolific answered 200" in capsys.readouterr().out
    assert fake.status_of("checks") == "REJECTED" and fake.status_of("good") == "AWAITING REVIEW"
    with sessions() as s:
        a = s.scalars(select(ProlificAction)).one()
        assert (a.action, a.participant_pid, a.by, a.ok) == ("REJECT", "checks", "ana", True)
        assert a.request == {"action": "REJECT", "message": REASON, "rejection_category": "FAILED_CHECK"}
        assert '"status": "REJECTED"' in a.answer and a.at is not None


def test_sync_command_prints_what_it_did_and_faults_are_one_line_with_the_study_untouched(study, fake, capsys):
    url, sessions, info = study
    fake.set("unfinished", "RETURNED", completed_at=datetime(2026, 12, 7, 9, 30, tzinfo=UTC))
    fake.faults = ["401"]
    assert main(["prolific", "sync", "--db", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lookalike: error: Prolific refused PROLIFIC_TOKEN (401)") and err.count("\n") == 1
    fake.faults = ["500", "drop", "500", "500", "500"]
    assert main(["prolific", "sync", "--db", url]) == 2  # five attempts, the back-off really waited (1+2+4+8 s)
    assert "after 5 attempts" in capsys.readouterr().err
    with sessions() as s:
        p = s.scalar(select(Participant).where(Participant.external_id == "unfinished"))
        assert p is not None and p.status == "active"

    assert main(["prolific", "sync", "--db", url, "--by", "ana"]) == 0
    out = capsys.readouterr().out
    assert "released unfinished: returned (on Prolific at 2026-12-07 09:30:00 UTC)" in out
    assert "mismatch no_participant ghost" in out and "mismatch code badcode" in out
    with sessions() as s:
        p = s.scalar(select(Participant).where(Participant.external_id == "unfinished"))
        assert p is not None and p.status == "returned"
        assert lifecycle.as_utc(p.returned_at) == datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
        assert [(x.ok, x.by) for x in s.scalars(select(ProlificSync).order_by(ProlificSync.id))][-1] == (True, "ana")
        tables = ("prolific_syncs", "prolific_actions")
        stored = " ".join(str(v) for t in tables for row in s.execute(text(f"SELECT * FROM {t}")) for v in row)
    assert fake.token not in stored and fake.token not in out + err
    assert info.id
