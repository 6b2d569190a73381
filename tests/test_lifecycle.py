"""Participant lifecycle (survey/participants/lifecycle.py): every transition timestamped, places and units freed
by those who leave, time-outs on an injected clock, outcomes with their own codes, study status,
and simulated dropout keeping the answered judgements balanced."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

from db.models import Participant, Response, Study, Trial
from survey.participants import lifecycle, planning, service
from survey.participants.status import format_status, refresh_status
from tests.apptest import app, click
from tests.helpers import answer_all

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _p(make_session, token: str) -> Participant:
    with make_session() as s:
        p = s.scalar(select(Participant).where(Participant.token == token))
        assert p is not None
        s.expunge(p)
        return p


def _counts_match_the_trials(make_session, study_id: int) -> None:
    """unit_counts.trials: real trials answered or held by active participants; .answered: answers."""
    with make_session() as s:
        rows = s.execute(
            select(Trial.unit, Participant.status, Response.id)
            .join(Participant, Participant.id == Trial.participant_id)
            .outerjoin(Response, Response.trial_id == Trial.id)
            .where(Participant.study_id == study_id, Trial.is_catch.is_(False), Trial.is_repeat.is_(False))
        ).all()
        counted = Counter(u for u, status, r in rows if r is not None or status == "active")
        answered = Counter(u for u, _, r in rows if r is not None)
        assert {k: v for k, v in planning.unit_counts(s, study_id).items() if v} == counted
        assert {k: v for k, v in planning.answered_counts(s, study_id).items() if v} == answered


def _answer_some(make_session, token: str, n: int, now: datetime) -> datetime:
    service.finish_instructions(make_session, token, now=now)
    for _ in range(n):
        trial = service.participant_state(make_session, token, now=now).trial
        service.mark_shown(make_session, token, trial.trial_id, now=now)
        now += timedelta(seconds=30)
        assert service.submit_rating(make_session, token, trial.trial_id, 4, now=now)
    return now


def test_completed_returned_and_timed_out_each_timestamped_and_only_from_active(tiny_study):
    _, sessions, study = tiny_study("life", trials_per_participant=3, ask_comment=False, time_limit_minutes=30)
    rng = np.random.default_rng(0)
    done = service.start_participant(sessions, study.id, {}, rng, now=T0)
    answer_all(sessions, done, rng)
    assert _p(sessions, done).status == "completed" and _p(sessions, done).completed_at is not None

    left = service.start_participant(sessions, study.id, {}, rng, now=T0)
    _answer_some(sessions, left, 1, T0)
    service.return_participant(sessions, left, now=T0 + timedelta(minutes=5))
    p = _p(sessions, left)
    assert (p.status, lifecycle.as_utc(p.returned_at)) == ("returned", T0 + timedelta(minutes=5))
    service.return_participant(sessions, left)  # idempotent
    assert service.participant_state(sessions, left).stage == "returned"
    with pytest.raises(PermissionError, match="over \\(completed\\)"):
        service.return_participant(sessions, done)

    idle = service.start_participant(sessions, study.id, {}, rng, now=T0)
    last = _answer_some(sessions, idle, 1, T0)
    assert service.participant_state(sessions, idle, now=last + timedelta(minutes=29)).stage == "trial"
    assert service.participant_state(sessions, idle, now=last + timedelta(minutes=31)).stage == "timed_out"
    p = _p(sessions, idle)  # stamped with the moment the limit passed, not when it was noticed
    assert (p.status, lifecycle.as_utc(p.timed_out_at)) == ("timed_out", last + timedelta(minutes=30))
    with sessions.begin() as s:  # no second transition out of a final status
        again = s.get(Participant, p.id)
        assert lifecycle.leave(s, again, "returned", T0) is False
        with pytest.raises(ValueError, match="must be returned, timed_out or screened_out"):
            lifecycle.leave(s, again, "completed", T0)  # type: ignore[arg-type]
    _counts_match_the_trials(sessions, study.id)


def test_screened_out_frees_units_and_shows_its_code_but_no_trial(tiny_study):
    _, sessions, study = tiny_study(
        "screen", trials_per_participant=3, screened_out_code="SCR1", screened_out_url="https://example.org/s"
    )
    token = service.start_participant(sessions, study.id, {}, np.random.default_rng(0), now=T0)
    with sessions.begin() as s:
        p = s.scalar(select(Participant).where(Participant.token == token))
        assert lifecycle.leave(s, p, "screened_out", T0 + timedelta(minutes=2))
    state = service.participant_state(sessions, token)
    assert (state.stage, state.trial, state.completion_code, state.redirect_url) == (
        "screened_out",
        None,
        "SCR1",
        "https://example.org/s",
    )
    assert lifecycle.as_utc(_p(sessions, token).screened_out_at) == T0 + timedelta(minutes=2)
    with sessions() as s:
        trial = s.scalar(select(Trial.id).where(Trial.participant_id == _p(sessions, token).id))
    assert service.submit_rating(sessions, token, trial, 4) is False  # nothing stored after leaving
    _counts_match_the_trials(sessions, study.id)
    with sessions() as s:
        assert sum(planning.unit_counts(s, study.id).values()) == 0


def test_a_freed_place_is_taken_by_a_newcomer(tiny_study):
    _, sessions, study = tiny_study("places", trials_per_participant=2, max_participants=1, time_limit_minutes=10)
    rng = np.random.default_rng(1)
    first = service.start_participant(sessions, study.id, {}, rng, now=T0)
    with pytest.raises(service.StudyUnavailable, match="full"):
        service.start_participant(sessions, study.id, {}, rng, now=T0 + timedelta(minutes=9))
    second = service.start_participant(sessions, study.id, {}, rng, now=T0 + timedelta(minutes=11))  # first timed out
    assert _p(sessions, first).status == "timed_out" and _p(sessions, second).status == "active"
    service.return_participant(sessions, second, now=T0 + timedelta(minutes=12))
    third = service.start_participant(sessions, study.id, {}, rng, now=T0 + timedelta(minutes=12))
    answer_all(sessions, third, rng)
    with pytest.raises(service.StudyUnavailable, match="full"):  # a completed participant keeps the place
        service.start_participant(sessions, study.id, {}, rng, now=T0 + timedelta(days=1))
    with sessions() as s:
        # the newcomers got the units the leavers gave back: every unit judged by the one who completed
        assert sum(planning.unit_counts(s, study.id).values()) == 2
    _counts_match_the_trials(sessions, study.id)


def test_timed_out_participant_coming_back_gets_no_trials_and_no_fresh_start(tiny_study):
    _, sessions, study = tiny_study("back", trials_per_participant=3, time_limit_minutes=20)
    rng = np.random.default_rng(2)
    ids = {"PROLIFIC_PID": "abc"}
    token = service.start_participant(sessions, study.id, ids, rng, now=T0)
    last = _answer_some(sessions, token, 1, T0)
    trial = service.participant_state(sessions, token, now=last).trial
    late = last + timedelta(minutes=21)
    assert service.submit_rating(sessions, token, trial.trial_id, 5, now=late) is False  # too late: timed out
    assert _p(sessions, token).status == "timed_out"
    assert service.start_participant(sessions, study.id, ids, rng, now=late) == token  # same platform id
    state = service.participant_state(sessions, token, now=late)
    assert state.stage == "timed_out" and state.trial is None and state.completion_code is None
    with sessions() as s:
        assert len(s.scalars(select(Participant)).all()) == 1


def test_stop_and_leave_asks_first_then_shows_the_return_instruction(monkeypatch, tiny_study):
    db, sessions, _ = tiny_study("leave", trials_per_participant=2)
    at = click(click(app(monkeypatch, db), "I agree, start"), "Start")
    at = click(at, "Stop and leave")
    assert "really want to stop" in at.warning[0].value and not at.radio  # the trial is hidden meanwhile
    at = click(at, "No, continue")
    assert at.radio and any(b.label == "Stop and leave" for b in at.button)
    at = click(click(at, "Stop and leave"), "Yes, stop now")
    assert "You have left the study" in " ".join(m.value for m in at.markdown)
    with sessions() as s:
        assert s.scalar(select(Participant.status)) == "returned"


def test_the_code_of_each_outcome_appears_only_after_the_last_answer(monkeypatch, tiny_study):
    db, sessions, study = tiny_study(
        "codes",
        trials_per_participant=2,
        attention_check_rate=0.5,
        ask_comment=False,
        completion_code="OK1",
        redirect_url="https://example.org/ok",
        failed_check_code="BAD1",
        failed_check_url="https://example.org/bad",
        redirect_seconds=7,
    )
    rng = np.random.default_rng(3)
    good, bad = (service.start_participant(sessions, study.id, {}, rng) for _ in range(2))
    for token, fail in ((good, False), (bad, True)):
        service.finish_instructions(sessions, token)
        while (state := service.participant_state(sessions, token)).stage == "trial":
            assert state.completion_code is None and state.redirect_url is None
            t = state.trial
            with sessions() as s:
                catch = s.get(Trial, t.trial_id).is_catch
            service.submit_rating(sessions, token, t.trial_id, 7 if (catch and fail) else (1 if catch else 5))
    assert (state.completion_code, state.redirect_url) == ("BAD1", "https://example.org/bad")
    done = service.participant_state(sessions, good)
    assert (done.stage, done.completion_code, done.redirect_url) == ("done", "OK1", "https://example.org/ok")
    page = app(monkeypatch, db, p=good)
    assert "OK1" in page.success[0].value
    # the countdown runs in the browser (survey/web/views/countdown.py): its data, then its script
    (countdown,) = [e.proto for e in page.get("bidi_component") if e.proto.component_name == "lookalike_countdown"]
    assert json.loads(countdown.json) | {"stopped": None} == {
        "url": "https://example.org/ok",
        "seconds": 7,
        "sentence": "You will be taken back to the recruitment site in {seconds} seconds.",
        "stop": "Stay on this page",
        "stopped": None,
    }
    assert "prefers-reduced-motion" in countdown.js_content and "http-equiv" not in str(page)
    assert [b.url for b in page.get("link_button")] == ["https://example.org/ok"]  # a link to go at once


def test_refresh_status_times_out_then_counts_each_status_and_places(tiny_study):
    _, sessions, study = tiny_study("status", trials_per_participant=2, max_participants=5, time_limit_minutes=15)
    rng = np.random.default_rng(4)
    answer_all(sessions, service.start_participant(sessions, study.id, {}, rng, now=T0), rng)
    service.return_participant(sessions, service.start_participant(sessions, study.id, {}, rng, now=T0))
    service.start_participant(sessions, study.id, {}, rng, now=T0)  # goes idle
    active = service.start_participant(sessions, study.id, {}, rng, now=T0 + timedelta(minutes=10))
    st = refresh_status(sessions, study.id, now=T0 + timedelta(minutes=16))
    assert st.participants == {"active": 1, "completed": 1, "returned": 1, "timed_out": 1, "screened_out": 0}
    assert st.places_left == 3 and st.to_dict()["participants"] == st.participants
    (rating,) = st.protocols
    assert rating.held == 2 and rating.answered_max - rating.answered_min <= 1
    assert sum(u.answered for u in st.units) == 2 and sum(u.held for u in st.units) == 2
    assert "1 timed out" in format_status(st) and "places left: 3 of 5" in format_status(st)
    assert _p(sessions, active).status == "active"


def test_judgements_per_unit_refuses_newcomers_and_closes_the_study_when_reached(tiny_study):
    _, sessions, study = tiny_study("target", trials_per_participant=2, judgements_per_unit=1, ask_comment=False)
    with sessions() as s:
        n_units = len(planning.unit_pool(s, study.id, ("rating",)).units["rating"])
    rng = np.random.default_rng(5)
    tokens = [service.start_participant(sessions, study.id, {}, rng) for _ in range(-(-n_units // 2))]
    with pytest.raises(service.StudyUnavailable, match="every unit has the judgements it needs"):
        service.start_participant(sessions, study.id, {}, rng)  # all units held by active participants
    service.return_participant(sessions, tokens[0])
    tokens[0] = service.start_participant(sessions, study.id, {}, rng)  # its units are free again
    for token in tokens:
        assert service.current_study(sessions, "target").status == "open"
        answer_all(sessions, token, rng)
    assert service.current_study(sessions, "target").status == "closed"
    assert all(u.answered >= 1 for u in refresh_status(sessions, study.id).units)


def test_simulated_dropouts_time_out_and_answered_judgements_stay_balanced(tiny_study):
    from survey.analysis.simulate import simulate

    _, sessions, study = tiny_study("drop", trials_per_participant=3, ask_comment=False)
    sim = simulate(sessions, study.id, 20, seed=1, dropout=0.4)
    st = refresh_status(sessions, study.id)
    assert st.participants["completed"] + st.participants["timed_out"] == 20
    assert st.participants["timed_out"] == len(sim.dropped) > 0
    for p in st.protocols:
        assert p.answered_max - p.answered_min <= 1, p
    with sessions() as s:
        assert all(lifecycle.as_utc(t) < datetime.now(UTC) for t in s.scalars(select(Participant.timed_out_at)) if t)
        assert s.scalar(select(Study.status)) == "open"
    _counts_match_the_trials(sessions, study.id)


def test_power_counts_recruited_participants_some_of_whom_drop_out():
    from survey.analysis.power import power_curve
    from survey.analysis.simulate import ResponseModel, plan_participants, simulate_judgements
    from tests.helpers import CONDITIONS, synthetic_design

    design = synthetic_design(CONDITIONS, references=6, trials_per_participant=8, protocols=("rating",))
    plans = plan_participants(design, 40, np.random.default_rng(0), dropout=0.5)
    answered = Counter(u.key for plan in plans for u in plan)
    assert max(answered.values()) - min(answered.values()) <= 1  # dropouts keep the answered counts balanced
    assert 10 < sum(len(p) < 8 for p in plans) < 30
    full = simulate_judgements(design, 20, model=ResponseModel(), rng=np.random.default_rng(1))
    cut = simulate_judgements(design, 20, model=ResponseModel(), rng=np.random.default_rng(1), dropout=0.5)
    assert cut["response_id"].nunique() < full["response_id"].nunique() == 20 * 8
    model = ResponseModel(effects={CONDITIONS[0]: 0.6})
    kept, lost = (
        power_curve(design, [12], model=model, reps=30, seed=3, dropout=d).points[0].friedman_power for d in (0, 0.6)
    )
    assert lost < kept


@pytest.mark.slow  # the shared study with real weights (built_study)
def test_cli_simulate_with_dropout_then_study_status_json(sqlite_study_db, capsys):
    """The issue's check on the shared three-protocol study: completed + timed out = started, some timed
    out, and answered judgements per unit within one of each other in every protocol."""
    import json

    from survey.cli import main

    db, _, _ = sqlite_study_db
    assert main(["simulate", "--db", db, "--participants", "30", "--dropout", "0.3", "--seed", "1"]) == 0
    assert "stopping part-way, then timed out" in capsys.readouterr().out
    assert main(["study", "status", "--db", db, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    people = status["participants"]
    assert people["completed"] + people["timed_out"] == 30 and people["timed_out"] > 0 and people["active"] == 0
    assert [p["protocol"] for p in status["protocols"]] == ["rating", "pairwise", "ranking"]
    for p in status["protocols"]:
        assert p["answered_max"] - p["answered_min"] <= 1, p
    assert main(["study", "status", "--db", db]) == 0
    assert "timed out" in capsys.readouterr().out


def test_a_time_out_noticed_twice_releases_the_units_once(tiny_study):
    _, sessions, study = tiny_study("twice", trials_per_participant=3, time_limit_minutes=5)
    token = service.start_participant(sessions, study.id, {}, np.random.default_rng(6), now=T0)
    late = T0 + timedelta(minutes=6)
    with sessions.begin() as first, sessions.begin() as second:  # both read the participant while active
        a = first.scalar(select(Participant).where(Participant.token == token))
        b = second.scalar(select(Participant).where(Participant.token == token))
        assert lifecycle.is_idle(a, 5, late) and lifecycle.is_idle(b, 5, late)
        assert lifecycle.time_out(first, a, 5) is True
        first.commit()
        assert lifecycle.time_out(second, b, 5) is False  # the conditional update matched nothing
    _counts_match_the_trials(sessions, study.id)
    with sessions() as s:
        assert sum(planning.unit_counts(s, study.id).values()) == 0
