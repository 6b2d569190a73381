"""From image files to features, fast and never twice.

Two stages per condition, each overlapping CPU-side work (decoding, resizing, cutting out)
in worker threads with model inference in the calling thread:

1. :func:`segment_items` -- masks for every item, read from the cache or computed and
   stored; returns each item's mask coverage.
2. :func:`feature_matrix` -- features for every item, read from the cache or computed in
   batches (decode -> cut out with the stored mask -> ``method.prepare`` in threads,
   ``method.encode`` here) and stored.

:func:`condition_features` runs both for every condition (segmenter x method), segmenting
once per segmenter: the study build and ``lookalike evaluate`` both start from it.

A rebuild with everything cached decodes no image and runs no model. Entries are written
atomically one by one, so a run killed at any point resumes where it stopped.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .cache import Cache
from .catalog import Item
from .images import load_rgb
from .methods import Method
from .segmenters import MIN_COVERAGE, Segmenter, cut_out

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def prefetch_map(fn: Callable[[T], R], items: Iterable[T], *, workers: int, ahead: int) -> Iterator[R]:
    """``map(fn, items)`` in order, computed by ``workers`` threads at most ``ahead`` items ahead.

    Bounded, unlike ``Executor.map`` (which submits everything at once); exceptions surface
    in order, at the item that raised.
    """
    it = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lookalike-io") as pool:
        pending = deque(pool.submit(fn, x) for _, x in zip(range(max(1, ahead)), it, strict=False))
        while pending:
            fut = pending.popleft()
            for nxt in it:
                pending.append(pool.submit(fn, nxt))
                break
            yield fut.result()


def _batches(iterator: Iterator[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for x in iterator:
        batch.append(x)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


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
    cache: Cache | None,
    progress: bool = True,
    workers: int | None = None,
) -> dict[str, MaskInfo]:
    """Ensure a mask exists for every item (computing missing ones); return each item's coverage.

    Without a cache, masks are not kept and :func:`feature_matrix` recomputes them.
    """
    if segmenter.trivial:
        return {it.item_id: MaskInfo(1.0, True) for it in items}
    ident = segmenter.identity()
    out: dict[str, MaskInfo] = {}
    todo: list[Item] = []
    for it in items:
        mask = cache.get_mask(ident, it.sha256) if cache is not None else None
        if mask is None:
            todo.append(it)
        else:
            out[it.item_id] = _info(mask)
    bar = tqdm(
        total=len(items), initial=len(out), desc=f"segmenting ({segmenter.name})", unit="img", disable=not progress
    )
    decoded = prefetch_map(lambda it: (it, load_rgb(it.path)), todo, workers=workers or default_workers(), ahead=4)
    for it, img in decoded:
        mask = segmenter.masks([img])[0]
        if cache is not None:
            cache.put_mask(ident, it.sha256, mask)
        out[it.item_id] = _info(mask)
        bar.update()
    bar.close()
    return {it.item_id: out[it.item_id] for it in items}


def segmented_image(item: Item, segmenter: Segmenter, cache: Cache | None) -> Image.Image:
    """The item's photo as the condition sees it: raw, or cut out with its (cached) mask."""
    img = load_rgb(item.path)
    if segmenter.trivial:
        return img
    mask = cache.get_mask(segmenter.identity(), item.sha256) if cache is not None else None
    if mask is None or mask.shape != (img.height, img.width):
        mask = segmenter.masks([img])[0]
    return cut_out(img, mask).image


def feature_matrix(
    items: Sequence[Item],
    method: Method,
    segmenter: Segmenter,
    *,
    cache: Cache | None,
    progress: bool = True,
    workers: int | None = None,
) -> np.ndarray:
    """Features of every item (rows in ``items`` order), computing and storing the missing ones.

    Masks must have been made by :func:`segment_items` first when ``segmenter`` is not
    trivial and a cache is used (otherwise they are recomputed here, serially).
    """
    m_id, s_id = method.identity(), segmenter.identity()
    rows: dict[str, np.ndarray] = {}
    todo: list[Item] = []
    for it in items:
        hit = cache.get_features(m_id, s_id, it.sha256) if cache is not None else None
        if hit is None:
            todo.append(it)
        else:
            rows[it.sha256] = hit
    bar = tqdm(
        total=len(items),
        initial=len(items) - len(todo),
        desc=f"embedding ({method.name}/{segmenter.name})",
        unit="img",
        disable=not progress,
    )
    prepared = prefetch_map(
        lambda it: (it, method.prepare(segmented_image(it, segmenter, cache))),
        todo,
        workers=workers or default_workers(),
        ahead=2 * method.batch_size,
    )
    for batch in _batches(prepared, method.batch_size):
        feats = method.encode(np.stack([arr for _, arr in batch]))
        for (it, _), f in zip(batch, feats, strict=True):
            if cache is not None:
                cache.put_features(m_id, s_id, it.sha256, f)
            rows[it.sha256] = f
        bar.update(len(batch))
    bar.close()
    if not items:
        return np.zeros((0,), np.float32)
    return np.stack([rows[it.sha256] for it in items])


@dataclass(frozen=True)
class ConditionFeatures:
    """One condition's features of a set of items (rows in item order), with the segmenter's masks."""

    method: Method
    segmenter: Segmenter
    features: np.ndarray
    masks: dict[str, MaskInfo]  # item_id -> coverage of the segmenter's mask
    seconds: float  # segmentation (this segmenter's, once per condition) + embedding


def condition_features(
    items: Sequence[Item],
    methods: Sequence[Method],
    segmenters: Sequence[Segmenter],
    *,
    cache: Cache | None,
    progress: bool = True,
) -> Iterator[ConditionFeatures]:
    """Features of ``items`` for every (segmenter, method), segmenter by segmenter: each
    segmenter's masks are made (or read from ``cache``) once and serve all its methods."""
    for segmenter in segmenters:
        t0 = time.perf_counter()
        masks = segment_items(items, segmenter, cache=cache, progress=progress)
        seg_seconds = time.perf_counter() - t0
        for method in methods:
            t1 = time.perf_counter()
            feats = feature_matrix(items, method, segmenter, cache=cache, progress=progress)
            yield ConditionFeatures(method, segmenter, feats, masks, seg_seconds + time.perf_counter() - t1)
