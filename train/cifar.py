"""Lesson 12: train a DarkNet on CIFAR-10 from scratch with 1cycle; evaluate it; find its learning rate.

    python train/cifar.py train --out weights/darknet-cifar10 --mixed-precision bf16    # the bundled network's first cycle
    python train/cifar.py train --num-blocks 1 2 4 6 3 --strides 2 1 2 2 2 --bs 256 --lr 1.3 --wd 1e-4 --epochs 30   # the lesson's
    python train/cifar.py evaluate --weights weights/darknet-cifar10 --data ../shared/data/cifar10/cifar10-jpg.zip
    python train/cifar.py lr-find --plot lr_find.png
    python train/cifar.py card --weights weights/darknet-cifar10       # rewrite the model card from the folder
    accelerate launch --multi_gpu --num_processes 2 train/cifar.py train ...          # data-parallel, same script

Data: a zip or folder of `train/<class>/<image>` and `test/<class>/<image>` (default: the data root's
cifar10/cifar10-jpg.zip); without one, the lesson's PNG folders are downloaded from fast.ai (needs network).
The test split is the validation set, as in the lesson: its loss and accuracy are printed after every epoch.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from dl_core import cli
from dl_core.cifar import card
from dl_core.cifar.data import eval_loader, find_cifar10, read_split, train_loader
from dl_core.cifar.evaluate import evaluate_folder, evaluate_model
from dl_core.cifar.model import Darknet, DarknetConfig
from dl_core.hub import load_model
from dl_core.cifar.training import PreciseBN, ValidAccuracy, make_learner
from dl_core.schedules import one_cycle, one_cycle_momentum

# the bundled network: the lesson's blocks, four groups, first downsampling in the second group
BUNDLED = DarknetConfig(num_blocks=[1, 2, 2, 2], nf=32, strides=[1, 2, 2, 2])


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", default=None,
                      help="zip or folder of train/<class>/ and test/<class>/ images (default: the data root's "
                           "cifar10/cifar10-jpg.zip if present, else download the lesson's PNGs)")
    data.add_argument("--download-dir", default="data/cifar10", help="where a download goes (default: %(default)s)")
    data.add_argument("--train-subset", type=int, default=0, help="train on a class-balanced sample of this many images (default: all)")
    data.add_argument("--valid-subset", type=int, default=0, help="validate on a class-balanced sample of this many test images (default: all)")


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    add_data_flags(parser)
    model = parser.add_argument_group("model and recipe")
    model.add_argument("--init", metavar="DIR", help="start from this trained folder's weights (and sizes): a further "
                                                     "cycle of training; its card lists every run (default: from scratch)")
    model.add_argument("--num-blocks", type=int, nargs="+", default=BUNDLED.num_blocks, help="ResLayers per group (default: %(default)s)")
    model.add_argument("--nf", type=int, default=BUNDLED.nf, help="stem width; each group doubles it (default: %(default)s)")
    model.add_argument("--strides", type=int, nargs="+", default=BUNDLED.strides,
                       help="stride of each group's first conv (default: %(default)s; the lesson's: 2 1 2 2 2)")
    model.add_argument("--label-smoothing", type=float, default=0.2, help="label smoothing of the loss (default: %(default)s)")
    model.add_argument("--div", type=float, default=25.0, help="1cycle: the LR starts at lr/div (default: %(default)s)")
    model.add_argument("--pct-start", type=float, default=0.25, help="1cycle: fraction of training spent warming up (default: %(default)s)")
    model.add_argument("--precise-bn", type=int, default=50, metavar="BATCHES",
                       help="after training, recompute BatchNorm's statistics over this many training batches; 0 keeps the "
                            "running ones (default: %(default)s)")
    cli.add_run_flags(parser, epochs=15, bs=512, lr=0.4, clip=0.0, wd=5e-4, out="weights/darknet-cifar10")


def add_evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="weight folder (model.safetensors + config.json)")
    parser.add_argument("--data", required=True, help="zip or folder with test/<class>/ images")
    parser.add_argument("--no-tta", action="store_true", help="score the plain images only (default: average with the mirror image)")
    parser.add_argument("--limit", type=int, default=0, help="score a seeded class-balanced sample of this many test images (default: all)")


def add_lr_find_flags(parser: argparse.ArgumentParser) -> None:
    add_model_flags(parser)
    cli.add_lr_find_flags(parser)


def config_from(args: argparse.Namespace, classes: list[str]) -> DarknetConfig:
    return DarknetConfig(num_blocks=list(args.num_blocks), nf=args.nf, strides=list(args.strides), classes=list(classes))


def splits(args: argparse.Namespace):
    source = find_cifar10(args.data, download_to=args.download_dir)
    train, test = read_split(source, "train"), read_split(source, "test")
    if args.train_subset:
        train = train.subset(args.train_subset, args.seed)
    if args.valid_subset:
        test = test.subset(args.valid_subset, args.seed)
    return source, train, test


def learner(args: argparse.Namespace, train, test, accelerator, *extra):
    schedule = dict(lr=one_cycle(args.lr, div=args.div, pct_start=args.pct_start), beta1=one_cycle_momentum(pct_start=args.pct_start))
    callbacks = cli.standard_callbacks(args, schedule.pop("lr"), ValidAccuracy(), *extra, budget=cli.time_budget(args), **schedule)
    model = load_model(Darknet, args.init) if args.init else Darknet(config_from(args, train.classes))
    return make_learner(model, train_loader(train, args.bs, args.seed, cli.workers(args, 0)), eval_loader(test),
                        lr=args.lr, wd=args.wd, label_smoothing=args.label_smoothing, callbacks=callbacks, accelerator=accelerator)


def cmd_train(args: argparse.Namespace) -> None:
    """Train, score the test split (with and without flip TTA), save and push the weights."""
    accelerator = cli.start(args)
    source, train, test = splits(args)
    lineage = card.lineage(args.init) if args.init else []  # read now: --init may be the --out folder
    learn = learner(args, train, test, accelerator, *([PreciseBN(args.precise_bn)] if args.precise_bn else []))
    if accelerator.is_main_process:
        print(f"model: {sum(p.numel() for p in learn.unwrapped_model.parameters()) / 1e6:.2f}M parameters; "
              f"{len(train)} training images, {learn.n_batches} batches per epoch on {accelerator.num_processes} "
              f"process(es), device {accelerator.device}")
    started = time.perf_counter()
    history = cli.fit(learn, args)
    if history is None:
        return
    seconds = time.perf_counter() - started
    model = learn.unwrapped_model.eval().cpu().float().to(memory_format=torch.contiguous_format)
    metrics = {"test": evaluate_model(model, test)}
    print(json.dumps(metrics))
    metrics.update(history=history, facts=card.train_facts(args, source, len(train), seconds))
    if lineage:
        metrics["lineage"] = lineage
    cli.save(args, model, card.model_card(model.config, metrics), metrics)


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Print the test accuracy of a weight folder as JSON (last line: {"accuracy": ..., "n": ...})."""
    print(json.dumps(evaluate_folder(args.weights, args.data, tta=not args.no_tta, limit=args.limit)))


def cmd_lr_find(args: argparse.Namespace) -> None:
    """LR range test on the train command's learner; prints a suggestion and plots loss vs LR."""
    accelerator = cli.start(args)
    _, train, test = splits(args)
    cli.lr_find_report(learner(args, train, test, accelerator), args)


def cmd_card(args: argparse.Namespace) -> None:
    """Rewrite a weight folder's model card (README.md) from its config.json and metrics.json."""
    card.rewrite_card(args.weights)
    print(f"wrote {args.weights}/README.md")


COMMANDS = {"train": (add_model_flags, cmd_train), "evaluate": (add_evaluate_flags, cmd_evaluate),
            "lr-find": (add_lr_find_flags, cmd_lr_find), "card": (cli.add_card_flags, cmd_card)}


def main(argv: list[str] | None = None) -> None:
    cli.main(__file__, __doc__, COMMANDS, argv)


if __name__ == "__main__":
    main()
