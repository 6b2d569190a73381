"""`lookalike prolific sync` against the fake API, on SQLite and PostgreSQL: returns, time-outs and
rejections there free places and units here at once, mismatches are listed, a second sync changes
nothing, a participant who returns mid-study hands their units to the next at the next sync, and an
unreachable API leaves the study untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

from db.engine import make_engine, make_sessionmaker
from db.models import Participant, ProlificSync
from survey.participants import lifecycle, planning, service
from survey.prolific.client import ProlificClient, ProlificUnavailable, RetryPolicy
from survey.prolific.sync import run_sync
from survey.study.errors import StudyUnavailable
from tests.prolific_fake import FakeProlific

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
PSTUDY = "60aca280709ee40ec37d4885"


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def fake():
    f = FakeProlific(page_size=3)
    with f.running():
        yield f


def _client(fake: FakeProlific) -> ProlificClient:
    return ProlificClient(fake.token, fake.url, retry=RetryPolicy(attempts=2, backoff_s=0.01))


def _start(sessions, study, fake, pid: str, rng) -> str:
    fake.add(PSTUDY, pid, started_at=T0)
    return service.start_participant(sessions, study.id, {"PROLIFIC_PID": pid}, rng, now=T0)


def _state(sessions, study_id: int):
    """Everything a sync may change: each participant's status and times, and the unit counts."""
    with sessions() as s:
        people = s.execute(
            select(Participant.external_id, Participant.status, Participant.returned_at, Participant.timed_out_at)
            .where(Participant.study_id == study_id)
            .order_by(Participant.id)
        ).all()
        return [tuple(p) for p in people], planning.unit_counts(s, study_id)


def test_sync_frees_those_who_left_there_lists_mismatches_and_changes_nothing_twice(sessions, tiny_study, fake):
    _, _, study = tiny_study(
        "sync", make_session=sessions, trials_per_participant=2, ask_comment=False,
        completion_code="DONE1", prolific_study_id=PSTUDY,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    tokens = {pid: _start(sessions, study, fake, pid, rng) for pid in ("ret", "tim", "rej", "code", "here")}
    from tests.helpers import answer_all

    answer_all(sessions, tokens["code"], rng)
    fake.studies[PSTUDY] = [s for s in fake.studies[PSTUDY] if s["participant_id"] != "here"]
    fake.set("ret", "RETURNED", completed_at=T0 + timedelta(minutes=5))
    fake.set("tim", "TIMED-OUT", completed_at=T0 + timedelta(minutes=61))
    fake.set("rej", "REJECTED", completed_at=T0 + timedelta(minutes=7))
    fake.set("code", "AWAITING REVIEW", code="WRONG")
    fake.add(PSTUDY, "ghost", "AWAITING REVIEW", code="DONE1")
    fake.add(PSTUDY, "reserved", "RESERVED")
    with sessions() as s:
        held_before = sum(planning.unit_counts(s, study.id).values())

    rec = run_sync(sessions, study.id, _client(fake), by="tester", now=T0 + timedelta(minutes=70))
    assert {(r.pid, r.status, r.at) for r in rec.released} == {
        ("ret", "returned", T0 + timedelta(minutes=5)),
        ("tim", "timed_out", T0 + timedelta(minutes=61)),
        ("rej", "returned", T0 + timedelta(minutes=7)),
    }
    assert {(m.kind, m.pid) for m in rec.mismatches} == {
        ("code", "code"),
        ("no_submission", "here"),
        ("no_participant", "ghost"),
    }
    assert rec.submissions == 6 and rec.counts["RETURNED"] == 1 and rec.by == "tester"
    with sessions() as s:
        p = s.scalar(select(Participant).where(Participant.external_id == "ret"))
        assert p is not None and p.status == "returned" and lifecycle.as_utc(p.returned_at) == T0 + timedelta(minutes=5)
        assert sum(planning.unit_counts(s, study.id).values()) == held_before - 3 * 2  # three left, two units each

    before = _state(sessions, study.id)
    again = run_sync(sessions, study.id, _client(fake), by="tester", now=T0 + timedelta(minutes=71))
    assert again.released == () and again.mismatches == rec.mismatches
    assert _state(sessions, study.id) == before
    with sessions() as s:
        assert len(s.scalars(select(ProlificSync).where(ProlificSync.study_id == study.id)).all()) == 2


def test_a_return_mid_study_hands_the_units_to_the_next_participant_at_the_next_sync(sessions, tiny_study, fake):
    # one judgement per unit is the target and the first participant holds every unit: nobody else
    # can start until their units are freed
    _, _, study = tiny_study(
        "handover", make_session=sessions, judgements_per_unit=1, trials_per_participant=50, prolific_study_id=PSTUDY
    )
    rng = np.random.default_rng(1)
    first = _start(sessions, study, fake, "first", rng)
    service.finish_instructions(sessions, first, now=T0)
    trial = service.participant_state(sessions, first, now=T0).trial
    service.mark_shown(sessions, first, trial.trial_id, now=T0)
    assert service.submit_rating(sessions, first, trial.trial_id, 5, now=T0 + timedelta(seconds=20))
    held = _units(sessions, first)
    assert len(held) >= 2
    with pytest.raises(StudyUnavailable, match="full"):
        service.start_participant(sessions, study.id, {"PROLIFIC_PID": "second"}, rng, now=T0 + timedelta(minutes=1))

    fake.set("first", "RETURNED", completed_at=T0 + timedelta(minutes=2))  # returned on Prolific, not here
    with pytest.raises(StudyUnavailable, match="full"):  # until the next sync, the units stay held
        service.start_participant(sessions, study.id, {"PROLIFIC_PID": "second"}, rng, now=T0 + timedelta(minutes=3))
    rec = run_sync(sessions, study.id, _client(fake), now=T0 + timedelta(minutes=3))
    assert [(r.pid, r.status) for r in rec.released] == [("first", "returned")]
    second = _start(sessions, study, fake, "second", rng)
    answered = _answered_units(sessions, first)
    assert len(answered) == 1
    # the units the first left unanswered are the second's (with trials to spare, the answered one too)
    assert held - answered <= _units(sessions, second)


def _units(sessions, token: str) -> set[str]:
    from db.models import Trial

    with sessions() as s:
        pid = s.scalar(select(Participant.id).where(Participant.token == token))
        return set(s.scalars(select(Trial.unit).where(Trial.participant_id == pid, Trial.is_catch.is_(False))))


def _answered_units(sessions, token: str) -> set[str]:
    from db.models import Response, Trial

    with sessions() as s:
        pid = s.scalar(select(Participant.id).where(Participant.token == token))
        return set(
            s.scalars(
                select(Trial.unit).join(Response, Response.trial_id == Trial.id).where(Trial.participant_id == pid)
            )
        )


def test_an_unreachable_api_leaves_the_study_untouched_and_records_why(sessions, tiny_study, fake):
    _, _, study = tiny_study("down", make_session=sessions, prolific_study_id=PSTUDY)
    rng = np.random.default_rng(2)
    _start(sessions, study, fake, "p1", rng)
    fake.set("p1", "RETURNED")
    before = _state(sessions, study.id)
    fake.faults = ["drop", "500"]
    with pytest.raises(ProlificUnavailable):
        run_sync(sessions, study.id, _client(fake), by="tester")
    assert _state(sessions, study.id) == before
    from survey.prolific.records import last_sync

    last = last_sync(sessions, study.id)
    assert last is not None and not last.ok and "attempts" in (last.error or "") and last.released == ()
