"""Neural image encoders run with ONNX Runtime or torch: the base of every embedding method.

An :class:`EmbeddingMethod` letterboxes and normalises each photo (:meth:`~EmbeddingMethod.prepare`)
and encodes batches to L2-normalised descriptors, compared by cosine. Its torch network holds the
weights and is the reference: with ``runtime="onnx"`` the encoder is exported from it once, checked
against it on :func:`check_images` and run by ONNX Runtime (:mod:`similarity.onnx_graphs`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from similarity.images import letterbox
from similarity.method_base import Method


class EmbeddingMethod(Method):
    """A neural image encoder; features are L2-normalised, similarity is cosine.

    ``runtime`` runs it with ONNX Runtime (``onnx``: the encoder exported once from the torch weights
    and checked against them, :mod:`similarity.onnx_graphs`) or torch (``torch``); it is part of the
    identity, so each runtime's features are cached apart. :meth:`use_model_folder` says where the
    exported graph is kept (executors pass the cache's ``models/``), :meth:`set_threads` how many
    cores the runtime may use.
    """

    input_size: int
    mean: tuple[float, ...]  # per RGB channel, as the weights' library gives them
    std: tuple[float, ...]
    net: Any  # the torch module: the weights, and the reference every ONNX export is checked against
    runtime: str = "onnx"
    device: str = "cpu"  # where the network runs (similarity.device); not part of the identity
    threads: int = 0  # intra-op threads of the ONNX session; 0: onnxruntime's default
    model_folder: Path | None = None
    _session: Any = None

    def prepare_size(self) -> int:
        """The side of the letterboxed input :meth:`prepare` makes."""
        return self.input_size

    def prepare(self, image: Image.Image) -> np.ndarray:
        """The letterboxed image as the runtime takes it: HWC uint8 for ONNX Runtime (the graph scales,
        normalises and transposes it: less work in the decoding threads, a quarter of the bytes), the
        normalised CHW float32 input of :meth:`prepare_float` for torch."""
        if self.runtime == "onnx":
            return np.asarray(letterbox(image, self.prepare_size()), dtype=np.uint8)
        return self.prepare_float(image)

    def prepare_float(self, image: Image.Image) -> np.ndarray:
        """Letterboxed, normalised CHW float32 input: what the torch network takes."""
        arr = np.asarray(letterbox(image, self.prepare_size()), dtype=np.float32) * (1.0 / 255.0)
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        arr = (arr - mean) / std
        return np.ascontiguousarray(arr.transpose(2, 0, 1))

    def reference_features(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The torch network's features of ``images`` on the CPU: the reference every export is checked
        against, whatever the runtime."""
        return self._torch_encode(np.stack([self.prepare_float(im) for im in images]), "cpu")

    @abstractmethod
    def _encode(self, batch):
        """torch: a prepared batch -> descriptors (not yet normalised)."""

    def _export_encode(self, batch):
        """What the ONNX graph computes before normalising (defaults to :meth:`_encode`)."""
        return self._encode(batch)

    def use_model_folder(self, folder: Path) -> None:
        if folder != self.model_folder:
            self.model_folder, self._session = folder, None

    def set_threads(self, threads: int) -> None:
        if threads != self.threads:
            self.threads, self._session = threads, None

    def to_device(self, device: str) -> str:
        """Run on ``device`` ("cpu" or "cuda"); returns where it runs: the ONNX runtime stays on the CPU,
        with a warning naming the fix, where onnxruntime has no CUDA provider."""
        if self.runtime == "onnx":
            from similarity.onnx_graphs import providers

            where = "cuda" if providers(device, f"{self.name} (runtime=onnx)")[0].startswith("CUDA") else "cpu"
        else:
            self.net.to(device)
            where = device
        if where != self.device:
            self.device, self._session = where, None
        return where

    def compile(self) -> None:
        if self.runtime == "onnx":
            self._onnx_session()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the ONNX session (Ray workers open their own)."""
        return {**self.__dict__, "_session": None}

    def encode(self, batch: np.ndarray) -> np.ndarray:
        if self.runtime == "onnx":
            return self._onnx_session().run(None, {"pixels": np.ascontiguousarray(batch, np.uint8)})[0]
        return self._torch_encode(batch, self.device)

    def _torch_encode(self, batch: np.ndarray, device: str) -> np.ndarray:
        import torch

        with torch.inference_mode():
            f = self._encode(torch.from_numpy(batch).to(device)).float()
            return torch.nn.functional.normalize(f, dim=1).cpu().numpy()

    def _onnx_session(self) -> Any:
        if self._session is None:
            from similarity.onnx_graphs import load_or_export, normalised_module

            images = check_images()
            self._session = load_or_export(
                label=f"{self.name} {self.identity()}",
                identity=self.identity(),
                folder=self.model_folder,
                module=lambda: normalised_module(self.net, self._export_encode, self.mean, self.std),
                check_batch=lambda: np.stack([self.prepare(im) for im in images]),
                reference=lambda: self.reference_features(images),
                device=self.device,
                threads=self.threads,
                reuse=getattr(self, "weights_digest", "") != "random",  # random init: never a stored graph
            )
        return self._session

    def similarity(self, queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        return queries @ gallery.T


def check_images(n: int = 4, seed: int = 0) -> list[Image.Image]:
    """A fixed set of ``n`` images for checking an export: smooth random colour fields of different
    aspect ratios (so the letterbox padding is in them), the same on every machine."""
    rng = np.random.default_rng(seed)
    shapes = [(300, 200), (200, 300), (256, 256), (400, 120)]
    images = []
    for i in range(n):
        w, h = shapes[i % len(shapes)]
        coarse = Image.fromarray(rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8))
        images.append(coarse.resize((w, h), Image.Resampling.BICUBIC))
    return images
