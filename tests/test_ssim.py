from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from similarity.catalogs.catalog import load_catalog
from similarity.images import letterbox, load_rgb
from similarity.ssim import SSIMParams, ssim_matrix
from tests.helpers import shared_data


def _real(n: int, color: bool) -> np.ndarray:
    items = load_catalog(shared_data("clothing"), verify_images=False).items[:n]
    imgs = [letterbox(load_rgb(it.path), 64) for it in items]
    return np.stack([np.asarray(im if color else im.convert("L"), dtype=np.float64) / 255.0 for im in imgs])


def _reference(a, b, color):
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    if color:
        kw["channel_axis"] = -1
    return np.array([[structural_similarity(x, y, **kw) for y in b] for x in a])


@pytest.mark.parametrize("color", [False, True])
def test_matches_scikit_image_on_real_photos(color):
    imgs = _real(24, color)
    got = ssim_matrix(imgs[:6], imgs)
    np.testing.assert_allclose(got, _reference(imgs[:6], imgs, color), atol=1e-4)


def test_identity_is_one_and_symmetric():
    imgs = _real(9, False)
    m = ssim_matrix(imgs, imgs)
    np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-5)  # float32: the cross term is filtered per pair
    np.testing.assert_allclose(m, m.T, atol=1e-6)
    # the self-similarity shortcut (half the pairs) gives the same matrix
    np.testing.assert_allclose(ssim_matrix(imgs), m, atol=1e-6)
    np.testing.assert_allclose(ssim_matrix(imgs, dtype=torch.float64), _reference(imgs, imgs, False), atol=1e-12)


def test_sample_covariance_option_matches():
    imgs = _real(5, False)
    p = SSIMParams(use_sample_covariance=True)
    ref = np.array(
        [
            [
                structural_similarity(
                    x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=True, data_range=1.0
                )
                for y in imgs
            ]
            for x in imgs[:2]
        ]
    )
    np.testing.assert_allclose(ssim_matrix(imgs[:2], imgs, params=p), ref, atol=1e-5)


def test_pinned_value():
    rng = np.random.default_rng(42)
    a = rng.random((1, 32, 32))
    b = np.clip(a + 0.1 * rng.standard_normal((1, 32, 32)), 0, 1)
    # value from scikit-image 0.26 structural_similarity with the same settings
    expected = structural_similarity(
        a[0], b[0], gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    assert ssim_matrix(a, b, dtype=torch.float64)[0, 0] == pytest.approx(expected, abs=1e-12)
    assert ssim_matrix(a, b)[0, 0] == pytest.approx(expected, abs=1e-6)  # float32 default
    assert 0.5 < expected < 0.95


def test_invalid_inputs_raise_with_fix():
    with pytest.raises(ValueError, match="float images"):
        ssim_matrix(np.zeros((1, 32, 32), np.uint8), np.zeros((1, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="differ in shape"):
        ssim_matrix(np.zeros((1, 32, 32)), np.zeros((1, 32, 30)))
    with pytest.raises(ValueError, match="smaller than the 11px"):
        ssim_matrix(np.zeros((1, 8, 8)), np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="grayscale"):
        ssim_matrix(np.zeros((32, 32)), np.zeros((32, 32)))
    assert SSIMParams().win_size == 11
