"""Product catalogs: a ``manifest.csv`` or a folder of category sub-folders.

Manifest format (paths relative to the manifest)::

    file,item_id,category[,group][,any other column kept as metadata]

``group`` marks photos of the same physical product (ground truth for evaluation).
Structural problems (missing column, duplicate ``item_id``, missing file) raise
:class:`CatalogError` naming the row and the fix; images that exist but cannot be
decoded are skipped and listed in :attr:`Catalog.skipped` with the reason.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .images import UnreadableImage, file_sha256, load_rgb

REQUIRED_COLUMNS = ("file", "item_id", "category")
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


def load_catalog(source: str | Path, *, verify_images: bool = True) -> Catalog:
    """Load a catalog from a manifest CSV file or from a folder.

    A folder containing ``manifest.csv`` is read through it; any other folder is read as
    ``<category>/<image>`` with the file stem as ``item_id``.
    With ``verify_images`` every image is decoded once; undecodable ones are skipped.
    """
    source = Path(source)
    if source.is_dir() and (source / "manifest.csv").is_file():
        source = source / "manifest.csv"
    if source.is_file():
        rows, root = _read_manifest(source), source.parent
    elif source.is_dir():
        rows, root = _scan_folder(source), source
    else:
        raise CatalogError(f"{source}: no such manifest file or catalog folder")
    return _build(rows, root, verify_images=verify_images)


def _read_manifest(path: Path) -> list[tuple[str, dict[str, str]]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise CatalogError(
                f"{path}: missing column(s) {', '.join(missing)}; the header must contain "
                f"{','.join(REQUIRED_COLUMNS)} (optional: group, plus any metadata columns)"
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


def _build(rows: list[tuple[str, dict[str, str]]], root: Path, *, verify_images: bool) -> Catalog:
    items: list[Item] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        for col in REQUIRED_COLUMNS:
            if not row.get(col):
                raise CatalogError(f"{where}: empty '{col}'; every row needs file, item_id and category")
        item_id = row["item_id"]
        if item_id in seen:
            raise CatalogError(
                f"{where}: duplicate item_id '{item_id}' (first at {seen[item_id]}); "
                "give every image its own item_id (use the 'group' column for photos of one product)"
            )
        seen[item_id] = where
        path = (root / row["file"]).resolve()
        if not path.is_file():
            raise CatalogError(f"{where}: file '{row['file']}' not found at {path}; paths are relative to the manifest")
        if verify_images:
            try:
                load_rgb(path)
            except UnreadableImage as exc:
                skipped.append(Skipped(where, str(exc)))
                continue
        meta = {k: v for k, v in row.items() if k not in (*REQUIRED_COLUMNS, "group")}
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
