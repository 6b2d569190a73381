"""Features of one condition (method x segmenter) in shard files, read back in blocks.

A catalog of a million images cannot hold its features in memory (SSIM's 64 x 64 thumbnails
are 16 KB an image) nor in a million small files. Features are therefore written in shards of
a few hundred rows, each a pair of files under the cache::

    features/<method identity>/<segmenter identity>/<digest[:2]>/<digest>.npy    float32 rows
    features/<method identity>/<segmenter identity>/<digest[:2]>/<digest>.keys   their image SHA-256s

``digest`` hashes the shard's keys, so a shard is content-addressed like every other cache
entry: the same images give the same name, and two processes (threads, Ray workers) writing
the same rows write the same file. The ``.npy`` is renamed into place first and the ``.keys``
last; a shard without its keys (a writer killed between the two renames) is ignored, so a kill
at any instant leaves complete shards or none. Readers copy just the rows they ask for out of
a memory map, so reading a block costs memory for the block only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from similarity.files import atomic_write, atomic_write_bytes

KEY_BYTES = 64  # a hex SHA-256


class FeatureStore:
    """The shards of one (method identity, segmenter identity) under a cache root."""

    def __init__(self, root: str | Path, method_identity: str, segmenter_identity: str) -> None:
        self.dir = Path(root) / "features" / method_identity / segmenter_identity
        self._shards: list[Path] = []
        self._index: dict[str, tuple[int, int]] | None = None

    # --- writing -----------------------------------------------------------------------
    def write(self, keys: Sequence[str], features: np.ndarray) -> Path:
        """Store ``features`` (one row per key) as one shard; returns the shard's ``.npy`` path."""
        if len(keys) != len(features) or not len(keys):
            raise ValueError(f"a shard needs one feature row per key and at least one; got {len(keys)} keys")
        bad = [k for k in keys if len(k) != KEY_BYTES]
        if bad:
            raise ValueError(f"keys must be hex SHA-256 digests ({KEY_BYTES} characters); got {bad[0]!r}")
        blob = "".join(keys).encode("ascii")
        digest = hashlib.sha256(blob).hexdigest()
        npy = self.dir / digest[:2] / f"{digest}.npy"
        rows = np.ascontiguousarray(features, dtype=np.float32)
        atomic_write(npy, lambda fh: np.save(fh, rows, allow_pickle=False))
        atomic_write_bytes(npy.with_suffix(".keys"), blob)
        if self._index is not None:
            self._add(npy, list(keys))
        return npy

    # --- reading -----------------------------------------------------------------------
    def _add(self, npy: Path, keys: list[str]) -> None:
        assert self._index is not None
        n = len(self._shards)
        self._shards.append(npy)
        for row, key in enumerate(keys):
            self._index.setdefault(key, (n, row))

    def _loaded(self) -> dict[str, tuple[int, int]]:
        if self._index is None:
            self._index, self._shards = {}, []
            for keys_file in sorted(self.dir.glob("*/*.keys")):
                blob = keys_file.read_bytes().decode("ascii")
                keys = [blob[i : i + KEY_BYTES] for i in range(0, len(blob), KEY_BYTES)]
                self._add(keys_file.with_suffix(".npy"), keys)
        return self._index

    def refresh(self) -> None:
        """Forget the index, so shards written by other processes are seen."""
        self._index = None

    def __contains__(self, key: object) -> bool:
        return key in self._loaded()

    def __len__(self) -> int:
        return len(self._loaded())

    def missing(self, keys: Sequence[str]) -> list[str]:
        """The keys (deduplicated, in first-seen order) that no shard holds."""
        index = self._loaded()
        return list(dict.fromkeys(k for k in keys if k not in index))

    def read(self, keys: Sequence[str]) -> np.ndarray:
        """The feature rows of ``keys``, in order (keys may repeat); raises KeyError for an absent key."""
        index = self._loaded()
        where = []
        for k in keys:
            if k not in index:
                raise KeyError(f"no features stored for image {k} in {self.dir}")
            where.append(index[k])
        if not where:
            return np.zeros((0,), np.float32)
        by_shard: dict[int, list[int]] = {}
        for pos, (shard, _) in enumerate(where):
            by_shard.setdefault(shard, []).append(pos)
        out: np.ndarray | None = None
        for shard, positions in by_shard.items():
            rows = np.load(self._shards[shard], mmap_mode="r", allow_pickle=False)
            if out is None:
                out = np.empty((len(where), *rows.shape[1:]), np.float32)
            out[positions] = rows[[where[p][1] for p in positions]]
            del rows  # unmap: only the copied rows stay resident
        assert out is not None
        return out

    def get(self, key: str) -> np.ndarray | None:
        return self.read([key])[0] if key in self else None

    def rows(self) -> int:
        """Rows stored on disk (an image stored in two shards counts twice)."""
        return sum(f.stat().st_size // KEY_BYTES for f in self.dir.glob("*/*.keys"))
