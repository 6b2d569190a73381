"""The analysis validated by repeated simulation: coverage of the confidence intervals,
calibration of the omnibus test, recovery of the true order. Studies are simulated straight into
data frames (survey.analysis.simulate.simulate_judgements, the service path's response model) so that
hundreds of repetitions stay fast."""

from __future__ import annotations

import numpy as np
import pytest

from survey.analysis.bradley_terry import bradley_terry_bootstrap
from survey.analysis.conditions import condition_summaries, ratings_from_judgements
from survey.analysis.plackett_luce import best_worst_scores, plackett_luce_bootstrap
from survey.analysis.ratings import friedman, zscore_ratings
from survey.analysis.simulate import (
    ResponseModel,
    best_worst_from_latent,
    pairwise_from_latent,
    rating_from_latent,
    simulate_judgements,
)
from tests.helpers import CONDITIONS, expected_rating, synthetic_design


def test_frames_follow_the_response_model_and_the_assignment_rule():
    design = synthetic_design(CONDITIONS, 6, 8)
    effects = {"efficientnet/u2netp": 1.0, "ssim/none": -1.0, "ssim/u2netp": 0.5}
    exact = ResponseModel(effects=effects, noise_sd=0.0, bias_sd=0.0)  # no noise: answers follow the effects
    r = simulate_judgements(design, 9, protocol="rating", model=exact, rng=np.random.default_rng(0))
    want = {c: int(rating_from_latent(effects.get(c, 0.0))) for c in CONDITIONS}
    assert (r["rating"] == r["condition"].map(want)).all()
    per_person = r.groupby("participant")["grid"]
    assert (per_person.nunique() == 8).all() and (per_person.size() == 8).all()  # 8 distinct units each
    judged = r.groupby("grid").size()
    assert len(judged) == 24 and judged.max() - judged.min() <= 1  # least judged first: balanced
    p = simulate_judgements(design, 9, protocol="pairwise", model=exact, rng=np.random.default_rng(0))
    for _, g in p.groupby("response_id"):
        left, right = g.sort_values("grid_position")["condition"]
        choice = pairwise_from_latent(effects.get(left, 0.0) - effects.get(right, 0.0), exact.tie_margin)
        assert (
            g.sort_values("grid_position")["outcome"].iloc[0]
            == {"left": "win", "right": "loss", "tie": "tie"}[str(choice)]
        )
    k = simulate_judgements(design, 9, protocol="ranking", model=exact, rng=np.random.default_rng(0))
    best = k[k["outcome"] == "best"]["condition"]
    worst = k[k["outcome"] == "worst"]["condition"]
    assert set(best) == {"efficientnet/u2netp"} and set(worst) == {"ssim/none"}
    assert best_worst_from_latent(np.array([[0.2, 1.0, np.nan], [0.0, -1.0, 3.0]]))[0].tolist() == [1, 2]


def test_condition_mean_ci_covers_the_true_expected_rating_about_95_percent():
    model = ResponseModel(effects={"efficientnet/u2netp": 1.0, "ssim/none": -0.5}, noise_sd=1.0, bias_sd=0.5)
    truth = {c: expected_rating(model.effects.get(c, 0.0), model) for c in CONDITIONS}
    design = synthetic_design(CONDITIONS, 6, 8)
    covered = total = 0
    for rep in range(200):
        j = simulate_judgements(design, 30, model=model, rng=np.random.default_rng([1, rep]))
        for s in condition_summaries(ratings_from_judgements(j), n_boot=300, seed=rep):
            covered += s.ci_low <= truth[s.condition] <= s.ci_high
            total += 1
    assert total == 800
    assert 0.88 <= covered / total <= 0.99, covered / total


def test_friedman_rejects_at_the_nominal_rate_without_true_differences():
    """Raw and per-rater z-scored ratings: the omnibus test's false-positive rate is about 5%."""
    design = synthetic_design(CONDITIONS, 10, 10)
    model = ResponseModel(noise_sd=1.0, bias_sd=0.7)
    raw, z, reps = 0, 0, 400
    for rep in range(reps):
        j = simulate_judgements(design, 20, model=model, rng=np.random.default_rng([2, rep]))
        fr = friedman(j)
        assert fr.n_blocks == 10
        raw += fr.pvalue < 0.05
        z += friedman(zscore_ratings(ratings_from_judgements(j)), value="z").pvalue < 0.05
    # 95% binomial range around 0.05 for 400 reps is about 0.03-0.07; allow for the chi-square approximation
    assert 0.02 <= raw / reps <= 0.09, raw / reps
    assert 0.02 <= z / reps <= 0.09, z / reps


def test_rating_bradley_terry_and_plackett_luce_recover_the_true_order():
    effects = {"efficientnet/u2netp": 1.0, "efficientnet/none": 0.4, "ssim/u2netp": -0.2, "ssim/none": -0.8}
    truth = sorted(effects, key=effects.get, reverse=True)
    model = ResponseModel(effects=effects, noise_sd=1.0, bias_sd=0.5)
    design = synthetic_design(CONDITIONS, 8, 8)
    rating = simulate_judgements(design, 60, protocol="rating", model=model, rng=np.random.default_rng(3))
    means = {s.condition: s.mean for s in condition_summaries(ratings_from_judgements(rating), n_boot=100)}
    assert sorted(means, key=means.get, reverse=True) == truth
    pairwise = simulate_judgements(design, 60, protocol="pairwise", model=model, rng=np.random.default_rng(4))
    bt = bradley_terry_bootstrap(pairwise, n_boot=100, rng=np.random.default_rng(0))
    assert [e.condition for e in sorted(bt, key=lambda e: -e.strength)] == truth
    ranking = simulate_judgements(design, 60, protocol="ranking", model=model, rng=np.random.default_rng(5))
    pl = plackett_luce_bootstrap(ranking, n_boot=200, rng=np.random.default_rng(0))
    assert [e.condition for e in sorted(pl, key=lambda e: -e.strength)] == truth
    assert all(e.ci_low <= e.strength <= e.ci_high for e in pl)
    by_rank = {e.condition: e.rank for e in pl}
    assert by_rank[truth[0]] == 1 and by_rank[truth[-1]] == 4  # clearly separated ends
    bw = best_worst_scores(ranking, n_boot=200, rng=np.random.default_rng(0))
    assert [b.condition for b in sorted(bw, key=lambda b: -b.score)] == truth


@pytest.mark.parametrize("protocol", ["rating", "pairwise", "ranking"])
def test_careless_raters_answer_at_random(protocol):
    design = synthetic_design(CONDITIONS, 6, 6)
    model = ResponseModel(effects={"ssim/none": 5.0}, noise_sd=0.1, inattentive=1.0)
    j = simulate_judgements(design, 40, protocol=protocol, model=model, rng=np.random.default_rng(0))
    if protocol == "rating":
        assert j["rating"].astype(int).value_counts().size == 7  # every rating used, whatever the effects
    else:
        wins = j[j["condition"] == "ssim/none"]["outcome"].value_counts(normalize=True)
        assert wins.get("win", wins.get("best", 0)) < 0.7  # not the sure winner the effects would make it
