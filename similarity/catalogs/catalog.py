"""Product catalogs: a ``manifest.csv`` or a folder of category sub-folders.

Manifest format (paths relative to the manifest)::

    file,item_id,category[,group][,any other column kept as metadata]

A row may give ``image_url`` (http/https) instead of ``file``; such images are read from the
image store that ``lookalike fetch`` fills (:mod:`similarity.catalogs.fetch`), and a URL that could not
be fetched is skipped with its status. ``feed="merchant"`` reads a Google Merchant Center feed
instead (:mod:`similarity.catalogs.feeds`).
``group`` marks photos of the same physical product (ground truth for evaluation).
Structural problems (missing column, duplicate ``item_id``, missing file) raise
:class:`CatalogError` naming the row and the fix; images that exist but cannot be
decoded are skipped and listed in :attr:`Catalog.skipped` with the reason.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from similarity.catalogs.fetch import Fetcher, FetchPolicy, FetchReport, ImageStore, check_url
from similarity.errors import UserError
from similarity.images import UnreadableImage, file_sha256, load_rgb
from similarity.progress import progress_iter

REQUIRED_COLUMNS = ("item_id", "category")
IMAGE_COLUMNS = ("file", "image_url")  # one of them
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


class CatalogError(UserError, ValueError):
    """A catalog that cannot be loaded as given; the message names the row and the fix."""


@dataclass(frozen=True)
class Item:
    item_id: str
    path: Path
    category: str
    group: str | None = None
    sha256: str = ""
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    where: str
    reason: str


@dataclass(frozen=True)
class Catalog:
    root: Path
    items: tuple[Item, ...]
    skipped: tuple[Skipped, ...] = ()

    @property
    def categories(self) -> list[str]:
        return sorted({it.category for it in self.items})

    def in_category(self, category: str) -> list[Item]:
        return [it for it in self.items if it.category == category]


def load_catalog(
    source: str | Path,
    *,
    verify_images: bool = True,
    progress: bool = False,
    feed: str = "manifest",
    images: ImageStore | None = None,
) -> Catalog:
    """Load a catalog from a manifest CSV file, a product feed (``feed="merchant"``) or a folder.

    A folder containing ``manifest.csv`` is read through it; any other folder is read as
    ``<category>/<image>`` with the file stem as ``item_id``.
    With ``verify_images`` every local image is decoded once; undecodable ones are skipped.
    Rows with ``image_url`` need ``images``, the store their URLs were fetched into.
    """
    rows, root = catalog_rows(source, feed=feed)
    return _build(rows, root, verify_images=verify_images, progress=progress, images=images)


def catalog_rows(source: str | Path, *, feed: str = "manifest") -> tuple[list[tuple[str, dict[str, str]]], Path]:
    """The rows of a catalog (``(where, row)``) and the folder its paths are relative to."""
    from similarity.catalogs.feeds import FEEDS, read_merchant_feed

    if feed not in FEEDS:
        raise CatalogError(f"unknown feed format '{feed}'; valid: {', '.join(FEEDS)}")
    source = Path(source)
    if feed == "merchant":
        if not source.is_file():
            raise CatalogError(f"{source}: no such feed file; --feed merchant needs the feed's path")
        return read_merchant_feed(source), source.parent
    if source.is_dir() and (source / "manifest.csv").is_file():
        source = source / "manifest.csv"
    if source.is_file():
        return _read_manifest(source), source.parent
    if source.is_dir():
        return _scan_folder(source), source
    raise CatalogError(f"{source}: no such manifest file or catalog folder")


def image_urls(rows: list[tuple[str, dict[str, str]]]) -> list[str]:
    """The ``image_url`` of every row that has one (checked to be http/https), in order."""
    return [check_url(row["image_url"], where) for where, row in rows if row.get("image_url") and not row.get("file")]


def _read_manifest(path: Path) -> list[tuple[str, dict[str, str]]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if not any(c in header for c in IMAGE_COLUMNS):
            missing.insert(0, "file")
        if missing:
            raise CatalogError(
                f"{path}: missing column(s) {', '.join(missing)}; the header must contain "
                "file (or image_url),item_id,category (optional: group, plus any metadata columns)"
            )
        rows = []
        for lineno, raw in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            rows.append((f"{path.name} line {lineno}", row))
    if not rows:
        raise CatalogError(f"{path}: the manifest has a header but no rows; add one row per image")
    return rows


def _scan_folder(root: Path) -> list[tuple[str, dict[str, str]]]:
    rows = []
    for cat_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for img in sorted(cat_dir.iterdir()):
            if img.suffix.lower() in IMAGE_SUFFIXES:
                rel = img.relative_to(root).as_posix()
                rows.append((rel, {"file": rel, "item_id": f"{cat_dir.name}/{img.stem}", "category": cat_dir.name}))
    if not rows:
        raise CatalogError(
            f"{root}: no images found; give a manifest.csv or a folder of category "
            f"sub-folders holding images ({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return rows


def _build(
    rows: list[tuple[str, dict[str, str]]],
    root: Path,
    *,
    verify_images: bool,
    progress: bool,
    images: ImageStore | None,
) -> Catalog:
    items: list[Item] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for where, row in progress_iter(rows, desc="loading catalog", unit="row", enabled=progress):
        for col in REQUIRED_COLUMNS:
            if not row.get(col):
                raise CatalogError(f"{where}: empty '{col}'; every row needs file (or image_url), item_id and category")
        if not row.get("file") and not row.get("image_url"):
            raise CatalogError(f"{where}: empty 'file' and 'image_url'; give the image's path or its http(s) URL")
        item_id = row["item_id"]
        if item_id in seen:
            raise CatalogError(
                f"{where}: duplicate item_id '{item_id}' (first at {seen[item_id]}); "
                "give every image its own item_id (use the 'group' column for photos of one product)"
            )
        seen[item_id] = where
        meta = {k: v for k, v in row.items() if k not in ("file", *REQUIRED_COLUMNS, "group")}
        if not row.get("file"):
            fetched = _fetched(where, row["image_url"], images)
            if isinstance(fetched, Skipped):
                skipped.append(fetched)
            else:
                blob, sha = fetched
                items.append(Item(item_id, blob, row["category"], row.get("group") or None, sha, meta))
            continue
        path = (root / row["file"]).resolve()
        if not path.is_file():
            raise CatalogError(f"{where}: file '{row['file']}' not found at {path}; paths are relative to the manifest")
        if verify_images:
            try:
                load_rgb(path)
            except UnreadableImage as exc:
                skipped.append(Skipped(where, str(exc)))
                continue
        items.append(
            Item(
                item_id=item_id,
                path=path,
                category=row["category"],
                group=row.get("group") or None,
                sha256=file_sha256(path),
                meta=meta,
            )
        )
    if not items:
        raise CatalogError(f"{root}: no usable images ({len(skipped)} skipped); see the skipped list")
    return Catalog(root=root, items=tuple(items), skipped=tuple(skipped))


def _fetched(where: str, url: str, images: ImageStore | None) -> tuple[Path, str] | Skipped:
    """The stored image of a fetched URL and its SHA-256, or why it is skipped; unfetched URLs are an error."""
    check_url(url, where)
    if images is None:
        raise CatalogError(f"{where}: image_url rows need an image store; fetch them with `lookalike fetch` first")
    st = images.status(url)
    if st is None:
        raise CatalogError(
            f"{where}: {url} has not been fetched; run `lookalike fetch --catalog ...` (build fetches it itself)"
        )
    if not st.ok or st.sha256 is None:
        return Skipped(where, f"{url}: {st.status}" + (f" ({st.detail})" if st.detail else ""))
    return images.blob_path(st.sha256), st.sha256


def fetch_and_load(
    source: str | Path,
    *,
    images: ImageStore,
    feed: str = "manifest",
    progress: bool = False,
    policy: FetchPolicy | None = None,
) -> tuple[Catalog, FetchReport | None]:
    """Fetch the catalog's image URLs the store lacks (None: it has none), then load it."""
    rows, _ = catalog_rows(source, feed=feed)
    urls = image_urls(rows)
    report = Fetcher(images, policy).fetch(urls, progress=progress) if urls else None
    return load_catalog(source, feed=feed, images=images, progress=progress), report
