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

Data: aclImdb (tar.gz or folder; the classifier trains on train/, is scored on test/), a CSV with
`label,text` columns (held-out rows: `is_valid`, else a seeded 10%), rt-polarity .pos/.neg (a seeded 10%
held out), or a token archive of any of them (`*.tokens.tar.xz` from `train/ulmfit_gpu.py prepare`).
`evaluate` scores the held-out part (`--split all`: everything) and prints `{"accuracy": ..., "n": ...}` last.

Training is ULMFiT's: the encoder starts from the LM's, the layer groups (embedding, LSTM 1-3, head) get
discriminative LRs (/2.6 per group down), and gradual unfreezing trains the head alone, then one more
LSTM per stage, then everything, each stage with its own slanted triangular LR. `--time-budget S` caps the
fit at S seconds; the stages and the LR then run on time rather than batches.
"""
from __future__ import annotations

import argparse
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
from dl_core.ulmfit.infer import APP_BUNDLE, SHORT_TEXT_WORDS, app_analyzer, check_ensemble
from dl_core.ulmfit.model import TextClassifier, classifier_loss

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
    parser.add_argument("--split", choices=["heldout", "all"], default="heldout",
                        help="'heldout': aclImdb test/, CSV is_valid rows or the seeded 10%%; 'all': every labelled text")
    parser.add_argument("--limit", type=int, default=0, help="only a seeded N of the texts")


def _load_from(weights_dir: str):
    def load(name: str, required: bool):
        folder = Path(weights_dir) / name
        if not (folder / "model.safetensors").is_file():
            if required:
                raise SystemExit(f"{folder}: no model.safetensors (the tab needs it)")
            print(f"{folder}: not there, the tab would go without it", file=sys.stderr)
            return None
        return hub.load_model(TextClassifier, folder)

    return load


def _labelled_split(args: argparse.Namespace):
    data = load_labelled(args.data, args.cache_dir or None, args.workers, seed=args.seed)
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
    models = [hub.load_model(TextClassifier, folder) for folder in args.weights]
    try:
        check_ensemble(models)
    except ValueError as err:
        raise SystemExit(f"{' '.join(args.weights)}: {err}") from err
    if torch.cuda.is_available():
        models = [m.cuda() for m in models]
    data, split = _labelled_split(args)
    t0 = time.perf_counter()
    result = accuracy_on(models, split)
    print(f"{data.name}: {result['n']} texts classified in {time.perf_counter() - t0:.1f}s "
          f"({result['n_cut']} cut at {models[0].config.max_len} tokens)", file=sys.stderr)
    for folder, accuracy, test in zip(args.weights, result.get("members", []), result.get("mcnemar", [])):
        print(f"  {folder} alone: {accuracy}; the ensemble is right where it is wrong on {test['b']}, wrong where it is "
              f"right on {test['c']} (McNemar z = {test['z']}, {format_p(test['p'])})", file=sys.stderr)
    if args.write:
        command = training.classifier_evaluate_command(" ".join(args.weights), args.data, args.limit)
        written = (record_ensemble(args.weights, data.name, args.split, result, command + " --write") if len(models) > 1
                   else [record_single(args.weights[0], args.data, data.name, result, command)])
        print(f"wrote the score into {', '.join(map(str, written))}", file=sys.stderr)
    print(json.dumps({"accuracy": result["accuracy"], "n": result["n"]}))


def main(argv: list[str] | None = None) -> None:
    cli.main(__file__, __doc__, {"train": (add_train_flags, cmd_train), "evaluate": (add_evaluate_flags, cmd_evaluate),
                                 "card": (training.add_card_flags, training.card_command(add_train_flags))}, argv)


if __name__ == "__main__":
    main()
