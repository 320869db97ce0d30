"""Lesson 11: train the French -> English attention model, evaluate it with sacreBLEU, save/push it.

    python train/translate.py train --data ../shared/data/translation/fra-eng.tsv --out weights/translation
    python train/translate.py evaluate --weights weights/translation --data ../shared/data/translation/fra-eng.tsv
    python train/translate.py lr-find --data ../shared/data/translation/fra-eng.tsv --plot lr_find.png
    accelerate launch --multi_gpu --num_processes 2 train/translate.py train ...   # data-parallel, same script

Data: `English<TAB>French[<TAB>attribution]` lines (Tatoeba/manythings `fra.txt`), or a prefix P of the
aligned files P.en / P.fr (optionally .gz), e.g. multi30k/test_2016_flickr. Without --data the full Tatoeba
corpus is downloaded (needs network).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path


import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from dl_core import hub
from dl_core.callbacks import (
    Checkpoint, EpochSchedule, GradientClip, ParamSchedule, ProgressBar, Recorder, StopAfter, lr_find, plot_lr_find,
)
from dl_core.translation.data import (
    SortishBatchSampler, TranslationDataset, aligned_files, collate_translation, download_tatoeba, read_pairs, split_by_source,
)
from dl_core.learner import Learner, make_accelerator
from dl_core.metrics import corpus_scores
from dl_core.translation.model import Seq2Seq, Seq2SeqConfig, seq2seq_loss
from dl_core.schedules import one_cycle, one_cycle_momentum
from dl_core.text import Vocab, tokenize_batch
from dl_core.translation.infer import Translator

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "translation" / "fra-eng.tsv"


def teacher_forcing_schedule(floor: float):
    """The lesson's Seq2SeqStepper: forcing falls linearly from 1 to `floor` over the first 80% of epochs
    (the lesson: (10 - epoch) / 10 over 10 epochs, then 0)."""

    def fn(epoch: int, n_epochs: int) -> float:
        ramp = max(1, round(0.8 * n_epochs))
        return max(floor, 1.0 - (1.0 - floor) * epoch / ramp)

    return fn


def load_data(args):
    if args.data:
        pairs = read_pairs(args.data)
    else:
        print(f"no --data: downloading the full Tatoeba corpus to {args.download_dir}")
        pairs = read_pairs(download_tatoeba(args.download_dir))
    train_pairs, valid_pairs = split_by_source(pairs, args.valid_pairs, seed=args.seed)
    if args.max_train_pairs:
        train_pairs = train_pairs[: args.max_train_pairs]
    return train_pairs, valid_pairs


def build(args, accelerator: Accelerator):
    train_pairs, valid_pairs = load_data(args)
    t0 = time.perf_counter()
    src_train, tgt_train = tokenize_batch([p.fr for p in train_pairs], "fr"), tokenize_batch([p.en for p in train_pairs], "en")
    src_valid, tgt_valid = tokenize_batch([p.fr for p in valid_pairs], "fr"), tokenize_batch([p.en for p in valid_pairs], "en")
    src_vocab = Vocab.build(src_train, max_size=args.max_vocab, min_freq=args.min_freq)
    tgt_vocab = Vocab.build(tgt_train, max_size=args.max_vocab, min_freq=args.min_freq)
    if accelerator.is_main_process:
        print(f"{len(train_pairs)} train / {len(valid_pairs)} valid pairs; vocab fr {len(src_vocab)}, "
              f"en {len(tgt_vocab)}; tokenised in {time.perf_counter() - t0:.1f}s")
    config = Seq2SeqConfig(
        src_vocab=src_vocab.itos, tgt_vocab=tgt_vocab.itos, emb_dim=args.emb_dim, enc_hidden=args.enc_hidden,
        dec_hidden=args.dec_hidden, n_layers=args.n_layers, attn_dim=args.attn_dim,
    )
    train_ds = TranslationDataset.from_tokens(src_train, tgt_train, src_vocab, tgt_vocab, config.max_src_len)
    valid_ds = TranslationDataset.from_tokens(src_valid, tgt_valid, src_vocab, tgt_vocab, config.max_src_len)
    train_dl = DataLoader(
        train_ds, collate_fn=collate_translation,
        batch_sampler=SortishBatchSampler([len(s) for s in train_ds.src], args.bs, shuffle=True, seed=args.seed),
    )
    valid_dl = DataLoader(
        valid_ds, collate_fn=collate_translation,
        batch_sampler=SortishBatchSampler([len(s) for s in valid_ds.src], args.bs * 2, shuffle=False),
    )
    return Seq2Seq(config), train_dl, valid_dl, valid_pairs, len(train_pairs) + len(valid_pairs)


def make_learner(args, model, train_dl, valid_dl, accelerator, extra_callbacks=()):
    loss_fn = lambda logits, target: seq2seq_loss(logits, target, args.label_smoothing)  # noqa: E731
    opt_fn = lambda params, lr: torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=args.wd)  # noqa: E731
    callbacks = [
        Recorder(), ProgressBar(), GradientClip(args.clip),
        EpochSchedule("teacher_forcing", teacher_forcing_schedule(args.teacher_forcing_floor)),
        *extra_callbacks,
    ]
    return Learner(model, train_dl, valid_dl, loss_fn, lr=args.lr, opt_fn=opt_fn, callbacks=callbacks,
                   accelerator=accelerator)


def evaluate_pairs(model: Seq2Seq, pairs, beam_size: int = 1) -> dict:
    translator = Translator(model)
    hypotheses = translator.translate_batch([p.fr for p in pairs], beam_size=beam_size)
    return corpus_scores(hypotheses, [p.en for p in pairs])


def model_card(args, facts: dict, metrics: dict, history: list[dict]) -> str:
    """The weight folder's README.md; `facts`: n_params, n_pairs, n_valid, src_vocab, tgt_vocab, seconds, hardware."""
    command = args.command_line
    rows = "\n".join(
        f"| {h['epoch'] + 1} | {h['train_loss']:.3f} | {h['valid_loss']:.3f} | {h.get('teacher_forcing', 1.0):.2f} | {h['seconds']:.0f} |"
        for h in history
    )
    ood = metrics.get("multi30k")
    ood_row = (f"| Multi30k test 2016 (out of domain) | {ood['n']} | {ood['bleu']:.1f} | {ood['chrf']:.1f} | "
               f"`python train/translate.py evaluate --weights weights/translation --data ../shared/data/translation/multi30k/test_2016_flickr` |"
               if ood else "")
    held = metrics["heldout"]
    return f"""---
library_name: fastai-part2-demos
license: cc-by-2.0
language: [fr, en]
tags: [translation, seq2seq, attention, fastai-part2, pytorch_model_hub_mixin]
datasets: [tatoeba]
metrics: [bleu, chrf]
---
# Lesson 11 · French → English translation (bi-GRU encoder + additive attention)

A {facts['n_params'] / 1e6:.1f}M-parameter sequence-to-sequence model from the fast.ai 2018 Part 2 lesson 11:
a 2-layer bidirectional GRU encoder, a 2-layer GRU decoder with additive (Bahdanau) attention, teacher
forcing scheduled per epoch, and an output layer tied to the decoder embedding (`dl_core/translation/model.py`).
Weights are stored in fp16 (loaded back as fp32).

## Data
Tatoeba French–English pairs (`{Path(args.data).name if args.data else "fra.txt"}`, {facts['n_pairs']} pairs) via
manythings.org — CC-BY 2.0 FR, credit tatoeba.org. {facts['n_valid']} pairs were held out by **whole French sentence** (seed {args.seed}),
so no validation source sentence is seen in training. Tokens: spaCy `blank("fr")` / `blank("en")`, cased,
words seen at least {args.min_freq} times (vocab: French {facts['src_vocab']}, English {facts['tgt_vocab']}).

## Metrics (cased sacreBLEU 13a on detokenised greedy output, one reference per pair)
| data | pairs | BLEU | chrF | reproduce with |
|---|---|---|---|---|
| Tatoeba held-out split | {held['n']} | {held['bleu']:.1f} | {held['chrf']:.1f} | `python train/translate.py evaluate --weights weights/translation --data ../shared/data/translation/fra-eng.tsv --split valid` |
{ood_row}

Multi30k (image captions) is out of domain: Tatoeba is short everyday sentences. Multi30k is licensed for
non-commercial research and education; it is used here only to report a number.

## Training
```
{command}
```
{len(history)} epochs, {facts['seconds'] / 60:.1f} minutes on {facts['hardware']}; AdamW, 1cycle LR (max {args.lr}),
gradient clipping {args.clip}, label smoothing {args.label_smoothing}, batch {args.bs}. Teacher forcing falls from
1.0 to a floor of {args.teacher_forcing_floor} (`--teacher-forcing-floor`; the lesson goes down to 0).

| epoch | train loss | valid loss | teacher forcing | seconds |
|---|---|---|---|---|
{rows}

## Use
```python
from dl_core.hub import load_model
from dl_core.translation.model import Seq2Seq
from dl_core.translation.infer import Translator
translator = Translator(load_model(Seq2Seq, "weights/translation"))
print(translator.greedy(translator.source("Je suis content.")).text)
```
"""


