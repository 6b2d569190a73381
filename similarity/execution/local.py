"""The local executor: decoding in threads, each model in the calling thread.

:class:`LocalExecutor` runs here; its two steps (:func:`local_segment`, :func:`local_embed`)
and :func:`segmented_image` are also what a Ray actor runs on its share of the catalog
(:mod:`similarity.execution.ray_executor`), so both produce the same masks and features.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from PIL import Image

from similarity.catalogs.catalog import Item
from similarity.device import place, select_device
from similarity.execution.cache import Cache
from similarity.images import load_rgb
from similarity.methods import Method
from similarity.progress import progress_bar
from similarity.segmenters import Segmenter, cut_out

T = TypeVar("T")
R = TypeVar("R")


#: Feature rows per shard written by a build (a killed build loses at most this many images' work).
SHARD_ROWS = 256


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


def local_segment(
    items: Sequence[Item], segmenter: Segmenter, *, cache: Cache, progress: bool = True, workers: int | None = None
) -> None:
    """Compute and store the masks of ``items`` here: decoding in threads, the model in this thread."""
    ident = segmenter.identity()
    bar = progress_bar(total=len(items), desc=f"segmenting ({segmenter.name})", enabled=progress)
    decoded = prefetch_map(lambda it: (it, load_rgb(it.path)), items, workers=workers or default_workers(), ahead=4)
    for it, img in decoded:
        cache.put_mask(ident, it.sha256, segmenter.masks([img])[0])
        bar.update()
    bar.close()


def segmented_image(item: Item, segmenter: Segmenter, cache: Cache | None) -> Image.Image:
    """The item's photo as the condition sees it: raw, or cut out with its (cached) mask."""
    img = load_rgb(item.path)
    if segmenter.trivial:
        return img
    mask = cache.get_mask(segmenter.identity(), item.sha256) if cache is not None else None
    if mask is None or mask.shape != (img.height, img.width):
        mask = segmenter.masks([img])[0]
    return cut_out(img, mask).image


def local_embed(
    items: Sequence[Item],
    method: Method,
    segmenter: Segmenter,
    *,
    cache: Cache,
    progress: bool = True,
    workers: int | None = None,
    shard_rows: int = SHARD_ROWS,
) -> None:
    """Compute the features of ``items`` here and store them in shards of ``shard_rows``."""
    store = cache.features(method.identity(), segmenter.identity())
    method.use_model_folder(cache.models_dir)
    method.compile()  # before the decoding threads start: an export runs alone (warnings filters are process-wide)
    bar = progress_bar(total=len(items), desc=f"embedding ({method.name}/{segmenter.name})", enabled=progress)
    prepared = prefetch_map(
        lambda it: (it.sha256, method.prepare(segmented_image(it, segmenter, cache))),
        items,
        workers=workers or default_workers(),
        ahead=2 * method.batch_size,
    )
    keys: list[str] = []
    rows: list[np.ndarray] = []
    for batch in _batches(prepared, method.batch_size):
        feats = method.encode(np.stack([arr for _, arr in batch]))
        keys.extend(k for k, _ in batch)
        rows.extend(feats)
        if len(keys) >= shard_rows:
            store.write(keys, np.stack(rows))
            keys, rows = [], []
        bar.update(len(batch))
    if keys:
        store.write(keys, np.stack(rows))
    bar.close()


class LocalExecutor:
    """This process: decoding in threads, each model in the calling thread (the default), on CUDA
    when present (``device="auto"``): embedding methods, Mask R-CNN, and U²-Net where onnxruntime
    has its CUDA provider."""

    name = "local"

    def __init__(self, *, workers: int | None = None, device: str = "auto") -> None:
        self.workers = workers
        self.device = select_device(device)
        self.worker_count = 1

    def segment(self, items: Sequence[Item], segmenter: Segmenter, *, cache: Cache, progress: bool) -> None:
        place(segmenter, self.device)
        local_segment(items, segmenter, cache=cache, progress=progress, workers=self.workers)

    def embed(
        self, items: Sequence[Item], method: Method, segmenter: Segmenter, *, cache: Cache, progress: bool
    ) -> None:
        place(method, self.device)
        method.set_threads(os.cpu_count() or 1)  # the model runs alone; decoding threads mostly wait on it
        local_embed(items, method, segmenter, cache=cache, progress=progress, workers=self.workers)
