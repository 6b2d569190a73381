"""The fast paths of the report (issue 12: reports at 100,000 judgement rows) give exactly the numbers
of the straightforward computations they replace, which are written out here independently."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest

from survey.analysis.agreement import krippendorff_alpha, split_half
from survey.analysis.bootstrap import cluster_bootstrap_mean_ci, resample_clusters, resampled_mean_ci
from survey.analysis.conditions import condition_resamples, condition_summaries, ratings_from_judgements
from survey.analysis.protocol_parts import agreement
from survey.analysis.ratings import zscored_analysis
from survey.analysis.simulate import ResponseModel, simulate_judgements
from tests.helpers import synthetic_design

CONDITIONS = ["a/x", "a/y", "b/x", "b/y"]
MODEL = ResponseModel(effects={"a/x": 1.0, "b/y": -0.5}, noise_sd=0.8)


def _judgements(protocol: str, participants: int = 60, seed: int = 0) -> pd.DataFrame:
    design = synthetic_design(CONDITIONS, references=6, trials_per_participant=5, protocols=("rating", "pairwise"))
    return simulate_judgements(design, participants, protocol=protocol, model=MODEL, rng=np.random.default_rng(seed))


def test_krippendorff_bootstrap_from_value_counts_equals_resampling_the_matrix():
    ratings = _judgements("rating")
    table = ratings.pivot_table(index="participant", columns="grid", values="rating", aggfunc="first")
    alpha, lo, hi = krippendorff_alpha(table, "ordinal", n_boot=300, rng=np.random.default_rng(3))
    data = table.to_numpy(dtype=float)
    data = data[:, (~np.isnan(data)).sum(axis=0) >= 2]
    rng = np.random.default_rng(3)
    boots = []
    for _ in range(300):  # what the matrix version did: resample units, alpha of the resampled matrix
        sample = data[:, rng.integers(0, data.shape[1], data.shape[1])]
        if len(np.unique(sample[~np.isnan(sample)])) >= 2:
            boots.append(krippendorff.alpha(reliability_data=sample, level_of_measurement="ordinal"))
    assert alpha == krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
    assert (lo, hi) == tuple(np.quantile(boots, [0.025, 0.975]))  # exactly: the same sums in the same order


def test_pairwise_agreement_codes_each_answer_by_its_winner_among_the_sorted_grids():
    j = _judgements("pairwise")
    got = agreement(j, "pairwise", n_boot=100, rng=np.random.default_rng(5))
    rows = []  # one row per answer, as the report defines it
    for _, g in j.drop_duplicates(["response_id", "grid"]).groupby("response_id"):
        grids = sorted(g["grid"])
        winner = g.loc[g["outcome"] == "win", "grid"]
        rows.append(
            (g["participant"].iloc[0], "|".join(grids), 0.0 if winner.empty else 1.0 + grids.index(winner.iloc[0]))
        )
    table = pd.DataFrame(rows, columns=["participant", "unit", "code"]).pivot_table(
        index="participant", columns="unit", values="code", aggfunc="first"
    )
    assert (got.alpha, got.ci_low, got.ci_high) == krippendorff_alpha(
        table, "nominal", n_boot=100, rng=np.random.default_rng(5)
    )
    assert (got.units, got.raters) == (int(((~table.isna()).sum(axis=0) >= 2).sum()), len(table))
    assert (j["outcome"] == "tie").any() and (j["outcome"] == "win").any()  # both codes occur


def test_split_half_equals_condition_means_of_random_halves():
    ratings = ratings_from_judgements(_judgements("rating", participants=40))
    got = split_half(ratings, splits=60, rng=np.random.default_rng(2))
    rng = np.random.default_rng(2)
    people = ratings["participant"].unique()
    rs = []
    for _ in range(60):
        half = set(rng.permutation(people)[: len(people) // 2])
        a = ratings[ratings["participant"].isin(half)].groupby("condition")["rating"].mean()
        b = ratings[~ratings["participant"].isin(half)].groupby("condition")["rating"].mean()
        both = pd.concat([a, b], axis=1).dropna()
        if len(both) >= 3 and both.iloc[:, 0].std() > 0 and both.iloc[:, 1].std() > 0:
            rs.append(float(np.corrcoef(both.iloc[:, 0], both.iloc[:, 1])[0, 1]))
    assert got.splits == len(rs) == 60 and got.r == float(np.mean(rs))


def test_shared_resamples_give_the_intervals_each_statistic_draws_for_itself():
    ratings = ratings_from_judgements(_judgements("rating", participants=30))
    shared = condition_resamples(ratings, n_boot=400, rng=np.random.default_rng(9))
    assert condition_summaries(ratings, n_boot=400, seed=9, resamples=shared) == condition_summaries(
        ratings, n_boot=400, seed=9
    )
    alone = zscored_analysis(ratings, n_boot=400, rng=np.random.default_rng(9))
    assert zscored_analysis(ratings, n_boot=400, rng=np.random.default_rng(1), resamples=shared) == alone
    with pytest.raises(ValueError, match="replicates, not n_boot=500"):
        condition_summaries(ratings, n_boot=500, resamples=shared)
    with pytest.raises(ValueError, match="no resamples for condition 'a/x'"):
        condition_summaries(ratings, n_boot=400, resamples={})


def test_resampled_mean_ci_is_the_cluster_bootstrap_and_refuses_other_clusters():
    rng = np.random.default_rng(4)
    clusters = np.repeat(np.arange(12), 5)
    values = rng.normal(size=clusters.size)
    draws = resample_clusters(clusters, n_boot=300, rng=np.random.default_rng(8))
    assert resampled_mean_ci(values, clusters, draws) == cluster_bootstrap_mean_ci(
        values, clusters, n_boot=300, rng=np.random.default_rng(8)
    )
    per_cluster = np.array([values[clusters == c] for c in range(12)])  # weights count whole clusters
    means = [(w @ per_cluster.sum(axis=1)) / (w @ np.full(12, 5.0)) for w in draws.weights]
    assert resampled_mean_ci(values, clusters, draws) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    with pytest.raises(ValueError, match="drawn for other clusters"):
        resampled_mean_ci(values[:-5], clusters[:-5], draws)
    assert resample_clusters(np.zeros(4), n_boot=10, rng=rng) is None  # one cluster: nothing to resample
    assert all(np.isnan(resampled_mean_ci(values[:5], clusters[:5], None)))
    with pytest.raises(ValueError, match="no resamples"):
        resampled_mean_ci(values, clusters, None)
