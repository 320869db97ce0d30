"""Lesson 10 model cards (the language model, the classifiers), written entirely from a folder's config.json and
metrics.json:

    python train/lm.py card --weights weights/sentiment-lm          # rewrite that folder's README.md
    python train/sentiment.py card --weights weights/sentiment-bwd

What metrics.json holds beyond the scores: "train_args" (the training run's flags and command line), "history",
"facts" (data sizes, time, hardware, init), "lineage" (the runs a classifier was trained on from), "commands"
(what reproduces each score), "notes" (paragraphs a run was given with --card-note), "storage" (written by
`python -m dl_core.hub int8`), "ensemble" (written by `train/sentiment.py evaluate --write` with several
folders, McNemar included) and "baselines" (written by `python -m benchmarks.sentiment_baselines --write`).
Folders written before those keys existed are completed once by `complete_*_metrics`, from their old card.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Callable

from dl_core import hub
from dl_core.metrics import format_p
from dl_core.ulmfit.evaluate import order_ensemble
from dl_core.ulmfit.model import AWDLSTMConfig, ClassifierConfig
from dl_core.ulmfit.nbsvm import NBSVM

FRONT_MATTER = """---
library_name: fastai-part2-demos
license: mit
language: [en]
tags: [{tags}, fastai-part2, pytorch_model_hub_mixin]
{datasets}metrics: [{metric}]
---
"""


# --- pieces both cards share ---------------------------------------------------------------------------------
def storage_sentence(metrics: dict) -> str:
    storage = metrics.get("storage")
    if not storage:
        return "Weights in fp16."
    return (f"Weights stored as int8 (one fp32 scale per matrix row, vectors in fp16; `{storage['command']}` turned the "
            f"fp16 folder the training run wrote into this one).")


def storage_line(metrics: dict) -> str:
    """The int8 command under the training command, with the file sizes before and after."""
    storage = metrics.get("storage")
    if not storage:
        return ""
    sizes = (f"   # fp16 {storage['bytes_before'] / 1e6:.1f} MB -> int8 {storage['bytes_after'] / 1e6:.1f} MB"
             if "bytes_before" in storage else "")
    return f"\n{storage['command']}{sizes}"


def notes(metrics: dict) -> str:
    return "".join(f"{paragraph}\n\n" for paragraph in metrics.get("notes", []))


def time_line(metrics: dict) -> str:
    facts = metrics["facts"]
    cut = " (stopped by its time budget)" if facts.get("cut_short") else ""
    return f"{len(metrics['history'])} epochs, {facts['seconds'] / 60:.1f} minutes on {facts['hardware']}{cut};"


# --- language model -----------------------------------------------------------------------------------------
def lm_card(config: AWDLSTMConfig, metrics: dict) -> str:
    facts, args, valid = metrics["facts"], metrics["train_args"], metrics["valid"]
    rows = "\n".join(f"| {h['epoch'] + 1} | {h['train_loss']:.3f} | {h['valid_loss']:.3f} | "
                     f"{math.exp(min(h['valid_loss'], 50)):.1f} | {h['seconds']:.0f} |" for h in metrics["history"])
    backwards = ("\nIt reads **backwards**: trained on each text reversed, it predicts a word from the words after it. It is the "
                 "start of ULMFiT's backward classifier (`train/sentiment.py train --lm THIS --backwards`).") if config.backwards else ""
    frozen = (f"; only the embedding/decoder trained for the first {args['frozen_fraction']:.0%}"
              if args.get("init") and args.get("frozen_fraction") else "")
    front = FRONT_MATTER.format(tags="text-generation, language-model, awd-lstm, ulmfit", datasets="", metric="perplexity")
    return f"""{front}# Lesson 10 · AWD-LSTM language model ({facts['n_params'] / 1e6:.1f}M parameters)

A {config.n_layers}-layer AWD-LSTM (embedding {config.emb_dim}, hidden {config.hidden_dim}, vocabulary {len(config.vocab)}, decoder tied
to the embedding) from the fast.ai 2018 Part 2 lesson 10 / ULMFiT (`dl_core/ulmfit/model.py`). {storage_sentence(metrics)}{backwards}
Initial weights: {metrics.get('init_detail') or facts['init'] + '.'}

## Data
{facts['data']}: {facts['n_train_texts']:,} texts ({facts['n_train_tokens']:,} tokens) for training, {facts['n_valid_texts']:,} held out
({facts['n_valid_tokens']:,} tokens; seeded document split, seed {args['seed']}). Tokens: spaCy `blank("en")` with fastai's rules
(`dl_core/text.py`, rules version {config.rules_version}: xxmaj, xxup, xxrep, xxwrep, lower case).

