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
    # ULMFiT's backward model (reads each text end to start; here from the forward classifier's weights), then the
    # forward + backward ensemble the app uses: their probabilities averaged (--write keeps its score beside the second)
    python train/sentiment.py train --data ../shared/data/sentiment/aclImdb_v1.tar.gz --init-classifier weights/sentiment \
        --backwards --unfreeze-fraction 0 --lr 2e-2 --time-budget 4800 --out runs/sentiment-bwd
    python -m dl_core.hub int8 runs/sentiment-bwd weights/sentiment-bwd   # int8 storage: half the fp16 file
    python train/sentiment.py evaluate --weights weights/sentiment weights/sentiment-bwd \
        --data ../shared/data/sentiment/aclImdb_v1.tar.gz --write

Data: aclImdb (tar.gz or folder; the classifier trains on train/, is scored on test/), a CSV with
`label,text` columns (held-out rows: `is_valid`, else a seeded 10%), rt-polarity .pos/.neg (a seeded 10%
held out), or a token archive of any of them (`*.tokens.tar.xz` from `train/ulmfit_gpu.py prepare`). `evaluate` scores the held-out part (`--split all`: everything) and prints
`{"accuracy": ..., "n": ...}` as its last line.

Training is ULMFiT's: the encoder starts from the LM's, the layer groups (embedding, LSTM 1-3, head) get
discriminative LRs (/2.6 per group down), and gradual unfreezing trains the head alone, then one more
LSTM per stage, then everything, each stage with its own slanted triangular LR. `--time-budget S` caps the
fit at S seconds; the stages and the LR then run on time rather than batches.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path


import numpy as np
import torch
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from dl_core import hub
from dl_core.callbacks import Checkpoint, GradientClip, ParamSchedule, ProgressBar, Recorder, StopAfter
from dl_core.ulmfit.data import (
    CLASSES, ClassificationDataset, SortishBatchSampler, TokenizedData, TokenizedSplit, collate_classification, load_tokenized,
    seeded_split,
)
from dl_core.learner import Callback, Learner, make_accelerator
from dl_core.ulmfit.model import AWDLSTMConfig, ClassifierConfig, LanguageModel, TextClassifier, classifier_loss
from dl_core.schedules import slanted_triangular
from dl_core.ulmfit.infer import check_ensemble
from dl_core.text import RULE_TOKENS, TokenizedCorpus, Vocab
from dl_core.callbacks import WallClockBudget
from dl_core.ulmfit.finetune import GradualUnfreezing, discriminative_optimizer, unfreezing_recipe

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "sentiment" / "aclImdb_v1.tar.gz"


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


# --- data ---------------------------------------------------------------------------------------------
def load_data(path, args, progress: bool = True) -> TokenizedData:
    """Tokens and labels of `path` (a token archive, or text tokenised through the cache: train/lm.py
    tokenised the same lists, so after it this is a cache hit)."""
    data = load_tokenized(path, cache_dir=args.cache_dir or None, workers=args.workers, progress=progress, seed=args.seed)
    if data.kind != "sentiment":
        raise SystemExit(f"{path}: no labelled texts (this is general text for train/lm.py)")
    return data


def classification_loader(docs, labels, batch_size: int, max_len: int, shuffle: bool, seed: int) -> DataLoader:
    dataset = ClassificationDataset(docs, labels, max_len=max_len)
    sampler = SortishBatchSampler(dataset.lengths, batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_classification)


