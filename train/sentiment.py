"""Lesson 10, ULMFiT stage 3: train the sentiment classifier on a fine-tuned LM, evaluate it, save/push it.

    python train/sentiment.py train --data ../shared/data/sentiment/aclImdb_v1.tar.gz --lm weights/sentiment-lm \\
        --out weights/sentiment
    # the same classifier with no LM pretraining (random encoder, the LM's vocabulary), to measure what pretraining buys
    python train/sentiment.py train --data ../shared/data/sentiment/aclImdb_v1.tar.gz --lm weights/sentiment-lm \\
        --from-scratch --out runs/sentiment-scratch
    # transfer the whole IMDB classifier (encoder and head) to short rt-polarity snippets
    python train/sentiment.py train --data ../shared/data/sentiment/rt-polarity.pos --init-classifier weights/sentiment \\
        --epochs 16 --out runs/sentiment-rt
    python train/sentiment.py evaluate --weights weights/sentiment --data ../shared/data/sentiment/aclImdb_v1.tar.gz
    python train/sentiment.py evaluate --weights weights/sentiment --data ../shared/data/sentiment/rt-polarity.pos
    # ULMFiT's backward model (reads each text end to start; here from the forward classifier's weights), stored
    # as int8, then the forward + backward ensemble the app uses: their probabilities averaged, McNemar's test
    # against each member (--write keeps both in the members' metrics.json), and the cards rewritten
    python train/sentiment.py train --data ../shared/data/sentiment/aclImdb_v1.tar.gz --init-classifier weights/sentiment \\
        --backwards --unfreeze-fraction 0 --lr 2e-2 --time-budget 4800 --out runs/sentiment-bwd
    python -m dl_core.hub int8 runs/sentiment-bwd weights/sentiment-bwd   # int8 storage: half the fp16 file
    python train/sentiment.py evaluate --weights weights/sentiment weights/sentiment-bwd \\
        --data ../shared/data/sentiment/aclImdb_v1.tar.gz --write
    python train/sentiment.py card --weights weights/sentiment-bwd
    # the one-liner reader's bag-of-n-grams half: NBSVM on rt-polarity's training texts (the classifiers'
    # validation split kept out) and IMDB's training reviews; then the pair on that validation split
    python train/sentiment.py nbsvm --data ../shared/data/sentiment/rt-polarity.pos \
        --extra-train ../shared/data/sentiment/aclImdb_v1.tar.gz --out weights/sentiment-nbsvm
    python train/sentiment.py evaluate --weights weights/sentiment-rt weights/sentiment-nbsvm \
        --data ../shared/data/sentiment/rt-polarity.pos --split valid

Data: aclImdb (tar.gz or folder; the classifier trains on train/, is scored on test/), a CSV with
`label,text` columns (held-out rows: `is_valid`, else a seeded 10%), rt-polarity .pos/.neg (a seeded 10%
held out), or a token archive of any of them (`*.tokens.tar.xz` from `train/ulmfit_gpu.py prepare`).
`evaluate` scores the held-out part (`--split all`: everything; `--split valid`: the classifiers' validation texts)
and prints `{"accuracy": ..., "n": ...}` last.

Training is ULMFiT's: the encoder starts from the LM's, the layer groups (embedding, LSTM 1-3, head) get
discriminative LRs (/2.6 per group down), and gradual unfreezing trains the head alone, then one more
LSTM per stage, then everything, each stage with its own slanted triangular LR. `--time-budget S` caps the
fit at S seconds; the stages and the LR then run on time rather than batches.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from dl_core import cli, hub
from dl_core.text import TokenizedCorpus
from dl_core.metrics import format_p
from dl_core.ulmfit import card, training
from dl_core.ulmfit.data import TokenizedSplit, load_labelled
from dl_core.paths import display_path
from dl_core.ulmfit.evaluate import accuracy_on, app_accuracy, record_app, record_ensemble, record_single
from dl_core.ulmfit.infer import APP_BUNDLE, SHORT_TEXT_WORDS, app_analyzer, check_ensemble, load_reader_model
from dl_core.ulmfit.model import classifier_loss
from dl_core.ulmfit.nbsvm import NBSVM

DATA_HELP = "aclImdb tar.gz or folder, CSV (label,text), rt-polarity .pos/.neg, or a token archive of one"


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    training.add_data_flags(parser, default=cli.default_data("sentiment", "aclImdb_v1.tar.gz"), what=DATA_HELP)
    start = parser.add_argument_group("where the classifier starts")
    start.add_argument("--lm", metavar="DIR", help="weight folder of the fine-tuned LM (train/lm.py): its encoder and vocabulary")
    start.add_argument("--init-classifier", metavar="DIR",
                       help="start from this trained classifier (encoder and head; e.g. the IMDB one, to fine-tune it on rt-polarity)")
    start.add_argument("--from-scratch", action="store_true",
                       help="random encoder (the LM's vocabulary and sizes if --lm is given): the no-pretraining baseline")
    clf = parser.add_argument_group("classifier")
    clf.add_argument("--valid-fraction", type=float, default=0.04, help="share of the training texts used for validation (default: %(default)s)")
    clf.add_argument("--max-texts", type=int, default=0, help="a seeded N of the training and of the held-out texts (quick runs, tests)")
    clf.add_argument("--head-p", type=float, nargs=2, default=(0.4, 0.1), help="head dropouts, times --drop-mult (default: %(default)s)")
    clf.add_argument("--head-hidden", type=int, default=50, help="hidden units of the head (default: %(default)s)")
    clf.add_argument("--max-len", type=int, default=3000, help="longest text the saved classifier reads, in tokens (default: %(default)s)")
    clf.add_argument("--train-max-len", type=int, default=1500, help="texts are cut to this many tokens for training (default: %(default)s)")
    clf.add_argument("--lr-decay", type=float, default=2.6, help="discriminative LRs: factor per layer group down (default: %(default)s)")
    clf.add_argument("--unfreeze-fraction", type=float, default=0.1,
                     help="share of training for each of the first three gradual-unfreezing stages; 0: none (default: %(default)s)")
    clf.add_argument("--extra-eval", action="append", default=[], metavar="PATH",
                     help="also report accuracy on this data's held-out part (repeatable)")
    clf.add_argument("--card-note", default="", help="a paragraph for the model card, after its metrics")
    training.add_encoder_flags(parser, dropouts=dict(embed_p=0.05, input_p=0.4, weight_p=0.5, hidden_p=0.3), drop_mult=0.5,
                               sizes_note=" without --lm")
    cli.add_run_flags(parser, epochs=6, bs=64, lr=1e-2, clip=1.0, out="weights/sentiment")


def cmd_train(args: argparse.Namespace) -> None:
    """Train the classifier, score it on the held-out part, save (and push) it."""
    accelerator = cli.start(args)
    model, train_dl, valid_dl, data, facts = training.build_classifier(args, accelerator.is_main_process)
    schedule, stages, decay, recipe = training.classifier_schedule(args, len(model.layer_groups()))
    learn, history, budget = training.fit(args, accelerator, model, train_dl, valid_dl, classifier_loss, schedule, stages, decay,
                                          training.ValidAccuracy())
    if history is None:
        return
    model = learn.unwrapped_model.eval()
    heldout = data.parts["heldout"].sample(args.max_texts, args.seed)
    metrics = {"heldout": accuracy_on(model, heldout, batch_size=args.bs * 4)}
    for extra in args.extra_eval:
        extra_heldout = load_labelled(extra, args.cache_dir or None, args.workers, seed=args.seed).parts["heldout"]
        metrics.setdefault("extra", {})[extra] = accuracy_on(model, extra_heldout, batch_size=args.bs * 4)
    print(json.dumps(metrics))
    weights = f"weights/{Path(args.out).name}"
    commands = {"heldout": training.classifier_evaluate_command(weights, args.data, args.max_texts),
                **{extra: training.classifier_evaluate_command(weights, extra) for extra in args.extra_eval}}
    metrics.update(history=history, facts={**facts, **training.run_facts(history, budget, model), "recipe": recipe},
                   train_args=training.recorded_settings(args), commands=commands, notes=[args.card_note] if args.card_note else [])
    if args.init_classifier:
        metrics["lineage"] = card.training_lineage(args.init_classifier)
    cli.save(args, model.cpu().float(), card.classifier_card(model.config, metrics), metrics)


def add_evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", nargs="+", metavar="DIR",
                        help="a classifier folder, or several (an ensemble averaging their probabilities)")
    parser.add_argument("--app", action="store_true",
                        help="score what the tab predicts: the folders it uses (under --weights-dir), each text read by "
                             f"the classifiers its length picks (up to {SHORT_TEXT_WORDS} words: the short-text ones)")
    parser.add_argument("--weights-dir", default="weights", metavar="DIR", help="with --app: where the tab's folders are (default: %(default)s)")
    parser.add_argument("--write", action="store_true",
                        help="record the score in the folders' metrics.json (several: the ensemble's, with McNemar's test "
                             "against each member; one: as its held-out or extra score); then rewrite the cards with `card`")
    training.add_data_flags(parser, default=None, what=DATA_HELP, evaluate=True)
    parser.add_argument("--split", choices=["heldout", "all", "valid"], default="heldout",
                        help="'heldout': aclImdb test/, CSV is_valid rows or the seeded 10%%; 'all': every labelled text; "
                             "'valid': the training part's seeded --valid-fraction the classifiers validated on (to choose "
                             "among models without touching the held-out texts)")
    parser.add_argument("--valid-fraction", type=float, default=0.04,
                        help="with --split valid: the share train used (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=0, help="only a seeded N of the texts")


def _load_from(weights_dir: str):
    def load(name: str, required: bool):
        folder = Path(weights_dir) / name
        if not (folder / "model.safetensors").is_file():
            if required:
                raise SystemExit(f"{folder}: no model.safetensors (the tab needs it)")
            print(f"{folder}: not there, the tab would go without it", file=sys.stderr)
            return None
        return load_reader_model(folder)

    return load


def _labelled_split(args: argparse.Namespace):
    data = load_labelled(args.data, args.cache_dir or None, args.workers, seed=args.seed)
    if args.split == "valid":
        train = data.parts["train"]
        return data, train.select(training.classifier_split(train, args.valid_fraction, args.seed)[1]).sample(args.limit, args.seed)
    parts = [data.parts["heldout"]] if args.split == "heldout" else [data.parts[n] for n in ("train", "heldout")]
    split = TokenizedSplit(TokenizedCorpus.concat([p.corpus for p in parts]), np.concatenate([p.labels for p in parts]))
    return data, split.sample(args.limit, args.seed)


def cmd_evaluate_app(args: argparse.Namespace) -> None:
    """Print the tab's accuracy (each text to the classifiers its length picks) as JSON, last; --write keeps it
    in the main classifier's metrics.json under "app"."""
    analyzer = app_analyzer(_load_from(args.weights_dir))
    if torch.cuda.is_available():
        for models in analyzer.readers.values():
            for i, m in enumerate(models):
                models[i] = m.cuda()
    data, split = _labelled_split(args)
    t0 = time.perf_counter()
    result = app_accuracy(analyzer, split)
    print(f"{data.name}: {result['n']} texts classified in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    for name, part in result["readers"].items():
        print(f"  {part['n']} read by {part['what']}: accuracy {part['accuracy']}", file=sys.stderr)
    if args.write:
        command = (f"python train/sentiment.py evaluate --app --data {display_path(args.data)}"
                   + (" --split all" if args.split == "all" else "") + (f" --limit {args.limit}" if args.limit else ""))
        written = record_app(Path(args.weights_dir) / APP_BUNDLE["long"][0], data.name, args.split, result, command + " --write")
        print(f"wrote the score into {written}", file=sys.stderr)
    print(json.dumps({"accuracy": result["accuracy"], "n": result["n"]}))


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Print a classifier's (or an ensemble's) accuracy on a data set's held-out part as JSON, last."""
    if args.app:
        return cmd_evaluate_app(args)
    if not args.weights:
        raise SystemExit("evaluate: give --weights DIR [DIR ...], or --app for the tab's classifiers")
    if args.write and args.split == "valid":
        raise SystemExit("evaluate: --split valid is for choosing among models; --write records held-out scores only")
    models = [load_reader_model(folder) for folder in args.weights]
    try:
        check_ensemble(models)
    except ValueError as err:
        raise SystemExit(f"{' '.join(args.weights)}: {err}") from err
    if torch.cuda.is_available():
        models = [m.cuda() for m in models]
    data, split = _labelled_split(args)
    t0 = time.perf_counter()
    result = accuracy_on(models, split)
    cut = next((f" ({result['n_cut']} cut at {m.config.max_len} tokens)" for m in models if not isinstance(m, NBSVM)), "")
    print(f"{data.name}, {args.split}: {result['n']} texts classified in {time.perf_counter() - t0:.1f}s{cut}; "
          f"log-loss {result['log_loss']:.4f}", file=sys.stderr)
    for folder, accuracy, test in zip(args.weights, result.get("members", []), result.get("mcnemar", [])):
        print(f"  {folder} alone: {accuracy}; the ensemble is right where it is wrong on {test['b']}, wrong where it is "
              f"right on {test['c']} (McNemar z = {test['z']}, {format_p(test['p'])})", file=sys.stderr)
    if args.write:
        command = training.classifier_evaluate_command(" ".join(args.weights), args.data, args.limit)
        written = (record_ensemble(args.weights, data.name, args.split, result, command + " --write") if len(models) > 1
                   else [record_single(args.weights[0], args.data, data.name, result, command)])
        print(f"wrote the score into {', '.join(map(str, written))}", file=sys.stderr)
    print(json.dumps({"accuracy": result["accuracy"], "n": result["n"]}))


