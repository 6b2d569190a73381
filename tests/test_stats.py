"""Statistics checked against independent computations and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from survey.analysis.bradley_terry import _bt_negloglik, bradley_terry, bradley_terry_bootstrap, win_matrix
from survey.analysis.exclusions import ExclusionRules, apply_exclusions
from survey.analysis.plackett_luce import best_worst_scores
from survey.analysis.ratings import friedman, pairwise_wilcoxon
from survey.analysis.simulate import ResponseModel, simulate
from survey.participants import service
from survey.study.export import tables
from tests.helpers import synthetic_design


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


def test_bradley_terry_gradient_and_known_solution():
    rng = np.random.default_rng(1)
    wins = rng.integers(1, 10, (4, 4)).astype(float)
    np.fill_diagonal(wins, 0)
    err = optimize.check_grad(
        lambda t: _bt_negloglik(t, wins)[0], lambda t: _bt_negloglik(t, wins)[1], rng.normal(size=4)
    )
    assert err < 1e-4
    # two items, a beats b 3 times out of 4: MLE difference = log(3)
    theta = bradley_terry(np.array([[0, 3.0], [1.0, 0]]))
    assert theta[0] - theta[1] == pytest.approx(np.log(3), abs=1e-3)
    with pytest.raises(ValueError, match="square"):
        bradley_terry(np.ones((2, 3)))


def test_exclusion_rules_change_the_kept_set_exactly():
    p = pd.DataFrame(
        {
            "participant": [1, 2, 3, 4, 5],
            "flags": ["", "failed_check:3", "too_fast:1;too_fast:2", "", "failed_check:1;too_fast:4"],
            "trials_done_at": [
                pd.Timestamp("2026-01-01"),
                pd.Timestamp("2026-01-01"),
                pd.Timestamp("2026-01-01"),
                pd.NaT,
                pd.Timestamp("2026-01-01"),
            ],
        }
    )
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
    bw = best_worst_scores(j, n_boot=200, rng=np.random.default_rng(0))
    assert min(bw, key=lambda b: -b.score).condition == truth[0]
    assert [b.condition for b in sorted(bw, key=lambda b: -b.score)][-1] == truth[-1]
    w = win_matrix(j)
    assert w.loc[truth[0], truth[-1]] > w.loc[truth[-1], truth[0]]


def test_report_json_and_html_from_a_simulated_study(study_db, tmp_path, capsys):
    import json
    import time

    from survey.cli import main

    db_path, make_session, _ = study_db
    study = service.current_study(make_session)
    simulate(
        make_session,
        study.id,
        40,
        seed=11,
        model=ResponseModel(effects={"efficientnet/u2netp": 1.0, "ssim/u2netp": -1.0}, inattentive=0.1),
    )
    t0 = time.perf_counter()
    assert main(["report", "--db", str(db_path), "--out", str(tmp_path / "r.html"), "--json", "--n-boot", "500"]) == 0
    seconds = time.perf_counter() - t0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {c["condition"] for c in out["conditions"]} == {
        f"{m}/{s}" for m in ("ssim", "efficientnet") for s in ("none", "u2netp")
    }
    assert all(set(c) >= {"method", "segmenter", "n", "mean", "ci_low", "ci_high"} for c in out["conditions"])
    assert len(out["bradley_terry"]) == 4 and out["exclusions"]["started"] == 40
    assert out["exclusions"]["kept"] < 40  # inattentive raters failed checks and were excluded
    html = (tmp_path / "r.html").read_text()
    assert {p["condition"] for p in out["precision"]} == {c["condition"] for c in out["conditions"]}
    assert {a["protocol"] for a in out["agreement"]} == {"rating", "pairwise"}
    assert out["mixed_model"]["terms"][0]["term"] == "Intercept"
    for section in (
        "Participants",
        "Ratings (1-7)",
        "mixed model",
        "Precision@5",
        "Bradley-Terry",
        "Best-worst",
        "Agreement between participants",
        "objective retrieval",
        "per-rater z-scores",
        "Method &times; segmenter</h3>",
        "Rating distributions",
        "Wins, ties and losses",
        "Plackett-Luce strengths",
    ):
        assert section in html
    assert html.count("<img ") == 8  # flow, means, interaction, distributions, win rates, BT, PL, agreement
    assert {z["condition"] for z in out["zscored"]["conditions"]} == {c["condition"] for c in out["conditions"]}
    assert out["zscored"]["friedman"]["k"] == 4
    assert len(out["win_tie_loss"]) == 12 and all(
        w["n"] == w["wins"] + w["ties"] + w["losses"] for w in out["win_tie_loss"]
    )
    assert len(out["plackett_luce"]) == 4 and {e["rank"] for e in out["plackett_luce"]} >= {1}
    assert all(b["ci_low"] <= b["score"] <= b["ci_high"] for b in out["best_worst"])
    assert all(
        sum(d["counts"]) == c["n"]
        for d, c in zip(
            out["rating_distribution"], sorted(out["conditions"], key=lambda c: c["condition"]), strict=True
        )
    )
    assert seconds < 60, seconds  # a generous bound; the closing note reports the measured time


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


def test_krippendorff_alpha_reproduces_the_published_example():
    """Krippendorff (2011), 'Computing Krippendorff's alpha-reliability': 4 coders, 12 units."""
    from survey.analysis.agreement import krippendorff_alpha

    n = np.nan
    data = pd.DataFrame(
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
            [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
        ]
    )
    rng = np.random.default_rng(0)
    assert krippendorff_alpha(data, "nominal", n_boot=50, rng=rng)[0] == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(data, "interval", n_boot=50, rng=rng)[0] == pytest.approx(0.849, abs=5e-4)
    alpha, lo, hi = krippendorff_alpha(data, "ordinal", n_boot=200, rng=rng)
    assert lo <= alpha <= hi
    with pytest.raises(ValueError, match="level must be"):
        krippendorff_alpha(data, "interval-ish", rng=rng)


