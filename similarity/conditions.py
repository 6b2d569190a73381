"""Every condition (method x segmenter) over a catalog: the top-k of chosen references within
their category, and the retrieval metrics against the catalog's ``group`` column.

Features come from :func:`similarity.execution.pipeline.condition_features` (computed once per condition,
or read from the cache), as for ``lookalike evaluate``; they serve both the top-k lists and the
metrics, read from disk in blocks. The study build (:mod:`survey.study.build`) stores the result as blinded grids.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from similarity.catalogs.catalog import Catalog, Item
from similarity.evaluation.evaluate import RetrievalMetrics, exclusion_mask, retrieval_metrics
from similarity.execution.cache import Cache
from similarity.execution.pipeline import ConditionFeatures, MaskInfo, condition_features
from similarity.methods import Method
from similarity.progress import progress_bar
from similarity.search import BLOCK_ROWS, TopK, rank_rows, similarity_slabs
from similarity.segmenters import Segmenter

if TYPE_CHECKING:
    from similarity.execution.executors import Executor


@dataclass(frozen=True)
class ConditionOutput:
    rankings: list[TopK]  # one per reference
    metrics: RetrievalMetrics | None  # None when the catalog has no groups
    feature_seconds: float = 0.0  # segmenting (shared by the segmenter's methods) + embedding
    search_seconds: float = 0.0


def compute_conditions(
    catalog: Catalog,
    references: Sequence[Item],
    methods: Sequence[Method],
    segmenters: Sequence[Segmenter],
    *,
    k: int,
    cache: Cache | None = None,
    progress: bool = True,
    executor: Executor | None = None,
    block_rows: int = BLOCK_ROWS,
    metric_queries: int | None = None,
    seed: int = 0,
) -> tuple[dict[tuple[str, str], ConditionOutput], dict[str, dict[str, MaskInfo]]]:
    """Every condition's top-k per reference (keyed by (method, segmenter) names), plus its
    retrieval metrics when groups exist (grouped items as queries against their own category:
    all of them, or ``metric_queries`` per category drawn with ``seed``, the same for every
    condition; 0: no metrics), and each segmenter's masks (item_id -> coverage).

    Features stay on disk; each category is searched in slabs of rows (:func:`similarity_slabs`),
    so memory depends on ``block_rows``, not on the catalog's size; with ``metric_queries`` the
    search time grows linearly with it too (all-pairs grows with its square)."""
    by_category: dict[str, list[Item]] = {}
    for it in catalog.items:
        by_category.setdefault(it.category, []).append(it)
    ref_ids = {r.item_id for r in references}
    metric_ids = _metric_queries(by_category, metric_queries, seed)
    # The queries of a category: its references and the metrics' queries.
    queries = {c: [it for it in g if it.item_id in ref_ids or it.item_id in metric_ids] for c, g in by_category.items()}
    # every item a query: the gallery itself, so symmetric methods (SSIM) score diagonal blocks once
    queries = {c: by_category[c] if len(q) == len(by_category[c]) else q for c, q in queries.items()}
    search = _Search(by_category, queries, references, ref_ids, metric_ids, k, block_rows, progress)
    outputs: dict[tuple[str, str], ConditionOutput] = {}
    masks: dict[str, dict[str, MaskInfo]] = {}
    for c in condition_features(catalog.items, methods, segmenters, cache=cache, progress=progress, executor=executor):
        masks[c.segmenter.name] = c.masks
        outputs[(c.method.name, c.segmenter.name)] = search.run(c)
    return outputs, masks


@dataclass(frozen=True)
class _Search:
    """What every condition searches: the catalog by category, each category's queries, the references
    (their top-k lists, in their order) and the metrics' queries."""

    by_category: dict[str, list[Item]]
    queries: dict[str, list[Item]]
    references: Sequence[Item]
    ref_ids: set[str]
    metric_ids: set[str]
    k: int
    block_rows: int
    progress: bool

    def run(self, c: ConditionFeatures) -> ConditionOutput:
        """One condition's top-k per reference and its retrieval metrics, each category searched in slabs."""
        t0 = time.perf_counter()
        lists: list[TopK] = []
        parts: list[RetrievalMetrics] = []
        bar = progress_bar(
            total=sum(map(len, self.queries.values())),
            desc=f"searching ({c.method.name}/{c.segmenter.name})",
            unit="query",
            enabled=self.progress,
        )
        for category in sorted(self.by_category):
            gallery = self.by_category[category]
            for q_items, slab in similarity_slabs(
                c.method, c.rows, self.queries[category], gallery, block_rows=self.block_rows
            ):
                self._rank_and_score(c.method, gallery, q_items, slab, lists, parts)
                bar.update(len(q_items))
        bar.close()
        order = {r.item_id: n for n, r in enumerate(self.references)}
        lists.sort(key=lambda t: order[t.reference])
        return ConditionOutput(lists, merge_metrics(parts) if parts else None, c.seconds, time.perf_counter() - t0)

    def _rank_and_score(
        self,
        method: Method,
        gallery: list[Item],
        q_items: Sequence[Item],
        slab: np.ndarray,
        lists: list[TopK],
        parts: list[RetrievalMetrics],
    ) -> None:
        """From one slab of similarities: the top-k of its references (appended to ``lists``) and the
        retrieval metrics of its metric queries (appended to ``parts``)."""
        refs = [i for i, q in enumerate(q_items) if q.item_id in self.ref_ids]
        if refs:
            lists.extend(rank_rows(method, gallery, [q_items[i] for i in refs], slab[refs], k=self.k))
        grouped = [i for i, q in enumerate(q_items) if q.item_id in self.metric_ids]
        if grouped:
            qs = [q_items[i] for i in grouped]
            groups = [it.group for it in gallery]
            parts.append(
                retrieval_metrics(
                    slab[grouped], [q.group for q in qs], groups, exclude=exclusion_mask(qs, gallery, "all")
                )
            )


def _metric_queries(by_category: dict[str, list[Item]], per_category: int | None, seed: int) -> set[str]:
    """The item ids that query the metrics: every grouped item of a category, or ``per_category``
    of them drawn without replacement (seeded, independent of the catalog's row order)."""
    out: set[str] = set()
    for category in sorted(by_category):
        grouped = sorted(it.item_id for it in by_category[category] if it.group)
        if per_category is not None and len(grouped) > per_category:
            rng = np.random.default_rng([seed, *category.encode()])
            grouped = [grouped[i] for i in rng.choice(len(grouped), size=per_category, replace=False)]
        out.update(grouped)
    return out


def merge_metrics(parts: Sequence[RetrievalMetrics]) -> RetrievalMetrics:
    """Query-weighted mean over categories (NaN when no category has a scored query)."""
    scored = [p for p in parts if p.queries]
    n = sum(p.queries for p in scored)
    if not n:
        return RetrievalMetrics(float("nan"), float("nan"), float("nan"), 0)

    def weighted(attr: str) -> float:
        return sum(getattr(p, attr) * p.queries for p in scored) / n

    return RetrievalMetrics(weighted("recall_at_1"), weighted("recall_at_5"), weighted("mean_average_precision"), n)
