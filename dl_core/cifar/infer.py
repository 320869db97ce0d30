"""Classify a photo with the CIFAR-10 DarkNet and show what each stage of the network sees."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from dl_core.cifar.model import Darknet
from dl_core.hub import load_model

CHANNELS_SHOWN = 6  # per stage: the most active channels
TILE = 56  # pixels per activation tile in the picture


def load_classifier(folder: str | Path) -> Darknet:
    return load_model(Darknet, folder)


def to_network_input(image: Image.Image, size: int) -> torch.Tensor:
    """The centred square of a photo, shrunk to size x size (CIFAR-10 objects fill a centred square) -> (1, 3, s, s)."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.convert("RGB").crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC, reducing_gap=3.0)
    return torch.from_numpy(np.asarray(square, np.float32) / 255).permute(2, 0, 1)[None]


@dataclass
class Classified:
    probabilities: dict[str, float]  # every class, highest first
    network_input: Image.Image  # what the network saw (size x size)
    stages: list[torch.Tensor]  # (C, h, w) activations of the stem and of every group, for the plain image


@torch.inference_mode()
def classify(model: Darknet, image: Image.Image, tta: bool = True) -> Classified:
    """Class probabilities (averaged with the mirror image when `tta`) and every stage's activations."""
    x = to_network_input(image, model.config.image_size)
    batch = torch.cat([x, x.flip(-1)]) if tta else x  # one pass: the stages shown are the plain image's
    stages = model.stages(batch)
    probs = model.logits(stages[-1]).float().softmax(-1).mean(0)
    order = probs.argsort(descending=True).tolist()
    stages = [s[0] for s in stages]
    shown = Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    return Classified({model.config.classes[i]: float(probs[i]) for i in order}, shown, stages)


def stage_picture(network_input: Image.Image, stages: list[torch.Tensor], names: list[str], channels: int = CHANNELS_SHOWN) -> Image.Image:
    """One row per stage: its name and resolution, then its `channels` most active channels (mean activation), each
    scaled to its own range, black = lowest, white = highest, enlarged to TILE pixels without smoothing."""
    label_width = 150
    rows = len(stages) + 1
    picture = Image.new("RGB", (label_width + channels * (TILE + 4), rows * (TILE + 6)), "white")
    draw = ImageDraw.Draw(picture)
    draw.text((4, TILE // 2 - 6), f"input {network_input.width}x{network_input.height}", fill="black")
    picture.paste(network_input.resize((TILE, TILE), Image.NEAREST), (label_width, 0))
    for row, (name, activation) in enumerate(zip(names, stages), 1):
        c, h, w = activation.shape
        y = row * (TILE + 6)
        draw.text((4, y + TILE // 2 - 12), f"{name}\n{c} ch, {h}x{w} px", fill="black")
        strongest = activation.float().mean(dim=(1, 2)).argsort(descending=True)[:channels]
        for col, channel in enumerate(strongest.tolist()):
            a = activation[channel].float()
            a = (a - a.min()) / (a.max() - a.min()).clamp_min(1e-6)
            tile = Image.fromarray((a.numpy() * 255).astype(np.uint8)).resize((TILE, TILE), Image.NEAREST)
            picture.paste(tile, (label_width + col * (TILE + 4), y))
    return picture


def stage_names(model: Darknet) -> list[str]:
    return ["stem"] + [f"group {i + 1}" for i in range(len(model.config.num_blocks))]
