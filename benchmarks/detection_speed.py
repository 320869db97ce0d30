"""Lessons 8-9 latency on this machine: detection of one 512-px photo, end to end, as the app does it.

    python -m benchmarks.detection_speed [--weights weights/detection] [--repeats 30] [--threads 2]

End to end = decode + upright/convert (dl_core.images) + resize + model + NMS + drawing the anchor view.
Baseline, side by side: the backbone alone (EfficientNet-Lite0 at 224 px), to show what the SSD head, NMS
and drawing add. Target (issue 3, 2 CPU cores): end to end <= 150 ms.
"""
from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.timing import median_ms, print_latency_table
from dl_core.paths import data_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="weights/detection", help="weight folder to time (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=30, help="runs per measurement; the median is shown (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    os.environ["HUB_REPO_DETECTION"] = str(Path(args.weights).resolve())  # a local folder is allowed
    from demos import detection

    model = detection.MODEL.get()
    photo = data_path("detection", "raccoon", "images", "raccoon-146.jpg")  # a held-out test photo
    image = Image.open(photo).convert("RGB") if photo.exists() else \
        Image.fromarray((np.random.default_rng(0).random((384, 512, 3)) * 255).astype(np.uint8))
    image = image.resize((512, round(512 * image.height / image.width)))
    path = Path("/tmp/benchmark-512.jpg")
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    path.write_bytes(buf.getvalue())
    x = torch.rand(1, 3, 224, 224)

    with torch.inference_mode():
        backbone = median_ms(lambda: model.backbone(x), args.repeats)
        forward = median_ms(lambda: model(x), args.repeats)
        end_to_end = median_ms(lambda: detection.detect(str(path), 0.3, 0.45, True, "4×4"), args.repeats)
    rows = [("backbone only (baseline)", backbone, None), ("model forward (backbone + heads)", forward, None),
            ("end to end (app handler)", end_to_end, 150.0)]
    print(f"photo {image.size[0]}x{image.size[1]}, torch {torch.__version__}, {args.threads} threads, "
          f"median of {args.repeats} runs\n")
    print_latency_table(rows, backbone, "backbone")


if __name__ == "__main__":
    main()
