"""Lessons 8-9: train the SSD detector (+ the lesson-8 largest-object head), evaluate mAP, save/push it.

    python train/detect.py train --compare-bce --out weights/detection
    python train/detect.py evaluate --weights weights/detection --data ../shared/data/detection/raccoon --split test
    python train/detect.py evaluate --weights weights/detection --data path/to/instances.json
    python train/detect.py card --weights weights/detection        # rewrite the model card from the folder

One 7-class model is trained on both bundled data sets: raccoon (200 photos, Pascal VOC XML) and coco_tiny
(200 COCO images, 6 indoor classes). One model, because the app has one detection tab and the two sets do
not overlap in content (raccoon photos hold no annotated furniture, and coco_tiny no raccoons).
With network, `--voc2007 DIR` adds Pascal VOC 2007 (the lesson's data) through torchvision.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from dl_core import cli, hub
from dl_core.backbones import BACKBONES
from dl_core.detection import card, data, evaluate, training
from dl_core.detection.model import SSD
from dl_core.schedules import one_cycle


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    sets = parser.add_argument_group("data")
    sets.add_argument("--raccoon", default=cli.default_data("detection", "raccoon"),
                      help="raccoon folder (annotations/*.xml, images/, test_labels.csv) (default: the data root's)")
    sets.add_argument("--coco", default=cli.default_data("detection", "coco_tiny"),
                      help="coco_tiny folder (train.json, train/) (default: the data root's)")
    sets.add_argument("--coco-valid", type=int, default=40, help="coco_tiny images held out, seeded by --seed (default: %(default)s)")
    sets.add_argument("--voc2007", metavar="DIR", help="folder to download Pascal VOC 2007 into and train on too (needs network)")
    model = parser.add_argument_group("model and recipe")
    model.add_argument("--backbone", choices=BACKBONES, default=BACKBONES[0],
                       help="ImageNet backbone; resnet34 is the lesson's and downloads torchvision's weights (default: %(default)s)")
    model.add_argument("--size", type=int, default=224, help="images are squashed to SIZE x SIZE px (default: %(default)s)")
    model.add_argument("--backbone-lr-mult", type=float, default=0.1,
                       help="the backbone's learning rate as a fraction of the heads' (default: %(default)s)")
    model.add_argument("--compare-bce", action="store_true", help="also train with plain BCE and report both in the card")
    cli.add_run_flags(parser, epochs=30, bs=16, lr=2e-3, clip=5.0, wd=1e-2, out="weights/detection")


def add_evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="weight folder (model.safetensors + config.json)")
    parser.add_argument("--data", required=True, help="VOC folder (annotations/*.xml) or COCO JSON file")
    parser.add_argument("--split", choices=["all", "test", "heldout"], default="all",
                        help="test: the files in test_labels.csv; heldout: the seeded split training held out "
                             "(default: %(default)s)")
    parser.add_argument("--coco-valid", type=int, help="heldout: how many were held out (default: as the folder's training did)")
    parser.add_argument("--seed", type=int, help="heldout: the split's seed (default: as the folder's training did)")


def train_one(args: argparse.Namespace, loss: str, train_items, valid_items) -> tuple[SSD | None, list[dict] | None]:
    """One seeded run with this class loss; (model, history), or (None, None) on a non-main process."""
    accelerator = cli.start(args)
    model = training.pretrained_model(data.CLASSES, args.backbone, args.size)
    checkpoint = cli.checkpoint_path(args)
    if checkpoint:  # one checkpoint per loss, so --compare-bce's second run does not resume from the first
        args = argparse.Namespace(**{**vars(args), "checkpoint": str(checkpoint.with_suffix(f".{loss}.safetensors"))})
    callbacks = cli.standard_callbacks(args, one_cycle(args.lr), budget=cli.time_budget(args))
    learn = training.make_learner(model, train_items, valid_items, loss=loss, bs=args.bs, lr=args.lr, wd=args.wd,
                                  backbone_lr_mult=args.backbone_lr_mult, seed=args.seed, workers=cli.workers(args, 1),
                                  callbacks=callbacks, accelerator=accelerator)
    print(f"{loss}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {len(train_items)} train "
          f"images, {learn.n_batches} batches per epoch")
    history = cli.fit(learn, args)
    return (None, None) if history is None else (learn.unwrapped_model.eval().cpu(), history)


def cmd_train(args: argparse.Namespace) -> None:
    """Train the SSD with focal loss (and with plain BCE: --compare-bce), score it, save the weight folder."""
    if not (args.raccoon and args.coco):
        raise SystemExit("no raccoon/coco_tiny data under the data root (DL_DATA_DIR): give --raccoon and --coco")
    train_sets, heldout = data.training_data(args.raccoon, args.coco, args.coco_valid, args.seed, args.voc2007)
    train_items = [item for items in train_sets.values() for item in items]
    valid_items = [item for items in heldout.values() for item in items]
    models, histories, metrics = {}, {}, {}
    for loss in training.LOSSES if args.compare_bce else ["focal"]:
        models[loss], histories[loss] = train_one(args, loss, train_items, valid_items)
        if models[loss] is None:
            return
        metrics[loss] = evaluate.evaluate_sets(models[loss], heldout)
        print(f"{loss}: {json.dumps(metrics[loss])}")
    metrics["history"] = histories["focal"]  # the saved model's run
    metrics["facts"] = card.run_facts(args, data.describe_data(train_sets, heldout), hub.describe_hardware())
    model = models["focal"]
    cli.save(args, model, card.model_card(dataclasses.asdict(model.config), metrics), metrics)


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Print a weight folder's mAP on a VOC folder or COCO JSON (or one split of it) as JSON."""
    model = hub.load_model(SSD, args.weights)
    n_heldout, seed = evaluate.recorded_heldout_split(args.weights)
    items = data.evaluation_items(args.data, args.split, n_heldout if args.coco_valid is None else args.coco_valid,
                                  seed if args.seed is None else args.seed)
    print(json.dumps(evaluate.mean_average_precision(model, items)))


def _parse_train_command(command: str) -> argparse.Namespace:
    """A recorded `python train/detect.py train ...` command line, read with this script's train flags."""
    return cli.parse_recorded_command(__file__, __doc__, COMMANDS, command)


def _describe_recorded_data(args: argparse.Namespace) -> dict:
    if not (args.raccoon and args.coco):
        raise SystemExit("the card's data facts are counted from raccoon and coco_tiny: none under the data root")
    return data.describe_data(*data.training_data(args.raccoon, args.coco, args.coco_valid, args.seed, args.voc2007))


def cmd_card(args: argparse.Namespace) -> None:
    """Rewrite a weight folder's README.md from its config.json and metrics.json (completing metrics.json once)."""
    folder = Path(args.weights)
    metrics = json.loads((folder / "metrics.json").read_text())
    if "facts" not in metrics:  # a folder from before metrics.json recorded the run: read it from the old card
        metrics["facts"] = card.facts_from_old_card(folder, _parse_train_command, _describe_recorded_data)
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))
    config = json.loads((folder / "config.json").read_text())
    (folder / "README.md").write_text(card.model_card(config, metrics))
    print(f"wrote {folder / 'README.md'}")


COMMANDS = {"train": (add_train_flags, cmd_train), "evaluate": (add_evaluate_flags, cmd_evaluate),
            "card": (cli.add_card_flags, cmd_card)}


def main(argv: list[str] | None = None) -> None:
    cli.main(__file__, __doc__, COMMANDS, argv)


if __name__ == "__main__":
    main()
