"""How products are drawn on the participant page: the reference, a grid's products in one row,
and the CSS that keeps a set one row on a phone. Images come as thumbnails rendered at the widths
used here (survey/study/media.py renders them at build time: media.WIDTHS)."""

from __future__ import annotations

import streamlit as st

from survey.study import media, texts

PHONE_CSS = """<style>
@media (max-width: 640px) {
  [class*="st-key-set-"] [data-testid="stHorizontalBlock"] { flex-wrap: nowrap !important; gap: 0.25rem !important; }
  [class*="st-key-set-"] [data-testid="stColumn"] {
    min-width: 0 !important; flex: 1 1 0 !important; width: auto !important; }
  [class*="st-key-set-"] img { width: 100% !important; height: auto !important; }
  [class*="st-key-set-"] [data-testid="stImage"], [class*="st-key-set-"] [data-testid="stImageContainer"] {
    width: 100% !important; }
  .st-key-reference img { width: 110px !important; height: auto !important; }
}
</style>"""


def phone_layout() -> None:
    """The phone CSS, once per page run."""
    st.html(PHONE_CSS)


def grid_row(
    paths: tuple[str, ...],
    px: int,
    t: texts.Catalog,
    *,
    numbered: bool = False,
    key: str = "set-0",
    set_label: str | None = None,
) -> None:
    """One grid's products in a row, each shown ``px`` wide (on a phone: still one row, narrower).
    Each image's text alternative says where it stands ("Recommended product 3 of 5", "Set A:
    product 3 of 5"), never what it shows or which condition made it (blinding)."""
    with st.container(key=key):
        for i, (col, path) in enumerate(zip(st.columns(len(paths), gap="small"), paths, strict=True)):
            caption = str(i + 1) if numbered else None
            place = {"number": i + 1, "total": len(paths)}
            alt = t.fmt("alt_set_item", set=set_label, **place) if set_label else t.fmt("alt_recommended", **place)
            col.image(media.thumbnail(path, px), width=px, output_format="JPEG", caption=caption, alt=alt)


def reference(
    path: str, px: int, t: texts.Catalog, *, key: str = "reference", label: str | None = None, alt: str | None = None
) -> None:
    """The product the participant judges against, ``px`` wide, under ``label`` (default: Product),
    with the text alternative ``alt`` (default: "The product to compare with")."""
    with st.container(key=key):
        st.markdown(f"**{label or t['product']}**")
        st.image(media.thumbnail(path, px), width=px, output_format="JPEG", alt=alt or t["alt_product"])
