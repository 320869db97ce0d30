"""How the lessons 8-9 detector is trained: the model with ImageNet backbone weights, discriminative learning
rates, the loaders and the learner (what train/detect.py and a benchmark both call).

    model = pretrained_model(CLASSES, backbone="efficientnet_lite0", image_size=224)
    learn = make_learner(model, train_items, valid_items, loss="focal", bs=16, lr=2e-3, wd=0.01,
                         backbone_lr_mult=0.1, seed=42, callbacks=[...], accelerator=accelerator)
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import DataLoader

from dl_core.detection.data import Annotated, DetectionDataset, collate_detection
from dl_core.detection.model import SSD, SSDConfig, ssd_loss
from dl_core.learner import Callback, Learner, discriminative_adamw

LOSSES = ("focal", "bce")  # the class loss: focal (lesson 9) or plain binary cross-entropy, to compare


def pretrained_model(classes: Sequence[str], backbone: str, image_size: int) -> SSD:
    """A new SSD with untrained heads over an ImageNet backbone; its anchor grids are those the head makes at
    this image size (224 px: the lesson's 4x4, 2x2, 1x1)."""
    config = SSDConfig(classes=list(classes), backbone=backbone, image_size=image_size)
    config.grids = config.head_grids()
    model = SSD(config)
    model.load_backbone_weights()
    return model


def loss_function(model: SSD, loss: str):
    """The Learner's loss: ssd_loss with the focal class loss (the config's alpha and gamma) or plain BCE."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: use one of {LOSSES}")
    use_focal = loss == "focal"
    return lambda out, targets: ssd_loss(out, targets, model, use_focal=use_focal)


def make_learner(model: SSD, train_items: Sequence[Annotated], valid_items: Sequence[Annotated], *, loss: str,
                 bs: int, lr: float, wd: float, backbone_lr_mult: float, seed: int, workers: int = 0,
                 callbacks: Sequence[Callback] = (), accelerator=None) -> Learner:
    """Loaders (augmented, shuffled with `seed`, for training; plain for validation) and the Learner."""
    classes, size = model.config.classes, model.config.image_size
    train_dl = DataLoader(DetectionDataset(train_items, classes, size, train=True), batch_size=bs, shuffle=True,
                          collate_fn=collate_detection, num_workers=workers,
                          generator=torch.Generator().manual_seed(seed))
    valid_dl = DataLoader(DetectionDataset(valid_items, classes, size, train=False), batch_size=bs,
                          collate_fn=collate_detection, num_workers=workers)
    return Learner(model, train_dl, valid_dl, loss_function(model, loss), lr=lr,
                   opt_fn=discriminative_adamw(model, model.backbone, backbone_lr_mult, wd), callbacks=callbacks, accelerator=accelerator)
