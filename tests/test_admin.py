"""The admin page, driven with AppTest on its own (it is reached at /admin when served)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from db.models import Participant
from survey.participants import service
from tests.apptest import admin_page
from tests.helpers import answer_all


def test_refuses_without_a_configured_password(study_db, monkeypatch):
    db_path, _, _ = study_db
    at = admin_page(db_path, monkeypatch, None)
    assert "disabled" in at.error[0].value and not at.text_input


def test_wrong_password_is_refused(study_db, monkeypatch):
    db_path, _, _ = study_db
    at = admin_page(db_path, monkeypatch, "s3cret")
    at.text_input[0].input("guess")
    at.button[0].click().run()
    assert at.error[0].value == "Wrong password." and not at.metric


def test_progress_participants_and_blinded_results(study_db, monkeypatch):
    db_path, make_session, _ = study_db
    study = service.current_study(make_session)
    rng = np.random.default_rng(0)
    answer_all(make_session, service.start_participant(make_session, study.id, {}, rng), rng, fail_checks=True)
    answer_all(make_session, service.start_participant(make_session, study.id, {}, rng), rng)
    service.start_participant(make_session, study.id, {}, rng)  # started, nothing answered
    at = admin_page(db_path, monkeypatch, "s3cret")
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    metrics = {m.label: m.value for m in at.metric}
    with make_session() as s:
        flagged = sum(1 for flags in s.scalars(select(Participant.flags)) if flags)
    assert flagged >= 1  # the first participant failed every check
    assert metrics["Participants"] == "3" and metrics["Flagged"] == str(flagged)
    assert metrics["Completed"] == "2" and metrics["In progress"] == "1"
    assert float(metrics["Median s / trial"]) >= 0
    assert len(at.dataframe) == 4  # progress pivot + participants; status: per status, per protocol
    by_status = at.dataframe[2].value.iloc[0].to_dict()
    assert by_status == {"active": 1, "completed": 2, "returned": 0, "timed out": 0, "screened out": 0}
    assert at.dataframe[3].value["held by active participants"].sum() == 12  # the one who answered nothing
    # blinded until asked: no summary table, no report download
    assert "hidden" in at.caption[-1].value
    at.checkbox[0].check().run()
    assert len(at.dataframe) == 5
    assert at.exception == []
