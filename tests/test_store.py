"""Feature shards on disk and the block search over them: same answers as in-memory search."""

from __future__ import annotations

import numpy as np
import pytest

from similarity.catalogs.catalog import load_catalog
from similarity.conditions import compute_conditions
from similarity.evaluation.evaluate import exclusion_mask, retrieval_metrics
from similarity.execution.cache import Cache
from similarity.execution.store import FeatureStore
from similarity.images import load_rgb
from similarity.methods import create_method
from similarity.search import rank_category, similarity_slabs
from similarity.segmenters import create_segmenter

KEYS = [f"{i:064x}" for i in range(10)]


def test_shards_round_trip_dedupe_and_ignore_uncommitted(tmp_path):
    store = FeatureStore(tmp_path, "m-1", "s-2")
    feats = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    a = store.write(KEYS[:6], feats[:6])
    assert store.write(KEYS[:6], feats[:6]) == a  # content-addressed: same rows, same shard
    store.write(KEYS[6:], feats[6:])
    assert len(list(tmp_path.rglob("*.npy"))) == 2 and not list(tmp_path.rglob("*.tmp"))
    fresh = FeatureStore(tmp_path, "m-1", "s-2")  # a new reader scans the shards
    order = [KEYS[7], KEYS[0], KEYS[7], KEYS[5]]
    np.testing.assert_array_equal(fresh.read(order), feats[[7, 0, 7, 5]])
    assert fresh.missing([KEYS[1], "f" * 64, "f" * 64, "e" * 64]) == ["f" * 64, "e" * 64]
    with pytest.raises(KeyError, match="no features stored"):
        fresh.read(["f" * 64])
    # A writer killed after the rows but before the keys: the shard does not exist.
    a.with_suffix(".keys").unlink()
    assert FeatureStore(tmp_path, "m-1", "s-2").missing(KEYS) == KEYS[:6]
    with pytest.raises(ValueError, match="SHA-256"):
        store.write(["short"], feats[:1])
    usage = {u.identity: u.entries for u in Cache(tmp_path).usage()}
    assert usage == {"m-1/s-2": 4}


@pytest.mark.parametrize("name", ["ssim", "embedding"])
def test_slabs_equal_the_full_matrix(name):
    rng = np.random.default_rng(1)
    if name == "ssim":
        method = create_method("ssim", size=16)
        feats = rng.random((23, 16, 16), dtype=np.float32)
    else:
        method = create_method("efficientnet", pretrained=None)
        f = rng.normal(size=(23, 8)).astype(np.float32)
        feats = f / np.linalg.norm(f, axis=1, keepdims=True)
    items = list(range(23))
    read = lambda idx: feats[list(idx)]
    full = method.similarity(feats, feats)
    # queries == gallery (diagonal blocks computed symmetrically) and a distinct query list
    for queries in (items, items[5:17]):
        got = [(list(q), s) for q, s in similarity_slabs(method, read, queries, items, block_rows=4, slab_entries=50)]
        assert max(len(q) for q, _ in got) == 2  # 50 entries / 23 gallery items
        assert [i for q, _ in got for i in q] == list(queries)
        np.testing.assert_allclose(np.concatenate([s for _, s in got]), full[list(queries)], atol=1e-6)


@pytest.mark.slow  # the build's search over the small catalog
def test_block_search_equals_in_memory_search(tmp_path, small_catalog):
    catalog = load_catalog(small_catalog)
    method, none = create_method("ssim", size=32), create_segmenter("none")
    refs = [catalog.in_category(c)[i] for c in catalog.categories for i in (0, 3)]
    outputs, _ = compute_conditions(
        catalog, refs, [method], [none], k=5, cache=Cache(tmp_path), progress=False, block_rows=3
    )
    out = outputs[("ssim", "none")]
    expected, parts = [], []
    for cat in catalog.categories:
        gallery = catalog.in_category(cat)
        feats = method.features([load_rgb(it.path) for it in gallery])
        expected += rank_category(method, gallery, feats, [r for r in refs if r.category == cat], k=5)
        groups = [it.group for it in gallery]
        sims = method.similarity(feats, feats)
        parts.append(retrieval_metrics(sims, groups, groups, exclude=exclusion_mask(gallery, gallery, "all")))
    assert [(t.reference, t.item_ids) for t in out.rankings] == [(t.reference, t.item_ids) for t in expected]
    np.testing.assert_allclose([s for t in out.rankings for s in t.scores], [s for t in expected for s in t.scores])
    n = sum(p.queries for p in parts)
    assert out.metrics is not None and out.metrics.queries == n == len(catalog.items)
    assert out.metrics.mean_average_precision == pytest.approx(
        sum(p.mean_average_precision * p.queries for p in parts) / n
    )
    assert out.metrics.recall_at_1 == pytest.approx(sum(p.recall_at_1 * p.queries for p in parts) / n)


@pytest.mark.slow  # the build's search over the small catalog
def test_metric_queries_are_a_seeded_sample_per_category_and_leave_the_grids_alone(tmp_path, small_catalog):
    """With ``metric_queries`` the metrics are those of a seeded sample of each category's grouped
    items (recomputed here in memory on that sample); the references' top-k are unchanged."""
    catalog = load_catalog(small_catalog)
    method, none = create_method("ssim", size=32), create_segmenter("none")
    refs = [catalog.in_category(c)[0] for c in catalog.categories]
    run = lambda **kw: compute_conditions(
        catalog, refs, [method], [none], k=5, cache=Cache(tmp_path), progress=False, block_rows=3, **kw
    )[0][("ssim", "none")]
    full, capped, again, other = (
        run(),
        run(metric_queries=5, seed=1),
        run(metric_queries=5, seed=1),
        run(metric_queries=5, seed=2),
    )
    assert [(t.reference, t.item_ids) for t in capped.rankings] == [(t.reference, t.item_ids) for t in full.rankings]
    assert capped.metrics == again.metrics and capped.metrics != other.metrics  # seeded
    assert full.metrics is not None and full.metrics.queries == len(catalog.items)
    assert capped.metrics is not None and capped.metrics.queries == 5 * len(catalog.categories)
    assert run(metric_queries=0).metrics is None

    from similarity.conditions import _metric_queries

    by_cat = {c: catalog.in_category(c) for c in catalog.categories}
    sample = _metric_queries(by_cat, 5, 1)
    parts = []
    for cat in catalog.categories:
        gallery = catalog.in_category(cat)
        qs = [it for it in gallery if it.item_id in sample]
        assert len(qs) == 5
        feats = method.features([load_rgb(it.path) for it in gallery])
        rows = [gallery.index(q) for q in qs]
        sims = method.similarity(feats[rows], feats)
        groups = [it.group for it in gallery]
        parts.append(retrieval_metrics(sims, [q.group for q in qs], groups, exclude=exclusion_mask(qs, gallery, "all")))
    n = sum(p.queries for p in parts)
    assert capped.metrics.mean_average_precision == pytest.approx(
        sum(p.mean_average_precision * p.queries for p in parts) / n
    )