{notes(metrics)}## Metrics
| data | tokens | perplexity | reproduce with |
|---|---|---|---|
| held-out texts | {valid['n_tokens']:,} | {valid['perplexity']:.1f}{_perplexity_before_int8(metrics)} | `{metrics['commands']['valid']}` |

## Training
{metrics.get('training_note', '')}```
{args['command_line']}{storage_line(metrics)}
```
{time_line(metrics)}
AdamW (betas 0.8/0.99, weight decay {args['wd']}), slanted triangular LR (max {args['lr']}), batch {args['bs']} x BPTT ~{args['bptt']},
gradient clipping {args['clip']}, dropouts x{args['drop_mult']} (embedding {config.embed_p:.3f}, input {config.input_p:.3f}, weight {config.weight_p:.3f},
hidden {config.hidden_p:.3f}, output {config.output_p:.3f}){frozen}.

| epoch | train loss | valid loss | valid perplexity | seconds |
|---|---|---|---|---|
{rows}
"""


def _perplexity_before_int8(metrics: dict) -> str:
    before = metrics.get("storage", {}).get("perplexity_before_int8")
    return f" (fp16 before int8 storage: {before:.2f})" if before is not None else ""


# --- classifier ---------------------------------------------------------------------------------------------
# Where the tab's classifiers go wrong, with texts to try: the classifier cards and the tab's panel show it.
WEAKNESSES_FILE = Path(__file__).with_name("weaknesses.md")
DATASET_IDS = {"aclImdb": "imdb", "rt-polarity": "rotten_tomatoes"}  # the Hub's names of the data sets


def app_section(metrics: dict) -> str:
    """What the tab predicts, scored (`train/sentiment.py evaluate --app --write`): each text read by the classifiers
    its length picks."""
    app = metrics.get("app")
    if not app:
        return ""
    rows = []
    for name, r in app.items():
        readers = "; ".join(f"{part['n']:,} by {part['what']}: {part['accuracy']:.4f}" for part in r["readers"].values())
        rows.append(f"| {name} {'held-out part' if r['split'] == 'heldout' else 'all texts'} | {r['n']:,} | **{r['accuracy']:.4f}** | "
                    f"{readers} | `{r['command']}` |")
    words = next((r["short_max_words"] for r in app.values() if "short_max_words" in r), None)
    rule = (f"texts of at most {words} words go to the one-liner pair (a classifier trained on rt-polarity's one-line reviews "
            "and an NBSVM), longer ones to the forward and backward classifiers trained on whole IMDB reviews; each "
            "reader averages its models' probabilities" if words else "every text goes to the IMDB classifiers")
    return f"""## What the tab predicts
The sentiment tab reads a text with the classifiers its length picks: {rule} (`dl_core/ulmfit/infer.py`).

| data | texts | accuracy | by reader | reproduce with |
|---|---|---|---|---|
{chr(10).join(rows)}

"""


def weaknesses_section() -> str:
    return f"## Where these models are weak\n{WEAKNESSES_FILE.read_text(encoding='utf-8').strip()}\n\n" if WEAKNESSES_FILE.is_file() else ""

def _recorded_command(folder: Path, metrics: dict) -> str:
    """The command that trained a folder: metrics.json has it since lineages exist; an older folder's model card
    has it as the first code block of its Training section (its first line)."""
    command = metrics.get("train_args", {}).get("command_line") or metrics.get("facts", {}).get("command")
    if command:
        return command
    card = (folder / "README.md").read_text() if (folder / "README.md").exists() else ""
    return (hub.recorded_train_command(card) or "(not recorded)").splitlines()[0]


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


def _before_int8(metrics: dict, key: str) -> str:
    before = metrics.get("storage", {}).get("accuracy_before_int8", {})
    if key not in before:
        return ""
    return f" (fp16 before int8 storage: {before[key]:.4f})" if key == "heldout" else f" (fp16: {before[key]:.4f})"


def ensemble_section(metrics: dict) -> str:
    """The forward + backward ensemble's scores and McNemar's test against each member, as evaluate --write
    recorded them."""
    ensemble = metrics.get("ensemble")
    if not ensemble:
        return ""
    names = [Path(m).name for m in ensemble["members"]]
    records = [(f"{ensemble['data']} held-out part", ensemble), *((f"{name} held-out part", r) for name, r in ensemble.get("extra", {}).items())]
    rows = "\n".join(
        f"| {label} | {r['n']:,} | " + " | ".join(f"{a:.4f}" for a in r["member_accuracy"]) + f" | **{r['accuracy']:.4f}** | `{r['command']}` |"
        for label, r in records)
    tests = []
    for name, alone, test in zip(names, ensemble["member_accuracy"], ensemble.get("mcnemar", [])):
        gain = (ensemble["accuracy"] - alone) * 100
        tests.append(f"against `{name}` alone, the pair is right where it is wrong on {test['b']} texts and wrong where it is "
                     f"right on {test['c']} ({gain:+.2f} points, McNemar z = {test['z']:.2f}, {format_p(test['p'])})")
    mcnemar = f"\n\nOn the {ensemble['n']:,} {ensemble['data']} texts, {'; '.join(tests)}." if tests else ""
    mcnemar += "\n\n"
    title = ("The forward + backward ensemble" if all("nbsvm" not in n for n in names)
             else "The one-liner pair: a network and an NBSVM")
    return f"""## {title} (one of the tab's two readers)
