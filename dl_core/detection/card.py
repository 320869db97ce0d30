"""The lessons 8-9 model card, written entirely from a weight folder's config.json and metrics.json.

    card = model_card(config, metrics)      # config.json's dict, metrics.json's dict (with its "facts")

metrics.json holds the scores (`focal`, and `bce` with --compare-bce), the focal run's per-epoch `history`
and the run's `facts`: the command, its recipe arguments, the data it saw, the commands that reproduce the
scores and the hardware. `run_facts` makes them at the end of training; `facts_from_old_card` once for a
folder written before metrics.json had them.
"""
from __future__ import annotations

import argparse
import re
import statistics
from fractions import Fraction
from pathlib import Path
from typing import Callable

from dl_core.backbones import BACKBONE_SOURCES
from dl_core.detection.data import AUGMENTATION
from dl_core.detection.model import SSD, SSDConfig
from dl_core.hub import ends_with_fast_path_section, recorded_train_command
from dl_core.paths import display_path

# The train arguments the card quotes (the model's own settings are in config.json).
RECIPE_ARGS = ("raccoon", "coco", "voc2007", "coco_valid", "seed", "epochs", "bs", "lr", "backbone_lr_mult", "wd",
               "clip", "compare_bce")
DATA_SOURCES = {
    "raccoon": "raccoon (datitran/raccoon_dataset, MIT)",
    "coco_tiny": "coco_tiny (COCO images, CC-BY; fastai's coco_tiny)",
    "voc2007": "Pascal VOC 2007 trainval (through torchvision)",
}


def evaluate_commands(weights: str, raccoon: str | None, coco: str | None) -> dict[str, str]:
    """The `evaluate` command that reproduces each held-out score of a folder trained on these data paths."""
    run = f"python train/detect.py evaluate --weights {weights}"
    commands = {}
    if raccoon:
        commands["raccoon_test"] = f"{run} --data {display_path(raccoon)} --split test"
    if coco:
        commands["coco_tiny_heldout"] = f"{run} --data {display_path(Path(coco) / 'train.json')} --split heldout"
    return commands


def run_facts(args: argparse.Namespace, data: dict, hardware: str) -> dict:
    """metrics.json's "facts" of a finished train command (`data`: dl_core.detection.data.describe_data)."""
    recipe = {name: getattr(args, name) for name in RECIPE_ARGS}
    for name in ("raccoon", "coco", "voc2007"):  # data paths as the README writes them, the same on every machine
        recipe[name] = display_path(recipe[name]) if recipe[name] else recipe[name]
    return {"command": args.command_line, "args": recipe, "data": data, "hardware": hardware,
            "evaluate": evaluate_commands(args.out or "WEIGHTS", args.raccoon, args.coco)}


def facts_from_old_card(folder: str | Path, parse_train_command: Callable[[str], argparse.Namespace],
                        describe: Callable[[argparse.Namespace], dict]) -> dict:
    """The facts of a folder written before metrics.json had them, from its model card: the train command (the
    first code block of its Training section; its arguments as `parse_train_command` reads them) and the
    hardware ("... minutes on <hardware>;"). `describe(args)` gives the data facts."""
    card = (Path(folder) / "README.md").read_text()
    training = card.partition("## Training")[2]
    command = recorded_train_command(card)
    if command is None:
        raise ValueError(f"{folder}/README.md has no train command to migrate (a ``` block under ## Training)")
    hardware = re.search(r"minutes on (.+?);", training)
    args = parse_train_command(command)
    args.command_line = command
    return run_facts(args, describe(args), hardware.group(1) if hardware else "unknown hardware")


# --- the card ----------------------------------------------------------------------------------------------
def _ratio(width: float, height: float) -> str:
    ratio = Fraction(width / height).limit_denominator(10)
    return f"{ratio.numerator}:{ratio.denominator}"


def anchor_description(config: SSDConfig) -> str:
    grids = ", ".join(f"{g}×{g}" for g in config.grids)
    zooms = ", ".join(f"{z:g}" for z in config.zooms)
    ratios = ", ".join(_ratio(w, h) for w, h in config.ratios)
    return f"{config.n_anchors} anchors (grids {grids} × zooms {{{zooms}}} × width:height {{{ratios}}})"


def smallest_anchor(config: SSDConfig) -> tuple[float, float]:
    """Width and height, as fractions of the image, of the smallest anchor (by area): finest grid, smallest zoom."""
    grid = max(config.grids)
    return min(((z * w / grid, z * h / grid) for z in config.zooms for w, h in config.ratios), key=lambda s: s[0] * s[1])


def _scores_table(metrics: dict) -> str:
    rows = "\n".join(f"| {name} | {m['n']} | {m['map50']:.3f} | {m['map']:.3f} |" for name, m in metrics["focal"].items())
    return f"| split | images | mAP@0.5 | mAP@[.5:.95] |\n|---|---|---|---|\n{rows}\n"


def _comparison(metrics: dict) -> str:
    if "bce" not in metrics:
        return ""
    rows = "\n".join(f"| {name} | {metrics['bce'][name]['map50']:.3f} | {m['map50']:.3f} | {metrics['bce'][name]['map']:.3f} "
                     f"| {m['map']:.3f} |" for name, m in metrics["focal"].items() if name in metrics["bce"])
    return ("\n### Focal loss vs plain BCE (same data, schedule and seed)\n| split | mAP@0.5 BCE | mAP@0.5 focal | "
            f"mAP BCE | mAP focal |\n|---|---|---|---|---|\n{rows}\n")


