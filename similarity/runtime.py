"""Process-wide settings for CPU throughput in batch jobs (builds, evaluations, benchmarks).

Measured on this project's 2-core machine: EfficientNet-Lite0 inference ran at ~35 img/s
with glibc's default allocator settings and ~70 img/s after :func:`tune_for_throughput`.
The cause is glibc returning every large freed block (activations of a few MB) to the OS
with ``munmap``/``trim`` and paying page faults to get it back on the next batch. Raising
the mmap and trim thresholds keeps that memory in the heap.

This changes process-global state, so the library never calls it on import: the
``lookalike`` command and the benchmarks call it once at start; engineers embedding the
backend may call it themselves. The cost is that peak heap memory is not returned to the
OS while the process lives.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_for_throughput(
    *, mmap_threshold: int = 256 << 20, trim_threshold: int = 512 << 20, threads: int | None = None
) -> dict[str, object]:
    """Apply the settings; returns what was done (for logs and benchmark output)."""
    done: dict[str, object] = {"allocator": "unchanged"}
    if sys.platform.startswith("linux"):
        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name) if name else None
        mallopt = getattr(libc, "mallopt", None)
        if (
            mallopt is not None
            and mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1
            and mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1
        ):
            done["allocator"] = f"glibc mmap/trim thresholds {mmap_threshold >> 20}/{trim_threshold >> 20} MiB"
    import torch

    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    done["torch_threads"] = n
    return done