The sentiment tab averages the probabilities of {' and '.join(f'`{m}`' for m in ensemble['members'])}:

| data | texts | {' | '.join(f'{name} alone' for name in names)} | **ensemble** | reproduce with |
|---|---|{'---|' * len(names)}---|---|
{rows}{mcnemar}`evaluate --write` records these numbers in each member's metrics.json (`ensemble`); the tab's model facts show them.

"""


def baselines_section(metrics: dict) -> str:
    baselines = metrics.get("baselines")
    if not baselines:
        return ""
    rows = "\n".join(f"| {r['model']} | {r['data']} | {r['n_test']:,} | {r['accuracy']:.4f} |" for r in baselines["results"])
    return f"""## Baselines (no neural network)
Bag-of-words models on the same splits (`{baselines['command']}`):

| model | data | test texts | accuracy |
|---|---|---|---|
{rows}

"""


@hub.ends_with_fast_path_section
def classifier_card(config: ClassifierConfig, metrics: dict) -> str:
    facts, args, heldout = metrics["facts"], metrics["train_args"], metrics["heldout"]
    enc = config.encoder
    rows = "\n".join(f"| {h['epoch'] + 1} | {h['train_loss']:.3f} | {h['valid_loss']:.3f} | {h.get('accuracy', float('nan')):.3f} | "
                     f"{h.get('trainable_groups', '')} | {h['seconds']:.0f} |" for h in metrics["history"])
    commands = metrics["commands"]
    extra_rows = "".join(f"\n| {name} held-out part | {m['n']:,} | {m['accuracy']:.4f}{_before_int8(metrics, name)} | `{commands[name]}` |"
                         for name, m in metrics.get("extra", {}).items())
    backwards = (", from its last token to its first: a backward model, which ULMFiT averages with a forward one; "
                 "`python train/sentiment.py evaluate --weights FORWARD BACKWARD` scores the pair") if config.backwards else ""
    dataset = DATASET_IDS.get(facts["data"], "imdb")
    front = FRONT_MATTER.format(tags="text-classification, sentiment-analysis, awd-lstm, ulmfit", datasets=f"datasets: [{dataset}]\n", metric="accuracy")
    return f"""{front}# Lesson 10 · ULMFiT sentiment classifier{', backward' if config.backwards else ''} ({facts['n_params'] / 1e6:.1f}M parameters)

An AWD-LSTM encoder ({enc.n_layers} layers, embedding {enc.emb_dim}, hidden {enc.hidden_dim}, vocabulary {len(enc.vocab)}) read over
the whole text (up to {config.max_len} tokens{backwards}), concat pooling [last, max, mean], then BatchNorm/dropout/linear
layers ({config.head_hidden} hidden) to {len(config.classes)} classes ({', '.join(config.classes)}). `dl_core/ulmfit/model.py`. {storage_sentence(metrics)}
Encoder initialised from: {metrics.get('init_detail') or facts['init'] + '.'}

## Data
{facts['data']} ({args['data']}): {facts['n_train']:,} training texts, {facts['n_valid']:,} for validation (seeded, seed {args['seed']}).
Tokens: spaCy `blank("en")` with fastai's rules (`dl_core/text.py`, rules version {enc.rules_version}); {facts['unknown_share']:.1%} of the
training tokens are outside the vocabulary (`<unk>`).

