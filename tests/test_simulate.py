from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from db.models import Participant, Response, Trial
from survey.analysis.conditions import condition_summaries, ratings_table
from survey.analysis.exclusions import ExclusionRules, apply_exclusions
from survey.analysis.simulate import (
    ResponseModel,
    SimulationError,
    attentive_unrelated,
    parse_effects,
    simulate,
    unrelated_rating_from_latent,
)
from survey.cli import main
from survey.participants import service
from survey.study.export import tables

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
    stored = simulate(make_session, study.id, 30, seed=3, model=ResponseModel(effects=TRUE, noise_sd=0.5)).stored
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
    """Attentive raters pass every check (issue 12: 9 of 40 failed one); random ones mostly fail."""
    _, make_session, _ = study_db
    study = service.current_study(make_session)
    sim = simulate(make_session, study.id, 40, seed=1, model=ResponseModel(inattentive=0.0))
    with make_session() as s:
        attentive = [bool(f) for f in s.scalars(select(Participant.flags))]
        checks = s.scalar(select(func.count()).select_from(Trial).where(Trial.is_catch.is_(True)))
    assert len(attentive) == 40 and not sim.inattentive and checks == 3 * 40  # one check per protocol each
    sim = simulate(make_session, study.id, 20, seed=2, model=ResponseModel(noise_sd=0.5, inattentive=1.0))
    with make_session() as s:
        careless = [bool(f) for f in s.scalars(select(Participant.flags).order_by(Participant.id))][40:]
    assert sum(attentive) == 0 and sum(careless) >= 10 and len(sim.inattentive) == 20


def test_attentive_view_of_an_unrelated_set():
    lat = np.array([[0.5, -3.2, -1.0, np.nan], [-2.0, 0.3, -4.0, 1.0], [-0.4, -0.1, -2.5, np.nan]])
    unrelated = np.array([[False, True, False, False], [False, False, True, False], [False, True, False, False]])
    got = attentive_unrelated(lat, unrelated)
    # capped at the lowest real grid of its row, real grids and empty slots unchanged
    np.testing.assert_array_equal(got, [[0.5, -3.2, -1.0, np.nan], [-2.0, 0.3, -4.0, 1.0], [-0.4, -2.5, -2.5, np.nan]])
    np.testing.assert_array_equal(attentive_unrelated([1.2], [True]), [1.2])  # a rating screen: nothing beside it
    assert list(unrelated_rating_from_latent([-3.0, 0.0, 2.0], 0.0)) == [1, 3, 3]  # never "somewhat similar"


def _failed_checks(make_session, study_id: int) -> set[int]:
    """Participants flagged for failed checks, read the way the report reads them (export, exclusions)."""
    participants = tables(make_session, study_id)["participants"]
    flow = apply_exclusions(participants, ExclusionRules(failed_checks_max=0, require_complete=False))
    flagged = set(participants["participant"]) - set(flow.kept_ids)
    assert len(flagged) == flow.excluded_failed_checks
    return flagged


def test_exclusion_rule_finds_the_inattentive(sqlite_study_db):
    """Precision and recall of excluding on failed checks, over 200 participants of whom 20 %
    answer at random; recall is compared with the rule's own chance of catching each random
    responder, computed from the checks they were shown (survey.participants.checks: rating 4/7, pairwise 1/3,
    ranking 1/k of k sets)."""
    _, make_session, _ = sqlite_study_db
    study = service.current_study(make_session)
    sim = simulate(make_session, study.id, 200, seed=4, model=ResponseModel(inattentive=0.2))
    flagged = _failed_checks(make_session, study.id)
    assert set(sim.participants) == set(tables(make_session, study.id)["participants"]["participant"])
    true_pos, false_pos = len(flagged & sim.inattentive), len(flagged - sim.inattentive)
    false_neg = len(sim.inattentive - flagged)
    precision, recall = true_pos / (true_pos + false_pos), true_pos / (true_pos + false_neg)
    assert 20 <= len(sim.inattentive) <= 60  # about 40 of 200 (3.5 sd; grid ids, hence plans, vary by build)
    assert false_pos == 0  # attentive people are never excluded: precision 1
    with make_session() as s:
        shown = s.execute(
            select(Trial.participant_id, Trial.protocol, Trial.grid_ids).where(
                Trial.is_catch.is_(True), Trial.participant_id.in_(sim.inattentive)
            )
        ).all()
    fail_p = {"rating": 4 / 7, "pairwise": 1 / 3}
    passes = dict.fromkeys(sim.inattentive, 1.0)
    for pid, protocol, grid_ids in shown:
        passes[pid] *= 1 - fail_p.get(protocol, 1 / len(grid_ids))
    caught = [1 - q for q in passes.values()]
    expected, sd = sum(caught), sum(p * (1 - p) for p in caught) ** 0.5
    print(
        f"precision {precision:.3f} ({true_pos}/{len(flagged)}), recall {recall:.3f}"
        f" ({true_pos}/{len(sim.inattentive)}; the rule's chance: {expected:.1f} +- {sd:.1f} caught)"
    )
    assert abs(true_pos - expected) <= 3.5 * sd, (true_pos, expected, sd)
    assert recall >= 0.5


def test_cli_attentive_raters_are_not_excluded(sqlite_study_db, tmp_path, capsys):
    import json

    db_path, _, _ = sqlite_study_db
    assert main(["simulate", "--db", str(db_path), "--participants", "40", "--inattentive", "0"]) == 0
    assert "40 simulated participants stored 600 answers (0 of them answering at random)" in capsys.readouterr().out
    assert main(["report", "--db", str(db_path), "--json", "--out", str(tmp_path / "r.html"), "--n-boot", "200"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["exclusions"]["started"] == out["exclusions"]["kept"] == 40
    assert out["exclusions"]["excluded_failed_checks"] == 0


def test_cli(study_db, capsys):
    db_path, _, _ = study_db
    assert main(["simulate", "--db", str(db_path), "--participants", "2", "--effects", "ssim/none=1"]) == 0
    assert "2 simulated participants stored 30 answers" in capsys.readouterr().out
    assert main(["simulate", "--db", str(db_path), "--participants", "1", "--effects", "x/y=1"]) == 2
