"""Segmentation masks on disk, keyed by segmenter identity and image content hash.

``<root>/<segmenter identity>/<sha256[:2]>/<sha256>.png`` (8-bit grayscale). Researchers can
open them; builds reuse them, so an image is never segmented twice by the same segmenter
with the same weights and parameters. Writes are atomic (temporary file + rename), so a
build killed mid-write leaves no corrupt entry.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


class MaskStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, segmenter_identity: str, sha256: str) -> Path:
        return self.root / segmenter_identity / sha256[:2] / f"{sha256}.png"

    def get(self, segmenter_identity: str, sha256: str) -> np.ndarray | None:
        p = self.path(segmenter_identity, sha256)
        if not p.is_file():
            return None
        with Image.open(p) as img:
            return np.asarray(img.convert("L"), dtype=np.float32) / 255.0

    def put(self, segmenter_identity: str, sha256: str, mask: np.ndarray) -> Path:
        p = self.path(segmenter_identity, sha256)
        p.parent.mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                img.save(fh, format="PNG")
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return p
