"""How ULMFiT's models are trained here: the flags train/lm.py and train/sentiment.py share, the model and
loader set-up of each, and the fit both run (discriminative LRs, gradual unfreezing, slanted triangles).

    model, train_dl, valid_dl, valid_docs, facts = build_language_model(args, progress=True)   # train/lm.py
    model, train_dl, valid_dl, data, facts = build_classifier(args, progress=True)              # train/sentiment.py
    learn, history, budget = fit(args, accelerator, model, train_dl, valid_dl, lm_loss, schedule, stages, decay)
"""
from __future__ import annotations

import argparse
import json
import shlex
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from dl_core import cli, hub
from dl_core.learner import Callback, Learner
from dl_core.paths import display_path
from dl_core.schedules import Schedule, slanted_triangular
from dl_core.text import RULE_TOKENS, Vocab
from dl_core.ulmfit import card
from dl_core.ulmfit.data import (
    CLASSES, TokenizedSplit, classification_loader, download_wikitext103, lm_corpus, lm_loader, load_labelled,
    seeded_split, split_documents,
)
from dl_core.ulmfit.finetune import GradualUnfreezing, discriminative_optimizer, unfreezing_recipe
from dl_core.ulmfit.model import AWDLSTMConfig, ClassifierConfig, LanguageModel, TextClassifier

ENCODER_DROPOUTS = ("embed_p", "input_p", "weight_p", "hidden_p")
DROPOUT_HELP = {"embed_p": "dropout of whole words (embedding rows)", "input_p": "locked dropout on the embedded input",
                "weight_p": "DropConnect on the LSTMs' hidden-to-hidden weights", "hidden_p": "locked dropout between LSTM layers",
                "output_p": "locked dropout before the decoder"}


# --- flags both scripts share -------------------------------------------------------------------------------
def add_data_flags(parser: argparse.ArgumentParser, *, default: str | None, what: str, evaluate: bool = False) -> None:
    """--data and the token cache; `evaluate` commands also get --seed and --workers, which `train` has among
    the run flags (dl_core.cli)."""
    data = parser.add_argument_group("data")
    data.add_argument("--data", default=None if evaluate else default, required=evaluate,
                      help=what if evaluate else f"{what} (default: %(default)s)")
    data.add_argument("--cache-dir", default="data/cache", help="token cache folder; '' for none (default: %(default)s)")
    if evaluate:
        data.add_argument("--seed", type=int, default=42, help="the seed of the training run's splits (default: %(default)s)")
        data.add_argument("--workers", type=int, default=None, help="tokenising processes; 0: none (default: all CPUs)")


def add_lm_data_flags(parser: argparse.ArgumentParser) -> None:
    """Which texts a language model reads and which it holds out (train and evaluate must agree on them)."""
    lm = parser.add_argument_group("language-model texts")
    lm.add_argument("--lm-texts", choices=["all", "train"], default="all",
                    help="for sentiment data: also read the held-out part's texts ('all', the lesson's choice) or not")
    lm.add_argument("--valid-fraction", type=float, default=0.02,
                    help="share of documents held out for perplexity (default: %(default)s)")
    lm.add_argument("--max-texts", type=int, default=0, help="a seeded N texts of each file/split (quick runs, tests)")
    lm.add_argument("--bptt", type=int, default=70, help="tokens per truncated-backprop window (default: %(default)s)")


def add_encoder_flags(parser: argparse.ArgumentParser, *, dropouts: dict[str, float], drop_mult: float,
                      sizes_note: str = "") -> None:
    """The AWD-LSTM's vocabulary, sizes, dropouts (each times --drop-mult) and direction."""
    enc = parser.add_argument_group("AWD-LSTM encoder")
    enc.add_argument("--max-vocab", type=int, default=14_000, help=f"vocabulary size{sizes_note} (default: %(default)s)")
    enc.add_argument("--min-freq", type=int, default=3, help=f"minimum token count{sizes_note} (default: %(default)s)")
    enc.add_argument("--emb-dim", type=int, default=256, help=f"embedding size{sizes_note} (default: %(default)s)")
    enc.add_argument("--hidden-dim", type=int, default=512, help=f"LSTM hidden size{sizes_note} (default: %(default)s)")
    enc.add_argument("--n-layers", type=int, default=3, help=f"LSTM layers{sizes_note} (default: %(default)s)")
    for name, default in dropouts.items():
        enc.add_argument(f"--{name.replace('_', '-')}", type=float, default=default,
                         help=f"{DROPOUT_HELP[name]}, times --drop-mult (default: %(default)s)")
    enc.add_argument("--drop-mult", type=float, default=drop_mult, help="scales every dropout, fastai's drop_mult (default: %(default)s)")
    enc.add_argument("--backwards", action="store_true",
                     help="read each text from its end (ULMFiT's backward model, for a forward + backward ensemble)")


