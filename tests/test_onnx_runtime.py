"""ONNX Runtime as the embedding methods' runtime: the same features as torch, exported once, checked,
stored under a name that changes with everything that changes the graph."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from PIL import Image

from similarity import onnx_graphs
from similarity.catalogs.catalog import load_catalog
from similarity.embedding import check_images
from similarity.execution.cache import Cache
from similarity.execution.pipeline import feature_matrix
from similarity.images import load_rgb
from similarity.methods import create_method
from similarity.registry import InvalidOption
from similarity.segmenters import create_segmenter
from tests.helpers import shared_data

MIN_COSINE = 0.9999


def _photos(n: int = 8) -> list[Image.Image]:
    """``n`` real photos: iconic and in-store shots of different products."""
    items = load_catalog(shared_data("grocery"), verify_images=False).items
    return [load_rgb(it.path) for it in items[:: max(1, len(items) // n)][:n]]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _onnx_vs_torch(method, images) -> np.ndarray:
    """Per-image cosine between the method's ONNX Runtime features and its own torch network's."""
    batch = np.stack([method.prepare(im) for im in images])  # uint8 HWC: the graph normalises
    return _cosines(method.encode(batch), method.reference_features(images))


@pytest.mark.slow  # exports and runs each network
@pytest.mark.parametrize(
    "name, options",
    [
        ("efficientnet", {}),  # the default: Lite2 at 384 px, the bundled ImageNet weights
        ("efficientnet", {"variant": "lite0"}),
        ("efficientnet", {"variant": "lite1"}),
        ("efficientnet", {"variant": "b0", "pretrained": None}),  # torchvision's weights download: random here
        ("clip", {"pretrained": None}),  # open_clip's ViT-B-32; its weights download: random here
    ],
    ids=["lite2-default", "lite0", "lite1", "b0-random", "clip-vit-b-32-random"],
)
def test_each_embedding_method_gives_torch_features_on_real_photos(name, options):
    method = create_method(name, **options)
    assert method.runtime == "onnx" and method.params()["runtime"] == "onnx"
    cos = _onnx_vs_torch(method, _photos())
    assert cos.min() >= MIN_COSINE, f"{name} {options}: lowest cosine {cos.min():.6f}"


@pytest.mark.slow  # exports and runs a network per option
@pytest.mark.parametrize(
    "options",
    [{"pooling": "gem"}, {"pooling": "gem", "gem_p": 4.5}, {"pooling": "max"}, {"flip": True}, {"scales": "1+0.75"}],
    ids=["gem", "gem-p4.5", "max", "flip", "scales"],
)
def test_every_descriptor_option_gives_the_torch_descriptor(options):
    method = create_method("efficientnet", variant="lite0", input_size=192, **options)
    cos = _onnx_vs_torch(method, _photos(6))
    assert cos.min() >= MIN_COSINE, f"{options}: lowest cosine {cos.min():.6f}"


def test_the_runtime_is_an_option_in_the_identity_and_bad_values_are_named():
    onnx, torch_ = (
        create_method("efficientnet", variant="lite0"),
        create_method("efficientnet", variant="lite0", runtime="torch"),
    )
    assert onnx.identity() != torch_.identity()  # each runtime's features are cached apart
    assert torch_.params()["runtime"] == "torch"
    with pytest.raises(InvalidOption, match="efficientnet runtime='tensorrt' unknown; valid: onnx, torch"):
        create_method("efficientnet", runtime="tensorrt")


@pytest.mark.slow  # exports a network
def test_the_graph_is_exported_once_into_the_cache_and_named_by_everything_that_changes_it(tmp_path, monkeypatch):
    items = load_catalog(shared_data("grocery"), verify_images=False).items[:4]
    images = [load_rgb(it.path) for it in items]
    cache = Cache(tmp_path)
    first = create_method("efficientnet", variant="lite0", input_size=160)
    a = feature_matrix(items, first, create_segmenter("none"), cache=cache, progress=False)  # the build's path
    (graph,) = cache.models_dir.glob("*.onnx")
    assert graph.name == onnx_graphs.graph_file_name(first.identity())
    assert graph.name.startswith(first.identity() + "-")
    assert not list(cache.models_dir.glob(".*.tmp"))  # written atomically: no temporary left behind
    (usage,) = [u for u in cache.usage() if u.kind == "models"]  # `lookalike cache` lists it
    assert (usage.identity, usage.entries, usage.bytes) == (graph.stem, 1, graph.stat().st_size)

    def no_export(*_a, **_k):
        raise AssertionError("exported again although the graph is in the cache")

    monkeypatch.setattr(onnx_graphs, "export_graph", no_export)
    second = create_method("efficientnet", variant="lite0", input_size=160)
    second.use_model_folder(cache.models_dir)
    np.testing.assert_allclose(second.features(images), a, atol=1e-6)

    # another exporter (torch, onnx or opset) gives another name: a stale graph is never reused
    monkeypatch.setattr(onnx_graphs, "exporter_tag", lambda: "torch 9.9; onnx 9.9; opset 99")
    assert onnx_graphs.graph_file_name(first.identity()) != graph.name
    # so does any option of the method (input size, pooling, weights, variant: all in the identity)
    other = create_method("efficientnet", variant="lite0", input_size=160, pooling="gem")
    assert onnx_graphs.graph_file_name(other.identity()) != graph.name


@pytest.mark.slow  # exports a network
def test_an_export_that_differs_from_torch_is_refused_naming_the_method_and_the_gap(tmp_path):
    method = create_method("efficientnet", variant="lite0", input_size=128)
    method.use_model_folder(tmp_path)
    honest = method._torch_encode
    method._torch_encode = lambda batch, device: honest(batch, device) + 0.05  # type: ignore[method-assign]
    with pytest.raises(onnx_graphs.ExportMismatch) as err:
        method.compile()
    message = str(err.value)
    assert "efficientnet" in message and method.identity() in message
    assert "lowest cosine" in message and "runtime=torch" in message
    assert not list(tmp_path.glob("*.onnx"))  # nothing stored


def test_the_check_images_are_fixed_and_the_onnx_input_is_the_letterboxed_image():
    a, b = check_images(), check_images()
    assert [np.asarray(x).tobytes() for x in a] == [np.asarray(x).tobytes() for x in b]
    method = create_method("efficientnet", variant="lite0", input_size=128)
    pixels = method.prepare(a[0])  # 300 x 200: padded above and below
    assert pixels.dtype == np.uint8 and pixels.shape == (128, 128, 3)
    assert (pixels[0] == 255).all() and (pixels[-1] == 255).all()  # white letterbox padding
    floats = create_method("efficientnet", variant="lite0", input_size=128, runtime="torch").prepare(a[0])
    assert floats.dtype == np.float32 and floats.shape == (3, 128, 128)
    np.testing.assert_allclose(floats, method.prepare_float(a[0]))


@pytest.mark.slow  # exports a network
def test_threads_reach_the_session_and_a_pickled_method_opens_its_own():
    method = create_method("efficientnet", variant="lite0", input_size=128)
    method.set_threads(1)
    method.compile()
    assert method._session.get_session_options().intra_op_num_threads == 1
    method.set_threads(2)
    assert method._session is None  # reopened with the new count on next use
    method.compile()
    assert method._session.get_session_options().intra_op_num_threads == 2
    copy = pickle.loads(pickle.dumps(method))  # what a Ray actor receives
    assert copy._session is None
    batch = np.stack([method.prepare(im) for im in check_images()])
    np.testing.assert_allclose(copy.encode(batch), method.encode(batch), atol=1e-6)


def test_cuda_uses_onnxruntimes_cuda_provider_only_where_it_is_installed(monkeypatch):
    import onnxruntime as ort

    method = create_method("efficientnet", variant="lite0", input_size=128)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert onnx_graphs.providers("cuda", "m") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_graphs.providers("cpu", "m") == ["CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(onnx_graphs, "_WARNED_NO_CUDA", set())
    with pytest.warns(RuntimeWarning, match="runs on the CPU: this onnxruntime has no CUDA provider.*onnxruntime-gpu"):
        assert method.to_device("cuda") == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, not on every placement
        assert method.to_device("cuda") == "cpu"
