"""What ``lookalike evaluate`` prints: every condition's metrics with bootstrap intervals, an
optional breakdown by a manifest column, and paired comparisons of two conditions; as a table
or as JSON. The statistics are in :mod:`similarity.evaluation.retrieval_stats`; this module only collects
and formats them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from similarity.catalogs.catalog import Catalog
from similarity.evaluation.evaluate import EvaluationError, EvaluationResult
from similarity.evaluation.retrieval_stats import (
    METRICS,
    Interval,
    MetricsCI,
    PairedComparison,
    bootstrap_metrics,
    breakdown,
    paired_difference,
)


@dataclass(frozen=True)
class ConditionSummary:
    """One condition's row: its result, bootstrap intervals and (with ``by``) the breakdown."""

    result: EvaluationResult
    intervals: MetricsCI
    by: dict[str, MetricsCI]


@dataclass(frozen=True)
class Comparison:
    """Condition ``a`` minus condition ``b`` on the same queries (paired bootstrap)."""

    a: str
    b: str
    difference: PairedComparison


@dataclass(frozen=True)
class EvaluationReport:
    rows: tuple[ConditionSummary, ...]
    by: str | None  # the manifest column of the breakdown, if any
    comparisons: tuple[Comparison, ...]
    level: float
    resamples: int
    seed: int


def query_keys(catalog: Catalog, column: str) -> dict[str, str]:
    """item_id -> the value of ``column`` (category, group or a manifest column) for a breakdown."""
    values: dict[str, str] = {}
    for it in catalog.items:
        fields = {"category": it.category, "group": it.group or "", **it.meta}
        if column not in fields:
            valid = ", ".join(sorted({"category", "group", *it.meta}))
            raise EvaluationError(f"--by {column}: the manifest has no column '{column}'; columns: {valid}")
        values[it.item_id] = fields[column]
    return values


def resolve_compare(labels: Sequence[str], pairs: Sequence[tuple[str, str]]) -> list[tuple[int, int]]:
    """Row indices (from 0) of each (a, b) pair, given as row numbers from 1 or as condition labels;
    cheap, so a command can check ``--compare`` before any work. Raises listing the conditions."""

    def pick(ref: str) -> int:
        if ref.isdigit() and 1 <= int(ref) <= len(labels):
            return int(ref) - 1
        hits = [i for i, label in enumerate(labels) if label == ref]
        if len(hits) != 1:
            listed = "; ".join(f"{i}: {label}" for i, label in enumerate(labels, 1))
            raise EvaluationError(
                f"--compare '{ref}' names {'no' if not hits else 'more than one'} condition; give a row "
                f"number or a condition as printed: {listed}"
            )
        return hits[0]

    out = [(pick(a), pick(b)) for a, b in pairs]
    for (i, j), (a, b) in zip(out, pairs, strict=True):
        if i == j:
            raise EvaluationError(f"--compare {a} {b}: both name the same condition; compare two different ones")
    return out


