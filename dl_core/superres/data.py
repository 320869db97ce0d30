"""Super-resolution data: photos in, (low-res, high-res) patch pairs out; the benchmark sets; the urban hold-out.

    train_dl = patch_loader(training_photos(), scale=2, hr_size=96, bs=16, batches_per_epoch=250, seed=42)
    for (low_res,), high_res in train_dl: ...       # (B, 3, 48, 48) and (B, 3, 96, 96), in [0, 1]

The lesson trains on a 2% sample of ImageNet. Here (../shared/data) the training photos are ones no benchmark holds:
the 80 SUN scenes of CSun_Hays80, the CamVid frames of drives 0001TP and 0016E5, and the raccoon `train` photos.
CamVid's third drive, 0006R0 (101 street scenes), is held out as urban photos no training photo comes from; the
standard test sets CSet5, CSet14 and CBSD68 are never trained on.

Low-resolution inputs are made the way the SR literature makes them: bicubic down-sampling with anti-aliasing of a
high-resolution image whose sides are a multiple of the scale (`downscale`, `mod_crop`), rounded to 8 bits.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from dl_core.paths import data_path
from dl_core.photos import EpochSampler, list_images, to_tensor

HELDOUT_DRIVE = "0006R0"  # the CamVid drive kept out of training: the urban hold-out
BENCHMARKS = ("CSet5", "CSet14", "CBSD68")
PHOTO_SOURCES = {
    "CSun_Hays80": "CSun_Hays80: 80 scenes, one per SUN category (Sun & Hays 2012), research use",
    "camvid": "CamVid street scenes (Brostow et al. 2008; the SegNet release), research use",
    "raccoon": "the raccoon data set (datitran/raccoon_dataset, MIT), its `train` photos",
}
# The dihedral group: the lesson's RandomDihedral (4 rotations x optional flip), as PIL transposes.
DIHEDRAL = (None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270,
            Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.TRANSPOSE, Image.Transpose.FLIP_TOP_BOTTOM,
            Image.Transpose.TRANSVERSE)
AUGMENTATION = ("a random square region, rescaled by 0.6-1.0 (Lanczos) to the patch size, then one of the 8 "
                "dihedral transforms (the lesson's RandomDihedral)")


def mod_crop(image: Image.Image, scale: int) -> Image.Image:
    """Crop the right and bottom so that both sides are multiples of `scale` (the literature's `modcrop`)."""
    w, h = image.width - image.width % scale, image.height - image.height % scale
    return image if (w, h) == image.size else image.crop((0, 0, w, h))


def downscale(image: Image.Image, scale: int) -> Image.Image:
    """Bicubic down-sampling by an integer factor, anti-aliased. PIL's bicubic is Keys' cubic with a = -0.5 and,
    when reducing, a kernel widened by the factor: the same filter as MATLAB's `imresize`, which made the standard
    benchmark inputs. They differ at the borders only (PIL renormalises the kernel; MATLAB mirrors the image)."""
    return image.resize((image.width // scale, image.height // scale), Image.Resampling.BICUBIC)


def bicubic_upscale(image: Image.Image, scale: int) -> Image.Image:
    """The baseline every SR network is compared with: bicubic interpolation up to `scale` times the size."""
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.BICUBIC)


def camvid_frames(root: Path, exclude_drive: str | None = HELDOUT_DRIVE, only_drive: str | None = None) -> list[Path]:
    """CamVid photos of the train and val splits (not the labels), by drive (the file name's prefix)."""
    frames = [p for split in ("train", "val") if (root / split).is_dir() for p in list_images([root / split])]
    if only_drive:
        return [p for p in frames if p.name.startswith(only_drive)]
    return [p for p in frames if not (exclude_drive and p.name.startswith(exclude_drive))]


def raccoon_train(root: Path) -> list[Path]:
    """The raccoon photos of its train split (train_labels.csv), not its 40 test photos."""
    with open(root / "train_labels.csv", newline="") as f:
        names = sorted({row["filename"] for row in csv.DictReader(f)})
    return [root / "images" / name for name in names if (root / "images" / name).is_file()]


def training_photos() -> dict[str, list[Path]]:
    """The default training photos under the data root, by source; a missing source is left out."""
    sources: dict[str, list[Path]] = {}
    if (folder := data_path("superres", "CSun_Hays80")).is_dir():
        sources["CSun_Hays80"] = list_images([folder])
    if (folder := data_path("segmentation", "camvid")).is_dir():
        sources["camvid"] = camvid_frames(folder)
    if (folder := data_path("detection", "raccoon")).is_dir():
        sources["raccoon"] = raccoon_train(folder)
    return {name: paths for name, paths in sources.items() if paths}


def urban_heldout() -> list[Path]:
    """CamVid drive 0006R0: street scenes from a drive no training photo comes from (empty without the data)."""
    folder = data_path("segmentation", "camvid")
    return camvid_frames(folder, only_drive=HELDOUT_DRIVE) if folder.is_dir() else []


def benchmark_folder(name: str) -> Path:
    return data_path("superres", name)


SAMPLING = ("photo", "area")  # how PatchPairs picks the photo each patch is cut from


class PatchPairs(Dataset):
    """An endless supply of (low-res, high-res) patch pairs cut from photos kept in memory.

    Patch `index` is a function of (seed, index) only: with EpochSampler every epoch sees new patches, a run is
    reproducible and a resumed run sees exactly the patches it would have.

    `sample_by="photo"` picks every photo equally often; `"area"` in proportion to its pixels, so a 1-megapixel
    scene is not cut as often as a 480x360 video frame."""

    def __init__(self, paths: Sequence[Path], scale: int, hr_size: int, seed: int = 0, min_zoom: float = 0.6,
                 sample_by: str = "photo"):
        if not paths:
            raise ValueError("no training photos")
        if hr_size % scale:
            raise ValueError(f"the patch size {hr_size} is not a multiple of the scale {scale}")
        self.scale, self.hr_size, self.seed, self.min_zoom = scale, hr_size, seed, min_zoom
        photos = [Image.open(p).convert("RGB") for p in paths]
        # a photo smaller than a patch has no patch to give (e.g. 20 of the raccoon photos at x4's 192 px)
        self.photos = [photo for photo in photos if min(photo.size) >= hr_size]
        self.skipped = len(photos) - len(self.photos)
        if not self.photos:
            raise ValueError(f"every training photo is smaller than the {hr_size}-px patch")
        if sample_by not in SAMPLING:
            raise ValueError(f"sample_by must be one of {SAMPLING}, not {sample_by!r}")
        areas = np.array([photo.width * photo.height for photo in self.photos], dtype=np.float64)
        self.photo_weights = areas / areas.sum() if sample_by == "area" else None

    def __len__(self) -> int:
        return 2**62  # endless: EpochSampler decides which indices an epoch uses

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        photo = self.photos[rng.choice(len(self.photos), p=self.photo_weights)]
        zoom = rng.uniform(self.min_zoom, 1.0)  # <1: the region is larger than the patch and shrunk to it
        region = min(round(self.hr_size / zoom), *photo.size)
        left, top = rng.integers(photo.width - region + 1), rng.integers(photo.height - region + 1)
        high = photo.crop((left, top, left + region, top + region))
        if region != self.hr_size:
            high = high.resize((self.hr_size, self.hr_size), Image.Resampling.LANCZOS)
        transpose = DIHEDRAL[rng.integers(len(DIHEDRAL))]
        if transpose is not None:
            high = high.transpose(transpose)
        return to_tensor(downscale(high, self.scale)), to_tensor(high)


def collate_pairs(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[tuple[torch.Tensor], torch.Tensor]:
    """The Learner's batch: ((low_res,), high_res)."""
    return (torch.stack([low for low, _ in pairs]),), torch.stack([high for _, high in pairs])


def patch_loader(paths: Sequence[Path], *, scale: int, hr_size: int, bs: int, batches_per_epoch: int, seed: int,
                 workers: int = 0, min_zoom: float = 0.6, sample_by: str = "photo") -> DataLoader:
    return DataLoader(PatchPairs(paths, scale, hr_size, seed, min_zoom, sample_by), batch_size=bs, collate_fn=collate_pairs,
                      sampler=EpochSampler(batches_per_epoch * bs), num_workers=workers)


def centre_pairs(paths: Sequence[Path], scale: int, hr_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each photo's central `hr_size` square and its down-sampled version: a fixed validation set."""
    pairs = []
    for path in paths:
        photo = Image.open(path).convert("RGB")
        side = min(hr_size, min(photo.size) - min(photo.size) % scale)
        left, top = (photo.width - side) // 2, (photo.height - side) // 2
        high = photo.crop((left, top, left + side, top + side))
        pairs.append((to_tensor(downscale(high, scale)), to_tensor(high)))
    return pairs


def validation_loader(paths: Sequence[Path], scale: int, hr_size: int, bs: int = 8) -> DataLoader:
    return DataLoader(centre_pairs(paths, scale, hr_size), batch_size=bs, collate_fn=collate_pairs)
