from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from similarity.catalogs.catalog import load_catalog
from similarity.images import load_rgb
from similarity.registry import UnknownName
from similarity.segmenters import create_segmenter, cut_out, list_segmenters
from tests.helpers import shared_data


def test_registry():
    assert list_segmenters() == ["maskrcnn", "none", "u2net", "u2netp"]
    with pytest.raises(UnknownName, match="valid: maskrcnn, none, u2net, u2netp"):
        create_segmenter("grabcut")


def test_none_keeps_the_photo():
    img = Image.new("RGB", (40, 30), (10, 20, 30))
    seg = cut_out(img, create_segmenter("none").masks([img])[0])
    assert seg.image is img and seg.found and seg.coverage == 1.0


@pytest.mark.slow  # runs U2-Net on photos
def test_u2netp_cuts_the_product_out_of_a_busy_background(small_catalog):
    cat = load_catalog(small_catalog)
    lifestyle = [i for i in cat.items if i.meta["view"] == "lifestyle"][:4]
    seg = create_segmenter("u2netp")
    for item in lifestyle:
        src = load_rgb(item.path)
        out = cut_out(src, seg.masks([src])[0])
        assert out.found and 0.03 < out.coverage < 0.8, (item.item_id, out.coverage)
        assert out.mask.shape == (src.height, src.width)
        # cropped to the product: smaller than the photo, and its border is mostly white
        arr = np.asarray(out.image, dtype=np.float32)
        assert out.image.width * out.image.height < src.width * src.height
        border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
        assert (border.min(axis=1) > 200).mean() > 0.6, item.item_id


@pytest.mark.slow  # runs U2-Net on real photos
def test_u2netp_threads_reach_its_session_and_keep_the_masks():
    photos = sorted((shared_data("grocery") / "images").rglob("*.jpg"))[::60][:3]
    images = [load_rgb(p) for p in photos]
    default, one = create_segmenter("u2netp"), create_segmenter("u2netp")
    one.set_threads(1)  # as a Ray actor with one core does
    assert one.session.get_session_options().intra_op_num_threads == 1
    assert default.session.get_session_options().intra_op_num_threads == 0
    for path, a, b in zip(photos, default.masks(images), one.masks(images), strict=True):
        np.testing.assert_allclose(a, b, atol=1 / 255, err_msg=str(path))


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


def test_choose_instance_prefers_a_large_central_object():
    from similarity.segmenters import choose_instance

    masks = np.zeros((3, 100, 100), np.float32)
    masks[0, 30:70, 30:70] = 1  # large, central, score 0.8
    masks[1, 0:10, 0:10] = 1  # small corner object, score 0.99
    masks[2, 20:80, 20:80] = 1  # largest, but below min_score
    assert choose_instance(masks, np.array([0.8, 0.99, 0.3])) == 0
    assert choose_instance(masks, np.array([0.1, 0.2, 0.3])) is None
    assert choose_instance(masks[:0], np.array([])) is None


def test_u2net_needs_its_onnx_file(tmp_path):
    from similarity.weights import WeightsUnavailable

    with pytest.raises(WeightsUnavailable, match="u2net:model_path="):
        create_segmenter("u2net")
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        create_segmenter("u2net", model_path=str(tmp_path / "missing.onnx"))


def test_maskrcnn_missing_weights_say_how_to_get_them():
    from similarity.weights import WeightsUnavailable, weight_spec

    if weight_spec("maskrcnn-coco").path() is not None:
        pytest.skip("Mask R-CNN weights are cached on this machine")
    with pytest.raises(WeightsUnavailable, match="lookalike weights download maskrcnn-coco"):
        create_segmenter("maskrcnn")


def test_cache_round_trips_and_accounts(tmp_path):
    from similarity.execution.cache import Cache

    cache = Cache(tmp_path)
    mask = np.linspace(0, 1, 20 * 30, dtype=np.float32).reshape(20, 30)
    path = cache.put_mask("u2netp-abc", "ff" * 32, mask)
    assert path.name == "ff" * 32 + ".png" and path.parent.name == "ff"
    np.testing.assert_allclose(cache.get_mask("u2netp-abc", "ff" * 32), mask, atol=1 / 255)
    assert cache.get_mask("u2netp-other", "ff" * 32) is None
    feats = np.arange(5, dtype=np.float32)
    cache.put_features("ssim-1", "none-2", "ee" * 32, feats)
    np.testing.assert_array_equal(cache.get_features("ssim-1", "none-2", "ee" * 32), feats)
    assert not list(tmp_path.rglob("*.tmp"))
    usage = {(u.kind, u.identity): u.entries for u in cache.usage()}
    assert usage == {("masks", "u2netp-abc"): 1, ("features", "ssim-1/none-2"): 1}
    assert cache.clear("features") > 0 and cache.get_features("ssim-1", "none-2", "ee" * 32) is None
    assert cache.get_mask("u2netp-abc", "ff" * 32) is not None
    with pytest.raises(ValueError, match="valid: masks, features"):
        cache.clear("thumbnails")
