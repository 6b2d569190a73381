"""Ranking statistics (survey.analysis.plackett_luce): best-worst scores by hand and their bootstrap
against scipy, the Plackett-Luce likelihood, gradient and fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from survey.analysis.bradley_terry import bradley_terry
from survey.analysis.plackett_luce import best_worst_scores
from survey.analysis.simulate import ResponseModel
from tests.helpers import synthetic_design


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
    from survey.analysis.simulate import simulate_judgements

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
