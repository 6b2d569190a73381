"""Embedding throughput: JPEG files -> stored EfficientNet-Lite0 embeddings, against the
model's forward pass alone on the same, already decoded and preprocessed batches.

Uses every photo in ../shared/data/grocery (377 real photos). Prints one JSON object last.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import emit, shared_data
from similarity.catalogs.catalog import load_catalog
from similarity.execution.cache import Cache
from similarity.execution.pipeline import feature_matrix
from similarity.images import load_rgb
from similarity.methods import create_method
from similarity.runtime import tune_for_throughput
from similarity.segmenters import create_segmenter


def main() -> None:
    runtime = tune_for_throughput()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=377)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    items = list(load_catalog(shared_data("grocery"), verify_images=False).items[: args.images])
    method = create_method("efficientnet")
    none = create_segmenter("none")
    method.encode(np.stack([method.prepare(load_rgb(items[0].path))] * 2))  # warm-up

    pipeline_s = forward_s = float("inf")
    for _ in range(args.repeat):  # best of N for both, alternating, so drift hits both alike
        with tempfile.TemporaryDirectory() as tmp:  # a fresh, empty cache: everything is computed
            cache = Cache(tmp)
            t0 = time.perf_counter()
            feats = feature_matrix(items, method, none, cache=cache, progress=False)
            pipeline_s = min(pipeline_s, time.perf_counter() - t0)
            stored = sum(cache.get_features(method.identity(), none.identity(), it.sha256) is not None for it in items)
        batches = [
            np.stack([method.prepare(load_rgb(it.path)) for it in items[i : i + method.batch_size]])
            for i in range(0, len(items), method.batch_size)
        ]
        t0 = time.perf_counter()
        forward = np.concatenate([method.encode(b) for b in batches])
        forward_s = min(forward_s, time.perf_counter() - t0)
    assert np.allclose(forward, feats, atol=1e-5), "pipeline and forward-only features differ"
    emit(
        {
            "runtime": runtime,
            "images": len(items),
            "stored": stored,
            "pipeline_img_s": round(len(items) / pipeline_s, 2),
            "forward_only_img_s": round(len(items) / forward_s, 2),
            "ratio": round(forward_s / pipeline_s, 3),
        }
    )


if __name__ == "__main__":
    main()
