from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from similarity.images import UnreadableImage, letterbox, load_rgb


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert load_rgb(tmp_path / "r.jpg").size == (20, 40)


def test_transparency_is_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (5, 5, 15, 15))
    rgba.save(tmp_path / "a.png")
    rgba.convert("P").save(tmp_path / "p.png", transparency=0)
    for name in ("a.png", "p.png"):
        arr = np.asarray(load_rgb(tmp_path / name))
        assert tuple(arr[0, 0]) == (255, 255, 255), name


def test_cmyk_grayscale_and_16bit(tmp_path):
    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    Image.new("L", (20, 20), 100).save(tmp_path / "g.png")
    Image.fromarray(np.full((20, 20), 65535, dtype=np.uint16)).save(tmp_path / "w.png")
    assert load_rgb(tmp_path / "c.jpg").mode == "RGB"
    assert tuple(np.asarray(load_rgb(tmp_path / "g.png"))[0, 0]) == (100, 100, 100)
    assert tuple(np.asarray(load_rgb(tmp_path / "w.png"))[0, 0]) == (255, 255, 255)


def test_too_small_and_too_large_are_refused(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "tiny.png")
    Image.new("RGB", (200, 200)).save(tmp_path / "big.png")
    with pytest.raises(UnreadableImage, match="too small"):
        load_rgb(tmp_path / "tiny.png")
    with pytest.raises(UnreadableImage, match="exceeds the limit"):
        load_rgb(tmp_path / "big.png", max_pixels=10_000)


def test_letterbox_keeps_aspect_and_pads_white():
    img = Image.new("RGB", (100, 50), (0, 0, 0))
    out = np.asarray(letterbox(img, 64))
    assert out.shape == (64, 64, 3)
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[32, 32]) == (0, 0, 0)