def add_nbsvm_flags(parser: argparse.ArgumentParser) -> None:
    training.add_data_flags(parser, default=cli.default_data("sentiment", "rt-polarity.pos"), what=DATA_HELP)
    parser.add_argument("--extra-train", action="append", default=[], metavar="PATH",
                        help="also learn from this data's training part (repeatable; e.g. IMDB's reviews: their words and phrases)")
    parser.add_argument("--valid-fraction", type=float, default=0.04,
                        help="share of --data's training texts kept out: the classifiers' validation split, same seed (default: %(default)s)")
    parser.add_argument("--max-features", type=int, default=100_000, help="the most frequent n-grams kept (default: %(default)s)")
    parser.add_argument("--C", type=float, default=0.1, help="inverse L2 strength of the logistic regression (default: %(default)s, fast.ai's)")
    parser.add_argument("--extra-eval", action="append", default=[], metavar="PATH", help="also report accuracy on this data's held-out part")
    parser.add_argument("--seed", type=int, default=42, help="the seed of the data's splits (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=None, help="tokenising processes; 0: none (default: all CPUs)")
    parser.add_argument("--out", default="weights/sentiment-nbsvm", help="weight folder to write; '' to write none (default: %(default)s)")
    parser.add_argument("--push-to-hub", metavar="REPO", help="upload the weight folder to this Hub repo (token: HF_TOKEN)")


def cmd_nbsvm(args: argparse.Namespace) -> None:
    """Fit an NBSVM (the lesson's bag-of-n-grams baseline, one weight per n-gram), score it, save it like the networks."""
    t0 = time.perf_counter()
    # a data set may be both --extra-train and --extra-eval (IMDB for the bundled one): read it once
    labelled = functools.cache(lambda path: load_labelled(path, args.cache_dir or None, args.workers, seed=args.seed))
    data = labelled(args.data)
    train = data.parts["train"]
    fit_idx, valid_idx = training.classifier_split(train, args.valid_fraction, args.seed)
    parts = {data.name: train.select(fit_idx)}
    for extra in args.extra_train:
        extra_data = labelled(extra)
        extra_train = extra_data.parts["train"]
        parts[extra_data.name] = extra_train.select(np.flatnonzero(extra_train.labels >= 0).tolist())
    texts = [split.corpus[i] for split in parts.values() for i in range(len(split))]
    labels = np.concatenate([split.labels for split in parts.values()])
    model = NBSVM.fit(texts, labels, max_features=args.max_features, C=args.C)
    seconds = time.perf_counter() - t0
    metrics = {"heldout": accuracy_on(model, data.parts["heldout"]), "valid": accuracy_on(model, train.select(valid_idx))}
    for extra in args.extra_eval:
        metrics.setdefault("extra", {})[extra] = accuracy_on(model, labelled(extra).parts["heldout"])
    print(json.dumps({k: v for k, v in metrics.items() if k != "extra"}))
    weights = f"weights/{Path(args.out).name}"
    metrics.update(
        facts={"data": data.name, "n_train": len(texts), "n_valid": len(valid_idx), "n_features": len(model.config.ngrams),
               "n_params": len(model.config.ngrams) + 1, "train_texts": {name: len(split) for name, split in parts.items()},
               "seconds": round(seconds, 1), "hardware": hub.describe_hardware()},
        train_args=training.recorded_settings(args),
        commands={"heldout": training.classifier_evaluate_command(weights, args.data),
                  "valid": training.classifier_evaluate_command(weights, args.data) + " --split valid",
                  **{extra: training.classifier_evaluate_command(weights, extra) for extra in args.extra_eval}})
    cli.save(args, model, card.nbsvm_card(model, metrics), metrics, fp16=False)


def main(argv: list[str] | None = None) -> None:
    cli.main(__file__, __doc__, {"train": (add_train_flags, cmd_train), "evaluate": (add_evaluate_flags, cmd_evaluate),
                                 "nbsvm": (add_nbsvm_flags, cmd_nbsvm),
                                 "card": (training.add_card_flags, training.card_command(add_train_flags))}, argv)


if __name__ == "__main__":
    main()
