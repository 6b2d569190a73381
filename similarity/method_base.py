"""The method interface: images -> features -> a (Q, G) similarity matrix.

Concrete methods and their registry live in :mod:`similarity.methods`; embedding methods share
:class:`~similarity.embedding.EmbeddingMethod`.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


class Method(ABC):
    """Images -> features -> (Q, G) similarity, higher is more similar.

    Feature extraction is split so pipelines can overlap the two halves: :meth:`prepare`
    (one image to an input array; pure CPU work, safe to run in threads) and
    :meth:`encode` (a stacked batch of prepared arrays to features).
    """

    name: str
    batch_size: int = 32

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Everything that changes the output (for cache keys and the study record)."""

    def identity(self) -> str:
        blob = json.dumps({"method": self.name, **self.params()}, sort_keys=True)
        return f"{self.name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    @abstractmethod
    def prepare(self, image: Image.Image) -> np.ndarray: ...

    @abstractmethod
    def encode(self, batch: np.ndarray) -> np.ndarray: ...

    def features(self, images: Sequence[Image.Image]) -> np.ndarray:
        chunks = [
            self.encode(np.stack([self.prepare(im) for im in images[i : i + self.batch_size]]))
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0,), np.float32)

    @abstractmethod
    def similarity(self, queries: np.ndarray, gallery: np.ndarray) -> np.ndarray: ...

    def use_model_folder(self, folder: Path) -> None:
        """Where compiled models are kept (the cache's ``models/``); methods without one ignore it."""
        del folder

    def set_threads(self, threads: int) -> None:
        """How many cores :meth:`encode` may use (the executor's share); methods without a pool ignore it."""
        del threads

    def compile(self) -> None:
        """Make ready what :meth:`encode` runs (an embedding method's ONNX graph: exported and checked, or
        loaded); methods that need nothing ignore it."""
        return None
