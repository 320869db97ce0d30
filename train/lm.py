"""Lesson 10, ULMFiT stages 1 and 2: train the AWD-LSTM language model, report its perplexity, save/push it.

    # stage 1: a general-domain LM on WikiText-2 (valid + test) and tiny Shakespeare
    python train/lm.py train --data ../shared/data/text --out weights/lm-general
    # stage 2: fine-tune it on the IMDB review texts (train + test texts; the labels are never read)
    python train/lm.py train --data ../shared/data/sentiment/aclImdb_v1.tar.gz --init weights/lm-general \\
        --out weights/sentiment-lm
    python train/lm.py evaluate --weights weights/sentiment-lm --data ../shared/data/sentiment/aclImdb_v1.tar.gz
    # ULMFiT's backward LM (reads each text from its end), the start of the backward classifier
    python train/lm.py train --data ../shared/data/sentiment/aclImdb_v1.tar.gz --init weights/sentiment-lm --backwards \
        --out runs/sentiment-lm-bwd
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
import math
import shlex
import sys
import time
from pathlib import Path


import torch
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from dl_core import hub
from dl_core.callbacks import Checkpoint, GradientClip, ParamSchedule, ProgressBar, Recorder, StopAfter
from dl_core.ulmfit.data import (
    BPTTBatchSampler, LMStreamDataset, download_wikitext103, first_item, lm_stream, load_tokenized, seeded_split,
)
from dl_core.learner import Learner, make_accelerator
from dl_core.ulmfit.model import AWDLSTMConfig, LanguageModel, lm_loss
from dl_core.schedules import slanted_triangular
from dl_core.text import RULE_TOKENS, TokenizedCorpus, Vocab
from dl_core.callbacks import WallClockBudget
from dl_core.ulmfit.finetune import GradualUnfreezing, ResetState, discriminative_optimizer

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
DEFAULT_DATA = SHARED / "text"


# --- data ---------------------------------------------------------------------------------------------
def tokenize_lm_texts(args, progress: bool) -> tuple[TokenizedCorpus, str]:
    """Every text at args.data as one corpus (tokenised through the cache, or read from a token archive).
    For sentiment data the labels are ignored; --lm-texts all also takes the held-out part's texts (IMDB:
    the test reviews, as the lesson and the ULMFiT paper do: an LM may read any unlabelled in-domain text)."""
    data = load_tokenized(args.data, cache_dir=args.cache_dir or None, workers=args.workers, progress=progress)
    names = [n for n in data.parts if n != "heldout" or args.lm_texts == "all"]
    corpus = TokenizedCorpus.concat([data.parts[n].sample(args.max_texts, args.seed).corpus for n in names])
    if data.kind == "general":
        return corpus, ", ".join(f"{n} ({len(data.parts[n])} texts)" for n in names)
    return corpus, f"{data.name} {'+'.join(names)} texts"


def split_corpus(corpus: TokenizedCorpus, valid_fraction: float, seed: int) -> tuple[TokenizedCorpus, TokenizedCorpus]:
    """A seeded document split: (train, held-out) texts."""
    train_idx, valid_idx = seeded_split(list(range(len(corpus))), valid_fraction, seed)
    if not valid_idx:
        train_idx, valid_idx = train_idx[1:], train_idx[:1]
    return corpus.subset(train_idx), corpus.subset(valid_idx)


def lm_loader(docs, batch_size: int, bptt: int, variable: bool, seed: int, backwards: bool = False) -> DataLoader:
    dataset = LMStreamDataset(lm_stream(docs, seed=seed, backwards=backwards), batch_size)
    sampler = BPTTBatchSampler(dataset.n_cols, bptt, variable=variable, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=first_item)


@torch.no_grad()
def perplexity(model: LanguageModel, docs, batch_size: int = 64, bptt: int = 70) -> dict:
    """exp(mean next-token cross-entropy) over every token of `docs` read as one stream (in the model's
    direction: a backward LM predicts each token from the ones after it)."""
    model.eval().reset()
    device = model.decoder.weight.device
    stream = lm_stream(docs, backwards=model.config.backwards)
    batch_size = max(1, min(batch_size, (len(stream) - 1) // 2))
    dataset = LMStreamDataset(stream, batch_size)
    total, count = 0.0, 0
    for (inputs,), target in DataLoader(dataset, batch_sampler=BPTTBatchSampler(dataset.n_cols, bptt, variable=False),
                                        collate_fn=first_item):
        logits = model(inputs.to(device))
        total += float(torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), target.to(device).flatten(), reduction="sum"))
        count += target.numel()
    model.reset()
    loss = total / max(count, 1)
    return {"perplexity": round(math.exp(loss), 2), "loss": round(loss, 4), "n_tokens": count}


def build(args, accelerator):
    if args.wikitext103:
        download_wikitext103(args.data)
    t0 = time.perf_counter()
    progress = accelerator.is_main_process
    corpus, description = tokenize_lm_texts(args, progress)
    train_tokens, valid_tokens = split_corpus(corpus, args.valid_fraction, args.seed)
    vocab = Vocab.from_counts(train_tokens.counts(), max_size=args.max_vocab, min_freq=args.min_freq, reserved=RULE_TOKENS)
    dropouts = {k: getattr(args, k) * args.drop_mult for k in ("embed_p", "input_p", "weight_p", "hidden_p", "output_p")}
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


def evaluate_command(args) -> str:
    """The command that recomputes the card's perplexity from the saved folder (same split, same texts)."""
    options = [f"--valid-fraction {args.valid_fraction}", f"--seed {args.seed}", f"--bptt {args.bptt}"]
    if args.lm_texts != "all":
        options.append(f"--lm-texts {args.lm_texts}")
    if args.max_texts:
        options.append(f"--max-texts {args.max_texts}")
    return f"python train/lm.py evaluate --weights weights/{Path(args.out).name} --data {args.data} {' '.join(options)}"


