"""Test accuracy of a DarkNet: the number the model card quotes and `train/cifar.py evaluate` prints."""
from __future__ import annotations

from pathlib import Path

import torch

from dl_core.cifar.data import Split, eval_loader, read_split
from dl_core.cifar.model import Darknet
from dl_core.cifar.training import class_probabilities, predictions
from dl_core.hub import load_model

LIMIT_SEED = 0  # the sample `--limit N` scores (data tests score one to stay fast)


def evaluate_model(model: Darknet, test: Split) -> dict:
    """Accuracy with and without flip TTA, and per class (with TTA)."""
    with torch.inference_mode():  # one pass over the images and their mirror images serves both scores
        probs, mirror, truth = class_probabilities(model, eval_loader(test), mirrored=True)
    plain, flipped = probs.argmax(-1), ((probs + mirror) / 2).argmax(-1)
    per_class = {name: round(float((flipped[truth == c] == c).float().mean()), 4) for c, name in enumerate(test.classes)
                 if (truth == c).any()}
    return {"accuracy": float((flipped == truth).float().mean()), "accuracy_no_tta": float((plain == truth).float().mean()),
            "n": len(truth), "per_class": per_class}


def evaluate_folder(weights: str | Path, data: str | Path, tta: bool = True, limit: int = 0) -> dict:
    """{"accuracy", "n"} of a weight folder on the test split of `data` (a zip or folder); `limit`: a seeded
    class-balanced sample of that many images."""
    model = load_model(Darknet, weights)
    test = read_split(data, "test")
    if limit:
        test = test.subset(limit, LIMIT_SEED)
    if list(test.classes) != list(model.config.classes):
        raise ValueError(f"{data}'s classes {test.classes} are not the model's {model.config.classes}")
    with torch.inference_mode():
        predicted, truth = predictions(model, eval_loader(test), tta=tta)
    return {"accuracy": round(float((predicted == truth).float().mean()), 4), "n": len(truth)}