def build(args, accelerator):
    t0 = time.perf_counter()
    progress = accelerator.is_main_process
    data = load_data(args.data, args, progress)
    train = data.parts["train"].sample(args.max_texts, args.seed)  # the sample train/lm.py --max-texts takes
    fit_idx, valid_idx = seeded_split(np.flatnonzero(train.labels >= 0).tolist(), args.valid_fraction, args.seed)
    if not valid_idx:
        fit_idx, valid_idx = fit_idx[1:], fit_idx[:1]
    lm = hub.load_model(LanguageModel, args.lm) if args.lm and not args.init_classifier else None
    start = hub.load_model(TextClassifier, args.init_classifier) if args.init_classifier else None
    if start is not None:
        vocab = Vocab(start.config.encoder.vocab)
    elif lm is not None:
        vocab = Vocab(lm.config.vocab)
    else:  # no LM at all: a vocabulary from the classifier's own training texts
        vocab = Vocab.from_counts(train.corpus.subset(fit_idx).counts(), max_size=args.max_vocab, min_freq=args.min_freq,
                                  reserved=RULE_TOKENS)
    dropouts = {k: getattr(args, k) * args.drop_mult for k in ("embed_p", "input_p", "weight_p", "hidden_p")}
    settings = dict(classes=list(CLASSES), head_hidden=args.head_hidden, max_len=args.max_len, backwards=args.backwards,
                    head_p=(args.head_p[0] * args.drop_mult, args.head_p[1] * args.drop_mult))
    if start is not None:  # transfer a whole classifier (e.g. IMDB's) to new data: its head already knows sentiment
        model = start.train()
        init = f"the classifier {args.init_classifier} (encoder and head)"
        if args.backwards and not start.config.backwards:  # a forward model's weights, now reading texts end to start
            model = TextClassifier(replace(start.config, backwards=True)).train()  # a new config (what config.json holds)
            model.load_state_dict(start.state_dict(), strict=True)
            init += ", now reading each text backwards"
        model.encoder.set_dropouts(model.config.encoder, **dropouts)
    elif lm is not None and not args.from_scratch:
        model = TextClassifier.from_language_model(lm, **settings)
        model.encoder.set_dropouts(model.config.encoder, **dropouts)
        init = f"the encoder of the language model {args.lm}" + (" (reading backwards)" if args.backwards else "")
    else:
        sizes = (dict(emb_dim=lm.config.emb_dim, hidden_dim=lm.config.hidden_dim, n_layers=lm.config.n_layers) if lm is not None
                 else dict(emb_dim=args.emb_dim, hidden_dim=args.hidden_dim, n_layers=args.n_layers))
        model = TextClassifier(ClassifierConfig(encoder=AWDLSTMConfig(vocab=vocab.itos, **sizes, **dropouts), **settings))
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


def accuracy_on(models: TextClassifier | list[TextClassifier], split: TokenizedSplit, batch_size: int = 128) -> dict:
    """Accuracy on the labelled texts of a tokenised split of one classifier, or of several averaging their
    probabilities (an ensemble, e.g. ULMFiT's forward + backward models; `members` then gives each one's)."""
    models = [models] if isinstance(models, TextClassifier) else models
    split = split.select(np.flatnonzero(split.labels >= 0).tolist())
    labels = torch.from_numpy(split.labels)
    docs = split.corpus.numericalize(Vocab(models[0].config.encoder.vocab))
    id_lists = [[Vocab.bos_id] + d.tolist() for d in docs]
    probs = [model.predict_proba(id_lists, batch_size=batch_size) for model in models]  # each (N, C)

    def accuracy(p: torch.Tensor) -> float:
        return round(float((p.argmax(-1) == labels).float().mean()), 4) if len(split) else float("nan")

    n_cut = sum(len(ids) > models[0].config.max_len for ids in id_lists)
    result = {"accuracy": accuracy(torch.stack(probs).mean(0)), "n": len(split), "n_cut": n_cut}
    if len(models) > 1:
        result["members"] = [accuracy(p) for p in probs]
    return result


def _recorded_command(folder: Path, metrics: dict) -> str:
    """The command that trained a classifier folder: metrics.json has it since lineages exist; an older folder's
    model card has it as the first code block of its Training section."""
    command = metrics.get("facts", {}).get("command")
    if command:
        return command
    card = (folder / "README.md").read_text() if (folder / "README.md").exists() else ""
    training = card.partition("## Training")[2]
    return training.split("```")[1].strip() if training.count("```") >= 2 else "(not recorded)"


