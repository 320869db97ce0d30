"""Lessons 8-9 inference as the app uses it: a weight folder -> SSD, a photo -> its detections.

    model = load_detector("weights/detection")
    det = detect_photo(model, image, score_threshold=0.3)     # boxes in the photo's pixels, + the largest object
    grid_slices(model.config)                                 # {"4×4": slice(0, 144), ...}: which anchors are whose
"""
from __future__ import annotations

from dl_core.detection.data import to_model_input
from dl_core.detection.model import SSD, Detections, SSDConfig


def load_detector(folder: str) -> SSD:
    """A weight folder (or Hub snapshot) as an SSD in eval mode, every key checked."""
    from dl_core.hub import load_model

    return load_model(SSD, folder)


def detect_photo(model: SSD, image, score_threshold: float = 0.3, iou_threshold: float = 0.45,
                 nms: bool = True) -> Detections:
    """One PIL RGB photo -> its detections, squashed to the model's input size as in training; boxes in the
    photo's own pixels. nms=False keeps every box over the threshold (what NMS would remove)."""
    batch = to_model_input([image], model.config.image_size)
    return model.detect(batch, [image.size], score_threshold=float(score_threshold), iou_threshold=float(iou_threshold),
                        nms=bool(nms))[0]


def grid_slices(config: SSDConfig) -> dict[str, slice]:
    """Which anchor indices belong to which grid (anchors are laid out grid by grid), by the grid's name."""
    slices, start = {}, 0
    for grid in config.grids:
        n = grid * grid * config.anchors_per_cell
        slices[f"{grid}×{grid}"] = slice(start, start + n)
        start += n
    return slices
