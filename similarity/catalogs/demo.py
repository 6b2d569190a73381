"""A procedurally drawn demo catalog: webshop-like goods, deterministic from a seed.

Four categories (shirts, mugs, chairs, sneakers), each with ``per_category`` products
that differ in colour, pattern and shape. Every product gets a packshot on white and
``extra_views`` more photos of the same product on another background, at another
angle and scale. The output is an image folder plus ``manifest.csv`` in the format
users give their own catalogs (``file,item_id,category,group`` + metadata columns).
"""

from __future__ import annotations

import csv
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CATEGORIES = ("shirts", "mugs", "chairs", "sneakers")
GENERATOR_VERSION = 1
SIZE = 256
_SS = 2  # supersampling factor for smooth edges

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (200, 36, 42),
    "navy": (28, 44, 96),
    "sky": (96, 168, 222),
    "forest": (34, 110, 62),
    "mint": (150, 214, 180),
    "mustard": (222, 170, 40),
    "orange": (236, 112, 32),
    "pink": (236, 140, 170),
    "purple": (112, 60, 150),
    "brown": (120, 78, 46),
    "black": (30, 30, 32),
    "grey": (140, 140, 146),
    "cream": (236, 226, 200),
    "teal": (20, 128, 136),
}
PATTERNS = ("solid", "stripes", "dots", "checks", "band")
SHAPES = {
    "shirts": ("tee", "longsleeve", "tank"),
    "mugs": ("classic", "tall", "wide"),
    "chairs": ("square", "round", "slatted"),
    "sneakers": ("low", "high", "runner"),
}


@dataclass(frozen=True)
class ProductSpec:
    category: str
    index: int
    color: str
    accent: str
    pattern: str
    shape: str

    @property
    def group(self) -> str:
        return f"{self.category[:-1]}-{self.index:03d}"


