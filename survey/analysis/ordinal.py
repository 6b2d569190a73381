"""Proportional odds (cumulative logit) model of the 1-7 ratings: the robustness check beside the linear mixed
model (:mod:`survey.analysis.mixed_model`), which treats the ratings as interval-scaled numbers.

``P(rating <= k) = logistic(threshold_k - x'b)``: one threshold between each two consecutive rating values that
occur, ``x`` the mixed model's fixed-effect design row without the intercept (the same multiple-membership rows
for shared grids), so a positive coefficient shifts ratings up. Ratings of one participant are not independent:
the standard errors are participant-clustered (sandwich, with the usual G/(G-1) factor), not model-based.

The likelihood depends on the data only through the counts of (design row, rating) cells, a few dozen whatever
the number of answers, so the fit (Newton's method, analytic gradient and Hessian) costs the same at 100 and at
100,000 answers; the participant sums for the sandwich are one sparse product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import expit

from survey.analysis.newton import newton_minimize
from survey.analysis.wald import WaldTerm, wald_terms


@dataclass(frozen=True)
class OrdinalResult:
    formula: str
    terms: list[WaldTerm]
    thresholds: list[float]  # between consecutive rating values of ``levels``
    levels: list[int]  # the rating values that occur
    n: int
    participants: int
    loglik: float
    std_errors: str = "participant-clustered sandwich with factor G/(G-1); Wald z, 95% CI estimate +/- 1.96 SE"


class _Cells:
    """(design row, rating) cells with their counts; value, gradient, Hessian and per-cell scores of the negative
    log-likelihood at parameters ``(thresholds, b)``."""

    def __init__(self, X: np.ndarray, level: np.ndarray, K: int):
        rows = pd.DataFrame(np.column_stack([X, level]))
        self.cell = rows.groupby(list(rows.columns), sort=False).ngroup().to_numpy()  # hashing: no row sort
        keys = rows.to_numpy()[np.unique(self.cell, return_index=True)[1]]
        self.X, self.k = keys[:, :-1], keys[:, -1].astype(int)
        self.w = np.bincount(self.cell, minlength=len(keys)).astype(float)
        self.K = K

    def _parts(self, params: np.ndarray):
        K, k = self.K, self.k
        theta, b = params[: K - 1], params[K - 1 :]
        eta = self.X @ b
        upper, lower = k <= K - 2, k >= 1  # the cell's category has an upper / a lower threshold
        a = np.where(upper, theta[np.minimum(k, K - 2)] - eta, 0.0)
        c = np.where(lower, theta[np.maximum(k - 1, 0)] - eta, 0.0)
        Fa, Fc = np.where(upper, expit(a), 1.0), np.where(lower, expit(c), 0.0)
        fa, fc = np.where(upper, Fa * (1 - Fa), 0.0), np.where(lower, Fc * (1 - Fc), 0.0)
        d = len(params)
        Ja, Jc = np.zeros((len(k), d)), np.zeros((len(k), d))  # d a / d params, d c / d params
        rows = np.arange(len(k))
        Ja[rows[upper], k[upper]] = 1.0
        Jc[rows[lower], k[lower] - 1] = 1.0
        Ja[upper, K - 1 :] = -self.X[upper]
        Jc[lower, K - 1 :] = -self.X[lower]
        return Fa - Fc, Fa, Fc, fa, fc, Ja, Jc

    def value_grad(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        P, *_ = parts = self._parts(params)
        if np.any(P <= 0):  # thresholds out of order: outside the model
            return np.inf, np.zeros_like(params)
        return -float(self.w @ np.log(P)), -(self.w[:, None] * self.scores(params, parts)).sum(axis=0)

    def scores(self, params: np.ndarray, parts=None) -> np.ndarray:
        """d log P / d params of one answer in each cell (cells x parameters)."""
        P, _, _, fa, fc, Ja, Jc = parts or self._parts(params)
        return (fa / P)[:, None] * Ja - (fc / P)[:, None] * Jc

    def hess(self, params: np.ndarray) -> np.ndarray:
        P, Fa, Fc, fa, fc, Ja, Jc = self._parts(params)
        laa = (fa * (1 - 2 * Fa)) / P - (fa / P) ** 2
        lcc = -(fc * (1 - 2 * Fc)) / P - (fc / P) ** 2
        lac = fa * fc / P**2
        w = self.w
        H = Ja.T @ ((w * laa)[:, None] * Ja) + Jc.T @ ((w * lcc)[:, None] * Jc)
        cross = Ja.T @ ((w * lac)[:, None] * Jc)
        return -(H + cross + cross.T)


def proportional_odds(
    X: np.ndarray, rating: np.ndarray, participant: np.ndarray, names: list[str], *, formula: str
) -> OrdinalResult:
    """Fit the proportional odds model with participant-clustered standard errors.

    ``X``: the design, its first column the intercept (dropped: the thresholds take its place); ``rating``:
    integer ratings; ``participant``: codes 0..G-1; ``names``: the columns' term names. Raises RuntimeError
    when the estimate does not exist (a combination's answers all at one end of the scale: Newton's method
    runs a coefficient off to infinity) or Newton's method does not converge.
    """
    levels, level = np.unique(np.asarray(rating, int), return_inverse=True)
    K = len(levels)
    Xb = np.asarray(X, float)[:, 1:]
    cells = _Cells(Xb, level, K)
    cum = np.cumsum(np.bincount(level, minlength=K))[:-1] / len(level)
    start = np.concatenate([np.log(cum / (1 - cum)), np.zeros(Xb.shape[1])])  # the marginal distribution
    params = newton_minimize(cells.value_grad, cells.hess, start, what="proportional odds")
    if cells._parts(params)[0].max() > 1 - 1e-6:  # a design row's answers certain: the estimate ran off to infinity
        raise RuntimeError(
            "the maximum likelihood estimate does not exist: the answers of some method x segmenter combination "
            "all lie at one end of the rating scale, so its log odds ratio is infinite"
        )
    H = cells.hess(params)
    G = int(participant.max()) + 1
    counts = sparse.csr_matrix((np.ones(len(level)), (participant, cells.cell)), shape=(G, len(cells.w)))
    S = np.asarray(counts @ cells.scores(params))  # each participant's summed score
    Hinv = np.linalg.inv(H)
    cov = Hinv @ (S.T @ S * G / (G - 1)) @ Hinv
    b = params[K - 1 :]
    se = np.sqrt(np.diag(cov))[K - 1 :]
    terms = wald_terms(names[1:], b, se)
    return OrdinalResult(
        formula,
        terms,
        [float(t) for t in params[: K - 1]],
        [int(v) for v in levels],
        len(level),
        G,
        -cells.value_grad(params)[0],
    )