def model_card(args, facts: dict, metrics: dict, history: list[dict]) -> str:
    rows = "\n".join(
        f"| {h['epoch'] + 1} | {h['train_loss']:.3f} | {h['valid_loss']:.3f} | {math.exp(min(h['valid_loss'], 50)):.1f} | {h['seconds']:.0f} |"
        for h in history
    )
    cfg = facts["config"]
    backwards = ("\nIt reads **backwards**: trained on each text reversed, it predicts a word from the words after it. It is the "
                 "start of ULMFiT's backward classifier (`train/sentiment.py train --lm THIS --backwards`).") if cfg.backwards else ""
    return f"""---
library_name: fastai-part2-demos
license: mit
language: [en]
tags: [text-generation, language-model, awd-lstm, ulmfit, fastai-part2, pytorch_model_hub_mixin]
metrics: [perplexity]
---
# Lesson 10 · AWD-LSTM language model ({facts['n_params'] / 1e6:.1f}M parameters)

A {cfg.n_layers}-layer AWD-LSTM (embedding {cfg.emb_dim}, hidden {cfg.hidden_dim}, vocabulary {len(cfg.vocab)}, decoder tied
to the embedding) from the fast.ai 2018 Part 2 lesson 10 / ULMFiT (`dl_core/ulmfit/model.py`). Weights in fp16.{backwards}
Initial weights: {facts['init']}.

## Data
{facts['data']}: {facts['n_train_texts']:,} texts ({facts['n_train_tokens']:,} tokens) for training, {facts['n_valid_texts']:,} held out
({facts['n_valid_tokens']:,} tokens; seeded document split, seed {args.seed}). Tokens: spaCy `blank("en")` with fastai's rules
(`dl_core/text.py`, rules version {cfg.rules_version}: xxmaj, xxup, xxrep, xxwrep, lower case).

## Metrics
| data | tokens | perplexity | reproduce with |
|---|---|---|---|
| held-out texts | {metrics['valid']['n_tokens']:,} | {metrics['valid']['perplexity']:.1f} | `{evaluate_command(args)}` |

## Training
```
{args.command_line}
```
{len(history)} epochs, {facts['seconds'] / 60:.1f} minutes on {facts['hardware']}{' (stopped by its time budget)' if facts.get('cut_short') else ''};
AdamW (betas 0.8/0.99, weight decay {args.wd}), slanted triangular LR (max {args.lr}), batch {args.bs} x BPTT ~{args.bptt},
gradient clipping {args.clip}, dropouts x{args.drop_mult} (embedding {cfg.embed_p:.3f}, input {cfg.input_p:.3f}, weight {cfg.weight_p:.3f},
hidden {cfg.hidden_p:.3f}, output {cfg.output_p:.3f}){f'; only the embedding/decoder trained for the first {args.frozen_fraction:.0%}' if args.init and args.frozen_fraction else ''}.

| epoch | train loss | valid loss | valid perplexity | seconds |
|---|---|---|---|---|
{rows}
"""


