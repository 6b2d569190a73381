from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey.analysis.bootstrap import cluster_bootstrap_mean_ci
from survey.analysis.conditions import RATING_COLUMNS, condition_summaries, ratings_table
from survey.analysis.report import render_html
from survey.participants import service
from tests.helpers import answer_all


def test_cluster_bootstrap_ci_covers_the_truth_at_the_nominal_rate():
    """Simulated participants with their own bias: the 95% CI covers the true mean ~95% of the time."""
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(200):
        bias = rng.normal(0, 1, 30)
        clusters = np.repeat(np.arange(30), 8)
        values = 4 + bias[clusters] + rng.normal(0, 1, clusters.size)
        lo, hi = cluster_bootstrap_mean_ci(values, clusters, n_boot=500, rng=rng)
        covered += lo <= 4 <= hi
    assert 0.88 <= covered / 200 <= 0.99


def test_cluster_bootstrap_is_wider_than_naive_with_correlated_raters():
    rng = np.random.default_rng(1)
    clusters = np.repeat(np.arange(20), 10)
    values = rng.normal(0, 2, 20)[clusters] + rng.normal(0, 0.5, 200)
    lo, hi = cluster_bootstrap_mean_ci(values, clusters, rng=rng)
    naive = 2 * 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert hi - lo > 2 * naive


def test_bootstrap_input_validation():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="no values"):
        cluster_bootstrap_mean_ci(np.array([]), np.array([]), rng=rng)
    with pytest.raises(ValueError, match="confidence"):
        cluster_bootstrap_mean_ci(np.ones(3), np.arange(3), confidence=95, rng=rng)
    with pytest.raises(ValueError, match="lacks column"):
        condition_summaries(pd.DataFrame({"rating": [1]}))


def test_summaries_and_report_from_real_answers(study_db):
    _, make_session, _ = study_db
    study = service.current_study(make_session)
    rng = np.random.default_rng(3)
    for _ in range(4):
        answer_all(make_session, service.start_participant(make_session, study.id, {}, rng), rng)
    df = ratings_table(make_session, study.id)
    assert list(df.columns) == list(RATING_COLUMNS)
    assert df["response_id"].nunique() == 16  # 4 participants x 4 rating trials (attention checks left out)
    summaries = condition_summaries(df, n_boot=300, seed=5)
    assert {r.condition for r in summaries} <= {
        f"{m}/{g}" for m in ("ssim", "efficientnet") for g in ("none", "u2netp")
    }
    for r in summaries:
        sub = df[df["condition"] == r.condition]
        assert r.n_ratings == len(sub) and r.mean == pytest.approx(sub["rating"].mean())
        if r.n_participants >= 2:
            assert r.ci_low <= r.mean <= r.ci_high
        else:  # which grids a participant saw depends on random grid ids: one rater, no interval
            assert np.isnan(r.ci_low) and np.isnan(r.ci_high)
    assert repr(condition_summaries(df, n_boot=300, seed=5)) == repr(summaries)  # seeded; repr: nan == nan


def test_report_without_answers_says_so(study_db):
    from survey.analysis.results import compute_results

    _, make_session, _ = study_db
    html = render_html(compute_results(make_session, service.current_study(make_session).id, n_boot=100))
    assert "No ratings yet" in html and "0 started" in html


def test_one_participant_has_no_interval():
    lo, hi = cluster_bootstrap_mean_ci(np.array([3.0, 5.0, 4.0]), np.array([7, 7, 7]), rng=np.random.default_rng(0))
    assert np.isnan(lo) and np.isnan(hi)
