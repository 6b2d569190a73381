from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from similarity.catalogs.catalog import load_catalog
from similarity.images import load_rgb
from similarity.methods import METHODS, create_method, list_methods, parse_scales, pool_feature_map
from similarity.registry import InvalidOption, UnknownName
from similarity.weights import WeightsUnavailable, clip_spec, list_weights, weight_spec
from tests.helpers import shared_data


def _grocery():
    return load_catalog(shared_data("grocery"), verify_images=False)


def test_registry_lists_and_rejects_unknown_names():
    assert list_methods() == ["clip", "efficientnet", "ssim"]
    with pytest.raises(UnknownName, match="unknown method 'sift'; valid: clip, efficientnet, ssim"):
        create_method("sift")
    with pytest.raises(TypeError, match="has no option.*sigmaa"):
        create_method("ssim", sigmaa=2.0)


def test_bundled_weights_are_present():
    present = {w.name for w in list_weights() if w.path() is not None}
    assert {"efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "u2netp"} <= present


@pytest.mark.slow  # runs the network on photos
@pytest.mark.parametrize("variant, size", [("lite0", 224), ("lite1", 240), ("lite2", 260)])
def test_lite_bundled_weights_classify_a_real_photo(variant, size):
    """The bundled ImageNet weights are really loaded: a Granny Smith packshot is class 948."""
    m = create_method("efficientnet", variant=variant, input_size=None)  # None: the native size
    assert m.input_size == size and m.params()["variant"] == variant
    item = next(i for i in _grocery().items if i.group == "Granny-Smith" and i.meta["view"] == "iconic")
    with torch.inference_mode():
        logits = m.net(torch.from_numpy(m.prepare_float(load_rgb(item.path))[None]))
    assert int(logits.argmax()) == 948  # ImageNet "Granny Smith"


def test_the_default_is_lite2_at_384_px():
    m = create_method("efficientnet")
    assert (m.variant, m.input_size, m.pooling, m.flip, m.scales) == ("lite2", 384, "avg", False, (1.0,))
    assert m.params()["input_size"] == 384
    assert create_method("efficientnet", input_size="native").input_size == 260  # TOML has no None


@pytest.mark.slow  # runs the network on photos
def test_flip_makes_the_descriptor_mirror_invariant_and_options_are_validated():
    img = load_rgb(_grocery().items[0].path)
    mirrored = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    plain, flip = create_method("efficientnet"), create_method("efficientnet", flip=True)
    f = flip.features([img, mirrored])
    assert float(f[0] @ f[1]) == pytest.approx(1.0, abs=1e-5)
    g = plain.features([img, mirrored])
    assert float(g[0] @ g[1]) < 0.999  # without flip, a mirror image is another descriptor
    for bad, match in [
        ({"pooling": "sum"}, "pooling 'sum' unknown; valid: avg, gem, max"),
        ({"pooling": "gem", "gem_p": 0.5}, "gem_p=0.5"),
        ({"gem_p": 2.0}, "only applies to pooling=gem"),
        ({"input_size": 20}, "input_size=20"),
        ({"scales": "1+x"}, "scales='1\\+x'.*e.g. scales=1\\+1.25"),
        ({"scales": "1+1"}, "distinct factors"),
        ({"flip": "yes"}, "flip='yes'"),
        ({"variant": "lite3"}, "valid: lite0, lite1, lite2, b0"),
    ]:
        with pytest.raises(InvalidOption, match=match):
            create_method("efficientnet", **bad)


def test_gem_pooling_between_average_and_max():
    """GeM with p=1 is average pooling and tends to max pooling as p grows (on non-negative maps)."""
    fmap = torch.rand(2, 8, 5, 5)
    torch.testing.assert_close(pool_feature_map(fmap, "gem", 1.0), fmap.mean(dim=(2, 3)))
    torch.testing.assert_close(pool_feature_map(fmap, "max", 3.0), fmap.amax(dim=(2, 3)))
    g3 = pool_feature_map(fmap, "gem", 3.0)
    assert (g3 >= fmap.mean(dim=(2, 3)) - 1e-6).all() and (g3 <= fmap.amax(dim=(2, 3)) + 1e-6).all()
    expected = (fmap.pow(3).mean(dim=(2, 3))) ** (1 / 3)  # by hand
    torch.testing.assert_close(g3, expected)
    assert (
        parse_scales("1+1.25") == (1.0, 1.25) and parse_scales([0.75, 1]) == (0.75, 1.0) and parse_scales(1) == (1.0,)
    )


@pytest.mark.slow
def test_default_efficientnet_finds_the_same_product_across_backgrounds(feature_cache):
    """Natural in-store photo -> packshot of the same product, recall@5 far above chance (5/81). The
    features go through the run's cache, as in a build (tests/test_evaluate.py computes the same ones)."""
    from similarity.execution.cache import Cache
    from similarity.execution.pipeline import compute_features
    from similarity.segmenters import create_segmenter

    cat = _grocery()
    queries = [i for i in cat.items if i.meta["view"] == "natural"][::5]
    gallery = [i for i in cat.items if i.meta["view"] == "iconic"]
    m = create_method("efficientnet")
    store = compute_features(
        [*queries, *gallery], m, create_segmenter("none"), cache=Cache(feature_cache), progress=False
    )
    sims = m.similarity(store.read([i.sha256 for i in queries]), store.read([i.sha256 for i in gallery]))
    top5 = np.argsort(-sims, axis=1)[:, :5]
    recall = np.mean([any(gallery[j].group == q.group for j in row) for q, row in zip(queries, top5, strict=True)])
    assert recall > 0.4, recall


@pytest.mark.slow  # runs the network on photos
def test_embeddings_are_normalised_and_identity_tracks_params():
    imgs = [load_rgb(i.path) for i in _grocery().items[:3]]
    f = create_method("efficientnet").features(imgs)
    assert f.shape == (3, 1280)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
    assert create_method("ssim").identity() != create_method("ssim", size=96).identity()


def test_ssim_method_scores_self_highest():
    imgs = [load_rgb(i.path) for i in _grocery().items[:5]]
    m = create_method("ssim", color=True)
    s = m.similarity(m.features(imgs), m.features(imgs))
    assert (np.argmax(s, axis=1) == np.arange(5)).all()


def test_clip_without_cached_weights_is_a_clear_error():
    if clip_spec().path() is not None:
        pytest.skip("CLIP weights are cached on this machine")
    with pytest.raises(WeightsUnavailable, match="lookalike weights download clip:ViT-B-32/laion2b_s34b_b79k"):
        create_method("clip")
    assert METHODS.status("clip").startswith("UNAVAILABLE: ") and METHODS.status("ssim") == "ready"


@pytest.mark.slow  # runs the network on photos
def test_clip_code_path_with_explicit_random_init():
    m = create_method("clip", pretrained=None)
    assert m.params()["weights"] == "random"
    f = m.features([load_rgb(i.path) for i in _grocery().items[:2]])
    assert f.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow  # runs the network on photos
def test_torchvision_efficientnet_code_path_with_explicit_random_init():
    m = create_method("efficientnet", variant="b0", pretrained=None, input_size=None)
    f = m.features([load_rgb(i.path) for i in _grocery().items[:2]])
    assert f.shape == (2, 1280) and m.input_size == 224  # None: the weights' crop size
    assert create_method("efficientnet", variant="b0", pretrained=None).input_size == 384  # the default, any variant


def test_torchvision_efficientnet_missing_weights_say_how_to_get_them():
    if weight_spec("efficientnet-b3").path() is not None:
        pytest.skip("EfficientNet-B3 weights are cached on this machine")
    with pytest.raises(WeightsUnavailable, match="lookalike weights download efficientnet-b3"):
        create_method("efficientnet", variant="b3")
    with pytest.raises(ValueError, match="valid: lite0, lite1, lite2, b0"):
        create_method("efficientnet", variant="b9")
