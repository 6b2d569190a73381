"""Shared helpers for the benchmarks: where the real photos are, the machine, and JSON output."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.exists():
        sys.exit(f"{path} is missing: benchmarks read real photos from ../shared/data beside the checkout")
    return path


def machine() -> dict[str, object]:
    """What the figures were measured on: the CPU's model, its cores and vector extensions (rates
    differ by host: ONNX Runtime's and numpy's kernels use AVX-512 where the CPU has it)."""
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags.update(value.split())
    simd = sorted(f for f in flags if f in ("avx", "avx2", "fma") or f.startswith(("avx512", "amx")))
    return {"cpu": model, "cores": os.cpu_count(), "simd": simd}


def emit(result: dict | list) -> None:
    """The benchmark's result: one JSON object (with the machine it ran on), on the last line of stdout."""
    if isinstance(result, dict):
        result = {"machine": machine(), **result}
    print(json.dumps(result), flush=True)
