"""The comprehension phase (survey/participants/comprehension.py): practice screens with a known answer, feedback,
two attempts, screened out on failure with its own code, no trial and nothing counted as data."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from db.models import Participant, Response
from survey.participants import comprehension, lifecycle, planning, service
from tests.apptest import app, click


def state_time(s):
    return s.scalar(select(Participant.screened_out_at))


STUDY = {"trials_per_participant": 2, "comprehension": 2, "ask_comment": False, "screened_out_code": "SCREEN9"}


def _start(sessions, study, seed=0) -> str:
    token = service.start_participant(sessions, study.id, {}, np.random.default_rng(seed))
    service.finish_instructions(sessions, token)
    return token


def test_right_answers_pass_and_lead_to_the_trials(tiny_study):
    _, sessions, study = tiny_study("c-pass", **STUDY)
    token = _start(sessions, study)
    state = service.participant_state(sessions, token)
    assert (state.stage, state.attempt, len(state.practice), state.trial) == ("comprehension", 1, 2, None)
    assert "answer" not in repr(state.practice[0]).lower()  # the page never learns which set is right
    assert comprehension.submit(sessions, token, comprehension.answer_key(sessions, token)).result == "passed"
    assert service.participant_state(sessions, token).stage == "trial"
    with sessions() as s:
        p = s.scalar(select(Participant))
        assert p.comprehension_attempts == 1 and p.comprehension_passed_at is not None
    with pytest.raises(PermissionError, match="no comprehension phase"):
        comprehension.submit(sessions, token, [0, 0])


def test_one_wrong_attempt_gets_feedback_and_new_screens_then_a_second_chance(tiny_study):
    _, sessions, study = tiny_study("c-retry", **STUDY)
    token = _start(sessions, study)
    first = service.participant_state(sessions, token).practice
    key = comprehension.answer_key(sessions, token)
    out = comprehension.submit(sessions, token, [1 - key[0], key[1]])
    assert (out.result, out.wrong) == ("retry", (1,))
    second = service.participant_state(sessions, token)
    assert second.attempt == 2 and second.practice != first
    assert comprehension.submit(sessions, token, comprehension.answer_key(sessions, token)).result == "passed"
    with pytest.raises(ValueError, match="2 choices of 0"):
        comprehension.submit(sessions, _start(sessions, study, 1), [0])


def test_failing_twice_screens_out_with_its_code_and_no_trial_nothing_counted(tiny_study):
    _, sessions, study = tiny_study("c-fail", **STUDY)
    token = _start(sessions, study)
    for expected in ("retry", "screened_out"):
        key = comprehension.answer_key(sessions, token)
        assert comprehension.submit(sessions, token, [1 - k for k in key]).result == expected
    state = service.participant_state(sessions, token)
    assert (state.stage, state.trial, state.completion_code) == ("screened_out", None, "SCREEN9")
    with sessions() as s:
        p = s.scalar(select(Participant))
        assert (p.status, p.comprehension_attempts) == ("screened_out", 2) and p.screened_out_at is not None
        assert s.scalar(select(func.count()).select_from(Response)) == 0
        assert sum(planning.unit_counts(s, study.id).values()) == 0  # their units are back in the pool
    with sessions.begin() as s:  # a final status: no way back to active
        assert not lifecycle.leave(s, s.scalar(select(Participant)), "returned", state_time(s))


def test_the_page_gives_feedback_then_screens_out(monkeypatch, tiny_study):
    db, sessions, _ = tiny_study("c-page", **STUDY)
    at = click(click(app(monkeypatch, db), "I agree, start"), "Start")
    assert "Practice (1 of 2)" in at.markdown[0].value and len(at.radio) == 2
    click(at, "Submit")
    assert at.error[0].value == "Please answer every practice screen."
    token = at.query_params["p"]
    for attempt in (1, 2):
        key = comprehension.answer_key(sessions, token)
        for radio, k in zip(at.radio, key, strict=True):
            radio.set_value(1 - k)
        click(at, "Submit")
        if attempt == 1:
            assert "Not quite: practice screen 1, 2 was answered wrongly" in at.error[0].value
            assert "Practice (2 of 2)" in at.markdown[0].value
    assert "SCREEN9" in at.success[0].value and not at.radio


def test_simulated_participants_fail_comprehension_at_the_given_rate(tiny_study):
    from survey.analysis.simulate import simulate

    _, sessions, study = tiny_study("c-sim", **STUDY)
    sim = simulate(sessions, study.id, 20, seed=2, fail_comprehension=0.3)
    with sessions() as s:
        statuses = dict(s.execute(select(Participant.status, func.count()).group_by(Participant.status)).all())
        screened = set(s.scalars(select(Participant.id).where(Participant.status == "screened_out")))
        assert s.scalar(select(func.count()).select_from(Response).where(Response.participant_id.in_(screened))) == 0
    assert screened == sim.screened_out and 0 < len(screened) < 20
    assert statuses == {"completed": 20 - len(screened), "screened_out": len(screened)}
