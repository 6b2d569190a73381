"""The ``ray`` executor: decode -> segment -> embed on a Ray cluster with Ray Data.

Each stage is a ``map_batches`` over the images still missing from the cache, run by a pool of
actors (one model copy each, ``num_gpus=1`` per actor when the cluster has GPUs, models then on
CUDA; see :func:`similarity.device.select_device`). Segmenting actors write masks into the cache
(atomic, content-addressed, so a retried batch rewrites the same files); embedding actors run all
of a segmenter's methods in one pass (one pool, each image read once) and return feature rows,
which this process writes into each condition's feature shards. The cache is the
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
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from similarity.catalogs.catalog import Item
from similarity.device import place
from similarity.execution.cache import Cache
from similarity.methods import Method
from similarity.progress import progress_bar
from similarity.segmenters import Segmenter

#: Feature rows of a method this process collects from the workers and writes as one shard.
RESULT_ROWS = 256

#: The environment of the actors' processes. Ray Data calls a model from a thread of its own, and
#: glibc gives each thread its own malloc arena: a non-main arena grows in heaps of at most 64 MiB
#: and maps anything larger (EfficientNet's early activations at batch 32 are 50-150 MB) fresh
#: with ``mmap`` on every batch, whatever the thresholds :func:`~similarity.runtime.tune_for_throughput`
#: sets. One arena (the main one, which grows without that limit) keeps that memory in the heap:
#: measured on 2 cores, the actors' kernel share went from ~40 % to ~3 % and Ray's build from 52
#: to 69 images/s. Set at process start (glibc reads tunables only then); harmless elsewhere.
ACTOR_ENV = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=1"}


class _Worker:
    """One actor: a copy of a model, the cache, and torch limited to the actor's CPUs."""

    def __init__(self, component: Method | Segmenter, cache_root: str, threads: int, device: str) -> None:
        from similarity.runtime import tune_for_throughput

        # An actor is a batch job of its own: without the allocator settings the local executor's
        # process gets, every batch's activations are mmap-ed and unmapped again (measured: about
        # two thirds of the actors' CPU time in the kernel, 0.3x the local rate on 2 cores).
        tune_for_throughput(threads=max(1, threads))
        self.component = component
        self.cache = Cache(cache_root)
        self.device = place(component, device)
        if isinstance(component, Segmenter):
            component.set_threads(max(1, threads))  # the actor's share of the node's cores

    def _items(self, batch: dict[str, np.ndarray]) -> list[Item]:
        pairs = zip(batch["path"], batch["sha256"], strict=True)
        return [Item(item_id=str(s), path=Path(str(p)), category="", sha256=str(s)) for p, s in pairs]

    def _out(self, batch: dict[str, np.ndarray], **columns: np.ndarray) -> dict[str, np.ndarray]:
        n = len(batch["sha256"])
        pid, device = np.full(n, os.getpid(), dtype=np.int64), np.full(n, self.device)
        return {"sha256": np.asarray(batch["sha256"]), "pid": pid, "device": device, **columns}


class _SegmentWorker(_Worker):
    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from similarity.images import load_rgb

        seg = self.component
        assert isinstance(seg, Segmenter)
        for it in self._items(batch):
            self.cache.put_mask(seg.identity(), it.sha256, seg.masks([load_rgb(it.path)])[0])
        return self._out(batch)


class _EmbedWorker(_Worker):
    """Features of every method in one pass: each image is read (and cut out) once, and one actor
    pool serves all of a segmenter's methods. Row ``need`` says which methods lack the image
    (``"1"`` at the method's index); a method's column holds each row's float32 features as bytes
    (shapes differ by method; the batch's shape is in column ``shape<j>``), empty where the image did
    not need it."""

    def __init__(
        self, methods: Sequence[Method], segmenter: Segmenter, cache_root: str, threads: int, device: str
    ) -> None:
        super().__init__(methods[0], cache_root, threads, device)
        self.methods = list(methods)
        for m in self.methods:
            m.set_threads(max(1, threads))  # the actor's share of the node's cores
            m.use_model_folder(self.cache.models_dir)  # exported by the driver before the actors start
        for m in self.methods[1:]:
            place(m, device)
        self.segmenter = segmenter

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from similarity.execution.local import segmented_image

        images = [segmented_image(it, self.segmenter, self.cache) for it in self._items(batch)]
        need = [str(n) for n in batch["need"]]
        columns: dict[str, np.ndarray] = {}
        for j, method in enumerate(self.methods):
            rows = [i for i, n in enumerate(need) if n[j] == "1"]
            cells = np.full(len(need), b"", dtype=object)  # float32 bytes: row shapes differ by method
            shape = ""
            if rows:
                feats = method.encode(np.stack([method.prepare(images[i]) for i in rows])).astype(np.float32)
                shape = ",".join(str(d) for d in feats.shape[1:])
                for i, f in zip(rows, feats, strict=True):
                    cells[i] = f.tobytes()
            columns[f"f{j}"] = cells
            columns[f"shape{j}"] = np.full(len(need), shape)
        return self._out(batch, **columns)


