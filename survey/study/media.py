"""The images participants see: thumbnails rendered once, at the widths the page shows them,
stored by content hash, and handed to Streamlit as ready JPEG bytes.

Before, every screen decoded the photos, encoded them as PNG and had Streamlit resize and
re-encode them again on every rerun (a few tens of milliseconds per image, per participant, per
screen). Now ``lookalike build`` renders each image the study shows at each width in
:data:`WIDTHS` into the media folder (``$LOOKALIKE_HOME/media``), named
``<sha256 of the photo>-<width>.jpg``; the page reads those bytes (kept in memory per process)
and Streamlit serves them as they are: a thumbnail is never wider than the width it is shown at,
so Streamlit neither resizes nor re-encodes it.

Blinding: the browser sees Streamlit's media URLs (a hash of the bytes), never these names;
the names themselves carry only the photo's hash, nothing about a method or condition.

A study built before thumbnails existed (or with a page width added later) still works: a
missing thumbnail is rendered on first use, written atomically (several app processes may race
to write the same file; both write identical bytes) and logged, once per file and machine.
``lookalike thumbnails`` renders them all ahead of a launch.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import CatalogItem, Grid
from similarity.files import atomic_write_bytes
from similarity.images import file_sha256, load_rgb

log = logging.getLogger("lookalike.survey")

#: The widths (CSS pixels) at which the participant page shows images: references 240 (rating)
#: and 170 (pairwise, ranking); grid products 150 (rating), 100 (pairwise), 72 (ranking).
WIDTHS: tuple[int, ...] = (240, 170, 150, 100, 72)
JPEG_QUALITY = 88
#: thumbnails kept in memory per process (about 5-15 kB each)
MEMORY_ENTRIES = 8192

_ROOT: ContextVar[Path | None] = ContextVar("lookalike_media_root", default=None)


def thumbnail_path(root: Path, sha256: str, width: int) -> Path:
    """Where the thumbnail of the photo with content hash ``sha256`` at ``width`` is stored."""
    return root / sha256[:2] / f"{sha256}-{width}.jpg"


def render_thumbnail(path: str | Path, width: int) -> bytes:
    """The photo at ``path`` scaled to fit ``width`` x ``width`` (never enlarged), as JPEG bytes."""
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    img = load_rgb(path)
    img.thumbnail((width, width))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def build_thumbnails(
    root: Path, photos: Iterable[tuple[str | Path, str]], *, widths: Iterable[int] = WIDTHS, workers: int = 4
) -> int:
    """Render every ``(path, sha256)`` photo at every width into ``root``, skipping thumbnails
    already there (same content hash). Returns how many were written."""
    todo = {(str(p), sha): None for p, sha in photos}
    sizes = tuple(widths)

    def one(item: tuple[str, str]) -> int:
        path, sha = item
        written = 0
        for w in sizes:
            target = thumbnail_path(root, sha, w)
            if not target.exists():
                atomic_write_bytes(target, render_thumbnail(path, w))
                written += 1
        return written

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # Pillow releases the GIL
        return sum(pool.map(one, todo))


@functools.lru_cache(maxsize=65536)
def _photo_hash(path: str) -> str:
    return file_sha256(path)


@functools.lru_cache(maxsize=MEMORY_ENTRIES)
def _thumbnail(root: str, path: str, width: int) -> bytes:
    target = thumbnail_path(Path(root), _photo_hash(path), width)
    try:
        return target.read_bytes()
    except FileNotFoundError:
        data = render_thumbnail(path, width)
        atomic_write_bytes(target, data)
        log.info("thumbnail %s rendered on first use (run `lookalike thumbnails` before a launch)", target.name)
        return data


@contextmanager
def serving(root: Path) -> Iterator[None]:
    """Within this block (one script run of the app), :func:`thumbnail` reads from ``root``.

    A context variable, not a module setting: each Streamlit script run is its own thread, so two
    sessions (or two AppTests with different settings) never see each other's folder."""
    token = _ROOT.set(root)
    try:
        yield
    finally:
        _ROOT.reset(token)


def thumbnail(path: str, width: int) -> bytes:
    """The JPEG bytes of the photo at ``path`` at ``width``, for ``st.image(..., width=width,
    output_format="JPEG")``; read from the media folder set by :func:`serving`."""
    root = _ROOT.get()
    if root is None:
        raise RuntimeError(
            "survey.study.media.thumbnail() called outside media.serving(): survey/web/app.py sets the folder"
        )
    return _thumbnail(str(root), path, width)


def study_photos(session: Session, study_id: int) -> list[tuple[str, str]]:
    """``(path, sha256)`` of every photo the study shows: its references and every grid's products."""
    used: set[int] = set()
    for reference_id, item_ids in session.execute(
        select(Grid.reference_id, Grid.item_ids).where(Grid.study_id == study_id)
    ):
        used.add(reference_id)
        used.update(item_ids)
    rows = session.execute(
        select(CatalogItem.path, CatalogItem.sha256).where(CatalogItem.study_id == study_id, CatalogItem.id.in_(used))
    )
    return sorted((path, sha) for path, sha in rows)