def cmd_train(args) -> None:
    accelerator = make_accelerator(args.mixed_precision)
    set_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls outside autocast may use TF32 tensor cores
    model, train_dl, valid_dl, valid_docs, facts = build(args, accelerator)
    groups = model.layer_groups()
    budget = WallClockBudget(args.time_budget) if args.time_budget else None
    progress_fn = budget.progress if budget else None
    schedule = slanted_triangular(args.lr, div=args.lr_div, cut_frac=args.cut_frac)
    frozen = args.frozen_fraction if args.init else 0.0
    callbacks = [
        Recorder(), ProgressBar(), GradientClip(args.clip), ResetState(),
        ParamSchedule(lr=budget.schedule(schedule) if budget else schedule),
        GradualUnfreezing(groups, [(0.0, 1), (frozen, len(groups))] if frozen else [(0.0, len(groups))], progress_fn),
    ]
    if budget:
        callbacks.append(budget)
    if args.checkpoint:
        callbacks.append(Checkpoint(args.checkpoint, resume=args.resume))
    if args.max_steps:
        callbacks.append(StopAfter(args.max_steps))
    opt_fn = discriminative_optimizer(groups, decay=1.0, betas=(0.8, 0.99), weight_decay=args.wd)  # one LR for all
    learn = Learner(model, train_dl, valid_dl, lm_loss, lr=args.lr, opt_fn=opt_fn, callbacks=callbacks, accelerator=accelerator)
    n_params = sum(p.numel() for p in model.parameters())
    if accelerator.is_main_process:
        print(f"model: {n_params / 1e6:.2f}M parameters; {learn.n_batches} batches of {train_dl.dataset.inputs.size(0)} x ~{args.bptt} "
              f"tokens per epoch on {accelerator.num_processes} process(es), device {accelerator.device}")
    t0 = time.perf_counter()
    learn.fit(args.epochs)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    history = learn.get(Recorder).history
    model = learn.unwrapped_model.eval()
    metrics = {"valid": perplexity(model, valid_docs, bptt=args.bptt)}
    print(f"trained in {(time.perf_counter() - t0) / 60:.1f} min; held-out perplexity {metrics['valid']['perplexity']}")
    print(json.dumps(metrics["valid"]))
    if args.out:
        model = model.cpu().float()
        facts.update(n_params=n_params, seconds=sum(h["seconds"] for h in history), hardware=hub.describe_hardware(),
                     config=model.config, cut_short=bool(budget and budget.cut_short))
        card = model_card(args, facts, metrics, history)
        hub.save_and_push(model, args.out, card, {**metrics, "history": history, "facts": {k: v for k, v in facts.items() if k != "config"}},
                          args.push_to_hub)