## Metrics
| data | texts | accuracy | reproduce with |
|---|---|---|---|
| {facts['data']} held-out part | {heldout['n']:,} | **{heldout['accuracy']:.4f}**{_before_int8(metrics, 'heldout')} | `{commands['heldout']}` |{extra_rows}

{app_section(metrics)}{ensemble_section(metrics)}{baselines_section(metrics)}{notes(metrics)}{weaknesses_section()}## Training
{_lineage_section(metrics.get("lineage", []), facts["seconds"])}```
{args['command_line']}{storage_line(metrics)}
```
{metrics.get('training_note', '')}{time_line(metrics)}
AdamW (betas 0.8/0.99, weight decay {args['wd']}), batch {args['bs']}, texts cut at {args['train_max_len']} tokens for training.
{facts['recipe']}

| epoch | train loss | valid loss | valid accuracy | trainable groups | seconds |
|---|---|---|---|---|---|
{rows}
"""


def nbsvm_card(model: NBSVM, metrics: dict) -> str:
    """The card of an NBSVM folder (`train/sentiment.py nbsvm`): data, scores, its strongest n-grams, the command."""
    facts, args, commands = metrics["facts"], metrics["train_args"], metrics["commands"]
    score_rows = [(f"{facts['data']} held-out part", metrics["heldout"], commands["heldout"]),
                  (f"{facts['data']} validation split (the classifiers'; not trained on)", metrics["valid"], commands["valid"]),
                  *((f"{Path(name).name.split('.')[0]} held-out part", m, commands[name]) for name, m in metrics.get("extra", {}).items())]
    rows = "\n".join(f"| {label} | {m['n']:,} | **{m['accuracy']:.4f}** | {m['log_loss']:.4f} | `{command}` |"
                     for label, m, command in score_rows)
    weight = model.weight.detach()
    order = weight.argsort()
    strongest = lambda ids: ", ".join(f"`{model.config.ngrams[i]}` {float(weight[i]):+.2f}" for i in ids)
    train_texts = " + ".join(f"{n:,} {name}" for name, n in facts["train_texts"].items())
    datasets = ", ".join(sorted({DATASET_IDS.get(name, name) for name in facts["train_texts"]}))
    front = FRONT_MATTER.format(tags="text-classification, sentiment-analysis, nbsvm", datasets=f"datasets: [{datasets}]\n",
                                metric="accuracy")
    return f"""{front}# Lesson 10 · NBSVM sentiment baseline ({len(model.config.ngrams):,} n-grams)

NBSVM (Wang & Manning 2012, "Baselines and bigrams"): the binarised uni- and bigrams of a text (lower-cased words), each
scaled by its naive Bayes log-count ratio, under a logistic regression (C = {model.config.C}); stored as one weight per
n-gram (w x r), so the log-odds of "positive" is the bias ({float(model.bias.detach()):+.3f}) plus the weights of the n-grams present.
`dl_core/ulmfit/nbsvm.py`. The sentiment tab averages it with the one-line classifier `weights/sentiment-rt` for texts
of up to 64 words. Weights in fp32; the n-grams are in config.json.

## Data
Trained on {train_texts} texts ({facts['n_train']:,} in all): rt-polarity's training part without the {facts['n_valid']:,}
texts the classifiers validate on (seeded, seed {args['seed']}), and IMDB's labelled training reviews, so that words
one-line reviews rarely use are known. The {facts['n_features']:,} most frequent n-grams are the features.

## Metrics
| data | texts | accuracy | log-loss | reproduce with |
|---|---|---|---|---|
{rows}

The n-grams pushing hardest towards **positive**: {strongest(order[-12:].flip(0).tolist())}.
Towards **negative**: {strongest(order[:12].tolist())}.

