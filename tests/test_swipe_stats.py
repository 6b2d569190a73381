"""Swipe protocol statistics (survey.analysis.swipe_stats) and their simulation
(survey.analysis.swipe_simulation): rates, base rate and lifts recomputed by hand, the GEE against an
independent statsmodels fit, Wilcoxon and Holm against scipy and statsmodels, the base-rate MLE against the
biased naive mean, recovery of a known order, and false-positive rate and coverage over repeated studies."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from survey.analysis import swipe_stats as ss
from survey.analysis.bootstrap import resample_clusters
from survey.analysis.swipe_simulation import (
    ROUND_COLUMNS,
    SWIPE_COLUMNS,
    SwipeModel,
    make_world,
    population_truth,
    simulate_swipes,
)
from tests.helpers import CONDITIONS

NULL_SD = dict.fromkeys(CONDITIONS, 0.5)
EFFECT_SD = {"efficientnet/u2netp": 0.0, "efficientnet/none": 0.5, "ssim/u2netp": 1.5, "ssim/none": np.inf}


@pytest.fixture(scope="module")
def study():
    world = make_world(EFFECT_SD, rng=np.random.default_rng(0))
    return simulate_swipes(world, SwipeModel(dropout=0.1, inattentive=0.1), 40, rng=np.random.default_rng(1))


def judged(swipes: pd.DataFrame) -> pd.DataFrame:
    return swipes[(swipes["phase"] == "judge") & ~swipes["is_check"].astype(bool)]


def row(p, r, phase, seq, liked, *, cond=None, position=None, check=False):
    m, s = cond.split("/") if cond else (None, None)
    return {
        "participant": p,
        "round": r,
        "category": "c",
        "phase": phase,
        "seq": seq,
        "product": f"x{seq}",
        "reference": None,
        "position": position,
        "condition": cond,
        "method": m,
        "segmenter": s,
        "is_check": check,
        "liked": liked,
        "response_ms": 500,
    }


def tiny() -> pd.DataFrame:
    """Two participants: choose phases, a pick row, judged sets of A and B, a check at position 2."""
    a, b = "m/a", "m/b"
    rows = [
        row(1, 1, "choose", 1, False),
        row(1, 1, "choose", 2, True),
        row(1, 1, "pick", 1, True),
        row(1, 1, "judge", 1, True, cond=a, position=1),
        row(1, 1, "judge", 2, True, position=2, check=True),
        row(1, 1, "judge", 3, False, cond=a, position=3),
        row(1, 2, "choose", 1, True),
        row(1, 2, "judge", 1, False, cond=b, position=1),
        row(1, 2, "judge", 2, False, cond=b, position=2),
        row(2, 1, "choose", 1, False),
        row(2, 1, "choose", 2, False),
        row(2, 1, "choose", 3, False),
        row(2, 2, "choose", 1, True),
        row(2, 2, "judge", 1, True, cond=b, position=1),
        row(2, 2, "judge", 2, True, cond=b, position=2),
    ]
    return pd.DataFrame(rows)


def test_tiny_table_by_hand():
    t = tiny()
    rates = ss.like_rates(t, n_boot=200, rng=np.random.default_rng(0))
    assert [(r.condition, r.likes, r.n_products, r.n_participants) for r in rates.rates] == [
        ("m/a", 1, 2, 1),
        ("m/b", 2, 4, 2),
    ]
    base = ss.base_rate(t, n_boot=200, rng=np.random.default_rng(0))
    assert (base.likes, base.n_swipes, base.n_rounds, base.n_participants) == (3, 7, 4, 2)  # pick row ignored
    assert base.naive_round_mean == pytest.approx((0.5 + 1 + 0 + 1) / 4)
    lift = ss.lifts(t, n_boot=200, rng=np.random.default_rng(0))
    assert lift.lifts[0].ratio == pytest.approx(0.5 / (3 / 7)) and lift.lifts[1].difference == pytest.approx(
        0.5 - 3 / 7
    )
    pos = ss.position_rates(t, n_boot=200, rng=np.random.default_rng(0))
    # the check at position 2 shifts participant 1's third product to rank 2
    assert [(p.rank, p.likes, p.n_products) for p in pos.rates] == [(1, 2, 3), (2, 1, 3)]
    assert pos.slope == pytest.approx(1 / 3 - 2 / 3)  # two ranks: the slope is their difference


def test_rates_base_rate_lifts_and_their_intervals_by_hand(study):
    s = study.swipes
    j = judged(s)
    choose = s[s["phase"] == "choose"]
    base = choose["liked"].mean()
    rates = ss.like_rates(s, n_boot=500, rng=np.random.default_rng(3))
    lifts = {x.condition: x for x in ss.lifts(s, n_boot=500, rng=np.random.default_rng(3)).lifts}
    ids = np.unique(s["participant"])
    res = resample_clusters(ids, n_boot=500, rng=np.random.default_rng(3))
    assert res is not None
    per_p = lambda rows: rows.groupby("participant")["liked"].agg(["sum", "count"]).reindex(ids, fill_value=0)
    b = per_p(choose)
    base_reps = (res.weights @ b["sum"].to_numpy()) / (res.weights @ b["count"].to_numpy())
    for r in rates.rates:
        rows = j[j["condition"] == r.condition]
        assert r.rate == pytest.approx(rows["liked"].mean()) and r.n_products == len(rows)
        assert r.n_participants == rows["participant"].nunique() and r.method == r.condition.split("/")[0]
        c = per_p(rows)
        reps = (res.weights @ c["sum"].to_numpy()) / (res.weights @ c["count"].to_numpy())
        assert (r.ci_low, r.ci_high) == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])))
        lift = lifts[r.condition]
        assert lift.ratio == pytest.approx(r.rate / base) and lift.difference == pytest.approx(r.rate - base)
        assert (lift.ratio_ci_low, lift.ratio_ci_high) == pytest.approx(
            tuple(np.quantile(reps / base_reps, [0.025, 0.975]))
        )
    got = ss.base_rate(s, n_boot=500, rng=np.random.default_rng(3))
    assert got.rate == pytest.approx(base) and got.n_swipes == len(choose)
    assert got.naive_round_mean == pytest.approx(choose.groupby(["participant", "round"])["liked"].mean().mean())


def dummies(rows: pd.DataFrame, reference: str) -> tuple[np.ndarray, list[str]]:
    levels = sorted(c for c in rows["condition"].unique() if c != reference)
    x = np.column_stack([np.ones(len(rows))] + [(rows["condition"] == c).to_numpy(float) for c in levels])
    return x, levels


def test_like_model_equals_an_independent_gee_fit(study):
    """The same model through statsmodels' array interface (a design matrix made here), bias-reduced
    (Mancl-DeRouen) covariance; p-values and CIs from t and F with participants - 1 degrees of freedom."""
    got = ss.like_model(study.swipes, reference="ssim/none")
    rows = judged(study.swipes).reset_index(drop=True)
    x, levels = dummies(rows, "ssim/none")
    y, groups = rows["liked"].to_numpy(float), rows["participant"].to_numpy()
    family, corr = sm.families.Binomial(), sm.cov_struct.Exchangeable()
    fit = sm.GEE(y, x, groups=groups, family=family, cov_struct=corr).fit(cov_type="bias_reduced")
    dfd = rows["participant"].nunique() - 1
    assert got.formula == "liked ~ C(condition, Treatment(reference='ssim/none'))" and got.reference == "ssim/none"
    assert [o.condition for o in got.odds_ratios] == levels
    b, se = fit.params[1:], fit.bse[1:]
    assert np.allclose(se, np.sqrt(np.diag(fit.cov_robust_bc))[1:]) and not np.allclose(se, fit.standard_errors()[1:])
    assert [o.log_odds_ratio for o in got.odds_ratios] == pytest.approx(list(b), abs=1e-8)
    assert [o.std_error for o in got.odds_ratios] == pytest.approx(list(se), rel=1e-6)
    assert [o.pvalue for o in got.odds_ratios] == pytest.approx(list(2 * stats.t.sf(np.abs(b / se), dfd)), rel=1e-5)
    q = stats.t.ppf(0.975, dfd)
    assert [o.ci_high for o in got.odds_ratios] == pytest.approx(list(np.exp(b + q * se)), rel=1e-6)
    wald = fit.wald_test(np.eye(x.shape[1])[1:], scalar=True, use_f=False)
    assert got.wald_chi2 == pytest.approx(float(wald.statistic), rel=1e-6) and got.wald_df == 3
    assert got.wald_df_denominator == dfd
    assert got.wald_pvalue == pytest.approx(stats.f.sf(float(wald.statistic) / 3, 3, dfd), rel=1e-5)
    assert (got.n_obs, got.n_clusters, got.converged) == (len(rows), dfd + 1, True)
    assert got.score_norm < 1e-6


@pytest.mark.filterwarnings("ignore:Iteration limit reached")
def test_gee_score_equals_statsmodels_estimating_equations(study):
    rows = judged(study.swipes).reset_index(drop=True)
    x, _ = dummies(rows, "ssim/none")
    model = sm.GEE(
        rows["liked"].to_numpy(float),
        x,
        groups=rows["participant"].to_numpy(),
        family=sm.families.Binomial(),
        cov_struct=sm.cov_struct.Exchangeable(),
    )
    fit = model.fit(maxiter=2)
    beta = np.asarray(fit.params) + 0.05  # off the solution, so the score is not zero
    model.update_cached_means(beta)
    _, want = model._update_mean_params()  # statsmodels' own score at beta and its current working correlation
    rho = float(model.cov_struct.dep_params)
    assert ss.gee_score(x, model.endog, model.groups, beta, rho) == pytest.approx(want, rel=1e-9)


def test_like_model_reports_what_its_fitter_reports():
    world = make_world(EFFECT_SD, rng=np.random.default_rng(0))
    s = simulate_swipes(world, SwipeModel(), 40, rng=np.random.default_rng(2)).swipes
    one = ss.like_model(s, maxiter=1)
    # statsmodels checks the score before its last update of the working correlation, so after one
    # iteration it says converged; the estimating equations at the estimates it returns do not hold
    assert one.fitter_converged and not one.converged and one.score_norm > 1e-4
    full = ss.like_model(s)
    assert full.converged and full.fitter_converged and full.iterations < 20
    assert ss.like_model(s).formula.endswith("Treatment(reference='efficientnet/none'))")  # first by name
    with pytest.raises(ValueError, match="not among the judged conditions"):
        ss.like_model(s, reference="clip/none")
    none_liked = s.assign(liked=s["liked"] & (s["condition"] != "ssim/none"))
    with pytest.raises(ValueError, match=r"\['ssim/none'\] have no likes or only likes"):
        ss.like_model(none_liked)


def test_paired_comparisons_equal_scipy_wilcoxon_and_statsmodels_holm(study):
    got = ss.paired_comparisons(study.swipes, n_boot=300, rng=np.random.default_rng(0))
    per = judged(study.swipes).pivot_table(index="participant", columns="condition", values="liked", aggfunc="mean")
    pairs = list(itertools.combinations(sorted(per.columns), 2))
    assert [(c.a, c.b) for c in got] == pairs
    pvalues = []
    for c, (a, b) in zip(got, pairs, strict=True):
        both = per[[a, b]].dropna()
        d = (both[a] - both[b]).to_numpy()
        ref = stats.wilcoxon(d, zero_method="wilcox")
        assert (c.statistic, c.pvalue) == pytest.approx((ref.statistic, ref.pvalue))
        assert c.n_participants == len(both) and c.difference == pytest.approx(d.mean())
        assert c.ci_low <= c.difference <= c.ci_high
        pvalues.append(ref.pvalue)
    assert [c.pvalue_holm for c in got] == pytest.approx(list(multipletests(pvalues, method="holm")[1]))
    assert np.isnan(ss.paired_comparisons(study.swipes)[0].ci_low)  # no bootstrap unless asked


def test_rating_agreement_and_objective_agreement_by_hand(study):
    got = ss.rating_agreement(study.swipe_rounds, study.swipes)
    share = judged(study.swipes).groupby(["participant", "round"])["liked"].mean().rename("share")
    rated = study.swipe_rounds[(study.swipe_rounds["outcome"] == "judged") & study.swipe_rounds["rating"].notna()]
    both = rated.join(share, on=["participant", "round"], how="inner")
    assert got.n == len(both) > 50
    assert got.rho == pytest.approx(stats.spearmanr(both["share"], both["rating"].astype(float)).statistic)
    unrated = study.swipe_rounds.assign(rating=pd.array([None] * len(study.swipe_rounds), dtype="Int64"))
    assert ss.rating_agreement(unrated, study.swipes) == ss.Correlation(None, None, 0)
    rates = ss.like_rates(study.swipes, n_boot=50, rng=np.random.default_rng(0))
    recall = {"efficientnet/u2netp": 0.78, "efficientnet/none": 0.66, "ssim/u2netp": 0.08, "ssim/none": 0.07}
    obj = ss.like_vs_objective(rates, recall)
    rate = {r.condition: r.rate for r in rates.rates}
    x = [rate[c] for c in CONDITIONS]
    assert obj.rho == pytest.approx(stats.spearmanr(x, [recall[c] for c in CONDITIONS]).statistic) and obj.n == 4
    assert ss.like_vs_objective(rates, {"ssim/none": 0.1, "ssim/u2netp": 0.2}) == ss.Correlation(None, None, 2)
    with pytest.raises(ValueError, match="no condition in both"):
        ss.like_vs_objective(rates, {"clip/none": 0.5})


def test_bad_input_says_what_is_wrong():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="empty"):
        ss.like_rates(tiny().iloc[:0], n_boot=10, rng=rng)
    with pytest.raises(ValueError, match=r"lacks the columns \['liked'\]"):
        ss.base_rate(tiny().drop(columns="liked"), n_boot=10, rng=rng)
    with pytest.raises(ValueError, match="phase must be one of"):
        ss.base_rate(tiny().assign(phase="swipe"), n_boot=10, rng=rng)
    with pytest.raises(ValueError, match="no answer"):
        ss.base_rate(tiny().assign(liked=None), n_boot=10, rng=rng)
    with pytest.raises(ValueError, match="no judged products"):
        ss.like_rates(tiny().query("phase == 'choose'"), n_boot=10, rng=rng)
    with pytest.raises(ValueError, match="n_boot must be"):
        ss.lifts(tiny(), n_boot=0, rng=rng)
    with pytest.raises(ValueError, match="with an rng"):
        ss.paired_comparisons(tiny(), n_boot=100)
    one = ss.like_rates(tiny().query("participant == 1"), n_boot=10, rng=rng)
    assert np.isnan(one.rates[0].ci_low)  # one participant: no interval


def test_simulation_follows_the_protocol():
    world = make_world(EFFECT_SD, rng=np.random.default_rng(0))
    model = SwipeModel(check_rate=0.5)
    a = simulate_swipes(world, model, 30, rng=np.random.default_rng(5))
    b = simulate_swipes(world, model, 30, rng=np.random.default_rng(5))
    pd.testing.assert_frame_equal(a.swipes, b.swipes)  # seeded: the same study
    assert tuple(a.swipes.columns) == SWIPE_COLUMNS and tuple(a.swipe_rounds.columns) == ROUND_COLUMNS
    rounds = a.swipe_rounds
    assert (rounds.groupby("participant")["condition"].nunique() == 4).all()  # balanced within participant
    assert (rounds.groupby("condition").size() == 30).all()
    choose = a.swipes[a.swipes["phase"] == "choose"]
    last = choose.groupby(["participant", "round"]).tail(1).set_index(["participant", "round"])["liked"]
    likes = choose.groupby(["participant", "round"])["liked"].sum()
    outcome = rounds.set_index(["participant", "round"])["outcome"]
    assert (likes <= 1).all() and (last == (outcome == "judged")).all()  # stops at the first like
    assert (choose.groupby(["participant", "round"]).size()[outcome == "no_like"] == model.max_swipes).all()
    judge = a.swipes[a.swipes["phase"] == "judge"]
    checks = judge[judge["is_check"]]
    assert checks["condition"].isna().all() and (checks["category"] != checks["product"].str.split("-").str[0]).all()
    set_size = judge.groupby(["participant", "round"]).size()
    n_checks = judge.groupby(["participant", "round"])["is_check"].sum()
    assert (set_size == world.k + n_checks).all() and 0.3 < n_checks.mean() < 0.7
    failed = rounds.set_index(["participant", "round"])["check_failed"].dropna()
    assert failed.index.equals(n_checks[n_checks > 0].index)
    same = make_world(NULL_SD, rng=np.random.default_rng(0))
    assert all((same.top_k[0] == same.top_k[i]).all() for i in range(4))  # equal noise: the same lists


def test_pooled_base_rate_recovers_the_truth_where_the_naive_round_mean_does_not():
    world = make_world(EFFECT_SD, rng=np.random.default_rng(0))
    flat = SwipeModel(intercept=-1.0, slope=0.0, participant_sd=0.0)  # every product liked with p = sigmoid(-1)
    s = simulate_swipes(world, flat, 1500, rng=np.random.default_rng(1)).swipes
    got = ss.base_rate(s, n_boot=200, rng=np.random.default_rng(0))
    q = 1 / (1 + np.e)
    assert got.ci_low < q < got.ci_high and abs(got.rate - q) < 0.01
    assert got.naive_round_mean > q + 0.1  # 0.42 where the truth is 0.27
    varied = SwipeModel(participant_sd=1.0)
    truth = population_truth(world, varied, rng=np.random.default_rng(2), n_participants=40_000)
    got = ss.base_rate(
        simulate_swipes(world, varied, 1500, rng=np.random.default_rng(3)).swipes,
        n_boot=200,
        rng=np.random.default_rng(0),
    )
    assert abs(got.rate - truth.base_rate) < 0.01 and got.naive_round_mean > truth.base_rate_mean + 0.1
    assert truth.base_rate < truth.base_rate_mean - 0.02  # participants differ: the swipe-weighted rate is lower


def test_a_known_condition_order_is_recovered():
    world = make_world(EFFECT_SD, rng=np.random.default_rng(0))
    model = SwipeModel(shifts={"efficientnet/u2netp": 0.4, "ssim/none": -0.4})
    truth = population_truth(world, model, rng=np.random.default_rng(1))
    order = sorted(truth.like_rate, key=lambda c: -truth.like_rate[c])
    s = simulate_swipes(world, model, 400, rng=np.random.default_rng(2)).swipes
    rates = ss.like_rates(s, n_boot=200, rng=np.random.default_rng(0))
    rate = {r.condition: r.rate for r in rates.rates}
    assert sorted(CONDITIONS, key=lambda c: -rate[c]) == order  # highest first
    fit = ss.like_model(s, reference=order[-1])
    assert [o.condition for o in sorted(fit.odds_ratios, key=lambda o: -o.odds_ratio)] == order[:-1]
    assert fit.wald_pvalue < 1e-6 and all(o.odds_ratio > 1 for o in fit.odds_ratios)


def test_false_positives_and_coverage_over_repeated_studies():
    """60 studies of 40 participants: under the exact null (identical lists), the joint test and any
    Holm-corrected pair reject about 5 % of the time; the intervals cover the population values."""
    null = make_world(NULL_SD, rng=np.random.default_rng(0))
    effects = make_world(EFFECT_SD, rng=np.random.default_rng(0))
    model = SwipeModel()
    truth = population_truth(effects, model, rng=np.random.default_rng(1), n_participants=60_000)
    joint = pairs = covered = base_covered = lift_covered = 0
    reps = 60
    for rep in range(reps):
        s = simulate_swipes(null, model, 40, rng=np.random.default_rng([4, rep])).swipes
        joint += ss.like_model(s).wald_pvalue < 0.05
        pairs += min(c.pvalue_holm for c in ss.paired_comparisons(s)) < 0.05
        e = simulate_swipes(effects, model, 40, rng=np.random.default_rng([5, rep])).swipes
        rates = ss.like_rates(e, n_boot=400, rng=np.random.default_rng(rep))
        covered += sum(r.ci_low <= truth.like_rate[r.condition] <= r.ci_high for r in rates.rates)
        b = ss.base_rate(e, n_boot=400, rng=np.random.default_rng(rep))
        base_covered += b.ci_low <= truth.base_rate <= b.ci_high
        lift = ss.lifts(e, n_boot=400, rng=np.random.default_rng(rep))
        lift_covered += sum(x.ratio_ci_low <= truth.lift_ratio[x.condition] <= x.ratio_ci_high for x in lift.lifts)
    assert joint / reps <= 0.15 and pairs / reps <= 0.15, (joint, pairs)
    assert 0.85 <= covered / (4 * reps) <= 0.995, covered
    assert base_covered / reps >= 0.83 and 0.85 <= lift_covered / (4 * reps) <= 0.995, (base_covered, lift_covered)