def cmd_evaluate(args) -> None:
    model = hub.load_model(LanguageModel, args.weights)
    if torch.cuda.is_available():
        model = model.cuda()
    tokens, description = tokenize_lm_texts(args, progress=True)
    if args.split == "valid":  # the documents training held out (same seed and fraction)
        _, tokens = split_corpus(tokens, args.valid_fraction, args.seed)
    vocab = Vocab(model.config.vocab)
    t0 = time.perf_counter()
    result = perplexity(model, tokens.numericalize(vocab), bptt=args.bptt)
    unknown = sum(c for tok, c in tokens.counts().items() if tok not in vocab.stoi) / max(1, tokens.n_tokens)
    print(f"{description}: {len(tokens)} texts, {result['n_tokens']:,} tokens ({unknown:.1%} <unk>) in "
          f"{time.perf_counter() - t0:.1f}s", file=sys.stderr)
    print(json.dumps({"perplexity": result["perplexity"], "n_tokens": result["n_tokens"]}))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def data_args(p, required=False):
        p.add_argument("--data", default=None if required else str(DEFAULT_DATA), required=required,
                       help="general text folder, or sentiment data (aclImdb tar.gz/folder, CSV, rt-polarity)")
        p.add_argument("--lm-texts", choices=["all", "train"], default="all",
                       help="for sentiment data: also read the held-out part's texts ('all', the lesson's choice) or not")
        p.add_argument("--valid-fraction", type=float, default=0.02, help="share of documents held out for perplexity")
        p.add_argument("--max-texts", type=int, default=0, help="a seeded N texts of each file/split (quick runs, tests)")
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--cache-dir", default="data/cache", help="token cache folder ('' for none)")
        p.add_argument("--workers", type=int, default=None, help="tokenising processes (default: all CPUs; 0: none)")
        p.add_argument("--bptt", type=int, default=70)

    train = sub.add_parser("train", help="train, evaluate, save (and push) the LM")
    data_args(train)
    train.add_argument("--init", help="weight folder of an LM to start from (stage 2); its vocabulary is mapped")
    train.add_argument("--backwards", action="store_true",
                       help="a backward LM: reads each text from its end (for ULMFiT's backward classifier)")
    train.add_argument("--wikitext103", action="store_true", help="download WikiText-103 into --data first (network)")
    train.add_argument("--max-vocab", type=int, default=14_000)
    train.add_argument("--min-freq", type=int, default=3)
    train.add_argument("--emb-dim", type=int, default=256)
    train.add_argument("--hidden-dim", type=int, default=512)
    train.add_argument("--n-layers", type=int, default=3)
    for name, default in (("embed-p", 0.1), ("input-p", 0.6), ("weight-p", 0.5), ("hidden-p", 0.2), ("output-p", 0.1)):
        train.add_argument(f"--{name}", type=float, default=default, help="AWD-LSTM dropout (times --drop-mult)")
    train.add_argument("--drop-mult", type=float, default=0.3, help="scales every dropout (fastai's drop_mult)")
    train.add_argument("--bs", type=int, default=64, help="rows of the stream per batch")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--time-budget", type=float, default=0, help="stop after this many seconds of fit (0: no cap)")
    train.add_argument("--lr", type=float, default=3e-3)
    train.add_argument("--lr-div", type=float, default=32.0, help="slanted triangular: lowest LR = lr / lr_div")
    train.add_argument("--cut-frac", type=float, default=0.1, help="slanted triangular: share of training spent warming up")
    train.add_argument("--frozen-fraction", type=float, default=0.05,
                       help="with --init: share of training that trains only the embedding/decoder (new words)")
    train.add_argument("--wd", type=float, default=0.01)
    train.add_argument("--clip", type=float, default=0.5)
    train.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="no")
    train.add_argument("--out", default="weights/sentiment-lm", help="weight folder to write ('' to skip)")
    train.add_argument("--checkpoint", default="", help="checkpoint file, written after every epoch")
    train.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    train.add_argument("--max-steps", type=int, default=0, help="stop after this many batches (smoke tests)")
    train.add_argument("--push-to-hub", metavar="REPO", help="upload the weight folder to this Hub repo")

    evaluate = sub.add_parser("evaluate", help="print the perplexity of an LM on a data set as JSON, last")
    evaluate.add_argument("--weights", required=True)
    data_args(evaluate, required=True)
    evaluate.add_argument("--split", choices=["valid", "all"], default="valid",
                          help="'valid': the documents training held out; 'all': every text")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.command_line = "python train/lm.py " + shlex.join(sys.argv[1:] if argv is None else argv)  # for the model card
    {"train": cmd_train, "evaluate": cmd_evaluate}[args.command](args)


if __name__ == "__main__":
    main()
