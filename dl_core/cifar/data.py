"""CIFAR-10 as class folders of small images: read from a zip or a folder, kept in memory as uint8, augmented
the lesson's way (4-pixel reflection padding, random 32-pixel crop, horizontal flip).

    train = read_split("../shared/data/cifar10/cifar10-jpg.zip", "train")   # Split(images (N, 32, 32, 3) uint8, labels, classes)
    dl = train_loader(train, bs=512, seed=42)                                # batches ((images (B, 3, 32, 32) in [0, 1],), labels)

Sources: the data root's `cifar10/cifar10-jpg.zip` (`train/<class>/*.jpg`, `test/<class>/*.jpg`), any folder or zip
laid out the same way (the lesson's PNG folders), or, online, the fast.ai PNG archive the lesson used
(`download_cifar10`). The fast.ai archive is chosen over torchvision's because torchvision's batches are pickles,
and this project never unpickles anything downloaded.
"""
from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from dl_core.cifar.model import CIFAR10_CLASSES
from dl_core.paths import download_file

FASTAI_CIFAR10_URL = "https://s3.amazonaws.com/fast-ai-imageclas/cifar10.tgz"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
SPLITS = ("train", "test")


@dataclass
class Split:
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int64, indices into classes
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int, seed: int) -> "Split":
        """A seeded sample of n images with every class equally represented (as far as n allows)."""
        if n >= len(self):
            return self
        rng = np.random.default_rng(seed)
        per_class = [rng.permutation(np.flatnonzero(self.labels == c)) for c in range(len(self.classes))]
        order = np.stack([idx[: -(-n // len(per_class))] for idx in per_class], axis=1).reshape(-1)[:n]
        return Split(self.images[order], self.labels[order], self.classes)


def _members(source: Path, split: str) -> list[tuple[str, str]]:
    """(class name, member path) of every image of a split, in a fixed order."""
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            names = archive.namelist()
    else:
        names = [p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()]
    found = []
    for name in names:
        parts = PurePosixPath(name).parts
        # <split>/<class>/<file>, possibly under one top folder (the fast.ai archive's cifar10/)
        if len(parts) >= 3 and parts[-3] == split and PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES:
            found.append((parts[-2], name))
    return sorted(found)


def _decode(data: bytes, size: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        img = img.convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.BICUBIC)
        return np.asarray(img, dtype=np.uint8)


def read_split(source: str | Path, split: str, size: int = 32, cache_dir: str | Path | None = "data/cache",
               mmap: bool = False) -> Split:
    """Every image of `split` ("train" or "test") under `source` (a zip or folder of <split>/<class>/<image>).
    Classes are CIFAR-10's when the folders are exactly those, else the folder names sorted. Decoded images are
    cached as .npy (keyed by the source's path, size and modification time): 60,000 JPEGs decode in ~10 s, load in 0.1 s.
    `mmap`: map a cached split's images read-only instead of reading them (for taking small subsets)."""
    source = Path(source)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist")
    cache = _cache_file(source, split, size, cache_dir)
    if cache is not None and cache.with_suffix(".labels.npy").is_file():
        images = np.load(cache.with_suffix(".images.npy"), allow_pickle=False, mmap_mode="r" if mmap else None)
        labels = np.load(cache.with_suffix(".labels.npy"), allow_pickle=False)
        classes = cache.with_suffix(".classes.txt").read_text().split("\n")
        return Split(images, labels, classes)
    members = _members(source, split)
    if not members:
        raise ValueError(f"{source} holds no images under {split}/<class>/")
    names = sorted({cls for cls, _ in members})
    classes = list(CIFAR10_CLASSES) if set(names) == set(CIFAR10_CLASSES) else names
    index = {name: i for i, name in enumerate(classes)}
    images = np.empty((len(members), size, size, 3), np.uint8)
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            for i, (_, name) in enumerate(members):
                images[i] = _decode(archive.read(name), size)
    else:
        for i, (_, name) in enumerate(members):
            images[i] = _decode((source / name).read_bytes(), size)
    labels = np.array([index[cls] for cls, _ in members], np.int64)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache.with_suffix(".images.npy"), images)
        cache.with_suffix(".classes.txt").write_text("\n".join(classes))
        np.save(cache.with_suffix(".labels.npy"), labels)  # written last: its presence marks a complete cache
    return Split(images, labels, classes)


def _cache_file(source: Path, split: str, size: int, cache_dir) -> Path | None:
    if cache_dir is None:
        return None
    stat = source.stat()
    key = hashlib.sha1(f"{source.resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{size}".encode()).hexdigest()[:12]
    return Path(cache_dir) / f"cifar-{split}-{size}px-{key}.npy"


def download_cifar10(dest: str | Path = "data/cifar10", timeout: float = 30) -> Path:
    """The lesson's CIFAR-10 PNG folders from fast.ai's archive (~130 MB; needs network). Returns the folder
    holding train/ and test/."""
    dest = Path(dest)
    folder = dest / "cifar10"
    if (folder / "test").is_dir():
        return folder
    archive = download_file(FASTAI_CIFAR10_URL, dest / "cifar10.tgz", timeout)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")  # the "data" filter refuses links and paths leaving dest
    archive.unlink()
    return folder


def data_root_zip() -> Path:
    """Where the data root keeps CIFAR-10 (it may be absent)."""
    from dl_core.paths import data_path

    return data_path("cifar10", "cifar10-jpg.zip")


def find_cifar10(data: str | Path | None, download_to: str | Path | None = None) -> Path:
    """The CIFAR-10 source to read: `data` if given, else the data root's zip, else (with `download_to`) a download."""
    if data:
        return Path(data)
    bundled = data_root_zip()
    if bundled.is_file():
        return bundled
    if download_to is None:
        raise FileNotFoundError(f"no CIFAR-10 at {bundled}; pass --data or allow a download")
    return download_cifar10(download_to)


# --- augmentation and loaders ----------------------------------------------------------------------------
def pad_crop_flip(image: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """The lesson's training augmentation: reflection-pad by `pad`, crop back to size at a random offset,
    flip left-right half the time. image (3, H, W) float -> (3, H, W)."""
    _, h, w = image.shape
    padded = F.pad(image.unsqueeze(0), (pad, pad, pad, pad), mode="reflect").squeeze(0)
    top, left, flip = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist() + [torch.rand(1, generator=generator).item() < 0.5]
    crop = padded[:, top:top + h, left:left + w]
    return crop.flip(-1) if flip else crop


class ImageSet(Dataset):
    """Items ((image (3, H, W) float in [0, 1],), label); augmented with `pad_crop_flip` when `augment`."""

    def __init__(self, split: Split, augment: bool, seed: int = 0):
        images = split.images if split.images.flags.writeable else np.array(split.images)  # a read-only map: copy
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2)  # (N, 3, H, W) uint8, a view
        self.labels = torch.from_numpy(split.labels)
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image = self.images[i].float().div_(255)
        if self.augment:
            image = pad_crop_flip(image, self.generator)
        return (image,), self.labels[i]


def train_loader(split: Split, bs: int, seed: int, workers: int = 0) -> DataLoader:
    """Shuffled, augmented, last partial batch dropped (BatchNorm dislikes a batch of 3)."""
    order = torch.Generator().manual_seed(seed)
    return DataLoader(ImageSet(split, augment=True, seed=seed), batch_size=bs, shuffle=True, drop_last=len(split) > bs,
                      generator=order, num_workers=workers, persistent_workers=workers > 0)


def eval_loader(split: Split, bs: int = 500, workers: int = 0) -> DataLoader:
    return DataLoader(ImageSet(split, augment=False), batch_size=bs, shuffle=False, num_workers=workers)
