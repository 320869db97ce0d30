"""Lesson 14: how good a segmentation is: per-class IoU, their mean (mIoU) and pixel accuracy, Void ignored.

    scores = SegmentationScores(n_classes=11, void_index=11)
    scores.update(predicted, labels)         # (B, H, W) class indices each, any number of times
    scores.compute()                         # {"miou", "pixel_acc", "per_class_iou": [...], "n_pixels", "edge_pixel_acc", ...}
    evaluate_pairs(model, data)              # every photo of a LabelledImages at its own resolution

IoU is counted over the whole set, not averaged per photo: a class's intersection and union are summed over every
pixel of every photo first (as SegNet and the CamVid literature report it), so a photo where a class covers three
pixels cannot swing its score. Pixel accuracy flatters: road, sky and building cover most of a street scene and
are easy; the thin classes (pole, sign, pedestrian, bicyclist) are where mIoU is won or lost.
"""
from __future__ import annotations

import math
import time

import torch
from tqdm.auto import tqdm

from dl_core.segmentation.data import LabelledImages


EDGE_PX = 2  # a pixel within this many pixels of a change of label is an edge pixel


def edge_pixels(labels: torch.Tensor, radius: int = EDGE_PX) -> torch.Tensor:
    """(..., H, W) bool: pixels with another label (Void included) within `radius` pixels, along rows, columns or
    diagonals: where a class meets another."""
    x = labels.reshape(-1, 1, *labels.shape[-2:]).float()
    size = 2 * radius + 1
    highest = torch.nn.functional.max_pool2d(x, size, stride=1, padding=radius)
    lowest = -torch.nn.functional.max_pool2d(-x, size, stride=1, padding=radius)
    return (highest != lowest).reshape(labels.shape)


class SegmentationScores:
    """A confusion matrix over labelled pixels (torchmetrics), and the scores read from it; also pixel accuracy on
    the edges (within EDGE_PX of another label) and inside the regions, the lesson's "the edges are the hard part"."""

    def __init__(self, n_classes: int, void_index: int):
        from torchmetrics.classification import MulticlassConfusionMatrix

        self.n_classes, self.void_index = n_classes, void_index
        self.confusion = MulticlassConfusionMatrix(num_classes=n_classes, ignore_index=void_index)
        self.edge = torch.zeros(2, 2, dtype=torch.long)  # [edge?][correct?] labelled-pixel counts

    def update(self, predicted: torch.Tensor, labels: torch.Tensor) -> None:
        """predicted, labels: (B, H, W) or (H, W) class indices; labels equal to void_index are skipped."""
        predicted, labels = predicted.long().cpu(), labels.long().cpu()
        self.confusion.update(predicted.reshape(-1), labels.reshape(-1))
        labelled = labels != self.void_index
        edge, correct = edge_pixels(labels)[labelled], (predicted == labels)[labelled]
        self.edge += torch.bincount(edge.long() * 2 + correct.long(), minlength=4).reshape(2, 2)

    def compute(self) -> dict:
        scores = scores_from_confusion(self.confusion.compute())
        interior, edge = self.edge.double()
        scores["interior_pixel_acc"] = float(interior[1] / interior.sum()) if interior.sum() else math.nan
        scores["edge_pixel_acc"] = float(edge[1] / edge.sum()) if edge.sum() else math.nan
        scores["edge_share"] = float(edge.sum() / self.edge.sum()) if self.edge.sum() else math.nan
        return scores


def scores_from_confusion(confusion: torch.Tensor) -> dict:
    """confusion[true, predicted] pixel counts -> IoU per class (NaN for a class neither present nor predicted, left out
    of the mean), mIoU and pixel accuracy."""
    confusion = confusion.double()
    true_positive = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - true_positive
    iou = torch.where(union > 0, true_positive / union.clamp(min=1), torch.full_like(union, math.nan))
    total = float(confusion.sum())
    return {
        "miou": float(iou.nanmean()) if bool((union > 0).any()) else math.nan,
        "pixel_acc": float(true_positive.sum()) / total if total else math.nan,
        "per_class_iou": [float(v) for v in iou],
        "n_pixels": int(total),
    }


def evaluate_pairs(model, data: LabelledImages, progress: bool = True) -> dict:
    """Score a model on every photo of `data` at the label's own resolution (the model works at its configured size
    and its class probabilities are resized back), as `train/segment.py evaluate` prints it:
    {"miou", "pixel_acc", "per_class_iou": {class: IoU}, "n", "seconds"}."""
    from dl_core.segmentation.infer import predict_probabilities

    scores = SegmentationScores(len(data.classes), data.void_index)
    started = time.perf_counter()
    for photo, mask in tqdm(list(zip(data.photos, data.masks)), desc="scoring", disable=not progress, leave=False):
        scores.update(predict_probabilities(model, photo).argmax(0), mask)
    result = scores.compute()
    return {"miou": round(result["miou"], 4), "pixel_acc": round(result["pixel_acc"], 4),
            "per_class_iou": {name: round(v, 4) for name, v in zip(data.classes, result["per_class_iou"])},
            "n": len(data), "edge_pixel_acc": round(result["edge_pixel_acc"], 4),
            "interior_pixel_acc": round(result["interior_pixel_acc"], 4), "edge_share": round(result["edge_share"], 4),
            "seconds": round(time.perf_counter() - started, 1)}
