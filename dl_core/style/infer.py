"""What the style-transfer tab runs: a trained network's one pass (lesson 14), the loss that Gatys' pixel
optimisation follows (lesson 13), and reconstructions of a photo from one feature layer.

    net = load_network("weights/style-starry_night");  stylised = net(photo)         # (1, 3, H, W) in [0, 1]
    settings, grams = trained_style_target(net)        # the loss it was trained with, without the painting
    loss = live_loss(settings, grams, feature_extractor(...), style_strength=2.0)
    for step in optimise_pixels(loss, photo, steps=200): ...

The feature networks are loaded once per setting (feature_extractor is cached). A trained style's painting is
its weight folder's painting.jpg (written by `train/style.py card`, so a Hub repo carries it too), else the
data root's original (dl_core.paths.data_path) where that is present.
"""
from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Callable, Sequence

import torch

from dl_core.paths import data_path
from dl_core.perceptual import DEFAULT_FEATURES, FeatureExtractor, LossWeights, StyleLoss, build_loss, loss_settings
from dl_core.style.gatys import PixelStep, run_pixels
from dl_core.style.model import StyleNet


def load_network(folder: str | Path) -> StyleNet:
    """A trained style network from its weight folder, in eval mode."""
    from dl_core.hub import load_model

    return load_model(StyleNet, folder)


@functools.cache
def feature_extractor(backbone: str = "efficientnet_lite0", smoothing: str | None = None, temperature: float = 1.0) -> FeatureExtractor:
    """A frozen ImageNet feature network (EfficientNet-Lite0 from its PyPI wheel, or VGG16), loaded once per setting."""
    return FeatureExtractor(backbone, smoothing=smoothing, temperature=temperature)


@functools.cache  # per extractor: one copy
def fast_copy(extractor: FeatureExtractor) -> FeatureExtractor:
    """What the live tab optimises pixels through: the extractor with the CPU fast path (FeatureExtractor.speed_up:
    batch norms folded, channels-last), as a copy of its own for EfficientNet-Lite0 so that training and evaluation
    keep the plain network; VGG16 (528 MB, no batch norms) is not copied, only laid out channels-last in place."""
    if extractor.backbone != "efficientnet_lite0":
        return extractor.speed_up()
    return copy.deepcopy(extractor).speed_up()


PAINTING_FILE = "painting.jpg"  # a weight folder's copy of its painting (dl_core.style.card.export_painting)


def folder_painting(folder: str | Path) -> Path | None:
    """The painting a weight folder carries (painting.jpg), or None for a folder without one."""
    path = Path(folder) / PAINTING_FILE
    return path if path.is_file() else None


def painting_file(name: str) -> Path | None:
    """A trained style's painting under the data root (style/<name>.jpg, '_' or '-'), where it is present."""
    for candidate in (data_path("style", f"{name}.jpg"), data_path("style", f"{name.replace('_', '-')}.jpg")):
        if candidate.exists():
            return candidate
    return None


def trained_style_target(network: StyleNet) -> tuple[dict, dict[str, torch.Tensor]]:
    """(loss settings, the painting's Gram matrices) a network was trained with: stored with its weights."""
    return dict(network.config.loss), network.get_style_grams()


def painting_loss_settings(backbone: str) -> dict:
    """The loss settings for a painting's own pixels: EfficientNet-Lite0 with the bundled networks' feature
    smoothing, VGG16 with raw features as in the lessons (its Gram matrices: `style_grams` of the painting)."""
    return loss_settings(**DEFAULT_FEATURES) if backbone == "efficientnet_lite0" else loss_settings(backbone=backbone)


def live_loss(settings: dict, grams: dict[str, torch.Tensor], extractor: FeatureExtractor, content_strength: float = 1.0,
              style_strength: float = 1.0, style_layers: Sequence[str] | None = None) -> StyleLoss:
    """The loss pixel optimisation follows: `settings`' with its content and style weights multiplied by the
    strengths (1, 1: exactly a trained network's loss) and, if given, other style layers."""
    layers = {"style_layers": tuple(style_layers)} if style_layers is not None else {}
    return build_loss(settings, grams, extractor, content_weight=settings["content_weight"] * float(content_strength),
                      style_weight=settings["style_weight"] * float(style_strength), **layers)


def reconstruct_from_layer(photo: torch.Tensor, layer: str, steps: int, extractor: FeatureExtractor | None = None,
                           after_step: Callable[[int], bool] | None = None) -> PixelStep:
    """Start from smooth noise and match only `layer`'s features of the photo (no style, no smoothing).

    after_step(step) is called after every update (e.g. to report progress) and returns True to stop there."""
    weights = LossWeights(content_layer=layer, style_layers=(), style_weight=0.0, tv_weight=0.0)
    should_stop = None
    if after_step is not None:
        updates = iter(range(1, steps + 1))
        should_stop = lambda: after_step(next(updates))  # noqa: E731 - optimise_pixels asks once per update
    return run_pixels(StyleLoss(extractor or feature_extractor(), {}, weights), photo, steps=steps, lr=0.05, start="noise",
                      should_stop=should_stop)