def test_agreement_and_split_half_on_simulated_raters(study_db):
    from survey.analysis.agreement import agreement, split_half
    from survey.analysis.conditions import ratings_from_judgements

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


def test_spearman_brown_is_reported_only_for_a_non_negative_split_half_correlation():
    """Two pairs of raters order three conditions in opposite ways, so random halves correlate negatively;
    2 r / (1 + r) would fall below -1. The result, its JSON and the report give no value but the reason."""
    import dataclasses

    from survey.analysis.agreement import spearman_brown, split_half
    from survey.analysis.report import agreement_section
    from survey.analysis.results import nan_to_none

    answers = {1: (1, 4, 7), 2: (2, 4, 6), 3: (7, 4, 1), 4: (6, 5, 1)}
    ratings = pd.DataFrame(
        [(p, c, v) for p, vs in answers.items() for c, v in zip("abc", vs, strict=True)],
        columns=["participant", "condition", "rating"],
    )
    sh = split_half(ratings, splits=50, rng=np.random.default_rng(0))
    assert sh.splits > 0 and sh.r < 0
    assert sh.spearman_brown is None and "negative" in sh.spearman_brown_reason
    as_json = nan_to_none(dataclasses.asdict(sh))
    assert as_json["spearman_brown"] is None and as_json["spearman_brown_reason"] == sh.spearman_brown_reason
    html = agreement_section([], sh)
    assert f"r = {sh.r:.2f} between random halves" in html and "(Spearman-Brown) n/a because" in html
    assert f"{2 * sh.r / (1 + sh.r):.2f}" not in html
    value, reason = spearman_brown(0.5)  # non-negative: the usual step
    assert value == pytest.approx(2 / 3) and reason is None
    assert spearman_brown(0.0) == (0.0, None)


def test_mixed_model_matches_ols_without_random_variance_and_finds_a_method_effect():
    import statsmodels.formula.api as smf

    from survey.analysis.mixed_model import method_segmenter_model

    rng = np.random.default_rng(4)
    rows = []
    for p in range(30):
        for ref in range(6):
            for m in ("a", "b"):
                for s in ("x", "y"):
                    mu = 4 + (1.0 if m == "b" else 0.0)
                    rows.append(
                        {
                            "response_id": len(rows),
                            "participant": p,
                            "reference": f"r{ref}",
                            "method": m,
                            "segmenter": s,
                            "condition": f"{m}/{s}",
                            "rating": mu + rng.normal(0, 1),
                        }
                    )
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


# --- robustness, pairwise tables, ranking models ------------------------------------------------


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


