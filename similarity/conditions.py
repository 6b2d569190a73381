"""Every condition (method x segmenter) over a catalog: the top-k of chosen references within
their category, and the retrieval metrics against the catalog's ``group`` column.

Features come from :func:`similarity.pipeline.condition_features` (computed once per condition,
or read from the cache), as for ``lookalike evaluate``; they serve both the top-k lists and the
metrics. The study build (:mod:`survey.build`) stores the result as blinded grids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from .cache import Cache
from .catalog import Catalog, Item
from .evaluate import RetrievalMetrics, exclusion_mask, retrieval_metrics
from .methods import Method
from .pipeline import MaskInfo, condition_features
from .search import TopK, rank_category
from .segmenters import Segmenter


@dataclass(frozen=True)
class ConditionOutput:
    rankings: list[TopK]  # one per reference
    metrics: RetrievalMetrics | None  # None when the catalog has no groups


def compute_conditions(
    catalog: Catalog,
    references: Sequence[Item],
    methods: Sequence[Method],
    segmenters: Sequence[Segmenter],
    *,
    k: int,
    cache: Cache | None = None,
    progress: bool = True,
) -> tuple[dict[tuple[str, str], ConditionOutput], dict[str, dict[str, MaskInfo]]]:
    """Every condition's top-k per reference (keyed by (method, segmenter) names), plus its
    retrieval metrics when groups exist (every grouped item as a query against its own
    category), and each segmenter's masks (item_id -> coverage)."""
    has_groups = any(it.group for it in catalog.items)
    row = {it.item_id: i for i, it in enumerate(catalog.items)}
    outputs: dict[tuple[str, str], ConditionOutput] = {}
    masks: dict[str, dict[str, MaskInfo]] = {}
    for c in condition_features(catalog.items, methods, segmenters, cache=cache, progress=progress):
        method, seg = c.method, c.segmenter
        masks[seg.name] = c.masks
        lists: list[TopK] = []
        per_category: list[RetrievalMetrics] = []
        for category in tqdm(
            catalog.categories, desc=f"searching ({method.name}/{seg.name})", unit="category", disable=not progress
        ):
            gallery = catalog.in_category(category)
            feats = c.features[[row[it.item_id] for it in gallery]]
            cat_refs = [r for r in references if r.category == category]
            if cat_refs:
                lists.extend(rank_category(method, gallery, feats, cat_refs, k=k))
            if has_groups:
                groups = [it.group for it in gallery]
                per_category.append(
                    retrieval_metrics(
                        method.similarity(feats, feats), groups, groups, exclude=exclusion_mask(gallery, gallery, "all")
                    )
                )
        outputs[(method.name, seg.name)] = ConditionOutput(lists, merge_metrics(per_category) if has_groups else None)
    return outputs, masks


def merge_metrics(parts: Sequence[RetrievalMetrics]) -> RetrievalMetrics:
    """Query-weighted mean over categories (NaN when no category has a scored query)."""
    scored = [p for p in parts if p.queries]
    n = sum(p.queries for p in scored)
    if not n:
        return RetrievalMetrics(float("nan"), float("nan"), float("nan"), 0)

    def weighted(attr: str) -> float:
        return sum(getattr(p, attr) * p.queries for p in scored) / n

    return RetrievalMetrics(weighted("recall_at_1"), weighted("recall_at_5"), weighted("mean_average_precision"), n)
