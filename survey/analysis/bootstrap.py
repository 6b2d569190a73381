"""Bootstrap helpers: participant-clustered percentile CIs of a mean, and percentile CIs with ranks for the
strengths the choice models fit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def cluster_bootstrap_mean_ci(
    values: np.ndarray, clusters: np.ndarray, *, n_boot: int = 2000, confidence: float = 0.95, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile CI of the mean, resampling whole clusters (participants) with replacement.

    Ratings from one participant are correlated; resampling participants rather than
    single ratings keeps the interval honest. With fewer than two clusters the interval
    is undefined: (nan, nan).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no values to bootstrap")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    _, idx = np.unique(np.asarray(clusters), return_inverse=True)
    sums = np.bincount(idx, weights=values)
    counts = np.bincount(idx).astype(np.float64)
    k = sums.size
    if k < 2:  # resampling one participant says nothing about other participants
        return float("nan"), float("nan")
    weights = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot)
    means = (weights @ sums) / (weights @ counts)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def ranks_from_intervals(estimate: np.ndarray, ci_low: np.ndarray, ci_high: np.ndarray) -> np.ndarray:
    """Ranks (1 = best) with ties: going down the estimates, a condition whose interval overlaps
    the interval of the one just above it shares that one's rank; otherwise its rank is its position."""
    estimate, ci_low, ci_high = (np.asarray(x, dtype=float) for x in (estimate, ci_low, ci_high))
    order = np.argsort(-estimate, kind="stable")
    ranks = np.empty(len(estimate), dtype=int)
    rank = 1
    for pos, i in enumerate(order):
        if pos and ci_low[order[pos - 1]] > ci_high[i]:  # clearly below the previous one
            rank = pos + 1
        ranks[i] = rank
    return ranks


@dataclass(frozen=True)
class StrengthEstimate:
    """A condition's fitted strength (Bradley-Terry or Plackett-Luce) with its bootstrap CI."""

    condition: str
    strength: float  # log-strength, mean 0 over conditions
    ci_low: float
    ci_high: float
    rank: int  # 1 = best; conditions whose intervals overlap the better one share its rank


def strength_estimates(
    conds: list[str], est: np.ndarray, boots: np.ndarray | None, confidence: float
) -> list[StrengthEstimate]:
    """Percentile CIs from bootstrap fits (rows of ``boots``) and ranks with ties; without
    ``boots`` (one participant) the CIs are NaN and the ranks follow the estimates."""
    if boots is None:
        lo = hi = np.full(len(conds), np.nan)
        ranks = np.argsort(np.argsort(-est)) + 1
    else:
        alpha = (1 - confidence) / 2
        lo, hi = np.quantile(boots, [alpha, 1 - alpha], axis=0)
        ranks = ranks_from_intervals(est, lo, hi)
    return [StrengthEstimate(c, float(est[i]), float(lo[i]), float(hi[i]), int(ranks[i])) for i, c in enumerate(conds)]
