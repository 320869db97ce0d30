"""The style networks' data: the painting, content photos (random crops) to train on, held-out photos to check on.

    train_dl, valid_dl = loaders(content_folders, heldout_folders, size=256, bs=8, batches_per_epoch=200, seed=42)

Content photos by default: the raccoon photos and BSD68 (`default_content()`); CSet5 and CSet14 are held out
(`default_heldout()`), all under the data root (dl_core.paths). A batch is the Learner's `((photos,), photos)`:
the photo is both the network's input and the content target of its perceptual loss.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader

from dl_core.paths import data_path, display_path
from dl_core.photos import EpochSampler, RandomCrops, list_images, to_tensor

# What the photo folders under the data root are (the model cards name their sources).
PHOTO_SETS = {
    "detection/raccoon/images": "the raccoon data set, datitran/raccoon_dataset, MIT",
    "superres/CBSD68": "BSD68, the Berkeley segmentation benchmark as distributed with the super-resolution test sets",
    "superres/CSet5": "Set5, a super-resolution test set",
    "superres/CSet14": "Set14, a super-resolution test set",
}


def default_content() -> list[Path]:
    """The training photos: the raccoon data set's images and BSD68 (as shipped with the super-resolution sets)."""
    return [data_path("detection", "raccoon", "images"), data_path("superres", "CBSD68")]


def default_heldout() -> list[Path]:
    """The photos no network trains on: CSet5 and CSet14."""
    return [data_path("superres", "CSet5"), data_path("superres", "CSet14")]


def describe_folder(folder: str | Path) -> str:
    """A photo folder as a model card names it: its path (../shared/data/... under the data root) and, for the
    data sets this project uses, what it is."""
    shown = display_path(folder)
    known = PHOTO_SETS.get(shown.removeprefix("../shared/data/"))
    return f"`{shown}` ({known})" if known else f"`{shown}`"


def load_style_image(path: str | Path, size: int) -> torch.Tensor:
    """The painting scaled so its shorter side is `size` px: (1, 3, H, W). Brush strokes should be about as
    large, relative to the features' receptive fields, as they will look on a stylised photo of that size."""
    image = Image.open(path).convert("RGB")
    scale = size / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    return to_tensor(image)[None]


def center_crop(path: str | Path, size: int) -> torch.Tensor:
    """The photo's central square, its shorter side scaled to `size`: (3, size, size)."""
    image = Image.open(path).convert("RGB")
    scale = size / min(image.size)
    image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.Resampling.LANCZOS)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return to_tensor(image.crop((left, top, left + size, top + size)))


def collate_pairs(photos: list[torch.Tensor]) -> tuple[tuple[torch.Tensor], torch.Tensor]:
    """The Learner's (inputs, target) batch: the photo is both the network's input and the content target."""
    batch = torch.stack(photos)  # (B, 3, size, size)
    return (batch,), batch


def loaders(content: Sequence[str | Path], heldout: Sequence[str | Path], size: int, bs: int, batches_per_epoch: int,
            seed: int, workers: int = 0) -> tuple[DataLoader, DataLoader]:
    """Random `size`-px crops of the content photos (`batches_per_epoch` batches of `bs`, fresh each epoch) and
    the held-out photos' centre crops (the validation loss)."""
    train_dl = DataLoader(RandomCrops(list_images(content), size, seed=seed), batch_size=bs, collate_fn=collate_pairs,
                          sampler=EpochSampler(batches_per_epoch * bs), num_workers=workers)
    valid_dl = DataLoader([center_crop(p, size) for p in list_images(heldout)], batch_size=bs, collate_fn=collate_pairs)
    return train_dl, valid_dl
