"""Robust image loading and the small geometric helpers every method shares.

Product photos arrive in every format a webshop has ever stored: EXIF-rotated JPEGs,
palette PNGs with transparency, CMYK, 16-bit, grayscale, tiny thumbnails and huge
scans. :func:`load_rgb` turns any of them into an upright 8-bit RGB image on white, or
raises :class:`UnreadableImage` saying why.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

#: Larger images are refused (decompression-bomb guard): 80 megapixels.
MAX_PIXELS = 80_000_000
#: Smaller images carry too little to compare.
MIN_SIDE = 8

WHITE = (255, 255, 255)


class UnreadableImage(ValueError):
    """An image file that cannot be used; the message says why."""


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (identifies byte-identical copies)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _flatten_on_white(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, WHITE)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def load_rgb(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open ``path`` as an upright 8-bit RGB image, transparency composited on white.

    Raises
    ------
    UnreadableImage
        The file is missing, not an image, truncated, too small, or larger than
        ``max_pixels`` (a decompression-bomb guard).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise UnreadableImage(
                        f"{path}: {w}x{h} pixels exceeds the limit of {max_pixels:,}; "
                        "downscale the image or raise max_pixels"
                    )
                img.load()
                rgb = _flatten_on_white(ImageOps.exif_transpose(img))
    except UnreadableImage:
        raise
    except FileNotFoundError as exc:
        raise UnreadableImage(f"{path}: file not found") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableImage(f"{path}: cannot decode image ({exc})") from exc
    if min(rgb.size) < MIN_SIDE:
        raise UnreadableImage(f"{path}: {rgb.size[0]}x{rgb.size[1]} is too small (min side {MIN_SIDE} px)")
    return rgb


def letterbox(img: Image.Image, size: int, *, fill: tuple[int, int, int] = WHITE) -> Image.Image:
    """Resize keeping the aspect ratio so the longer side is ``size``; pad to a square."""
    w, h = img.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = img.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=3.0)
    canvas = Image.new("RGB", (size, size), fill)
    canvas.paste(resized, ((size - nw) // 2, (size - nh) // 2))
    return canvas
