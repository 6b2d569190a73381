"""The on-disk cache: segmentation masks and image features, keyed by content.

Layout under the cache root::

    masks/<segmenter identity>/<sha256[:2]>/<sha256>.png            8-bit soft mask
    models/<method identity>-<exporter digest>.onnx                  exported encoders (runtime=onnx)
    features/<method identity>/<segmenter identity>/<digest[:2]>/<digest>.npy|.keys   shards

Features are stored in shards of many rows (see :mod:`similarity.execution.store`), named by the hash
of the image hashes they hold.

An identity names the component and hashes its weights and parameters, so changing any
of them never reuses a stale entry; the image is identified by the SHA-256 of its bytes,
so renaming or moving files costs nothing. Every write goes to a temporary file in the
same folder and is renamed into place, so a build killed at any instant leaves either
the complete entry or none. Researchers can open the mask PNGs directly.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from similarity.execution.store import KEY_BYTES, FeatureStore
from similarity.files import atomic_write

KINDS = ("masks", "features", "models")


@dataclass(frozen=True)
class CacheUsage:
    kind: str
    identity: str  # e.g. "u2netp-1a2b..." or "efficientnet-.../u2netp-..."
    entries: int
    bytes: int


class Cache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def models_dir(self) -> Path:
        """Compiled models (ONNX exports of the embedding methods, :mod:`similarity.onnx_graphs`)."""
        return self.root / "models"

    # --- masks -------------------------------------------------------------------------
    def mask_path(self, segmenter_identity: str, sha256: str) -> Path:
        return self.root / "masks" / segmenter_identity / sha256[:2] / f"{sha256}.png"

    def get_mask(self, segmenter_identity: str, sha256: str) -> np.ndarray | None:
        p = self.mask_path(segmenter_identity, sha256)
        if not p.is_file():
            return None
        with Image.open(p) as img:
            return np.asarray(img.convert("L"), dtype=np.float32) / 255.0

    def put_mask(self, segmenter_identity: str, sha256: str, mask: np.ndarray) -> Path:
        img = Image.fromarray(np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
        return atomic_write(self.mask_path(segmenter_identity, sha256), lambda fh: img.save(fh, format="PNG"))

    # --- features ----------------------------------------------------------------------
    def features(self, method_identity: str, segmenter_identity: str) -> FeatureStore:
        """The feature shards of one condition (one object per call: keep it while reading)."""
        return FeatureStore(self.root, method_identity, segmenter_identity)

    def get_features(self, method_identity: str, segmenter_identity: str, sha256: str) -> np.ndarray | None:
        return self.features(method_identity, segmenter_identity).get(sha256)

    def put_features(self, method_identity: str, segmenter_identity: str, sha256: str, features: np.ndarray) -> Path:
        """Store one image's features (a one-row shard; pipelines write many rows at once)."""
        return self.features(method_identity, segmenter_identity).write([sha256], np.asarray(features)[None])

    # --- housekeeping ------------------------------------------------------------------
    def usage(self) -> list[CacheUsage]:
        """Entries (masks; feature rows; exported graphs) and bytes per kind and component identity."""
        out: list[CacheUsage] = []
        for kind in KINDS:
            base = self.root / kind
            if not base.is_dir():
                continue
            if kind == "models":  # one file per exported graph
                graphs = sorted(f for f in base.glob("*.onnx") if f.is_file())
                out.extend(CacheUsage(kind, f.stem, 1, f.stat().st_size) for f in graphs)
                continue
            depth = 1 if kind == "masks" else 2
            for ident_dir in sorted(p for p in base.glob("/".join(["*"] * depth)) if p.is_dir()):
                files = [f for f in ident_dir.rglob("*") if f.is_file() and not f.name.startswith(".")]
                # features: entries are stored rows (images), not shard files
                entries = (
                    sum(f.stat().st_size // KEY_BYTES for f in files if f.suffix == ".keys")
                    if depth == 2
                    else len(files)
                )
                out.append(
                    CacheUsage(
                        kind, ident_dir.relative_to(base).as_posix(), entries, sum(f.stat().st_size for f in files)
                    )
                )
        return out

    def clear(self, kind: str | None = None) -> int:
        """Delete the cache (or one kind of it); returns the bytes freed."""
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown cache kind '{kind}'; valid: {', '.join(KINDS)}")
        freed = 0
        for k in [kind] if kind else list(KINDS):
            base = self.root / k
            if base.is_dir():
                freed += sum(f.stat().st_size for f in base.rglob("*") if f.is_file())
                shutil.rmtree(base)
        return freed
