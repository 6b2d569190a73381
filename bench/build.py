"""A cold build of the demo study (empty cache) and an immediate rebuild of the same study.

Default conditions: ssim and efficientnet (the default, Lite2 at 384 px) x none and u2netp, on the built-in demo
catalog (4 categories x 30 products x 2 photos). Catalog generation is not timed.
Prints one JSON object last.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import emit
from db.engine import make_engine, make_sessionmaker
from similarity.catalogs.demo import generate_demo_catalog
from similarity.runtime import tune_for_throughput
from survey.study.build import build_study
from survey.study.config import StudyConfig


def main() -> None:
    runtime = tune_for_throughput()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--per-category", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = generate_demo_catalog(root / "catalog", seed=7, per_category=args.per_category)
        sessions = make_sessionmaker(make_engine(f"sqlite:///{root / 'bench.db'}"))
        config = StudyConfig(name="bench", catalog=str(manifest), reference_filter={"view": "packshot"}, seed=7)
        t0 = time.perf_counter()
        cold = build_study(sessions, config, cache_dir=root / "cache", progress=False)
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = build_study(sessions, config, replace=True, cache_dir=root / "cache", progress=False)
        warm_s = time.perf_counter() - t0
        assert (cold.grids, cold.conditions) == (warm.grids, warm.conditions)
    emit(
        {
            "runtime": runtime,
            "images": 4 * args.per_category * 2,
            "conditions": cold.conditions,
            "grids": cold.grids,
            "cold_s": round(cold_s, 2),
            "warm_s": round(warm_s, 2),
            "warm_over_cold": round(warm_s / cold_s, 4),
        }
    )


if __name__ == "__main__":
    main()
