"""Thumbnails (survey/study/media.py): rendered at build time at the widths the page shows, named by the
photo's content hash, handed to Streamlit as bytes it serves without resizing or re-encoding; a
study built without them still works (rendered on first use, or by `lookalike thumbnails`)."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from sqlalchemy import select

from db.models import CatalogItem, Grid
from similarity.images import file_sha256
from survey.study import media
from tests.apptest import app, click


def _photo(manifest):
    return next(p for p in sorted(manifest.parent.rglob("*")) if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def _study_paths(make_session, study_id: int) -> set[str]:
    with make_session() as s:
        ids = set()
        for ref, items in s.execute(select(Grid.reference_id, Grid.item_ids).where(Grid.study_id == study_id)):
            ids |= {ref, *items}
        return set(s.scalars(select(CatalogItem.path).where(CatalogItem.id.in_(ids))))


def test_build_renders_every_shown_photo_at_every_width_by_content_hash(tiny_study, tmp_path):
    root = tmp_path / "media"
    _, make_session, study = tiny_study(protocols=("rating",))
    with make_session() as s:
        photos = media.study_photos(s, study.id)
    assert {p for p, _ in photos} == _study_paths(make_session, study.id)
    assert all(sha == file_sha256(p) for p, sha in photos)
    assert media.build_thumbnails(root, photos) == len(photos) * len(media.WIDTHS)
    for path, sha in photos:
        for w in media.WIDTHS:
            thumb = media.thumbnail_path(root, sha, w)
            assert re.fullmatch(r"[0-9a-f]{64}-\d+\.jpg", thumb.name)  # nothing but the photo's hash and width
            img = Image.open(thumb)
            assert img.format == "JPEG" and max(img.size) <= w and w in img.size  # fits, and fills, the width
            with Image.open(path) as src:  # the aspect ratio is kept (within a pixel of rounding)
                assert abs(img.size[0] / img.size[1] - src.size[0] / src.size[1]) < 2 / min(img.size)
    assert media.build_thumbnails(root, photos) == 0  # already there: nothing rendered again


def test_streamlit_serves_the_thumbnail_bytes_as_they_are(small_catalog):
    """What the page hands st.image is neither resized nor re-encoded (Streamlit's own check)."""
    from streamlit.elements.lib.image_utils import _ensure_image_size_and_format
    from streamlit.elements.lib.layout_utils import LayoutConfig

    path = _photo(small_catalog)
    for w in media.WIDTHS:
        data = media.render_thumbnail(path, w)
        assert _ensure_image_size_and_format(data, LayoutConfig(width=w), "JPEG") is data
        # the old way (a larger thumbnail shown narrower) made Streamlit resize and re-encode it
        big = media.render_thumbnail(path, 2 * w)
        assert _ensure_image_size_and_format(big, LayoutConfig(width=w), "JPEG") is not big


def test_thumbnail_needs_the_media_folder_of_the_run(tmp_path, small_catalog):
    path = str(_photo(small_catalog))
    with pytest.raises(RuntimeError, match="media.serving"):
        media.thumbnail(path, 100)
    with media.serving(tmp_path / "m"):
        data = media.thumbnail(path, 100)  # not built: rendered on first use, and stored
    assert Image.open(io.BytesIO(data)).format == "JPEG"
    assert media.thumbnail_path(tmp_path / "m", file_sha256(path), 100).read_bytes() == data


def test_a_study_built_without_thumbnails_is_served_and_the_command_renders_them(tiny_study, monkeypatch, tmp_path):
    from survey.cli import main

    db_path, make_session, study = tiny_study("old", protocols=("rating",))
    home = tmp_path / "home"
    monkeypatch.setenv("LOOKALIKE_HOME", str(home))
    at = app(monkeypatch, db_path, PROLIFIC_PID="old-1")
    at = click(click(at, "I agree, start"), "Start")
    assert not at.exception and any("Screen 1 of" in p.proto.text for p in at.get("progress"))
    shown = list((home / "media").rglob("*.jpg"))
    assert len(shown) == 6  # the reference at 240 and five products at 150, rendered on first use
    assert main(["thumbnails", "--db", str(db_path), "--study", "old"]) == 0
    with make_session() as s:
        photos = media.study_photos(s, study.id)
    assert len(list((home / "media").rglob("*.jpg"))) == len(photos) * len(media.WIDTHS)
