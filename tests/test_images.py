"""dl_core.images.load_rgb: every odd input becomes an upright RGB image or a clear BadImage."""
import io

import numpy as np
import pytest
from PIL import Image

from dl_core.images import BadImage, load_rgb


def _png(img: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA", "P", "CMYK", "I;16", "1"])
def test_modes_are_converted_to_rgb(mode):
    img = Image.new("RGB", (40, 30), (200, 100, 50)).convert(mode) if mode != "I;16" else \
        Image.fromarray(np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50)
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "I;16" else "PNG")
    loaded = load_rgb(_png(img, fmt))
    assert loaded.image.mode == "RGB" and loaded.image.size == (40, 30)
    if mode not in ("P", "1"):
        assert loaded.notes


def test_16_bit_png_uses_its_full_range():
    arr = np.linspace(1000, 3000, 64 * 64).reshape(64, 64).astype(np.uint16)
    loaded = load_rgb(_png(Image.fromarray(arr)))
    pixels = np.asarray(loaded.image)[..., 0]
    assert pixels.min() == 0 and pixels.max() == 255


def test_exif_rotation_is_applied():
    img = Image.new("RGB", (60, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    loaded = load_rgb(_png(img, "JPEG", exif=exif.tobytes()))
    assert loaded.image.size == (20, 60)
    assert any("EXIF" in n for n in loaded.notes)


def test_huge_images_are_downscaled_with_a_note():
    loaded = load_rgb(_png(Image.new("RGB", (3000, 1500))), max_side=1000)
    assert loaded.image.size == (1000, 500) and "Downscaled" in loaded.notes[0]


def test_animated_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    loaded = load_rgb(buf.getvalue())
    assert loaded.image.getpixel((5, 5))[0] > 200 and "first" in loaded.notes[0]


@pytest.mark.parametrize("data, message", [
    (b"", "empty"), (b"not an image at all", "not an image"), (_png(Image.new("RGB", (64, 64)))[:60], "not an image"),
])
def test_bad_files_raise_bad_image_with_a_message(data, message):
    with pytest.raises(BadImage, match=message):
        load_rgb(data)


def test_tiny_and_missing_images_are_refused():
    with pytest.raises(BadImage, match="at least"):
        load_rgb(_png(Image.new("RGB", (4, 4))))
    with pytest.raises(BadImage, match="No image"):
        load_rgb(None)


def test_an_image_too_large_for_pillow_to_open_says_how_large_not_that_it_is_unreadable():
    buf = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buf, "PNG")  # 400 MP in a few kB: Pillow refuses to open it
    with pytest.raises(BadImage, match=r"over 179 megapixels; the limit is 40 megapixels"):
        load_rgb(buf.getvalue())
