"""How good is a trained style network? Its one forward pass against Gatys' pixel optimisation, with the same loss.

    evaluate_against_gatys(model, list_images(default_heldout()))
    -> {"content_loss": ..., "style_loss": ..., "gatys_content_loss": ..., "gatys_style_loss": ...,
        "style_ratio": ..., "n": ..., "size": ..., "gatys_steps": ..., "gatys_steps_matched": ...}

style_ratio = network style loss / Gatys style loss (means over the photos): how close one forward pass gets to
`gatys_steps` optimisation steps. gatys_steps_matched: the step at which Gatys' mean style loss first falls to
the network's, i.e. how many optimisation steps the one forward pass is worth. The losses are the relative
errors of dl_core/perceptual.py; the result is what metrics.json keeps as "heldout".
"""
from __future__ import annotations

import random
from pathlib import Path

import torch
from tqdm import tqdm

from dl_core.perceptual import StyleLoss, build_loss
from dl_core.photos import load_photo
from dl_core.style.gatys import Losses, run_pixels
from dl_core.style.model import StyleNet

GATYS_STEPS = 300  # the optimisation a network is compared with (Adam on the pixels, lr GATYS_LR)
GATYS_LR = 0.02
EVAL_SIZE = 256  # every photo is fitted within this many px


def loss_for(model: StyleNet, device: torch.device | str = "cpu") -> StyleLoss:
    """The exact perceptual loss a network was trained with, from its config and stored Gram matrices."""
    return build_loss(model.config.loss, model.get_style_grams()).to(device)


def seeded_sample(paths: list[Path], n: int | None, seed: int = 0) -> list[Path]:
    """n of the photos drawn with `seed`, in their listed order (all of them for n None or n >= their number): the
    quick check a data test can afford where 300 Gatys steps on every photo cannot."""
    if n is None or n >= len(paths):
        return list(paths)
    if n < 1:
        raise ValueError(f"a sample needs at least one photo, not {n}")
    chosen = set(random.Random(seed).sample(range(len(paths)), n))
    return [path for i, path in enumerate(paths) if i in chosen]


def evaluate_against_gatys(model: StyleNet, paths: list[Path], size: int = EVAL_SIZE, gatys_steps: int = GATYS_STEPS,
                           lr: float = GATYS_LR) -> dict:
    """Network vs `gatys_steps` of pixel optimisation, same loss, each photo fitted within `size` px (on the GPU
    if there is one: the numbers agree with a CPU run to float precision)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device)
    loss = loss_for(model, device)
    rows, curves = [], []
    for path in tqdm(paths, desc="evaluate", unit="photo"):
        photo = load_photo(path, size).to(device)
        target = loss.content_targets(photo)
        with torch.no_grad():
            net = loss(model(photo), target)
        curves.append([])
        gatys = run_pixels(loss, photo, steps=gatys_steps, lr=lr, curve=curves[-1])
        rows.append((float(net.content), float(net.style), gatys.content, gatys.style))
    n = len(rows)
    mean = [sum(r[i] for r in rows) / n for i in range(4)]
    return {"content_loss": round(mean[0], 4), "style_loss": round(mean[1], 5), "gatys_content_loss": round(mean[2], 4),
            "gatys_style_loss": round(mean[3], 5), "style_ratio": round(mean[1] / mean[3], 3), "n": n,
            "size": size, "gatys_steps": gatys_steps, "gatys_steps_matched": steps_matched(mean[1], curves)}


def steps_matched(network_style: float, curves: list[list[Losses]]) -> int | None:
    """How many Gatys steps one forward pass is worth: the first step at which pixel optimisation's mean style
    loss over the photos is as low as the network's (the same means as style_ratio). None: lower than every step."""
    mean_curve = [sum(point.style for point in points) / len(points) for points in zip(*curves)]  # after 0, 1, ... updates
    return next((step for step, style in enumerate(mean_curve) if style <= network_style), None)


def matched_text(record: dict) -> str:
    """A recorded comparison's gatys_steps_matched as text: "more than N" where the network beat every step."""
    matched = record.get("gatys_steps_matched")
    return f"more than {record['gatys_steps']}" if matched is None else str(matched)
