"""Lesson 14 inference as the app and `evaluate` use it: a photo -> class probabilities at the photo's size.

    model = load_segmenter("weights/segmentation")
    probs = predict_probabilities(model, photo)        # photo (3, H, W) uint8 or PIL -> (C, H, W) at H x W
    working_size(720, 960, model.config)               # (360, 480): the pixel count the model was trained at
    seg = segment(model, pil_photo)                    # labels (H, W), confidence (H, W), shares(), timing

A photo is resized to the model's working pixel count (its aspect ratio kept), segmented there, and the class
probabilities are resized back (bilinear) to the photo's own size: objects then appear at the scale the network
learnt, and the mask lines up with every pixel of the photo.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from dl_core.segmentation.model import STRIDE, SegmentationConfig, SegmentationNet


def load_segmenter(folder: str) -> SegmentationNet:
    """A weight folder (or Hub snapshot) as a SegmentationNet in eval mode, every key checked, its weights laid out
    channels-last: oneDNN picks faster convolution kernels (0.82x the time of plain fp32 here, `python -m benchmarks.segmentation_speed`)."""
    from dl_core.hub import load_model

    return load_model(SegmentationNet, folder).to(memory_format=torch.channels_last)


def working_size(height: int, width: int, config: SegmentationConfig) -> tuple[int, int]:
    """The (H, W) a photo is segmented at: as many pixels as the training size, the photo's aspect ratio, each side
    at least one encoder stride."""
    target_h, target_w = config.image_size
    scale = math.sqrt(target_h * target_w / (height * width))
    return max(STRIDE, round(height * scale)), max(STRIDE, round(width * scale))


def _as_tensor(photo) -> torch.Tensor:
    """PIL image or (3, H, W) uint8/float tensor -> (3, H, W) float in [0, 1]."""
    if not isinstance(photo, torch.Tensor):
        photo = v2.functional.pil_to_tensor(photo)
    return photo.float() / 255 if photo.dtype == torch.uint8 else photo.float()


@torch.inference_mode()
def predict_logits(model: SegmentationNet, photo) -> torch.Tensor:
    """(C, h, w) class logits at the working size (see working_size)."""
    x = _as_tensor(photo)
    size = working_size(*x.shape[-2:], model.config)
    if tuple(x.shape[-2:]) != size:
        x = F.interpolate(x[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    return model(x[None].contiguous(memory_format=torch.channels_last))[0].float()


@torch.inference_mode()
def predict_probabilities(model: SegmentationNet, photo) -> torch.Tensor:
    """(C, H, W) class probabilities at the photo's own size."""
    height, width = tuple(photo.shape[-2:]) if isinstance(photo, torch.Tensor) else (photo.height, photo.width)
    logits = predict_logits(model, photo)
    if tuple(logits.shape[-2:]) != (height, width):
        logits = F.interpolate(logits[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    return logits.softmax(0)


@dataclass
class Segmentation:
    """One photo's segmentation at the photo's size."""

    labels: np.ndarray  # (H, W) uint8: the most probable class of each pixel
    confidence: np.ndarray  # (H, W) float32: that class's probability
    working_size: tuple[int, int]  # (h, w) the network saw
    seconds: float  # the network's time (resize, forward pass, resize back, softmax)

    def shares(self, n_classes: int) -> np.ndarray:
        """(n_classes,) the fraction of the photo's pixels given to each class."""
        return np.bincount(self.labels.ravel(), minlength=n_classes)[:n_classes] / self.labels.size


def segment(model: SegmentationNet, photo) -> Segmentation:
    """A PIL photo -> its per-pixel classes and confidences."""
    started = time.perf_counter()
    probs = predict_probabilities(model, photo)
    confidence, labels = probs.max(0)
    height, width = labels.shape
    return Segmentation(labels.to(torch.uint8).numpy(), confidence.numpy().astype(np.float32),
                        working_size(height, width, model.config), time.perf_counter() - started)
