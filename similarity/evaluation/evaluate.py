"""Objective retrieval quality: does a method find the same product in another photo?

Ground truth is the manifest's ``group`` column: a gallery item is relevant to a query
when it has the query's group. Queries with no relevant gallery item are not scored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from similarity.catalogs.catalog import Catalog, Item
from similarity.errors import UserError
from similarity.evaluation.retrieval_stats import QueryScores
from similarity.execution.cache import Cache
from similarity.execution.executors import Executor
from similarity.execution.pipeline import ConditionFeatures, condition_features
from similarity.methods import Method
from similarity.progress import progress_bar
from similarity.search import similarity_slabs
from similarity.segmenters import Segmenter


class EvaluationError(UserError, ValueError):
    """An evaluation that cannot be scored as asked (no queries, no ground truth, a bad filter)."""


@dataclass(frozen=True)
class RetrievalMetrics:
    recall_at_1: float
    recall_at_5: float
    mean_average_precision: float
    queries: int


def query_scores(
    sims: np.ndarray,
    query_groups: Sequence[str | None],
    gallery_groups: Sequence[str | None],
    *,
    exclude: np.ndarray | None = None,
    query_ids: Sequence[str] | None = None,
) -> QueryScores:
    """Per-query hit@1, hit@5 and average precision of a (Q, G) similarity matrix, for the queries
    that have a relevant gallery item; ``exclude`` masks pairs out (the query itself,
    byte-identical copies, other categories). ``query_ids`` name the queries (default: row numbers)."""
    sims = np.array(sims, dtype=np.float64)
    if sims.shape != (len(query_groups), len(gallery_groups)):
        raise ValueError(
            f"sims shape {sims.shape} does not match {len(query_groups)} queries x {len(gallery_groups)} gallery items"
        )
    ids = [str(i) for i in range(len(query_groups))] if query_ids is None else list(query_ids)
    if len(ids) != len(query_groups):
        raise ValueError(f"{len(ids)} query ids for {len(query_groups)} queries")
    if exclude is not None:
        sims[exclude] = -np.inf
    gg = np.array([g if g is not None else "\0none" for g in gallery_groups], dtype=object)
    kept, r1, r5, aps = [], [], [], []
    for qid, row, qg in zip(ids, sims, query_groups, strict=True):
        relevant = (gg == qg) & np.isfinite(row) if qg is not None else np.zeros(len(gg), bool)
        if not relevant.any():
            continue
        order = np.argsort(-row, kind="stable")
        order = order[np.isfinite(row[order])]
        hits = relevant[order]
        kept.append(qid)
        r1.append(float(hits[:1].any()))
        r5.append(float(hits[:5].any()))
        ranks = np.flatnonzero(hits) + 1
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
    return QueryScores(tuple(kept), np.array(r1), np.array(r5), np.array(aps))


def metrics_of(scores: QueryScores) -> RetrievalMetrics:
    """The means of per-query scores (NaN when no query was scored)."""
    if not scores.query_ids:
        return RetrievalMetrics(float("nan"), float("nan"), float("nan"), 0)
    r1, r5, ap = scores.matrix().mean(axis=1)
    return RetrievalMetrics(float(r1), float(r5), float(ap), len(scores.query_ids))


def retrieval_metrics(
    sims: np.ndarray,
    query_groups: Sequence[str | None],
    gallery_groups: Sequence[str | None],
    *,
    exclude: np.ndarray | None = None,
) -> RetrievalMetrics:
    """Recall@1, recall@5 and mAP of a (Q, G) similarity matrix (see :func:`query_scores`)."""
    return metrics_of(query_scores(sims, query_groups, gallery_groups, exclude=exclude))


@dataclass(frozen=True)
class EvaluationResult:
    method: str
    segmenter: str
    metrics: RetrievalMetrics
    seconds: float
    condition: str = ""  # "METHOD[:options]/SEGMENTER[:options]" as asked for; names the row
    scores: QueryScores | None = None  # per query, for intervals and paired comparisons

    @property
    def label(self) -> str:
        return self.condition or f"{self.method}/{self.segmenter}"

    def as_json(self) -> dict:
        m = self.metrics
        return {
            "condition": self.label,
            "method": self.method,
            "segmenter": self.segmenter,
            "recall@1": m.recall_at_1,
            "recall@5": m.recall_at_5,
            "map": m.mean_average_precision,
            "queries": m.queries,
            "seconds": round(self.seconds, 2),
        }


def parse_filter(spec: str | None) -> dict[str, str]:
    """``column=value[,column=value]`` -> dict; empty or None -> no filter."""
    out: dict[str, str] = {}
    for part in filter(None, (spec or "").split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise EvaluationError(f"filter '{spec}': '{part}' needs the form column=value")
        out[key.strip()] = value.strip()
    return out


def matches(item: Item, flt: dict[str, str]) -> bool:
    fields = {"category": item.category, "group": item.group or "", **item.meta}
    return all(fields.get(k) == v for k, v in flt.items())


def exclusion_mask(queries: Sequence[Item], gallery: Sequence[Item], within: Literal["category", "all"]) -> np.ndarray:
    """Pairs never ranked: the query itself, byte-identical copies, and (within=category) other categories."""
    q_ids = np.array([q.item_id for q in queries], dtype=object)[:, None]
    g_ids = np.array([g.item_id for g in gallery], dtype=object)[None, :]
    q_sha = np.array([q.sha256 for q in queries], dtype=object)[:, None]
    g_sha = np.array([g.sha256 for g in gallery], dtype=object)[None, :]
    mask = (q_ids == g_ids) | (q_sha == g_sha)
    if within == "category":
        q_cat = np.array([q.category for q in queries], dtype=object)[:, None]
        g_cat = np.array([g.category for g in gallery], dtype=object)[None, :]
        mask |= q_cat != g_cat
    return mask


def evaluate(
    catalog: Catalog,
    methods: Sequence[Method],
    segmenters: Sequence[Segmenter],
    *,
    query_filter: dict[str, str],
    gallery_filter: dict[str, str],
    within: Literal["category", "all"] = "category",
    cache: Cache | None = None,
    progress: bool = True,
    method_labels: Sequence[str] | None = None,
    segmenter_labels: Sequence[str] | None = None,
    executor: Executor | None = None,
) -> list[EvaluationResult]:
    """Rank the gallery for every query with every (method, segmenter); score with ``group``.

    ``method_labels`` / ``segmenter_labels`` (aligned with ``methods`` / ``segmenters``; default
    their names) name each condition as ``method_label/segmenter_label``, so that one method with
    different options gives distinct rows. ``executor``: where the models run (default here; with
    Ray, a condition's seconds include its share of the pass that embedded all methods)."""
    if within not in ("category", "all"):
        raise EvaluationError(f"within must be 'category' or 'all', got {within!r}")
    m_labels = list(method_labels) if method_labels is not None else [m.name for m in methods]
    s_labels = list(segmenter_labels) if segmenter_labels is not None else [s.name for s in segmenters]
    if len(m_labels) != len(methods) or len(s_labels) != len(segmenters):
        raise ValueError("method_labels / segmenter_labels must have one label per method / segmenter")
    queries = [it for it in catalog.items if matches(it, query_filter)]
    gallery = [it for it in catalog.items if matches(it, gallery_filter)]
    if not queries or not gallery:
        raise EvaluationError(
            f"{len(queries)} queries match {query_filter} and {len(gallery)} gallery items match "
            f"{gallery_filter}; both need at least one"
        )
    if not any(it.group for it in gallery):
        raise EvaluationError(
            "the catalog has no 'group' column values: objective evaluation needs ground truth "
            "groups; add a group column naming the product each photo shows"
        )
    needed = list({it.item_id: it for it in [*queries, *gallery]}.values())
    results = []
    for c in condition_features(needed, methods, segmenters, cache=cache, progress=progress, executor=executor):
        t0 = time.perf_counter()
        scores = _blocked_scores(c, queries, gallery, within, progress=progress)
        mi = next(i for i, m in enumerate(methods) if m is c.method)
        si = next(i for i, g in enumerate(segmenters) if g is c.segmenter)
        results.append(
            EvaluationResult(
                c.method.name,
                c.segmenter.name,
                metrics_of(scores),
                c.seconds + time.perf_counter() - t0,
                condition=f"{m_labels[mi]}/{s_labels[si]}",
                scores=scores,
            )
        )
    return results


def _blocked_scores(
    c: ConditionFeatures,
    queries: list[Item],
    gallery: list[Item],
    within: Literal["category", "all"],
    *,
    progress: bool,
) -> QueryScores:
    """:func:`query_scores` of every query (in ``queries`` order), searched per category (or over
    the whole gallery) in slabs of rows read from the condition's store: bounded memory."""
    cats = sorted({q.category for q in queries}) if within == "category" else [None]
    parts = []
    bar = progress_bar(
        total=len(queries), desc=f"searching ({c.method.name}/{c.segmenter.name})", unit="query", enabled=progress
    )
    for cat in cats:
        qs = [q for q in queries if cat is None or q.category == cat]
        gs = [g for g in gallery if cat is None or g.category == cat]
        qs = gs if qs == gs else qs  # one list: symmetric methods score its diagonal blocks once
        if not gs:
            continue
        for qb, slab in similarity_slabs(c.method, c.rows, qs, gs):
            q_groups, g_groups, q_ids = [q.group for q in qb], [g.group for g in gs], [q.item_id for q in qb]
            exclude = exclusion_mask(qb, gs, "all")
            parts.append(query_scores(slab, q_groups, g_groups, exclude=exclude, query_ids=q_ids))
            bar.update(len(qb))
    bar.close()
    pos = {q.item_id: i for i, q in enumerate(queries)}
    ids = [i for p in parts for i in p.query_ids]
    order = np.argsort([pos[i] for i in ids], kind="stable").astype(int)

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])[order] if parts else np.zeros(0)

    hits = joined("hit_at_1"), joined("hit_at_5"), joined("average_precision")
    return QueryScores(tuple(ids[i] for i in order), *hits)


__all__ = [
    "EvaluationError",
    "EvaluationResult",
    "RetrievalMetrics",
    "evaluate",
    "exclusion_mask",
    "matches",
    "metrics_of",
    "parse_filter",
    "query_scores",
    "retrieval_metrics",
]
