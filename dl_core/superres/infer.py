"""What the super-resolution tab runs: a network's enlargement of any photo, in tiles, on a fast CPU path; the
bicubic baseline; and the checkerboard experiment (a fresh sub-pixel layer with and without ICNR).

    net = load_superres("weights/superres-x4")
    big = enlarge(net, photo)                      # PIL in, PIL out (4x), 8 bits
    demo = checkerboard(photo, seed=0)             # outputs of a random up-sampler with and without ICNR

Tiles: the network sees `TILE` low-res pixels square at a time plus a margin wider than its receptive field
(MARGIN > 20 px: head, 17 body convs, the up-sampler and tail), so the stitched output equals one whole pass while
memory stays bounded (a x4 up-sampler keeps 4 x 64 channels at twice the input's size in its last-but-one layer).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dl_core.photos import to_tensor
from dl_core.superres.evaluate import to_uint8_image
from dl_core.superres.model import SrResnet, UpsampleStep

TILE = 192  # low-res pixels per tile side
MARGIN = 24  # low-res pixels of context around a tile (the receptive field's radius is ~20)


def load_superres(folder: str | Path) -> SrResnet:
    from dl_core.hub import load_model

    return load_model(SrResnet, folder).to(memory_format=torch.channels_last)


@torch.inference_mode()
def run_tiled(model: SrResnet, low: torch.Tensor, tile: int = TILE, margin: int = MARGIN, fast: bool = True) -> torch.Tensor:
    """(1, 3, h, w) -> (1, 3, s h, s w), tile by tile with `margin` px of context each side (cut off afterwards).
    `fast`: bf16 autocast (AVX-512 BF16 on this CPU: about twice the speed; the last conv stays fp32)."""
    s = model.config.scale
    _, _, h, w = low.shape
    out = torch.empty(1, 3, h * s, w * s)
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            t0, l0 = max(0, top - margin), max(0, left - margin)
            t1, l1 = min(h, top + tile + margin), min(w, left + tile + margin)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
                piece = model(low[:, :, t0:t1, l0:l1]).float()
            bottom, right = min(h, top + tile), min(w, left + tile)
            out[:, :, top * s:bottom * s, left * s:right * s] = piece[:, :, (top - t0) * s:(bottom - t0) * s,
                                                                      (left - l0) * s:(right - l0) * s]
    return out


def enlarge(model: SrResnet, image: Image.Image, fast: bool = True) -> Image.Image:
    return to_uint8_image(run_tiled(model, to_tensor(image)[None], fast=fast))


@dataclass
class Checkerboard:
    """A fresh x2 sub-pixel layer's output on one image, with and without ICNR, and what it is made of."""
    random_output: np.ndarray  # (2h, 2w, 3) in [0, 1], contrast-stretched for display
    icnr_output: np.ndarray
    random_kernels: np.ndarray  # (4, k, k): the four sub-kernels of output channel 0 (its red input), per sub-pixel
    icnr_kernels: np.ndarray
    random_artefact: float  # checkerboard strength: see checkerboard_strength
    icnr_artefact: float


def checkerboard_strength(image: np.ndarray) -> float:
    """How much the four pixels of each 2x2 cell differ from each other, as a fraction of how much the image varies
    overall: 0 for an image made of 2x2 blocks (nearest-neighbour up-sampling), ~1 for a pure 2-px pattern."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    cells = image[:h, :w].reshape(h // 2, 2, w // 2, 2, -1)
    within = cells.std(axis=(1, 3)).mean()
    return float(within / max(image[:h, :w].std(), 1e-12))


def _stretch(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) -> (H, W, 3) in [0, 1], each channel scaled to its 1st-99th percentile (random layers' outputs
    have arbitrary ranges; the pattern, not the colour, is the point)."""
    array = x[0].permute(1, 2, 0).numpy().astype(np.float64)
    lo, hi = np.percentile(array, 1, axis=(0, 1)), np.percentile(array, 99, axis=(0, 1))
    return np.clip((array - lo) / np.maximum(hi - lo, 1e-12), 0, 1)


@torch.inference_mode()
def checkerboard(image: Image.Image, seed: int = 0) -> Checkerboard:
    """Run one freshly initialised x2 sub-pixel step (3x3 conv 3 -> 12, PixelShuffle(2)) on the image, twice from
    the same seed: with random sub-kernels (Kaiming) and with ICNR. The image is the input itself (not features), so
    what the layer does to it is visible."""
    x = to_tensor(image)[None]  # (1, 3, h, w)
    outputs, kernels = [], []
    for icnr in (False, True):
        torch.manual_seed(seed)
        step = UpsampleStep(3, icnr=icnr)
        if not icnr:
            torch.nn.init.kaiming_normal_(step[0].weight)
        out = step(x)  # (1, 3, 2h, 2w)
        outputs.append(out)
        kernels.append(step[0].weight[0:4, 0].numpy().copy())  # channel 0's four sub-pixels, seen from the red input
    random_img, icnr_img = _stretch(outputs[0]), _stretch(outputs[1])
    return Checkerboard(random_img, icnr_img, kernels[0], kernels[1], checkerboard_strength(random_img),
                        checkerboard_strength(icnr_img))

