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

from .cache import Cache
from .catalog import Catalog, Item
from .errors import UserError
from .methods import Method
from .pipeline import condition_features
from .segmenters import Segmenter


class EvaluationError(UserError, ValueError):
    """An evaluation that cannot be scored as asked (no queries, no ground truth, a bad filter)."""


@dataclass(frozen=True)
class RetrievalMetrics:
    recall_at_1: float
    recall_at_5: float
    mean_average_precision: float
    queries: int


def retrieval_metrics(
    sims: np.ndarray,
    query_groups: Sequence[str | None],
    gallery_groups: Sequence[str | None],
    *,
    exclude: np.ndarray | None = None,
) -> RetrievalMetrics:
    """Recall@1, recall@5 and mAP of a (Q, G) similarity matrix; ``exclude`` masks pairs out
    (the query itself, byte-identical copies, other categories)."""
    sims = np.array(sims, dtype=np.float64)
    if sims.shape != (len(query_groups), len(gallery_groups)):
        raise ValueError(
            f"sims shape {sims.shape} does not match {len(query_groups)} queries x {len(gallery_groups)} gallery items"
        )
    if exclude is not None:
        sims[exclude] = -np.inf
    gg = np.array([g if g is not None else "\0none" for g in gallery_groups], dtype=object)
    r1, r5, aps = [], [], []
    for row, qg in zip(sims, query_groups, strict=True):
        relevant = (gg == qg) & np.isfinite(row) if qg is not None else np.zeros(len(gg), bool)
        if not relevant.any():
            continue
        order = np.argsort(-row, kind="stable")
        order = order[np.isfinite(row[order])]
        hits = relevant[order]
        r1.append(bool(hits[:1].any()))
        r5.append(bool(hits[:5].any()))
        ranks = np.flatnonzero(hits) + 1
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
    if not aps:
        return RetrievalMetrics(float("nan"), float("nan"), float("nan"), 0)
    return RetrievalMetrics(float(np.mean(r1)), float(np.mean(r5)), float(np.mean(aps)), len(aps))


@dataclass(frozen=True)
class EvaluationResult:
    method: str
    segmenter: str
    metrics: RetrievalMetrics
    seconds: float

    def as_json(self) -> dict:
        m = self.metrics
        return {
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
) -> list[EvaluationResult]:
    """Rank the gallery for every query with every (method, segmenter); score with ``group``."""
    if within not in ("category", "all"):
        raise EvaluationError(f"within must be 'category' or 'all', got {within!r}")
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
    exclude = exclusion_mask(queries, gallery, within)
    row = {it.item_id: i for i, it in enumerate(needed)}
    q_rows, g_rows = [row[q.item_id] for q in queries], [row[g.item_id] for g in gallery]
    results = []
    for c in condition_features(needed, methods, segmenters, cache=cache, progress=progress):
        t0 = time.perf_counter()
        sims = c.method.similarity(c.features[q_rows], c.features[g_rows])
        m = retrieval_metrics(sims, [q.group for q in queries], [g.group for g in gallery], exclude=exclude)
        results.append(EvaluationResult(c.method.name, c.segmenter.name, m, c.seconds + time.perf_counter() - t0))
    return results


__all__ = [
    "EvaluationError",
    "EvaluationResult",
    "RetrievalMetrics",
    "evaluate",
    "exclusion_mask",
    "matches",
    "parse_filter",
    "retrieval_metrics",
]
