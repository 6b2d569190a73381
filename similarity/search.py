"""Exact top-k search within a category, and the per-condition ranking pipeline."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .catalog import Item
from .methods import Method


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


def rank_category(
    method: Method, gallery: Sequence[Item], features: np.ndarray, references: Sequence[Item], *, k: int = 5
) -> list[TopK]:
    """Top-``k`` gallery items for each reference; the reference and byte-identical copies of
    it never appear in its own list. ``features`` holds one row per gallery item.
    """
    if len(features) != len(gallery):
        raise ValueError(f"{len(features)} feature rows for {len(gallery)} gallery items")
    index = {it.item_id: i for i, it in enumerate(gallery)}
    missing = [r.item_id for r in references if r.item_id not in index]
    if missing:
        raise ValueError(f"references {missing} are not in the gallery they are ranked against")
    q_rows = [index[r.item_id] for r in references]
    sims = method.similarity(features[q_rows], features)
    results = []
    for r, row in zip(references, sims, strict=True):
        excluded = [i for i, it in enumerate(gallery) if it.item_id == r.item_id or it.sha256 == r.sha256]
        best = top_k(row, k, exclude=excluded)
        results.append(
            TopK(r.item_id, tuple(gallery[i].item_id for i in best), tuple(float(row[i]) for i in best), method.name)
        )
    return results
