"""The GAN model cards, written from a weight folder's config.json and metrics.json by code, and the fixed-noise
gallery image (`progress.png`) the WGAN tab shows.

A WGAN folder's metrics.json holds the run's `facts` (command, recipe, data, hardware, time), the per-epoch
`history` (critic and generator losses, the Wasserstein estimate), `scores` (FD-Lite0) and `gallery_epochs`.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from dl_core import hub
from dl_core.gan.model import DCGANConfig, DCGANCritic, DCGANGenerator
from dl_core.paths import display_path

GALLERY_FILE = "progress.png"  # rows: the fixed noise after 0, k, 2k, ... epochs
RECIPE_ARGS = ("size", "nz", "ngf", "ndf", "extra_layers", "gp", "clip_value", "critic_steps", "epochs", "bs", "lr",
               "seed", "heldout")
DATA_CREDITS = {
    "flowers64.zip": "Oxford-102 flowers (Nilsback & Zisserman 2008), all 8,189 images at 64x64",
}


def millions(module: nn.Module) -> str:
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f}"


def train_facts(args: argparse.Namespace, source: str, n_train: int, n_heldout: int, seconds: float) -> dict:
    return {
        "command": args.command_line,
        "args": {name: getattr(args, name, None) for name in RECIPE_ARGS},
        "data": display_path(source),
        "n_train": n_train,
        "n_heldout": n_heldout,
        "seconds": round(seconds, 1),
        "hardware": hub.describe_hardware(),
        "date": time.strftime("%Y-%m-%d"),
    }


def save_gallery(frames: list[tuple[int, torch.Tensor]], folder: Path, per_row: int = 8) -> Path:
    """One row of `per_row` images per frame, oldest on top: the fixed noise as the generator learnt."""
    rows = [np.concatenate(list(images[:per_row].permute(0, 2, 3, 1).numpy()), axis=1) for _, images in frames]
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(folder / GALLERY_FILE)
    return folder / GALLERY_FILE


def load_gallery(folder: Path, epochs: list[int], per_row: int = 8) -> list[tuple[int, list[np.ndarray]]]:
    """The frames `save_gallery` wrote: [(epoch, [per_row images (H, W, 3)]), ...]."""
    grid = np.asarray(Image.open(folder / GALLERY_FILE).convert("RGB"))
    side = grid.shape[0] // max(1, len(epochs))
    return [(epoch, [grid[i * side:(i + 1) * side, j * side:(j + 1) * side] for j in range(grid.shape[1] // side)][:per_row])
            for i, epoch in enumerate(epochs)]


def resumed_runs(folder: str | Path | None) -> dict:
    """What a `--resume` run carries over from the folder the interrupted run saved: its lineage (the runs so far, for
    the card), its step counts and its fixed-noise frames. Empty where the folder has no finished run."""
    metrics_file = Path(folder) / "metrics.json" if folder else None
    if metrics_file is None or not metrics_file.is_file():
        return {}
    metrics = json.loads(metrics_file.read_text())
    facts = metrics.get("facts", {})
    run = {"command": facts.get("command", "?"), "epochs": len(metrics.get("history", [])),
           "seconds": facts.get("seconds", 0), "hardware": facts.get("hardware", "?"), "scores": metrics.get("scores", {})}
    epochs = metrics.get("gallery_epochs", [])
    gallery = [(epoch, torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2))
               for epoch, images in load_gallery(Path(folder), epochs)] if epochs else []
    return {"lineage": [*metrics.get("lineage", []), run], "steps": metrics.get("steps", {}), "gallery": gallery}


def _describe_run(run: dict) -> str:
    fd = run.get("scores", {}).get("fd")
    return (f"{run['epochs']} epochs in all, {run['seconds'] / 60:.0f} minutes on {run['hardware']}"
            + (f"; FD-Lite0 {fd:.1f}" if fd else ""))


def _history_table(history: list[dict]) -> str:
    step = max(1, len(history) // 10)  # about ten rows, and always the last
    shown = [h for i, h in enumerate(history) if i % step == 0 or i == len(history) - 1]
    rows = "\n".join(
        f"| {h['epoch'] + 1} | {h.get('critic_wasserstein', float('nan')):.4f} | {-h.get('valid_loss', float('nan')):.4f} | "
        f"{h.get('generator_loss', float('nan')):.4f} | {h.get('generator_steps', 0)} | {h['seconds']:.0f} |" for h in shown)
    return ("| epoch | Wasserstein estimate (training batches) | on held-out images | generator loss | generator steps so far | seconds |\n"
            "|---|---|---|---|---|---|\n" + rows)


def wgan_card(config: DCGANConfig, metrics: dict, folder: str) -> str:
    facts, history, scores = metrics.get("facts", {}), metrics.get("history", []), metrics.get("scores", {})
    args = facts.get("args", {})
    gp = args.get("gp") or 0
    variant = f"WGAN-GP (gradient penalty {gp:g})" if gp else f"WGAN (weight clipping ±{args.get('clip_value', 0.01)})"
    data = facts.get("data", "../shared/data/gan/flowers64.zip")
    credit = DATA_CREDITS.get(Path(data).name, data)
    ratio = scores["fd"] / scores["fd_real"] if scores.get("fd_real") else float("nan")
    recipe = ("Adam (β 0, 0.9) for both networks, layer norm in the critic, 5 critic steps per generator step, the "
              "penalty λ (|∇ critic(x̂)| − 1)² at random points between real and generated images" if gp else
              "RMSprop for both networks, every critic weight clipped to ±0.01 after each critic step, 100 critic steps "
              "before each of the first 25 generator steps and every 500th, else 5")
    steps = metrics.get("steps", {})
    return f"""---
