"""Statistics checked against independent computations and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from survey import service
from survey.export import tables
from survey.simulate import ResponseModel, simulate
from survey.stats import (ExclusionRules, _bt_negloglik, apply_exclusions, best_worst_scores, bradley_terry,
                          bradley_terry_bootstrap, friedman, pairwise_wilcoxon, win_matrix)


def _ratings(matrix: np.ndarray) -> pd.DataFrame:
    """Judgements with one rating per (reference block, condition)."""
    rows = [{"protocol": "rating", "is_catch": False, "participant": 1, "reference": f"r{i}",
             "condition": f"c{j}", "rating": float(v)} for i, row in enumerate(matrix) for j, v in enumerate(row)]
    return pd.DataFrame(rows)


def test_friedman_and_kendalls_w_match_scipy_and_the_definition():
    m = np.array([[1, 2, 3], [2, 3, 1], [1, 3, 2], [1, 2, 3], [2, 3, 1], [1, 3, 2]])
    res = friedman(_ratings(m))
    ref = stats.friedmanchisquare(*m.T)
    assert res.statistic == pytest.approx(ref.statistic) and res.pvalue == pytest.approx(ref.pvalue)
    # Kendall's W from its definition: 12 S / (n^2 (k^3 - k)), S = sum of squared rank-sum deviations
    ranks = np.apply_along_axis(stats.rankdata, 1, m)
    s = ((ranks.sum(axis=0) - ranks.sum() / 3) ** 2).sum()
    assert res.kendalls_w == pytest.approx(12 * s / (6 ** 2 * (3 ** 3 - 3)))
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


def test_bradley_terry_gradient_and_known_solution():
    rng = np.random.default_rng(1)
    wins = rng.integers(1, 10, (4, 4)).astype(float)
    np.fill_diagonal(wins, 0)
    err = optimize.check_grad(lambda t: _bt_negloglik(t, wins)[0], lambda t: _bt_negloglik(t, wins)[1],
                              rng.normal(size=4))
    assert err < 1e-4
    # two items, a beats b 3 times out of 4: MLE difference = log(3)
    theta = bradley_terry(np.array([[0, 3.0], [1.0, 0]]))
    assert theta[0] - theta[1] == pytest.approx(np.log(3), abs=1e-3)
    with pytest.raises(ValueError, match="square"):
        bradley_terry(np.ones((2, 3)))


def test_exclusion_rules_change_the_kept_set_exactly():
    p = pd.DataFrame({"participant": [1, 2, 3, 4, 5],
                      "flags": ["", "failed_check:3", "too_fast:1;too_fast:2", "", "failed_check:1;too_fast:4"],
                      "trials_done_at": [pd.Timestamp("2026-01-01"), pd.Timestamp("2026-01-01"),
                                         pd.Timestamp("2026-01-01"), pd.NaT, pd.Timestamp("2026-01-01")]})
    default = apply_exclusions(p)
    assert default.kept_ids == (1, 3) and (default.excluded_failed_checks, default.excluded_incomplete) == (2, 1)
    strict = apply_exclusions(p, ExclusionRules(too_fast_max=1))
    assert strict.kept_ids == (1,) and strict.excluded_too_fast == 1
    lenient = apply_exclusions(p, ExclusionRules(failed_checks_max=None, require_complete=False))
    assert lenient.kept_ids == (1, 2, 3, 4, 5)
    assert (default.started, default.completed) == (5, 4)


def test_simulated_pairwise_and_ranking_recover_the_true_order(study_db):
    _, make_session, _ = study_db
    study = service.current_study(make_session)
    effects = {"efficientnet/u2netp": 1.5, "efficientnet/none": 0.5, "ssim/none": -0.5, "ssim/u2netp": -1.5}
    simulate(make_session, study.id, 40, seed=7, model=ResponseModel(effects=effects, noise_sd=0.7))
    j = tables(make_session, study.id)["judgements"]
    truth = sorted(effects, key=effects.get, reverse=True)
    bt = bradley_terry_bootstrap(j, n_boot=100, rng=np.random.default_rng(0))
    assert [e.condition for e in sorted(bt, key=lambda e: -e.strength)] == truth
    assert all(e.ci_low <= e.strength <= e.ci_high for e in bt)
    bw = best_worst_scores(j)
    assert [b.condition for b in sorted(bw, key=lambda b: -b.score)][0] == truth[0]
    assert [b.condition for b in sorted(bw, key=lambda b: -b.score)][-1] == truth[-1]
    w = win_matrix(j)
    assert w.loc[truth[0], truth[-1]] > w.loc[truth[-1], truth[0]]


def test_report_json_and_html_from_a_simulated_study(study_db, tmp_path, capsys):
    import json
    import time

    from survey.cli import main

    db_path, make_session, _ = study_db
    study = service.current_study(make_session)
    simulate(make_session, study.id, 40, seed=11, model=ResponseModel(
        effects={"efficientnet/u2netp": 1.0, "ssim/u2netp": -1.0}, inattentive=0.1))
    t0 = time.perf_counter()
    assert main(["report", "--db", str(db_path), "--out", str(tmp_path / "r.html"), "--json", "--n-boot", "500"]) == 0
    seconds = time.perf_counter() - t0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {c["condition"] for c in out["conditions"]} == {f"{m}/{s}" for m in ("ssim", "efficientnet")
                                                          for s in ("none", "u2netp")}
    assert all(set(c) >= {"method", "segmenter", "n", "mean", "ci_low", "ci_high"} for c in out["conditions"])
    assert len(out["bradley_terry"]) == 4 and out["exclusions"]["started"] == 40
    assert out["exclusions"]["kept"] < 40  # inattentive raters failed checks and were excluded
    html = (tmp_path / "r.html").read_text()
    assert {p["condition"] for p in out["precision"]} == {c["condition"] for c in out["conditions"]}
    assert {a["protocol"] for a in out["agreement"]} == {"rating", "pairwise"}
    assert out["mixed_model"]["terms"][0]["term"] == "Intercept"
    for section in ("Participants", "Ratings (1-7)", "mixed model", "Precision@5", "Bradley-Terry", "Best-worst",
                    "Agreement between participants", "objective retrieval"):
        assert section in html
    assert seconds < 60, seconds  # a generous bound; the closing note reports the measured time


def test_precision_at_k_from_ticks_by_hand():
    from survey.stats import precision_at_k

    j = pd.DataFrame([
        {"protocol": "rating", "is_catch": False, "participant": 1, "reference": "r", "condition": "a",
         "rating": 5, "ticks": "[true, true, false, false, false]"},
        {"protocol": "rating", "is_catch": False, "participant": 2, "reference": "r", "condition": "a",
         "rating": 6, "ticks": "[true, true, true, true, false]"},
        {"protocol": "rating", "is_catch": False, "participant": 1, "reference": "r", "condition": "b",
         "rating": 2, "ticks": None},
    ])
    [a] = precision_at_k(j, n_boot=200, rng=np.random.default_rng(0))
    assert (a.condition, a.n) == ("a", 2) and a.precision == pytest.approx((0.4 + 0.8) / 2)
    assert 0.4 <= a.ci_low <= a.precision <= a.ci_high <= 0.8


def test_krippendorff_alpha_reproduces_the_published_example():
    """Krippendorff (2011), 'Computing Krippendorff's alpha-reliability': 4 coders, 12 units."""
    from survey.stats import krippendorff_alpha

    n = np.nan
    data = pd.DataFrame([[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
                         [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]])
    rng = np.random.default_rng(0)
    assert krippendorff_alpha(data, "nominal", n_boot=50, rng=rng)[0] == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(data, "interval", n_boot=50, rng=rng)[0] == pytest.approx(0.849, abs=5e-4)
    alpha, lo, hi = krippendorff_alpha(data, "ordinal", n_boot=200, rng=rng)
    assert lo <= alpha <= hi
    with pytest.raises(ValueError, match="level must be"):
        krippendorff_alpha(data, "interval-ish", rng=rng)


def test_agreement_and_split_half_on_simulated_raters(study_db):
    from survey.analysis import ratings_from_judgements
    from survey.stats import agreement, split_half

    _, make_session, _ = study_db
    study = service.current_study(make_session)
    effects = {"efficientnet/u2netp": 2.0, "ssim/u2netp": -2.0}
    simulate(make_session, study.id, 40, seed=2, model=ResponseModel(effects=effects, noise_sd=0.3, bias_sd=0.1))
    j = tables(make_session, study.id)["judgements"]
    rng = np.random.default_rng(0)
    rating = agreement(j, "rating", n_boot=100, rng=rng)
    assert rating.level == "ordinal" and rating.units > 0 and rating.alpha > 0.5  # low noise: raters agree
    pair = agreement(j, "pairwise", n_boot=100, rng=rng)
    assert pair.level == "nominal" and pair.alpha > 0.3
    sh = split_half(ratings_from_judgements(j), splits=50, rng=rng)
    assert sh.spearman_brown > 0.8 and sh.splits == 50


def test_mixed_model_matches_ols_without_random_variance_and_finds_a_method_effect():
    import statsmodels.formula.api as smf

    from survey.stats import method_segmenter_model

    rng = np.random.default_rng(4)
    rows = []
    for p in range(30):
        for ref in range(6):
            for m in ("a", "b"):
                for s in ("x", "y"):
                    mu = 4 + (1.0 if m == "b" else 0.0)
                    rows.append({"participant": p, "reference": f"r{ref}", "method": m, "segmenter": s,
                                 "condition": f"{m}/{s}", "rating": mu + rng.normal(0, 1)})
    df = pd.DataFrame(rows)
    res = method_segmenter_model(df)
    terms = {t.term: t for t in res.terms}
    ols = smf.ols("rating ~ C(method) * C(segmenter)", df).fit()
    for name in ols.params.index:  # balanced design: fixed effects equal the OLS estimates
        assert terms[name].estimate == pytest.approx(ols.params[name], abs=1e-6)
    b = terms["C(method)[T.b]"]
    assert b.pvalue < 1e-6 and b.ci_low < 1.0 < b.ci_high
    assert terms["C(segmenter)[T.y]"].ci_low < 0 < terms["C(segmenter)[T.y]"].ci_high
    assert (res.n, res.participants, res.references) == (720, 30, 6)
    assert method_segmenter_model(df[df["segmenter"] == "x"]) is None
