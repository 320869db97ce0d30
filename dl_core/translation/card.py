"""The translation weight folder's model card (README.md), written entirely from its config.json and metrics.json.

metrics.json holds the scores, the per-epoch history and the run's `facts`: the train command line, its parsed
arguments, the number of pairs, the hardware (and an optional note). The train command writes them all;
`rewrite_card(folder, ...)` renders the card again from the folder alone (python train/translate.py card).
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Callable

import torch

from dl_core import hub
from dl_core.paths import display_path
from dl_core.translation.model import Seq2Seq, Seq2SeqConfig

SCRIPT = "python train/translate.py"
# argparse's bookkeeping, not settings of the run
_NOT_ARGS = {"run", "command", "command_line"}
_DATA_ARGS = ("data", "ood_data", "extra_train", "extra_valid", "init")


def train_args(args: argparse.Namespace) -> dict:
    """A train command's parsed arguments, as metrics.json records them: data under the data root as
    `../shared/data/...` (dl_core.paths.display_path), so that the record reads the same on every machine."""
    recorded = {key: value for key, value in vars(args).items() if key not in _NOT_ARGS}
    for key in _DATA_ARGS:
        value = recorded.get(key)
        if isinstance(value, list):
            recorded[key] = [display_path(v) for v in value]
        elif value:
            recorded[key] = display_path(value)
    return recorded


def train_facts(args: argparse.Namespace, n_pairs: int) -> dict:
    """metrics.json's record of a train run: what the card says about data, recipe and hardware."""
    return {
        "command": args.command_line,
        "args": train_args(args),
        "n_pairs": n_pairs,
        "hardware": hub.describe_hardware(),
    }


def lineage(init_folder: str | Path) -> list[dict]:
    """The runs that made the folder a train run started from (`--init`): its own lineage, then its run, with
    the scores it had, so that a card can show the model before and after."""
    metrics_file = Path(init_folder) / "metrics.json"
    if not metrics_file.is_file():
        return []
    metrics = json.loads(metrics_file.read_text())
    facts = metrics.get("facts", {})
    command = facts.get("command", "")
    if command and "extra_train" not in facts.get("args", {}):
        # recorded before Multi30k joined the training data by default: these flags keep the command's meaning
        command += " --extra-train --extra-valid"
    run = {"command": command, "epochs": len(metrics.get("history", [])),
           "seconds": round(sum(h["seconds"] for h in metrics.get("history", [])), 1), "hardware": facts.get("hardware", "?"),
           **{key: metrics[key] for key in ("heldout", "multi30k") if key in metrics}}
    return [*metrics.get("lineage", []), run]


# What the model gets wrong, with sentences to try: the card and the tab's panel show the same list.
WEAKNESSES_FILE = Path(__file__).with_name("weaknesses.md")


def n_parameters(config: Seq2SeqConfig) -> int:
    with torch.device("meta"):  # shapes only: nothing is allocated or initialised
        return sum(p.numel() for p in Seq2Seq(config).parameters())


def _history_rows(history: list[dict]) -> str:
    return "\n".join(
        f"| {h['epoch'] + 1} | {h['train_loss']:.3f} | {h['valid_loss']:.3f} | {h.get('teacher_forcing', 1.0):.2f} | {h['seconds']:.0f} |"
        for h in history
    )


FAST_PRECISIONS = ("bf16", "int8")  # what `evaluate --precision P --write` records beside the fp32 scores


def record_precision(folder: str | Path, precision: str, key: str, scores: dict, command: str) -> Path:
    """Keep a score decoded in another precision (`evaluate --precision int8 --write`) in metrics.json's
    [precision][key], beside the fp32 one under `key`."""
    if precision not in FAST_PRECISIONS:
        raise ValueError(f"only {' and '.join(FAST_PRECISIONS)} scores are recorded beside fp32's, not {precision!r}")
    metrics_file = Path(folder) / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics.setdefault(precision, {})[key] = {**scores, "command": command}
    metrics_file.write_text(json.dumps(metrics, indent=1))
    return metrics_file