class RayExecutor:
    """Run segmenters and methods on a Ray cluster (``address``; None: start a local one)."""

    name = "ray"

    def __init__(
        self, *, address: str | None = None, workers: int | None = None, batch_rows: int | None = None
    ) -> None:
        if (workers is not None and workers < 1) or (batch_rows is not None and batch_rows < 1):
            from similarity.execution.protocol import ExecutorError

            raise ExecutorError(f"workers ({workers}) and batch_rows ({batch_rows}) must be at least 1")
        if importlib.util.find_spec("ray") is None:
            from similarity.execution.protocol import ExecutorError

            raise ExecutorError("the ray executor needs Ray: pip install 'lookalike[ray]' (ray[data] 2.60)")
        self.address, self.workers, self.batch_rows = address, workers, batch_rows
        self.pids: set[int] = set()  # the worker processes that returned results
        self.rows_returned = 0  # result rows received from the workers, all stages
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

    def _map(self, worker: type, rows: list[dict[str, str]], batch_size: int, kwargs: dict[str, Any]) -> Any:
        import ray

        from similarity.device import select_device

        res = self._cluster()
        gpus = int(res.get("GPU", 0))
        n = self.worker_count
        cpus = max(1, int(res.get("CPU", 1)) // n)
        device = select_device("auto", cuda_available=lambda: gpus > 0)
        batch_size = self.batch_rows or batch_size
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
            runtime_env={"env_vars": ACTOR_ENV},
        )

    def segment(self, items: Sequence[Item], segmenter: Segmenter, *, cache: Cache, progress: bool) -> None:
        rows = [{"path": str(it.path), "sha256": it.sha256} for it in items]
        out = self._map(_SegmentWorker, rows, 8, {"component": segmenter, "cache_root": str(cache.root)})
        bar = progress_bar(total=len(items), desc=f"segmenting ({segmenter.name}, ray)", enabled=progress)
        devices: set[str] = set()
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            self._received(batch)
            devices.update(str(d) for d in batch["device"])
            bar.update(len(batch["sha256"]))
        bar.close()
        if self._cluster().get("GPU", 0) and "cpu" in devices:
            # the worker's own warning (U²-Net without onnxruntime's CUDA provider) stays in its log
            warnings.warn(
                f"{segmenter.name} ran on the CPU in Ray workers that hold a GPU: their onnxruntime has no "
                "CUDA provider (install onnxruntime-gpu on the cluster's nodes)",
                RuntimeWarning,
                stacklevel=2,
            )

    def _received(self, batch: dict[str, np.ndarray]) -> None:
        self.pids.update(int(p) for p in batch["pid"])
        self.rows_returned += len(batch["pid"])

    def embed(
        self, items: Sequence[Item], method: Method, segmenter: Segmenter, *, cache: Cache, progress: bool
    ) -> None:
        self.embed_methods([(method, items)], segmenter, cache=cache, progress=progress)

    def embed_methods(
        self,
        jobs: Sequence[tuple[Method, Sequence[Item]]],
        segmenter: Segmenter,
        *,
        cache: Cache,
        progress: bool,
    ) -> None:
        """The features of several methods (each with the items it lacks) in one pass over the
        union of their items: one actor pool, each image read once."""
        methods = [m for m, _ in jobs]
        for m in methods:  # export (and check) each ONNX graph once, here, rather than in every actor
            m.use_model_folder(cache.models_dir)
            m.compile()
        need: dict[str, list[str]] = {}
        paths: dict[str, str] = {}
        for j, (_, items) in enumerate(jobs):
            for it in items:
                need.setdefault(it.sha256, ["0"] * len(jobs))[j] = "1"
                paths[it.sha256] = str(it.path)
        rows = [{"path": paths[k], "sha256": k, "need": "".join(n)} for k, n in need.items()]
        kwargs = {"methods": methods, "segmenter": segmenter, "cache_root": str(cache.root)}
        out = self._map(_EmbedWorker, rows, min(m.batch_size for m in methods), kwargs)
        stores = [cache.features(m.identity(), segmenter.identity()) for m in methods]
        names = "+".join(m.name for m in methods)
        bar = progress_bar(total=len(rows), desc=f"embedding ({names}/{segmenter.name}, ray)", enabled=progress)
        pending: list[tuple[list[str], list[np.ndarray]]] = [([], []) for _ in methods]

        def flush(j: int, least: int) -> None:
            keys, feats = pending[j]
            if keys and len(keys) >= least:
                stores[j].write(keys, np.stack(feats))
                pending[j] = ([], [])

        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):  # blocks as they finish
            for j in range(len(methods)):
                for key, cell, shape in zip(batch["sha256"], batch[f"f{j}"], batch[f"shape{j}"], strict=True):
                    if len(cell):
                        dims = tuple(int(d) for d in str(shape).split(","))
                        pending[j][0].append(str(key))
                        pending[j][1].append(np.frombuffer(cell, dtype=np.float32).reshape(dims))
                flush(j, RESULT_ROWS)
            self._received(batch)
            bar.update(len(batch["sha256"]))
        for j in range(len(methods)):
            flush(j, 1)
        bar.close()
