from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from similarity.catalogs.catalog import Item
from similarity.methods import create_method
from similarity.search import rank_category, top_k


def test_top_k_orders_excludes_and_breaks_ties_stably():
    s = np.array([0.5, 0.9, 0.9, 0.1, 0.7])
    assert top_k(s, 3).tolist() == [1, 2, 4]
    assert top_k(s, 3, exclude=[1]).tolist() == [2, 4, 0]
    assert top_k(s, 10, exclude=[0, 1, 2, 3]).tolist() == [4]


def test_reference_and_byte_identical_copies_never_in_own_grid():
    colours = [(200, 0, 0), (190, 10, 0), (0, 0, 200), (0, 200, 0), (100, 100, 100), (10, 10, 10), (250, 250, 0)]
    images = {f"i{k}": Image.new("RGB", (32, 32), c) for k, c in enumerate(colours)}
    items = [Item(f"i{k}", Path(f"/x/{k}"), "c", sha256=f"h{k}") for k in range(len(colours))]
    # i1 is a byte-identical copy of i0 (same hash): it must not be recommended for i0
    items[1] = Item("i1", Path("/x/1"), "c", sha256="h0")
    method = create_method("ssim", color=True)
    feats = method.features([images[it.item_id] for it in items])
    [res] = rank_category(method, items, feats, [items[0]], k=5)
    assert "i0" not in res.item_ids and "i1" not in res.item_ids
    assert len(res.item_ids) == 5 and list(res.scores) == sorted(res.scores, reverse=True)