def _precision_section(metrics: dict) -> str:
    """What decoding in bf16 or int8 (the tab's faster paths) costs, from evaluate --precision P --write."""
    recorded = [p for p in FAST_PRECISIONS if metrics.get(p)]
    rows = []
    for key, label in (("heldout", "Tatoeba held-out split"), ("multi30k", "Multi30k test 2016")):
        if key not in metrics or not all(key in metrics[p] for p in recorded):
            continue
        cells = [f"{metrics[key]['bleu']:.2f} / {metrics[key]['chrf']:.2f}"]
        cells += [f"{metrics[p][key]['bleu']:.2f} / {metrics[p][key]['chrf']:.2f}" for p in recorded]
        commands = "<br>".join(f"`{metrics[p][key]['command']}`" for p in recorded)
        rows.append(f"| {label} | {' | '.join(cells)} | {commands} |")
    if not rows:
        return ""
    header = " | ".join(f"{p} BLEU / chrF" for p in recorded)
    return f"""
The tab decodes with int8 weights where PyTorch has a quantised engine for the CPU (fbgemm on x86, qnnpack on ARM;
`dl_core.translation.infer.inference_precision`): dynamic quantisation of the GRUs and Linear layers. Batch-1 decoding
is bound by reading the weights, and a quarter of the bytes decode fastest (measured side by side
by `python -m benchmarks.translation_speed`; docs/benchmarks.md has the numbers). What each precision costs:

| data | fp32 BLEU / chrF | {header} | reproduce with |
|---|---|{"---|" * len(recorded)}---|
{chr(10).join(rows)}
"""


def _score_row(label: str, scores: dict, reproduce: str) -> str:
    return f"| {label} | {scores['n']} | {scores['bleu']:.1f} | {scores['chrf']:.1f} | `{reproduce}` |"


def model_card(config: Seq2SeqConfig, metrics: dict, weights: str) -> str:
    """The card of weight folder `weights` (as the commands it quotes should name it, e.g. weights/translation)."""
    facts, history = metrics["facts"], metrics["history"]
    args = facts["args"]
    evaluate = f"{SCRIPT} evaluate --weights {weights} --data"
    extra_train = args.get("extra_train") or []
    rows = [_score_row("Tatoeba held-out split", metrics["heldout"], f"{evaluate} {args['data']} --split valid")]
    if "multi30k" in metrics:
        ood = args["ood_data"]
        where = "its train split in training" if extra_train else "out of domain"
        rows.append(_score_row(f"Multi30k {Path(ood).name} ({where})", metrics["multi30k"], f"{evaluate} {ood}"))
    runs = metrics.get("lineage", [])
    before = ""
    if runs and "heldout" in runs[-1]:
        old = runs[-1]
        cells = lambda key: (f"{old[key]['bleu']:.1f} | {old[key]['chrf']:.1f} | {metrics[key]['bleu']:.1f} | {metrics[key]['chrf']:.1f}"
                             if key in old and key in metrics else "– | – | – | –")
        before = f"""
Before and after this run (the model it started from, `--init`, against this one; same splits):

| data | BLEU before | chrF before | BLEU after | chrF after |
|---|---|---|---|---|
| Tatoeba held-out split | {cells("heldout")} |
| Multi30k test 2016 | {cells("multi30k")} |
"""
    earlier = "".join(f"\n```\n{run['command']}\n```\n{run['epochs']} epochs, {run['seconds'] / 60:.1f} minutes on {run['hardware']}; then\n"
                      for run in runs)
    seconds = sum(h["seconds"] for h in history)  # includes the epochs before a resume
    note = f"\n{facts['note']}" if facts.get("note") else ""
    layers = config.n_layers
    licence = "license: other\nlicense_name: non-commercial research and education (Multi30k)" if extra_train else "license: cc-by-2.0"
    datasets = "[tatoeba, multi30k]" if extra_train else "[tatoeba]"
    return f"""---
library_name: fastai-part2-demos
{licence}
language: [fr, en]
tags: [translation, seq2seq, attention, fastai-part2, pytorch_model_hub_mixin]
datasets: {datasets}
metrics: [bleu, chrf]
---
# Lesson 11 · French → English translation (bi-GRU encoder + additive attention)

A {n_parameters(config) / 1e6:.1f}M-parameter sequence-to-sequence model from the fast.ai 2018 Part 2 lesson 11
(`dl_core/translation/model.py`):
a {layers}-layer bidirectional GRU encoder ({config.enc_hidden} units per direction over {config.emb_dim}-dimensional embeddings),
a {layers}-layer GRU decoder ({config.dec_hidden} units) with additive (Bahdanau) attention ({config.attn_dim} dimensions),
teacher forcing scheduled per epoch, and an output layer tied to the decoder embedding.
Dropout: {config.emb_dropout} on the embeddings, {config.rnn_dropout} between GRU layers, {config.out_dropout} before the output layer.
The encoder reads at most {config.max_src_len} tokens, the decoder writes at most {config.max_out_len}.
Weights are stored in fp16 (loaded back as fp32).

## Data
Tatoeba French–English pairs (`{Path(args['data']).name if args.get('data') else "fra.txt"}`) via manythings.org — CC-BY 2.0 FR,
credit tatoeba.org. {metrics['heldout']['n']} pairs were held out by **whole French sentence** (seed {args['seed']}),
so no validation source sentence is seen in training.{_extra_data(args)} {facts['n_pairs']} pairs in all.
Tokens: spaCy `blank("fr")` / `blank("en")`, cased, words seen at least {args['min_freq']} times
(vocab: French {len(config.src_vocab)}, English {len(config.tgt_vocab)}).

## Metrics (cased sacreBLEU 13a on detokenised greedy output, one reference per pair)
| data | pairs | BLEU | chrF | reproduce with |
|---|---|---|---|---|
{chr(10).join(rows)}

Scored at the end of training, before the weights were stored in fp16; `evaluate` on the stored weights can
differ in the second decimal.{_multi30k_note(extra_train)}
{_precision_section(metrics)}{before}
## Where this model is weak
{WEAKNESSES_FILE.read_text(encoding='utf-8').strip()}

## Training
{earlier}```
{facts['command']}
```
{len(history)} epochs, {seconds / 60:.1f} minutes on {facts['hardware']}; AdamW (weight decay {args['wd']}), 1cycle LR (max {args['lr']}),
gradient clipping {args['clip']}, label smoothing {args['label_smoothing']}, batch {args['bs']}. Teacher forcing falls from 1.0
to a floor of {args['teacher_forcing_floor']} (`--teacher-forcing-floor`; the lesson goes down to 0).{note}

| epoch | train loss | valid loss | teacher forcing | seconds |
|---|---|---|---|---|
{_history_rows(history)}

## Use
```python
from dl_core.hub import load_model
from dl_core.translation.model import Seq2Seq
from dl_core.translation.infer import Translator
translator = Translator(load_model(Seq2Seq, "{weights}"))
print(translator.greedy(translator.source("Je suis content.")).text)
```
"""


