"""A cold build of the demo study (empty cache) and an immediate rebuild of the same study.

Default conditions: ssim and efficientnet (the default, Lite2 at 384 px) x none and u2netp, on the built-in demo
catalog (4 categories x 30 products x 2 photos). Catalog generation is not timed.

With ``--stages`` the cold build is timed in two parts, the same work as one cold build: the U²-Netp masks of
every photo (what a cold build does first), then the build that finds them in the cache. The JSON then also
gives the compute floor of a cold build on this machine: the multiply-adds of U²-Netp's masks and of the
embeddings (both variants), at the rate of numpy's float32 matrix product on the same cores (no network runs
faster than that here). Prints one JSON object last.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import emit
from bench.embed import matmul_gflop_s, multiply_adds_per_image
from db.engine import make_engine, make_sessionmaker
from similarity.catalogs.catalog import load_catalog
from similarity.catalogs.demo import generate_demo_catalog
from similarity.execution.cache import Cache
from similarity.execution.local import local_segment
from similarity.methods import create_method
from similarity.runtime import tune_for_throughput
from similarity.segmenters import U2NetSegmenter, create_segmenter
from survey.study.build import build_study
from survey.study.config import StudyConfig


def onnx_multiply_adds(path: str, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one run of an ONNX graph's convolutions (shapes from onnx's shape inference)."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(path)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for d, n in zip(dims, input_shape, strict=True):
        d.dim_value = n
    model = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}
    shapes.update({v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.output})
    weights = {w.name: list(w.dims) for w in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            out = shapes[node.output[0]]
            if not out or 0 in out:
                raise ValueError(f"{path}: no static shape for {node.output[0]}")
            total += int(np.prod(out)) * int(np.prod(weights[node.input[1]][1:]))
    return total


def compute_floor(images: int, variants: int) -> dict[str, float]:
    seg = create_segmenter("u2netp")
    assert isinstance(seg, U2NetSegmenter)
    u2_macs = onnx_multiply_adds(seg.model_path, (1, 3, seg.INPUT, seg.INPUT))
    embed_macs = multiply_adds_per_image(create_method("efficientnet", runtime="torch"))
    gflop_s = matmul_gflop_s()
    flops = 2 * (u2_macs * images + embed_macs * images * variants)
    return {
        "u2netp_gmacs_per_image": round(u2_macs / 1e9, 2),
        "efficientnet_gmacs_per_image": round(embed_macs / 1e9, 2),
        "cold_build_tflop": round(flops / 1e12, 2),
        "numpy_matmul_gflop_s": round(gflop_s, 1),
        "floor_s": round(flops / (gflop_s * 1e9), 1),
    }


def main() -> None:
    runtime = tune_for_throughput()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--per-category", type=int, default=30)
    ap.add_argument("--stages", action="store_true", help="time the masks apart; add the compute floor")
    args = ap.parse_args()
    images = 4 * args.per_category * 2
    out: dict[str, object] = {"runtime": runtime, "images": images}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = generate_demo_catalog(root / "catalog", seed=7, per_category=args.per_category)
        sessions = make_sessionmaker(make_engine(f"sqlite:///{root / 'bench.db'}"))
        config = StudyConfig(name="bench", catalog=str(manifest), reference_filter={"view": "packshot"}, seed=7)
        t0 = time.perf_counter()
        if args.stages:
            seg = create_segmenter("u2netp")
            local_segment(load_catalog(manifest).items, seg, cache=Cache(root / "cache"), progress=False)
            out["u2netp_masks_s"] = round(time.perf_counter() - t0, 2)
            out["u2netp_img_s"] = round(images / (time.perf_counter() - t0), 2)
        cold = build_study(sessions, config, cache_dir=root / "cache", progress=False)
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = build_study(sessions, config, replace=True, cache_dir=root / "cache", progress=False)
        warm_s = time.perf_counter() - t0
        assert (cold.grids, cold.conditions) == (warm.grids, warm.conditions)
    out.update(
        {
            "conditions": cold.conditions,
            "grids": cold.grids,
            "cold_s": round(cold_s, 2),
            "warm_s": round(warm_s, 2),
            "warm_over_cold": round(warm_s / cold_s, 4),
        }
    )
    if args.stages:
        out["floor"] = compute_floor(images, variants=2)
    emit(out)


if __name__ == "__main__":
    main()
