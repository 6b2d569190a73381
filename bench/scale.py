"""A study build at catalog scale: N generated product images, SSIM and EfficientNet on raw
images, features on disk and searched in blocks. EfficientNet is Lite0 at its native 224 px
unless ``--efficientnet`` names another configuration (the study default, Lite2 at 384 px, costs
about 3x as much per image; the memory and rate targets are relative, so either shows them).

The catalog is the demo generator's (up to 210 products per category, as many views of each as
N needs), generated once per N in a child process (not timed, not in the peak memory; reused
from --catalog-dir). Every image has a group, so the build's retrieval metrics query up to
``--metric-queries`` of them per category (the study default, 1,000; all-pairs when that is at
least the category's size), besides the references' top-k. Peak resident memory is this process's (``ru_maxrss``); with
``--executor ray`` the models run in Ray worker processes, whose memory is not included, and
starting the local Ray cluster (``cluster_start_s``) is not part of the build's time.
``forward_only_img_s`` is EfficientNet's forward pass alone on the first 256 images, already
decoded and prepared, as bench/embed.py measures it. Prints one JSON object last.
"""

from __future__ import annotations

import argparse
import csv
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import emit

MAX_PRODUCTS = 210  # distinct demo products per category
LITE0 = "efficientnet:variant=lite0,input_size=none"


def generate(out: Path, images: int) -> Path:
    """The demo catalog with at least ``images`` photos, and a manifest of ``images`` of them
    (an equal share per category); returns that manifest."""
    from similarity.catalogs.demo import CATEGORIES, generate_demo_catalog

    per_cat = math.ceil(images / len(CATEGORIES))
    products = min(MAX_PRODUCTS, math.ceil(per_cat / 2))
    manifest = generate_demo_catalog(out, seed=11, per_category=products, extra_views=math.ceil(per_cat / products) - 1)
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    share = [images // len(CATEGORIES) + (i < images % len(CATEGORIES)) for i in range(len(CATEGORIES))]
    keep = [r for c, n in zip(CATEGORIES, share, strict=True) for r in [r for r in rows if r["category"] == c][:n]]
    subset = out / f"scale-{images}.csv"
    with open(subset, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(keep)
    return subset


def forward_only_rate(manifest: Path, spec: str, n: int = 256) -> float:
    import numpy as np

    from similarity.catalogs.catalog import load_catalog
    from similarity.images import load_rgb
    from similarity.methods import create_method
    from survey.study.config import Component

    component = Component.parse(spec)
    method = create_method(component.name, **component.options)
    items = load_catalog(manifest, verify_images=False).items[:n]
    batches = [
        np.stack([method.prepare(load_rgb(it.path)) for it in items[i : i + method.batch_size]])
        for i in range(0, len(items), method.batch_size)
    ]
    method.encode(batches[0][:2])  # warm-up
    t0 = time.perf_counter()
    for b in batches:
        method.encode(b)
    return len(items) / (time.perf_counter() - t0)


def main() -> None:
    from survey.study.config import StudyConfig

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--executor", choices=["local", "ray"], default="local")
    ap.add_argument("--ray-address", help="a running Ray cluster (default: a local one started here)")
    ap.add_argument("--workers", type=int, help="ray: actors per model (default: one per CPU)")
    ap.add_argument("--efficientnet", default=LITE0, help=f"the efficientnet configuration (default {LITE0})")
    ap.add_argument("--catalog-dir", type=Path, help="keep the generated catalog here (reused next time)")
    ap.add_argument(
        "--metric-queries",
        type=int,
        default=StudyConfig.metric_queries_per_category,
        help="grouped items per category that query the build's metrics (default: the study default)",
    )
    ap.add_argument("--generate-only", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate_only:
        print(generate(args.generate_only, args.images))
        return
    from db.engine import make_engine, make_sessionmaker
    from similarity.execution.executors import create_executor
    from similarity.runtime import tune_for_throughput
    from survey.study.build import build_study
    from survey.study.config import Component

    runtime = tune_for_throughput()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cat_dir = args.catalog_dir or root / "catalog"
        cmd = [sys.executable, __file__, "--images", str(args.images), "--generate-only", str(cat_dir)]
        manifest = Path(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip())
        executor = create_executor(args.executor, address=args.ray_address, workers=args.workers)
        t0 = time.perf_counter()
        workers = getattr(executor, "worker_count", 1)  # ray: starts (or joins) the cluster, not timed below
        cluster_s = time.perf_counter() - t0
        sessions = make_sessionmaker(make_engine(f"sqlite:///{root / 'bench.db'}"))
        config = StudyConfig(
            name="scale",
            catalog=str(manifest),
            methods=(Component("ssim"), Component.parse(args.efficientnet)),
            segmenters=(Component("none"),),
            reference_filter={"view": "packshot"},
            metric_queries_per_category=args.metric_queries,
            seed=7,
        )
        t0 = time.perf_counter()
        result = build_study(sessions, config, cache_dir=root / "cache", progress=False, executor=executor)
        build_s = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        forward = forward_only_rate(manifest, args.efficientnet)
    images_per_s = args.images / result.feature_seconds
    emit(
        {
            "runtime": runtime,
            "images": args.images,
            "executor": args.executor,
            "workers": workers,
            "efficientnet": args.efficientnet,
            "cluster_start_s": round(cluster_s, 2),
            "images_per_s": round(images_per_s, 2),
            "forward_only_img_s": round(forward, 2),
            "ratio_to_forward": round(images_per_s / forward, 3),
            "peak_rss_mb": round(peak_mb, 1),
            "metric_queries_per_category": args.metric_queries,
            "search_s": round(result.search_seconds, 2),
            "load_s": round(result.load_seconds, 2),
            "feature_s": round(result.feature_seconds, 2),
            "build_s": round(build_s, 2),
            "grids": result.grids,
        }
    )


if __name__ == "__main__":
    main()