def _extra_data(args: dict) -> str:
    extra_train, extra_valid = args.get("extra_train") or [], args.get("extra_valid") or []
    if not extra_train:
        return ""
    names = ", ".join(f"`{Path(p).name}`" for p in extra_train)
    valid = f"; {', '.join(f'`{Path(p).name}`' for p in extra_valid)} joined the validation loss" if extra_valid else ""
    return (f" Also Multi30k (image captions: Elliott et al. 2016; Flickr30k) {names} pairs in training{valid}; "
            "its test 2016 split is never trained on.")


def _multi30k_note(extra_train: list) -> str:
    if extra_train:
        return ("\nMulti30k is licensed for non-commercial research and education only, so these weights, trained on it, "
                "are too.")
    return ("\nMulti30k (image captions) is out of domain: Tatoeba is short everyday sentences. Multi30k is licensed for "
            "non-commercial research and education; it is used here only to report a number.")


def _find(pattern: str, text: str, what: str) -> str:
    found = re.search(pattern, text, re.DOTALL)
    if not found:
        raise ValueError(f"the old model card does not say {what}: add `facts` to metrics.json by hand")
    return found.group(1)


def facts_from_old_card(card: str) -> dict:
    """What cards written before metrics.json had `facts` kept only in their text: the train command (the
    first code block of the Training section), the number of pairs, the hardware and the note after the
    recipe. Read once, by `rewrite_card`, to complete such a folder's metrics.json."""
    training = card.partition("## Training")[2]
    command = hub.recorded_train_command(card)
    if command is None:
        raise ValueError("the old model card does not say the train command: add `facts` to metrics.json by hand")
    facts = {
        "command": command,
        "n_pairs": int(_find(r"(?:\(`[^`]*`, |\. )(\d+) pairs(?:\)| in all)", card, "the number of pairs")),
        "hardware": " ".join(_find(r"minutes on (.+?); AdamW", training, "the hardware").split()),
    }
    note = " ".join(_find(r"the lesson goes down to 0\)\.(.*?)\n\n", training, "where the recipe ends").split())
    if note:
        facts["note"] = note
    return facts


def rewrite_card(folder: str | Path, parse_command: Callable[[str], dict]) -> str:
    """Render `folder`'s README.md from its config.json and metrics.json and write it; returns the card.

    A folder whose metrics.json has no `facts` yet gets them first, from its old card, with the arguments of
    its recorded train command as `parse_command(command)` reads them (the train script's own parser)."""
    folder = Path(folder)
    metrics_file = folder / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    if "facts" not in metrics:
        facts = facts_from_old_card((folder / "README.md").read_text())
        metrics["facts"] = {"command": facts["command"], "args": parse_command(facts["command"]), **facts}
        metrics_file.write_text(json.dumps(metrics, indent=1))  # as hub.save_model writes it
    config = Seq2SeqConfig(**json.loads((folder / "config.json").read_text()))
    card = model_card(config, metrics, f"weights/{folder.name}")
    (folder / "README.md").write_text(card)
    return card
