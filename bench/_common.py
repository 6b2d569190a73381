"""Shared helpers for the benchmarks: where the real photos are, and JSON output."""

from __future__ import annotations

import json
import sys
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.exists():
        sys.exit(f"{path} is missing: benchmarks read real photos from ../shared/data beside the checkout")
    return path


def emit(result: dict) -> None:
    """The benchmark's result: one JSON object, on the last line of stdout."""
    print(json.dumps(result), flush=True)
