"""Power from a pilot (``lookalike power --from-pilot``) and costs: the pilot estimators recover the
simulation's true effects within their intervals (through the service, for every protocol, and over
repeated simulated pilots), the best-worst likelihood equals closed forms and Monte Carlo, and the
cost table is arithmetic on the study's own timings."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit, logit

from survey.analysis.costs import Timing, size_costs, study_timing
from survey.analysis.pilot_fits import best_worst_probability, pairwise_pilot, rating_pilot
from survey.analysis.response_model import SWIPE_BASE_LOGIT, SWIPE_MATCH_LOGIT, ResponseModel, SimulationError
from survey.analysis.simulate import ANSWER_TIME, INSTRUCTIONS_TIME, simulate_judgements
from survey.cli import main
from survey.study.config import Component
from tests.helpers import synthetic_design

EFFECTS = {"efficientnet/u2netp": 1.0, "efficientnet/none": 0.5}
EFFECTS_FLAG = ",".join(f"{k}={v}" for k, v in EFFECTS.items())


def test_best_worst_probability_equals_closed_forms_and_monte_carlo():
    rng = np.random.default_rng(0)
    mu2 = np.array([[0.7, -0.2]])  # two options: P(first best) = Phi((mu1 - mu2) / sqrt 2)
    p2 = best_worst_probability(mu2, np.ones((1, 2), bool), np.array([0]), np.array([1]))
    assert p2[0] == pytest.approx(stats.norm.cdf(0.9 / np.sqrt(2)), abs=2e-3)
    mu = np.array([0.8, 0.1, -0.3, 0.4])
    draws = mu + rng.standard_normal((400_000, 4))
    best, worst = draws.argmax(1), draws.argmin(1)
    pairs = [(0, 2), (3, 1), (1, 0), (2, 3)]
    p = best_worst_probability(
        np.tile(mu, (4, 1)), np.ones((4, 4), bool), np.array([b for b, _ in pairs]), np.array([w for _, w in pairs])
    )
    for (b, w), got in zip(pairs, p, strict=True):
        mc = np.mean((best == b) & (worst == w))
        assert got == pytest.approx(mc, abs=4 * np.sqrt(mc * (1 - mc) / len(draws)) + 2e-3), (b, w)
    total = sum(
        best_worst_probability(mu[None], np.ones((1, 4), bool), np.array([b]), np.array([w]))[0]
        for b in range(4)
        for w in range(4)
        if b != w
    )
    assert total == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("protocol,fitter", [("rating", rating_pilot), ("pairwise", pairwise_pilot)])
def test_pilot_intervals_cover_the_true_contrasts_over_repeated_pilots(protocol, fitter):
    """40 simulated pilots of 15 participants: each contrast's 95 % interval covers the truth in about
    95 % of them (3 contrasts x 40 = 120 intervals; 0.95 +- 3 binomial SD is 0.89 to 1)."""
    conds = ["a/x", "a/y", "b/x", "b/y"]
    design = synthetic_design(conds, 8, 4, protocols=(protocol,))
    truth = dict(zip(conds, [0.0, 0.3, 0.6, 0.9], strict=True))
    covered = []
    for r in range(40):
        j = simulate_judgements(
            design, 15, protocol=protocol, model=ResponseModel(effects=truth), rng=np.random.default_rng(r)
        )
        for c in fitter(j).contrasts():
            covered.append(c.ci_low <= truth[c.condition] - truth[c.reference] <= c.ci_high)
    rate, sd = np.mean(covered), np.sqrt(0.95 * 0.05 / len(covered))
    assert 0.95 - 3 * sd <= rate, (protocol, rate)


def test_a_pilot_refuses_what_it_cannot_estimate():
    design = synthetic_design(["a/x", "b/x"], 4, 2, protocols=("pairwise",))
    j = simulate_judgements(design, 1, protocol="pairwise", model=ResponseModel(), rng=np.random.default_rng(0))
    with pytest.raises(SimulationError, match="at least 2 participants"):
        pairwise_pilot(j)


def test_costs_are_minutes_times_pay_and_arrivals_give_days():
    timing = Timing(12.0, "given", 0)
    rows = size_costs([10, 40], timing, pay_per_hour=15.0, arrivals_per_hour=2.0)
    assert [(r.cost, r.hours_of_participant_time, r.collection_days) for r in rows] == [
        (30.0, 2.0, 10 / 2 / 24),
        (120.0, 8.0, 40 / 2 / 24),
    ]
    assert size_costs([10], timing, pay_per_hour=None, arrivals_per_hour=None)[0].cost is None
    with pytest.raises(SimulationError, match="--pay-per-hour must be a positive"):
        size_costs([10], timing, pay_per_hour=-1, arrivals_per_hour=None)


#: Simultaneous bands for the recovery checks: 99.9 % family-wise over every contrast of every protocol
#: of a check (Bonferroni over 9), so a correct estimator fails a run about once in a thousand; the
#: 95 % intervals' calibration is what test_pilot_intervals_cover_the_true_contrasts_over_repeated_pilots checks.
RECOVERY_Z = float(stats.norm.ppf(1 - 0.001 / (2 * 9)))


def _recovered(contrasts, truth):
    """Per contrast: (lowest, true, highest) of its simultaneous band, and its standard error."""
    out = {}
    for c in contrasts:
        true = truth.get(c["condition"], 0.0) - truth.get(c["reference"], 0.0)
        band = (c["estimate"] - RECOVERY_Z * c["std_error"], true, c["estimate"] + RECOVERY_Z * c["std_error"])
        out[c["condition"]] = (*band, c["std_error"])
    return out


def test_power_from_a_pilot_of_15_for_every_grid_protocol(sqlite_study_db, capsys):
    """The issue's check: after ``lookalike simulate --participants 15`` every protocol's pilot gives the
    participants needed with their cost, and the true effects lie in the pilot's (simultaneous) bands.
    The build's grid ids are random, so each run of the suite draws another pilot."""
    db, make_session, _ = sqlite_study_db
    assert main(["power", "--db", db, "--from-pilot"]) == 2
    assert "at least 2 participants" in capsys.readouterr().err
    assert main(["simulate", "--db", db, "--participants", "15", "--effects", EFFECTS_FLAG, "--seed", "3"]) == 0
    capsys.readouterr()
    args = ["power", "--db", db, "--from-pilot", "--json", "--reps", "4", "--participants", "10,60", "--boot", "20"]
    assert main([*args, "--pay-per-hour", "12", "--arrivals-per-hour", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    # the simulation clock: a minute of instructions, 20 s per screen (15 screens in this study)
    minutes = (INSTRUCTIONS_TIME + 15 * ANSWER_TIME) / timedelta(minutes=1)
    assert study_timing(make_session, 1).minutes_per_participant == pytest.approx(minutes)
    assert out["costs"]["timing"]["minutes_per_participant"] == pytest.approx(minutes)
    assert [c["cost"] for c in out["costs"]["sizes"]] == [round(n * minutes / 60 * 12, 2) for n in (10, 60)]
    assert set(out["protocols"]) == {"rating", "pairwise", "ranking"}
    for protocol, res in out["protocols"].items():
        effects = res["pilot"]["effects"]  # the default pair: the largest estimated effect vs the smallest
        assert res["pair"] == [max(effects, key=effects.get), min(effects, key=effects.get)]
        for name, need in res["needed"].items():
            assert need["participants"] in (10, 60, None), (protocol, name)
            if need["participants"]:
                assert need["cost"] == round(need["participants"] * minutes / 60 * 12, 2)
        for cond, (lo, true, hi, se) in _recovered(res["pilot"]["contrasts"], EFFECTS).items():
            assert lo <= true <= hi and se < 0.6, (protocol, cond, lo, true, hi, se)


def _swipe_truth(make_session, study_id, effects, model):
    """Population-averaged log odds ratio of each condition's likes against the first condition's, from the
    service simulation's like model by quadrature: the set's grid effect (the mean of its producing
    conditions') plus N(0, bias_sd^2 + noise_sd^2) on the logit, each pool product equally likely to be
    the reference (every random product is liked with the same probability)."""
    from sqlalchemy import select

    from db.models import CatalogItem, Condition, Grid, GridCondition

    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    sd = np.hypot(model.bias_sd, model.noise_sd)
    with make_session() as s:
        rows = s.execute(
            select(Condition.label, Grid.id)
            .join(GridCondition, GridCondition.condition_id == Condition.id)
            .join(Grid, Grid.id == GridCondition.grid_id)
            .join(CatalogItem, CatalogItem.id == Grid.reference_id)
            .where(Condition.study_id == study_id, CatalogItem.in_swipe_pool, Grid.kind == "condition")
        ).all()
    producers: dict[str, list[str]] = {}
    for label, grid in rows:
        producers.setdefault(grid, []).append(label)
    rate = {}
    for label in sorted({label for label, _ in rows}):
        grids = [g for g, labels in producers.items() if label in labels]
        eff = np.array([np.mean([effects.get(c, 0.0) for c in producers[g]]) for g in grids])
        eta = SWIPE_BASE_LOGIT + SWIPE_MATCH_LOGIT + eff[:, None] + sd * nodes[None, :]
        rate[label] = float((expit(eta) @ weights / weights.sum()).mean())
    first = min(rate)
    return {c: float(logit(p) - logit(rate[first])) for c, p in rate.items()}


def test_power_from_a_swipe_pilot_of_15(tiny_study, capsys):
    db, make_session, study = tiny_study(
        "swipepilot",
        protocols=("swipe",),
        segmenters=(Component("none"), Component("u2netp")),
        swipe_pool_per_category=6,
    )
    effects = {"ssim/u2netp": 0.8}
    assert main(["simulate", "--db", str(db), "--participants", "15", "--effects", "ssim/u2netp=0.8"]) == 0
    capsys.readouterr()
    args = ["power", "--db", str(db), "--from-pilot", "--json", "--reps", "6", "--participants", "20,80"]
    assert main([*args, "--pay-per-hour", "10"]) == 0
    out = json.loads(capsys.readouterr().out)
    res = out["protocols"]["swipe"]
    assert set(res["needed"]) == {"like_model", "wilcoxon_holm"}
    truth = _swipe_truth(make_session, study.id, effects, ResponseModel())
    for cond, (lo, true, hi, se) in _recovered(res["pilot"]["contrasts"], truth).items():
        assert lo <= true <= hi and se < 0.8, (cond, lo, true, hi, se)
    assert all(s["cost"] > 0 for s in out["costs"]["sizes"])