library_name: fastai-part2-demos
license: mit
tags: [gan, wgan, dcgan, fastai-part2, pytorch_model_hub_mixin]
---
# Lesson 12 · {variant} generator, {config.size}-px {'flowers' if 'flowers' in data else Path(data).stem}

The lesson's DCGAN generator (`dl_core/gan/model.py`): noise ({config.nz}-d) → transposed convolutions
(4×4 → {config.size}×{config.size}), each ConvT → ReLU → BatchNorm, {config.n_extra_layers} extra 3×3 layer(s), tanh.
Width ngf {config.ngf}: {millions(DCGANGenerator(config))}M parameters, stored in fp16. Only the generator is
bundled; its critic ({millions(DCGANCritic(config))}M parameters, ndf {config.ndf}, {config.critic_norm} norm) stays in the
training run's checkpoint. Output: images in [-1, 1].

## Data
{credit} (`{data}`): {facts.get("n_train", "?")} training images; {facts.get("n_heldout", "?")} held out with a fixed
seed (10%), never trained on. The lesson trained on LSUN bedrooms (3 million images, 42 GB), which cannot be had here.

## Metrics: FD-Lite0
The Fréchet distance between Gaussians fitted to EfficientNet-Lite0's pooled ImageNet features (`dl_core/gan/evaluate.py`):
the FID formula with another network, so its numbers are not FIDs. Both sides use {scores.get("n", "?")} images.

| | FD-Lite0 vs the held-out real images |
|---|---|
| {scores.get("n", "?")} generated images | **{scores.get("fd", float("nan")):.2f}** |
| {scores.get("n", "?")} real training images (the floor) | {scores.get("fd_real", float("nan")):.2f} |
| ratio | {ratio:.2f} |

Reproduce: `python train/wgan.py evaluate --weights {folder} --data {data} --n {scores.get("n", 2000)}`

