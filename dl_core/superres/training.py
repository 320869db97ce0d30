"""How the super-resolution networks learn: a pixel loss (L1 or MSE) or the lesson's perceptual feature loss,
Adam under 1cycle, PSNR-Y on held-out patches after every epoch.

    learn = make_learner(model, train_dl, valid_dl, pixel_loss("l1"), lr=5e-4, callbacks=[ValidPSNR(scale), ...])

Why a pixel loss blurs: where the low-res input does not decide the fine detail (which way a hair runs), the
output that minimises the expected MSE is the mean of every plausible answer, a blur. L1 picks the median, a little
sharper. The feature loss compares what an ImageNet network sees in the output and in the original (edges,
textures), so a plausible texture scores better than the blur of many: the lesson's `FeatureLoss`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dl_core.learner import Callback, Learner
from dl_core.perceptual import FeatureExtractor
from dl_core.superres.evaluate import batch_psnr_y

PIXEL_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}
# The lesson's feature loss on VGG16 reads the activations before its 2nd, 3rd and 4th max-pools (strides 2, 4, 8),
# weighted 0.2, 0.7, 0.1. EfficientNet-Lite0's maps at the same strides stand in offline.
FEATURE_LAYERS = {"efficientnet_lite0": ("stem", "block2", "block4"), "vgg16": ("relu1_2", "relu2_2", "relu3_3")}
FEATURE_WEIGHTS = (0.2, 0.7, 0.1)


def pixel_loss(kind: str = "l1") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if kind not in PIXEL_LOSSES:
        raise ValueError(f"pixel loss must be one of {list(PIXEL_LOSSES)}, not {kind!r}")
    fn = PIXEL_LOSSES[kind]
    return lambda output, target: fn(output.float(), target)


class FeatureLoss(nn.Module):
    """pixel_weight * L1(output, target) + sum_l w_l * L1(features_l(output), features_l(target)).

    Each layer's term is divided by the mean magnitude of the target's features there, so the weights mean the same
    on any feature network (VGG's activations are ~10x EfficientNet's). `terms` holds the last call's parts."""

    def __init__(self, extractor: FeatureExtractor, layers: Sequence[str], weights: Sequence[float] = FEATURE_WEIGHTS,
                 pixel_weight: float = 1.0):
        super().__init__()
        if len(layers) != len(weights):
            raise ValueError("one weight per feature layer")
        self.extractor, self.layers, self.weights, self.pixel_weight = extractor, tuple(layers), tuple(weights), pixel_weight
        self.terms: dict[str, float] = {}

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self.extractor(target, self.layers)
        got = self.extractor(output, self.layers)
        pixel = F.l1_loss(output.float(), target)
        total = self.pixel_weight * pixel
        self.terms = {"pixel": float(pixel)}
        for name, weight in zip(self.layers, self.weights):
            scale = wanted[name].float().abs().mean().clamp_min(1e-6)
            term = F.l1_loss(got[name].float(), wanted[name].float()) / scale
            self.terms[name] = float(term)
            total = total + weight * term
        return total


def make_learner(model: nn.Module, train_dl, valid_dl, loss_fn, *, lr: float, wd: float = 0.0,
                 callbacks: Sequence[Callback] = (), accelerator=None) -> Learner:
    """Adam (weight decay off by default: the lesson's wd=1e-7 is as good as none) on the whole network."""
    return Learner(model, train_dl, valid_dl, loss_fn, lr=lr,
                   opt_fn=lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=wd),
                   callbacks=callbacks, accelerator=accelerator)


class ValidPSNR(Callback):
    """Mean PSNR-Y of the network's outputs on the validation patches, and bicubic's on the same patches
    (computed once), logged in the epoch's history as `psnr` and `psnr_bicubic`."""

    order = 40  # before the Recorder (50) writes the epoch's line

    def __init__(self, scale: int):
        self.scale = scale
        self.bicubic: float | None = None

    def before_validate(self, learn: Learner) -> None:
        self.scores, self.bicubic_scores = [], []

    def after_loss(self, learn: Learner) -> None:
        if learn.training:
            return
        (low,), high = learn.batch
        self.scores.append(learn.accelerator.gather_for_metrics(batch_psnr_y(learn.preds, high, self.scale)))
        if self.bicubic is None:
            up = F.interpolate(low.float(), scale_factor=self.scale, mode="bicubic", align_corners=False)
            self.bicubic_scores.append(batch_psnr_y(up, high, self.scale))

    def after_validate(self, learn: Learner) -> None:
        if self.bicubic is None and self.bicubic_scores:
            self.bicubic = float(torch.cat(self.bicubic_scores).mean())
        learn.epoch_logs.update(psnr=round(float(torch.cat(self.scores).mean()), 3), psnr_bicubic=round(self.bicubic or 0, 3))
