"""Fetching product images from URLs: every fault a feed meets, ends in its own status; a killed
fetch resumes without fetching again; fetched URLs load as catalog items (manifest and merchant feed)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from similarity.catalogs.catalog import CatalogError, catalog_rows, image_urls, load_catalog
from similarity.catalogs.feeds import FeedError
from similarity.catalogs.fetch import Fetcher, FetchError, FetchPolicy, ImageStore
from tests.fetchserver import FaultServer
from tests.helpers import shared_data

POLICY = FetchPolicy(
    workers=8,
    per_host=4,
    connect_timeout=2,
    read_timeout=0.5,
    deadline=5,
    retries=2,
    backoff=0.01,
    max_redirects=3,
    max_bytes=2 << 20,
)


def _photos(n: int = 3) -> list[Path]:
    return sorted((shared_data("grocery") / "images").glob("*.jpg"))[:n]


#: URL kind -> the status it must end in.
FAULTS = {
    "/img/{a}": "ok",
    "/alias/{a}": "ok",  # the same image under a second URL
    "/redirect/{b}": "ok",
    "/flaky/x": "ok",  # a 500, then a success
    "/missing/x": "http_404",
    "/slow/x": "timeout",
    "/truncated/x": "truncated",
    "/html/x": "not_an_image",
    "/garbage/x": "undecodable",
    "/huge/x": "too_large",
    "/loop/a": "too_many_redirects",
    "/chain/0": "too_many_redirects",
}


def test_every_fault_ends_in_its_status(tmp_path):
    photos = _photos()
    with FaultServer(photos, slow_s=2.0) as srv:
        urls = {k: srv.base + k.format(a=photos[0].name, b=photos[1].name) for k in FAULTS}
        store = ImageStore(tmp_path)
        t0 = time.monotonic()
        report = Fetcher(store, POLICY).fetch(list(urls.values()))
        elapsed = time.monotonic() - t0
        table = {k: report.statuses[u].status for k, u in urls.items()}
        print("\nfault table:\n" + "\n".join(f"  {k:<18} -> {v}" for k, v in table.items()))
        assert table == FAULTS
        st = {k: report.statuses[u] for k, u in urls.items()}
        assert st["/img/{a}"].sha256 == st["/alias/{a}"].sha256  # stored once
        assert len([p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]) == 2  # photo a, photo b
        assert not list((tmp_path / "blobs").rglob(".*"))  # no partial downloads left
        assert st["/flaky/x"].attempts == 2 and srv.hits["/flaky/x"] == 2
        assert srv.hits["/missing/x"] == 1  # a 404 is not retried
        assert srv.hits["/slow/x"] == 1 + POLICY.retries  # timeouts are, with backoff
        assert srv.hits["/loop/a"] == 1 and srv.hits["/loop/b"] == 1  # the loop is seen, not followed
        assert sum(n for p, n in srv.hits.items() if p.startswith("/chain/")) == 1 + POLICY.max_redirects
        assert elapsed < 30
        assert report.counts["ok"] == 4 and len(report.failed) == 8
        # Statuses are files in the store: a new fetcher trusts the ok ones and retries the rest.
        again = Fetcher(ImageStore(tmp_path), POLICY).fetch([urls["/img/{a}"], urls["/missing/x"]])
        assert again.fetched == 1 and srv.hits[f"/img/{photos[0].name}"] == 1 and srv.hits["/missing/x"] == 2


def test_bad_urls_and_limits_are_refused(tmp_path):
    rows = [("m.csv line 2", {"item_id": "a", "category": "c", "image_url": "ftp://host/a.jpg"})]
    with pytest.raises(FetchError, match="m.csv line 2: image_url 'ftp://host/a.jpg' is not an http"):
        image_urls(rows)
    with pytest.raises(FetchError, match="must be positive"):
        FetchPolicy(per_host=0)


def test_one_host_gets_at_most_per_host_requests_at_once(tmp_path):
    photos = _photos(12)
    with FaultServer(photos) as srv:
        srv.delay_s = 0.2
        policy = FetchPolicy(workers=8, per_host=2, read_timeout=5)
        report = Fetcher(ImageStore(tmp_path), policy).fetch([f"{srv.base}/img/{p.name}" for p in photos])
        assert report.counts == {"ok": 12}
        assert srv.max_in_flight == 2  # concurrent, but never more than per_host


_FETCH_SCRIPT = """
import sys
from similarity.catalogs.fetch import Fetcher, FetchPolicy, ImageStore
urls = sys.argv[2:]
Fetcher(ImageStore(sys.argv[1]), FetchPolicy(workers=1, per_host=1)).fetch(urls)
"""


def test_killed_fetch_resumes_without_fetching_again(tmp_path):
    photos = _photos(12)
    with FaultServer(photos) as srv:
        srv.delay_s = 0.15
        urls = [f"{srv.base}/img/{p.name}" for p in photos]
        proc = subprocess.Popen([sys.executable, "-c", _FETCH_SCRIPT, str(tmp_path), *urls])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list((tmp_path / "urls").rglob("*.json"))) < 4:
            assert proc.poll() is None, "the fetch finished before it could be killed"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = {json.loads(p.read_text())["url"] for p in (tmp_path / "urls").rglob("*.json")}
        assert 4 <= len(done) < len(urls)
        before = dict(srv.hits)
        srv.delay_s = 0.0
        report = Fetcher(ImageStore(tmp_path), POLICY).fetch(urls)
        assert report.counts == {"ok": len(urls)} and report.fetched == len(urls) - len(done)
        for url in urls:
            path = url.removeprefix(srv.base)
            assert srv.hits[path] == before.get(path, 0) + (url not in done)  # nothing fetched twice
        assert not list((tmp_path / "blobs").rglob(".*"))


def test_manifest_and_merchant_feed_load_fetched_images(tmp_path):
    photos = _photos(3)
    with FaultServer(photos) as srv:
        a, b, c = (f"{srv.base}/img/{p.name}" for p in photos)
        manifest = tmp_path / "m.csv"
        manifest.write_text(
            f"image_url,item_id,category,group\n{a},i1,fruit,g1\n{b},i2,fruit,g1\n{srv.base}/missing/z,i3,fruit,g2\n"
        )
        feed = tmp_path / "feed.tsv"
        feed.write_text(
            "id\ttitle\timage_link\tadditional_image_link\tproduct_type\titem_group_id\n"
            f"p1\tApple\t{a}\t{b},{c}\tFood > Fruit\tG\n"
            f"p2\tPear\t{c}\t\tFood > Fruit\tG\n"
        )
        store = ImageStore(tmp_path / "store")
        rows, _ = catalog_rows(manifest)
        with pytest.raises(CatalogError, match=r"m.csv line 2: .* has not been fetched; run `lookalike fetch"):
            load_catalog(manifest, images=store)
        Fetcher(store, POLICY).fetch(image_urls(rows) + image_urls(catalog_rows(feed, feed="merchant")[0]))
        cat = load_catalog(manifest, images=store)
        assert [it.item_id for it in cat.items] == ["i1", "i2"]
        assert [s.where for s in cat.skipped] == ["m.csv line 4"] and "http_404" in cat.skipped[0].reason
        assert cat.items[0].path == store.blob_path(cat.items[0].sha256) and cat.items[0].path.is_file()
        merchant = load_catalog(feed, feed="merchant", images=store)
    got = [(it.item_id, it.category, it.group, it.meta["item_group_id"], it.meta["title"]) for it in merchant.items]
    assert got == [
        ("p1", "Food > Fruit", "p1", "G", "Apple"),
        ("p1#1", "Food > Fruit", "p1", "G", "Apple"),
        ("p1#2", "Food > Fruit", "p1", "G", "Apple"),
        ("p2", "Food > Fruit", "p2", "G", "Pear"),
    ]
    assert merchant.items[2].sha256 == merchant.items[3].sha256  # one photo, two products
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tlink\tproduct_type\np1\thttp://x/a.jpg\tFruit\n")
    with pytest.raises(FeedError, match="missing column.s. image_link"):
        load_catalog(bad, feed="merchant", images=store)
    with pytest.raises(CatalogError, match="unknown feed format 'amazon'; valid: manifest, merchant"):
        load_catalog(bad, feed="amazon")


@pytest.mark.slow  # builds a study from the command line
def test_fetch_and_build_a_merchant_feed_from_the_command_line(tmp_path):
    photos = _photos(12)
    env = {**os.environ, "LOOKALIKE_HOME": str(tmp_path / "home"), "LOOKALIKE_OFFLINE": "1"}
    with FaultServer(photos) as srv:
        lines = ["id\timage_link\tadditional_image_link\tgoogle_product_category"]
        for n in range(6):
            a, b = (f"{srv.base}/img/{p.name}" for p in photos[2 * n : 2 * n + 2])
            lines.append(f"p{n}\t{a}\t{b}\t{'Fruit' if n < 3 else 'Dairy'}")
        lines.append(f"p9\t{srv.base}/missing/p9.jpg\t\tDairy")
        feed = tmp_path / "feed.tsv"
        feed.write_text("\n".join(lines) + "\n")
        cli = [sys.executable, "-m", "survey.cli"]
        fetch = subprocess.run(
            [*cli, "fetch", "--catalog", str(feed), "--feed", "merchant", "--quiet"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert fetch.returncode == 1, fetch.stderr  # one URL failed
        assert "13 URLs" in fetch.stdout and "1 http_404, 12 ok" in fetch.stdout
        assert f"http_404            {srv.base}/missing/p9.jpg" in fetch.stdout
        hits = sum(srv.hits.values())
        flags = ["--methods", "ssim", "--segmenters", "none", "--references-per-category", "1", "-k", "2", "--quiet"]
        where = ["--catalog", str(feed), "--feed", "merchant", "--name", "feed", "--db", str(tmp_path / "s.db")]
        build = subprocess.run(
            [*cli, "build", *where, *flags],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert build.returncode == 0, build.stderr
        assert sum(srv.hits.values()) == hits + 1  # only the failed URL was tried again
    con = sqlite3.connect(tmp_path / "s.db")
    assert con.execute("SELECT COUNT(*) FROM catalog_items").fetchone()[0] == 12
    assert con.execute("SELECT COUNT(*) FROM grids WHERE kind = 'condition'").fetchone()[0] == 2
