"""Rating statistics (survey.analysis.ratings): Friedman and Kendall's W, Wilcoxon signed-rank with
Holm's correction, precision@k, per-rater z-scores and rating distributions, checked against scipy,
statsmodels and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from survey.analysis.ratings import friedman, pairwise_wilcoxon


def _ratings(matrix: np.ndarray) -> pd.DataFrame:
    """Judgements with one rating per (reference block, condition)."""
    rows = [
        {
            "protocol": "rating",
            "is_catch": False,
            "participant": 1,
            "reference": f"r{i}",
            "condition": f"c{j}",
            "rating": float(v),
        }
        for i, row in enumerate(matrix)
        for j, v in enumerate(row)
    ]
    return pd.DataFrame(rows)


def test_friedman_and_kendalls_w_match_scipy_and_the_definition():
    m = np.array([[1, 2, 3], [2, 3, 1], [1, 3, 2], [1, 2, 3], [2, 3, 1], [1, 3, 2]])
    res = friedman(_ratings(m))
    ref = stats.friedmanchisquare(*m.T)
    assert res.statistic == pytest.approx(ref.statistic) and res.pvalue == pytest.approx(ref.pvalue)
    # Kendall's W from its definition: 12 S / (n^2 (k^3 - k)), S = sum of squared rank-sum deviations
    ranks = np.apply_along_axis(stats.rankdata, 1, m)
    s = ((ranks.sum(axis=0) - ranks.sum() / 3) ** 2).sum()
    assert res.kendalls_w == pytest.approx(12 * s / (6**2 * (3**3 - 3)))
    assert (res.n_blocks, res.k) == (6, 3)


def test_perfect_agreement_gives_w_of_one():
    m = np.tile([1.0, 4.0, 7.0], (5, 1))
    assert friedman(_ratings(m)).kendalls_w == pytest.approx(1.0)


def test_wilcoxon_holm_and_rank_biserial():
    rng = np.random.default_rng(0)
    m = np.column_stack([rng.normal(5, 1, 20), rng.normal(4, 1, 20), rng.normal(4, 1, 20)])
    res = {(r.a, r.b): r for r in pairwise_wilcoxon(_ratings(m))}
    d = m[:, 0] - m[:, 1]
    ref = stats.wilcoxon(d)
    r01 = res[("c0", "c1")]
    assert r01.pvalue == pytest.approx(ref.pvalue) and r01.statistic == pytest.approx(ref.statistic)
    ranks = stats.rankdata(np.abs(d))
    assert r01.rank_biserial == pytest.approx((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())
    ps = sorted(r.pvalue for r in res.values())
    holm = [min(1, max((3 - i) * ps[i] for i in range(j + 1))) for j in range(3)]  # step-down by hand
    assert sorted(r.pvalue_holm for r in res.values()) == pytest.approx(holm)


def test_precision_at_k_from_ticks_by_hand():
    from survey.analysis.ratings import precision_at_k

    j = pd.DataFrame(
        [
            {
                "protocol": "rating",
                "is_catch": False,
                "participant": 1,
                "reference": "r",
                "condition": "a",
                "rating": 5,
                "ticks": "[true, true, false, false, false]",
            },
            {
                "protocol": "rating",
                "is_catch": False,
                "participant": 2,
                "reference": "r",
                "condition": "a",
                "rating": 6,
                "ticks": "[true, true, true, true, false]",
            },
            {
                "protocol": "rating",
                "is_catch": False,
                "participant": 1,
                "reference": "r",
                "condition": "b",
                "rating": 2,
                "ticks": None,
            },
        ]
    )
    [a] = precision_at_k(j, n_boot=200, rng=np.random.default_rng(0))
    assert (a.condition, a.n) == ("a", 2) and a.precision == pytest.approx((0.4 + 0.8) / 2)
    assert 0.4 <= a.ci_low <= a.precision <= a.ci_high <= 0.8


def test_wilcoxon_signed_rank_equals_scipy_including_small_tied_samples():
    """The exact small-sample branch (ties or zeros, n <= 13) reproduces scipy's permutation test."""
    import warnings

    from survey.analysis.ratings import wilcoxon_signed_rank

    rng = np.random.default_rng(5)
    checked = 0
    for n in [*rng.integers(2, 12, 40), *rng.integers(14, 30, 10)]:
        d = np.round(rng.normal(0.4, 1, n) * 2) / 2  # half-points: ties and zeros
        if not (d != 0).any():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = stats.wilcoxon(d, zero_method="wilcox")
        assert wilcoxon_signed_rank(d) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-12, abs=1e-15)
        checked += 1
    assert checked > 40
    # a hand-computed case: d = (1, 1, -2): ranks 1.5, 1.5, 3; R+ = 3 of 2**3 equally likely sign patterns,
    # R+ <= 3 in 5 of them and R+ >= 3 in 5: p = min(1, 2 * 5/8) = 1
    assert wilcoxon_signed_rank(np.array([1.0, 1.0, -2.0])) == (3.0, 1.0)


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    from survey.analysis.ratings import holm

    rng = np.random.default_rng(2)
    for _ in range(15):
        p = rng.random(rng.integers(1, 9)) ** 3
        assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])


