from __future__ import annotations

import numpy as np
import pytest
import torch

from similarity.catalog import load_catalog
from similarity.images import load_rgb
from similarity.methods import METHODS, create_method, list_methods
from similarity.registry import UnknownName
from similarity.weights import WeightsUnavailable, clip_spec, list_weights, weight_spec

from .conftest import shared_data


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
    assert {"efficientnet-lite0", "u2netp"} <= present


def test_lite0_bundled_weights_classify_a_real_photo():
    """The bundled ImageNet weights are really loaded: a Granny Smith packshot is class 948."""
    m = create_method("efficientnet")
    item = next(i for i in _grocery().items if i.group == "Granny-Smith" and i.meta["view"] == "iconic")
    with torch.inference_mode():
        logits = m.net(torch.from_numpy(m.prepare(load_rgb(item.path))[None]))
    assert int(logits.argmax()) == 948  # ImageNet "Granny Smith"


def test_lite0_finds_the_same_product_across_backgrounds():
    """Natural in-store photo -> packshot of the same product, recall@5 far above chance (5/81)."""
    cat = _grocery()
    queries = [i for i in cat.items if i.meta["view"] == "natural"][::5]
    gallery = [i for i in cat.items if i.meta["view"] == "iconic"]
    m = create_method("efficientnet")
    sims = m.similarity(
        m.features([load_rgb(i.path) for i in queries]), m.features([load_rgb(i.path) for i in gallery])
    )
    top5 = np.argsort(-sims, axis=1)[:, :5]
    recall = np.mean([any(gallery[j].group == q.group for j in row) for q, row in zip(queries, top5, strict=True)])
    assert recall > 0.4, recall


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


def test_clip_code_path_with_explicit_random_init():
    m = create_method("clip", pretrained=None)
    assert m.params()["weights"] == "random"
    f = m.features([load_rgb(i.path) for i in _grocery().items[:2]])
    assert f.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)


def test_torchvision_efficientnet_code_path_with_explicit_random_init():
    m = create_method("efficientnet", variant="b0", pretrained=None)
    f = m.features([load_rgb(i.path) for i in _grocery().items[:2]])
    assert f.shape == (2, 1280) and m.input_size == 224


def test_torchvision_efficientnet_missing_weights_say_how_to_get_them():
    if weight_spec("efficientnet-b3").path() is not None:
        pytest.skip("EfficientNet-B3 weights are cached on this machine")
    with pytest.raises(WeightsUnavailable, match="lookalike weights download efficientnet-b3"):
        create_method("efficientnet", variant="b3")
    with pytest.raises(ValueError, match="valid: lite0, b0"):
        create_method("efficientnet", variant="b9")
