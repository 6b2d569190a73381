"""Batched SSIM vs. a plain loop over skimage.metrics.structural_similarity, same pairs.

100 query photos x 100 other gallery photos (real photos from ../shared/data/clothing,
64x64 grayscale, letterboxed), i.e. 10,000 pairs. Also times the self-similarity case
(one set against itself, half the pairs computed). Prints one JSON object last.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import emit, shared_data
from similarity.catalogs.catalog import load_catalog
from similarity.images import letterbox, load_rgb
from similarity.runtime import tune_for_throughput
from similarity.ssim import ssim_matrix


def main() -> None:
    runtime = tune_for_throughput()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100, help="queries and gallery images each (pairs = n*n)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many Lookalike runs")
    args = ap.parse_args()
    from skimage.metrics import structural_similarity

    items = load_catalog(shared_data("clothing"), verify_images=False).items[: 2 * args.n]
    if len(items) < 2 * args.n:
        sys.exit(f"need {2 * args.n} photos, found {len(items)}")
    imgs = np.stack(
        [np.asarray(letterbox(load_rgb(it.path), 64).convert("L"), dtype=np.float64) / 255.0 for it in items]
    )
    q, g = imgs[: args.n], imgs[args.n :]

    t0 = time.perf_counter()
    ref = np.array(
        [
            [
                structural_similarity(
                    x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
                )
                for y in g
            ]
            for x in q
        ]
    )
    skimage_s = time.perf_counter() - t0

    ssim_matrix(q[:2], g[:2])  # warm-up (thread pools, allocator)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ours = ssim_matrix(q, g)
        times.append(time.perf_counter() - t0)
    lookalike_s = min(times)
    t0 = time.perf_counter()
    self_sim = ssim_matrix(q)
    self_s = time.perf_counter() - t0
    self_ref_diff = float(
        np.abs(
            self_sim[:10]
            - np.array(
                [
                    [
                        structural_similarity(
                            x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
                        )
                        for y in q
                    ]
                    for x in q[:10]
                ]
            )
        ).max()
    )
    emit(
        {
            "runtime": runtime,
            "pairs": int(ref.size),
            "skimage_s": round(skimage_s, 3),
            "lookalike_s": round(lookalike_s, 4),
            "speedup": round(skimage_s / lookalike_s, 1),
            "max_abs_diff": float(np.abs(ours - ref).max()),
            "self_pairs": int(args.n * args.n),
            "self_s": round(self_s, 4),
            "self_speedup": round(skimage_s / self_s, 1),
            "self_max_abs_diff": self_ref_diff,
        }
    )


if __name__ == "__main__":
    main()
