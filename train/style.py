"""Lessons 13-14: train a fast style-transfer network for one painting; evaluate it against Gatys.

    python train/style.py train --style ../shared/data/style/starry_night.jpg --out weights/style-starry_night
    python train/style.py evaluate --weights weights/style-starry_night --data ../shared/data/superres/CSet5
    python train/style.py card --weights weights/style-starry_night
    python train/style.py city-photos [--from opencv-doc/]   # the city check set into data/city-photos

`train` fits Johnson et al.'s network (dl_core/style/model.py) with the perceptual loss of dl_core/perceptual.py
on random crops of content photos (dl_core/style/data.py: CamVid, CSun_Hays80, the raccoon photos and BSD68 from
the data root, or any folders with --content); CSet5 and CSet14 are held out. `evaluate` compares the network's one forward pass with
300 steps of Gatys pixel optimisation on every photo, same loss (dl_core/style/evaluate.py), and prints one JSON
line, last. `card` rewrites a weight folder's model card from its config.json and metrics.json (dl_core/style/card.py).
`city-photos` fetches the second held-out check, photos of city buildings and streets from OpenCV's samples.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from dl_core import cli, hub
from dl_core.perceptual import DEFAULT_FEATURES, build_loss, loss_settings
from dl_core.photos import list_images
from dl_core.schedules import one_cycle
from dl_core.style import card, data, evaluate, training
from dl_core.style.model import StyleNet

NAME = "<name>"  # in --out's default: the style's name


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--style", required=True, help="the painting (an image file)")
    parser.add_argument("--name", help="style name (default: the painting's file name, '-' as '_')")
    parser.add_argument("--content", nargs="+", default=[str(p) for p in data.default_content()],
                        help="folders of content photos to train on (default: CamVid train + val, CSun_Hays80, "
                             "the raccoon photos, BSD68)")
    parser.add_argument("--heldout", nargs="+", default=[str(p) for p in data.default_heldout()],
                        help="folders of held-out photos: validation loss and the Gatys comparison (default: CSet5, CSet14)")
    parser.add_argument("--style-size", type=int, default=256, help="the painting's shorter side, px (default: %(default)s)")
    parser.add_argument("--size", type=int, default=256, help="training crop size, px (default: %(default)s)")
    parser.add_argument("--steps-per-epoch", type=int, default=200, help="batches per epoch (default: %(default)s)")
    parser.add_argument("--init", metavar="DIR", help="train on from this trained network of the same style (its sizes and weights)")
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64],
                        help="widths at full, 1/2, 1/4 resolution; a fourth adds a 1/8 level (residual blocks see twice as far)")
    parser.add_argument("--residual-blocks", type=int, default=5, help="residual blocks at the lowest resolution (default: %(default)s)")
    loss = parser.add_argument_group("perceptual loss (dl_core/perceptual.py)")
    loss.add_argument("--backbone", choices=["efficientnet_lite0", "vgg16"], default=DEFAULT_FEATURES["backbone"],
                      help="frozen ImageNet feature network; vgg16 (the lessons') downloads torchvision's weights (default: %(default)s)")
    loss.add_argument("--smoothing", choices=["softmax", "none"], default=DEFAULT_FEATURES["smoothing"],
                      help="SWAG activation smoothing of the style features (default: %(default)s)")
    loss.add_argument("--temperature", type=float, default=DEFAULT_FEATURES["temperature"], help="of the softmax smoothing (default: %(default)s)")
    loss.add_argument("--style-layers", nargs="+", help="feature layers of the style loss (default: the backbone's)")
    loss.add_argument("--content-weight", type=float, default=5.0, help="weight of the content loss (default: %(default)s)")
    loss.add_argument("--style-weight", type=float, help="weight of the style loss (default: 600 with smoothing, 15 without)")
    loss.add_argument("--tv-weight", type=float, default=3.0, help="total variation weight (default: %(default)s)")
    report = parser.add_argument_group("evaluation and card")
    report.add_argument("--eval-steps", type=int, default=evaluate.GATYS_STEPS,
                        help="Gatys steps in the held-out comparison after training; 0: skip (default: %(default)s)")
    report.add_argument("--eval-size", type=int, default=evaluate.EVAL_SIZE, help="held-out photos fitted within this many px (default: %(default)s)")
    report.add_argument("--card-note", default="", help="a sentence for the model card's data section")
    cli.add_run_flags(parser, epochs=10, bs=8, lr=3e-3, clip=5.0, wd=0.0, out=f"weights/style-{NAME}")


def cmd_train(args: argparse.Namespace) -> None:
    """Train a style network for one painting, compare it with Gatys on the held-out photos, save the folder."""
    args.name = args.name or Path(args.style).stem.replace("-", "_")
    args.out = args.out.replace(NAME, args.name)
    accelerator = cli.start(args)
    smoothing = None if args.smoothing == "none" else args.smoothing
    layers = {"style_layers": tuple(args.style_layers)} if args.style_layers else {}
    settings = loss_settings(args.backbone, smoothing, args.temperature, content_weight=args.content_weight,
                             style_weight=args.style_weight, tv_weight=args.tv_weight, **layers)
    extractor, grams = training.painting_grams(settings, args.style, args.style_size)
    model = training.build_network(args.name, settings, grams, args.channels, args.residual_blocks, args.init)
    objective = training.PerceptualObjective(build_loss(settings, grams, extractor).to(accelerator.device), accelerator.autocast)
    train_dl, valid_dl = data.loaders(args.content, args.heldout, args.size, args.bs, args.steps_per_epoch, args.seed,
                                      cli.workers(args, 1))
    callbacks = cli.standard_callbacks(args, one_cycle(args.lr), training.LossTermsLog(objective), budget=cli.time_budget(args))
    learn = training.make_learner(model, objective, train_dl, valid_dl, args.lr, callbacks, accelerator, wd=args.wd)
    print(f"{args.name}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {len(train_dl.dataset.photos)} photos, "
          f"{len(valid_dl.dataset)} held out, {learn.n_batches} batches of {args.bs} per epoch")
    start = time.perf_counter()
    history = cli.fit(learn, args)
    if history is None:
        return
    model = learn.unwrapped_model.eval().cpu().half().float()  # as saved (fp16): `evaluate` then gives the card's numbers
    metrics = {"hardware": hub.describe_hardware(), "train_seconds": round(time.perf_counter() - start),
               "n_train_photos": len(train_dl.dataset.photos), "n_heldout_photos": len(valid_dl.dataset),
               "train_args": {k: v for k, v in vars(args).items() if k not in ("command", "run")}}
    if args.init:
        metrics["lineage"] = card.training_lineage(args.init)
    if args.eval_steps:
        metrics["heldout"] = evaluate.evaluate_against_gatys(model, list_images(args.heldout), args.eval_size, args.eval_steps)
        metrics["evaluate_command"] = card.evaluate_command(args.out, args.heldout, args.eval_size, args.eval_steps)
        model = model.cpu()
        print(json.dumps(metrics["heldout"]))
    metrics["history"] = history
    if args.out:  # the painting travels with the weights (and any Hub push), so the tab and the card can show it
        Path(args.out).mkdir(parents=True, exist_ok=True)
        card.export_painting(args.style, args.out)
    cli.save(args, model, card.model_card(model.config, metrics), metrics)


def add_evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="a style network's weight folder")
    parser.add_argument("--data", nargs="+", default=[str(p) for p in data.default_heldout()],
                        help="folders (or files) of photos (default: the held-out CSet5 and CSet14)")
    parser.add_argument("--size", type=int, default=evaluate.EVAL_SIZE, help="photos fitted within this many px (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=evaluate.GATYS_STEPS, help="Gatys steps to compare with (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="torch's seed before the evaluation, and the sample's (default: %(default)s)")
    parser.add_argument("--sample", type=int, metavar="N",
                        help="score a seeded sample of N of the photos (the data test's quick check; default: all)")
    parser.add_argument("--write", nargs="?", const="heldout", choices=["heldout", "city"],
                        help="also record the result in the folder's metrics.json and model card: as the held-out numbers "
                             "(heldout_sample with --sample), or with `--write city` as the city photos' numbers")


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Network vs Gatys on every photo in the folders, same loss; prints JSON, last."""
    torch.manual_seed(args.seed)
    model = hub.load_model(StyleNet, args.weights)
    photos = evaluate.seeded_sample(list_images(args.data), args.sample, args.seed)
    result = evaluate.evaluate_against_gatys(model, photos, args.size, args.steps)
    if args.write:  # e.g. after a GPU run with --eval-steps 0
        command = card.evaluate_command(args.weights, args.data, args.size, args.steps, args.sample, args.seed)
        if args.write == "city":
            record = {"city": {**result, "command": command}}
        elif args.sample:
            record = {"heldout_sample": {**result, "command": command}}
        else:
            record = {"heldout": result, "evaluate_command": command}
        for key, value in record.items():
            hub.record_metrics(args.weights, (key,), value)
        card.write_card(args.weights)
    print(json.dumps(result))


