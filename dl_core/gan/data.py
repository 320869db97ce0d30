"""The GANs' images: a collection of pictures (a zip or folder) for the WGAN, two unpaired domains for the CycleGAN.

WGAN: Oxford-102 flowers at 64 px (`gan/flowers64.zip` under the data root) stands in for the lesson's LSUN
bedrooms, which are 42 GB. Any zip or folder of images works the same way (`read_images` squares and resizes
them), among them the lesson's 20% LSUN bedroom sample once unzipped. A fixed seed holds out 10% for evaluation.

CycleGAN: CamVid's street scenes in two unpaired domains: A = daylight (drives 0006R0, 0016E5), B = dusk (drive
0001TP, filmed at dusk). The lesson's horse2zebra has the same shape (`trainA/`, `trainB/`, `testA/`, `testB/`)
and `download_horse2zebra` fetches it where there is network.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from dl_core.paths import data_path, download_file
from dl_core.photos import EpochSampler, list_images

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
HORSE2ZEBRA_URL = "https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/horse2zebra.zip"
# The lesson's "20% sample" of LSUN bedrooms (Jeremy Howard's Kaggle data set; public, Kaggle's download API)
LSUN_SAMPLE_URL = "https://www.kaggle.com/api/v1/datasets/download/jhoward/lsun_bedroom"
DUSK_DRIVE = "0001TP"  # CamVid's dusk sequence; the other drives were filmed by day


def flowers_zip() -> Path:
    return data_path("gan", "flowers64.zip")


def download_lsun_sample(dest: str | Path = "data", timeout: float = 60) -> Path:
    """The lesson's LSUN bedroom sample as one zip of JPEGs in nested folders (several GB; needs network). `read_images`
    reads the zip as it is, so nothing is unpacked."""
    target = Path(dest) / "lsun_bedroom.zip"
    if target.is_file():
        return target
    return download_file(LSUN_SAMPLE_URL, target, timeout)


def square(image: Image.Image, size: int) -> Image.Image:
    """The central square of `image`, resized to size x size (the lesson's crop for LSUN)."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    return image if side == size else image.resize((size, size), Image.Resampling.LANCZOS)


def _image_members(source: Path) -> list[str]:
    with zipfile.ZipFile(source) as archive:
        return sorted(n for n in archive.namelist() if n.lower().endswith(IMAGE_SUFFIXES))


def read_images(source: str | Path, size: int = 64, limit: int | None = None) -> torch.Tensor:
    """Every image of a zip or folder (recursively), squared and resized: uint8 (N, 3, size, size), sorted by name.
    Unreadable files are skipped, an empty source is an error."""
    source = Path(source)
    arrays = []

    def add(data: bytes | Path) -> None:
        try:
            with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
                arrays.append(np.asarray(square(image.convert("RGB"), size)))
        except (OSError, ValueError):
            pass  # one broken file in a collection of thousands is not worth stopping for

    if source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            for name in _image_members(source)[:limit]:
                add(archive.read(name))
    elif source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]:
            add(path)
    else:
        raise FileNotFoundError(f"{source} is neither a zip of images nor a folder")
    if not arrays:
        raise ValueError(f"no readable images in {source}")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def heldout_split(n: int, fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): a seeded permutation, the last `fraction` held out."""
    order = np.random.default_rng(seed).permutation(n)
    n_heldout = max(1, round(n * fraction))
    return np.sort(order[:-n_heldout]), np.sort(order[-n_heldout:])


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the generator's tanh range."""
    return images.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255]."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class RealImages(Dataset):
    """uint8 images held in memory -> ((image,), image) in [-1, 1], randomly mirrored (seeded by index)."""

    def __init__(self, images: torch.Tensor, flip: bool = True, seed: int = 0):
        self.images, self.flip, self.seed = images, flip, seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = to_unit(self.images[index])
        if self.flip and np.random.default_rng([self.seed, index]).random() < 0.5:
            image = image.flip(-1)
        return (image,), image


def real_loader(images: torch.Tensor, bs: int, seed: int, shuffle: bool = True, workers: int = 0) -> DataLoader:
    """Batches of real images; `shuffle` draws a fresh seeded order every epoch. The last partial batch is dropped
    (BatchNorm in the critic wants full batches)."""
    if not shuffle:
        return DataLoader(RealImages(images, flip=False), batch_size=bs, num_workers=workers)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(RealImages(images, seed=seed), batch_size=bs, shuffle=True, drop_last=True, generator=generator,
                      num_workers=workers)


