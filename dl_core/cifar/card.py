"""The DarkNet model card, written from config.json and metrics.json by code (never by hand)."""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from dl_core import hub
from dl_core.cifar.model import DarknetConfig, n_parameters
from dl_core.paths import display_path

RECIPE_ARGS = ("epochs", "bs", "lr", "wd", "label_smoothing", "div", "pct_start", "precise_bn", "mixed_precision", "seed",
               "train_subset")


def train_facts(args: argparse.Namespace, source: Path, n_train: int, seconds: float) -> dict:
    """metrics.json's record of a train run: what the card says about data, recipe and hardware."""
    return {
        "command": args.command_line,
        "args": {name: getattr(args, name) for name in RECIPE_ARGS},
        "data": display_path(source),
        "n_train": n_train,
        "seconds": round(seconds, 1),
        "hardware": hub.describe_hardware(),
        "date": time.strftime("%Y-%m-%d"),
    }


def lineage(init_folder: str | Path) -> list[dict]:
    """The runs that made the folder a train run started from (`--init`): its own lineage, then its run, with its
    test accuracy, so the card can show each cycle's gain."""
    metrics = json.loads((Path(init_folder) / "metrics.json").read_text())
    history = metrics.get("history", [])
    run = {"command": metrics.get("facts", {}).get("command", "?"), "epochs": len(history),
           "seconds": round(sum(h["seconds"] for h in history), 1), "hardware": metrics.get("facts", {}).get("hardware", "?"),
           "test": metrics.get("test", {})}
    return [*metrics.get("lineage", []), run]


def _describe_run(run: dict) -> str:
    test = run.get("test", {})
    return (f"{run['epochs']} epochs, {run['seconds'] / 60:.1f} minutes on {run['hardware']}; test accuracy "
            f"{test.get('accuracy', float('nan')):.2%} (flip TTA), {test.get('accuracy_no_tta', float('nan')):.2%} without")


def _history_table(history: list[dict]) -> str:
    rows = "\n".join(f"| {h['epoch'] + 1} | {h['train_loss']:.3f} | {h['valid_loss']:.3f} | {h.get('accuracy', float('nan')):.2%} | "
                     f"{h['seconds']:.0f} |" for h in history)
    return ("| epoch | train loss | test loss | test accuracy (no TTA, running BN statistics) | seconds |\n"
            "|---|---|---|---|---|\n" + rows)


def _precise_bn(batches: int) -> str:
    if not batches:
        return ""
    return (f" After the last epoch, BatchNorm's statistics were recomputed over {batches} training batches with the "
            f"final weights (precise BN, `--precise-bn`): the lesson's momentum of 0.01 leaves running statistics that "
            f"lag behind weights a high LR kept moving.")


@hub.ends_with_fast_path_section
def model_card(config: DarknetConfig, metrics: dict, folder: str = "weights/darknet-cifar10") -> str:
    facts, test = metrics.get("facts", {}), metrics.get("test", {})
    args = facts.get("args", {})
    history = metrics.get("history", [])
    data = facts.get("data", "../shared/data/cifar10/cifar10-jpg.zip")
    per_class = " · ".join(f"{name} {acc:.1%}" for name, acc in test.get("per_class", {}).items())
    minutes = sum(h.get("seconds", 0) for h in history) / 60  # the epochs' own times: a resumed run's add up too
    median_epoch = statistics.median(h["seconds"] for h in history) if history else 0
    lesson = config.num_blocks == [1, 2, 4, 6, 3] and config.nf == 32
    return f"""---
library_name: fastai-part2-demos
license: mit
tags: [image-classification, cifar10, darknet, fastai-part2, pytorch_model_hub_mixin]
datasets: [cifar10]
metrics: [accuracy]
---
# Lesson 12 · DarkNet on CIFAR-10, trained from scratch

The lesson's DarkNet (`dl_core/cifar/model.py`): bias-free 3×3 conv → BatchNorm (momentum {config.bn_momentum}) → LeakyReLU(0.1)
blocks, 1×1-bottleneck residual layers, a stride-{"/".join(map(str, config.strides))} conv at the start of each group, adaptive
average pooling and one linear layer. {"The lesson's configuration" if lesson else "A CPU-sized configuration of the same code"}:
groups {config.num_blocks}, stem width {config.nf}, channels {" → ".join(map(str, [config.nf, *config.widths]))},
{n_parameters(config) / 1e6:.2f}M parameters, weights stored in fp16. Input: 32×32 RGB in [0, 1] (the model
normalises with CIFAR-10's channel statistics). Classes: {", ".join(config.classes)}.

## Data
CIFAR-10 (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html): {facts.get("n_train", 50000):,} training
images, {test.get("n", 10000):,} test images, from `{data}` (a JPEG re-encoding of the original batches: pixels differ
slightly, and scores run a few points below the originals'). As in the lesson, the test split is the validation set
printed after every epoch; nothing was chosen on it (fixed recipe, no early stopping).

## Metrics
| test images | accuracy (flip TTA) | accuracy (no TTA) |
|---|---|---|
| {test.get("n", 0):,} | **{test.get("accuracy", float("nan")):.2%}** | {test.get("accuracy_no_tta", float("nan")):.2%} |

Per class (TTA): {per_class}.

Reproduce: `python train/cifar.py evaluate --weights {folder} --data {data}` (add `--no-tta` for the plain score).
TTA averages the class probabilities of the image and its mirror image.

For scale (`../shared/docs/lessons.md`): the lesson's full DarkNet reached 91.1% in 30 epochs (52 GPU-minutes)
on the original PNGs.

## Training
{hub.lineage_section(metrics.get("lineage", []), minutes * 60, "weights", "--init", _describe_run)}```
{facts.get("command", "?")}
```
{len(history)} epochs, {minutes:.1f} minutes on {facts.get("hardware", "?")} (median epoch {median_epoch:.0f} s).
SGD with Nesterov momentum, weight decay {args.get("wd", "?")}, batch {args.get("bs", "?")}, 1cycle: LR from
{args.get("lr", 0) / args.get("div", 1):.3g} up to {args.get("lr", "?")} over the first {args.get("pct_start", 0):.0%} of training
(cosine), then down to {args.get("lr", 0) / 1e4:.2g}; momentum 0.95 → 0.85 → 0.95 against it. Label smoothing
{args.get("label_smoothing", "?")}; {args.get("mixed_precision", "no")} mixed precision; augmentation: 4-pixel
reflection padding, random 32-pixel crop, horizontal flip.{_precise_bn(args.get("precise_bn", 0))}

{_history_table(history)}
"""


def rewrite_card(folder: str | Path) -> Path:
    folder = Path(folder)
    config = DarknetConfig(**json.loads((folder / "config.json").read_text()))
    metrics = json.loads((folder / "metrics.json").read_text())
    (folder / "README.md").write_text(model_card(config, metrics, f"weights/{folder.name}"))
    return folder / "README.md"
