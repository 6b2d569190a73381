"""Bias-reduced Bradley-Terry: Firth's penalised likelihood, and Wald intervals from it.

The model: ``P(i beats j) = sigmoid(s_i - s_j)``, log-strengths ``s`` centred to mean 0; ``wins[i, j]``
the times i beat j (ties half a win each way), ``n_ij = wins[i, j] + wins[j, i]``. The Fisher
information is the weighted graph Laplacian ``I(s) = sum_{i<j} n_ij p_ij (1 - p_ij) (e_i - e_j)(e_i - e_j)'``,
singular along the all-ones vector (only differences are identified). Firth's estimate maximises

    l*(s) = l(s) + 1/2 log det I(s)   on the centred subspace,

the log-likelihood plus the log of the Jeffreys prior, whose determinant is the product of the
non-zero eigenvalues, ``det(I + 11'/k)``. It removes the O(1/n) bias of the maximum-likelihood
estimate and is finite whenever the comparisons connect every condition, even when one condition
never lost (Firth 1993, Biometrika 80:27; for paired comparisons Kosmidis & Firth 2021, Biometrika
108:71, and the R package BradleyTerry2's ``br = TRUE``).

Why it exists: with adaptive assignment (:mod:`survey.participants.adaptive_pairs`) the extreme conditions
are compared less often, and the maximum-likelihood strengths' small-sample outward bias grows there
(``bench/adaptive_pairs.py`` measured -0.076 and +0.086 at the ends of eight conditions after 320
judgements); the bias-reduced fit is what the adaptive choice fits and what an adaptive study reports
(:func:`survey.analysis.bradley_terry.firth_wald_estimates`). It lives in the participant layer because
the assignment needs it and that layer sits below the analysis.

The solver: Fisher scoring on the modified score (the gradient of ``l*``),
``U*_m = sum_j (wins[m, j] - n_mj p_mj) + 1/2 sum_j n_mj p_mj (1 - p_mj)(1 - 2 p_mj) h_mj`` with
``h_mj = (e_m - e_j)' I^+ (e_m - e_j)``, each step ``I^+ U*`` halved until ``l*`` rises, as in the R
package logistf; once the rise a step predicts (``U*' I^+ U*``) is below 1e-12 of ``|l*|`` (lost in
its rounding) the full step is taken when it shrinks the modified score. Converged when the largest
modified score is below 1e-10 per comparison; else it raises. ``tests/test_bradley_terry_firth.py`` checks the
modified score against finite differences of ``l*``, the optimum against scipy.optimize.minimize of
the same objective and against the closed form for two conditions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function, 1 / (1 + exp(-x)), without overflow and with full relative accuracy in the
    tails (as scipy.special.expit, whose module a participants-only process does not load)."""
    return np.exp(log_expit(x))


def log_expit(x: np.ndarray) -> np.ndarray:
    """log(expit(x)), accurate for large |x| (scipy.special.log_expit)."""
    return -np.logaddexp(0.0, -np.asarray(x, dtype=float))


def _check_wins(wins: np.ndarray) -> np.ndarray:
    wins = np.asarray(wins, dtype=float)
    if wins.ndim != 2 or wins.shape[0] != wins.shape[1] or (wins < 0).any() or not np.isfinite(wins).all():
        raise ValueError("wins must be a square matrix of non-negative, finite counts (conditions x conditions)")
    n = wins + wins.T
    np.fill_diagonal(n, 0.0)
    from scipy.sparse.csgraph import connected_components  # here: a participants-only process loads no scipy

    parts, _ = connected_components(n > 0, directed=False)
    if parts > 1:
        raise ValueError(
            f"the pairwise comparisons split the {len(wins)} conditions into {parts} groups never compared with "
            "each other, so their strengths are not on one scale; compare every condition with another one"
        )
    return wins