def cmd_train(args) -> None:
    accelerator = make_accelerator(args.mixed_precision)
    set_seed(args.seed)
    model, train_dl, valid_dl, valid_pairs, n_pairs = build(args, accelerator)
    n_params = sum(p.numel() for p in model.parameters())
    extra = [ParamSchedule(lr=one_cycle(args.lr), beta1=one_cycle_momentum())]
    if args.checkpoint:
        extra.append(Checkpoint(args.checkpoint, resume=args.resume))
    if args.max_steps:
        extra.append(StopAfter(args.max_steps))
    learn = make_learner(args, model, train_dl, valid_dl, accelerator, extra)
    if accelerator.is_main_process:
        print(f"model: {n_params / 1e6:.2f}M parameters; {learn.n_batches} batches per epoch on "
              f"{accelerator.num_processes} process(es), device {accelerator.device}")
    t0 = time.perf_counter()
    learn.fit(args.epochs)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    history = learn.get(Recorder).history
    train_seconds = sum(h["seconds"] for h in history)  # includes epochs before a resume
    model = learn.unwrapped_model.eval().cpu().float()
    print(f"trained in {(time.perf_counter() - t0) / 60:.1f} min this run; evaluating on {len(valid_pairs)} held-out pairs")
    metrics = {"heldout": evaluate_pairs(model, valid_pairs)}
    if args.ood_data and aligned_files(args.ood_data):
        metrics["multi30k"] = evaluate_pairs(model, read_pairs(args.ood_data))
    print(json.dumps(metrics))
    if args.out:
        facts = {
            "n_params": n_params, "n_pairs": n_pairs, "n_valid": len(valid_pairs), "seconds": train_seconds,
            "src_vocab": len(model.config.src_vocab), "tgt_vocab": len(model.config.tgt_vocab),
            "hardware": hub.describe_hardware(),
        }
        card = model_card(args, facts, metrics, history)
        hub.save_and_push(model, args.out, card, {**metrics, "history": history}, args.push_to_hub)