def _ratings_frame(rng, participants=12, refs=5, conds=("a/x", "a/y", "b/x")):
    rows, rid = [], 0
    for p in range(participants):
        for r in range(refs):
            for c in conds:
                rid += 1
                rows.append(
                    {
                        "response_id": rid,
                        "participant": p,
                        "reference": f"r{r}",
                        "condition": c,
                        "method": c.split("/")[0],
                        "segmenter": c.split("/")[1],
                        "rating": int(rng.integers(1, 8)),
                    }
                )
    return pd.DataFrame(rows)


def test_zscores_are_scipy_zscores_within_each_participant_and_ignore_rater_scale():
    from survey.analysis.ratings import zscore_ratings, zscored_analysis

    rng = np.random.default_rng(3)
    r = _ratings_frame(rng)
    shared = r.iloc[[0]].assign(condition="b/y", method="b", segmenter="y")  # a grid two conditions share
    r = pd.concat([r, shared], ignore_index=True)
    r.loc[r["participant"] == 11, "rating"] = 4  # a rater who never varies
    z = zscore_ratings(r)
    for _, g in z.groupby("participant"):
        distinct = g.drop_duplicates("response_id")
        expected = np.zeros(len(distinct)) if distinct["rating"].nunique() == 1 else stats.zscore(distinct["rating"])
        assert distinct["z"].to_numpy() == pytest.approx(expected)
    assert z.loc[z["response_id"] == 1, "z"].nunique() == 1  # the shared answer has one z-score
    # raters using the scale differently (shifted, compressed) give the same z-scores
    scale = r["participant"].map(dict(enumerate(rng.uniform(0.3, 2, 12))))
    shift = r["participant"].map(dict(enumerate(rng.uniform(-2, 2, 12))))
    assert zscore_ratings(r.assign(rating=shift + scale * r["rating"]))["z"].to_numpy() == pytest.approx(z["z"])
    res = zscored_analysis(r[r["condition"] != "b/y"], n_boot=300, rng=np.random.default_rng(0))
    zz = zscore_ratings(r[r["condition"] != "b/y"])
    m = zz.pivot_table(index="reference", columns="condition", values="z", aggfunc="mean")
    ref = stats.friedmanchisquare(*[m[c] for c in m.columns])
    assert (res.friedman.statistic, res.friedman.pvalue) == pytest.approx((ref.statistic, ref.pvalue))
    assert res.constant_raters == 1
    for c in res.conditions:
        assert c.mean == pytest.approx(zz.loc[zz["condition"] == c.condition, "z"].mean())
        assert c.ci_low <= c.mean <= c.ci_high


def test_rating_distribution_counts_every_rating():
    from survey.analysis.ratings import rating_distribution

    r = _ratings_frame(np.random.default_rng(4))
    for d in rating_distribution(r):
        ratings = r.loc[r["condition"] == d.condition, "rating"].to_numpy()
        assert d.counts == tuple(np.bincount(ratings, minlength=8)[1:])