def _data_section(config: SSDConfig, facts: dict) -> str:
    args, data = facts["args"], facts["data"]
    train, heldout = data["train_images"], data["heldout_images"]
    lines = []
    if "raccoon" in train:
        lines.append(f"- {DATA_SOURCES['raccoon']}: {train['raccoon']} training photos, the "
                     f"{heldout.get('raccoon_test', 0)} of `test_labels.csv` held out.")
    if "coco_tiny" in train:
        sizes = data.get("coco_tiny_sizes", {})
        at = f" at {sizes['median_image_side_px']:g} px" if sizes else ""
        lines.append(f"- {DATA_SOURCES['coco_tiny']}: {train['coco_tiny'] + heldout.get('coco_tiny_heldout', 0)} "
                     f"images{at}, {heldout.get('coco_tiny_heldout', 0)} held out (seed {args['seed']}).")
    if "voc2007" in train:
        lines.append(f"- {DATA_SOURCES['voc2007']}: {train['voc2007']} images.")
    lines.append(f"- Backbone: {BACKBONE_SOURCES[config.backbone]}.")
    return "\n".join(lines)


def _object_sizes_note(config: SSDConfig, facts: dict) -> str:
    """Why coco_tiny scores low: its objects against the smallest anchor."""
    sizes = facts["data"].get("coco_tiny_sizes")
    if not sizes:
        return ""
    width, height = smallest_anchor(config)
    grids = "/".join(f"{g}×{g}" for g in config.grids)
    return (f"\ncoco_tiny's objects are small: in its {sizes['median_image_side_px']:g}-px images their median longer "
            f"side is {sizes['median_object_side_px']:.1f} px ({sizes['median_object_side_fraction']:.0%} of the image), "
            f"while the smallest anchor here is {width:.0%} × {height:.0%} of the image and most are far larger. "
            f"An SSD on {grids} grids is built for large objects; the SSD paper adds 38×38 … 10×10 grids for small ones.\n")


def _training_section(config: SSDConfig, facts: dict, history: list[dict]) -> str:
    args = facts["args"]
    seconds = [h["seconds"] for h in history]
    slow = ""
    if len(seconds) > 2 and max(seconds) > 2 * statistics.median(seconds):
        slowest = seconds.index(max(seconds))
        slow = f"; epoch {slowest + 1} took {max(seconds):.0f} s, the median epoch {statistics.median(seconds):.0f} s"
    clip = f", gradient norm clipped at {args['clip']:g}" if args["clip"] else ""
    rows = "\n".join(f"| {h['epoch'] + 1} | {h['train_loss']:.3f} | {h['valid_loss']:.3f} | {h['seconds']:.0f} |" for h in history)
    return f"""## Training
```
{facts['command']}
```
{len(history)} epoch{"s" if len(history) != 1 else ""}, {sum(seconds) / 60:.1f} minutes on {facts['hardware']}{slow}.
AdamW (weight decay {args['wd']:g}{clip}), 1cycle (max LR {args['lr']:g}, backbone ×{args['backbone_lr_mult']:g}), batch {args['bs']},
{config.image_size}×{config.image_size} px, augmentation: {AUGMENTATION}.

| epoch | train loss | valid loss | seconds |
|---|---|---|---|
{rows}
"""


@ends_with_fast_path_section
def model_card(config: dict, metrics: dict) -> str:
    """The README.md of a weight folder from its config.json and metrics.json (which must have "facts")."""
    cfg = SSDConfig(**config)
    facts = metrics["facts"]
    n_params = sum(p.numel() for p in SSD(cfg).parameters())
    commands = [f"`{facts['evaluate'][name]}`" for name in metrics["focal"] if name in facts["evaluate"]]
    reproduce = f"Reproduce: {' and '.join(commands)}.\n" if commands else ""
    return f"""---
library_name: fastai-part2-demos
license: mit
tags: [object-detection, ssd, focal-loss, fastai-part2, pytorch_model_hub_mixin]
metrics: [mean_average_precision]
---
# Lessons 8–9 · SSD detector with a largest-object head

SSD (lesson 9) with {anchor_description(cfg)},
matched to boxes at IoU ≥ {cfg.match_iou:g}; focal loss (α={cfg.focal_alpha:g}, γ={cfg.focal_gamma:g}) + L1 box loss (×{cfg.box_loss_weight:g}) and NMS,
plus the lesson-8 head that predicts the single largest object's class and box, over an ImageNet
**{cfg.backbone}** backbone ({n_params / 1e6:.1f}M parameters, `dl_core/detection/model.py`). Dropout: {cfg.feature_dropout:g} on the
backbone's map, {cfg.head_dropout:g} in the SSD head, {cfg.largest_dropout:g} in the largest-object head.
Weights stored in fp16. Classes: {", ".join(cfg.classes)}.

## Data
{_data_section(cfg, facts)}

## Metrics (COCO protocol via torchmetrics; boxes scored in each image's own pixels)
{_scores_table(metrics)}
{reproduce}{_object_sizes_note(cfg, facts)}{_comparison(metrics)}
{_training_section(cfg, facts, metrics.get("history", []))}"""
