"""Precomputed image features (the lesson's `precompute=True`): the frozen ImageNet EfficientNet-Lite0 run once over a
collection, keeping its pooled 1,280-d features (what the DeViSE head is trained on) and its 1,000 ImageNet logits
(what the ConSE baseline combines), cached on disk so that training and evaluating never run the backbone again.

    features, logits = encode_images(images_uint8_nhwc, FrozenLite0(160))   # (N, 1280) and (N, 1000), float32
    split = cifar_features(zip_path, "test", size=160)                      # FeatureSplit, cached under data/cache/
"""
from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dl_core.backbones import FrozenLite0

DEFAULT_SIZE = 160  # CIFAR's 32 px up-sampled: ImageNet's classes show well from here, at half the cost of 224 px
FEATURES_VERSION = 1  # part of the cache key: bump when what is computed changes


def encode_images(images: np.ndarray | torch.Tensor, extractor: FrozenLite0, bs: int = 64,
                  progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, 1280) and ImageNet logits (N, 1000) of uint8 images (N, H, W, 3), in batches, float32."""
    from tqdm.auto import tqdm

    images = torch.as_tensor(np.asarray(images))
    features, logits = [], []
    for start in tqdm(range(0, len(images), bs), desc="Lite0 features", unit="batch", disable=not progress):
        f, l = extractor(images[start:start + bs].permute(0, 3, 1, 2).float() / 255)
        features.append(f)
        logits.append(l)
    return torch.cat(features), torch.cat(logits)


@dataclass
class FeatureSplit:
    features: torch.Tensor  # (N, 1280) float32: EfficientNet-Lite0's pooled features
    logits: torch.Tensor  # (N, 1000) float32: its ImageNet logits
    labels: torch.Tensor  # (N,) int64, indices into classes
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def only(self, keep: torch.Tensor) -> "FeatureSplit":
        """The rows where the boolean mask `keep` (N,) is True."""
        return FeatureSplit(self.features[keep], self.logits[keep], self.labels[keep], self.classes)

    def without_classes(self, names: list[str]) -> "FeatureSplit":
        """Every row whose class is not in `names` (what a zero-shot training set keeps)."""
        drop = torch.tensor([self.classes.index(name) for name in names], dtype=torch.int64)
        return self.only(~torch.isin(self.labels, drop))


def cifar_features(source: str | Path, split: str, size: int = DEFAULT_SIZE, cache_dir: str | Path = "data/cache",
                   limit_per_class: int | None = None, seed: int = 0, progress: bool = True) -> FeatureSplit:
    """The features of a CIFAR-10 split (a zip or folder as `dl_core.cifar.data.read_split` reads), computed once and
    cached as safetensors (keyed by the source's path, size and time, the image size, the sample and the version).
    `limit_per_class`: a seeded sample of that many images per class (every class equally)."""
    from safetensors.torch import load_file

    from dl_core.cifar.data import read_split

    source = Path(source)
    data = read_split(source, split, cache_dir=cache_dir, mmap=True)  # pixels are read only if features are computed
    if limit_per_class is not None:
        data = data.subset(limit_per_class * len(data.classes), seed)
    stat = source.stat()
    key = hashlib.sha1(f"{source.resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{split}|{size}|{limit_per_class}|{seed}|"
                       f"{FEATURES_VERSION}".encode()).hexdigest()[:12]
    cache = Path(cache_dir) / f"devise-{split}-{size}px-{key}.safetensors"
    labels = torch.as_tensor(np.asarray(data.labels), dtype=torch.int64)
    if cache.is_file():
        tensors = load_file(cache)
        return FeatureSplit(tensors["features"], tensors["logits"], tensors["labels"], list(data.classes))
    features, logits = encode_images(data.images, FrozenLite0(size), progress=progress)
    save_atomically({"features": features, "logits": logits, "labels": labels}, cache)
    return FeatureSplit(features, logits, labels, list(data.classes))


def save_atomically(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Write a feature cache as safetensors through a temporary file and a rename: a reader (another request,
    another process) sees no file or the whole file."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    save_file({name: tensor.contiguous() for name, tensor in tensors.items()}, tmp)
    os.replace(tmp, path)


def word_targets(split: FeatureSplit, label_vectors: torch.Tensor, soft_vectors: torch.Tensor | None = None,
                 soft_weight: float = 0.0) -> torch.Tensor:
    """What each image is regressed onto (N, d), unit vectors: its label's word vector (the lesson's target), or,
    with `soft_vectors` (N, d) and 0 < soft_weight <= 1, that blended with the ImageNet classifier's view of the
    image (its ConSE vector): a distillation stand-in for ImageNet's labels, which teaches more of the word space
    than the training classes' few points."""
    targets = F.normalize(label_vectors[split.labels], dim=1)
    if soft_vectors is not None and soft_weight > 0:
        targets = F.normalize((1 - soft_weight) * targets + soft_weight * F.normalize(soft_vectors, dim=1), dim=1)
    return targets
