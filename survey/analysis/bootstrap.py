"""Bootstrap helpers: participant-clustered percentile CIs of a mean, and percentile CIs with ranks for the
strengths the choice models fit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ClusterResamples:
    """Bootstrap replicates that resample whole clusters (participants) with replacement:
    ``weights[b, i]`` is how often cluster ``clusters[i]`` is drawn in replicate ``b``."""

    clusters: np.ndarray  # the distinct cluster ids, sorted
    weights: np.ndarray  # n_boot x len(clusters), float


def resample_clusters(clusters: np.ndarray, *, n_boot: int, rng: np.random.Generator) -> ClusterResamples | None:
    """``n_boot`` replicates of the distinct ``clusters``, each a multinomial draw of as many
    clusters as there are. ``None``, and nothing drawn from ``rng``, with fewer than two clusters:
    resampling one participant says nothing about other participants."""
    ids = np.unique(np.asarray(clusters))
    k = ids.size
    if k < 2:
        return None
    # float weights: numpy multiplies an integer matrix by a float vector without BLAS, 20 times slower
    return ClusterResamples(ids, rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot).astype(np.float64))


def resampled_mean_ci(
    values: np.ndarray, clusters: np.ndarray, resamples: ClusterResamples | None, *, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile CI of the mean of ``values`` over the replicates ``resamples`` (drawn for these
    ``clusters`` by :func:`resample_clusters`); (nan, nan) without replicates (one cluster)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no values to bootstrap")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    ids, idx = np.unique(np.asarray(clusters), return_inverse=True)
    if resamples is None:
        if ids.size >= 2:
            raise ValueError(f"{ids.size} clusters but no resamples; draw them with resample_clusters()")
        return float("nan"), float("nan")
    if not np.array_equal(ids, resamples.clusters):
        raise ValueError("the resamples were drawn for other clusters; draw them with resample_clusters(clusters)")
    sums = np.bincount(idx, weights=values)
    counts = np.bincount(idx).astype(np.float64)
    means = (resamples.weights @ sums) / (resamples.weights @ counts)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def cluster_bootstrap_mean_ci(
    values: np.ndarray, clusters: np.ndarray, *, n_boot: int = 2000, confidence: float = 0.95, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile CI of the mean, resampling whole clusters (participants) with replacement.

    Ratings from one participant are correlated; resampling participants rather than
    single ratings keeps the interval honest. With fewer than two clusters the interval
    is undefined: (nan, nan).
    """
    if np.asarray(values).size == 0:
        raise ValueError("no values to bootstrap")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    resamples = resample_clusters(clusters, n_boot=n_boot, rng=rng)
    return resampled_mean_ci(values, clusters, resamples, confidence=confidence)


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


#: a choice model's replicates: (judgements, n_boot=, rng=) -> (conditions, log-strengths, participant-resampled
#: replicates of them or None)
Replicates = Callable[..., tuple[list[str], np.ndarray, np.ndarray | None]]


def bootstrap_strengths(
    replicates: Replicates, judgements: pd.DataFrame, *, n_boot: int, confidence: float, rng: np.random.Generator
) -> list[StrengthEstimate]:
    """A choice model's strengths with participant-resampling percentile CIs and ranks with ties
    (:func:`strength_estimates` of its ``replicates``); none when there are no conditions to fit."""
    conds, est, boots = replicates(judgements, n_boot=n_boot, rng=rng)
    if not conds:
        return []
    return strength_estimates(conds, est, boots, confidence)
