"""`lookalike power`: power by simulation, on the study's own design."""

from __future__ import annotations

import json

import numpy as np
import pytest

from survey.analysis.conditions import condition_summaries, ratings_from_judgements, ratings_table
from survey.analysis.power import default_pair, power_curve
from survey.analysis.simulate import ResponseModel, SimulationError, simulate, simulate_judgements, study_design
from survey.cli import main
from survey.participants import service
from tests.helpers import CONDITIONS, synthetic_design


def test_power_grows_with_participants_and_is_about_alpha_without_an_effect():
    design = synthetic_design(CONDITIONS, 10, 10)
    res = power_curve(design, [4, 12, 40], model=ResponseModel(effects={"efficientnet/u2netp": 0.6}), reps=40, seed=1)
    omnibus = [p.friedman_power for p in res.points]
    pair = [p.pair_power for p in res.points]
    assert omnibus[0] < omnibus[1] < omnibus[2] and omnibus[2] >= 0.8, omnibus
    assert pair[0] < pair[2] and pair[2] >= 0.5, pair
    assert res.pair == ("efficientnet/u2netp", "efficientnet/none")
    assert res.friedman_needed == 40 and all(
        p.friedman_ci_low <= p.friedman_power <= p.friedman_ci_high for p in res.points
    )
    null = power_curve(design, [20], model=ResponseModel(), reps=300, seed=2).points[0]
    assert 0.02 <= null.friedman_power <= 0.09, null  # the test's size: about alpha
    assert null.pair_power <= 0.05  # Holm over six pairs: one pair's false-positive rate is at most alpha


def test_power_is_reproducible_per_size():
    design = synthetic_design(CONDITIONS, 4, 6)
    model = ResponseModel(effects={"ssim/none": -0.5})
    a = power_curve(design, [6, 10], model=model, reps=8, seed=3)
    b = power_curve(design, [10], model=model, reps=8, seed=3)
    assert a.points[1] == b.points[0]  # a size's estimate does not depend on the other sizes tried


def test_default_pair_and_input_checks():
    assert default_pair(CONDITIONS, {"ssim/none": 0.5, "ssim/u2netp": -1}) == ("ssim/none", "ssim/u2netp")
    assert default_pair(CONDITIONS, {"ssim/u2netp": 1}) == ("ssim/u2netp", "efficientnet/none")
    assert default_pair(CONDITIONS, {}) == ("efficientnet/none", "efficientnet/u2netp")
    design = synthetic_design(CONDITIONS, 4, 6)
    with pytest.raises(SimulationError, match="not in the study"):
        power_curve(design, [5], model=ResponseModel(effects={"clip/none": 1}))
    with pytest.raises(SimulationError, match="pair must name"):
        power_curve(design, [5], pair=("ssim/none", "ssim/none"))
    with pytest.raises(SimulationError, match="positive"):
        power_curve(design, [0, 5])


def test_study_design_and_both_simulation_paths_agree(study_db):
    """The fast data-frame simulation and the service-path simulation share one response model."""
    _, make_session, _ = study_db
    study = service.current_study(make_session)
    design = study_design(make_session, study.id)
    assert design.conditions == CONDITIONS and design.trials_per_participant == 4
    effects = {"efficientnet/u2netp": 1.5, "ssim/u2netp": -1.5}
    model = ResponseModel(effects=effects, noise_sd=0.5, bias_sd=0.2)
    simulate(make_session, study.id, 40, seed=5, model=model)
    served = {s.condition: s.mean for s in condition_summaries(ratings_table(make_session, study.id), n_boot=100)}
    frames = simulate_judgements(design, 400, model=model, rng=np.random.default_rng(0))
    direct = {s.condition: s.mean for s in condition_summaries(ratings_from_judgements(frames), n_boot=100)}
    for c in CONDITIONS:  # 40 served participants x 4 ratings: sampling error of a mean about 0.2
        assert served[c] == pytest.approx(direct[c], abs=0.6), (c, served, direct)
    assert direct["efficientnet/u2netp"] > direct["efficientnet/none"] > direct["ssim/u2netp"]


def test_cli_prints_a_table_and_json(study_db, capsys):
    db, _, _ = study_db
    args = ["power", "--db", str(db), "--effects", "efficientnet/u2netp=1", "--participants", "4,12", "--reps", "6"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "participants  Friedman power" in out and "pair: efficientnet/u2netp vs efficientnet/none" in out
    assert main([*args, "--json", "--pair", "efficientnet/u2netp,ssim/none"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["study"] == "t" and res["pair"] == ["efficientnet/u2netp", "ssim/none"]
    assert [p["participants"] for p in res["points"]] == [4, 12] and res["reps"] == 6
    assert all(0 <= p["friedman_power"] <= 1 for p in res["points"])
    assert main(["power", "--db", str(db), "--participants", "ten"]) == 2
    assert main(["power", "--db", str(db), "--pair", "efficientnet/u2netp"]) == 2
    assert "--pair takes two conditions" in capsys.readouterr().err
