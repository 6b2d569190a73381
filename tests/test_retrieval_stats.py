"""Bootstrap intervals of retrieval metrics: against scipy, by simulation, and the report around them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from similarity.evaluation.evaluate import EvaluationError, EvaluationResult, metrics_of, query_scores
from similarity.evaluation.report import format_report, report_json, resolve_compare, summarise
from similarity.evaluation.retrieval_stats import (
    QueryScores,
    bootstrap_means,
    bootstrap_metrics,
    breakdown,
    paired_difference,
)


def _scores(n: int, rng: np.random.Generator, p: float = 0.6, prefix: str = "q") -> QueryScores:
    h5 = (rng.random(n) < p).astype(float)
    h1 = h5 * (rng.random(n) < 0.6)
    ap = np.clip(h1 * 0.8 + h5 * 0.1 + rng.random(n) * 0.1, 0, 1)
    return QueryScores(tuple(f"{prefix}{i}" for i in range(n)), h1, h5, ap)


def test_interval_matches_scipy_percentile_bootstrap():
    s = _scores(300, np.random.default_rng(1))
    ci = bootstrap_metrics(s, resamples=20000, seed=3)
    for values, iv in [
        (s.hit_at_1, ci.recall_at_1),
        (s.hit_at_5, ci.recall_at_5),
        (s.average_precision, ci.mean_average_precision),
    ]:
        ref = stats.bootstrap((values,), np.mean, method="percentile", n_resamples=20000, rng=np.random.default_rng(9))
        assert iv.estimate == pytest.approx(values.mean())
        assert iv.low == pytest.approx(ref.confidence_interval.low, abs=0.006)
        assert iv.high == pytest.approx(ref.confidence_interval.high, abs=0.006)
    assert ci.queries == 300 and ci.level == 0.95 and ci.seed == 3


def test_paired_difference_matches_scipy_paired_bootstrap():
    rng = np.random.default_rng(2)
    a = _scores(250, rng)
    flip = rng.random(250) < 0.15  # b differs from a on some queries only: strongly paired
    b = QueryScores(
        a.query_ids,
        np.where(flip, 1 - a.hit_at_1, a.hit_at_1),
        np.where(flip, 1 - a.hit_at_5, a.hit_at_5),
        a.average_precision,
    )
    d = paired_difference(a, b, resamples=20000, seed=4)
    ref = stats.bootstrap(
        (a.hit_at_5, b.hit_at_5),
        lambda x, y: np.mean(x - y),
        paired=True,
        method="percentile",
        n_resamples=20000,
        rng=np.random.default_rng(5),
    )
    assert d.recall_at_5.estimate == pytest.approx(a.hit_at_5.mean() - b.hit_at_5.mean())
    assert d.recall_at_5.low == pytest.approx(ref.confidence_interval.low, abs=0.006)
    assert d.recall_at_5.high == pytest.approx(ref.confidence_interval.high, abs=0.006)
    assert d.mean_average_precision.estimate == 0.0 and d.mean_average_precision.low == 0.0  # identical AP
    # pairing matters: the paired interval is much narrower than one ignoring it
    unpaired = stats.bootstrap(
        (a.hit_at_5, b.hit_at_5),
        lambda x, y: np.mean(x) - np.mean(y),
        method="percentile",
        n_resamples=5000,
        rng=np.random.default_rng(6),
    )
    assert d.recall_at_5.high - d.recall_at_5.low < 0.6 * (
        unpaired.confidence_interval.high - unpaired.confidence_interval.low
    )
    # the order of b's queries does not matter
    order = rng.permutation(250)
    b2 = QueryScores(
        tuple(b.query_ids[i] for i in order), b.hit_at_1[order], b.hit_at_5[order], b.average_precision[order]
    )
    assert paired_difference(a, b2, resamples=2000, seed=4) == paired_difference(a, b, resamples=2000, seed=4)


@pytest.mark.parametrize("p, n", [(0.6, 300), (0.3, 120)])
def test_coverage_of_known_bernoulli_recall(p, n):
    """Queries that are hits with known probability p: the 95% interval covers p about 95% of the time."""
    rng = np.random.default_rng(11)
    trials = 600
    covered = 0
    for t in range(trials):
        hits = (rng.random(n) < p).astype(float)
        [iv] = bootstrap_means(hits[None], resamples=1000, level=0.95, seed=t)
        covered += iv.low <= p <= iv.high
    assert 0.925 <= covered / trials <= 0.975, covered / trials


def test_coverage_of_a_known_paired_difference():
    """Condition a hits with p=0.65, b with p=0.55, correlated per query: the interval covers 0.10 ~95%."""
    rng = np.random.default_rng(12)
    n, trials, covered = 250, 500, 0
    for t in range(trials):
        u = rng.random(n)  # a shared query difficulty makes the two conditions correlated
        jitter = rng.random(n) < 0.2
        u_b = np.where(jitter, rng.random(n), u)
        a, b = (u < 0.65).astype(float), (u_b < 0.55).astype(float)
        [iv] = bootstrap_means((a - b)[None], resamples=1000, level=0.95, seed=t)
        covered += iv.low <= 0.10 <= iv.high
    assert 0.925 <= covered / trials <= 0.975, covered / trials


def test_seed_reproduces_and_breakdown_equals_subsets():
    s = _scores(90, np.random.default_rng(3))
    assert bootstrap_metrics(s, seed=1) == bootstrap_metrics(s, seed=1)
    assert bootstrap_metrics(s, seed=1) != bootstrap_metrics(s, seed=2)
    keys = {q: ("odd" if int(q[1:]) % 2 else "even") for q in s.query_ids}
    parts = breakdown(s, keys, resamples=500, seed=1)
    assert list(parts) == ["even", "odd"]
    even = np.array([int(q[1:]) % 2 == 0 for q in s.query_ids])
    assert parts["even"] == bootstrap_metrics(s.subset(even), resamples=500, seed=1)
    assert parts["odd"].queries == 45
    with pytest.raises(ValueError, match="no breakdown key"):
        breakdown(s, {}, resamples=500)


def test_invalid_inputs_are_refused():
    s = _scores(10, np.random.default_rng(4))
    with pytest.raises(ValueError, match="between 0 and 1"):
        bootstrap_metrics(s, level=95)
    with pytest.raises(ValueError, match="at least 100"):
        bootstrap_metrics(s, resamples=10)
    other = _scores(10, np.random.default_rng(4), prefix="x")
    with pytest.raises(ValueError, match="same queries"):
        paired_difference(s, other)
    with pytest.raises(ValueError, match="shape"):
        QueryScores(("a",), np.zeros(2), np.zeros(1), np.zeros(1))
    empty = bootstrap_metrics(QueryScores((), np.zeros(0), np.zeros(0), np.zeros(0)))
    assert empty.queries == 0 and np.isnan(empty.recall_at_5.estimate)


def test_large_query_sets_are_resampled_in_bounded_blocks():
    s = _scores(60_000, np.random.default_rng(5))
    ci = bootstrap_metrics(s, resamples=200, seed=0)
    assert ci.recall_at_5.low < s.hit_at_5.mean() < ci.recall_at_5.high
    assert ci.recall_at_5.high - ci.recall_at_5.low < 0.02


def test_query_scores_agree_with_the_metrics():
    sims = np.array([[0.9, 0.8, 0.7, 0.1], [0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]])
    s = query_scores(sims, ["a", "b", "zzz"], ["a", "x", "a", "b"], query_ids=["A", "B", "Z"])
    assert s.query_ids == ("A", "B")  # Z has no relevant item: not scored
    assert s.hit_at_1.tolist() == [1.0, 0.0] and s.hit_at_5.tolist() == [1.0, 1.0]
    assert s.average_precision == pytest.approx([(1 + 2 / 3) / 2, 1 / 4])
    assert metrics_of(s).mean_average_precision == pytest.approx(((1 + 2 / 3) / 2 + 1 / 4) / 2)


def _result(label: str, s: QueryScores) -> EvaluationResult:
    method, seg = label.split("/")
    return EvaluationResult(method.split(":")[0], seg, metrics_of(s), 1.5, condition=label, scores=s)


def test_report_table_json_and_comparisons():
    rng = np.random.default_rng(6)
    a = _scores(120, rng, p=0.7)
    b = QueryScores(
        a.query_ids,
        a.hit_at_1 * (rng.random(120) < 0.8),
        a.hit_at_5 * (rng.random(120) < 0.8),
        a.average_precision * 0.9,
    )
    results = [_result("efficientnet/none", a), _result("efficientnet:pooling=max/none", b)]
    keys = {q: ("Apple" if int(q[1:]) < 40 else "Milk") for q in a.query_ids}
    rep = summarise(
        results, by="category", keys=keys, compare=[("1", "efficientnet:pooling=max/none")], resamples=500, seed=2
    )
    assert rep.rows[0].intervals == bootstrap_metrics(a, resamples=500, seed=2)
    assert rep.comparisons[0].difference == paired_difference(a, b, resamples=500, seed=2)
    out = json.loads(json.dumps(report_json(rep)))
    r0 = out["results"][0]
    assert r0["condition"] == "efficientnet/none" and r0["recall@5"] == pytest.approx(a.hit_at_5.mean())
    assert r0["ci"]["recall@5"]["low"] <= r0["recall@5"] <= r0["ci"]["recall@5"]["high"]
    assert set(r0["by"]["values"]) == {"Apple", "Milk"} and r0["by"]["values"]["Apple"]["queries"] == 40
    assert out["comparisons"][0]["a"] == "efficientnet/none"
    assert out["comparisons"][0]["difference"]["map"]["estimate"] == pytest.approx(0.1 * a.average_precision.mean())
    assert out["bootstrap"] == {
        "method": "percentile bootstrap over queries (paired for comparisons)",
        "level": 0.95,
        "resamples": 500,
        "seed": 2,
    }
    text = format_report(rep)
    assert "efficientnet:pooling=max/none" in text and "by category" in text and "paired difference" in text
    iv = rep.rows[0].intervals.recall_at_5
    assert f"{iv.estimate:.3f} [{iv.low:.3f}, {iv.high:.3f}]" in text


def test_compare_names_are_checked():
    labels = ["ssim/none", "efficientnet/none"]
    assert resolve_compare(labels, [("2", "ssim/none")]) == [(1, 0)]
    with pytest.raises(EvaluationError, match="names no condition.*1: ssim/none; 2: efficientnet/none"):
        resolve_compare(labels, [("clip/none", "1")])
    with pytest.raises(EvaluationError, match="same condition"):
        resolve_compare(labels, [("1", "ssim/none")])
    with pytest.raises(EvaluationError, match="names no condition"):
        resolve_compare(labels, [("3", "1")])


def test_breakdown_keys_come_from_the_manifest():
    from similarity.catalogs.catalog import load_catalog
    from similarity.evaluation.report import query_keys
    from tests.helpers import shared_data

    cat = load_catalog(shared_data("grocery"), verify_images=False)
    keys = query_keys(cat, "department")
    assert set(keys.values()) == {"Fruit", "Packages", "Vegetables"} and len(keys) == len(cat.items)
    assert query_keys(cat, "category")[cat.items[0].item_id] == cat.items[0].category
    with pytest.raises(
        EvaluationError, match="--by colour: the manifest has no column 'colour'; columns: .*department"
    ):
        query_keys(cat, "colour")
