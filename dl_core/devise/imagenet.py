"""ImageNet class folders as DeViSE training data (online: the lesson trained on ImageNet itself).

    python train/devise.py train --imagenet /data/imagenet --out weights/devise-imagenet

The folder is the usual layout, `train/<wnid>/<image>.JPEG` (e.g. `train/n01440764/n01440764_10026.JPEG`), with the
WordNet ids named by a mapping file beside it: `LOC_synset_mapping.txt` (Kaggle's copy), `synset_words.txt` (Caffe's)
or `classids.txt` (the lesson's), one class per line, `n01440764 tench, Tinca tinca`. Without one, a folder of exactly
ImageNet-1k's 1,000 ids is named by torchvision's class list (whose order is the ids' sorted order).

A class is held out ("unseen") when any of its synonyms contains an unseen word: `--unseen cat,truck` drops "tabby,
tabby cat", "Egyptian cat", "garbage truck", "fire engine, fire truck"..., so none of their images is ever read.
Each kept class is labelled with its first synonym ("tench"), whose GloVe phrase vector is the target; classes none of
whose words the vocabulary knows are dropped too (the lesson kept only the classes it had vectors for).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from dl_core.devise.features import FEATURES_VERSION, FeatureSplit, save_atomically
from dl_core.devise.infer import square_crop

MAPPING_FILES = ("LOC_synset_mapping.txt", "synset_words.txt", "classids.txt")
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
_WNID = re.compile(r"n\d{8}")
_TOKENS = re.compile(r"[\s_\-]+")


@dataclass
class Synset:
    wnid: str
    synonyms: list[str]  # "tabby", "tabby cat"

    @property
    def name(self) -> str:
        return self.synonyms[0]

    def mentions(self, words: set[str]) -> bool:
        """Whether any synonym contains one of `words` (lower-case) as a whole token."""
        return any(token in words for synonym in self.synonyms for token in _TOKENS.split(synonym.lower()))


def read_mapping(text: str) -> dict[str, list[str]]:
    """`n01440764 tench, Tinca tinca` lines -> {wnid: synonyms}; blank lines skipped, anything else a ValueError."""
    mapping = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        wnid, _, names = line.strip().partition(" ")
        synonyms = [name.strip() for name in names.split(",") if name.strip()]
        if not _WNID.fullmatch(wnid) or not synonyms:
            raise ValueError(f"line {number} is not '<wnid> <name>[, <name>...]': {line[:80]!r}")
        mapping[wnid] = synonyms
    return mapping


def mapping_file(root: Path) -> Path | None:
    """The first of MAPPING_FILES in `root`, else in its parent (where Kaggle's copy keeps it), else None."""
    for folder in (root, root.parent):
        for name in MAPPING_FILES:
            if (folder / name).is_file():
                return folder / name
    return None


def synsets(root: str | Path, split: str = "train") -> list[Synset]:
    """The classes of `root/split/`, sorted by WordNet id, named by the mapping file in `root` (or its parent)."""
    root = Path(root)
    folder = root / split
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist (expected {split}/<wnid>/<image>.JPEG under {root})")
    wnids = sorted(p.name for p in folder.iterdir() if p.is_dir() and _WNID.fullmatch(p.name))
    if not wnids:
        raise ValueError(f"{folder} holds no WordNet-id folders (n01440764/ ...)")
    candidate = mapping_file(root)
    if candidate is not None:
        mapping = read_mapping(candidate.read_text(encoding="utf-8"))
        missing = [wnid for wnid in wnids if wnid not in mapping]
        if missing:
            raise ValueError(f"{candidate.name} does not name {len(missing)} of the folders ({', '.join(missing[:3])}...)")
        return [Synset(wnid, mapping[wnid]) for wnid in wnids]
    if len(wnids) == 1000:
        from dl_core.devise.conse import imagenet_class_names

        return [Synset(wnid, [name]) for wnid, name in zip(wnids, imagenet_class_names())]
    raise ValueError(f"{root} has no {' / '.join(MAPPING_FILES)} naming its {len(wnids)} class folders (only the full "
                     "1,000 are named without one)")


def class_images(root: str | Path, classes: list[Synset], split: str = "train", per_class: int | None = None,
                 seed: int = 0) -> tuple[list[Path], list[int]]:
    """Every image path of the given classes (a seeded sample of `per_class` each) and its index into `classes`."""
    rng = np.random.default_rng(seed)
    paths, labels = [], []
    for label, synset in enumerate(classes):
        files = sorted(p for p in (Path(root) / split / synset.wnid).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if per_class is not None and len(files) > per_class:
            files = [files[i] for i in sorted(rng.choice(len(files), per_class, replace=False))]
        paths += files
        labels += [label] * len(files)
    return paths, labels


class _SquareImages(Dataset):
    """Image files -> uint8 (3, size, size): the centred square, resized (what the tab does to a photo)."""

    def __init__(self, paths: list[Path], size: int):
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        with Image.open(self.paths[i]) as image:
            square = square_crop(image.convert("RGB")).resize((self.size, self.size), Image.BICUBIC)
        return torch.from_numpy(np.asarray(square).copy()).permute(2, 0, 1)


def imagenet_features(root: str | Path, classes: list[Synset], size: int, split: str = "train",
                      per_class: int | None = None, seed: int = 0, cache_dir: str | Path = "data/cache",
                      bs: int = 128, workers: int = 4, device: str | None = None, progress: bool = True) -> FeatureSplit:
    """Frozen Lite0 features and logits of the classes' images, streamed from disk in batches (ImageNet does not fit
    in memory as pixels, its features do: 1,280 + 1,000 floats an image), on the GPU when there is one, and cached as
    safetensors keyed by the folder, the classes, the sample and the size."""
    from safetensors.torch import load_file
    from tqdm.auto import tqdm

    from dl_core.backbones import FrozenLite0

    paths, labels = class_images(root, classes, split, per_class, seed)
    if not paths:
        raise ValueError(f"no images under {Path(root) / split} for the {len(classes)} classes kept")
    names = [synset.name for synset in classes]
    key = hashlib.sha1("|".join([str(Path(root).resolve()), split, str(size), str(per_class), str(seed),
                                 str(len(paths)), str(FEATURES_VERSION), *(s.wnid for s in classes)]).encode()).hexdigest()[:12]
    cache = Path(cache_dir) / f"devise-imagenet-{split}-{size}px-{key}.safetensors"
    label_tensor = torch.tensor(labels, dtype=torch.int64)
    if cache.is_file():
        tensors = load_file(cache)
        return FeatureSplit(tensors["features"], tensors["logits"], label_tensor, names)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    extractor = FrozenLite0(size).to(device)
    loader = DataLoader(_SquareImages(paths, size), batch_size=bs, num_workers=workers, pin_memory=device == "cuda")
    features, logits = [], []
    for batch in tqdm(loader, desc=f"Lite0 features, ImageNet {split}", unit="batch", disable=not progress):
        f, l = extractor(batch.to(device).float() / 255)
        features.append(f.cpu())
        logits.append(l.cpu())
    split_features = FeatureSplit(torch.cat(features), torch.cat(logits), label_tensor, names)
    save_atomically({"features": split_features.features, "logits": split_features.logits}, cache)
    return split_features


def training_split(root: str | Path, unseen: list[str], vectors, size: int, per_class: int | None = None,
                   seed: int = 0, cache_dir: str | Path = "data/cache", workers: int = 4) -> tuple[FeatureSplit, dict]:
    """The DeViSE training split of an ImageNet folder: the classes that mention no unseen word and have a word
    vector, their images' features; and what was dropped, {"classes", "held_out", "without_vector"}, for the card."""
    classes = synsets(root)
    unseen_words = {word.lower() for word in unseen}
    held_out = [s for s in classes if s.mentions(unseen_words)]
    without_vector = [s for s in classes if s not in held_out and vectors.phrase_vector(s.name) is None]
    kept = [s for s in classes if s not in held_out and s not in without_vector]
    if not kept:
        raise ValueError(f"no class of {root} is left to train on ({len(held_out)} held out, "
                         f"{len(without_vector)} without a word vector)")
    split = imagenet_features(root, kept, size, per_class=per_class, seed=seed, cache_dir=cache_dir, workers=workers)
    return split, {"classes": len(kept), "held_out": [s.name for s in held_out],
                   "without_vector": [s.name for s in without_vector]}
