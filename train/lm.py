"""Lesson 10, ULMFiT stages 1 and 2: train the AWD-LSTM language model, report its perplexity, save/push it.

    # stage 1: a general-domain LM on WikiText-2 (valid + test) and tiny Shakespeare
    python train/lm.py train --data ../shared/data/text --out weights/lm-general
    # stage 2: fine-tune it on the IMDB review texts (train + test texts; the labels are never read)
    python train/lm.py train --data ../shared/data/sentiment/aclImdb_v1.tar.gz --init weights/lm-general \\
        --out weights/sentiment-lm
    python train/lm.py evaluate --weights weights/sentiment-lm --data ../shared/data/sentiment/aclImdb_v1.tar.gz \\
        --valid-fraction 0.01
    # ULMFiT's backward LM (reads each text from its end), the start of the backward classifier
    python train/lm.py train --data ../shared/data/sentiment/aclImdb_v1.tar.gz --init weights/sentiment-lm --backwards \\
        --out runs/sentiment-lm-bwd
    python train/lm.py card --weights weights/sentiment-lm     # rewrite the model card from metrics.json
    accelerate launch --multi_gpu --num_processes 2 train/lm.py train ...   # data-parallel, same script

Data: a folder with wikitext-2/ (or wikitext-103/) and/or tiny-shakespeare.txt (general text; with
--wikitext103 WikiText-103 is downloaded into it first, needs network), or any sentiment data that
train/sentiment.py reads (aclImdb tar.gz or folder, CSV, rt-polarity), of which only the texts are used,
or a token archive of either (`*.tokens.tar.xz`, from `train/ulmfit_gpu.py prepare`; needs no spaCy).
A seeded `--valid-fraction` of the documents is held out for perplexity; `evaluate` recreates that split.
Tokens are cached in --cache-dir, so the second stage and the classifier do not tokenise again.
`--time-budget S` caps the fit at S seconds of wall-clock time; the LR schedule then anneals on time.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from dl_core import cli, hub
from dl_core.paths import display_path
from dl_core.text import Vocab
from dl_core.ulmfit import card, training
from dl_core.ulmfit.data import lm_corpus, split_documents
from dl_core.ulmfit.evaluate import lm_evaluate_command, perplexity
from dl_core.ulmfit.finetune import ResetState
from dl_core.ulmfit.model import LanguageModel, lm_loss

DATA_HELP = "general text folder, or sentiment data (aclImdb tar.gz/folder, CSV, rt-polarity), or a token archive"


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    training.add_data_flags(parser, default=cli.default_data("text"), what=DATA_HELP)
    training.add_lm_data_flags(parser)
    lm = parser.add_argument_group("language model")
    lm.add_argument("--init", metavar="DIR", help="weight folder of an LM to start from (stage 2); its vocabulary is mapped")
    lm.add_argument("--wikitext103", action="store_true", help="download WikiText-103 into --data first (network)")
    lm.add_argument("--lr-div", type=float, default=32.0, help="slanted triangular: lowest LR = lr / lr_div (default: %(default)s)")
    lm.add_argument("--cut-frac", type=float, default=0.1, help="slanted triangular: share of training spent warming up (default: %(default)s)")
    lm.add_argument("--frozen-fraction", type=float, default=0.05,
                    help="with --init: share of training that trains only the embedding/decoder, the new words (default: %(default)s)")
    training.add_encoder_flags(parser, dropouts=dict(embed_p=0.1, input_p=0.6, weight_p=0.5, hidden_p=0.2, output_p=0.1), drop_mult=0.3)
    cli.add_run_flags(parser, epochs=10, bs=64, lr=3e-3, clip=0.5, out="weights/sentiment-lm")


def cmd_train(args: argparse.Namespace) -> None:
    """Train the language model, report its held-out perplexity, save (and push) it."""
    accelerator = cli.start(args)
    model, train_dl, valid_dl, valid_docs, facts = training.build_language_model(args, accelerator.is_main_process)
    schedule, stages = training.lm_schedule(args, len(model.layer_groups()))
    # decay 1: one LR for every group (discriminative LRs are the classifier's)
    learn, history, budget = training.fit(args, accelerator, model, train_dl, valid_dl, lm_loss, schedule, stages, 1.0, ResetState())
    if history is None:
        return
    model = learn.unwrapped_model.eval()
    metrics = {"valid": perplexity(model, valid_docs, bptt=args.bptt)}
    print(json.dumps(metrics["valid"]))
    evaluate = lm_evaluate_command(f"weights/{Path(args.out).name}", display_path(args.data), args.valid_fraction, args.seed,
                                   args.bptt, args.lm_texts, args.max_texts)
    metrics.update(history=history, facts={**facts, **training.run_facts(history, budget, model)},
                   train_args=training.recorded_settings(args), commands={"valid": evaluate})
    cli.save(args, model.cpu().float(), card.lm_card(model.config, metrics), metrics)


def add_evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, metavar="DIR", help="the language model's weight folder")
    training.add_data_flags(parser, default=None, what=DATA_HELP, evaluate=True)
    training.add_lm_data_flags(parser)
    parser.add_argument("--split", choices=["valid", "all"], default="valid",
                        help="'valid': the documents training held out (same seed and fraction); 'all': every text")
    parser.add_argument("--write", action="store_true",
                        help="record the perplexity as the folder's \"valid\" score in its metrics.json (e.g. after "
                             "`python -m dl_core.hub int8` stored it as int8); then rewrite the card with `card`")


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Print the perplexity of a language model on a data set as JSON, last."""
    model = hub.load_model(LanguageModel, args.weights)
    if torch.cuda.is_available():
        model = model.cuda()
    tokens, description = lm_corpus(args.data, args.lm_texts, args.max_texts, args.seed, args.cache_dir or None, args.workers)
    if args.split == "valid":
        _, tokens = split_documents(tokens, args.valid_fraction, args.seed)
    vocab = Vocab(model.config.vocab)
    t0 = time.perf_counter()
    result = perplexity(model, tokens.numericalize(vocab), bptt=args.bptt)
    unknown = sum(c for tok, c in tokens.counts().items() if tok not in vocab.stoi) / max(1, tokens.n_tokens)
    print(f"{description}: {len(tokens)} texts, {result['n_tokens']:,} tokens ({unknown:.1%} <unk>) in "
          f"{time.perf_counter() - t0:.1f}s", file=sys.stderr)
    if args.write:
        if args.split != "valid":
            raise SystemExit("--write records the held-out perplexity: use it with --split valid")
        metrics_file = Path(args.weights) / "metrics.json"
        metrics = json.loads(metrics_file.read_text())
        metrics["valid"] = result
        metrics_file.write_text(json.dumps(metrics, indent=1))
        print(f"wrote the perplexity into {metrics_file}", file=sys.stderr)
    print(json.dumps({"perplexity": result["perplexity"], "n_tokens": result["n_tokens"]}))


def main(argv: list[str] | None = None) -> None:
    cli.main(__file__, __doc__, {"train": (add_train_flags, cmd_train), "evaluate": (add_evaluate_flags, cmd_evaluate),
                                 "card": (training.add_card_flags, training.card_command(add_train_flags))}, argv)


if __name__ == "__main__":
    main()
