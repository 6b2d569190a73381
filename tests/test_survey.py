"""The participant flow through the real Streamlit app (AppTest) and the service beneath it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from db.models import Participant, Response, Trial
from survey import service

APP = str(Path(__file__).resolve().parents[1] / "app.py")
FORBIDDEN = ("ssim", "efficientnet", "lite0", "clip", "u2net", "maskrcnn", "segment", "method", "condition")


def _app(monkeypatch, db_path, **params) -> AppTest:
    monkeypatch.setenv("LOOKALIKE_DB", str(db_path))
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def _rendered(at: AppTest) -> str:
    """Everything the page sends to the browser, as text (all element protos)."""
    out = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        children = getattr(node, "children", {})
        for child in (children.values() if isinstance(children, dict) else children):
            walk(child)
    walk(at._tree)
    return "\n".join(out)


def _labels(at):
    return [b.label for b in at.button]


def _click(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


def _start(monkeypatch, db_path, **params) -> tuple[AppTest, str]:
    """A new participant who consented and read the instructions: (app at trial 1, token)."""
    at = _click(_app(monkeypatch, db_path, **params), "I agree, start")
    token = at.query_params["p"]
    return _click(at, "Start"), token


def test_full_walkthrough_stores_every_answer(monkeypatch, study_db):
    db_path, make_session, _ = study_db
    at = _app(monkeypatch, db_path)
    assert at.exception == [] and "I agree, start" in _labels(at)
    pages = [_rendered(at)]
    next(b for b in at.button if b.label == "I agree, start").click().run()
    token = at.query_params["p"]
    assert len(token) >= 32
    pages.append(_rendered(at))
    next(b for b in at.button if b.label == "Start").click().run()
    given = []
    while at.radio:
        pages.append(_rendered(at))
        rating = len(given) % 7 + 1
        at.radio[0].set_value(rating)
        at.button[0].click().run()
        assert at.exception == []
        given.append(rating)
    pages.append(_rendered(at))
    assert "completion code" in at.success[0].value
    with make_session() as s:
        p = s.scalar(select(Participant).where(Participant.token == token))
        trials = s.scalars(select(Trial).where(Trial.participant_id == p.id).order_by(Trial.position)).all()
        responses = {r.trial_id: r for r in s.scalars(select(Response))}
        assert len(trials) == len(given) == 6 and p.completed_at is not None
        assert [responses[t.id].rating for t in trials] == given
        assert all(responses[t.id].response_ms is not None and responses[t.id].response_ms >= 0 for t in trials)
    # blinding: nothing the browser received names a method, segmenter or condition
    text = "\n".join(pages).lower()
    for word in FORBIDDEN:
        assert word not in text, word


def test_reload_continues_at_the_same_trial(monkeypatch, study_db):
    db_path, make_session, _ = study_db
    at, token = _start(monkeypatch, db_path)
    at.radio[0].set_value(4)
    at.button[0].click().run()
    shown_before = at.get("progress")[0].proto.text
    reloaded = _app(monkeypatch, db_path, p=token)  # a new browser session with the same URL
    assert reloaded.get("progress")[0].proto.text == shown_before == "Screen 2 of 6"


def test_double_submit_from_two_tabs_stores_one_response(monkeypatch, study_db):
    db_path, make_session, _ = study_db
    at, token = _start(monkeypatch, db_path)
    other_tab = _app(monkeypatch, db_path, p=token)
    at.radio[0].set_value(2)
    at.button[0].click().run()
    other_tab.radio[0].set_value(6)  # same trial, submitted again from a stale tab
    other_tab.button[0].click().run()
    with make_session() as s:
        rows = s.scalars(select(Response)).all()
        assert len(rows) == 1 and rows[0].rating == 2


def test_rating_is_required(monkeypatch, study_db):
    db_path, make_session, _ = study_db
    at, _ = _start(monkeypatch, db_path)
    at.button[0].click().run()  # submit with no rating chosen
    assert "Please choose a rating" in at.error[0].value
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(Response)) == 0


def test_declining_consent_stores_nothing(monkeypatch, study_db):
    db_path, make_session, _ = study_db
    at = _app(monkeypatch, db_path, PROLIFIC_PID="p1")
    next(b for b in at.button if b.label == "I do not agree").click().run()
    assert "nothing has been stored" in at.markdown[0].value
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 0


def test_invalid_token_is_refused(monkeypatch, study_db):
    db_path, _, _ = study_db
    at = _app(monkeypatch, db_path, p="forged-token")
    assert "not valid" in at.error[0].value


def test_prolific_ids_are_recorded_and_resume(monkeypatch, study_db):
    db_path, make_session, _ = study_db
    ids = {"PROLIFIC_PID": "5f1", "STUDY_ID": "st9", "SESSION_ID": "se3"}
    at = _app(monkeypatch, db_path, **ids)
    next(b for b in at.button if b.label == "I agree, start").click().run()
    token = at.query_params["p"]
    again = _app(monkeypatch, db_path, **ids)  # same person, fresh link without the token
    next(b for b in again.button if b.label == "I agree, start").click().run()
    assert again.query_params["p"] == token
    with make_session() as s:
        [p] = s.scalars(select(Participant)).all()
        assert p.source == "prolific" and p.external_id == "5f1" and p.url_params == ids


def test_service_double_submit_and_validation(study_db):
    _, make_session, _ = study_db
    study = service.current_study(make_session)
    token = service.start_participant(make_session, study.id, {}, np.random.default_rng(0))
    service.finish_instructions(make_session, token)
    trial = service.participant_state(make_session, token).trial
    assert service.submit_rating(make_session, token, trial.trial_id, 3) is True
    assert service.submit_rating(make_session, token, trial.trial_id, 3) is False
    with pytest.raises(ValueError, match="1 to 7"):
        service.submit_rating(make_session, token, trial.trial_id, 8)
    other = service.start_participant(make_session, study.id, {}, np.random.default_rng(1))
    with pytest.raises(PermissionError):
        service.submit_rating(make_session, other, trial.trial_id, 3)
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(Response)) == 1


def test_assignment_balances_grids_across_participants(study_db):
    _, make_session, result = study_db
    study = service.current_study(make_session)
    rng = np.random.default_rng(0)
    for _ in range(10):
        service.start_participant(make_session, study.id, {}, rng)
    with make_session() as s:
        counts = s.execute(select(Trial.grid_id, func.count()).group_by(Trial.grid_id)).all()
        per_grid = [c for _, c in counts]
        assert len(counts) == result.grids  # every grid is used
        assert max(per_grid) - min(per_grid) <= 1  # evenly: 10 x 6 trials over the grids
        per_participant = s.execute(select(Trial.participant_id, func.count(func.distinct(Trial.grid_id)))
                                    .group_by(Trial.participant_id)).all()
        assert all(n == 6 for _, n in per_participant)  # no grid twice for one participant
