from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from similarity.catalog import load_catalog
from similarity.images import load_rgb
from similarity.registry import UnknownName
from similarity.segmenters import cut_out, create_segmenter, list_segmenters


def test_registry():
    assert list_segmenters() == ["none", "u2netp"]
    with pytest.raises(UnknownName, match="valid: none, u2netp"):
        create_segmenter("grabcut")


def test_none_keeps_the_photo():
    img = Image.new("RGB", (40, 30), (10, 20, 30))
    seg = create_segmenter("none").segment([img])[0]
    assert seg.image is img and seg.found and seg.coverage == 1.0


def test_u2netp_cuts_the_product_out_of_a_busy_background(small_catalog):
    cat = load_catalog(small_catalog)
    lifestyle = [i for i in cat.items if i.meta["view"] == "lifestyle"][:4]
    seg = create_segmenter("u2netp")
    for item in lifestyle:
        src = load_rgb(item.path)
        out = seg.segment([src])[0]
        assert out.found and 0.03 < out.coverage < 0.8, (item.item_id, out.coverage)
        assert out.mask.shape == (src.height, src.width)
        # cropped to the product: smaller than the photo, and its border is mostly white
        arr = np.asarray(out.image, dtype=np.float32)
        assert out.image.width * out.image.height < src.width * src.height
        border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
        assert (border.min(axis=1) > 200).mean() > 0.6, item.item_id


def test_cut_out_flags_nothing_found_and_keeps_whole_image():
    img = Image.new("RGB", (50, 50), (0, 128, 0))
    out = cut_out(img, np.zeros((50, 50), np.float32))
    assert not out.found and out.image is img


def test_cut_out_composites_on_white_and_crops_with_margin():
    img = Image.new("RGB", (100, 100), (0, 0, 0))
    mask = np.zeros((100, 100), np.float32)
    mask[40:60, 40:60] = 1
    out = cut_out(img, mask, margin=0.05)
    assert out.image.size == (30, 30)
    arr = np.asarray(out.image)
    assert tuple(arr[0, 0]) == (255, 255, 255) and tuple(arr[15, 15]) == (0, 0, 0)
    with pytest.raises(ValueError, match="does not match"):
        cut_out(img, mask[:50])
