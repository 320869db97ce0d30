"""Unlabelled photos for image-to-image training (style transfer, super-resolution): folders in, random crops out.

The lesson trains on a sample of ImageNet; offline we use the photos in ../shared/data (raccoon photos and the
BSD68 benchmark images). Any folder(s) of JPEG/PNG files work the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def list_images(folders: Iterable[str | Path]) -> list[Path]:
    """Every image file directly inside the given folders (or the files themselves), sorted for reproducibility."""
    paths: list[Path] = []
    for folder in map(Path, folders):
        if folder.is_file():
            paths.append(folder)
        elif folder.is_dir():
            paths += sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise FileNotFoundError(f"no such image folder or file: {folder}")
    return paths


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> (3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)


def to_image(tensor: torch.Tensor) -> Image.Image:
    """(3, H, W) or (1, 3, H, W) float in [0, 1] -> PIL RGB."""
    array = tensor.detach().float().squeeze(0).clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray((array * 255 + 0.5).astype(np.uint8))


def load_photo(path: str | Path, max_side: int) -> torch.Tensor:
    """A local image file as a batch of one, (1, 3, H, W) in [0, 1], downscaled to fit within max_side.
    (For data folders; the app's uploads go through dl_core.images.load_rgb, which checks them first.)"""
    return to_tensor(fit_within(Image.open(path).convert("RGB"), max_side))[None]


def fit_within(image: Image.Image, max_side: int) -> Image.Image:
    """Downscale (never upscale) so the longer side is at most max_side."""
    scale = max_side / max(image.size)
    if scale >= 1:
        return image
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS)


class RandomCrops(Dataset):
    """An endless supply of random square crops of `size` px (random scale and position, random flip).

    Photos are decoded once, downscaled to at most 2*size on the longer side (a crop then covers 25-100% of
    the photo's area, so the network sees both close-ups and whole scenes) and kept in memory.
    Crop `index` is a function of (seed, index) only: with EpochSampler a run is reproducible, every epoch
    sees new crops, and a resumed run sees exactly the crops it would have.
    """

    def __init__(self, paths: Sequence[Path], size: int = 256, seed: int = 0):
        from torchvision.transforms import v2

        if not paths:
            raise ValueError("no training photos")
        self.size, self.seed = size, seed
        self.photos = [to_tensor(fit_within(Image.open(p), 2 * size)) for p in paths]
        self.transform = v2.Compose([
            v2.RandomResizedCrop(size, scale=(0.25, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
            v2.RandomHorizontalFlip(),
        ])

    def __len__(self) -> int:
        return 2**62  # endless: EpochSampler decides which indices an epoch uses

    def __getitem__(self, index: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        photo = self.photos[int(torch.randint(len(self.photos), (1,), generator=generator))]
        # torchvision's random transforms use the global RNG: fork it so workers and resumes stay reproducible
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
            return self.transform(photo).contiguous()  # (3, size, size)


class EpochSampler(Sampler):
    """Indices epoch*n ... epoch*n + n - 1: fresh items from an endless dataset each epoch (the Learner calls
    set_epoch), in order, so the sequence does not depend on where a run was interrupted."""

    def __init__(self, n: int):
        self.n, self.epoch = n, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(range(self.epoch * self.n, (self.epoch + 1) * self.n))
