"""The super-resolution model cards, written from a weight folder's config.json and metrics.json by code.

metrics.json holds the run's `facts` (command, recipe, data, hardware, time), the per-epoch `history` and the
benchmark scores `train/superres.py evaluate --write NAME` recorded (`CSet5`, `CSet14`, `CBSD68`, `urban`).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from dl_core import hub
from dl_core.superres.data import AUGMENTATION, PHOTO_SOURCES
from dl_core.superres.model import SrResnet, SuperResConfig, n_parameters

# Set5 PSNR-Y as the papers report them (bicubic as the SR literature tabulates it; ours is measured above)
LITERATURE = {2: "bicubic 33.66, SRCNN 36.66, VDSR 37.53, EDSR 38.11",
              4: "bicubic 28.42, SRCNN 30.48, VDSR 31.35, SRResNet 32.05, EDSR 32.46"}
RECIPE_ARGS = ("scale", "loss", "pixel_loss", "sample_by", "epochs", "batches_per_epoch", "bs", "hr_size", "lr", "wd",
               "clip", "mixed_precision", "seed", "init")


def lineage(init_folder: str | Path | None) -> list[dict]:
    """The runs that made the `--init` folder, oldest first (its own lineage, then its run, with its Set5 score), so
    the card can list every command that rebuilds the weights. Read before training: a run may write over it."""
    metrics_file = Path(init_folder) / "metrics.json" if init_folder else None
    if metrics_file is None or not metrics_file.is_file():
        return []
    metrics = json.loads(metrics_file.read_text())
    facts = metrics.get("facts", {})
    if "command" not in facts:
        return []
    run = {"command": facts["command"], "epochs": len(metrics.get("history", [])), "seconds": facts.get("seconds", 0),
           "hardware": facts.get("hardware", "?"), "scores": metrics.get("scores", {})}
    return [*metrics.get("lineage", []), run]


def _describe_run(run: dict) -> str:
    set5 = run.get("scores", {}).get("CSet5", {}).get("psnr")
    return (f"{run['epochs']} epochs, {run['seconds'] / 60:.0f} minutes on {run['hardware']}"
            + (f"; Set5 PSNR-Y {set5:.2f} dB" if set5 else ""))


def train_facts(args: argparse.Namespace, sources: dict[str, int], n_valid: int, seconds: float) -> dict:
    return {
        "command": args.command_line,
        "args": {name: getattr(args, name, None) for name in RECIPE_ARGS},
        "sources": sources,
        "n_valid": n_valid,
        "seconds": round(seconds, 1),
        "hardware": hub.describe_hardware(),
        "date": time.strftime("%Y-%m-%d"),
    }


BENCHMARK_TEXT = {
    "CSet5": "Set5 (5 images)", "CSet14": "Set14 (14 images)", "CBSD68": "BSD68 (68 images)",
    "urban": "urban hold-out: CamVid drive 0006R0 (101 street scenes no training photo comes from)",
}


def _benchmark_text(name: str, scores: dict) -> str:
    """`--write CSet5+` with `--self-ensemble` records Set5 scored with the x8 self-ensemble (EDSR+'s naming)."""
    text = BENCHMARK_TEXT.get(name.removesuffix("+"), name.removesuffix("+"))
    return f"{text}, ×8 self-ensemble" if scores.get("self_ensemble") else text


def _scores_table(metrics: dict) -> str:
    rows = [f"| {_benchmark_text(name, s)} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['psnr_bicubic']:.2f} | "
            f"{s['ssim_bicubic']:.4f} | {s['psnr'] - s['psnr_bicubic']:+.2f} |"
            for name, s in metrics.get("scores", {}).items()]
    if not rows:
        return "(not scored yet: run `train/superres.py evaluate --write NAME`)"
    return ("| test set | PSNR-Y (dB) | SSIM-Y | bicubic PSNR-Y | bicubic SSIM-Y | gain over bicubic (dB) |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(rows))


@hub.ends_with_fast_path_section
def model_card(config: SuperResConfig, metrics: dict, folder: str) -> str:
    facts, history = metrics.get("facts", {}), metrics.get("history", [])
    args = facts.get("args", {})
    loss = args.get("loss", "pixel")
    minutes = facts.get("seconds", 0) / 60
    params = n_parameters(SrResnet(config))
    sources = "\n".join(f"- {PHOTO_SOURCES.get(k, k)}: {n} photos" for k, n in facts.get("sources", {}).items())
    hr_size = args.get("hr_size") or 48 * config.scale  # 0: the default, 48 low-res pixels
    loss_text = (f"{args.get('pixel_loss', 'l1').upper()} between the output and the original pixels" if loss == "pixel" else
                 "the lesson's feature loss: L1 on pixels plus L1 between EfficientNet-Lite0's feature maps of the output "
                 "and of the original at strides 2, 4 and 8 (weights 0.2, 0.7, 0.1), each divided by the original's "
                 "mean feature magnitude")
    history_rows = "\n".join(f"| {h['epoch'] + 1} | {h['train_loss']:.4f} | {h.get('psnr', float('nan')):.2f} | "
                             f"{h.get('psnr_bicubic', float('nan')):.2f} | {h['seconds']:.0f} |" for h in history)
    data_flag = {"CSet5": "../shared/data/superres/CSet5", "CSet14": "../shared/data/superres/CSet14",
                 "CBSD68": "../shared/data/superres/CBSD68", "urban": "urban"}
    reproduce = "\n".join(
        f"python train/superres.py evaluate --weights {folder} --scale {config.scale} "
        f"--data {data_flag[name.removesuffix('+')]}" + (" --self-ensemble" if scores.get("self_ensemble") else "")
        for name, scores in metrics.get("scores", {}).items() if name.removesuffix("+") in data_flag)
    why_lower = ("" if loss == "pixel" else
                 "\n\nIts PSNR is lower than the pixel-loss network's, by design: PSNR is a pixel MSE, and this network was "
                 "asked for plausible texture instead of the per-pixel average, so where the low-res input leaves the "
                 "detail open it draws one sharp guess rather than the blur of all of them. Sharper to the eye, further "
                 "from the original in mean squared error.")
    return f"""---
library_name: fastai-part2-demos
license: mit
tags: [super-resolution, edsr, pixel-shuffle, icnr, fastai-part2, pytorch_model_hub_mixin]
metrics: [psnr, ssim]
---
# Lesson 14 · Super-resolution ×{config.scale} ({loss} loss)

The lesson's `SrResnet` (EDSR-style, `dl_core/superres/model.py`): a 3×3 conv to {config.nf} channels,
{config.n_blocks} residual blocks without batch norm (each change scaled by {config.res_scale}), a long skip, then
{"one" if config.scale == 2 else "two"} sub-pixel up-sampling step{"" if config.scale == 2 else "s"} (3×3 conv to
{4 * config.nf} channels, ICNR-initialised, `PixelShuffle(2)`) and a 3×3 conv to RGB. {params / 1e6:.2f}M parameters,
stored in fp16. Input: an RGB image in [0, 1]; output: {config.scale}× its width and height.

## Data
Trained on random patches of photos that no benchmark holds:
{sources or "?"}

Low-res inputs are bicubic down-samplings (anti-aliased, PIL; see `dl_core/superres/data.py` for how it differs from MATLAB's `imresize`);
augmentation: {AUGMENTATION}. Scored on the standard test sets (never trained on), and on CamVid drive 0006R0 as
urban photos: nothing was tuned on any of them; the last epoch's weights are the ones saved.

## Metrics (PSNR/SSIM on Y of YCbCr, {config.scale} border pixels shaved, 8-bit outputs)
{_scores_table(metrics)}

Published Set5 ×{config.scale} PSNR-Y for comparison (not measured here): {LITERATURE[config.scale]}.

Reproduce:
```
{reproduce.strip() or "python train/superres.py evaluate --weights " + folder + " --scale " + str(config.scale) + " --data DIR"}
```{why_lower}

## Training
{hub.lineage_section(metrics.get("lineage", []), facts.get("seconds", 0), "weights", "--init", _describe_run)}```
{facts.get("command", "?")}
```
{len(history)} epochs of {args.get("batches_per_epoch", "?")} batches of {args.get("bs", "?")} patches
({hr_size} px high-res), {minutes:.1f} minutes on {facts.get("hardware", "?")}. Loss: {loss_text}.
Adam, 1cycle to a peak LR of {args.get("lr", "?")}, gradient norm clipped at {args.get("clip", "?")},
{args.get("mixed_precision", "no")} mixed precision{f"; started from `{args['init']}`" if args.get("init") else ""}.
Validation after every epoch: PSNR-Y of {facts.get("n_valid", 11)} fixed 192-px centre crops of the urban hold-out,
watched, not selected on (bicubic there is torch's, a = −0.75, so it differs a little from the table above).

| epoch | train loss | valid PSNR-Y | bicubic | seconds |
|---|---|---|---|---|
{history_rows}
"""


def rewrite_card(folder: str | Path) -> Path:
    folder = Path(folder)
    config = SuperResConfig(**json.loads((folder / "config.json").read_text()))
    metrics = json.loads((folder / "metrics.json").read_text())
    (folder / "README.md").write_text(model_card(config, metrics, f"weights/{folder.name}"))
    return folder / "README.md"


def record_scores(folder: str | Path, name: str, scores: dict) -> Path:
    """Put `scores` into the folder's metrics.json under scores[name] and rewrite its card."""
    hub.record_metrics(folder, ("scores", name), {k: v for k, v in scores.items() if k != "seconds"})
    return rewrite_card(folder)
