"""The README's style-transfer gallery: scikit-image's sample photos through the four bundled networks.

    pip install scikit-image && python docs/make_style_gallery.py      # writes docs/style-gallery.jpg

The photos (skimage.data: astronaut and rocket by NASA, public domain; chelsea and coffee, CC0) are not in any
training set here, and the outputs are each network's single forward pass, unedited.
"""
from __future__ import annotations

import torch
from PIL import Image, ImageDraw, ImageOps

from dl_core.hub import load_model
from dl_core.paths import REPO_ROOT, WEIGHTS_DIR
from dl_core.photos import to_image, to_tensor
from dl_core.style.model import StyleNet

STYLES = ["starry_night", "the_scream", "shipwreck", "woman_with_hat_matisse"]
PHOTOS = ["chelsea", "coffee", "astronaut"]
SIDE = 320


def main() -> None:
    import skimage.data

    torch.set_num_threads(2)
    networks = [load_model(StyleNet, WEIGHTS_DIR / f"style-{name}") for name in STYLES]
    rows = []
    for photo_name in PHOTOS:
        photo = ImageOps.fit(Image.fromarray(getattr(skimage.data, photo_name)()), (SIDE, SIDE * 3 // 4))  # 4:3 crop
        x = to_tensor(photo)[None]
        with torch.inference_mode():
            rows.append([photo] + [to_image(net(x)) for net in networks])
    w, h = max(r[0].width for r in rows), max(r[0].height for r in rows)
    header = 22
    sheet = Image.new("RGB", (w * 5, header + h * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, label in enumerate(["photo", *[s.replace("_", " ") for s in STYLES]]):
        draw.text((i * w + 6, 5), label, fill="black")
    for j, row in enumerate(rows):
        for i, image in enumerate(row):
            sheet.paste(image, (i * w, header + j * h))
    out = REPO_ROOT / "docs" / "style-gallery.jpg"
    sheet.save(out, quality=88)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
