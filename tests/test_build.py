from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from db.models import CatalogItem, Condition, Grid, GridCondition, Study
from similarity.weights import WeightsUnavailable, clip_spec
from survey.study.build import StudyExists, build_study
from survey.study.config import Component, ConfigError, StudyConfig
from tests.helpers import catalog_subset


def test_built_study_has_every_condition_and_a_grid_per_reference(study_db):
    _, make_session, result = study_db
    assert result.conditions == 4 and result.references == 8
    with make_session() as s:
        conds = {(c.method, c.segmenter) for c in s.scalars(select(Condition))}
        assert conds == {(m, g) for m in ("ssim", "efficientnet") for g in ("none", "u2netp")}
        grids = s.scalars(select(Grid).where(Grid.kind == "condition")).all()
        assert len(grids) == result.grids <= 4 * 8
        items = {i.id: i for i in s.scalars(select(CatalogItem))}
        refs = {g.reference_id for g in grids}
        assert len(refs) == 8
        for g in grids:
            ref = items[g.reference_id]
            assert ref.meta["view"] == "packshot"
            assert len(g.item_ids) == 5 and g.reference_id not in g.item_ids
            assert {items[i].category for i in g.item_ids} == {ref.category}
            assert len(g.id) == 16 and int(g.id, 16) >= 0  # opaque hex token
        # one attention-check grid per reference, of another category, with no producing condition
        catch = s.scalars(select(Grid).where(Grid.kind == "catch")).all()
        assert len(catch) == 8
        for g in catch:
            assert {items[i].category for i in g.item_ids}.isdisjoint({items[g.reference_id].category})
            assert s.scalar(select(func.count()).select_from(GridCondition).where(GridCondition.grid_id == g.id)) == 0
        # every condition has exactly one grid per reference
        per = s.execute(
            select(GridCondition.condition_id, Grid.reference_id).join(Grid, Grid.id == GridCondition.grid_id)
        ).all()
        assert len(per) == len(set(per)) == 4 * 8


def _one_category_catalog(tmp_path, n=6):
    rows = []
    for k in range(n):
        Image.new("RGB", (64, 64), (40 * k, 255 - 40 * k, 128)).save(tmp_path / f"{k}.png")
        rows.append([f"{k}.png", f"item{k}", "mugs"])
    with open(tmp_path / "manifest.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["file", "item_id", "category"], *rows])
    return tmp_path / "manifest.csv"


@pytest.mark.slow  # a real build with EfficientNet weights
def test_conditions_with_the_same_top5_share_one_grid(tmp_path, make_session):
    # 6 items in the only category: every condition's top-5 is "all the others"
    config = StudyConfig(
        name="share",
        catalog=str(_one_category_catalog(tmp_path)),
        methods=(Component("ssim"), Component("efficientnet")),
        segmenters=(Component("none"),),
        references_per_category=2,
    )
    result = build_study(make_session, config, progress=False)
    assert result.grids == 2 and result.conditions == 2
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(GridCondition)) == 4
        for g in s.scalars(select(Grid).where(Grid.kind == "condition")):
            links = s.scalars(select(GridCondition).where(GridCondition.grid_id == g.id)).all()
            assert len(links) == 2 and all(len(link.scores) == 5 for link in links)


def test_existing_study_needs_replace(tmp_path, make_session):
    config = StudyConfig(
        name="x",
        catalog=str(_one_category_catalog(tmp_path)),
        methods=(Component("ssim"),),
        segmenters=(Component("none"),),
    )
    build_study(make_session, config, progress=False)
    with pytest.raises(StudyExists, match="--replace"):
        build_study(make_session, config, progress=False)
    build_study(make_session, config, replace=True, progress=False)
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(Study)) == 1


