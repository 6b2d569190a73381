"""Exact top-k search within a category, computed in bounded blocks.

A category of a hundred thousand products has ten billion pairs: their similarities are never
held at once. :func:`similarity_slabs` walks the queries in blocks, reads the gallery's features
in blocks of ``block_rows`` (from a :class:`~similarity.execution.store.FeatureStore`, through the
``read`` callable) and hands back one slab of rows at a time, each at most ``slab_entries``
similarities; memory depends on those two sizes, not on the catalog's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from similarity.catalogs.catalog import Item
from similarity.methods import Method

#: Feature rows read from the store at once.
BLOCK_ROWS = 512
#: Similarities (query rows x gallery columns) held at once: 2M float64 = 16 MB.
SLAB_ENTRIES = 2_000_000


@dataclass(frozen=True)
class TopK:
    reference: str
    item_ids: tuple[str, ...]
    scores: tuple[float, ...]
    method: str


def top_k(scores: np.ndarray, k: int, *, exclude: Iterable[int] = ()) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first, skipping ``exclude``.

    Ties are broken by index (stable), so results are reproducible.
    """
    s = np.asarray(scores, dtype=np.float64).copy()
    s[list(exclude)] = -np.inf
    order = np.argsort(-s, kind="stable")
    order = order[np.isfinite(s[order])]
    return order[:k]


def similarity_slabs(
    method: Method,
    read: Callable[[Sequence[Item]], np.ndarray],
    queries: Sequence[Item],
    gallery: Sequence[Item],
    *,
    block_rows: int = BLOCK_ROWS,
    slab_entries: int = SLAB_ENTRIES,
) -> Iterator[tuple[Sequence[Item], np.ndarray]]:
    """``(query block, its similarities to every gallery item)`` for consecutive query blocks.

    ``read(items)`` returns the features of ``items`` (one row each). A query block has at most
    ``block_rows`` items and ``slab_entries / len(gallery)`` of them (at least one), so a slab
    holds at most ``max(slab_entries, len(gallery))`` float64 values.
    """
    if block_rows < 1 or slab_entries < 1:
        raise ValueError(f"block_rows ({block_rows}) and slab_entries ({slab_entries}) must be positive")
    q_rows = max(1, min(block_rows, slab_entries // max(1, len(gallery))))
    same = queries is gallery
    for i in range(0, len(queries), q_rows):
        q_items = queries[i : i + q_rows]
        q_feats = read(q_items)
        slab = np.empty((len(q_items), len(gallery)), np.float64)
        for j in range(0, len(gallery), block_rows):
            g_items = gallery[j : j + block_rows]
            # The diagonal block of a set against itself: pass one array twice, so symmetric
            # methods (SSIM) compute half of it.
            aligned = same and i == j and len(g_items) == len(q_items)
            g_feats = q_feats if aligned else read(g_items)
            slab[:, j : j + len(g_items)] = method.similarity(q_feats, g_feats)
        yield q_items, slab


def rank_rows(
    method: Method, gallery: Sequence[Item], references: Sequence[Item], sims: np.ndarray, *, k: int
) -> list[TopK]:
    """Top-``k`` gallery items of each reference from its row of ``sims`` (references x gallery);
    the reference and byte-identical copies of it never appear in its own list."""
    if sims.shape != (len(references), len(gallery)):
        raise ValueError(f"sims shape {sims.shape} is not {len(references)} references x {len(gallery)} gallery items")
    ids = np.array([it.item_id for it in gallery], dtype=object)
    shas = np.array([it.sha256 for it in gallery], dtype=object)
    results = []
    for r, row in zip(references, sims, strict=True):
        excluded = np.flatnonzero((ids == r.item_id) | (shas == r.sha256))
        best = top_k(row, k, exclude=excluded)
        results.append(
            TopK(r.item_id, tuple(gallery[i].item_id for i in best), tuple(float(row[i]) for i in best), method.name)
        )
    return results


def rank_category(
    method: Method, gallery: Sequence[Item], features: np.ndarray, references: Sequence[Item], *, k: int = 5
) -> list[TopK]:
    """Top-``k`` gallery items for each reference, from in-memory ``features`` (one row per
    gallery item); see :func:`similarity_slabs` for catalogs too large for that."""
    if len(features) != len(gallery):
        raise ValueError(f"{len(features)} feature rows for {len(gallery)} gallery items")
    index = {it.item_id: i for i, it in enumerate(gallery)}
    missing = [r.item_id for r in references if r.item_id not in index]
    if missing:
        raise ValueError(f"references {missing} are not in the gallery they are ranked against")
    q_rows = [index[r.item_id] for r in references]
    return rank_rows(method, gallery, references, method.similarity(features[q_rows], features), k=k)
