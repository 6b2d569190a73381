"""Sequential stopping (survey.analysis.group_sequential, sequential, sequential_simulation): boundaries
against published tables and scipy's multivariate normal, the monitor against a hand computation, the
stopping rules' error rates by simulation, the [primary] / [stopping] TOML tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from survey.analysis import group_sequential as gs
from survey.analysis import sequential_simulation as sim
from survey.analysis.sequential import cs_half_width, monitor
from survey.study.stopping import PrimaryComparison, StoppingConfigError, StoppingRule

PRIMARY = PrimaryComparison("rating", "efficientnet/u2netp", "ssim/none")


@pytest.mark.parametrize(
    ("fractions", "alpha", "published"),
    [
        # one-sided Lan-DeMets O'Brien-Fleming-type, equally spaced looks (gsDesign sfLDOF / rpact asOF tables)
        ([1 / 3, 2 / 3, 1], 0.025, [3.710, 2.511, 1.993]),
        ([0.2, 0.4, 0.6, 0.8, 1], 0.025, [4.877, 3.357, 2.680, 2.290, 2.031]),
        # one-sided alpha 0.05, 3 stages: the GroupSeq vignette's first bound 3.2 (0.069 % spent), then 2.141, 1.695
        ([1 / 3, 2 / 3, 1], 0.05, [3.200, 2.141, 1.695]),
    ],
)
def test_obrien_fleming_boundaries_match_published_tables(fractions, alpha, published):
    got = gs.efficacy_bounds(fractions, alpha, "obrien-fleming", sides=1)
    assert got == pytest.approx(published, abs=6e-4)


@pytest.mark.parametrize("spending", gs.SPENDING)
@pytest.mark.parametrize("fractions", [[0.25, 0.5, 0.75, 1.0], [0.3, 0.45, 1.0]])
def test_two_sided_boundaries_spend_alpha_by_the_multivariate_normal(spending, fractions):
    """Independent check: P(some |Z_j| >= c_j, j <= k) from scipy's multivariate normal with
    Corr(Z_i, Z_j) = sqrt(t_i / t_j) equals the alpha spent by look k."""
    t = np.array(fractions)
    bounds = gs.efficacy_bounds(t, 0.05, spending)
    corr = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    for k in range(1, len(t) + 1):
        mvn = stats.multivariate_normal(np.zeros(k), corr[:k, :k])
        crossed = 1 - mvn.cdf(bounds[:k], lower_limit=-bounds[:k])
        assert crossed == pytest.approx(float(gs.spent(spending, t[k - 1], 0.05)), abs=2e-5)
    assert gs.operating(t, bounds, 0.0).reject == pytest.approx(0.05, abs=1e-7)
    # under an effect, the probability of rejecting in its direction from the multivariate normal too
    drift = 2.8
    mean = drift * np.sqrt(t)
    no_cross = stats.multivariate_normal(mean, corr).cdf(bounds, lower_limit=-bounds)
    op = gs.operating(t, bounds, drift)
    assert op.reject == pytest.approx(1 - no_cross, abs=2e-5)


def test_spending_functions_and_the_fixed_design_limit():
    t = np.array([0.0, 0.5, 1.0])
    assert gs.spent("obrien-fleming", t, 0.05) == pytest.approx(
        [0.0, 2 - 2 * stats.norm.cdf(stats.norm.ppf(0.975) / math.sqrt(0.5)), 0.05]
    )
    assert gs.spent("pocock", t, 0.05) == pytest.approx([0.0, 0.05 * math.log(1 + (math.e - 1) / 2), 0.05])
    # one look is the fixed design: boundary z_{1-alpha/2}, inflation factor 1
    assert gs.efficacy_bounds([1.0], 0.05, "pocock") == pytest.approx([stats.norm.isf(0.025)], abs=1e-8)
    assert gs.inflation_factor([1.0], 0.05, "obrien-fleming", 0.8) == pytest.approx(1.0, abs=1e-6)
    # more looks cost maximum sample size, Pocock more than O'Brien-Fleming
    four = [0.25, 0.5, 0.75, 1.0]
    of, pocock = (gs.inflation_factor(four, 0.05, s, 0.8) for s in gs.SPENDING)
    assert 1.0 < of < 1.05 < 1.15 < pocock < 1.25
    with pytest.raises(gs.SequentialDesignError, match="increase"):
        gs.efficacy_bounds([0.5, 0.4, 1.0], 0.05, "pocock")
    with pytest.raises(gs.SequentialDesignError, match="unknown spending"):
        gs.spent("haybittle", 0.5, 0.05)


def test_a_look_is_the_paired_t_test_with_a_repeated_confidence_interval():
    rng = np.random.default_rng(3)
    d = rng.normal(0.3, 1.0, 40)
    d[5] = np.nan  # a participant without answers on both conditions
    rule = StoppingRule("group-sequential", 0.05, (20, 40), "obrien-fleming")
    res = monitor(d, analysed=40, primary=PRIMARY, rule=rule)
    bounds = gs.efficacy_bounds([0.5, 1.0], 0.05, "obrien-fleming")
    for look, n, c in zip(res.looks, (20, 40), bounds, strict=True):
        x = d[:n][~np.isnan(d[:n])]
        tt = stats.ttest_1samp(x, 0.0)
        assert look.participants == len(x) and look.estimate == pytest.approx(x.mean())
        assert 2 * stats.norm.sf(abs(look.z)) == pytest.approx(tt.pvalue, rel=1e-9)
        q = stats.t.ppf(stats.norm.cdf(c), len(x) - 1)
        se = x.std(ddof=1) / math.sqrt(len(x))
        assert (look.ci_low, look.ci_high) == pytest.approx((x.mean() - q * se, x.mean() + q * se))
        assert (look.ci_low > 0 or look.ci_high < 0) == (look.decision == "efficacy")
    early = monitor(d[:25], analysed=25, primary=PRIMARY, rule=rule)
    assert [lk.decision for lk in early.looks][1] == "not reached"
    assert "next look at 40" in early.decision or early.stopped_at == 1


def test_the_monitor_agrees_with_the_vectorised_simulation():
    rng = np.random.default_rng(5)
    d = sim.differences(60, 48, 0.35, rng)
    for rule in (
        StoppingRule("group-sequential", 0.05, (12, 24, 36, 48), "pocock", futility_z=0.5),
        StoppingRule("anytime", 0.05, planned_participants=48),
    ):
        many = sim.group_sequential if rule.rule == "group-sequential" else sim.anytime
        rejected = [monitor(row, 48, PRIMARY, rule).decision.startswith("stop for efficacy") for row in d]
        outcome = many(d, rule)
        assert sum(rejected) == outcome.rejections and 0 < outcome.rejections < 60


def test_stopping_rules_keep_alpha_where_naive_repeated_tests_do_not():
    """1,000 null studies per rule: every rule's false-positive rate is within Monte Carlo error of
    alpha = 0.05 or below; testing at p < 0.05 at each look, or after every participant, is not."""
    rng = np.random.default_rng(11)
    d = sim.differences(1000, 60, 0.0, rng)
    looks = (15, 30, 45, 60)
    for spending in gs.SPENDING:
        rule = StoppingRule("group-sequential", 0.05, looks, spending, futility_z=0.5)
        for follow in (True, False):
            got = sim.group_sequential(d, rule, follow_futility=follow)
            assert got.ci_low <= 0.05 and got.rate < 0.05 + 3 * math.sqrt(0.05 * 0.95 / 1000)
    anytime = sim.anytime(d, StoppingRule("anytime", 0.05, planned_participants=60))
    assert anytime.rate < 0.05 + 3 * math.sqrt(0.05 * 0.95 / 1000)
    assert sim.naive_looks(d, looks, 0.05).ci_low > 0.08  # about 0.12: more than double
    assert sim.naive_every(d, 60, 0.05).ci_low > 0.18  # about 0.25


def test_under_an_effect_the_group_sequential_design_needs_fewer_participants_on_average():
    rng = np.random.default_rng(12)
    n_fixed = sim.fixed_size(0.4, 0.05, 0.8)
    assert n_fixed == 52  # noncentral t; the normal approximation gives 49.1
    factor = gs.inflation_factor([0.25, 0.5, 0.75, 1.0], 0.05, "obrien-fleming", 0.8)
    n_max = 4 * math.ceil(n_fixed * factor / 4)
    rule = StoppingRule("group-sequential", 0.05, tuple(n_max * k // 4 for k in range(1, 5)))
    d = sim.differences(1000, n_max, 0.4, rng)
    seq, fix = sim.group_sequential(d, rule), sim.fixed(d, n_fixed, 0.05)
    assert abs(seq.rate - fix.rate) < 0.04 and seq.ci_high > 0.8  # equal power (the maximum is rounded up)
    assert seq.mean_participants < 0.9 * n_fixed


def test_confidence_sequence_width():
    """The normal-mixture boundary, by hand at one point, and tightest near the planned size."""
    rho2 = (-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / 50
    n = 30
    want = math.sqrt(2 * (n * rho2 + 1) / (n**2 * rho2) * math.log(math.sqrt(n * rho2 + 1) / 0.05))
    assert float(cs_half_width(1.0, n, 0.05, 50)) == pytest.approx(want)
    widths = {p: float(cs_half_width(1.0, 50, 0.05, p)) * math.sqrt(50) for p in (10, 50, 250)}
    assert widths[50] < min(widths[10], widths[250]) and widths[50] > stats.norm.isf(0.025)


def test_rule_and_comparison_errors_name_the_key():
    with pytest.raises(StoppingConfigError, match="stopping.looks: must increase"):
        StoppingRule("group-sequential", looks=(30, 20))
    with pytest.raises(StoppingConfigError, match="stopping.spending"):
        StoppingRule("group-sequential", looks=(20, 40), spending="linear")
    with pytest.raises(StoppingConfigError, match="planned_participants"):
        StoppingRule("anytime")
    with pytest.raises(StoppingConfigError, match="stopping.rule"):
        StoppingRule("bayesian")
    with pytest.raises(StoppingConfigError, match="primary.protocol"):
        PrimaryComparison("ranking", "a/x", "b/y")
    with pytest.raises(StoppingConfigError, match="primary.b"):
        PrimaryComparison("rating", "a/x", "b")