def _pairwise(rows):
    """Pairwise judgements from (response, participant, left condition(s), right condition(s), choice)."""
    out = []
    for rid, pid, left, right, choice in rows:
        for pos, conds in enumerate((left, right)):
            outcome = "tie" if choice == "tie" else "win" if (choice == "left") == (pos == 0) else "loss"
            for c in conds.split("+"):
                out.append(
                    {
                        "protocol": "pairwise",
                        "is_catch": False,
                        "response_id": rid,
                        "participant": pid,
                        "grid": f"{rid}-{pos}",
                        "grid_position": pos,
                        "condition": c,
                        "outcome": outcome,
                    }
                )
    return pd.DataFrame(out)


def test_win_tie_loss_by_hand():
    from survey.analysis.bradley_terry import win_tie_loss

    j = _pairwise(
        [
            (1, 1, "a", "b", "left"),
            (2, 1, "b", "a", "left"),
            (3, 2, "a", "b", "tie"),
            (4, 2, "c", "a", "right"),
            (5, 3, "a+b", "c", "left"),
        ]
    )  # a grid shared by a and b
    t = {(w.a, w.b): w for w in win_tie_loss(j)}
    assert len(t) == 6  # every ordered pair of the three conditions
    assert (t["a", "b"].wins, t["a", "b"].ties, t["a", "b"].losses, t["a", "b"].n) == (1, 1, 1, 3)
    assert (t["b", "a"].wins, t["b", "a"].ties, t["b", "a"].losses) == (1, 1, 1)
    assert (t["a", "c"].wins, t["a", "c"].losses, t["c", "a"].losses) == (2, 0, 2)
    assert (t["b", "c"].wins, t["b", "c"].n) == (1, 1)
    assert t["a", "b"].win_rate == pytest.approx(0.5) and t["a", "c"].win_rate == 1.0
    w = win_matrix(j)
    for (a, b), x in t.items():  # the BT input counts ties as half wins
        assert w.loc[a, b] == pytest.approx(x.wins + x.ties / 2)
    bt = bradley_terry_bootstrap(j, n_boot=20, rng=np.random.default_rng(0))  # per-participant matrices, summed
    assert [e.strength for e in bt] == pytest.approx(bradley_terry(w.to_numpy()), abs=1e-6)


def test_ranks_from_intervals_by_hand():
    from survey.analysis.bootstrap import ranks_from_intervals

    est = np.array([0.1, 1.0, 0.8, -1.0])
    lo = np.array([-0.2, 0.85, 0.5, -1.3])
    hi = np.array([0.4, 1.2, 0.9, -0.7])
    # 1.0 first; 0.8 overlaps it (0.85 <= 0.9): shares rank 1; 0.1 below 0.8's interval: rank 3; -1.0: rank 4
    assert list(ranks_from_intervals(est, lo, hi)) == [3, 1, 1, 4]


def _ranking(trials):
    """Ranking judgements from (response, participant, [conditions per shown grid], best pos, worst pos)."""
    out = []
    for rid, pid, grids, b, w in trials:
        for pos, conds in enumerate(grids):
            for c in conds.split("+"):
                out.append(
                    {
                        "protocol": "ranking",
                        "is_catch": False,
                        "response_id": rid,
                        "participant": pid,
                        "grid": f"{rid}-{pos}",
                        "grid_position": pos,
                        "condition": c,
                        "outcome": "best" if pos == b else "worst" if pos == w else "middle",
                    }
                )
    return pd.DataFrame(out)