## Training
{hub.lineage_section(metrics.get("lineage", []), facts.get("seconds", 0), "checkpoint", "--resume", _describe_run)}```
{facts.get("command", "?")}
```
{len(history)} epochs of {args.get("bs", "?")} images ({steps.get("critic", "?")} critic and {steps.get("generator", "?")}
generator steps), {facts.get("seconds", 0) / 60:.1f} minutes on {facts.get("hardware", "?")}. {recipe}. LR
{args.get("lr", "?")}, a tenth of it for the second half (the lesson's second epoch). `{GALLERY_FILE}` shows the same 8
noise vectors after epochs {", ".join(map(str, metrics.get("gallery_epochs", [])))}.

{_history_table(history)}
"""


def rewrite_wgan_card(folder: str | Path) -> Path:
    folder = Path(folder)
    config = DCGANConfig(**json.loads((folder / "config.json").read_text()))
    metrics = json.loads((folder / "metrics.json").read_text())
    (folder / "README.md").write_text(wgan_card(config, metrics, f"weights/{folder.name}"))
    return folder / "README.md"


# --- CycleGAN ----------------------------------------------------------------------------------------------------
CYCLE_ARGS = ("data", "size", "scale", "batches_per_epoch", "ngf", "blocks", "ndf", "cycle", "identity", "pool", "epochs",
              "bs", "lr", "seed")
DOMAIN_TEXT = {
    "camvid": ("CamVid road scenes at 480x360 (Brostow et al. 2008; the SegNet release), research use. A: daylight "
               "(drives 0016E5 for training, 0006R0 held out); B: dusk (drive 0001TP, its last 16 frames held out)"),
}


def cyclegan_facts(args: argparse.Namespace, sources: dict[str, int], seconds: float) -> dict:
    return {
        "command": args.command_line,
        "args": {name: getattr(args, name, None) for name in CYCLE_ARGS},
        "sources": sources,
        "seconds": round(seconds, 1),
        "hardware": hub.describe_hardware(),
        "date": time.strftime("%Y-%m-%d"),
    }


def _cycle_history(history: list[dict]) -> str:
    step = max(1, len(history) // 10)
    shown = [h for i, h in enumerate(history) if i % step == 0 or i == len(history) - 1]
    rows = "\n".join(
        f"| {h['epoch'] + 1} | {h.get('generator_adversarial', float('nan')):.3f} | {h.get('generator_cycle', float('nan')):.3f} | "
        f"{h.get('generator_identity', float('nan')):.3f} | {h.get('critic_critic_a', float('nan')):.3f} | "
        f"{h.get('critic_critic_b', float('nan')):.3f} | {h['seconds']:.0f} |" for h in shown)
    return ("| epoch | generators: adversarial | cycle L1 | identity L1 | critic A | critic B | seconds |\n"
            "|---|---|---|---|---|---|---|\n" + rows)


def cyclegan_card(config, metrics: dict, folder: str) -> str:
    from dl_core.gan.model import CycleGenerators, PatchDiscriminator

    facts, history = metrics.get("facts", {}), metrics.get("history", [])
    args = facts.get("args", {})
    data = args.get("data", "camvid")
    scores = metrics.get("scores", {}).get("a_to_b", {})
    ratio = scores["fd_translated"] / scores["fd_untranslated"] if scores.get("fd_untranslated") else float("nan")
    sources = ", ".join(f"{name} {n}" for name, n in facts.get("sources", {}).items())
    reproduce = f"python train/cyclegan.py evaluate --weights {folder}" + ("" if data == "camvid" else " --source DIR_A --target DIR_B")
    return f"""---
library_name: fastai-part2-demos
license: mit
tags: [gan, cyclegan, image-to-image, fastai-part2, pytorch_model_hub_mixin]
---
# Lesson 12 · CycleGAN generators, {"day ⟷ dusk street scenes" if data == "camvid" else data}

Both translators of a CycleGAN (`dl_core/gan/model.py`, Johnson et al.'s ResNet generator as in the lesson's `cgan/`):
reflection-padded 7×7 conv to {config.ngf} channels, two stride-2 convs, {config.n_blocks} residual blocks at
{4 * config.ngf} channels, two transposed convs back, 7×7 conv to RGB, tanh; instance norm throughout.
`a_to_b` and `b_to_a`, {millions(CycleGenerators(config))}M parameters together, stored in fp16. Their 70×70 PatchGAN
critics ({millions(PatchDiscriminator(config.ndf))}M parameters each) stay in the training run's checkpoint.

Reduced from the paper (ngf 64, 9 blocks, 256-px crops, batch 1, 200 epochs) so it trains on a CPU: ngf {config.ngf},
{config.n_blocks} blocks, {args.get("size", "?")}-px crops, batch {args.get("bs", "?")}.

## Data
{DOMAIN_TEXT.get(data, data)}. Photos per split: {sources}.

## Metrics: held-out A → B
FD-Lite0 (the FID formula on EfficientNet-Lite0's pooled ImageNet features, `dl_core/gan/evaluate.py`; not an FID)
between 120-px tiles of the translated held-out A photos and of the held-out B photos, beside the same distance for
the untranslated A photos: the translation should bring A's statistics towards B's.

| | FD-Lite0 vs held-out B | tiles |
|---|---|---|
| A translated to B | **{scores.get("fd_translated", float("nan")):.2f}** | {scores.get("n", "?")} |
| A as it is | {scores.get("fd_untranslated", float("nan")):.2f} | {scores.get("n", "?")} |
| ratio | {ratio:.2f} | |
{_floor_row(scores)}
Cycle error (A → B → A, mean absolute, 0–1 scale): {scores.get("cycle_l1", float("nan")):.4f}.

Reproduce: `{reproduce}`

## Training
{hub.lineage_section(metrics.get("lineage", []), facts.get("seconds", 0), "checkpoint", "--resume", _describe_run)}```
{facts.get("command", "?")}
```
{len(history)} epochs of {args.get("batches_per_epoch", "?")} batches (half generator steps, half critic steps; {metrics.get("steps", {}).get("generator", "?")}
generator steps), {facts.get("seconds", 0) / 60:.1f} minutes on {facts.get("hardware", "?")}. LSGAN losses, cycle weight
{args.get("cycle", "?")}, identity {args.get("identity", "?")} × that, an image pool of {args.get("pool", "?")}; Adam (0.5, 0.999),
LR {args.get("lr", "?")} for the first half, then linearly to 0.

{_cycle_history(history)}
"""


def _floor_row(scores: dict) -> str:
    if "fd_floor" not in scores:
        return ""
    ratio = scores["fd_floor"] / scores["fd_untranslated"]
    return (f"| floor: B's training photos (real B) | {scores['fd_floor']:.2f} ({ratio:.2f}× A as it is) | |\n\n"
            "The floor is what a translator that produced real B photos would score against these few held-out B "
            "photos: the distance left between two stretches of the same domain. FD-Lite0 weighs what a scene shows "
            "(its ImageNet features) more than its light, and a translator is meant to keep what the scene shows, so "
            "no translation can be expected to go below the floor.\n")


def record_cyclegan_scores(folder: str | Path, direction: str, scores: dict) -> Path:
    """Put `scores` into the folder's metrics.json under scores[direction] and rewrite its card."""
    hub.record_metrics(folder, ("scores", direction), scores)
    return rewrite_cyclegan_card(folder)


def rewrite_cyclegan_card(folder: str | Path) -> Path:
    from dl_core.gan.model import CycleGANConfig

    folder = Path(folder)
    config = CycleGANConfig(**json.loads((folder / "config.json").read_text()))
    metrics = json.loads((folder / "metrics.json").read_text())
    (folder / "README.md").write_text(cyclegan_card(config, metrics, f"weights/{folder.name}"))
    return folder / "README.md"
