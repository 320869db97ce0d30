"""ConSE: a zero-shot embedding from an ordinary classifier, no training in word space needed.

Norouzi et al., "Zero-Shot Learning by Convex Combination of Semantic Embeddings" (ICLR 2014,
https://arxiv.org/abs/1312.5650), the training-free counterpart of DeViSE's regression: take the classifier's T
most probable training classes and average their word vectors, weighted by those probabilities renormalised over
the T,

    f(x) = sum_t p(y_t | x) s(y_t) / sum_t p(y_t | x)        t = 1..T, the T most probable classes

so that an image the classifier splits between "tiger" and "lion" lands between their vectors, where a label it was
never trained on ("big cat", "liger") may be the nearest word. The result is renormalised to a unit vector, so it
can be searched like `DeviseHead.embed`'s output. The paper's T is 10.

The training classes here are ImageNet's 1,000, named offline by torchvision (no download); each name's vector is
its GloVe phrase vector. A class none of whose words GloVe knows gets a zero vector and is left out of the top T:
23 of the 1,000 with all 400k words ("brambling", "kuvasz"), 123 with the 100k most frequent ("toucan", "wombat").
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dl_core.devise.vectors import WordVectors

DEFAULT_TOP_T = 10  # the paper's


def conse_embed(probs: torch.Tensor, class_vectors: torch.Tensor, top_t: int = DEFAULT_TOP_T,
                known: torch.Tensor | None = None) -> torch.Tensor:
    """Classifier probabilities (B, C) and the classes' word vectors (C, d) -> unit vectors (B, d).

    top_t: how many of the most probable classes to combine (clamped to C).
    known: (C,) bool, False for classes without a word vector; they are never among the top T.
    """
    if probs.dim() != 2 or class_vectors.dim() != 2 or probs.shape[1] != class_vectors.shape[0]:
        raise ValueError(f"need probs (B, C) and class_vectors (C, d), got {tuple(probs.shape)} and "
                         f"{tuple(class_vectors.shape)}")
    if top_t < 1:
        raise ValueError(f"top_t must be at least 1, not {top_t}")
    if known is not None:
        # Zero, not -inf: if fewer than T classes are known, the unknown ones picked fill in with weight 0.
        probs = probs.masked_fill(~known.to(probs.device), 0)
    top_p, top_classes = probs.topk(min(top_t, probs.shape[1]), dim=1)  # (B, T)
    weights = top_p / top_p.sum(dim=1, keepdim=True).clamp_min(torch.finfo(probs.dtype).tiny)  # rows sum to 1
    combined = torch.einsum("bt,btd->bd", weights, class_vectors.to(probs)[top_classes])  # (B, d)
    return F.normalize(combined, dim=1)


def imagenet_class_names() -> list[str]:
    """ImageNet-1k's 1,000 class names in class-index order ("tench", "goldfish", ..., "toilet tissue"), as
    torchvision ships them (offline; importing torchvision takes a second or two, so it happens here, not at
    import). torchvision's names are unique: where ImageNet's repeat, one is qualified ("crane bird", "crane")."""
    from torchvision.models import EfficientNet_B0_Weights

    return list(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def class_vectors(names: list[str], vectors: WordVectors) -> tuple[torch.Tensor, torch.Tensor]:
    """Each class name's phrase vector -> (vectors (C, d), known (C,) bool); an unknown name gets zeros, False."""
    table = torch.zeros(len(names), vectors.dim)
    known = torch.zeros(len(names), dtype=torch.bool)
    for row, name in enumerate(names):
        vector = vectors.phrase_vector(name)
        if vector is not None:
            table[row], known[row] = vector, True
    return table, known


def imagenet_class_vectors(vectors: WordVectors) -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,000 ImageNet classes' phrase vectors (1000, d) and which classes have one (1000,) bool."""
    return class_vectors(imagenet_class_names(), vectors)
