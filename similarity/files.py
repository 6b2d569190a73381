"""Writing files so that a reader sees the old state or the whole new file, never half of it.

Used by every cache that several processes may fill at once: masks and feature shards
(:mod:`similarity.execution`), fetched images (:mod:`similarity.catalogs.fetch`) and the
survey's thumbnails (:mod:`survey.study.media`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Create or replace ``path`` with what ``write`` writes to an open binary file.

    The bytes go to a temporary file beside ``path`` that replaces it in one ``os.replace``;
    a failure (or an interrupt) removes the temporary file and leaves ``path`` as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """:func:`atomic_write` of ``data``."""
    return atomic_write(path, lambda fh: fh.write(data))
