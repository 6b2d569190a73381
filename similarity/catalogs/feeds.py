"""Product feeds: the Google Merchant Center layout read as catalog rows.

``--feed merchant`` reads a feed file (tab-separated, as Merchant Center exports it, or
comma-separated) with the columns ``id``, ``image_link``, ``product_type`` or
``google_product_category`` and optionally ``additional_image_link`` (more photos of the
product, comma-separated) and ``item_group_id``. Each image becomes one catalog row:

- ``item_id``: the product's ``id`` (its main image) or ``id#n`` (its n-th additional image);
- ``image_url``: the image's URL (fetched into the image store by ``lookalike fetch``);
- ``category``: ``product_type`` when given, else ``google_product_category``;
- ``group``: the product's ``id``: its photos are photos of one product (the ground truth of
  ``lookalike evaluate``); ``item_group_id`` (variants of one product) is kept as metadata.
"""

from __future__ import annotations

import csv
from pathlib import Path

from similarity.errors import UserError

FEEDS = ("manifest", "merchant")


class FeedError(UserError, ValueError):
    """A feed that cannot be read as given; the message names the line and the fix."""


def read_merchant_feed(path: Path) -> list[tuple[str, dict[str, str]]]:
    """``(where, row)`` per image of a Merchant Center feed, as catalog manifest rows."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        first = fh.readline()
        fh.seek(0)
        reader = csv.DictReader(fh, delimiter="\t" if "\t" in first else ",")
        header = [h.strip() for h in (reader.fieldnames or [])]
        category_col = next((c for c in ("product_type", "google_product_category") if c in header), None)
        missing = [c for c in ("id", "image_link") if c not in header] + ([] if category_col else ["product_type"])
        if missing:
            raise FeedError(
                f"{path}: missing column(s) {', '.join(missing)}; a merchant feed needs id, image_link and "
                "product_type or google_product_category (optional: additional_image_link, item_group_id)"
            )
        assert category_col is not None
        rows: list[tuple[str, dict[str, str]]] = []
        for lineno, raw in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            where = f"{path.name} line {lineno}"
            pid, category = row.get("id", ""), row.get(category_col, "")
            if not pid or not row.get("image_link") or not category:
                raise FeedError(f"{where}: empty id, image_link or {category_col}; every product needs all three")
            meta = {
                k: v for k, v in row.items() if k not in ("id", "image_link", "additional_image_link", category_col)
            }
            extra = [u.strip() for u in row.get("additional_image_link", "").split(",") if u.strip()]
            for n, url in enumerate([row["image_link"], *extra]):
                item_id = pid if n == 0 else f"{pid}#{n}"
                rows.append((where, {"item_id": item_id, "image_url": url, "category": category, "group": pid, **meta}))
    if not rows:
        raise FeedError(f"{path}: the feed has a header but no products; add one line per product")
    return rows
