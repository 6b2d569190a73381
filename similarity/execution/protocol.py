"""What an executor is: the protocol every executor meets, and the error it raises.

Executors are chosen by name in :mod:`similarity.execution.executors`. An executor fills the
cache with what is missing -- masks of a segmenter, features of a condition -- and nothing
else: the pipeline decides what is missing and reads the results back from the cache, so every
executor produces the same files and a build with one is a warm start for a build with another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from similarity.errors import UserError

if TYPE_CHECKING:  # annotations only: naming an executor must not load torch
    from similarity.catalogs.catalog import Item
    from similarity.execution.cache import Cache
    from similarity.methods import Method
    from similarity.segmenters import Segmenter


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


class ExecutorError(UserError, ValueError):
    """An executor that cannot be used as asked; the message says how to fix it."""