def training_lineage(folder: str | Path) -> list[dict]:
    """The runs that made a classifier, oldest first: each `--init-classifier` run trains on from the one before."""
    folder = Path(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    facts = metrics.get("facts", {})
    return [*metrics.get("lineage", []), {
        "command": _recorded_command(folder, metrics), "epochs": len(metrics.get("history", [])),
        "seconds": facts.get("seconds", 0), "hardware": facts.get("hardware", "unknown hardware"),
        "heldout_accuracy": metrics.get("heldout", {}).get("accuracy"),
    }]


def _lineage_section(lineage: list[dict], seconds: float) -> str:
    return hub.lineage_section(lineage, seconds, "classifier", "--init-classifier", lambda run: (
        f"{run['epochs']} epochs, {run['seconds'] / 60:.1f} minutes on {run['hardware']}"
        + (f" (held-out accuracy after it: {run['heldout_accuracy']:.4f})" if run["heldout_accuracy"] is not None else "")))


def model_card(args, facts: dict, metrics: dict, history: list[dict]) -> str:
    rows = "\n".join(
        f"| {h['epoch'] + 1} | {h['train_loss']:.3f} | {h['valid_loss']:.3f} | {h.get('accuracy', float('nan')):.3f} | "
        f"{h.get('trainable_groups', '')} | {h['seconds']:.0f} |" for h in history
    )
    cfg = facts["config"]
    enc = cfg.encoder
    weights = f"weights/{Path(args.out).name}"
    limit = f" --limit {args.max_texts}" if args.max_texts else ""
    extra_rows = "\n".join(
        f"| {name} (held-out part) | {m['n']:,} | {m['accuracy']:.4f} | `python train/sentiment.py evaluate --weights {weights} --data {name}` |"
        for name, m in metrics.get("extra", {}).items()
    )
    backwards = (", from its last token to its first: a backward model, which ULMFiT averages with a forward one; "
                 "`python train/sentiment.py evaluate --weights FORWARD BACKWARD` scores the pair") if cfg.backwards else ""
    return f"""---
library_name: fastai-part2-demos
license: mit
language: [en]
tags: [text-classification, sentiment-analysis, awd-lstm, ulmfit, fastai-part2, pytorch_model_hub_mixin]
datasets: [imdb]
metrics: [accuracy]
---
# Lesson 10 · ULMFiT sentiment classifier{', backward' if cfg.backwards else ''} ({facts['n_params'] / 1e6:.1f}M parameters)

An AWD-LSTM encoder ({enc.n_layers} layers, embedding {enc.emb_dim}, hidden {enc.hidden_dim}, vocabulary {len(enc.vocab)}) read over
the whole text (up to {cfg.max_len} tokens{backwards}), concat pooling [last, max, mean], then BatchNorm/dropout/linear
layers ({cfg.head_hidden} hidden) to {len(cfg.classes)} classes ({', '.join(cfg.classes)}). `dl_core/ulmfit/model.py`; weights in fp16.
Encoder initialised from: {facts['init']}.

## Data
{facts['data']} ({args.data}): {facts['n_train']:,} training texts, {facts['n_valid']:,} for validation (seeded, seed {args.seed}).
Tokens: spaCy `blank("en")` with fastai's rules (`dl_core/text.py`, rules version {enc.rules_version}); {facts['unknown_share']:.1%} of the
training tokens are outside the vocabulary (`<unk>`).

## Metrics
| data | texts | accuracy | reproduce with |
|---|---|---|---|
| {facts['data']} held-out part | {metrics['heldout']['n']:,} | **{metrics['heldout']['accuracy']:.4f}** | `python train/sentiment.py evaluate --weights {weights} --data {args.data}{limit}` |
{extra_rows}

{(args.card_note + chr(10) + chr(10)) if args.card_note else ""}## Training
{_lineage_section(metrics.get("lineage", []), facts["seconds"])}```
{args.command_line}
```
{len(history)} epochs, {facts['seconds'] / 60:.1f} minutes on {facts['hardware']}{' (stopped by its time budget)' if facts.get('cut_short') else ''};
AdamW (betas 0.8/0.99, weight decay {args.wd}), batch {args.bs}, texts cut at {args.train_max_len} tokens for training.
{facts['recipe']}

| epoch | train loss | valid loss | valid accuracy | trainable groups | seconds |
|---|---|---|---|---|---|
{rows}
"""


def cmd_train(args) -> None:
    if args.init_classifier and args.from_scratch:
        raise SystemExit("--init-classifier and --from-scratch contradict each other: pick one")
    accelerator = make_accelerator(args.mixed_precision)
    set_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls outside autocast may use TF32 tensor cores
    model, train_dl, valid_dl, data, facts = build(args, accelerator)
    groups = model.layer_groups()  # embedding, LSTM 1..n, head
    budget = WallClockBudget(args.time_budget) if args.time_budget else None
    progress_fn = budget.progress if budget else None
    if args.from_scratch:  # nothing pretrained to protect: all groups at one LR from the start
        schedule = slanted_triangular(args.lr)
        stages, decay = [(0.0, len(groups))], 1.0
        recipe = f"From scratch: every layer trained from the start, one slanted triangular LR (max {args.lr})."
    else:
        plan = unfreezing_recipe(len(groups), args.lr, args.unfreeze_fraction, args.lr_decay)
        schedule, stages, decay, recipe = plan.schedule, plan.stages, plan.decay, plan.describe()
    callbacks = [
        Recorder(), ProgressBar(), GradientClip(args.clip), ValidAccuracy(),
        ParamSchedule(lr=budget.schedule(schedule) if budget else schedule),
        GradualUnfreezing(groups, stages, progress_fn),
    ]
    if budget:
        callbacks.append(budget)
    if args.checkpoint:
        callbacks.append(Checkpoint(args.checkpoint, resume=args.resume))
    if args.max_steps:
        callbacks.append(StopAfter(args.max_steps))
    opt_fn = discriminative_optimizer(groups, decay=decay, betas=(0.8, 0.99), weight_decay=args.wd)
    learn = Learner(model, train_dl, valid_dl, classifier_loss, lr=args.lr, opt_fn=opt_fn, callbacks=callbacks,
                    accelerator=accelerator)
    n_params = sum(p.numel() for p in model.parameters())
    if accelerator.is_main_process:
        print(f"model: {n_params / 1e6:.2f}M parameters; {learn.n_batches} batches per epoch on "
              f"{accelerator.num_processes} process(es), device {accelerator.device}")
    t0 = time.perf_counter()
    learn.fit(args.epochs)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    for param in model.parameters():
        param.requires_grad_(True)  # leave no group frozen in the saved model
    history = learn.get(Recorder).history
    model = learn.unwrapped_model.eval()
    t1 = time.perf_counter()
    heldout = data.parts["heldout"].sample(args.max_texts, args.seed)
    metrics = {"heldout": accuracy_on(model, heldout, batch_size=args.bs * 4)}
    for extra in args.extra_eval:
        metrics.setdefault("extra", {})[extra] = accuracy_on(model, load_data(extra, args).parts["heldout"], batch_size=args.bs * 4)
    print(f"trained in {(t1 - t0) / 60:.1f} min; evaluated in {time.perf_counter() - t1:.0f}s")
    print(json.dumps(metrics))
    if args.out:
        model = model.cpu().float()
        facts.update(n_params=n_params, seconds=sum(h["seconds"] for h in history), hardware=hub.describe_hardware(),
                     config=model.config, cut_short=bool(budget and budget.cut_short), recipe=recipe, command=args.command_line)
        if args.init_classifier:
            metrics["lineage"] = training_lineage(args.init_classifier)
        card = model_card(args, facts, metrics, history)
        hub.save_and_push(model, args.out, card, {**metrics, "history": history, "facts": {k: v for k, v in facts.items() if k != "config"}},
                          args.push_to_hub)


def cmd_evaluate(args) -> None:
    models = [hub.load_model(TextClassifier, folder) for folder in args.weights]
    try:
        check_ensemble(models)
    except ValueError as err:
        raise SystemExit(f"{' '.join(args.weights)}: {err}") from err
    if torch.cuda.is_available():
        models = [m.cuda() for m in models]
    data = load_data(args.data, args)
    parts = [data.parts["heldout"]] if args.split == "heldout" else [data.parts[n] for n in ("train", "heldout")]
    split = TokenizedSplit(TokenizedCorpus.concat([p.corpus for p in parts]), np.concatenate([p.labels for p in parts]))
    split = split.sample(args.limit, args.seed)
    t0 = time.perf_counter()
    result = accuracy_on(models, split)
    print(f"{data.name}: {result['n']} texts classified in {time.perf_counter() - t0:.1f}s "
          f"({result['n_cut']} cut at {models[0].config.max_len} tokens)", file=sys.stderr)
    for folder, accuracy in zip(args.weights, result.get("members", [])):
        print(f"  {folder} alone: {accuracy}", file=sys.stderr)
    if args.write and len(models) > 1:  # the ensemble's score, kept beside the last member (the app shows it)
        record = {"members": args.weights, "data": data.name, "split": args.split, "accuracy": result["accuracy"],
                  "n": result["n"], "member_accuracy": result["members"]}
        metrics_file = Path(args.weights[-1]) / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        metrics["ensemble"] = record
        metrics_file.write_text(json.dumps(metrics, indent=1))
        print(f"wrote the ensemble's accuracy to {metrics_file}", file=sys.stderr)
    print(json.dumps({"accuracy": result["accuracy"], "n": result["n"]}))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def data_args(p, required=False):
        p.add_argument("--data", default=None if required else str(DEFAULT_DATA), required=required,
                       help="aclImdb tar.gz or folder, CSV (label,text), or rt-polarity .pos/.neg")
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--cache-dir", default="data/cache", help="token cache folder ('' for none)")
        p.add_argument("--workers", type=int, default=None, help="tokenising processes (default: all CPUs; 0: none)")

    train = sub.add_parser("train", help="train, evaluate, save (and push) the classifier")
    data_args(train)
    train.add_argument("--lm", help="weight folder of the fine-tuned LM (train/lm.py): its encoder and vocabulary")
    train.add_argument("--init-classifier", metavar="DIR",
                       help="start from this trained classifier (encoder and head; e.g. the IMDB one, to fine-tune it on rt-polarity)")
    train.add_argument("--from-scratch", action="store_true",
                       help="random encoder (the LM's vocabulary and sizes if --lm is given): the no-pretraining baseline")
    train.add_argument("--valid-fraction", type=float, default=0.04, help="share of the training texts used for validation")
    train.add_argument("--max-texts", type=int, default=0, help="a seeded N of the training and of the held-out texts (quick runs, tests)")
    train.add_argument("--max-vocab", type=int, default=14_000, help="without --lm: vocabulary size")
    train.add_argument("--min-freq", type=int, default=3, help="without --lm: minimum token count")
    train.add_argument("--emb-dim", type=int, default=256, help="without --lm: encoder sizes")
    train.add_argument("--hidden-dim", type=int, default=512)
    train.add_argument("--n-layers", type=int, default=3)
    for name, default in (("embed-p", 0.05), ("input-p", 0.4), ("weight-p", 0.5), ("hidden-p", 0.3)):
        train.add_argument(f"--{name}", type=float, default=default, help="AWD-LSTM dropout (times --drop-mult)")
    train.add_argument("--head-p", type=float, nargs=2, default=(0.4, 0.1), help="head dropouts (times --drop-mult)")
    train.add_argument("--head-hidden", type=int, default=50)
    train.add_argument("--drop-mult", type=float, default=0.5)
    train.add_argument("--backwards", action="store_true",
                       help="the encoder reads each text from its end (ULMFiT's backward model, for a forward+backward ensemble)")
    train.add_argument("--max-len", type=int, default=3000, help="longest text the saved classifier reads (tokens)")
    train.add_argument("--train-max-len", type=int, default=1500, help="texts are cut to this many tokens for training")
    train.add_argument("--bs", type=int, default=64)
    train.add_argument("--epochs", type=int, default=6)
    train.add_argument("--time-budget", type=float, default=0, help="stop after this many seconds of fit (0: no cap)")
    train.add_argument("--lr", type=float, default=1e-2, help="peak LR of the first stage (the head)")
    train.add_argument("--lr-decay", type=float, default=2.6, help="discriminative LRs: factor per layer group down")
    train.add_argument("--unfreeze-fraction", type=float, default=0.1,
                       help="share of training for each of the first three gradual-unfreezing stages")
    train.add_argument("--wd", type=float, default=0.01)
    train.add_argument("--clip", type=float, default=1.0)
    train.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="no")
    train.add_argument("--extra-eval", action="append", default=[], metavar="PATH",
                       help="also report accuracy on this data's held-out part (repeatable)")
    train.add_argument("--out", default="weights/sentiment", help="weight folder to write ('' to skip)")
    train.add_argument("--checkpoint", default="", help="checkpoint file, written after every epoch")
    train.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    train.add_argument("--max-steps", type=int, default=0, help="stop after this many batches (smoke tests)")
    train.add_argument("--push-to-hub", metavar="REPO", help="upload the weight folder to this Hub repo")
    train.add_argument("--card-note", default="", help="a paragraph for the model card, after its metrics")

    evaluate = sub.add_parser("evaluate", help="print accuracy on a data set's held-out part as JSON, last")
    evaluate.add_argument("--weights", required=True, nargs="+", metavar="DIR",
                          help="a classifier folder, or several (an ensemble averaging their probabilities)")
    evaluate.add_argument("--write", action="store_true",
                          help="with several --weights: record the ensemble's accuracy in the last folder's metrics.json")
    data_args(evaluate, required=True)
    evaluate.add_argument("--split", choices=["heldout", "all"], default="heldout",
                          help="'heldout': aclImdb test/, CSV is_valid rows or the seeded 10%%; 'all': every labelled text")
    evaluate.add_argument("--limit", type=int, default=0, help="only a seeded N of the texts")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.command_line = "python train/sentiment.py " + shlex.join(sys.argv[1:] if argv is None else argv)  # for the model card
    {"train": cmd_train, "evaluate": cmd_evaluate}[args.command](args)


if __name__ == "__main__":
    main()
