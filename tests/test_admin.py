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


def test_stopping_rule_looks_blinded_until_unblinded(sqlite_study_db, monkeypatch):
    """A declared stopping rule: |z| against each boundary and the decision, no difference or interval
    (they name the better condition) until the researcher unblinds."""
    import dataclasses

    from sqlalchemy import update

    from db.models import Study
    from survey.analysis.simulate import ResponseModel, simulate
    from survey.study.stopping import PrimaryComparison, StoppingRule

    db_path, make_session, _ = sqlite_study_db
    primary = PrimaryComparison("rating", "efficientnet/u2netp", "ssim/none")
    rule = StoppingRule("group-sequential", 0.05, (4, 8))
    with make_session.begin() as s:
        config = s.scalar(select(Study.config))
        declared = {**config, "primary": dataclasses.asdict(primary), "stopping": dataclasses.asdict(rule)}
        s.execute(update(Study).values(config=declared))
    study = service.current_study(make_session)
    simulate(make_session, study.id, 10, seed=4, model=ResponseModel(effects={primary.a: 1.5}))
    at = admin_page(db_path, monkeypatch, "s3cret")
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    assert "Stopping rule" in [h.value for h in at.subheader]
    looks = next(d.value for d in at.dataframe if "boundary |z|" in d.value.columns)
    assert list(looks["planned participants"]) == [4, 8] and "difference" not in looks.columns
    at.checkbox[0].check().run()
    looks = next(d.value for d in at.dataframe if "boundary |z|" in d.value.columns)
    assert "difference" in looks.columns and "adjusted 95% interval" in looks.columns
    assert at.exception == []
