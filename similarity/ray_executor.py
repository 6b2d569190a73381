"""The ``ray`` executor: decode -> segment -> embed on a Ray cluster with Ray Data.

Each stage is a ``map_batches`` over the images still missing from the cache, run by a pool of
actors (one model copy each, ``num_gpus=1`` per actor when the cluster has GPUs, models then on
CUDA; see :func:`similarity.device.select_device`). Segmenting actors write masks into the cache
(atomic, content-addressed, so a retried batch rewrites the same files); embedding actors return
feature rows, which this process writes into the condition's feature shards. The cache is the
one the local executor uses, so a later local build is a warm rebuild, and the reverse.

Workers read the catalog's images and the mask cache by path: on a cluster of several machines
both must be on storage they all mount (the image store and ``$LOOKALIKE_HOME`` on a shared
filesystem). Ray retries the batches of an actor that dies, on a restarted actor; every write is
idempotent, so the result is the same as without the failure.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .cache import Cache
from .catalog import Item
from .device import place
from .methods import Method
from .progress import progress_bar
from .segmenters import Segmenter

#: Feature rows handed back (and written as one shard) at once.
RESULT_ROWS = 256


class _Worker:
    """One actor: a copy of a model, the cache, and torch limited to the actor's CPUs."""

    def __init__(self, component: Method | Segmenter, cache_root: str, threads: int, device: str) -> None:
        from .runtime import tune_for_throughput

        # An actor is a batch job of its own: without the allocator settings the local executor's
        # process gets, every batch's activations are mmap-ed and unmapped again (measured: about
        # two thirds of the actors' CPU time in the kernel, 0.3x the local rate on 2 cores).
        tune_for_throughput(threads=max(1, threads))
        self.component = component
        self.cache = Cache(cache_root)
        self.device = place(component, device)

    def _items(self, batch: dict[str, np.ndarray]) -> list[Item]:
        pairs = zip(batch["path"], batch["sha256"], strict=True)
        return [Item(item_id=str(s), path=Path(str(p)), category="", sha256=str(s)) for p, s in pairs]

    def _out(self, batch: dict[str, np.ndarray], **columns: np.ndarray) -> dict[str, np.ndarray]:
        pid = np.full(len(batch["sha256"]), os.getpid(), dtype=np.int64)
        return {"sha256": np.asarray(batch["sha256"]), "pid": pid, **columns}


class _SegmentWorker(_Worker):
    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .images import load_rgb

        seg = self.component
        assert isinstance(seg, Segmenter)
        for it in self._items(batch):
            self.cache.put_mask(seg.identity(), it.sha256, seg.masks([load_rgb(it.path)])[0])
        return self._out(batch)


class _EmbedWorker(_Worker):
    def __init__(self, method: Method, segmenter: Segmenter, cache_root: str, threads: int, device: str) -> None:
        super().__init__(method, cache_root, threads, device)
        self.segmenter = segmenter

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .pipeline import segmented_image

        method = self.component
        assert isinstance(method, Method)
        arrays = [method.prepare(segmented_image(it, self.segmenter, self.cache)) for it in self._items(batch)]
        return self._out(batch, features=method.encode(np.stack(arrays)).astype(np.float32))


class RayExecutor:
    """Run segmenters and methods on a Ray cluster (``address``; None: start a local one)."""

    name = "ray"

    def __init__(
        self, *, address: str | None = None, workers: int | None = None, batch_rows: int | None = None
    ) -> None:
        if (workers is not None and workers < 1) or (batch_rows is not None and batch_rows < 1):
            from .executors import ExecutorError

            raise ExecutorError(f"workers ({workers}) and batch_rows ({batch_rows}) must be at least 1")
        if importlib.util.find_spec("ray") is None:
            from .executors import ExecutorError

            raise ExecutorError("the ray executor needs Ray: pip install 'lookalike[ray]' (ray[data] 2.60)")
        self.address, self.workers, self.batch_rows = address, workers, batch_rows
        self.pids: set[int] = set()  # the worker processes that returned results
        self._resources: dict[str, float] | None = None

    def _cluster(self) -> dict[str, float]:
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no "execution finished" line per stage
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # ours show progress; Ray's would be a second set
        ctx.print_on_execution_start = False
        if self._resources is None:
            self._resources = dict(ray.cluster_resources())
        return self._resources

    @property
    def worker_count(self) -> int:
        res = self._cluster()
        return self.workers or max(1, int(res.get("GPU", 0)) or int(res.get("CPU", 1)))

    def _map(self, worker: type, items: Sequence[Item], batch_size: int, kwargs: dict[str, Any]) -> Any:
        import ray

        from .device import select_device

        res = self._cluster()
        gpus = int(res.get("GPU", 0))
        n = self.worker_count
        cpus = max(1, int(res.get("CPU", 1)) // n)
        device = select_device("auto", cuda_available=lambda: gpus > 0)
        batch_size = self.batch_rows or batch_size
        rows = [{"path": str(it.path), "sha256": it.sha256} for it in items]
        blocks = max(1, min(len(rows), max(n, min(math.ceil(len(rows) / batch_size), 4 * n))))
        # Ray Data restarts a dead actor and retries its batches (max_restarts and
        # max_task_retries default to -1 for actor pools).
        return ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            worker,
            fn_constructor_kwargs={**kwargs, "threads": cpus, "device": device},
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=n),
            num_cpus=cpus,
            num_gpus=1 if gpus else 0,
        )

    def segment(self, items: Sequence[Item], segmenter: Segmenter, *, cache: Cache, progress: bool) -> None:
        out = self._map(_SegmentWorker, items, 8, {"component": segmenter, "cache_root": str(cache.root)})
        bar = progress_bar(total=len(items), desc=f"segmenting ({segmenter.name}, ray)", enabled=progress)
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            self.pids.update(int(p) for p in batch["pid"])
            bar.update(len(batch["sha256"]))
        bar.close()

    def embed(
        self, items: Sequence[Item], method: Method, segmenter: Segmenter, *, cache: Cache, progress: bool
    ) -> None:
        kwargs = {"method": method, "segmenter": segmenter, "cache_root": str(cache.root)}
        out = self._map(_EmbedWorker, items, method.batch_size, kwargs)
        store = cache.features(method.identity(), segmenter.identity())
        bar = progress_bar(total=len(items), desc=f"embedding ({method.name}/{segmenter.name}, ray)", enabled=progress)
        for batch in out.iter_batches(batch_size=RESULT_ROWS, batch_format="numpy"):
            store.write([str(s) for s in batch["sha256"]], batch["features"])
            self.pids.update(int(p) for p in batch["pid"])
            bar.update(len(batch["sha256"]))
        bar.close()