def scaled_dropouts(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, float]:
    return {name: getattr(args, name) * args.drop_mult for name in names}


def recorded_settings(args: argparse.Namespace) -> dict:
    """The run's flags and command line as metrics.json keeps them ("train_args"; the model card prints them)."""
    return {k: v for k, v in vars(args).items() if k != "run" and _jsonable(v)}


def parse_train_command(command: str, add_train_flags: Callable[[argparse.ArgumentParser], None]) -> dict:
    """recorded_settings of a recorded `python train/X.py train ...` command line, parsed with today's flags
    (for folders whose metrics.json predates "train_args")."""
    parser = argparse.ArgumentParser()
    add_train_flags(parser)
    words = shlex.split(command)
    args, _ = parser.parse_known_args(words[words.index("train") + 1:])
    args.command_line = command
    return recorded_settings(args)


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
        return True
    except TypeError:
        return False


def add_card_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, metavar="DIR", help="the weight folder whose README.md to rewrite")


def card_command(add_train_flags: Callable[[argparse.ArgumentParser], None]) -> Callable[[argparse.Namespace], None]:
    """A script's `card` command; `add_train_flags` parses the training command older folders only recorded as text."""

    def cmd_card(args: argparse.Namespace) -> None:
        """Rewrite a weight folder's README.md from its config.json and metrics.json (completing metrics.json)."""
        card.write_card(args.weights, lambda command: parse_train_command(command, add_train_flags))
        print(f"wrote {Path(args.weights) / 'README.md'}")

    return cmd_card


# --- the fit both scripts run ------------------------------------------------------------------------------
class ValidAccuracy(Callback):
    """After each epoch, the accuracy on the validation loader (the Learner only averages the loss)."""

    order = 40  # before the Recorder (50) writes the epoch's row

    def after_epoch(self, learn: Learner) -> None:
        if learn.valid_dl is None:
            return
        learn.model.eval()
        correct = total = 0
        with torch.no_grad():
            for inputs, target in learn.valid_dl:
                preds = learn.model(*inputs).argmax(-1)
                correct += int(learn.accelerator.gather_for_metrics((preds == target).sum().reshape(1)).sum())
                total += int(learn.accelerator.gather_for_metrics(torch.tensor([len(target)], device=target.device)).sum())
        learn.epoch_logs["accuracy"] = round(correct / max(total, 1), 4)


def fit(args: argparse.Namespace, accelerator, model, train_dl, valid_dl, loss, schedule: Schedule,
        stages: list[tuple[float, int]], decay: float, *extra: Callback):
    """ULMFiT's fit: AdamW (betas 0.8/0.99) over the model's layer groups with discriminative LRs (/decay per
    group down), gradual unfreezing through `stages`, the LR `schedule` (on the clock under --time-budget).
    Returns the Learner, the per-epoch history (None on the non-main processes) and the budget callback."""
    torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls outside autocast may use TF32 tensor cores
    groups = model.layer_groups()
    budget = cli.time_budget(args)
    unfreeze = GradualUnfreezing(groups, stages, budget.progress if budget else None)
    opt_fn = discriminative_optimizer(groups, decay=decay, betas=(0.8, 0.99), weight_decay=args.wd)
    learn = Learner(model, train_dl, valid_dl, loss, lr=args.lr, opt_fn=opt_fn, accelerator=accelerator,
                    callbacks=cli.standard_callbacks(args, schedule, unfreeze, *extra, budget=budget))
    if accelerator.is_main_process:
        print(f"model: {n_parameters(model) / 1e6:.2f}M parameters; {learn.n_batches} batches per epoch on "
              f"{accelerator.num_processes} process(es), device {accelerator.device}")
    history = cli.fit(learn, args)
    if history is not None:
        for param in model.parameters():
            param.requires_grad_(True)  # leave no group frozen in the saved model
    return learn, history, budget


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def run_facts(history: list[dict], budget, model: torch.nn.Module) -> dict:
    """What every card says about a finished run: its size, time and hardware."""
    return {"n_params": n_parameters(model), "seconds": sum(h["seconds"] for h in history),
            "hardware": hub.describe_hardware(), "cut_short": bool(budget and budget.cut_short)}


