"""How a style network is trained: its loss target (the painting's Gram matrices), the network, and the Learner.

    extractor, grams = painting_grams(settings, "starry_night.jpg", style_size=256)
    model = build_network("starry_night", settings, grams, channels=(16, 32, 64), residual_blocks=5)
    objective = PerceptualObjective(build_loss(settings, grams, extractor))
    learn = make_learner(model, objective, train_dl, valid_dl, lr=3e-3, callbacks=[..., LossTermsLog(objective)])

train/style.py and the benchmarks (benchmarks/style_generalisation.py) train through this one set-up; what they
vary is callbacks (schedules, clipping, reports at chosen steps).
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
from accelerate import Accelerator

from dl_core import hub
from dl_core.learner import Callback, Learner
from dl_core.perceptual import GRAM_LAYERS, FeatureExtractor, LossTerms, StyleLoss, style_grams
from dl_core.style.data import load_style_image
from dl_core.style.model import StyleNet, StyleNetConfig


def painting_grams(settings: dict, painting: str | Path, style_size: int) -> tuple[FeatureExtractor, dict[str, torch.Tensor]]:
    """The loss's feature network and the painting's Gram matrices at its style layers; on EfficientNet-Lite0
    also at every layer the app lets a user pick (GRAM_LAYERS), which the network stores with its weights."""
    extractor = FeatureExtractor(settings["backbone"], smoothing=settings["smoothing"], temperature=settings["temperature"])
    extra = GRAM_LAYERS if settings["backbone"] == "efficientnet_lite0" else ()
    layers = tuple(dict.fromkeys([*settings["style_layers"], *extra]))
    return extractor, style_grams(extractor, load_style_image(painting, style_size), layers)


def build_network(name: str, settings: dict, grams: dict[str, torch.Tensor], channels: Sequence[int], residual_blocks: int,
                  init: str | Path | None = None) -> StyleNet:
    """A new network for painting `name`, or (`init`: a weight folder) a trained one of the same painting to train
    on: its architecture and weights, this run's loss. Either way it stores `grams`, its loss's target."""
    gram_channels = {layer: int(gram.shape[-1]) for layer, gram in grams.items()}
    if init:
        start = hub.load_model(StyleNet, init)
        if start.config.style_name != name:
            raise SystemExit(f"{init} was trained on {start.config.style_name!r}, not {name!r}")
        model = StyleNet(StyleNetConfig(**{**asdict(start.config), "loss": settings, "gram_channels": gram_channels}))
        model.load_state_dict(start.state_dict(), strict=True)
    else:
        model = StyleNet(StyleNetConfig(channels=tuple(channels), residual_blocks=residual_blocks, style_name=name,
                                        loss=settings, gram_channels=gram_channels))
    model.set_style_grams(grams)  # this run's (the same painting and features give the same matrices as init's)
    return model


class PerceptualObjective:
    """The Learner's loss function: the perceptual loss's total for (stylised, photos), the photos being the
    content target. It keeps the last batch's terms (content, style) for LossTermsLog."""

    def __init__(self, loss: StyleLoss, autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext):
        self.loss, self.autocast = loss, autocast
        self.last_terms: LossTerms | None = None

    def __call__(self, stylised: torch.Tensor, photos: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            self.last_terms = self.loss(stylised, self.loss.content_targets(photos))
        return self.last_terms.total


class LossTermsLog(Callback):
    """Mean content and style loss of each epoch's training batches, for the Recorder's history."""

    def __init__(self, objective: PerceptualObjective):
        self.objective = objective
        self.sums, self.count = [0.0, 0.0], 0

    def before_epoch(self, learn: Learner) -> None:
        self.sums, self.count = [0.0, 0.0], 0

    def after_loss(self, learn: Learner) -> None:
        if learn.training:
            terms = self.objective.last_terms
            self.sums[0] += float(terms.content)
            self.sums[1] += float(terms.style)
            self.count += 1

    def after_epoch(self, learn: Learner) -> None:
        learn.epoch_logs.update(content=self.sums[0] / max(1, self.count), style=self.sums[1] / max(1, self.count))


class ReportAt(Callback):
    """Call `report(step, model)` before the chosen training steps (0: the untrained start) and at the end of the
    fit if its step count is chosen too; e.g. to score a network on other photos while it trains."""

    order = 70  # after the other callbacks have seen the batch

    def __init__(self, steps: Iterable[int], report: Callable[[int, torch.nn.Module], None]):
        self.steps, self.report = set(steps), report

    def before_batch(self, learn: Learner) -> None:
        if learn.training and learn.iteration in self.steps:
            self.report(learn.iteration, learn.unwrapped_model)

    def after_fit(self, learn: Learner) -> None:
        if learn.iteration in self.steps:
            self.report(learn.iteration, learn.unwrapped_model)


def make_learner(model: StyleNet, objective: PerceptualObjective, train_dl: Iterable, valid_dl: Iterable | None, lr: float,
                 callbacks: Sequence[Callback], accelerator: Accelerator | None = None, wd: float = 0.0) -> Learner:
    """The Learner every style network trains with: Adam (Johnson et al.'s optimiser; AdamW's decoupled weight
    decay where `wd` is given, which at 0 is plain Adam) on the perceptual loss."""
    return Learner(model, train_dl, valid_dl, objective, lr=lr, opt_fn=functools.partial(torch.optim.AdamW, weight_decay=wd),
                   callbacks=callbacks, accelerator=accelerator)
