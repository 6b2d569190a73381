"""Newton's method (survey.analysis.newton) as the Bradley-Terry and Plackett-Luce fits use it: exact
Hessians, agreement with scipy.optimize, and where it stops."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from survey.analysis.bradley_terry import _bt_negloglik, bradley_terry


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