# --- language model -----------------------------------------------------------------------------------------
def lm_schedule(args: argparse.Namespace, n_groups: int) -> tuple[Schedule, list[tuple[float, int]]]:
    """One slanted triangle; starting from another LM (--init), only the embedding/decoder (the new words' rows)
    trains for the first --frozen-fraction."""
    frozen = args.frozen_fraction if args.init else 0.0
    stages = [(0.0, 1), (frozen, n_groups)] if frozen else [(0.0, n_groups)]
    return slanted_triangular(args.lr, div=args.lr_div, cut_frac=args.cut_frac), stages


def build_language_model(args: argparse.Namespace, progress: bool):
    """The LM (new, or --init's weights on this data's vocabulary), its loaders, and the facts its card states."""
    if args.wikitext103:
        download_wikitext103(args.data)
    t0 = time.perf_counter()
    corpus, description = lm_corpus(args.data, args.lm_texts, args.max_texts, args.seed, args.cache_dir or None,
                                    args.workers, progress)
    train_tokens, valid_tokens = split_documents(corpus, args.valid_fraction, args.seed)
    vocab = Vocab.from_counts(train_tokens.counts(), max_size=args.max_vocab, min_freq=args.min_freq, reserved=RULE_TOKENS)
    dropouts = scaled_dropouts(args, (*ENCODER_DROPOUTS, "output_p"))
    if args.init:
        init = hub.load_model(LanguageModel, args.init)
        model = init.with_vocab(vocab.itos, backwards=args.backwards)  # sizes come from --init, dropouts from here
        model.encoder.set_dropouts(model.config, **{k: v for k, v in dropouts.items() if k != "output_p"})
        model.output_dropout.p = model.config.output_p = dropouts["output_p"]
        shared = len(set(init.config.vocab) & set(vocab.itos))
        init_note = f"{args.init} ({shared} of {len(vocab)} tokens shared with its vocabulary)"
        if init.config.backwards != args.backwards:
            init_note += f", a {'forward' if args.backwards else 'backward'} LM now reading the other way"
    else:
        model = LanguageModel(AWDLSTMConfig(vocab=vocab.itos, emb_dim=args.emb_dim, hidden_dim=args.hidden_dim,
                                            n_layers=args.n_layers, backwards=args.backwards, **dropouts))
        init_note = "random"
    if progress:
        print(f"{description}: {len(train_tokens)} train / {len(valid_tokens)} valid texts, "
              f"{train_tokens.n_tokens:,} / {valid_tokens.n_tokens:,} tokens, vocab {len(vocab)}; "
              f"data ready in {time.perf_counter() - t0:.1f}s; init {init_note}")
    train_docs, valid_docs = train_tokens.numericalize(vocab), valid_tokens.numericalize(vocab)
    batch_size = max(1, min(args.bs, (sum(len(d) + 1 for d in train_docs) - 1) // (2 * args.bptt)))
    train_dl = lm_loader(train_docs, batch_size, args.bptt, variable=True, seed=args.seed, backwards=args.backwards)
    valid_bs = max(1, min(batch_size, (sum(len(d) + 1 for d in valid_docs) - 1) // 2))
    valid_dl = lm_loader(valid_docs, valid_bs, args.bptt, variable=False, seed=args.seed, backwards=args.backwards)
    facts = {"data": description, "n_train_texts": len(train_tokens), "n_valid_texts": len(valid_tokens),
             "n_train_tokens": train_tokens.n_tokens, "n_valid_tokens": valid_tokens.n_tokens, "vocab": len(vocab),
             "init": init_note}
    return model, train_dl, valid_dl, valid_docs, facts


# --- classifier ---------------------------------------------------------------------------------------------
def classifier_schedule(args: argparse.Namespace, n_groups: int) -> tuple[Schedule, list[tuple[float, int]], float, str]:
    """The LR schedule, unfreezing stages, discriminative decay and the recipe in words: ULMFiT's gradual
    unfreezing, or with --from-scratch (nothing pretrained to protect) every group at one LR from the start."""
    if args.from_scratch:
        return (slanted_triangular(args.lr), [(0.0, n_groups)], 1.0,
                f"From scratch: every layer trained from the start, one slanted triangular LR (max {args.lr}).")
    plan = unfreezing_recipe(n_groups, args.lr, args.unfreeze_fraction, args.lr_decay)
    return plan.schedule, plan.stages, plan.decay, plan.describe()


def classifier_split(train: TokenizedSplit, valid_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """The labelled training texts a classifier fits and the seeded share it validates on (at least one): the
    split every classifier of a data set shares, so an ensemble can be chosen on texts none of them learnt."""
    fit_idx, valid_idx = seeded_split(np.flatnonzero(train.labels >= 0).tolist(), valid_fraction, seed)
    return (fit_idx[1:], fit_idx[:1]) if not valid_idx else (fit_idx, valid_idx)


def build_classifier(args: argparse.Namespace, progress: bool):
    """The classifier (from --init-classifier, from --lm's encoder, or random), its loaders, the data and the
    facts its card states."""
    if args.init_classifier and args.from_scratch:
        raise SystemExit("--init-classifier and --from-scratch contradict each other: pick one")
    t0 = time.perf_counter()
    data = load_labelled(args.data, args.cache_dir or None, args.workers, progress, args.seed)
    train = data.parts["train"].sample(args.max_texts, args.seed)  # the sample train/lm.py --max-texts takes
    fit_idx, valid_idx = classifier_split(train, args.valid_fraction, args.seed)
    lm = hub.load_model(LanguageModel, args.lm) if args.lm and not args.init_classifier else None
    start = hub.load_model(TextClassifier, args.init_classifier) if args.init_classifier else None
    if start is not None:
        vocab = Vocab(start.config.encoder.vocab)
    elif lm is not None:
        vocab = Vocab(lm.config.vocab)
    else:  # no LM at all: a vocabulary from the classifier's own training texts
        vocab = Vocab.from_counts(train.corpus.subset(fit_idx).counts(), max_size=args.max_vocab, min_freq=args.min_freq,
                                  reserved=RULE_TOKENS)
    dropouts = scaled_dropouts(args, ENCODER_DROPOUTS)
    settings = dict(classes=list(CLASSES), head_hidden=args.head_hidden, max_len=args.max_len,
                    head_p=(args.head_p[0] * args.drop_mult, args.head_p[1] * args.drop_mult))
    if start is not None:  # transfer a whole classifier (e.g. IMDB's) to new data: its head already knows sentiment
        model = start.train()
        init = f"the classifier {args.init_classifier} (encoder and head)"
        if args.backwards and not start.config.backwards:  # a forward model's weights, now reading texts end to start
            model.config.encoder = replace(model.config.encoder, backwards=True)
            init += ", now reading each text backwards"
        model.encoder.set_dropouts(model.config.encoder, **dropouts)
    elif lm is not None and not args.from_scratch:
        model = TextClassifier.from_language_model(lm, backwards=args.backwards, **settings)
        model.encoder.set_dropouts(model.config.encoder, **dropouts)
        init = f"the encoder of the language model {args.lm}" + (" (reading backwards)" if args.backwards else "")
    else:
        sizes = (dict(emb_dim=lm.config.emb_dim, hidden_dim=lm.config.hidden_dim, n_layers=lm.config.n_layers) if lm is not None
                 else dict(emb_dim=args.emb_dim, hidden_dim=args.hidden_dim, n_layers=args.n_layers))
        encoder = AWDLSTMConfig(vocab=vocab.itos, **sizes, **dropouts, backwards=args.backwards)
        model = TextClassifier(ClassifierConfig(encoder=encoder, **settings))
        init = "random (--from-scratch: no language-model pretraining)"
    docs = train.corpus.numericalize(vocab)
    train_dl = classification_loader([docs[i] for i in fit_idx], train.labels[fit_idx], args.bs, args.train_max_len,
                                     shuffle=True, seed=args.seed)
    valid_dl = classification_loader([docs[i] for i in valid_idx], train.labels[valid_idx], args.bs * 2,
                                     args.max_len, shuffle=False, seed=args.seed)
    unknown = float(sum((d == Vocab.unk_id).sum() for d in docs) / max(1, train.corpus.n_tokens))
    if progress:
        print(f"{data.name}: {len(fit_idx)} train / {len(valid_idx)} valid texts, {train.corpus.n_tokens:,} tokens "
              f"({unknown:.1%} <unk>), vocab {len(vocab)}; data ready in {time.perf_counter() - t0:.1f}s; encoder: {init}")
    facts = {"data": data.name, "n_train": len(fit_idx), "n_valid": len(valid_idx), "vocab": len(vocab), "init": init,
             "unknown_share": round(unknown, 4)}
    return model, train_dl, valid_dl, data, facts


def classifier_evaluate_command(weights: str, data: str, limit: int = 0) -> str:
    """The command that scores a classifier folder (or several: an ensemble) on a data set's held-out part."""
    return f"python train/sentiment.py evaluate --weights {weights} --data {display_path(data)}" + (f" --limit {limit}" if limit else "")
