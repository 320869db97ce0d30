"""Turning whatever a user uploads into a sane RGB image, or a clear reason why not.

Handles: EXIF orientation (phones store rotated pixels plus a tag), palette/greyscale/CMYK/16-bit/RGBA/LA
modes, animated images (first frame), tiny and huge images (downscaled to a cap), corrupt files, non-images.
Every image tab calls `load_rgb` so they all behave the same.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # refuse to decode more than this (a decompression bomb, or a 200-MP panorama)
MIN_SIDE = 16


class BadImage(ValueError):
    """The input is not a usable image; the message is meant for the user."""


@dataclass
class LoadedImage:
    image: Image.Image  # RGB, upright, at most max_side on its longer side
    notes: list[str] = field(default_factory=list)  # what was converted, for the UI


def _to_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit greyscale: scale the real range to 8 bits
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        notes.append(f"{mode} (high bit depth) image scaled to 8 bits.")
        return Image.fromarray(arr.astype(np.uint8)).convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr = (arr - arr.min()) / max(1e-12, float(arr.max() - arr.min())) * 255
        notes.append("Floating-point image scaled to 8 bits.")
        return Image.fromarray(arr.astype(np.uint8)).convert("RGB")
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        notes.append("Transparent areas were filled with white.")
        return background
    if mode == "CMYK":
        notes.append("CMYK image converted to RGB.")
    elif mode in ("L", "1"):
        notes.append("Greyscale image converted to RGB.")
    return img.convert("RGB")


def load_rgb(source: str | Path | bytes | Image.Image | np.ndarray | None, max_side: int = 1024) -> LoadedImage:
    """Open `source` as an upright RGB image no larger than `max_side`; raises BadImage with a user message."""
    if source is None:
        raise BadImage("No image: upload a photo or pick a sample.")
    notes: list[str] = []
    try:
        if isinstance(source, np.ndarray):
            img = Image.fromarray(source)
        elif isinstance(source, Image.Image):
            img = source
        else:
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            if not data:
                raise BadImage("The file is empty (0 bytes).")
            img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            raise BadImage(f"The image is {img.width}×{img.height} pixels; the limit is {MAX_PIXELS / 1e6:.0f} megapixels.")
        if getattr(img, "n_frames", 1) > 1:
            notes.append(f"Animated image: using the first of its {img.n_frames} frames.")
            img.seek(0)
        img.load()
        if img.getexif().get(0x0112, 1) != 1:  # the EXIF Orientation tag
            img = ImageOps.exif_transpose(img)
            notes.append("Rotated upright using the photo's EXIF orientation.")
        img = _to_rgb(img, notes)
    except BadImage:
        raise
    except Image.DecompressionBombError as err:  # Pillow refuses to even open it: far over our own limit
        raise BadImage(f"The image has over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels; "
                       f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels.") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise BadImage(f"This file is not an image we can read ({type(err).__name__}). Try a JPEG or PNG photo.") from err
    if min(img.size) < MIN_SIDE:
        raise BadImage(f"The image is only {img.width}×{img.height} pixels; at least {MIN_SIDE}×{MIN_SIDE} is needed.")
    if max(img.size) > max_side:
        scale = max_side / max(img.size)
        new_size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        notes.append(f"Downscaled from {img.width}×{img.height} to {new_size[0]}×{new_size[1]} (limit {max_side} px).")
        img = img.resize(new_size, Image.Resampling.LANCZOS)
    return LoadedImage(img, notes)
