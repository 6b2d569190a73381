"""EfficientNet descriptor options and the descriptor computed from a network's feature maps.

One function, :func:`multi_view_descriptor`, turns a preprocessed batch into descriptors for
every option (pooling, flip, scales); the torch runtime calls it with torch's antialiased
``interpolate`` and the ONNX export with :class:`MatrixResize`, the same linear map written as two
matrix products (ONNX's ``Resize`` has no antialiasing in the opsets torch's exporter writes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from similarity.registry import InvalidOption

POOLINGS = ("avg", "gem", "max")


def parse_scales(scales: float | str | Sequence[float]) -> tuple[float, ...]:
    """``1``, ``"1+1.25"`` (the command line joins scales with '+') or ``[1, 1.25]`` (TOML) -> floats."""
    parts: Sequence[Any]
    if isinstance(scales, str):
        parts = [p for p in scales.split("+") if p.strip()]
    elif isinstance(scales, (int, float)):
        parts = [scales]
    else:
        parts = list(scales)
    try:
        out = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        raise InvalidOption(f"efficientnet scales={scales!r}: give numbers joined by '+', e.g. scales=1+1.25") from None
    if not out or any(not 0.25 <= x <= 4.0 for x in out) or len(set(out)) != len(out):
        raise InvalidOption(
            f"efficientnet scales={scales!r}: give distinct factors of the input size between 0.25 and 4, e.g. 1+1.25"
        )
    return out


def check_options(
    variants: Sequence[str],
    variant: str,
    pretrained: str | None,
    pooling: str,
    gem_p: float,
    input_size: int | str | None,
    flip: bool,
) -> int | None:
    """Check the efficientnet options (:class:`InvalidOption` naming the valid values); returns the input
    size, None for the variant's native one."""
    if variant not in variants:
        raise InvalidOption(f"efficientnet variant '{variant}' unknown; valid: {', '.join(variants)}")
    if pretrained not in ("imagenet", None):
        raise InvalidOption("efficientnet pretrained must be 'imagenet' or None (random init, tests only)")
    if pooling not in POOLINGS:
        raise InvalidOption(f"efficientnet pooling '{pooling}' unknown; valid: {', '.join(POOLINGS)}")
    if not isinstance(gem_p, (int, float)) or not 1.0 <= gem_p <= 10.0:
        raise InvalidOption(f"efficientnet gem_p={gem_p!r}: give a number between 1 (average) and 10")
    if pooling != "gem" and gem_p != 3.0:
        raise InvalidOption(f"efficientnet gem_p={gem_p} only applies to pooling=gem; add pooling=gem or drop gem_p")
    if input_size == "native":  # TOML has no None
        input_size = None
    if input_size is not None and (
        not isinstance(input_size, int) or isinstance(input_size, bool) or not 64 <= input_size <= 1024
    ):
        raise InvalidOption(
            f"efficientnet input_size={input_size!r}: give whole pixels between 64 and 1024, or native "
            "(none) for the variant's own size"
        )
    if not isinstance(flip, bool):
        raise InvalidOption(f"efficientnet flip={flip!r}: give true or false")
    return input_size


def pool_feature_map(fmap, pooling: str, gem_p: float):
    """(N, C, H, W) -> (N, C): average, max or generalised-mean (GeM, Radenović et al. 2018) pooling.
    GeM clamps at 1e-6 (the Lite networks' ReLU6 maps are >= 0; torchvision's SiLU maps are not)."""
    if pooling == "avg":
        return fmap.mean(dim=(2, 3))
    if pooling == "max":
        return fmap.amax(dim=(2, 3))
    return fmap.clamp(min=1e-6).pow(gem_p).mean(dim=(2, 3)).pow(1.0 / gem_p)


def torch_resize(batch, size: int):
    """Antialiased bilinear resize of a square (N, C, S, S) batch to ``size`` px (the torch runtime)."""
    import torch.nn.functional as F

    return F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def multi_view_descriptor(
    trunk: Callable[[Any], Any],
    batch,
    *,
    sizes: Sequence[int],
    flip: bool,
    pooling: str,
    gem_p: float,
    resize: Callable[[Any, int], Any] = torch_resize,
):
    """The sum of the L2-normalised pooled descriptors of every view: each size in ``sizes`` (the
    batch is letterboxed at the largest) and, with ``flip``, its mirror image. Not normalised."""
    import torch
    import torch.nn.functional as F

    total = None
    for size in sizes:
        x = batch if size == batch.shape[-1] else resize(batch, size)
        views = [x, torch.flip(x, dims=[3])] if flip else [x]
        for v in views:
            f = F.normalize(pool_feature_map(trunk(v), pooling, gem_p).float(), dim=1)
            total = f if total is None else total + f
    return total


def resize_matrix(n: int, m: int):
    """(m, n) float32 matrix ``W`` with ``W @ x`` equal to torch's antialiased bilinear resize of a
    length-``n`` signal to ``m`` samples: the resize is linear and separable, so its matrix is the
    resize of the identity, computed once in float64."""
    import torch
    import torch.nn.functional as F

    eye = torch.eye(n, dtype=torch.float64).reshape(n, 1, 1, n)
    out = F.interpolate(eye, size=(1, m), mode="bilinear", antialias=True, align_corners=False)
    return out.reshape(n, m).T.contiguous().float()


class MatrixResize:
    """The antialiased resize as ``W @ x @ W.T`` (exports to ONNX as two MatMul nodes); one matrix per
    (input, output) size, made on first use."""

    def __init__(self) -> None:
        self._matrices: dict[tuple[int, int], Any] = {}

    def __call__(self, batch, size: int):
        n = int(batch.shape[-1])
        w = self._matrices.get((n, size))
        if w is None:
            w = self._matrices[(n, size)] = resize_matrix(n, size)
        return w @ batch @ w.T
