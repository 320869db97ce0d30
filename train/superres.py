"""Lesson 14: super-resolution ×2 and ×4 with the EDSR-style SrResnet; pixel loss, then the perceptual loss.

    python train/superres.py train --scale 2 --out weights/superres-x2 --mixed-precision bf16
    python train/superres.py train --scale 4 --init weights/superres-x2 --out weights/superres-x4 --mixed-precision bf16
    python train/superres.py train --scale 4 --loss perceptual --init weights/superres-x4 \\
        --out weights/superres-x4-perceptual --mixed-precision bf16
    python train/superres.py evaluate --weights weights/superres-x4 --data ../shared/data/superres/CSet5 --scale 4
    python train/superres.py card --weights weights/superres-x4
    accelerate launch --multi_gpu --num_processes 2 train/superres.py train ...       # data-parallel, same script

`--init` a ×2 folder when training ×4: the network grows (head, body and first up-sampling step copied, the second
new), the lesson's progressive ×2 → ×4. Training photos: `--photos DIR ...`, default the data root's CSun_Hays80,
CamVid (drives 0001TP and 0016E5) and raccoon `train` photos. `evaluate --data urban` scores the urban hold-out
(CamVid drive 0006R0).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from dl_core import cli
from dl_core.hub import load_model
from dl_core.photos import list_images
from dl_core.schedules import one_cycle
from dl_core.superres import card
from dl_core.superres.data import (
    HELDOUT_DRIVE,
    SAMPLING,
    patch_loader,
    training_photos,
    urban_heldout,
    validation_loader,
)
from dl_core.superres.evaluate import evaluate_images
from dl_core.superres.model import SCALES, SrResnet, SuperResConfig, grow
from dl_core.superres.training import (
    FEATURE_LAYERS,
    FEATURE_WEIGHTS,
    PIXEL_LOSSES,
    FeatureLoss,
    ValidPSNR,
    make_learner,
    pixel_loss,
)

URBAN = "urban"  # --data urban: the held-out CamVid drive


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--photos", nargs="+", default=None, help="folders of training photos (default: the data root's "
                                                                 "CSun_Hays80, CamVid drives 0001TP/0016E5, raccoon train)")
    data.add_argument("--hr-size", type=int, default=0, help="high-res patch side (default: 48 low-res px × scale)")
    data.add_argument("--sample-by", choices=SAMPLING, default="photo",
                      help="cut each patch from a photo picked uniformly, or in proportion to its area (default: %(default)s)")
    data.add_argument("--batches-per-epoch", type=int, default=250, help="batches of fresh patches per epoch (default: %(default)s)")
    model = parser.add_argument_group("model and recipe")
    model.add_argument("--scale", type=int, choices=SCALES, default=2)
    model.add_argument("--blocks", type=int, default=8, help="residual blocks (default: %(default)s)")
    model.add_argument("--nf", type=int, default=64, help="channels (default: %(default)s)")
    model.add_argument("--loss", choices=["pixel", "perceptual"], default="pixel")
    model.add_argument("--pixel-loss", choices=list(PIXEL_LOSSES), default="l1", help="for --loss pixel (default: %(default)s)")
    model.add_argument("--feature-net", choices=list(FEATURE_LAYERS), default="efficientnet_lite0",
                       help="for --loss perceptual; vgg16 is the lesson's and downloads its weights (default: %(default)s)")
    model.add_argument("--init", default=None, help="start from this weight folder (a ×2 one grows into ×4)")
    cli.add_run_flags(parser, epochs=12, bs=16, lr=6e-4, clip=1.0, wd=0.0, out="weights/superres-x2")


def initial_model(args: argparse.Namespace) -> SrResnet:
    if not args.init:
        return SrResnet(SuperResConfig(scale=args.scale, nf=args.nf, n_blocks=args.blocks))
    start = load_model(SrResnet, args.init)
    if start.config.scale == args.scale:
        return start
    if start.config.scale > args.scale:
        raise SystemExit(f"superres.py train: cannot start a ×{args.scale} network from a ×{start.config.scale} one")
    return grow(start, args.scale)


def cmd_train(args: argparse.Namespace) -> None:
    """Train a super-resolution network on random patches; score the urban hold-out's centre crops each epoch."""
    accelerator = cli.start(args)
    hr_size = args.hr_size or 48 * args.scale
    try:
        sources = {folder: list_images([folder]) for folder in args.photos} if args.photos else training_photos()
        photos = [p for paths in sources.values() for p in paths]
        if not photos:
            raise FileNotFoundError("no training photos: pass --photos DIR (or put the data under the data root)")
        valid = urban_heldout()[::10] or photos[:: max(1, len(photos) // 10)][:10]
        train_dl = patch_loader(photos, scale=args.scale, hr_size=hr_size, bs=args.bs,
                                batches_per_epoch=args.batches_per_epoch, seed=args.seed, workers=cli.workers(args, 0),
                                sample_by=args.sample_by)
    except (OSError, ValueError) as err:
        raise SystemExit(f"superres.py train: {err}") from None
    lineage = card.lineage(args.init)  # read now: --init may be the --out folder
    model = initial_model(args)
    if args.loss == "pixel":
        loss_fn = pixel_loss(args.pixel_loss)
    else:
        from dl_core.perceptual import FeatureExtractor

        loss_fn = FeatureLoss(FeatureExtractor(args.feature_net), FEATURE_LAYERS[args.feature_net], FEATURE_WEIGHTS)
        loss_fn.to(accelerator.device)
    callbacks = cli.standard_callbacks(args, one_cycle(args.lr), ValidPSNR(args.scale), budget=cli.time_budget(args))
    learn = make_learner(model, train_dl, validation_loader(valid, args.scale, 192), loss_fn, lr=args.lr, wd=args.wd,
                         callbacks=callbacks, accelerator=accelerator)
    if accelerator.is_main_process:
        skipped = train_dl.dataset.skipped
        print(f"×{args.scale} {args.loss} loss: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters; "
              f"{len(photos) - skipped} training photos ({skipped} smaller than a patch left out), {learn.n_batches} "
              f"batches of {args.bs} × {hr_size} px per epoch")
    started = time.perf_counter()
    history = cli.fit(learn, args)
    if history is None:
        return
    seconds = time.perf_counter() - started
    model = learn.unwrapped_model.eval().cpu().half().float()  # as saved (fp16): `evaluate` then gives the card's numbers
    counts = {Path(k).name if args.photos else k: len(v) for k, v in sources.items()}
    metrics = {"history": history, "facts": card.train_facts(args, counts, len(valid), seconds), "lineage": lineage}
    cli.save(args, model, card.model_card(model.config, metrics, f"weights/{Path(args.out or 'WEIGHTS').name}"), metrics)


def add_evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="weight folder (model.safetensors + config.json)")
    parser.add_argument("--data", required=True, help=f"folder of high-resolution images, or '{URBAN}' for the urban "
                                                      f"hold-out (CamVid drive {HELDOUT_DRIVE})")
    parser.add_argument("--scale", type=int, choices=SCALES, default=None, help="must match the network (default: its own)")
    parser.add_argument("--self-ensemble", action="store_true", help="average the network's outputs over the 8 flips "
                                                                     "and rotations of each input (EDSR+; 8x slower)")
    parser.add_argument("--write", metavar="NAME", help="also record the scores in the folder's metrics.json as NAME "
                                                       "(e.g. CSet5; CSet5+ for --self-ensemble) and rewrite its card")


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Down-sample each image, restore it, score it and bicubic on Y; last line: JSON {"psnr", "ssim", "psnr_bicubic",
    "ssim_bicubic", "n"}."""
    try:
        model = load_model(SrResnet, args.weights)
    except (OSError, ValueError) as err:
        raise SystemExit(f"superres.py evaluate: cannot load {args.weights}: {err}") from None
    scale = args.scale or model.config.scale
    if scale != model.config.scale:
        raise SystemExit(f"superres.py evaluate: {args.weights} is a ×{model.config.scale} network, not ×{scale}")
    try:
        paths = urban_heldout() if args.data == URBAN else list_images([args.data])
        if not paths:
            raise FileNotFoundError(f"no images in {args.data}")
        result = evaluate_images(model, paths, scale, ensemble=args.self_ensemble)
        if args.self_ensemble:
            result["self_ensemble"] = True
    except (OSError, ValueError) as err:
        raise SystemExit(f"superres.py evaluate: {err}") from None
    print(f"scored {result['n']} images in {result.pop('seconds')} s", file=sys.stderr)
    if args.write:
        print(f"recorded as '{args.write}'; wrote {card.record_scores(args.weights, args.write, result)}", file=sys.stderr)
    print(json.dumps(result))


def cmd_card(args: argparse.Namespace) -> None:
    """Rewrite a weight folder's model card (README.md) from its config.json and metrics.json."""
    print(f"wrote {card.rewrite_card(args.weights)}")


COMMANDS = {"train": (add_train_flags, cmd_train), "evaluate": (add_evaluate_flags, cmd_evaluate),
            "card": (cli.add_card_flags, cmd_card)}


def main(argv: list[str] | None = None) -> None:
    cli.main(__file__, __doc__, COMMANDS, argv)


if __name__ == "__main__":
    main()
