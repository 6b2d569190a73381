"""One test per registered method and segmenter, parametrised over the registries, offline.

Networks whose weights cannot be had offline (CLIP, Mask R-CNN) are built with random
weights, passed explicitly; that option exists for tests only.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from similarity.methods import create_method, list_methods
from similarity.segmenters import create_segmenter, cut_out, list_segmenters
from similarity.weights import weight_spec

METHOD_OPTIONS = {"ssim": {}, "efficientnet": {}, "clip": {"pretrained": None}}
SEGMENTER_OPTIONS = {
    "none": {},
    "u2netp": {},
    "maskrcnn": {"pretrained": None},
    "u2net": {"model_path": "<u2netp.onnx>"},
}


#: Components that run a neural network (weights loaded, a forward pass): their tests are ``slow``.
NETWORKS = {"efficientnet", "clip", "maskrcnn", "u2netp", "u2net"}


def _by_name(names: list[str]) -> list:
    """Parameters for each registered name; those that run a network carry the ``slow`` mark."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in NETWORKS else n for n in names]


def _images():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    other = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    shifted = np.roll(base, 2, axis=1)
    return [Image.fromarray(a) for a in (base, other, shifted)]


def test_every_registered_name_is_covered():
    assert set(METHOD_OPTIONS) == set(list_methods())
    assert set(SEGMENTER_OPTIONS) == set(list_segmenters())


@pytest.mark.parametrize("name", _by_name(list_methods()))
def test_method(name):
    m = create_method(name, **METHOD_OPTIONS[name])
    feats = m.features(_images())
    assert feats.shape[0] == 3 and np.isfinite(feats).all()
    sims = m.similarity(feats, feats)
    assert sims.shape == (3, 3)
    np.testing.assert_allclose(np.diag(sims), sims.max(axis=1), atol=1e-5)  # each image is most like itself
    assert m.identity().startswith(f"{name}-")


#: Every efficientnet variant and descriptor option beyond the defaults (lite2, 384 px, avg), offline.
EFFICIENTNET_OPTIONS = [
    {"variant": "lite0"},
    {"variant": "lite1"},
    {"input_size": None},
    {"pooling": "gem"},
    {"pooling": "gem", "gem_p": 2.0},
    {"pooling": "max"},
    {"input_size": 160},
    {"flip": True},
    {"scales": "1+0.75"},
]


@pytest.mark.slow  # runs EfficientNet
@pytest.mark.parametrize("options", EFFICIENTNET_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_efficientnet_option(options):
    m = create_method("efficientnet", **options)
    feats = m.features(_images())
    assert feats.shape == (3, 1280) and np.isfinite(feats).all()
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    sims = m.similarity(feats, feats)
    np.testing.assert_allclose(np.diag(sims), sims.max(axis=1), atol=1e-5)
    recorded = {**options, **({"scales": [1.0, 0.75]} if "scales" in options else {})}
    if options.get("input_size", 0) is None:
        recorded["input_size"] = 260  # None: Lite2's native size, recorded as the size used
    assert {k: m.params()[k] for k in recorded} == recorded  # the study stores params(): what was compared


@pytest.mark.slow  # loads EfficientNet ten times
def test_every_efficientnet_option_changes_the_cache_key():
    identities = [create_method("efficientnet", **o).identity() for o in [{}, *EFFICIENTNET_OPTIONS]]
    assert len(set(identities)) == len(identities)


@pytest.mark.parametrize("name", _by_name(list_segmenters()))
def test_segmenter(name):
    opts = dict(SEGMENTER_OPTIONS[name])
    if opts.get("model_path") == "<u2netp.onnx>":  # the full U²-Net has the same I/O; exercise the path
        opts["model_path"] = str(weight_spec("u2netp").require())
    seg = create_segmenter(name, **opts)
    # two photos of different sizes: one mask per photo, each of its photo's size (Mask R-CNN with random
    # weights takes about 17 s a photo on a 2-core machine, so no third)
    imgs = [_images()[0], _images()[1].resize((40, 30))]
    for img, out in zip(imgs, [cut_out(i, m) for i, m in zip(imgs, seg.masks(imgs), strict=True)], strict=True):
        assert out.mask.shape == (img.height, img.width)
        assert out.mask.min() >= 0.0 and out.mask.max() <= 1.0
        assert 0.0 <= out.coverage <= 1.0 and out.image.mode == "RGB"


@pytest.mark.parametrize(
    "registry, name", [("methods", n) for n in list_methods()] + [("segmenters", n) for n in list_segmenters()]
)
def test_options_are_checked_without_constructing(registry, name):
    from similarity.methods import METHODS
    from similarity.registry import UnknownOption
    from similarity.segmenters import SEGMENTERS

    reg = {"methods": METHODS, "segmenters": SEGMENTERS}[registry]
    reg.check_options(name, reg.entry(name).defaults)  # every default is an option
    with pytest.raises(UnknownOption, match=f"{reg.kind} '{name}' has no option\\(s\\) nope; options: "):
        reg.check_options(name, {"nope": 1})
    with pytest.raises(UnknownOption):
        reg.create(name, nope=1)


def test_status_reports_missing_weights_and_raises_other_errors():
    """Registry.status turns WeightsUnavailable into 'UNAVAILABLE: ...'; any other error in a check is a
    bug and propagates (a RuntimeError from torch must not read as missing weights)."""
    from similarity.registry import Registry
    from similarity.weights import WeightsUnavailable

    def missing(*, offline):
        raise WeightsUnavailable("weights 'x' are not on this machine: get them")

    def broken(*, offline):
        raise RuntimeError("CUDA error: an illegal memory access")

    reg: Registry[object] = Registry("thing")
    reg.register("missing", description="", check=missing)(object)
    reg.register("broken", description="", check=broken)(object)
    assert reg.status("missing") == "UNAVAILABLE: weights 'x' are not on this machine: get them"
    with pytest.raises(RuntimeError, match="illegal memory access"):
        reg.status("broken")