def information(s: np.ndarray, wins: np.ndarray) -> np.ndarray:
    """Fisher information of the log-strengths ``s``: the Laplacian with weights ``n_ij p_ij (1 - p_ij)``."""
    p = expit(s[:, None] - s[None, :])
    c = (wins + wins.T) * p * (1.0 - p)
    np.fill_diagonal(c, 0.0)
    return np.diag(c.sum(axis=1)) - c


def covariance(s: np.ndarray, wins: np.ndarray) -> np.ndarray:
    """The inverse of the information on the centred subspace (its Moore-Penrose pseudo-inverse)."""
    k = len(s)
    ones = np.full((k, k), 1.0 / k)
    return np.linalg.inv(information(s, wins) + ones) - ones


def penalised_loglik(s: np.ndarray, wins: np.ndarray) -> float:
    """``l(s) + 1/2 log det I(s)`` (the determinant on the centred subspace)."""
    s, wins = np.asarray(s, dtype=float), np.asarray(wins, dtype=float)
    k = len(s)
    loglik = float((wins * log_expit(s[:, None] - s[None, :])).sum())
    sign, logdet = np.linalg.slogdet(information(s, wins) + np.full((k, k), 1.0 / k))
    return loglik + 0.5 * logdet if sign > 0 else -np.inf


def modified_score(s: np.ndarray, wins: np.ndarray) -> np.ndarray:
    """The gradient of :func:`penalised_loglik`: the score plus Firth's adjustment."""
    s, wins = np.asarray(s, dtype=float), np.asarray(wins, dtype=float)
    p = expit(s[:, None] - s[None, :])
    n = wins + wins.T
    np.fill_diagonal(n, 0.0)
    cov = covariance(s, wins)
    d = np.diag(cov)
    h = d[:, None] + d[None, :] - 2 * cov
    score = (wins - n * p).sum(axis=1)
    return score + 0.5 * (n * p * (1 - p) * (1 - 2 * p) * h).sum(axis=1)


def firth_bradley_terry(wins: np.ndarray, *, max_iter: int = 100) -> np.ndarray:
    """Firth's bias-reduced Bradley-Terry log-strengths, centred to mean 0 (see the module docstring).
    Raises ``ValueError`` for comparisons that do not connect the conditions, ``RuntimeError`` when
    the scoring does not converge."""
    wins = _check_wins(wins)
    tol = 1e-10 * max(1.0, float(wins.sum()))
    s = np.zeros(len(wins))
    f = penalised_loglik(s, wins)
    for _ in range(max_iter):
        u = modified_score(s, wins)
        if np.abs(u).max() < tol:
            return s - s.mean()
        step = covariance(s, wins) @ u
        t = 1.0
        while (f_new := penalised_loglik(s + t * step, wins)) < f and t > 1e-10:
            t /= 2
        if not f_new > f:
            # near the optimum the rise scoring predicts is lost in the rounding of l*: then the full
            # step is taken if it shrinks the modified score (the optimum's own criterion)
            shrinks = np.abs(modified_score(s + step, wins)).max() < np.abs(u).max()
            if not (u @ step < 1e-12 * max(1.0, abs(f)) and shrinks):
                raise RuntimeError(f"Firth Bradley-Terry fit: no step raises the penalised likelihood (score {u})")
            t, f_new = 1.0, penalised_loglik(s + step, wins)
        s, f = s + t * step, f_new
    raise RuntimeError(f"Firth Bradley-Terry fit did not converge in {max_iter} scoring steps")


@dataclass(frozen=True)
class FirthFit:
    """Centred log-strengths, their covariance (inverse information at the estimate) and standard errors."""

    strength: np.ndarray
    covariance: np.ndarray

    @property
    def std_error(self) -> np.ndarray:
        return np.sqrt(np.diag(self.covariance))


def firth_fit(wins: np.ndarray) -> FirthFit:
    """:func:`firth_bradley_terry` and the covariance of the estimate (Wald)."""
    s = firth_bradley_terry(wins)
    return FirthFit(s, covariance(s, np.asarray(wins, dtype=float)))
