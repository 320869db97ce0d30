"""How the lesson-14 segmenter is trained: an ImageNet encoder, frozen for the first epochs and then fine-tuned
at a fraction of the decoder's learning rate (the lesson's freeze-then-unfreeze with discriminative LRs), AdamW
under 1cycle, cross-entropy with Void ignored, mIoU after every epoch.

    model = pretrained_model(CAMVID_CLASSES, backbone="efficientnet_lite0", decoder="unet", width=128)
    learn = make_learner(model, train_dl, valid_dl, lr=3e-3, wd=1e-2, encoder_lr_mult=0.1,
                         callbacks=[FreezeEncoder(2), ValidIoU(), ...])
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from dl_core.learner import Callback, Learner, discriminative_adamw
from dl_core.segmentation.evaluate import SegmentationScores
from dl_core.segmentation.model import SegmentationConfig, SegmentationNet, segmentation_loss


def pretrained_model(classes: Sequence[str], *, backbone: str, decoder: str, width: int,
                     image_size: Sequence[int] = (360, 480), void_index: int = 11) -> SegmentationNet:
    """A new decoder (random weights) over an ImageNet encoder."""
    model = SegmentationNet(SegmentationConfig(classes=list(classes), void_index=void_index, backbone=backbone,
                                               decoder=decoder, width=width, image_size=list(image_size)))
    model.load_encoder_weights()
    return model


def make_learner(model: SegmentationNet, train_dl, valid_dl, *, lr: float, wd: float, encoder_lr_mult: float,
                 callbacks: Sequence[Callback] = (), accelerator=None) -> Learner:
    void = model.config.void_index
    return Learner(model, train_dl, valid_dl, lambda logits, masks: segmentation_loss(logits, masks, void), lr=lr,
                   opt_fn=discriminative_adamw(model, model.encoder, encoder_lr_mult, wd), callbacks=callbacks,
                   accelerator=accelerator)


class FreezeEncoder(Callback):
    """The lesson's freeze-then-unfreeze: for the first `epochs` epochs the pretrained encoder does not learn (its
    optimizer group's LR is 0) and its BatchNorm layers keep their ImageNet statistics (eval mode, the lesson's
    `bn_freeze`), so the new decoder first learns to read features that stay put.

    The encoder is frozen through its LR rather than `requires_grad`, so a data-parallel run (Accelerate's DDP)
    sees the same parameters produce gradients in every epoch. The encoder's group is the optimizer's second
    (`discriminative_adamw`)."""

    order = -10  # before the schedule (0) reads lr_mult

    def __init__(self, epochs: int):
        self.epochs = epochs
        self._mult: float | None = None

    def _encoder(self, learn: Learner) -> nn.Module:
        return learn.unwrapped_model.encoder

    def before_epoch(self, learn: Learner) -> None:
        group = learn.opt.param_groups[1]
        if self._mult is None:
            self._mult = group.get("lr_mult", 1.0)
        group["lr_mult"] = 0.0 if learn.epoch < self.epochs else self._mult

    def before_batch(self, learn: Learner) -> None:
        if learn.training and learn.epoch < self.epochs:
            for module in self._encoder(learn).modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def after_fit(self, learn: Learner) -> None:
        if self._mult is not None:
            learn.opt.param_groups[1]["lr_mult"] = self._mult


class ValidIoU(Callback):
    """mIoU and pixel accuracy over the validation batches, logged in the epoch's history as `miou`, `pixel_acc`."""

    order = 40  # before the Recorder (50) writes the epoch's line

    def before_validate(self, learn: Learner) -> None:
        config = learn.unwrapped_model.config
        self.scores = SegmentationScores(len(config.classes), config.void_index)

    def after_loss(self, learn: Learner) -> None:
        if learn.training:
            return
        _, masks = learn.batch
        predicted = learn.accelerator.gather_for_metrics(learn.preds.argmax(1))
        self.scores.update(predicted, learn.accelerator.gather_for_metrics(masks))

    def after_validate(self, learn: Learner) -> None:
        result = self.scores.compute()
        learn.epoch_logs.update(miou=round(result["miou"], 4), pixel_acc=round(result["pixel_acc"], 4))

