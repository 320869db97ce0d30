"""What the DeViSE tab asks of a trained head: photos into word space, the words nearest an image, the images nearest
an expression of words, and a collection of images to search (CIFAR-10 test where the data is here, the user's own).

    searcher = DeviseSearcher.load("weights/devise")
    features, logits = searcher.encode([photo])          # frozen Lite0: (1, 1280), (1, 1000)
    point = searcher.embed(features)[0]                  # (50,) unit vector in GloVe space
    searcher.nearest_words(point, 10)                    # [("raccoon", 0.71), ...]
    collection = cifar_collection(searcher)              # 10,000 embedded test images, features cached on disk
    collection.search(searcher.query("sail + boat"), 12)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dl_core.backbones import FrozenLite0
from dl_core.devise.conse import imagenet_class_names
from dl_core.devise.model import DeviseHead, seen_bias
from dl_core.devise.query import query_vector
from dl_core.devise.search import nearest
from dl_core.devise.vectors import WordVectors
from dl_core.hub import load_model

SCOPES = ("all", "imagenet")  # the whole vocabulary, or only words that name an ImageNet class
# Words of ImageNet class names that name nothing ("hen-of-the-woods", "go-kart", "jack-o'-lantern"): left out of the
# "imagenet" scope, where they would be the nearest words to everything (the most frequent words are hubs).
FUNCTION_WORDS = frozenset({"a", "an", "and", "des", "for", "go", "o'", "of", "s", "t", "the"})


def square_crop(image: Image.Image) -> Image.Image:
    """The centred square of a photo: the backbone sees a square, and squashing would distort shapes instead."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side))


@dataclass
class DeviseSearcher:
    head: DeviseHead
    words: WordVectors
    extractor: FrozenLite0
    imagenet_names: list[str]
    imagenet_word_mask: torch.Tensor  # (V,) bool: the vocabulary's words that are (part of) an ImageNet class name

    @classmethod
    def load(cls, folder: str | Path) -> DeviseSearcher:
        head = load_model(DeviseHead, folder).eval()
        words = WordVectors.load(folder)
        if words.dim != head.config.out_features:
            raise ValueError(f"the vocabulary has {words.dim}-d vectors, the head predicts {head.config.out_features}-d")
        names = imagenet_class_names()
        mask = torch.zeros(len(words), dtype=torch.bool)
        for name in names:
            for word in words.phrase_words(name):
                if word in words and word not in FUNCTION_WORDS:
                    mask[words.index[word]] = True
        return cls(head, words, FrozenLite0(head.config.image_size), names, mask)

    @torch.inference_mode()
    def encode(self, images: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        """RGB photos -> the frozen backbone's pooled features (N, 1280) and ImageNet logits (N, 1000)."""
        size = self.head.config.image_size
        batch = np.stack([np.asarray(square_crop(image).resize((size, size), Image.BICUBIC)) for image in images])
        return self.extractor(torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255)

    @torch.inference_mode()
    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """Features (N, 1280) -> unit vectors (N, d) in word space."""
        return self.head.embed(features)

    def nearest_words(self, point: torch.Tensor, k: int = 10, scope: str = "all",
                      penalty: float = 0.0) -> list[tuple[str, float]]:
        """The k vocabulary words nearest a unit vector (d,), best first, by cosine minus `penalty` for the words that
        were training labels (the score returned is that difference)."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, not {scope!r}")
        mask = self.imagenet_word_mask if scope == "imagenet" else None
        bias = None
        if penalty:
            bias = torch.zeros(len(self.words))
            bias[[self.words.index[w] for w in self.head.config.trained_words if w in self.words]] = -penalty
        scores, rows = nearest(point[None], self.words.vectors, k, mask=mask, bias=bias)
        return [(self.words.words[row], float(score)) for score, row in zip(scores[0], rows[0]) if row >= 0]

    def classifier_top(self, logits: torch.Tensor, k: int = 5) -> list[tuple[str, float]]:
        """The plain ImageNet classifier's k most probable classes for logits (1000,)."""
        probs, classes = logits.softmax(dim=0).topk(k)
        return [(self.imagenet_names[c], float(p)) for p, c in zip(probs, classes)]

    def class_scores(self, point: torch.Tensor, classes: list[str], penalty: float | None = None) -> list[dict]:
        """Each class name's cosine to a unit vector (d,), and the score it is ranked by: minus the seen-class
        penalty (the head's own, or `penalty`) where the name was a training label."""
        penalty = self.head.config.seen_penalty if penalty is None else penalty
        vectors = torch.stack([self.words.phrase_vector(name) for name in classes])
        cosines = vectors @ point
        bias = seen_bias(classes, self.head.config.trained_words, penalty)
        trained = set(self.head.config.trained_words)
        return [{"name": name, "cosine": float(c), "score": float(c + b), "trained": name in trained}
                for name, c, b in zip(classes, cosines, bias)]

    def query(self, text: str) -> torch.Tensor:
        """An expression such as 'sail + boat' as a unit vector (d,); QueryError explains a bad one."""
        return query_vector(text, self.words)


@dataclass
class ImageCollection:
    """Images embedded in word space: embeddings (N, d) unit rows, the images themselves, and a caption each."""
    embeddings: torch.Tensor
    images: list[Image.Image] | np.ndarray  # PIL images, or uint8 (N, H, W, 3) read lazily (a memory map)
    captions: list[str]

    def __len__(self) -> int:
        return len(self.captions)

    def image(self, i: int) -> Image.Image:
        item = self.images[i]
        return item if isinstance(item, Image.Image) else Image.fromarray(np.asarray(item))

    def search(self, point: torch.Tensor, k: int) -> list[tuple[int, float]]:
        """The k images nearest a unit vector (d,), best first: (index, cosine)."""
        if len(self) == 0:
            return []
        scores, rows = nearest(point[None], self.embeddings, k)
        return [(int(row), float(score)) for score, row in zip(scores[0], rows[0]) if row >= 0]


def photo_collection(searcher: DeviseSearcher, photos: list[Image.Image], captions: list[str],
                     bs: int = 16) -> ImageCollection:
    """The user's own photos, embedded (in batches, so a few dozen stay within memory)."""
    embedded = [searcher.embed(searcher.encode(photos[i:i + bs])[0]) for i in range(0, len(photos), bs)]
    embeddings = torch.cat(embedded) if embedded else torch.empty(0, searcher.head.config.out_features)
    return ImageCollection(embeddings, list(photos), list(captions))


def cifar_collection(searcher: DeviseSearcher, source: str | Path | None = None,
                     cache_dir: str | Path = "data/cache", progress: bool = False) -> ImageCollection:
    """CIFAR-10's 10,000 test images (the data root's copy, or `source`), embedded. The backbone's features are
    computed once and cached on disk (dl_core/devise/features.py), so only the first call ever takes minutes."""
    from dl_core.cifar.data import find_cifar10, read_split
    from dl_core.devise.evaluate import embed_split
    from dl_core.devise.features import cifar_features

    source = find_cifar10(source)
    split = cifar_features(source, "test", searcher.head.config.image_size, cache_dir=cache_dir, progress=progress)
    data = read_split(source, "test", cache_dir=cache_dir, mmap=True)
    embeddings = embed_split(searcher.head, split)
    captions = [f"CIFAR-10 test #{i}: {split.classes[label]}" for i, label in enumerate(split.labels.tolist())]
    return ImageCollection(embeddings, data.images, captions)