def test_missing_weights_fail_before_anything_is_written(tmp_path, make_session):
    if clip_spec().path() is not None:
        pytest.skip("CLIP weights are cached on this machine")
    config = StudyConfig(
        name="c",
        catalog=str(_one_category_catalog(tmp_path)),
        methods=(Component("clip"),),
        segmenters=(Component("none"),),
    )
    with pytest.raises(WeightsUnavailable):
        build_study(make_session, config, progress=False)
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(Study)) == 0


def test_config_errors_name_the_field(make_session):
    unknown = StudyConfig(name="x", catalog="c", methods=(Component("sift"),))  # not checked when served
    with pytest.raises(ConfigError, match="methods: unknown name 'sift'; valid: clip, efficientnet, ssim"):
        build_study(make_session, unknown, progress=False)
    bad_option = StudyConfig(name="x", catalog="c", methods=(Component("ssim", {"sigmaa": 2}),))
    with pytest.raises(
        ConfigError,
        match=r"methods: method 'ssim' has no option\(s\) sigmaa; "
        r"options: K1, K2, color, sigma, size",
    ):
        build_study(make_session, bad_option, progress=False)
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(Study)) == 0
    with pytest.raises(ConfigError, match="k: must be at least 1"):
        StudyConfig(name="x", catalog="c", k=0)
    assert Component.parse("ssim:size=96,color=true") == Component("ssim", {"size": 96, "color": True})
    with pytest.raises(ConfigError, match="key=value"):
        Component.parse("ssim:size")


def test_segmentations_masks_and_objective_metrics_are_stored(study_db):
    from db.models import ObjectiveMetric, Segmentation

    _, make_session, _ = study_db
    with make_session() as s:
        segs = s.scalars(select(Segmentation)).all()
        n_items = s.scalar(select(func.count()).select_from(CatalogItem))
        assert len(segs) == 2 * n_items
        u2 = [x for x in segs if x.segmenter == "u2netp"]
        assert all(x.mask_path and Path(x.mask_path).is_file() for x in u2)
        assert all(0 < x.coverage < 1 for x in u2)
        assert all(x.mask_path is None and x.coverage == 1.0 for x in segs if x.segmenter == "none")
        metrics = s.scalars(select(ObjectiveMetric)).all()
        assert len(metrics) == 4
        # every product has a packshot and a lifestyle photo: one relevant item per query
        assert all(m.queries == n_items and 0 <= m.recall_at_1 <= m.recall_at_5 <= 1 for m in metrics)


@pytest.mark.slow  # a real build with U2-Net weights
def test_masks_are_reused_by_the_next_build(tmp_path, make_session, small_catalog, monkeypatch):
    from similarity.segmenters import U2NetSegmenter

    config = StudyConfig(
        name="m",
        catalog=str(catalog_subset(small_catalog, tmp_path)),  # one category: 16 photos to segment
        methods=(Component("ssim"),),
        segmenters=(Component("u2netp"),),
        references_per_category=1,
    )
    build_study(make_session, config, cache_dir=tmp_path / "cache", progress=False)

    def fail(self, images):
        raise AssertionError("segmented again although every mask is stored")

    monkeypatch.setattr(U2NetSegmenter, "masks", fail)
    build_study(make_session, config, replace=True, cache_dir=tmp_path / "cache", progress=False)


def test_build_over_a_catalog_with_a_corrupt_file_completes_and_reports_it(tmp_path, make_session):
    manifest = _one_category_catalog(tmp_path, n=7)
    (tmp_path / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    config = StudyConfig(
        name="c",
        catalog=str(manifest),
        methods=(Component("ssim"),),
        segmenters=(Component("none"),),
        references_per_category=2,
    )
    result = build_study(make_session, config, progress=False)
    assert [s.where for s in result.skipped] == ["manifest.csv line 5"]
    assert "cannot decode" in result.skipped[0].reason
    with make_session() as s:
        assert s.scalar(select(func.count()).select_from(CatalogItem)) == 6
        assert "item3" not in set(s.scalars(select(CatalogItem.item_id)))
