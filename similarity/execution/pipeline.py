"""From image files to features, fast and never twice.

Two stages per condition, each overlapping CPU-side work (decoding, resizing, cutting out)
in worker threads with model inference in the calling thread:

1. :func:`segment_items` -- masks for every item, read from the cache or computed and
   stored; returns each item's mask coverage.
2. :func:`compute_features` -- features of every image not yet in the condition's
   :class:`~similarity.execution.store.FeatureStore`, computed in batches (decode -> cut out with the
   stored mask -> ``method.prepare`` in threads, ``method.encode`` here) and written in shards.

:func:`condition_features` runs both for every condition (segmenter x method), segmenting
once per segmenter, and hands back the store, not a matrix: searches read it in blocks, so
memory does not grow with the catalog. The study build and ``lookalike evaluate`` both start
from it. An ``executor`` (:mod:`similarity.execution.executors`) may do the computing elsewhere (a Ray
cluster); it fills the same cache, so either kind of build is a warm start for the other.

A rebuild with everything cached decodes no image and runs no model. Masks are written one by
one and feature shards every ``shard_rows`` images, atomically, so a killed run resumes
near where it stopped.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from similarity.catalogs.catalog import Item
from similarity.execution.cache import Cache
from similarity.execution.local import LocalExecutor
from similarity.execution.protocol import Executor, MultiMethodExecutor
from similarity.execution.store import FeatureStore
from similarity.methods import Method
from similarity.segmenters import MIN_COVERAGE, Segmenter


@dataclass(frozen=True)
class MaskInfo:
    coverage: float  # share of the photo inside the mask (> 0.5)
    found: bool  # False: nothing detected, the whole photo is used


def _info(mask: np.ndarray) -> MaskInfo:
    coverage = float((mask > 0.5).mean())
    return MaskInfo(coverage, coverage >= MIN_COVERAGE)


def segment_items(
    items: Sequence[Item],
    segmenter: Segmenter,
    *,
    cache: Cache,
    progress: bool = True,
    workers: int | None = None,
    executor: Executor | None = None,
) -> dict[str, MaskInfo]:
    """Ensure ``cache`` holds a mask for every item (computing missing ones, with ``executor``
    when given); return each item's coverage, read back from the stored masks."""
    if segmenter.trivial:
        return {it.item_id: MaskInfo(1.0, True) for it in items}
    ident = segmenter.identity()
    todo = list({it.sha256: it for it in items if not cache.mask_path(ident, it.sha256).is_file()}.values())
    if todo:
        (executor or LocalExecutor(workers=workers)).segment(todo, segmenter, cache=cache, progress=progress)
    infos: dict[str, MaskInfo] = {}
    for it in items:
        if it.sha256 not in infos:
            mask = cache.get_mask(ident, it.sha256)
            if mask is None:
                raise RuntimeError(f"segmenting stored no mask for {it.path} ({segmenter.name})")
            infos[it.sha256] = _info(mask)
    return {it.item_id: infos[it.sha256] for it in items}


def compute_features(
    items: Sequence[Item],
    method: Method,
    segmenter: Segmenter,
    *,
    cache: Cache,
    progress: bool = True,
    workers: int | None = None,
    executor: Executor | None = None,
) -> FeatureStore:
    """Ensure the condition's store holds features of every item (images computed once each,
    with ``executor`` when given); returns the store. Masks must be in ``cache`` first
    (:func:`segment_items`) when ``segmenter`` is not trivial, or they are recomputed."""
    store = cache.features(method.identity(), segmenter.identity())
    todo = _missing_items(items, store)
    if todo:
        (executor or LocalExecutor(workers=workers)).embed(todo, method, segmenter, cache=cache, progress=progress)
        store.refresh()
    return store


def _missing_items(items: Sequence[Item], store: FeatureStore) -> list[Item]:
    """One item per image (by content) whose features ``store`` lacks."""
    missing = set(store.missing([it.sha256 for it in items]))
    return list({it.sha256: it for it in items if it.sha256 in missing}.values())


def feature_matrix(
    items: Sequence[Item],
    method: Method,
    segmenter: Segmenter,
    *,
    cache: Cache | None,
    progress: bool = True,
    workers: int | None = None,
) -> np.ndarray:
    """Features of every item as one matrix (rows in ``items`` order), computing and storing
    the missing ones: for small sets; builds read the store in blocks instead."""
    with tempfile.TemporaryDirectory(prefix="lookalike-") as tmp:
        c = cache if cache is not None else Cache(tmp)
        segment_items(items, segmenter, cache=c, progress=progress, workers=workers)
        store = compute_features(items, method, segmenter, cache=c, progress=progress, workers=workers)
        return store.read([it.sha256 for it in items])


@dataclass(frozen=True)
class ConditionFeatures:
    """One condition's features of a set of items (in its store), with the segmenter's masks."""

    method: Method
    segmenter: Segmenter
    store: FeatureStore
    masks: dict[str, MaskInfo]  # item_id -> coverage of the segmenter's mask
    seconds: float  # segmentation (this segmenter's, once per condition) + embedding

    def rows(self, items: Sequence[Item]) -> np.ndarray:
        """The features of ``items`` (read from disk; keep ``items`` to a block)."""
        return self.store.read([it.sha256 for it in items])


def condition_features(
    items: Sequence[Item],
    methods: Sequence[Method],
    segmenters: Sequence[Segmenter],
    *,
    cache: Cache | None,
    progress: bool = True,
    executor: Executor | None = None,
) -> Iterator[ConditionFeatures]:
    """Features of ``items`` for every (segmenter, method), segmenter by segmenter: each
    segmenter's masks are made (or read from ``cache``) once and serve all its methods.
    Without ``cache`` a temporary one lives as long as this generator; without ``executor`` the
    models run here, on CUDA when present (:class:`~similarity.execution.executors.LocalExecutor`)."""

    executor = executor if executor is not None else LocalExecutor()
    with tempfile.TemporaryDirectory(prefix="lookalike-") as tmp:
        c = cache if cache is not None else Cache(tmp)
        for segmenter in segmenters:
            t0 = time.perf_counter()
            masks = segment_items(items, segmenter, cache=c, progress=progress, executor=executor)
            seg_seconds = time.perf_counter() - t0
            shared = _embed_together(items, methods, segmenter, cache=c, progress=progress, executor=executor)
            for method in methods:
                t1 = time.perf_counter()
                store = compute_features(items, method, segmenter, cache=c, progress=progress, executor=executor)
                seconds = seg_seconds + shared + time.perf_counter() - t1
                yield ConditionFeatures(method, segmenter, store, masks, seconds)


def _embed_together(
    items: Sequence[Item],
    methods: Sequence[Method],
    segmenter: Segmenter,
    *,
    cache: Cache,
    progress: bool,
    executor: Executor,
) -> float:
    """With an executor that runs several methods in one pass (Ray), compute every method's missing
    features that way; returns the pass's seconds per method (its share of each condition's time).
    Other executors compute method by method, in :func:`compute_features` (0 seconds here)."""
    if not isinstance(executor, MultiMethodExecutor) or len(methods) < 2:
        return 0.0
    t0 = time.perf_counter()
    jobs = []
    for method in methods:
        todo = _missing_items(items, cache.features(method.identity(), segmenter.identity()))
        if todo:
            jobs.append((method, todo))
    if jobs:
        executor.embed_methods(jobs, segmenter, cache=cache, progress=progress)
    return (time.perf_counter() - t0) / len(methods)
