"""The participant flow through the real Streamlit app (AppTest) and the service beneath it.

The shared study (conftest.built_study) serves all three protocols: 4 rating, 4 pairwise and
4 ranking trials plus one attention check per protocol, then one optional question.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from db.models import Grid, Participant, Response, Trial
from survey.participants import assignment, planning, service
from tests.apptest import app, click, rendered
from tests.helpers import answer_all

FORBIDDEN = ("ssim", "efficientnet", "lite0", "clip", "u2net", "maskrcnn", "segment", "method", "condition", "catch")
TRIALS = 3 * (4 + 1)


def _start(monkeypatch, db_path, **params) -> tuple[AppTest, str]:
    """A new participant who consented and read the instructions: (app at trial 1, token)."""
    at = click(app(monkeypatch, db_path, **params), "I agree, start")
    token = at.query_params["p"]
    return click(at, "Start"), token


def _protocol(at: AppTest) -> str:
    labels = [r.label for r in at.radio]
    if "Most similar set" in labels:
        return "ranking"
    if "Which set is more similar to the product?" in labels:
        return "pairwise"
    return "rating"


def _answer(at: AppTest, k: int) -> tuple[str, object]:
    """Answer the trial on screen (varied answers); returns (protocol, answer given)."""
    protocol = _protocol(at)
    if protocol == "rating":
        ticks = [bool((k + i) % 2) for i in range(len(at.checkbox))]
        for box, value in zip(at.checkbox, ticks, strict=True):
            box.set_value(value)
        at.radio[0].set_value(k % 7 + 1)
        given: object = (k % 7 + 1, ticks)
    elif protocol == "pairwise":
        given = ("left", "tie", "right")[k % 3]
        at.radio[0].set_value(given)
    else:
        n = len(at.radio[0].options)
        given = (k % n, (k + 1) % n)
        at.radio[0].set_value(given[0])
        at.radio[1].set_value(given[1])
    click(at, "Submit")
    assert at.exception == [] and not at.error, [e.value for e in at.error]
    return protocol, given


def test_full_walkthrough_all_protocols_stores_every_answer(monkeypatch, study_db):
    db_path, make_session, _ = study_db
    at = app(monkeypatch, db_path)
    assert at.exception == [] and {b.label for b in at.button} == {"I agree, start", "I do not agree"}
    pages = [rendered(at)]
    at = click(at, "I agree, start")
    token = at.query_params["p"]
    assert len(token) >= 32
    pages.append(rendered(at))
    instructions = " ".join(m.value for m in at.markdown)
    assert (
        "Rating screens" in instructions and "Comparison screens" in instructions and "Best-and-worst" in instructions
    )
    at = click(at, "Start")
    given = []
    while at.radio:
        pages.append(rendered(at))
        given.append(_answer(at, len(given)))
    assert len(given) == TRIALS
    assert [p for p, _ in given] == ["rating"] * 5 + ["pairwise"] * 5 + ["ranking"] * 5  # blocks in config order
    pages.append(rendered(at))
    assert "Almost done" in at.markdown[0].value
    at.selectbox[0].set_value("30-49")
    at.text_area[0].input("Nice <b>study</b>")
    at = click(at, "Finish")
    pages.append(rendered(at))
    assert "DONE42" in at.success[0].value
    with make_session() as s:
        p = s.scalar(select(Participant).where(Participant.token == token))
        assert p.completed_at is not None and p.demographics == {"age": "30-49"} and p.comment == "Nice <b>study</b>"
        trials = s.scalars(select(Trial).where(Trial.participant_id == p.id).order_by(Trial.position)).all()
        responses = {r.trial_id: r for r in s.scalars(select(Response))}
        assert len(responses) == len(trials) == TRIALS
        for t, (protocol, answer) in zip(trials, given, strict=True):
            r = responses[t.id]
            assert t.protocol == protocol and r.response_ms is not None and r.response_ms >= 0
            if protocol == "rating":
                assert (r.rating, r.ticks) == answer
            elif protocol == "pairwise":
                assert r.choice == answer and len(set(t.grid_ids)) == 2
            else:
                assert (r.best, r.worst) == (t.grid_ids[answer[0]], t.grid_ids[answer[1]])
    # blinding: nothing the browser received names a method, segmenter, condition or check
    text = "\n".join(pages).lower()
    for word in FORBIDDEN:
        assert word not in text, word
    with make_session() as s:
        for gid in s.scalars(select(Grid.id)):
            assert gid not in text  # not even the opaque grid ids


def test_reload_continues_at_the_same_trial(monkeypatch, study_db):
    db_path, _, _ = study_db
    at, token = _start(monkeypatch, db_path)
    _answer(at, 0)
    _answer(at, 1)
    shown_before = at.get("progress")[0].proto.text
    reloaded = app(monkeypatch, db_path, p=token)  # a new browser session with the same URL
    assert reloaded.get("progress")[0].proto.text == shown_before == f"Screen 3 of {TRIALS}"


def test_back_button_dropping_the_token_does_not_start_over(monkeypatch, study_db):
    db_path, make_session, _ = study_db
    at, token = _start(monkeypatch, db_path)
    _answer(at, 0)
    del at.query_params["p"]  # the URL without the token, in the same browser session
    at.run()
    assert at.query_params["p"] == token
    assert at.get("progress")[0].proto.text == f"Screen 2 of {TRIALS}"
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 1


def test_double_submit_from_two_tabs_stores_one_response(monkeypatch, study_db):
    db_path, make_session, _ = study_db
    at, token = _start(monkeypatch, db_path)
    other_tab = app(monkeypatch, db_path, p=token)
    at.radio[0].set_value(2)
    click(at, "Submit")
    other_tab.radio[0].set_value(6)  # same trial, submitted again from a stale tab
    click(other_tab, "Submit")
    with make_session() as s:
        rows = s.scalars(select(Response)).all()
        assert len(rows) == 1 and rows[0].rating == 2


@pytest.mark.parametrize("skip_to", ["rating", "pairwise", "ranking"])
def test_answers_are_required_in_every_protocol(monkeypatch, study_db, skip_to):
    db_path, make_session, _ = study_db
    at, _ = _start(monkeypatch, db_path)
    k = 0
    while _protocol(at) != skip_to:
        _answer(at, k)
        k += 1
    before = k
    click(at, "Submit")  # nothing chosen
    assert at.error and "Please choose" in at.error[0].value
    if skip_to == "ranking":  # the same set as best and worst is refused too
        at.radio[0].set_value(0)
        at.radio[1].set_value(0)
        click(at, "Submit")
        assert "must be different" in at.error[0].value
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(Response)) == before


def test_declining_consent_stores_nothing(monkeypatch, study_db):
    db_path, make_session, _ = study_db
    at = click(app(monkeypatch, db_path, PROLIFIC_PID="p1"), "I do not agree")
    assert "nothing has been stored" in at.markdown[0].value
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 0


def test_invalid_token_is_refused(monkeypatch, study_db):
    db_path, _, _ = study_db
    at = app(monkeypatch, db_path, p="forged-token")
    assert "not valid" in at.error[0].value


def test_prolific_ids_are_recorded_and_resume(monkeypatch, study_db):
    db_path, make_session, _ = study_db
    ids = {"PROLIFIC_PID": "5f1", "STUDY_ID": "st9", "SESSION_ID": "se3"}
    at = click(app(monkeypatch, db_path, **ids), "I agree, start")
    token = at.query_params["p"]
    again = click(app(monkeypatch, db_path, **ids), "I agree, start")  # fresh link, no token
    assert again.query_params["p"] == token
    with make_session() as s:
        [p] = s.scalars(select(Participant)).all()
        assert p.source == "prolific" and p.external_id == "5f1" and p.url_params == ids


def test_attention_checks_flag_failures_silently(study_db):
    _, make_session, _ = study_db
    study = service.current_study(make_session)
    token = service.start_participant(make_session, study.id, {}, np.random.default_rng(0))
    answer_all(make_session, token, np.random.default_rng(0), fail_checks=True)
    with make_session() as s:
        p = s.scalar(select(Participant).where(Participant.token == token))
        catch = s.scalars(select(Trial).where(Trial.participant_id == p.id, Trial.is_catch.is_(True))).all()
        assert sorted(t.protocol for t in catch) == ["pairwise", "ranking", "rating"]
        failed = {int(f.split(":")[1]) for f in p.flags if f.startswith("failed_check:")}
        rating_check = next(t for t in catch if t.protocol == "rating")
        assert rating_check.position in failed  # rated a grid of another category 7
    # the participant never sees flags: the state object has no such field
    assert "flag" not in repr(service.participant_state(make_session, token)).lower()


def test_too_fast_answers_are_flagged(tiny_study):
    _, sessions, study = tiny_study("f", trials_per_participant=2, min_response_ms=60_000, ask_comment=False)
    token = service.start_participant(sessions, study.id, {}, np.random.default_rng(0))
    service.finish_instructions(sessions, token)
    trial = service.participant_state(sessions, token).trial
    service.mark_shown(sessions, token, trial.trial_id)
    service.submit_rating(sessions, token, trial.trial_id, 4)
    with sessions() as s:
        assert s.scalar(select(Participant.flags)) == ["too_fast:0"]


def test_service_validation(study_db):
    _, make_session, _ = study_db
    study = service.current_study(make_session)
    token = service.start_participant(make_session, study.id, {}, np.random.default_rng(0))
    service.finish_instructions(make_session, token)
    trial = service.participant_state(make_session, token).trial
    assert trial.protocol == "rating"
    assert service.submit_rating(make_session, token, trial.trial_id, 3) is True
    assert service.submit_rating(make_session, token, trial.trial_id, 3) is False
    for bad in (8, 0, True, "5"):
        with pytest.raises(ValueError, match="1 to 7"):
            service.submit_rating(make_session, token, trial.trial_id, bad)
    with pytest.raises(ValueError, match="not pairwise"):
        service.submit_pairwise(make_session, token, trial.trial_id, "left")
    other = service.start_participant(make_session, study.id, {}, np.random.default_rng(1))
    with pytest.raises(PermissionError):
        service.submit_rating(make_session, other, trial.trial_id, 3)
    with pytest.raises(PermissionError):
        service.submit_questions(make_session, token, {}, "too early")
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(Response)) == 1


def test_assignment_balances_judgements_per_reference_and_condition(study_db):
    from db.models import Condition, GridCondition

    _, make_session, _ = study_db
    study = service.current_study(make_session)
    rng = np.random.default_rng(0)
    for _ in range(12):
        answer_all(make_session, service.start_participant(make_session, study.id, {}, rng), rng)
    with make_session() as s:
        made_by: dict[str, list[int]] = {}
        for gid, cid in s.execute(select(GridCondition.grid_id, GridCondition.condition_id)):
            made_by.setdefault(gid, []).append(cid)
        ref_of = dict(s.execute(select(Grid.id, Grid.reference_id)).all())
        n_conditions = s.scalar(select(func.count()).select_from(Condition))
        rows = s.execute(
            select(Trial.unit, Trial.grid_ids, Trial.protocol, Trial.participant_id).where(Trial.is_catch.is_(False))
        ).all()
        # the maintained counts the assignment reads are the trials counted
        assert planning.unit_counts(s, study.id) == Counter(u for u, _, _, _ in rows)
        for protocol in ("rating", "pairwise", "ranking"):
            units = assignment.study_units(planning.grids_by_reference(s, study.id)[0], protocol)
            per_unit = Counter(u for u, _, p, _ in rows if p == protocol)
            counts = [per_unit.get(u.key, 0) for u in units]
            assert max(counts) - min(counts) <= 1, (protocol, counts)  # every unit evenly judged
        # rating: judgements per (reference, condition), through shared grids, differ by at most one
        rc = Counter((ref_of[g[0]], c) for _, g, p, _ in rows if p == "rating" for c in made_by[g[0]])
        full = [rc.get((ref_of[g], c), 0) for g, cs in made_by.items() for c in cs]
        assert len(full) == n_conditions * len({ref_of[g] for g in made_by})  # every (reference, condition)
        assert sum(full) >= 12 * 4 and max(full) - min(full) <= 1, full
        # no participant sees the same unit twice
        per_participant = Counter((pid, u) for u, _, _, pid in rows)
        assert max(per_participant.values()) == 1


def test_full_study_refuses_politely(tiny_study, monkeypatch):
    db, sessions, _ = tiny_study("full", max_participants=1)
    click(app(monkeypatch, db), "I agree, start")
    at = click(app(monkeypatch, db), "I agree, start")
    assert "not accepting new participants" in at.warning[0].value
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 1


def test_a_participant_of_an_older_study_keeps_its_own_texts(monkeypatch, study_db, tiny_study):
    from survey.study.config import Texts

    db_path, make_session, _ = study_db
    at = click(app(monkeypatch, db_path), "I agree, start")  # joins study "t"
    tiny_study("newer", make_session=make_session, texts=Texts(instructions="NEWER STUDY INSTRUCTIONS"))
    at.run()
    text = " ".join(m.value for m in at.markdown)
    assert "Rating screens" in text and "NEWER STUDY" not in text
