"""Zero-shot scores of a DeViSE head, beside ConSE on the same features and words.

The protocol (issue 22): whole classes are held out of training ("unseen"); every test image is then labelled with
the nearest of all the class names (10-way for CIFAR-10, seen and unseen competing, as a user of the tab would see
it), and with the nearest words of the whole vocabulary.

    top1_unseen        accuracy on the unseen classes' test images, 10-way by nearest class name
    top1_all           the same on every test image
    hit5_vocab         the true class name among the 5 nearest words of the whole vocabulary (every test image)
    conse_top1_unseen  ConSE's top1_unseen: the ImageNet classifier's 10 most probable classes' vectors, averaged
                       by probability (no training), then labelled the same way

The 10-way labels are chosen as the head is shipped: its seen-class penalty (calibration.py) subtracted from the
cosines of the class names it was trained on (`top1_unseen_uncalibrated`, `top1_all_uncalibrated`: without it).
hit5_vocab ranks the whole vocabulary by plain cosine, as the lesson's search does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dl_core.devise.conse import DEFAULT_TOP_T, class_vectors, conse_embed, imagenet_class_vectors
from dl_core.devise.features import FeatureSplit
from dl_core.devise.model import DeviseHead, seen_bias
from dl_core.devise.search import nearest
from dl_core.devise.vectors import WordVectors


def class_name_vectors(classes: list[str], vectors: WordVectors) -> torch.Tensor:
    """The class names' phrase vectors (C, d); every name must have one (CIFAR-10's all do)."""
    table, known = class_vectors(classes, vectors)
    if not known.all():
        raise ValueError(f"no word vector for the class name {classes[int((~known).nonzero()[0])]!r}")
    return table


@torch.inference_mode()
def embed_split(head: DeviseHead, split: FeatureSplit, bs: int = 1000) -> torch.Tensor:
    """The head's unit vectors (N, d) for every image of a split."""
    head.eval()
    return torch.cat([head.embed(split.features[i:i + bs]) for i in range(0, len(split), bs)])


def conse_from_logits(logits: torch.Tensor, vectors: WordVectors, top_t: int = DEFAULT_TOP_T) -> torch.Tensor:
    """ConSE's unit vectors (N, d) from ImageNet logits (N, 1000)."""
    table, known = imagenet_class_vectors(vectors)
    return conse_embed(logits.softmax(dim=1), table, top_t, known)


def conse_split(split: FeatureSplit, vectors: WordVectors, top_t: int = DEFAULT_TOP_T) -> torch.Tensor:
    """ConSE's unit vectors (N, d) for every image of a split, from its ImageNet logits."""
    return conse_from_logits(split.logits, vectors, top_t)


def _accuracies(embedded: torch.Tensor, split: FeatureSplit, names: torch.Tensor, unseen: torch.Tensor,
                bias: torch.Tensor | None = None) -> tuple[float, float]:
    scores = embedded @ names.T
    predicted = (scores if bias is None else scores + bias).argmax(dim=1)
    correct = predicted == split.labels
    return float(correct[unseen].float().mean()), float(correct.float().mean())


def zero_shot_scores(head: DeviseHead, split: FeatureSplit, vectors: WordVectors, unseen: list[str],
                     penalty: float | None = None) -> dict:
    """{"top1_unseen", "top1_all", "hit5_vocab", "conse_top1_unseen", "conse_top1_all", "top1_unseen_uncalibrated",
    "top1_all_uncalibrated", "seen_penalty", "n", "n_unseen"} on a test split; `vectors` is the vocabulary searched
    for hit5_vocab (the class names must be in it)."""
    missing = [name for name in unseen if name not in split.classes]
    if missing:
        raise ValueError(f"not classes of this data: {', '.join(missing)} (classes: {', '.join(split.classes)})")
    names = F.normalize(class_name_vectors(split.classes, vectors), dim=1)
    is_unseen = torch.isin(split.labels, torch.tensor([split.classes.index(name) for name in unseen]))
    embedded = embed_split(head, split)
    trained = head.config.trained_words
    penalty = head.config.seen_penalty if penalty is None else penalty  # another value: to draw the trade-off
    top1_unseen, top1_all = _accuracies(embedded, split, names, is_unseen, seen_bias(split.classes, trained, penalty))
    raw_unseen, raw_all = _accuracies(embedded, split, names, is_unseen)
    conse_unseen, conse_all = _accuracies(conse_split(split, vectors), split, names, is_unseen)
    _, top5 = nearest(embedded, vectors.vectors, 5)  # the vocabulary as the lesson searches it: plain cosines
    true_rows = torch.tensor([vectors.index.get(name, -1) for name in split.classes])[split.labels]
    hit5 = (top5 == true_rows[:, None]).any(dim=1)
    return {"top1_unseen": round(top1_unseen, 4), "top1_all": round(top1_all, 4), "hit5_vocab": round(float(hit5.float().mean()), 4),
            "conse_top1_unseen": round(conse_unseen, 4), "conse_top1_all": round(conse_all, 4),
            "top1_unseen_uncalibrated": round(raw_unseen, 4), "top1_all_uncalibrated": round(raw_all, 4),
            "seen_penalty": penalty, "n": len(split),
            "n_unseen": int(is_unseen.sum())}


@torch.inference_mode()
def word_ranks(searcher, photos: list, words: list[str], top_k: int = 10) -> dict:
    """How near given words land to photos of one kind (e.g. raccoons), DeViSE beside ConSE: for each word, the median
    rank among the whole vocabulary (1: the nearest) and the share of photos with it among the `top_k` nearest; and
    the words most often in those top k. `searcher`: a dl_core.devise.infer.DeviseSearcher; photos: RGB images."""
    import statistics
    from collections import Counter

    unknown = [word for word in words if word not in searcher.words]
    if unknown:
        raise ValueError(f"not in the vocabulary: {', '.join(unknown)}")
    vocabulary = searcher.words.vectors.float()
    rows = torch.tensor([searcher.words.index[word] for word in words])
    ranks = {method: [] for method in ("devise", "conse")}
    frequent = {method: Counter() for method in ranks}
    features, logits = (torch.cat(parts) for parts in zip(*(searcher.encode([photo]) for photo in photos)))
    points = {"devise": searcher.embed(features), "conse": conse_from_logits(logits, searcher.words)}  # (N, d) each
    for method, per_photo in points.items():
        for point in per_photo:
            cosines = vocabulary @ point
            ranks[method].append([int((cosines > cosines[row]).sum()) + 1 for row in rows])
            frequent[method].update(searcher.words.words[j] for j in cosines.topk(top_k).indices.tolist())
    result = {"n": len(photos), "top_k": top_k}
    for method, per_photo in ranks.items():
        result[method] = {word: {"median_rank": statistics.median(r[i] for r in per_photo),
                                 f"in_top{top_k}": round(sum(r[i] <= top_k for r in per_photo) / len(per_photo), 4)}
                          for i, word in enumerate(words)}
        result[method]["most_frequent"] = [word for word, _ in frequent[method].most_common(8)]
    return result
