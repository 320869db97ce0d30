"""Lessons 8-9: how good a detector is on a data set: COCO-protocol mAP, as metrics.json records it.

    scores = mean_average_precision(model, items)        # {"map50": ..., "map": ..., "n": ...}
    metrics = evaluate_sets(model, {"raccoon_test": items, ...})
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from dl_core.detection.data import Annotated, to_model_input
from dl_core.detection.model import SSD
from dl_core.images import load_rgb


def mean_average_precision(model: SSD, items: Sequence[Annotated], batch_size: int = 16) -> dict:
    """COCO-protocol mAP (torchmetrics, pycocotools backend) over `items`, matching classes by name; boxes are
    scored in each image's own pixels. Objects of classes the model does not know are left out."""
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(iou_type="bbox", backend="pycocotools")
    index = {name: i for i, name in enumerate(model.config.classes)}
    size = model.config.image_size
    model.eval()
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        images = [load_rgb(it.image_path, max_side=10_000).image for it in chunk]
        # score_threshold 0.01 and 100 boxes per image: the COCO protocol's usual settings
        detections = model.detect(to_model_input(images, size), [im.size for im in images], score_threshold=0.01,
                                  max_detections=100)
        preds = [{"boxes": d.boxes, "scores": d.scores, "labels": d.labels} for d in detections]
        targets = [dict(zip(("boxes", "labels"), it.targets(index))) for it in chunk]
        metric.update(preds, targets)
    result = metric.compute()
    return {"map50": round(float(result["map_50"]), 4), "map": round(float(result["map"]), 4), "n": len(items)}


def evaluate_sets(model: SSD, sets: dict[str, Sequence[Annotated]]) -> dict[str, dict]:
    """mAP on each named evaluation set: {name: {"map50", "map", "n"}}."""
    return {name: mean_average_precision(model, items) for name, items in sets.items()}


def recorded_heldout_split(folder: str | Path) -> tuple[int, int]:
    """(images held out of coco_tiny, seed) as the folder's training recorded them in metrics.json; the train
    script's defaults (40, 42) for a folder without that record."""
    metrics_file = Path(folder) / "metrics.json"
    recorded = json.loads(metrics_file.read_text()).get("facts", {}).get("args", {}) if metrics_file.is_file() else {}
    return recorded.get("coco_valid", 40), recorded.get("seed", 42)