{app_section(metrics)}{ensemble_section(metrics)}{weaknesses_section()}## Training
```
{args['command_line']}
```
{facts['seconds']:.0f} seconds on {facts['hardware']} (reading the tokenised texts from the cache and fitting).
"""


# --- writing a folder's card, completing an older folder's metrics.json once -----------------------------------
def write_card(folder: str | Path, parse_train_command: Callable[[str], dict]) -> str:
    """Complete the folder's metrics.json (once, for folders older than its keys) and rewrite its README.md from
    it and config.json; model.safetensors and config.json are not touched. A language model's folder or a
    classifier's, told apart by its config. `parse_train_command(command_line)` -> that run's flags (the
    script's parser). Returns the card."""
    folder = Path(folder)
    metrics_file = folder / "metrics.json"
    config = json.loads((folder / "config.json").read_text())
    if config.get("kind") == "nbsvm":  # written by train/sentiment.py nbsvm, nothing to complete
        card = nbsvm_card(hub.load_model(NBSVM, folder), json.loads(metrics_file.read_text()))
        (folder / "README.md").write_text(card)
        return card
    complete, render = ((complete_classifier_metrics, lambda m: classifier_card(ClassifierConfig.from_dict(config), m))
                        if "encoder" in config else (complete_lm_metrics, lambda m: lm_card(AWDLSTMConfig(**config), m)))
    metrics = complete(folder, json.loads(metrics_file.read_text()), parse_train_command)
    metrics_file.write_text(json.dumps(metrics, indent=1))
    card = render(metrics)
    (folder / "README.md").write_text(card)
    return card


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _section(card: str, heading: str) -> str:
    """The text under `## heading` up to the next `## `."""
    after = card.partition(f"## {heading}\n")[2]
    return after.split("\n## ")[0]


def _table_commands(section: str) -> list[str]:
    """The `reproduce with` commands of a card's metrics table, in row order."""
    return [m[1] for m in re.finditer(r"^\|.*\| `([^`]+)` \|$", section, flags=re.M)]


def complete_lm_metrics(folder: Path, metrics: dict, parse_train_command: Callable[[str], dict]) -> dict:
    """An LM folder's metrics.json with what older ones lack: the train flags (parsed from the command its card
    recorded), the evaluate command of its table, and its card's hand-written paragraphs as notes."""
    metrics = dict(metrics)
    card = (folder / "README.md").read_text() if (folder / "README.md").exists() else ""
    if "train_args" not in metrics:
        metrics["train_args"] = parse_train_command(_recorded_command(folder, metrics))
    if "commands" not in metrics:
        metrics["commands"] = {"valid": (_table_commands(_section(card, "Metrics")) or ["(not recorded)"])[0]}
    if "notes" not in metrics:
        intro = card.partition("\nInitial weights: ")[2].split("\n\n")[0].strip()
        if intro and intro != f"{metrics['facts']['init']}.":
            metrics["init_detail"] = intro
        metrics["notes"] = _paragraphs(_section(card, "Data"))[1:]
    if "training_note" not in metrics:
        before_command = _section(card, "Training").split("```")[0].strip()
        metrics["training_note"] = f"{before_command}\n" if before_command else ""
    return metrics


def complete_classifier_metrics(folder: Path, metrics: dict, parse_train_command: Callable[[str], dict]) -> dict:
    """A classifier folder's metrics.json with what older ones lack: the train flags (parsed from its recorded
    command), the commands of its card's tables, member accuracies of the ensemble's other data sets (from the
    members' metrics.json), storage keys named as the scores they go with, and the card's hand-written
    paragraphs as notes (those the code now writes, the ensemble's and the int8 ones, are left out)."""
    metrics = dict(metrics)
    card = (folder / "README.md").read_text() if (folder / "README.md").exists() else ""
    if "train_args" not in metrics:
        metrics["train_args"] = parse_train_command(_recorded_command(folder, metrics))
    if "commands" not in metrics:
        found = _table_commands(_section(card, "Metrics"))
        metrics["commands"] = dict(zip(["heldout", *metrics.get("extra", {})], found))
    storage = metrics.get("storage")
    if storage:
        extra = list(metrics.get("extra", {}))
        before = storage.get("accuracy_before_int8", {})
        strays = [k for k in before if k != "heldout" and k not in extra]
        if len(strays) == 1 and len(extra) == 1:  # e.g. "rt-polarity": the score of extra's one data set
            before[extra[0]] = before.pop(strays[0])
        if "bytes_before" not in storage:
            storage.update(int8_sizes(folder))
    ensemble = metrics.get("ensemble")
    if ensemble:
        ensemble_rows = _table_commands(_section(card, "The forward + backward ensemble (what the app uses)")  # older cards
                                        or _section(card, "The forward + backward ensemble (one of the tab's two readers)"))
        ensemble.setdefault("command", ensemble_rows[0] if ensemble_rows else "(not recorded)")
        for i, (name, record) in enumerate(list(ensemble.get("extra", {}).items()), 1):
            short = name.split(" (")[0]  # "rt-polarity (held-out 10%, zero-shot)" -> the data set's name
            record.setdefault("command", ensemble_rows[i] if i < len(ensemble_rows) else "(not recorded)")
            if "member_accuracy" not in record:
                record["member_accuracy"] = [_member_extra_accuracy(m, short) for m in ensemble["members"]]
            ensemble["extra"][short] = ensemble["extra"].pop(name)
        metrics["ensemble"] = order_ensemble(_with_members_records(ensemble, folder), metrics.get("facts", {}).get("data"))
    if "notes" not in metrics:
        intro = card.partition("\nEncoder initialised from: ")[2].split("\n\n")[0].strip()
        if intro and intro != f"{metrics['facts']['init']}.":
            metrics["init_detail"] = intro
        metrics["notes"] = _hand_written_paragraphs(card)
    if "training_note" not in metrics:
        training = _section(card, "Training")
        after_command = training.split("```")[2] if training.count("```") >= 2 else ""
        note = after_command.split(f"\n{len(metrics['history'])} epochs")[0]
        note = re.sub(r"\s*The card the run wrote was edited by hand[^.]*\.", "", note).strip()  # code writes it now
        metrics["training_note"] = f"{note}\n" if note else ""
    return metrics


def _with_members_records(ensemble: dict, folder: Path) -> dict:
    """The ensemble record completed with data sets the other members' metrics.json hold for the same ensemble
    (each member keeps the same record; a folder written before that held only some of it)."""
    records = {ensemble["data"]: ensemble, **ensemble.get("extra", {})}
    for member in ensemble["members"]:
        member_file = Path(member) / "metrics.json"
        if Path(member).resolve() == folder.resolve() or not member_file.is_file():
            continue
        theirs = json.loads(member_file.read_text()).get("ensemble") or {}
        if theirs.get("members") != ensemble["members"]:
            continue
        for name, record in {theirs["data"]: theirs, **theirs.get("extra", {})}.items():
            if name not in records:
                ensemble.setdefault("extra", {})[name] = {k: v for k, v in record.items() if k not in ("members", "data", "extra")}
    return ensemble


def _member_extra_accuracy(member: str, data_name: str) -> float | None:
    """A member folder's own score on one of its extra data sets (matched by the data set's name)."""
    member_metrics = json.loads((Path(member) / "metrics.json").read_text())
    for name, record in member_metrics.get("extra", {}).items():
        if data_name.split("-")[0] in Path(name).name:
            return record["accuracy"]
    return None


def _hand_written_paragraphs(card: str) -> list[str]:
    """An old card's paragraphs after its metrics table that no code writes, without the sentences now rendered
    from metrics.json (the ensemble and its McNemar counts, the baselines)."""
    kept = []
    after_table = card.partition("## Metrics\n")[2].split("\n\n", 1)[1] if "## Metrics\n" in card else ""
    for paragraph in _paragraphs(after_table.split("\n## Training")[0]):
        if paragraph.startswith(("The app averages", "## ", "|", "The sentiment tab averages", "`--write` keeps")):
            continue
        paragraph = re.sub(r"Both models alone are right on .*?p < 1e-10\)\.\s*", "", paragraph, flags=re.S)
        paragraph = re.sub(r"That beats the TF-IDF baseline \([\d.]+%\) and NBSVM \([\d.]+%\); the ULMFiT paper's",
                           "The ULMFiT paper's", paragraph)
        paragraph = re.sub(r"\s*`--write` keeps the ensemble's score.*", "", paragraph, flags=re.S)
        # baseline claims the card now renders from metrics.json ("baselines"), as measured
        paragraph = re.sub(r"\(a TF-IDF logistic regression gets [\d.]+%, NBSVM [\d.]+%, the\s+ULMFiT paper 95\.4%\)",
                           "(the ULMFiT paper: 95.4%; the bag-of-words baselines are above)", paragraph)
        if paragraph.strip():
            kept.append(paragraph.strip())
    return kept


def int8_sizes(folder: Path) -> dict:
    """The int8 file's size and the fp16 file it replaced (written again here, to measure it)."""
    import tempfile

    from safetensors.torch import load_file, save_file

    weights = folder / "model.safetensors"
    with tempfile.TemporaryDirectory() as tmp:
        fp16 = {name: t.half() if t.is_floating_point() else t for name, t in hub.dequantize_int8(load_file(str(weights))).items()}
        save_file(fp16, f"{tmp}/fp16.safetensors", metadata={"format": "pt"})
        return {"bytes_before": Path(f"{tmp}/fp16.safetensors").stat().st_size, "bytes_after": weights.stat().st_size}