def cmd_evaluate(args) -> None:
    model = hub.load_model(Seq2Seq, args.weights)
    pairs = read_pairs(args.data)
    if args.split == "valid":  # the same held-out split training made (same seed and size)
        _, pairs = split_by_source(pairs, args.valid_pairs, seed=args.seed)
    if args.limit:
        pairs = pairs[: args.limit]
    t0 = time.perf_counter()
    metrics = evaluate_pairs(model, pairs, beam_size=args.beam)
    print(f"{len(pairs)} pairs translated in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    print(json.dumps({"bleu": round(metrics["bleu"], 2), "chrf": round(metrics["chrf"], 2), "n": metrics["n"]}))


def cmd_lr_find(args) -> None:
    accelerator = make_accelerator(args.mixed_precision)
    set_seed(args.seed)
    model, train_dl, valid_dl, _, _ = build(args, accelerator)
    learn = make_learner(args, model, train_dl, valid_dl, accelerator)
    finder = lr_find(learn, n_iter=args.n_iter)
    print(f"suggested LR (steepest descent): {finder.suggestion():.2e}")
    if args.plot:
        plot_lr_find(finder).savefig(args.plot, dpi=120)
        print(f"plot written to {args.plot}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def data_args(p, required=False):
        p.add_argument("--data", type=str, default=str(DEFAULT_DATA) if DEFAULT_DATA.exists() and not required else None,
                       required=required, help="TSV file or aligned-file prefix (default: ../shared copy if present, else download)")
        p.add_argument("--valid-pairs", type=int, default=2500, help="held-out pairs (whole French sentences)")
        p.add_argument("--seed", type=int, default=42)

    def model_args(p):
        data_args(p)
        p.add_argument("--download-dir", default="data/tatoeba")
        p.add_argument("--max-train-pairs", type=int, default=0, help="cap the training pairs (quick runs, tests)")
        p.add_argument("--min-freq", type=int, default=2)
        p.add_argument("--max-vocab", type=int, default=40_000)
        p.add_argument("--emb-dim", type=int, default=256)
        p.add_argument("--enc-hidden", type=int, default=256)
        p.add_argument("--dec-hidden", type=int, default=512)
        p.add_argument("--n-layers", type=int, default=2)
        p.add_argument("--attn-dim", type=int, default=256)
        p.add_argument("--bs", type=int, default=128)
        p.add_argument("--lr", type=float, default=2e-3)
        p.add_argument("--wd", type=float, default=0.01)
        p.add_argument("--clip", type=float, default=1.0)
        p.add_argument("--label-smoothing", type=float, default=0.1)
        p.add_argument("--teacher-forcing-floor", type=float, default=0.5,
                       help="lowest teacher-forcing probability (the lesson uses 0)")
        p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="no")

    train = sub.add_parser("train", help="train, evaluate, save (and push) the weights")
    model_args(train)
    train.add_argument("--epochs", type=int, default=12)
    train.add_argument("--out", default="weights/translation", help="weight folder to write ('' to skip)")
    train.add_argument("--checkpoint", default="runs/translation/checkpoint.safetensors")
    train.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    train.add_argument("--max-steps", type=int, default=0, help="stop after this many batches (smoke tests)")
    train.add_argument("--ood-data", default=str(DEFAULT_DATA.parent / "multi30k" / "test_2016_flickr"),
                       help="aligned-file prefix for an out-of-domain BLEU (skipped if absent)")
    train.add_argument("--push-to-hub", metavar="REPO", help="upload the weight folder to this Hub repo")

    evaluate = sub.add_parser("evaluate", help="print BLEU/chrF of a weight folder on a data file as JSON")
    evaluate.add_argument("--weights", required=True)
    data_args(evaluate, required=True)
    evaluate.add_argument("--split", choices=["all", "valid"], default="all",
                          help="'valid': only the held-out split that training made from this file")
    evaluate.add_argument("--beam", type=int, default=1, help="beam width (1 = greedy)")
    evaluate.add_argument("--limit", type=int, default=0, help="only the first N pairs")

    finder = sub.add_parser("lr-find", help="LR range test; prints a suggestion and plots loss vs LR")
    model_args(finder)
    finder.add_argument("--n-iter", type=int, default=100)
    finder.add_argument("--plot", default="lr_find.png")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.command_line = "python train/translate.py " + shlex.join(sys.argv[1:] if argv is None else argv)  # for the model card
    {"train": cmd_train, "evaluate": cmd_evaluate, "lr-find": cmd_lr_find}[args.command](args)


if __name__ == "__main__":
    main()
