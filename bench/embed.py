"""Embedding throughput of each runtime: JPEG files -> stored embeddings of the default ``efficientnet``
(Lite2 at 384 px), against the forward pass alone on the same, already decoded and preprocessed
batches; torch and ONNX Runtime side by side.

Uses every photo in ../shared/data/grocery (377 real photos). Per runtime: ``export_s`` (ONNX only:
exporting and checking the graph, once per method and machine; not in the rates), ``pipeline_img_s``
(the build's path: decoding in threads, the model here, features written to a fresh cache),
``forward_only_img_s``, the model's multiply-adds per image (torch's FlopCounterMode on the torch
network) and the GFLOP/s the forward pass reaches, and the lowest cosine between the runtimes'
features; and numpy's float32 matrix product rate on the same threads (``numpy_matmul_gflop_s``), the
machine's speed that day. Prints one JSON object last.
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def multiply_adds_per_image(method) -> int:
    """Multiply-adds of one image through the torch network (FlopCounterMode counts 2 FLOPs per MAC)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros((1, 3, method.prepare_size(), method.prepare_size()))
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        method._encode(x)
    return int(counter.get_total_flops()) // 2


def matmul_gflop_s(n: int = 2048, repeat: int = 10) -> float:
    """numpy's float32 matrix product on this machine's threads: the reference the forward rate is
    compared with (shared cores' speed varies from day to day)."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        a @ a
    return 2 * n**3 * repeat / (time.perf_counter() - t0) / 1e9


def measure(runtime: str, items, batches_of, repeat: int, models: Path) -> tuple[dict, np.ndarray]:
    method = create_method("efficientnet", runtime=runtime)
    method.set_threads(os.cpu_count() or 1)
    method.use_model_folder(models)
    t0 = time.perf_counter()
    method.compile()  # ONNX: export and check (once per machine: then it is read from the cache)
    export_s = time.perf_counter() - t0
    none = create_segmenter("none")
    method.encode(np.stack([method.prepare(load_rgb(items[0].path))] * 2))  # warm-up
    pipeline_s = forward_s = float("inf")
    for _ in range(repeat):  # best of N for both
        with tempfile.TemporaryDirectory() as tmp:  # a fresh cache: every feature is computed
            cache = Cache(tmp)
            if models.is_dir():
                shutil.copytree(models, cache.models_dir)  # the exported graph, as on a machine that has it
            t0 = time.perf_counter()
            feats = feature_matrix(items, method, none, cache=cache, progress=False)
            pipeline_s = min(pipeline_s, time.perf_counter() - t0)
        batches = batches_of(method)
        t0 = time.perf_counter()
        forward = np.concatenate([method.encode(b) for b in batches])
        forward_s = min(forward_s, time.perf_counter() - t0)
    assert np.allclose(forward, feats, atol=1e-5), f"{runtime}: pipeline and forward-only features differ"
    macs = multiply_adds_per_image(method)
    forward_rate = len(items) / forward_s
    result = {
        "export_s": round(export_s, 2) if runtime == "onnx" else None,
        "pipeline_img_s": round(len(items) / pipeline_s, 2),
        "forward_only_img_s": round(forward_rate, 2),
        "ratio": round(forward_s / pipeline_s, 3),
        "gmacs_per_image": round(macs / 1e9, 3),
        "forward_gflop_s": round(2 * macs * forward_rate / 1e9, 1),
    }
    return result, feats


def main() -> None:
    tuning = tune_for_throughput()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=377)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--runtimes", nargs="+", default=["torch", "onnx"], choices=["torch", "onnx"])
    args = ap.parse_args()
    items = list(load_catalog(shared_data("grocery"), verify_images=False).items[: args.images])
    decoded = [load_rgb(it.path) for it in items]

    def batches_of(method):
        return [
            np.stack([method.prepare(im) for im in decoded[i : i + method.batch_size]])
            for i in range(0, len(decoded), method.batch_size)
        ]

    out: dict = {"runtime_settings": tuning, "threads": os.cpu_count(), "images": len(items), "method": "efficientnet"}
    out["numpy_matmul_gflop_s"] = round(matmul_gflop_s(), 1)
    features = {}
    with tempfile.TemporaryDirectory() as models:
        for runtime in args.runtimes:
            out[runtime], features[runtime] = measure(runtime, items, batches_of, args.repeat, Path(models))
    if len(features) == 2:
        a, b = features["torch"], features["onnx"]
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        out["onnx_vs_torch_cosine_min"] = round(float(cos.min()), 7)
        out["onnx_over_torch_pipeline"] = round(out["onnx"]["pipeline_img_s"] / out["torch"]["pipeline_img_s"], 2)
    emit(out)


if __name__ == "__main__":
    main()