def test_best_worst_scores_by_hand_and_bootstrap_against_scipy():
    j = _ranking(
        [
            (1, 1, ["a", "b", "c"], 0, 2),
            (2, 1, ["c", "a", "b"], 2, 0),
            (3, 2, ["b", "a", "c"], 1, 2),
            (4, 2, ["a", "c"], 1, 0),
        ]
    )
    s = {b.condition: b for b in best_worst_scores(j, n_boot=200, rng=np.random.default_rng(0))}
    assert (s["a"].shown, s["a"].best, s["a"].worst, s["a"].score) == (4, 2, 1, pytest.approx(1 / 4))
    assert (s["c"].shown, s["c"].best, s["c"].worst, s["c"].score) == (4, 1, 3, pytest.approx(-2 / 4))
    assert (s["b"].best, s["b"].worst, s["b"].score) == (1, 0, pytest.approx(1 / 3))
    # CI: the same participant-resampling percentile bootstrap as scipy.stats.bootstrap over participants
    from survey.analysis.simulate import ResponseModel, simulate_judgements

    design = synthetic_design(["a/x", "a/y", "b/x", "b/y"], 8, 8)
    sim = simulate_judgements(
        design, 30, protocol="ranking", model=ResponseModel(effects={"a/x": 0.7}), rng=np.random.default_rng(1)
    )
    ours = {b.condition: b for b in best_worst_scores(sim, n_boot=4000, rng=np.random.default_rng(2))}
    r = sim.assign(best=sim["outcome"] == "best", worst=sim["outcome"] == "worst")
    for cond in ("a/x", "b/y"):
        per = r[r["condition"] == cond].groupby("participant")[["best", "worst"]].agg(["sum", "size"])
        b, w, n = (per[("best", "sum")].to_numpy(), per[("worst", "sum")].to_numpy(), per[("best", "size")].to_numpy())
        ref = stats.bootstrap(
            (np.arange(len(b)),),
            lambda i: (b[i].sum() - w[i].sum()) / n[i].sum(),
            vectorized=False,
            n_resamples=4000,
            method="percentile",
            rng=np.random.default_rng(3),
        ).confidence_interval
        assert ours[cond].score == pytest.approx((b.sum() - w.sum()) / n.sum())
        assert ours[cond].ci_low == pytest.approx(ref.low, abs=0.02)
        assert ours[cond].ci_high == pytest.approx(ref.high, abs=0.02)


def test_plackett_luce_gradient_likelihood_and_two_option_case_by_hand():
    from survey.analysis.plackett_luce import _pl_negloglik, plackett_luce, ranking_choice_sets

    rng = np.random.default_rng(0)
    sets = np.zeros((40, 4, 3))
    for t in range(40):
        for s, k in enumerate(rng.integers(0, 3, 4)):
            sets[t, s, k] = 1.0
    sets[::3, 3] = 0  # some trials show three options only
    best, worst = np.zeros(40, dtype=int), np.ones(40, dtype=int) + rng.integers(0, 2, 40)
    w = rng.uniform(0.5, 2, 40)
    f = lambda th: _pl_negloglik(th, sets, best, worst, w)
    assert optimize.check_grad(lambda th: f(th)[0], lambda th: f(th)[1], rng.normal(size=3)) < 1e-4
    # by hand: strengths (0, log 2, 0); options a, b, c; b best then c worst among {a, c}:
    # P = 2 / (1 + 2 + 1) * e^0 / (e^0 + e^0) = 1/4
    one = np.eye(3)[None]
    nll, _ = _pl_negloglik(np.array([0, np.log(2), 0]), one, np.array([1]), np.array([2]), np.ones(1))
    assert nll == pytest.approx(-np.log(0.25), abs=1e-5)
    # two options per trial is Bradley-Terry: a chosen 3 times out of 4 -> log-strength difference log 3
    j = _ranking(
        [(1, 1, ["a", "b"], 0, 1), (2, 1, ["b", "a"], 1, 0), (3, 2, ["a", "b"], 0, 1), (4, 2, ["a", "b"], 1, 0)]
    )
    conds, sets2, b2, w2, people = ranking_choice_sets(j)
    theta = plackett_luce(sets2, b2, w2)
    assert conds == ["a", "b"] and theta[0] - theta[1] == pytest.approx(np.log(3), abs=1e-3)
    assert theta[0] - theta[1] == pytest.approx(np.subtract(*bradley_terry(np.array([[0, 3.0], [1.0, 0]]))), abs=1e-3)
    assert list(people) == [1, 1, 2, 2]
    # a grid two conditions share: its utility is the mean of theirs
    _, shared, _, _, _ = ranking_choice_sets(_ranking([(1, 1, ["a+b", "c"], 0, 1)]))
    assert shared[0].tolist() == [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]


def test_plackett_luce_recovers_known_strengths():
    """Exact simulation of the model (Gumbel-max trick) with known strengths; the MLE finds them."""
    from survey.analysis.plackett_luce import plackett_luce

    rng = np.random.default_rng(11)
    theta = np.array([1.0, 0.4, -0.2, -1.2])
    n = 3000
    sets = np.zeros((n, 4, 4))
    best, worst = np.empty(n, dtype=int), np.empty(n, dtype=int)
    for t in range(n):
        shown = rng.permutation(4)[: rng.integers(3, 5)]
        sets[t, np.arange(len(shown)), shown] = 1
        u = theta[shown]
        best[t] = np.argmax(u + rng.gumbel(size=len(u)))
        rest = -u + rng.gumbel(size=len(u))
        rest[best[t]] = -np.inf
        worst[t] = np.argmax(rest)
    est = plackett_luce(sets, best, worst)
    assert est == pytest.approx(theta - theta.mean(), abs=0.1)


