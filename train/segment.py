"""Lesson 14: segment CamVid street scenes with a U-Net (or the lesson's skip-free ablation); evaluate; card.

    python train/segment.py train --out weights/segmentation --mixed-precision bf16                    # U-Net
    python train/segment.py train --decoder upsample --out weights/segmentation-noskip --mixed-precision bf16
    python train/segment.py train --backbone resnet34 ...                    # the lesson's encoder (downloads)
    python train/segment.py evaluate --weights weights/segmentation \\
        --images ../shared/data/segmentation/camvid/val --labels ../shared/data/segmentation/camvid/valannot
    python train/segment.py card --weights weights/segmentation --ablation weights/segmentation-noskip
    accelerate launch --multi_gpu --num_processes 2 train/segment.py train ...         # data-parallel, same script

Data: a folder in the SegNet layout (`train/`, `trainannot/`, `val/`, `valannot/`, optionally `test/`,
`testannot/`, `codes.txt`); default: the data root's segmentation/camvid, else a download of the SegNet release.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from dl_core import cli
from dl_core.backbones import BACKBONES
from dl_core.schedules import one_cycle
from dl_core.segmentation import card
from dl_core.segmentation.data import LabelError, eval_loader, find_camvid, pair_by_stem, read_camvid, read_pairs, train_loader
from dl_core.segmentation.evaluate import evaluate_pairs
from dl_core.segmentation.infer import load_segmenter
from dl_core.segmentation.model import DECODERS
from dl_core.segmentation.training import FreezeEncoder, ValidIoU, make_learner, pretrained_model


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", default=None, help="CamVid folder in the SegNet layout (default: the data root's "
                                                   "segmentation/camvid, else a download)")
    data.add_argument("--download-dir", default="data/camvid", help="where a download goes (default: %(default)s)")
    data.add_argument("--valid-split", default="val", choices=["val", "test"],
                      help="the split scored after every epoch and in the card (default: %(default)s)")
    model = parser.add_argument_group("model and recipe")
    model.add_argument("--backbone", choices=BACKBONES, default=BACKBONES[0],
                       help="ImageNet encoder; resnet34 is the lesson's and downloads torchvision's weights (default: %(default)s)")
    model.add_argument("--decoder", choices=DECODERS, default="unet",
                       help="unet: skip connections; upsample: the lesson's skip-free ablation (default: %(default)s)")
    model.add_argument("--width", type=int, default=128, help="channels of every decoder step (default: %(default)s)")
    model.add_argument("--crop", type=int, nargs=2, default=[288, 384], metavar=("H", "W"),
                       help="training crop, after a random 0.75-1.25x rescale (default: %(default)s)")
    model.add_argument("--freeze-epochs", type=int, default=2,
                       help="epochs with the encoder frozen before it is fine-tuned (default: %(default)s)")
    model.add_argument("--encoder-lr-mult", type=float, default=0.1,
                       help="the encoder's LR as a fraction of the decoder's, once unfrozen (default: %(default)s)")
    cli.add_run_flags(parser, epochs=30, bs=8, lr=3e-3, clip=0.0, wd=1e-2, out="weights/segmentation")


def add_evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="weight folder (model.safetensors + config.json)")
    parser.add_argument("--images", required=True, help="folder of photos (.png/.jpg)")
    parser.add_argument("--labels", required=True, help="folder of label images (.png of class indices, same stems)")
    parser.add_argument("--write", metavar="NAME", help="also record the scores in the folder's metrics.json as NAME "
                                                       "(the card quotes 'valid') and rewrite its card")


def cmd_train(args: argparse.Namespace) -> None:
    """Train a segmenter on CamVid's train split, score the validation split, save the weight folder."""
    accelerator = cli.start(args)
    try:
        root = find_camvid(args.data, download_to=args.download_dir)
        train, valid = read_camvid(root, "train"), read_camvid(root, args.valid_split)
    except (OSError, LabelError) as err:  # no data, no network, a broken label: say which, no traceback
        raise SystemExit(f"segment.py train: {err}") from None
    model = pretrained_model(train.classes, backbone=args.backbone, decoder=args.decoder, width=args.width,
                             void_index=train.void_index)
    callbacks = cli.standard_callbacks(args, one_cycle(args.lr), FreezeEncoder(args.freeze_epochs), ValidIoU(),
                                       budget=cli.time_budget(args))
    learn = make_learner(model, train_loader(train, tuple(args.crop), args.bs, args.seed, cli.workers(args, 0)),
                         eval_loader(valid), lr=args.lr, wd=args.wd, encoder_lr_mult=args.encoder_lr_mult,
                         callbacks=callbacks, accelerator=accelerator)
    if accelerator.is_main_process:
        print(f"{args.decoder}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters; {len(train)} training "
              f"photos, {learn.n_batches} batches per epoch; scoring {len(valid)} {args.valid_split} photos")
    started = time.perf_counter()
    history = cli.fit(learn, args)
    if history is None:
        return
    seconds = time.perf_counter() - started
    model = learn.unwrapped_model.eval().cpu().half().float()  # as saved (fp16): `evaluate` then gives the card's numbers
    metrics = {"valid": evaluate_pairs(model, valid)}
    print(json.dumps(metrics["valid"]))
    metrics.update(history=history, facts=card.train_facts(args, root, len(train), len(valid), seconds))
    # the card names the folder as the repository keeps it (weights/<name>), as `card` rewrites it
    cli.save(args, model, card.model_card(model.config, metrics, f"weights/{Path(args.out or 'WEIGHTS').name}"), metrics)


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Score a weight folder on photo/label pairs at full resolution; last line: JSON {"miou", "pixel_acc",
    "per_class_iou", "n"}."""
    model = load_segmenter(args.weights)
    try:
        paired = pair_by_stem(args.images, args.labels)
        if paired.report():
            print(f"skipped: {paired.report()}", file=sys.stderr)
        if not paired.pairs:
            raise SystemExit(f"no photo in {args.images} has a label of the same stem in {args.labels}")
        data = read_pairs(paired, model.config.classes, model.config.void_index)
    except (FileNotFoundError, LabelError) as err:
        raise SystemExit(f"segment.py evaluate: {err}") from None
    result = evaluate_pairs(model, data)
    print(f"scored {result['n']} photos in {result.pop('seconds')} s", file=sys.stderr)
    if args.write:
        print(f"recorded as '{args.write}'; wrote {card.record_scores(args.weights, args.write, result)}", file=sys.stderr)
    print(json.dumps(result))


def add_card_flags(parser: argparse.ArgumentParser) -> None:
    cli.add_card_flags(parser)
    parser.add_argument("--ablation", metavar="DIR", help="a folder of the other decoder to quote side by side "
                                                         "(remembered in metrics.json)")


def cmd_card(args: argparse.Namespace) -> None:
    """Rewrite a weight folder's model card (README.md) from its config.json and metrics.json."""
    print(f"wrote {card.rewrite_card(args.weights, args.ablation)}")


COMMANDS = {"train": (add_train_flags, cmd_train), "evaluate": (add_evaluate_flags, cmd_evaluate),
            "card": (add_card_flags, cmd_card)}


def main(argv: list[str] | None = None) -> None:
    cli.main(__file__, __doc__, COMMANDS, argv)


if __name__ == "__main__":
    main()
