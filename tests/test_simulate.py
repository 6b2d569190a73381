from __future__ import annotations

import pytest
from sqlalchemy import func, select

from db.models import Participant, Response, Trial
from survey import service
from survey.analysis.conditions import condition_summaries, ratings_table
from survey.analysis.simulate import ResponseModel, SimulationError, parse_effects, simulate
from survey.cli import main

TRUE = {"efficientnet/u2netp": 1.5, "efficientnet/none": 0.5, "ssim/none": -0.5, "ssim/u2netp": -1.5}


def test_parse_effects():
    assert parse_effects("efficientnet/u2netp=0.5, ssim/none=-1") == {"efficientnet/u2netp": 0.5, "ssim/none": -1.0}
    assert parse_effects("") == {}
    with pytest.raises(SimulationError, match="method/segmenter=value"):
        parse_effects("efficientnet=1")
    with pytest.raises(SimulationError, match="not a number"):
        parse_effects("ssim/none=high")


def test_unknown_condition_is_refused(study_db):
    _, make_session, _ = study_db
    with pytest.raises(SimulationError, match=r"not in the study; valid: \['efficientnet/none'"):
        simulate(make_session, service.current_study(make_session).id, 1, model=ResponseModel(effects={"clip/none": 1}))


def test_simulated_answers_go_through_the_service_and_recover_the_true_order(study_db):
    _, make_session, _ = study_db
    study = service.current_study(make_session)
    stored = simulate(make_session, study.id, 30, seed=3, model=ResponseModel(effects=TRUE, noise_sd=0.5))
    with make_session() as s:
        assert (
            stored
            == s.scalar(select(func.count()).select_from(Response))
            == s.scalar(select(func.count()).select_from(Trial))
        )  # every trial answered exactly once
        assert s.scalar(select(func.count()).where(Participant.completed_at.is_not(None))) == 30
    means = {r.condition: r.mean for r in condition_summaries(ratings_table(make_session, study.id), n_boot=200)}
    assert sorted(means, key=means.get, reverse=True) == sorted(TRUE, key=TRUE.get, reverse=True)


def test_inattentive_raters_fail_attention_checks(study_db):
    _, make_session, _ = study_db
    study = service.current_study(make_session)
    simulate(make_session, study.id, 20, seed=1, model=ResponseModel(noise_sd=0.5, inattentive=0.0))
    with make_session() as s:
        attentive = [bool(f) for f in s.scalars(select(Participant.flags))]
    simulate(make_session, study.id, 20, seed=2, model=ResponseModel(noise_sd=0.5, inattentive=1.0))
    with make_session() as s:
        careless = [bool(f) for f in s.scalars(select(Participant.flags).order_by(Participant.id))][20:]
    assert sum(attentive) <= 2 and sum(careless) >= 10


def test_cli(study_db, capsys):
    db_path, _, _ = study_db
    assert main(["simulate", "--db", str(db_path), "--participants", "2", "--effects", "ssim/none=1"]) == 0
    assert "2 simulated participants stored 30 answers" in capsys.readouterr().out
    assert main(["simulate", "--db", str(db_path), "--participants", "1", "--effects", "x/y=1"]) == 2
