"""Shared steps of builds and evaluations: decode images, segment them (with the mask store)."""

from __future__ import annotations

from typing import Sequence

from PIL import Image
from tqdm.auto import tqdm

from .catalog import Item
from .images import load_rgb
from .mask_store import MaskStore
from .segmenters import Segmented, Segmenter, cut_out


def load_images(items: Sequence[Item], *, progress: bool = True) -> dict[str, Image.Image]:
    return {it.item_id: load_rgb(it.path) for it in tqdm(items, desc="decoding images", disable=not progress)}


def segment_items(items: Sequence[Item], originals: dict[str, Image.Image], segmenter: Segmenter, *,
                  store: MaskStore | None = None, progress: bool = True) -> dict[str, Segmented]:
    """Cut every item out with ``segmenter``; masks come from / go to ``store`` when given."""
    out: dict[str, Segmented] = {}
    identity = segmenter.identity()
    cached = 0
    bar = tqdm(items, desc=f"segmenting ({segmenter.name})", disable=not progress)
    for it in bar:
        img = originals[it.item_id]
        if segmenter.trivial:
            out[it.item_id] = segmenter.segment([img])[0]
            continue
        mask = store.get(identity, it.sha256) if store is not None else None
        if mask is not None and mask.shape == (img.height, img.width):
            cached += 1
        else:
            mask = segmenter.masks([img])[0]
            if store is not None:
                store.put(identity, it.sha256, mask)
        out[it.item_id] = cut_out(img, mask)
        bar.set_postfix(cached=cached, refresh=False)
    return out
