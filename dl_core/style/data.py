"""The style networks' data: the painting, content photos (random crops) to train on, held-out photos to check on.

    train_dl, valid_dl = loaders(content_folders, heldout_folders, size=256, bs=8, batches_per_epoch=200, seed=42)

Content photos by default: CamVid's street scenes, Sun & Hays' 80 scenes, the raccoon photos and BSD68
(`default_content()`, 816 photos); CSet5 and CSet14 are held out
(`default_heldout()`), all under the data root (dl_core.paths). A batch is the Learner's `((photos,), photos)`:
the photo is both the network's input and the content target of its perceptual loss.

A second held-out check lies outside the data root: nine photos of city buildings and streets from OpenCV's
sample images (`fetch_city_photos`), a kind of photo none of the training sets holds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader

from dl_core.paths import data_path, display_path, download_file
from dl_core.photos import EpochSampler, RandomCrops, list_images, to_tensor

# What the photo folders under the data root are (the model cards name their sources).
PHOTO_SETS = {
    "detection/raccoon/images": "the raccoon data set, datitran/raccoon_dataset, MIT",
    "superres/CBSD68": "BSD68, the Berkeley segmentation benchmark as distributed with the super-resolution test sets",
    "superres/CSet5": "Set5, a super-resolution test set",
    "superres/CSet14": "Set14, a super-resolution test set",
    "superres/CSun_Hays80": "Sun & Hays' 80 scenes, one per SUN category, as distributed with the super-resolution test sets",
}
PHOTO_SETS["segmentation/camvid/train"] = PHOTO_SETS["segmentation/camvid/val"] = (
    "CamVid's street scenes, Brostow et al. 2008, SegNet's release, research use")


def default_content() -> list[Path]:
    """The training photos, as varied as the data root allows (a network trained on 268 raccoon and BSD68 photos
    alone painted photos of other kinds far worse): CamVid train + val, CSun_Hays80, the raccoon images, BSD68."""
    return [data_path("segmentation", "camvid", "train"), data_path("segmentation", "camvid", "val"),
            data_path("superres", "CSun_Hays80"), data_path("detection", "raccoon", "images"), data_path("superres", "CBSD68")]


def default_heldout() -> list[Path]:
    """The photos no network trains on: CSet5 and CSet14."""
    return [data_path("superres", "CSet5"), data_path("superres", "CSet14")]


# Architecture and streets from OpenCV's sample images: name -> (path under raw.githubusercontent.com/opencv/, SHA-256
# of the copy the model cards were measured on). Aerial views of a town, a hotel, a palace, two streets of old
# brick houses (Leuven), a shop front, a parking sign and a colonnade.
CITY_PHOTOS = {
    "aero1.jpg": ("opencv/4.x/samples/data/aero1.jpg", "d9a69191f6e3642ea361bc3c62e677b2f40fe6534b78da540f4155e0734b59ef"),
    "aero3.jpg": ("opencv/4.x/samples/data/aero3.jpg", "1c407146f8762b3b14a7953ff9bc4c01ed64c467d7277122e769bf7e816017a4"),
    "building.jpg": ("opencv/4.x/samples/data/building.jpg", "742a1baad62ac82e91e718e77eedf7e85c2eddc4badfb8c87c6cbc86c45a8b07"),
    "home.jpg": ("opencv/4.x/samples/data/home.jpg", "23b8cf46a1965d0ec33459b875aed43187802834db49e0daa9fa2cc842e9d8d2"),
    "leuvenA.jpg": ("opencv/4.x/samples/data/leuvenA.jpg", "b2977cdbd9fb3f94dadd6f76cf586d145676deb8a22b5f0f42149d21c058c09f"),
    "leuvenB.jpg": ("opencv/4.x/samples/data/leuvenB.jpg", "5bb41a60038a2baa5d8ea0eaba55e6e3050d721b254cf79d8d8998d7e49d664a"),
    "scenetext01.jpg": ("opencv_contrib/4.x/modules/text/samples/scenetext01.jpg",
                        "7f3041a7019ab4d33d2452bc757d8c4f38616bfde71431e12f7ec370d7b2018e"),
    "scenetext03.jpg": ("opencv_contrib/4.x/modules/text/samples/scenetext03.jpg",
                        "cadf4a3d29a7ba6fe976b53fa65f490cc2868375e8feb3d93f26029f05c662ca"),
    "scenetext06.jpg": ("opencv_contrib/4.x/modules/text/samples/scenetext06.jpg",
                        "e4d64f10bbfb27b2c5980cb048fd0abe20dd74868ba5460298de473ced53b518"),
}
CITY_FOLDER = Path("data/city-photos")  # git-ignored, beside the repository's code
CITY_SOURCE = "OpenCV's sample images from opencv/samples/data and opencv_contrib/modules/text/samples, Apache-2.0"


def fetch_city_photos(dest: str | Path = CITY_FOLDER, local_copy: str | Path | None = None, timeout: float = 60) -> Path:
    """The city photos in `dest`, copied from a local copy of OpenCV's samples (any folder holding them somewhere
    beneath, e.g. Debian's `opencv-doc` unpacked: `apt-get download opencv-doc && dpkg -x opencv-doc_*.deb opencv-doc`)
    or else downloaded from GitHub. Photos already in `dest` are kept. Each is checked against CITY_PHOTOS'
    SHA-256: a ValueError names any that differ from the copies the model cards were measured on."""
    import hashlib
    import shutil

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    found = {p.name: p for p in Path(local_copy).rglob("*") if p.name in CITY_PHOTOS} if local_copy else {}
    for name, (source, _) in CITY_PHOTOS.items():
        target = dest / name
        if target.exists():
            continue
        if name in found:
            shutil.copyfile(found[name], target)
        elif local_copy:
            raise FileNotFoundError(f"{name} is not under {local_copy}: pass the folder OpenCV's samples were unpacked to")
        else:
            download_file(f"https://raw.githubusercontent.com/opencv/{source}", target, timeout)
    differ = [name for name, (_, sha) in CITY_PHOTOS.items() if hashlib.sha256((dest / name).read_bytes()).hexdigest() != sha]
    if differ:
        raise ValueError(f"{', '.join(differ)} in {dest} differ from the photos the model cards were measured on "
                         "(SHA-256): delete them and fetch again")
    return dest


def describe_folders(folders: Sequence[str | Path]) -> str:
    """Photo folders as a model card names them: each path (../shared/data/... under the data root) and, for the
    data sets this project uses, what it is, said once for folders of one set in a row (CamVid's train and val)."""
    groups: list[tuple[list[str], str | None]] = []
    for folder in folders:
        shown = display_path(folder)
        if Path(folder).name == CITY_FOLDER.name:  # outside the data root: PHOTO_SETS cannot name it
            known = f"{CITY_SOURCE}, `python train/style.py city-photos`"
        else:
            known = PHOTO_SETS.get(shown.removeprefix("../shared/data/"))
        if groups and known and groups[-1][1] == known:
            groups[-1][0].append(shown)
        else:
            groups.append(([shown], known))
    return ", ".join(", ".join(f"`{shown}`" for shown in paths) + (f" ({known})" if known else "") for paths, known in groups)


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