# --- CycleGAN: two unpaired domains -----------------------------------------------------------------------------
def camvid_domains(root: Path | None = None, heldout_dusk: int = 12) -> dict[str, list[Path]]:
    """CamVid frames as day (A) and dusk (B). The last `heldout_dusk` dusk frames (a contiguous stretch of the drive,
    so no near-duplicate neighbour is trained on) and the day drive 0006R0 are held out."""
    root = root or data_path("segmentation", "camvid")
    frames = list_images([root / "train", root / "val"])
    dusk = sorted(p for p in frames if p.name.startswith(DUSK_DRIVE))
    day = sorted(p for p in frames if not p.name.startswith(DUSK_DRIVE))
    day_heldout = [p for p in day if p.name.startswith("0006R0")]
    return {"train_a": [p for p in day if p not in day_heldout], "train_b": dusk[:-heldout_dusk] if heldout_dusk else dusk,
            "test_a": day_heldout, "test_b": dusk[-heldout_dusk:] if heldout_dusk else []}


def folder_domains(root: str | Path) -> dict[str, list[Path]]:
    """horse2zebra's layout (the CycleGAN authors' datasets): trainA/, trainB/, testA/, testB/."""
    root = Path(root)
    domains = {f"{split}_{side.lower()}": list_images([root / f"{split}{side}"])
               for split in ("train", "test") for side in ("A", "B") if (root / f"{split}{side}").is_dir()}
    if not domains.get("train_a") or not domains.get("train_b"):
        raise FileNotFoundError(f"{root} has no trainA/ and trainB/ images (the CycleGAN datasets' layout)")
    return domains


def download_horse2zebra(dest: str | Path = "data", timeout: float = 60) -> Path:
    """The lesson's horse2zebra (111 MB; needs network): returns the folder holding trainA/trainB/testA/testB."""
    dest = Path(dest)
    folder = dest / "horse2zebra"
    if (folder / "trainA").is_dir():
        return folder
    archive = download_file(HORSE2ZEBRA_URL, dest / "horse2zebra.zip", timeout)
    with zipfile.ZipFile(archive) as z:
        for member in z.namelist():  # refuse absolute paths and '..': a zip must stay inside dest
            if Path(member).is_absolute() or ".." in Path(member).parts:
                raise ValueError(f"unsafe path in {archive}: {member}")
        z.extractall(dest)
    archive.unlink()
    return folder


class UnpairedCrops(Dataset):
    """Endless (A crop, B crop) pairs, unpaired: each from a random photo of its domain, a random `size` square of it
    after resizing the photo to `scale` of its size, randomly mirrored. Index -> crops is a pure function."""

    def __init__(self, paths_a: Sequence[Path], paths_b: Sequence[Path], size: int, scale: float = 1.0, seed: int = 0):
        if not paths_a or not paths_b:
            raise ValueError("both domains need images")
        self.size, self.seed = size, seed
        self.a = [self._load(p, scale) for p in paths_a]
        self.b = [self._load(p, scale) for p in paths_b]
        if min(min(img.shape[1:]) for img in self.a + self.b) < size:
            raise ValueError(f"an image is smaller than the {size}-px crop at scale {scale}")

    @staticmethod
    def _load(path: Path, scale: float) -> torch.Tensor:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if scale != 1.0:
                image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
            return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)

    def __len__(self) -> int:
        return 2**62

    def _crop(self, images: list[torch.Tensor], rng: np.random.Generator) -> torch.Tensor:
        image = images[rng.integers(len(images))]
        top, left = rng.integers(image.shape[1] - self.size + 1), rng.integers(image.shape[2] - self.size + 1)
        crop = to_unit(image[:, top:top + self.size, left:left + self.size])
        return crop.flip(-1) if rng.random() < 0.5 else crop

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, index])
        a, b = self._crop(self.a, rng), self._crop(self.b, rng)
        return (a, b), a


def unpaired_loader(paths_a: Sequence[Path], paths_b: Sequence[Path], *, size: int, scale: float, bs: int,
                    batches_per_epoch: int, seed: int, workers: int = 0) -> DataLoader:
    return DataLoader(UnpairedCrops(paths_a, paths_b, size, scale, seed), batch_size=bs,
                      sampler=EpochSampler(batches_per_epoch * bs), num_workers=workers)
