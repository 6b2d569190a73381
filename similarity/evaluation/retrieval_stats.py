"""Uncertainty of retrieval metrics: bootstrap confidence intervals over queries.

Recall@k and mAP are means over queries of a per-query score (hit in the top k, average
precision). With a few hundred queries such a mean moves by several points by chance, so every
figure ``lookalike evaluate`` prints comes with a percentile bootstrap interval: queries are
resampled with replacement, the mean recomputed, and the interval read off the resampled means.
Two conditions scored on the same queries are compared by a *paired* bootstrap: the same
resampled queries feed both means, so the interval of their difference reflects that the
conditions share their hard and easy queries (much narrower than two independent intervals).

The queries are the unit of resampling; the gallery is held fixed. All functions are pure and
take the seed explicitly; results are frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: Resampled query indices are drawn in blocks of at most this many entries (bounded memory).
_BLOCK_ENTRIES = 4_000_000
METRICS = ("recall_at_1", "recall_at_5", "mean_average_precision")


@dataclass(frozen=True)
class QueryScores:
    """Per-query retrieval scores of one condition (the arrays are aligned with ``query_ids``)."""

    query_ids: tuple[str, ...]
    hit_at_1: np.ndarray  # float64 0/1
    hit_at_5: np.ndarray  # float64 0/1
    average_precision: np.ndarray  # float64 in [0, 1]

    def __post_init__(self) -> None:
        n = len(self.query_ids)
        for name in ("hit_at_1", "hit_at_5", "average_precision"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"QueryScores.{name} has shape {getattr(self, name).shape}; expected ({n},)")

    def matrix(self) -> np.ndarray:
        """(3, Q): the per-query values of recall@1, recall@5 and AP, in :data:`METRICS` order."""
        return np.stack([self.hit_at_1, self.hit_at_5, self.average_precision]).astype(np.float64)

    def subset(self, keep: np.ndarray) -> QueryScores:
        """The queries where the boolean array ``keep`` is true."""
        ids = tuple(q for q, k in zip(self.query_ids, keep, strict=True) if k)
        return QueryScores(ids, self.hit_at_1[keep], self.hit_at_5[keep], self.average_precision[keep])


@dataclass(frozen=True)
class Interval:
    """A point estimate and its two-sided confidence interval (NaN when there are no queries)."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class _BootstrapIntervals:
    """Recall@1, recall@5 and mAP, each with its interval, and how the intervals were made."""

    recall_at_1: Interval
    recall_at_5: Interval
    mean_average_precision: Interval
    queries: int
    level: float
    resamples: int
    seed: int
    method: str


@dataclass(frozen=True)
class MetricsCI(_BootstrapIntervals):
    """Recall@1, recall@5 and mAP of one condition, each with its bootstrap interval."""

    method: str = "percentile bootstrap over queries"


@dataclass(frozen=True)
class PairedComparison(_BootstrapIntervals):
    """Condition A minus condition B on the same queries, each difference with its paired interval."""

    method: str = "paired percentile bootstrap over queries"


def _iv(values: np.ndarray, level: float, resamples: int) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level} must lie strictly between 0 and 1 (e.g. 0.95)")
    if resamples < 100:
        raise ValueError(f"resamples={resamples} is too few for a percentile interval; use at least 100")
    if values.ndim != 2:
        raise ValueError(f"expected a (metrics, queries) array, got shape {values.shape}")
    if values.size and not np.isfinite(values).all():
        raise ValueError("per-query scores must be finite")


def bootstrap_means(values: np.ndarray, *, resamples: int, level: float, seed: int) -> list[Interval]:
    """Percentile-bootstrap intervals of the row means of ``values`` (metrics x queries); the rows
    are resampled jointly (the same queries for every row)."""
    values = np.asarray(values, dtype=np.float64)
    _iv(values, level, resamples)
    m, n = values.shape
    if n == 0:
        return [Interval(float("nan"), float("nan"), float("nan")) for _ in range(m)]
    rng = np.random.default_rng(seed)
    means = np.empty((m, resamples))
    block = max(1, _BLOCK_ENTRIES // n)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[:, start:stop] = values[:, idx].mean(axis=2)
    alpha = 1.0 - level
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2], axis=1)
    est = values.mean(axis=1)
    return [Interval(float(e), float(a), float(b)) for e, a, b in zip(est, lo, hi, strict=True)]


def bootstrap_metrics(scores: QueryScores, *, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> MetricsCI:
    """Recall@1, recall@5 and mAP of ``scores`` with percentile-bootstrap intervals over queries."""
    r1, r5, ap = bootstrap_means(scores.matrix(), resamples=resamples, level=level, seed=seed)
    return MetricsCI(r1, r5, ap, len(scores.query_ids), level, resamples, seed)


def paired_difference(
    a: QueryScores, b: QueryScores, *, resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> PairedComparison:
    """``a`` minus ``b`` for each metric, with a paired bootstrap interval over the shared queries.

    Both conditions must have scored the same queries (the same ids, in any order); otherwise the
    comparison would mix different questions, and a ``ValueError`` names the difference."""
    if set(a.query_ids) != set(b.query_ids) or len(a.query_ids) != len(b.query_ids):
        only_a, only_b = set(a.query_ids) - set(b.query_ids), set(b.query_ids) - set(a.query_ids)
        raise ValueError(
            f"a paired comparison needs the same queries in both conditions; {len(only_a)} only in the first "
            f"({', '.join(sorted(only_a)[:3])}...), {len(only_b)} only in the second"
        )
    order = {q: i for i, q in enumerate(b.query_ids)}
    diff = a.matrix() - b.matrix()[:, [order[q] for q in a.query_ids]]
    r1, r5, ap = bootstrap_means(diff, resamples=resamples, level=level, seed=seed)
    return PairedComparison(r1, r5, ap, len(a.query_ids), level, resamples, seed)


def breakdown(
    scores: QueryScores,
    keys: Mapping[str, str],
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, MetricsCI]:
    """:func:`bootstrap_metrics` per value of ``keys`` (query id -> e.g. its category), sorted by value."""
    missing = [q for q in scores.query_ids if q not in keys]
    if missing:
        raise ValueError(f"{len(missing)} queries have no breakdown key (e.g. {missing[0]})")
    labels = np.array([keys[q] for q in scores.query_ids], dtype=object)
    return {
        value: bootstrap_metrics(scores.subset(labels == value), resamples=resamples, level=level, seed=seed)
        for value in sorted(set(labels.tolist()))
    }
