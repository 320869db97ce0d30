"""How the lesson-12 DarkNet is trained and scored: SGD with Nesterov momentum under a 1cycle schedule (LR and
momentum move in opposite directions), label smoothing, accuracy after every epoch, optional flip TTA.

    learn = make_learner(Darknet(cfg), train_loader(train, 512, seed), eval_loader(test), lr=0.4, wd=5e-4,
                         label_smoothing=0.2, callbacks=[ParamSchedule(lr=one_cycle(0.4), beta1=one_cycle_momentum()),
                                                     ValidAccuracy()])
    learn.fit(16)
    accuracy(model, eval_loader(test), tta=True)
"""
from __future__ import annotations

from functools import partial

import torch
from torch import nn

from dl_core.learner import Callback, Learner


def sgd(params, lr: float, wd: float):
    """SGD with Nesterov momentum; the momentum itself is set every batch by the schedule (beta1)."""
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)


def make_learner(model: nn.Module, train_dl, valid_dl, *, lr: float, wd: float, label_smoothing: float,
                 callbacks, accelerator=None, mixed_precision: str = "no") -> Learner:
    # channels-last lets oneDNN (CPU) and cuDNN pick their fast convolution kernels; the first conv passes the
    # format on to every activation, so the inputs need no conversion
    model = model.to(memory_format=torch.channels_last)
    loss = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    return Learner(model, train_dl, valid_dl, loss, lr=lr, opt_fn=partial(sgd, wd=wd), callbacks=callbacks,
                   accelerator=accelerator, mixed_precision=mixed_precision)


class ValidAccuracy(Callback):
    """Top-1 accuracy over the validation batches, logged in the epoch's history as `accuracy`."""

    order = 40  # before the Recorder (50) writes the epoch's line

    def before_validate(self, learn: Learner) -> None:
        self.correct, self.count = 0, 0

    def after_loss(self, learn: Learner) -> None:
        if learn.training:
            return
        _, target = learn.batch
        hits = (learn.preds.argmax(-1) == target).float().sum().reshape(1)
        self.correct += float(learn.accelerator.gather_for_metrics(hits).sum())
        self.count += float(learn.accelerator.gather_for_metrics(torch.tensor([float(len(target))], device=hits.device)).sum())

    def after_validate(self, learn: Learner) -> None:
        learn.epoch_logs["accuracy"] = self.correct / max(1.0, self.count)


class PreciseBN(Callback):
    """At the end of training, replace every BatchNorm's running statistics by their exact average over `n_batches`
    training batches, computed with the final weights (train-mode forward passes, no weight changes).

    Why: with the lesson's BN momentum of 0.01 the running statistics average the last ~100 batches, and those
    batches saw weights that a high learning rate kept moving, so evaluation (which uses the running statistics)
    can lag far behind training: mid-run here, 22% test accuracy with them against 79% with recomputed ones. Wu &
    Johnson, "Rethinking 'Batch' in BatchNorm" (2021), call this precise BN."""

    order = 80  # after_fit, once the weights are final

    def __init__(self, n_batches: int):
        self.n_batches = n_batches

    @torch.no_grad()
    def after_fit(self, learn: Learner) -> None:
        norms = [m for m in learn.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms or self.n_batches <= 0:
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # None: a cumulative (equal-weight) average over the batches seen
        learn.model.train()
        for i, ((inputs, _target)) in enumerate(learn.train_dl):
            learn.model(*inputs)
            if i + 1 >= self.n_batches:
                break
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        learn.model.eval()


@torch.no_grad()
def predict_probs(model: nn.Module, images: torch.Tensor, tta: bool = False) -> torch.Tensor:
    """Class probabilities (B, C) of images (B, 3, H, W) in [0, 1]; with `tta`, averaged with the left-right mirror."""
    probs = model(images).float().softmax(-1)
    if tta:
        probs = (probs + model(images.flip(-1)).float().softmax(-1)) / 2
    return probs


@torch.no_grad()
def class_probabilities(model: nn.Module, loader, mirrored: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(probabilities (N, C) of every image of an eval loader, those of its mirror image or None, true classes)."""
    model.eval()
    plain, mirror, truth = [], [], []
    for (images,), labels in loader:
        plain.append(model(images).float().softmax(-1))
        if mirrored:
            mirror.append(model(images.flip(-1)).float().softmax(-1))
        truth.append(labels)
    return torch.cat(plain), torch.cat(mirror) if mirrored else None, torch.cat(truth)


def predictions(model: nn.Module, loader, tta: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted class, true class) for every image of an eval loader; with `tta`, from the average of each image's
    probabilities and its mirror image's, as predict_probs does."""
    plain, mirror, truth = class_probabilities(model, loader, mirrored=tta)
    return (plain if mirror is None else (plain + mirror) / 2).argmax(-1), truth
