"""Why a trained style network stays above Gatys on held-out photos: capacity, memorisation or training time?

    python -m benchmarks.style_generalisation [--style starry_night] [--photo-steps 400] [--crops 64 --crop-steps 200]

Starts from a bundled network (weights/style-<style>) and trains copies of it, with its own loss, on:
  one photo   a single held-out photo (CSet5 baby): can the architecture reach Gatys' style loss on one image?
  K crops     K fixed 256-px centre crops of training photos, batches of 8: does what it learns carry over?
and prints each run's style ratio (network style loss / that of 300 Gatys steps, same loss) as it goes: on
the photo it trains on, on the K crops (Gatys run on 8 of them) and on the held-out photos (Gatys' mean from
the folder's metrics.json, written by `train/style.py evaluate --write`). About 8 minutes on 2 CPU cores.
Each copy trains with the style networks' own Learner set-up (dl_core/style/training.py: Adam, the perceptual
loss, gradient clipping at 5) at a constant LR; a ReportAt callback scores it at the chosen steps. Run from the
repository root. Nothing is saved: the bundled weights are only read.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import torch
from accelerate import Accelerator

from dl_core import hub
from dl_core.callbacks import GradientClip
from dl_core.paths import WEIGHTS_DIR, data_path
from dl_core.photos import list_images, load_photo
from dl_core.style.data import center_crop, default_heldout
from dl_core.style.evaluate import loss_for
from dl_core.style.gatys import run_pixels
from dl_core.style.model import StyleNet
from dl_core.style.training import PerceptualObjective, ReportAt, make_learner


def original_content() -> list:
    """The 268 photos the first bundled networks trained on (raccoon images, BSD68): the study's K crops come from them."""
    return [data_path("detection", "raccoon", "images"), data_path("superres", "CBSD68")]


def mean_style(model: StyleNet, loss, photos: list[torch.Tensor]) -> float:
    """The network's mean style loss over photos of any sizes, one at a time, in eval mode."""
    model.eval()
    with torch.no_grad():
        styles = [float(loss(model(p), loss.content_targets(p)).style) for p in photos]
    model.train()
    return sum(styles) / len(styles)


def gatys_style(loss, photos: list[torch.Tensor], steps: int = 300) -> float:
    return sum(run_pixels(loss, p, steps=steps).style for p in photos) / len(photos)


class Batches:
    """`steps` training batches `((images,), images)` drawn one at a time from `draw()`: the Learner's train_dl."""

    def __init__(self, draw: Callable[[], torch.Tensor], steps: int):
        self.draw, self.steps = draw, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[tuple[torch.Tensor], torch.Tensor]]:
        for _ in range(self.steps):
            images = self.draw()
            yield (images,), images


def train_copy(start: StyleNet, loss, draw: Callable[[], torch.Tensor], steps: int, lr: float, report_at: set[int],
               report: Callable[[int, StyleNet], None]) -> None:
    """Train a copy of the network for `steps` batches at a constant LR, calling report(step, model) at the chosen
    steps (0: before any update)."""
    model = copy.deepcopy(start).train()
    learn = make_learner(model, PerceptualObjective(loss), Batches(draw, steps), None, lr,
                         callbacks=[GradientClip(5.0), ReportAt(report_at, report)], accelerator=Accelerator(cpu=True))
    learn.fit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--photo", default=str(default_heldout()[0] / "baby.png"), help="the held-out photo of the one-photo run")
    parser.add_argument("--photo-steps", type=int, default=400)
    parser.add_argument("--crops", type=int, default=64)
    parser.add_argument("--crop-steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    folder = WEIGHTS_DIR / f"style-{args.style}"
    model = hub.load_model(StyleNet, folder).float()
    loss = loss_for(model)
    gatys_heldout = json.loads((folder / "metrics.json").read_text())["heldout"]["gatys_style_loss"]
    heldout = [load_photo(p, 256) for p in list_images(default_heldout())]
    start_time = time.perf_counter()
    rows: list[str] = []

    def heldout_ratio(net: StyleNet) -> str:
        return f"{mean_style(net, loss, heldout) / gatys_heldout:.2f}"

    # One photo: the architecture's capacity for a single image
    photo = load_photo(args.photo, 256)
    gatys_photo = gatys_style(loss, [photo])

    def report_photo(step: int, net: StyleNet) -> None:
        rows.append(f"| one photo ({Path(args.photo).name}) | {step} | {mean_style(net, loss, [photo]) / gatys_photo:.2f} | | "
                    f"{heldout_ratio(net)} | {time.perf_counter() - start_time:.0f} |")
        print(rows[-1], file=sys.stderr, flush=True)

    steps = args.photo_steps
    train_copy(model, loss, lambda: photo, steps, args.lr, {0, 50, 100, steps // 2, steps}, report_photo)

    # K fixed crops: memorised or learned?
    paths = list_images(original_content())
    crops = torch.stack([center_crop(p, 256) for p in paths[:: max(1, len(paths) // args.crops)][: args.crops]])
    gatys_crops = gatys_style(loss, [crops[i:i + 1] for i in range(0, len(crops), max(1, len(crops) // 8))][:8])
    generator = torch.Generator().manual_seed(0)

    def crop_batch() -> torch.Tensor:
        return crops[torch.randint(len(crops), (8,), generator=generator)]

    def report_crops(step: int, net: StyleNet) -> None:
        crop_ratio = mean_style(net, loss, [crops[i:i + 1] for i in range(len(crops))]) / gatys_crops
        rows.append(f"| {len(crops)} fixed training crops | {step} | | {crop_ratio:.2f} | {heldout_ratio(net)} | "
                    f"{time.perf_counter() - start_time:.0f} |")
        print(rows[-1], file=sys.stderr, flush=True)

    steps = args.crop_steps
    train_copy(model, loss, crop_batch, steps, args.lr, {0, steps // 4, steps // 2, steps}, report_crops)

    print(f"\nStyle ratio (network ÷ 300 Gatys steps, same loss) while training copies of weights/style-{args.style}, "
          f"Adam lr {args.lr:g}")
    print("| trained on | steps | ratio on that photo | ratio on the crops | ratio on held-out photos | seconds |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