def test_rating_distribution_counts_every_rating():
    from survey.analysis.ratings import rating_distribution

    r = _ratings_frame(np.random.default_rng(4))
    for d in rating_distribution(r):
        ratings = r.loc[r["condition"] == d.condition, "rating"].to_numpy()
        assert d.counts == tuple(np.bincount(ratings, minlength=8)[1:])


def test_newton_fits_have_exact_hessians_and_match_scipy_optimize():
    """bradley_terry and plackett_luce use Newton steps with analytic Hessians; checked by finite
    differences of the gradients and against scipy.optimize's L-BFGS-B minimum."""
    from survey.analysis.bradley_terry import _bt_hessian
    from survey.analysis.plackett_luce import _pl_hessian, _pl_negloglik, plackett_luce

    rng = np.random.default_rng(8)
    wins = rng.integers(0, 8, (5, 5)).astype(float)
    np.fill_diagonal(wins, 0)
    theta = rng.normal(size=5)
    numeric = np.array([optimize.approx_fprime(theta, lambda t: _bt_negloglik(t, wins)[1][i], 1e-6) for i in range(5)])
    assert _bt_hessian(theta, wins) == pytest.approx(numeric, abs=1e-4)
    ref = optimize.minimize(
        _bt_negloglik, np.zeros(5), args=(wins,), jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 1e-14}
    ).x
    assert bradley_terry(wins) == pytest.approx(ref - ref.mean(), abs=1e-4)

    sets = np.zeros((60, 4, 5))
    for t in range(60):
        shown = rng.permutation(5)[: rng.integers(2, 5)]
        sets[t, np.arange(len(shown)), shown] = 1.0
    sets[0, 0] = [0.5, 0.5, 0, 0, 0]  # a grid two conditions share
    n_shown = (sets.sum(axis=2) > 0).sum(axis=1)
    best = np.zeros(60, dtype=int)
    worst = 1 + (rng.random(60) * (n_shown - 1)).astype(int)
    w = rng.uniform(0.5, 2, 60)
    numeric = np.array(
        [optimize.approx_fprime(theta, lambda t: _pl_negloglik(t, sets, best, worst, w)[1][i], 1e-6) for i in range(5)]
    )
    assert _pl_hessian(theta, sets, best, w) == pytest.approx(numeric, abs=1e-4)
    ref = optimize.minimize(
        _pl_negloglik,
        np.zeros(5),
        args=(sets, best, worst, w),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-10, "ftol": 1e-14},
    ).x
    assert plackett_luce(sets, best, worst, weights=w) == pytest.approx(ref - ref.mean(), abs=1e-4)


def test_newton_stops_at_the_rounding_of_a_large_objective_and_refuses_an_uphill_direction():
    """A Plackett-Luce fit of 14,000 answers (f = 34,449) reaches a Newton decrement of 1.1e-12,
    where no step changes f any more; it stops there (it used to step in place until the step limit)."""
    import itertools

    from survey.analysis.newton import newton_minimize
    from survey.analysis.plackett_luce import plackett_luce

    sets = np.stack([np.eye(4)[list(p)] for p in itertools.permutations(range(4))])  # every display order
    rng = np.random.default_rng(544)
    best = rng.integers(0, 4, len(sets))
    worst = (best + 1 + rng.integers(0, 3, len(sets))) % 4
    w = rng.multinomial(14000, np.full(len(sets), 1 / len(sets))).astype(float)
    warm = plackett_luce(sets, best, worst, weights=w, initial=rng.normal(0, 0.3, 4))
    assert warm == pytest.approx(plackett_luce(sets, best, worst, weights=w), abs=1e-6)
    with pytest.raises(RuntimeError, match="no step lowers the objective"):  # a gradient pointing uphill
        newton_minimize(lambda x: (float(x @ x), -2 * x), lambda x: 2 * np.eye(len(x)), np.ones(2), what="test")