def product_specs(seed: int, per_category: int) -> list[ProductSpec]:
    """Distinct (colour, pattern, shape) combinations per category, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    specs = []
    colors = list(PALETTE)
    for category in CATEGORIES:
        combos = list(itertools.product(colors, PATTERNS, SHAPES[category]))
        if per_category > len(combos):
            raise ValueError(f"per_category={per_category} exceeds the {len(combos)} distinct products")
        chosen = rng.choice(len(combos), size=per_category, replace=False)
        for i, k in enumerate(chosen):
            color, pattern, shape = combos[k]
            accent = colors[(colors.index(color) + 1 + int(rng.integers(len(colors) - 1))) % len(colors)]
            specs.append(ProductSpec(category, i + 1, color, accent, pattern, shape))
    return specs


# --- drawing -------------------------------------------------------------------------


def _shade(rgb: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    r, g, b = (int(max(0, min(255, c * f))) for c in rgb)
    return r, g, b


def _pattern_fill(size: int, spec: ProductSpec) -> Image.Image:
    base, accent = PALETTE[spec.color], PALETTE[spec.accent]
    img = Image.new("RGB", (size, size), base)
    d = ImageDraw.Draw(img)
    step = size // 12
    if spec.pattern == "stripes":
        for y in range(0, size, step):
            d.rectangle([0, y, size, y + step // 2], fill=accent)
    elif spec.pattern == "dots":
        r = step // 4
        for yi, y in enumerate(range(step // 2, size, step)):
            for x in range(step // 2 + (yi % 2) * step // 2, size, step):
                d.ellipse([x - r, y - r, x + r, y + r], fill=accent)
    elif spec.pattern == "checks":
        for yi, y in enumerate(range(0, size, step)):
            for xi, x in enumerate(range(0, size, step)):
                if (xi + yi) % 2:
                    d.rectangle([x, y, x + step, y + step], fill=accent)
    elif spec.pattern == "band":
        d.rectangle([0, int(size * 0.45), size, int(size * 0.58)], fill=accent)
    return img


def _compose(size: int, body_mask: Image.Image, spec: ProductSpec) -> Image.Image:
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    layer.paste(_pattern_fill(size, spec), mask=body_mask)
    return layer


def _draw_shirt(spec: ProductSpec, s: int) -> Image.Image:
    m = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(m)
    cx, top, bottom, half = s / 2, s * 0.16, s * 0.88, s * 0.22
    d.rectangle([cx - half, top + s * 0.04, cx + half, bottom], fill=255)
    if spec.shape == "tank":
        d.polygon(
            [
                (cx - half, top + s * 0.04),
                (cx - half * 0.55, top),
                (cx - half * 0.35, top + s * 0.12),
                (cx - half, top + s * 0.3),
            ],
            fill=255,
        )
        d.polygon(
            [
                (cx + half, top + s * 0.04),
                (cx + half * 0.55, top),
                (cx + half * 0.35, top + s * 0.12),
                (cx + half, top + s * 0.3),
            ],
            fill=255,
        )
    else:
        reach, drop = (s * 0.17, s * 0.18) if spec.shape == "tee" else (s * 0.2, s * 0.56)
        for sign in (-1, 1):
            shoulder = (cx + sign * half, top + s * 0.04)
            d.polygon(
                [
                    (cx + sign * half * 0.5, top),
                    shoulder,
                    (cx + sign * (half + reach), top + drop),
                    (cx + sign * (half + reach * 0.45), top + drop + s * 0.05),
                    (cx + sign * half, top + s * 0.22),
                ],
                fill=255,
            )
    neck_w = half * (0.5 if spec.shape != "tank" else 0.7)
    d.ellipse([cx - neck_w, top - s * 0.05, cx + neck_w, top + s * 0.09], fill=0)
    layer = _compose(s, m, spec)
    ImageDraw.Draw(layer).line(
        [(cx - neck_w * 0.9, top + s * 0.02), (cx, top + s * 0.095), (cx + neck_w * 0.9, top + s * 0.02)],
        fill=(*_shade(PALETTE[spec.color], 0.6), 255),
        width=max(2, s // 80),
    )
    return layer


def _draw_mug(spec: ProductSpec, s: int) -> Image.Image:
    w, h = {"classic": (0.44, 0.5), "tall": (0.36, 0.62), "wide": (0.56, 0.4)}[spec.shape]
    cx, cy = s * 0.45, s * 0.52
    x0, x1, y0, y1 = cx - s * w / 2, cx + s * w / 2, cy - s * h / 2, cy + s * h / 2
    eh = s * 0.06
    m = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(m)
    d.rectangle([x0, y0, x1, y1], fill=255)
    d.ellipse([x0, y1 - eh, x1, y1 + eh], fill=255)
    layer = _compose(s, m, spec)
    dl = ImageDraw.Draw(layer)
    dark = (*_shade(PALETTE[spec.color], 0.55), 255)
    dl.ellipse([x0, y0 - eh, x1, y0 + eh], fill=(*_shade(PALETTE[spec.color], 0.8), 255))
    dl.ellipse([x0 + s * 0.02, y0 - eh + s * 0.015, x1 - s * 0.02, y0 + eh - s * 0.015], fill=dark)
    hw = max(4, int(s * 0.045))
    hy0, hy1 = y0 + (y1 - y0) * 0.18, y0 + (y1 - y0) * 0.72
    handle = PALETTE[spec.accent] + (255,)
    dl.arc([x1 - s * 0.08, hy0, x1 + s * 0.12, hy1], start=-90, end=90, fill=handle, width=hw)
    # shading on the body: a soft highlight stripe
    dl.rectangle([x0 + (x1 - x0) * 0.12, y0 + eh, x0 + (x1 - x0) * 0.18, y1 - eh], fill=(255, 255, 255, 70))
    return layer


def _draw_chair(spec: ProductSpec, s: int) -> Image.Image:
    frame = (*_shade(PALETTE[spec.accent], 0.7), 255)
    m = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(m)
    seat = [(s * 0.26, s * 0.56), (s * 0.74, s * 0.56), (s * 0.8, s * 0.64), (s * 0.2, s * 0.64)]
    d.polygon(seat, fill=255)
    if spec.shape == "square":
        d.rectangle([s * 0.28, s * 0.14, s * 0.72, s * 0.52], fill=255)
    elif spec.shape == "round":
        d.ellipse([s * 0.26, s * 0.1, s * 0.74, s * 0.54], fill=255)
    else:
        for i in range(4):
            x = s * (0.29 + i * 0.115)
            d.rectangle([x, s * 0.18, x + s * 0.07, s * 0.54], fill=255)
        d.rectangle([s * 0.27, s * 0.12, s * 0.73, s * 0.2], fill=255)
    layer = _compose(s, m, spec)
    dl = ImageDraw.Draw(layer)
    lw = max(3, s // 40)
    for x_top, x_bot in ((0.24, 0.21), (0.76, 0.79), (0.34, 0.33), (0.66, 0.67)):
        dl.line([(s * x_top, s * 0.64), (s * x_bot, s * 0.92)], fill=frame, width=lw)
    dl.line([(s * 0.24, s * 0.64), (s * 0.76, s * 0.64)], fill=frame, width=lw)
    dl.line([(s * 0.28, s * 0.53), (s * 0.28, s * 0.58)], fill=frame, width=lw)
    dl.line([(s * 0.72, s * 0.53), (s * 0.72, s * 0.58)], fill=frame, width=lw)
    return layer


def _draw_sneaker(spec: ProductSpec, s: int) -> Image.Image:
    collar = {"low": 0.44, "high": 0.22, "runner": 0.4}[spec.shape]
    m = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(m)
    upper = [
        (s * 0.12, s * 0.66),
        (s * 0.16, s * 0.52),
        (s * 0.38, s * 0.46),
        (s * 0.5, s * collar),
        (s * 0.72, s * collar),
        (s * 0.76, s * 0.5),
        (s * 0.88, s * 0.6),
        (s * 0.9, s * 0.68),
    ]
    d.polygon(upper, fill=255)
    d.ellipse([s * 0.08, s * 0.52, s * 0.3, s * 0.7], fill=255)
    layer = _compose(s, m, spec)
    dl = ImageDraw.Draw(layer)
    sole_h = {"low": 0.06, "high": 0.06, "runner": 0.1}[spec.shape]
    sole = PALETTE["cream"] if spec.color != "cream" else PALETTE["black"]
    dl.rounded_rectangle([s * 0.07, s * 0.66, s * 0.93, s * (0.68 + sole_h)], radius=s * 0.03, fill=(*sole, 255))
    dl.line(
        [(s * 0.3, s * 0.64), (s * 0.55, s * 0.5), (s * 0.8, s * 0.62)],
        fill=PALETTE[spec.accent] + (255,),
        width=max(4, s // 30),
    )
    for i in range(4):
        x = s * (0.42 + i * 0.055)
        dl.line(
            [(x, s * (collar + 0.06 + i * 0.01)), (x + s * 0.04, s * (collar + 0.05 + i * 0.01))],
            fill=(250, 250, 250, 255),
            width=max(2, s // 90),
        )
    return layer


_DRAW = {"shirts": _draw_shirt, "mugs": _draw_mug, "chairs": _draw_chair, "sneakers": _draw_sneaker}


def draw_product(spec: ProductSpec) -> Image.Image:
    """The product alone on a transparent canvas (RGBA, ``SIZE`` px)."""
    big = _DRAW[spec.category](spec, SIZE * _SS)
    return big.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


# --- photos --------------------------------------------------------------------------

BACKGROUNDS = ("wood", "wall-and-floor", "gradient", "fabric")


def _background(kind: str, rng: np.random.Generator) -> Image.Image:
    s = SIZE
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    c1 = np.array(rng.integers(60, 230, 3), dtype=np.float32)
    c2 = np.array(rng.integers(60, 230, 3), dtype=np.float32)
    if kind == "wood":
        grain = 0.5 + 0.5 * np.sin(xx * 40 + 3 * np.sin(yy * 6))
        base = np.array([150, 100, 60], dtype=np.float32) * (0.8 + 0.3 * rng.random())
        arr = base[None, None] * (0.75 + 0.25 * grain[..., None])
    elif kind == "wall-and-floor":
        arr = np.where((yy > 0.62)[..., None], c2 * 0.7, c1)
        arr = arr * (0.9 + 0.1 * xx[..., None])
    elif kind == "gradient":
        t = (xx * 0.5 + yy * 0.5)[..., None]
        arr = c1 * (1 - t) + c2 * t
    else:
        weave = 0.5 + 0.25 * (np.sin(xx * 180) + np.sin(yy * 180))
        arr = c1[None, None] * (0.8 + 0.2 * weave[..., None])
    noise = rng.normal(0, 6, (s, s, 1)).astype(np.float32)
    return Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8))


def packshot(product: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", product.size, (255, 255, 255))
    canvas.paste(product, mask=product.getchannel("A"))
    return canvas


def lifestyle_shot(product: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, dict]:
    """The product on a textured background, rotated, scaled, shifted, maybe mirrored."""
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    bg = _background(kind, rng)
    angle = float(rng.uniform(-18, 18))
    scale = float(rng.uniform(0.55, 0.85))
    mirror = bool(rng.random() < 0.5)
    p = product.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirror else product
    p = p.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)
    n = max(8, int(SIZE * scale))
    p = p.resize((n, n), Image.Resampling.LANCZOS)
    shadow = Image.new("RGBA", p.size, (0, 0, 0, 0))
    shadow.putalpha(p.getchannel("A").point(lambda a: a * 0.35).filter(ImageFilter.GaussianBlur(4)))
    room = SIZE - n
    ox, oy = int(rng.integers(0, room + 1)), int(rng.integers(0, room + 1))
    bg.paste(shadow, (min(ox + 5, room), min(oy + 5, room)), shadow)
    bg.paste(p, (ox, oy), p)
    light = float(rng.uniform(0.85, 1.1))
    bg = Image.fromarray(np.clip(np.asarray(bg, dtype=np.float32) * light, 0, 255).astype(np.uint8))
    return bg, {"background": kind, "angle": round(angle, 1), "scale": round(scale, 2), "mirrored": mirror}


def generate_demo_catalog(out_dir: str | Path, *, seed: int = 7, per_category: int = 30, extra_views: int = 1) -> Path:
    """Write the demo catalog to ``out_dir`` and return the path of its ``manifest.csv``.

    Re-running with the same arguments on a complete folder does nothing (it is cached
    by a stamp file holding the arguments and the generator version).
    """
    out_dir = Path(out_dir)
    manifest = out_dir / "manifest.csv"
    stamp = out_dir / ".demo-stamp.json"
    params = {"seed": seed, "per_category": per_category, "extra_views": extra_views, "version": GENERATOR_VERSION}
    if manifest.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == params:
        return manifest
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for spec in product_specs(seed, per_category):
        rng = np.random.default_rng([seed, CATEGORIES.index(spec.category), spec.index])
        product = draw_product(spec)
        common = {
            "category": spec.category,
            "group": spec.group,
            "color": spec.color,
            "accent": spec.accent,
            "pattern": spec.pattern,
            "shape": spec.shape,
        }
        shots = [
            (packshot(product), "packshot", {"background": "white", "angle": 0.0, "scale": 1.0, "mirrored": False})
        ]
        for _ in range(extra_views):
            img, info = lifestyle_shot(product, rng)
            shots.append((img, "lifestyle", info))
        for k, (img, view, info) in enumerate(shots):
            item_id = f"{spec.group}-{view}" + (f"{k}" if view == "lifestyle" else "")
            rel = f"images/{spec.category}/{item_id}.jpg"
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            img.save(out_dir / rel, quality=90)
            rows.append({"file": rel, "item_id": item_id, **common, "view": view, **info})
    tmp = manifest.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(manifest)
    stamp.write_text(json.dumps(params))
    return manifest
