from __future__ import annotations

import csv

import pytest
from PIL import Image

from similarity.catalogs.catalog import CatalogError, load_catalog
from tests.helpers import shared_data


def _write(tmp_path, rows, header=("file", "item_id", "category")):
    with open(tmp_path / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return tmp_path / "manifest.csv"


def _img(path, color=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), color).save(path)


def test_real_manifest_loads_with_groups_and_metadata():
    cat = load_catalog(shared_data("grocery") / "manifest.csv")
    assert len(cat.items) == 377 and not cat.skipped
    [it] = [i for i in cat.items if i.item_id == "Golden-Delicious_001"]
    assert it.category == "Apple" and it.group == "Golden-Delicious"
    assert it.meta["view"] == "natural" and it.path.is_file() and len(it.sha256) == 64


def test_folder_of_category_subfolders(tmp_path):
    _img(tmp_path / "mugs" / "a.jpg")
    _img(tmp_path / "mugs" / "b.png")
    _img(tmp_path / "chairs" / "c.jpg")
    cat = load_catalog(tmp_path)
    assert cat.categories == ["chairs", "mugs"]
    assert {i.item_id for i in cat.items} == {"mugs/a", "mugs/b", "chairs/c"}


def test_missing_column_names_it(tmp_path):
    _img(tmp_path / "a.jpg")
    m = _write(tmp_path, [["a.jpg", "a"]], header=("file", "item_id"))
    with pytest.raises(CatalogError, match=r"missing column\(s\) category.*header must contain"):
        load_catalog(m)


def test_duplicate_item_id_names_both_rows(tmp_path):
    _img(tmp_path / "a.jpg")
    _img(tmp_path / "b.jpg")
    m = _write(tmp_path, [["a.jpg", "x", "mugs"], ["b.jpg", "x", "mugs"]])
    with pytest.raises(CatalogError, match=r"line 3: duplicate item_id 'x' \(first at manifest.csv line 2\)"):
        load_catalog(m)


def test_missing_file_names_row_and_fix(tmp_path):
    _img(tmp_path / "a.jpg")
    m = _write(tmp_path, [["a.jpg", "a", "mugs"], ["nope.jpg", "b", "mugs"]])
    with pytest.raises(CatalogError, match=r"line 3: file 'nope.jpg' not found.*relative to the manifest"):
        load_catalog(m)


def test_empty_field_is_an_error(tmp_path):
    _img(tmp_path / "a.jpg")
    m = _write(tmp_path, [["a.jpg", "a", ""]])
    with pytest.raises(CatalogError, match=r"line 2: empty 'category'"):
        load_catalog(m)


def test_corrupt_images_are_skipped_and_reported(tmp_path):
    _img(tmp_path / "good.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    full = tmp_path / "full.jpg"
    _img(full)
    (tmp_path / "truncated.jpg").write_bytes(full.read_bytes()[:200])
    m = _write(tmp_path, [["good.jpg", "g", "mugs"], ["text.jpg", "t", "mugs"], ["truncated.jpg", "tr", "mugs"]])
    cat = load_catalog(m)
    assert [i.item_id for i in cat.items] == ["g"]
    assert [s.where for s in cat.skipped] == ["manifest.csv line 3", "manifest.csv line 4"]
    assert all("cannot decode" in s.reason for s in cat.skipped)


def test_nonexistent_source(tmp_path):
    with pytest.raises(CatalogError, match="no such manifest file or catalog folder"):
        load_catalog(tmp_path / "nothing")
