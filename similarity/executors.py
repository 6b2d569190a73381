"""Where a build's models run: here (``local``, the default) or on a Ray cluster (``ray``).

An executor fills the cache with what is missing -- masks of a segmenter, features of a
condition -- and nothing else: the pipeline decides what is missing and reads the results back
from the cache, so every executor produces the same files and a build with one is a warm start
for a build with another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .cache import Cache
from .catalog import Item
from .device import place, select_device
from .errors import UserError
from .methods import Method
from .segmenters import Segmenter


class Executor(Protocol):
    name: str

    def segment(self, items: Sequence[Item], segmenter: Segmenter, *, cache: Cache, progress: bool) -> None:
        """Store a mask of every item (all are missing) in ``cache``."""

    def embed(
        self, items: Sequence[Item], method: Method, segmenter: Segmenter, *, cache: Cache, progress: bool
    ) -> None:
        """Store the features of every item (all are missing) in ``cache``'s store of the condition."""


@runtime_checkable
class MultiMethodExecutor(Executor, Protocol):
    """An executor that computes several methods' features in one pass over the images."""

    def embed_methods(
        self, jobs: Sequence[tuple[Method, Sequence[Item]]], segmenter: Segmenter, *, cache: Cache, progress: bool
    ) -> None:
        """Store the features of each job's items (all missing) for its method, in one pass."""


class LocalExecutor:
    """This process: decoding in threads, each model in the calling thread (the default), on CUDA
    when present (``device="auto"``): embedding methods, Mask R-CNN, and U²-Net where onnxruntime
    has its CUDA provider."""

    name = "local"

    def __init__(self, *, workers: int | None = None, device: str = "auto") -> None:
        self.workers = workers
        self.device = select_device(device)
        self.worker_count = 1

    def segment(self, items: Sequence[Item], segmenter: Segmenter, *, cache: Cache, progress: bool) -> None:
        from .pipeline import local_segment

        place(segmenter, self.device)
        local_segment(items, segmenter, cache=cache, progress=progress, workers=self.workers)

    def embed(
        self, items: Sequence[Item], method: Method, segmenter: Segmenter, *, cache: Cache, progress: bool
    ) -> None:
        from .pipeline import local_embed

        place(method, self.device)
        local_embed(items, method, segmenter, cache=cache, progress=progress, workers=self.workers)


EXECUTORS = ("local", "ray")


class ExecutorError(UserError, ValueError):
    """An executor that cannot be used as asked; the message says how to fix it."""


def create_executor(name: str, *, address: str | None = None, workers: int | None = None) -> Executor:
    """``local`` or ``ray`` (``address``: a running cluster, default a local one; ``workers``: actors
    per model, default one per CPU the cluster has)."""
    if name == "local":
        if address is not None:
            raise ExecutorError("--ray-address needs --executor ray; the local executor runs in this process")
        return LocalExecutor(workers=workers)
    if name == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(address=address, workers=workers)
    raise ExecutorError(f"unknown executor '{name}'; valid: {', '.join(EXECUTORS)}")
