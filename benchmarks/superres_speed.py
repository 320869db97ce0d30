"""Lesson 14 speed on this machine: ×4 super-resolution of a 128×128 photo (→ 512×512), as the tab runs it.

    python -m benchmarks.superres_speed [--repeats 20]      # from the repository root

Rows, timed in the same interleaved rounds:
  baseline   the bundled ×4 network's bare forward pass in plain fp32 eager mode (contiguous tensors)
  fast path  dl_core.superres.infer.enlarge: PIL in, PIL out, channels-last, bf16 autocast (last conv fp32), tiles
  tab        the tab's handler in "enlarge my photo" mode: decode, bicubic, the pixel and the perceptual networks,
             the zoom crops and the table
Target (issue 20, 2 CPU cores): ×4 of a 128×128 input ≤ 350 ms end to end. Needs the bundled weights.
"""
from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch
from PIL import Image

from benchmarks.timing import interleaved_median_ms, print_latency_table


def test_photo(folder: str) -> str:
    """A 128×128 crop of a Set5 image where the data root has it, else a generated picture."""
    from dl_core.paths import data_path

    source = data_path("superres", "CSet5", "butterfly.png")
    if source.is_file():
        image = Image.open(source).convert("RGB").resize((128, 128), Image.Resampling.BICUBIC)
    else:
        image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8))
    path = f"{folder}/photo.png"
    image.save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed rounds (default: %(default)s)")
    args = parser.parse_args()

    from demos import superres as tab
    from dl_core.hub import load_model
    from dl_core.photos import to_tensor
    from dl_core.superres.infer import enlarge
    from dl_core.superres.model import SrResnet

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        photo = test_photo(tmp)
        image = Image.open(photo).convert("RGB")
        fast = tab.NETWORKS["superres-x4"].get()  # as the tab loads it: channels-last
        tab.NETWORKS["superres-x4-perceptual"].get()
        eager = load_model(SrResnet, tab.NETWORKS["superres-x4"].source.location)
        x = to_tensor(image)[None]

        def eager_forward():
            with torch.inference_mode():
                eager(x)

        times = interleaved_median_ms({"eager": eager_forward, "fast": lambda: enlarge(fast, image),
                                       "fp32": lambda: enlarge(fast, image, fast=False),
                                       "tab": lambda: tab.enlarge_photo(photo, "×4", tab.ENLARGE)}, repeats=args.repeats)
    print(f"×4 of one 128×128 photo → 512×512, median of {args.repeats} interleaved rounds; baseline: the ×4 network's "
          f"bare fp32 eager forward pass\n")
    print_latency_table([("×4 forward, fp32 eager (baseline)", times["eager"], None),
                         ("enlarge(), channels-last fp32 (PIL in and out)", times["fp32"], None),
                         ("enlarge(), the fast path: + bf16 autocast", times["fast"], 350),
                         ("tab: bicubic + pixel + perceptual networks", times["tab"], None)], times["eager"], "eager")


if __name__ == "__main__":
    main()