def add_card_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="a style network's weight folder (its config.json and metrics.json)")
    parser.add_argument("--replaces", metavar="DIR",
                        help="the folder of the network these weights replace: its evaluated numbers are kept beside "
                             "the new ones (metrics.json's 'replaces') for the card's old-vs-new table")


def cmd_card(args: argparse.Namespace) -> None:
    """Rewrite a weight folder's README.md from its config.json and metrics.json (completing metrics.json)."""
    if args.replaces:
        card.record_replaced(args.weights, args.replaces)
    card.write_card(args.weights)
    print(f"wrote {Path(args.weights) / 'README.md'}")


def add_city_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=str(data.CITY_FOLDER), help="where to put the photos (default: %(default)s)")
    parser.add_argument("--from", dest="local_copy", metavar="DIR",
                        help="copy them from OpenCV's samples unpacked here (e.g. Debian's opencv-doc) instead of downloading")


def cmd_city(args: argparse.Namespace) -> None:
    """Fetch the city photos (dl_core/style/data.py: CITY_PHOTOS), checked against their SHA-256."""
    try:
        folder = data.fetch_city_photos(args.out, args.local_copy)
    except (OSError, ValueError) as err:  # no network, a wrong folder or changed files: say so, no traceback
        hint = "" if args.local_copy else (" (offline: `apt-get download opencv-doc && dpkg -x opencv-doc_*.deb opencv-doc`, "
                                           "then --from opencv-doc)")
        raise SystemExit(f"style.py city-photos: error: {err}{hint}") from None
    print(f"{len(data.CITY_PHOTOS)} city photos in {folder}")


def main(argv: list[str] | None = None) -> None:
    cli.main(__file__, __doc__, {"train": (add_train_flags, cmd_train), "evaluate": (add_evaluate_flags, cmd_evaluate),
                                 "card": (add_card_flags, cmd_card), "city-photos": (add_city_flags, cmd_city)}, argv)


if __name__ == "__main__":
    main()