def summarise(
    results: Sequence[EvaluationResult],
    *,
    by: str | None = None,
    keys: Mapping[str, str] | None = None,
    compare: Sequence[tuple[str, str]] = (),
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> EvaluationReport:
    """Bootstrap intervals for every result, a breakdown by ``keys`` (query id -> value of column
    ``by``), and paired differences for each (a, b) in ``compare`` (row numbers from 1, or labels).
    The same seed resamples the same queries for every condition."""
    if (by is None) != (keys is None):
        raise ValueError("give both by and keys, or neither")
    rows = []
    for r in results:
        if r.scores is None:
            raise ValueError(f"result {r.label} carries no per-query scores; evaluate() provides them")
        ci = bootstrap_metrics(r.scores, resamples=resamples, level=level, seed=seed)
        by_value = breakdown(r.scores, keys, resamples=resamples, level=level, seed=seed) if keys else {}
        rows.append(ConditionSummary(r, ci, by_value))
    comparisons = []
    for i, j in resolve_compare([r.label for r in results], compare):
        a, b = results[i], results[j]
        assert a.scores is not None and b.scores is not None  # checked above
        diff = paired_difference(a.scores, b.scores, resamples=resamples, level=level, seed=seed)
        comparisons.append(Comparison(a.label, b.label, diff))
    return EvaluationReport(tuple(rows), by, tuple(comparisons), level, resamples, seed)


def _interval_json(iv: Interval) -> dict[str, float]:
    return {"estimate": iv.estimate, "low": iv.low, "high": iv.high}


def _metrics_json(m: MetricsCI | PairedComparison) -> dict[str, Any]:
    return {
        "recall@1": _interval_json(m.recall_at_1),
        "recall@5": _interval_json(m.recall_at_5),
        "map": _interval_json(m.mean_average_precision),
        "queries": m.queries,
    }


def report_json(report: EvaluationReport) -> dict[str, Any]:
    """``{"results": [...], "comparisons": [...], "bootstrap": {...}}``; each result keeps the point
    estimates under "recall@1", "recall@5", "map" and adds their intervals under "ci"."""
    results = []
    for row in report.rows:
        out = row.result.as_json()
        out["ci"] = {k: _interval_json(getattr(row.intervals, a)) for k, a in zip(_KEYS, METRICS, strict=True)}
        if report.by:
            out["by"] = {"column": report.by, "values": {v: _metrics_json(m) for v, m in row.by.items()}}
        results.append(out)
    return {
        "results": results,
        "comparisons": [{"a": c.a, "b": c.b, "difference": _metrics_json(c.difference)} for c in report.comparisons],
        "bootstrap": {
            "method": "percentile bootstrap over queries (paired for comparisons)",
            "level": report.level,
            "resamples": report.resamples,
            "seed": report.seed,
        },
    }


_KEYS = ("recall@1", "recall@5", "map")


def _cell(iv: Interval, signed: bool = False) -> str:
    f = "+.3f" if signed else ".3f"
    return f"{iv.estimate:{f}} [{iv.low:{f}}, {iv.high:{f}}]"


def format_report(report: EvaluationReport) -> str:
    """The plain-text tables: one row per condition, the breakdown, then the comparisons."""
    pct = f"{report.level:.0%}"
    labels = [r.result.label for r in report.rows] + [f"   {v}" for r in report.rows for v in r.by]
    width = max(len("condition"), *map(len, labels)) + 2
    lines = [
        f"{'#':>2} {'condition':<{width}}{'recall@1 [' + pct + ' CI]':>24}{'recall@5 [' + pct + ' CI]':>24}"
        f"{'mAP [' + pct + ' CI]':>24}{'queries':>8}{'seconds':>9}"
    ]
    for i, row in enumerate(report.rows, 1):
        ci = row.intervals
        lines.append(
            f"{i:>2} {row.result.label:<{width}}{_cell(ci.recall_at_1):>24}{_cell(ci.recall_at_5):>24}"
            f"{_cell(ci.mean_average_precision):>24}{ci.queries:>8}{row.result.seconds:>9.1f}"
        )
    for i, row in enumerate(report.rows, 1):
        if not row.by:
            continue
        lines += ["", f"{i:>2} {row.result.label} by {report.by}:"]
        for value, ci in row.by.items():
            lines.append(
                f"{'':>3}{'   ' + value:<{width}}{_cell(ci.recall_at_1):>24}{_cell(ci.recall_at_5):>24}"
                f"{_cell(ci.mean_average_precision):>24}{ci.queries:>8}"
            )
    for c in report.comparisons:
        d = c.difference
        lines += [
            "",
            f"paired difference ({pct} CI, {d.queries} shared queries): {c.a}  minus  {c.b}",
            f"   recall@1 {_cell(d.recall_at_1, True)}   recall@5 {_cell(d.recall_at_5, True)}   "
            f"mAP {_cell(d.mean_average_precision, True)}",
        ]
    lines.append(f"\nintervals: percentile bootstrap over queries, {report.resamples} resamples, seed {report.seed}")
    return "\n".join(lines)
