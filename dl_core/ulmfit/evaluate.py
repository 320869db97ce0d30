"""Lesson 10 evaluation: a language model's perplexity, a classifier's (or an ensemble's) accuracy, and McNemar's
test of an ensemble against each of its members. Each returns the dict that goes into metrics.json.

    perplexity(lm, docs)                       # {"perplexity", "loss", "n_tokens"}
    accuracy_on([forward, backward], split)    # {"accuracy", "n", "n_cut", "members": [...]}, "mcnemar": [...]}
    app_accuracy(analyzer, split)              # the tab's path: each text to the reader its length picks
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from dl_core.metrics import mcnemar
from dl_core.text import Vocab
from dl_core.ulmfit.data import BPTTBatchSampler, LMStreamDataset, TokenizedSplit, first_item, lm_stream
from dl_core.ulmfit.infer import READER_NAMES, ReaderModel, SentimentAnalyzer, count_words
from dl_core.ulmfit.model import LanguageModel, TextClassifier
from dl_core.ulmfit.nbsvm import NBSVM


@torch.no_grad()
def perplexity(model: LanguageModel, docs, batch_size: int = 64, bptt: int = 70) -> dict:
    """exp(mean next-token cross-entropy) over every token of `docs` read as one stream (in the model's
    direction: a backward LM predicts each token from the ones after it)."""
    model.eval().reset()
    device = model.encoder.embedding.weight.device
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


def _probabilities(models: list[ReaderModel], split: TokenizedSplit, batch_size: int):
    """Each model's class probabilities (N, C) for the split's texts, and the id lists the first neural
    classifier read (None without one): a network reads ids in its vocabulary, an NBSVM the tokens."""
    id_lists, probs, vocab = None, [], None
    for model in models:
        if isinstance(model, NBSVM):
            probs.append(model.predict_proba([split.corpus[i] for i in range(len(split))]))
            continue
        if id_lists is None or model.config.encoder.vocab != vocab:
            vocab = model.config.encoder.vocab
            id_lists = [[Vocab.bos_id] + d.tolist() for d in split.corpus.numericalize(Vocab(vocab))]
        probs.append(model.predict_proba(id_lists, batch_size=batch_size))
    return probs, id_lists


def _n_cut(models: list[ReaderModel], id_lists) -> int:
    """Texts longer than the first network reads (an NBSVM reads every word)."""
    network = next((m for m in models if isinstance(m, TextClassifier)), None)
    return 0 if network is None else sum(len(ids) > network.config.max_len for ids in id_lists)


def accuracy_on(models: ReaderModel | list[ReaderModel], split: TokenizedSplit, batch_size: int = 128) -> dict:
    """Accuracy (and log-loss, in nats) on the labelled texts of a tokenised split of one classifier, or of several
    averaging their probabilities (an ensemble, e.g. ULMFiT's forward + backward models). For an ensemble,
    `members` gives each one's accuracy and `mcnemar` the test of the ensemble against each member (b: texts the
    ensemble gets right and the member wrong; c: the other way round)."""
    models = [models] if isinstance(models, (TextClassifier, NBSVM)) else models
    split = split.select(np.flatnonzero(split.labels >= 0).tolist())
    labels = torch.from_numpy(split.labels)
    probs, id_lists = _probabilities(models, split, batch_size)

    def correct(p: torch.Tensor) -> torch.Tensor:
        return p.argmax(-1) == labels  # (N,) bool

    def accuracy(right: torch.Tensor) -> float:
        return round(float(right.float().mean()), 4) if len(split) else float("nan")

    mean = torch.stack(probs).mean(0)  # (N, C)
    ensemble_right = correct(mean)
    log_loss = -mean[torch.arange(len(split)), labels].clamp_min(1e-7).log().mean() if len(split) else torch.tensor(float("nan"))
    result = {"accuracy": accuracy(ensemble_right), "n": len(split), "n_cut": _n_cut(models, id_lists),
              "log_loss": round(float(log_loss), 4)}
    if len(models) > 1:
        members_right = [correct(p) for p in probs]
        result["members"] = [accuracy(right) for right in members_right]
        result["mcnemar"] = [mcnemar(right.tolist(), ensemble_right.tolist()) for right in members_right]
    return result


def app_accuracy(analyzer: SentimentAnalyzer, split: TokenizedSplit, batch_size: int = 128) -> dict:
    """Accuracy of exactly what the tab predicts: each labelled text goes to the reader its length picks
    (`analyzer.reader`), whose ensemble averages its probabilities. Adds `readers`: each reader's share of
    the texts and its accuracy on them."""
    split = split.select(np.flatnonzero(split.labels >= 0).tolist())
    readers = [analyzer.reader(count_words(split.corpus[i])) for i in range(len(split))]
    right = np.zeros(len(split), dtype=bool)
    result = {"accuracy": float("nan"), "n": len(split), "n_cut": 0, "readers": {}}
    for name, models in analyzer.readers.items():
        index = [i for i, reader in enumerate(readers) if reader == name]
        if not index:
            continue
        part = split.select(index)
        probs, id_lists = _probabilities(models, part, batch_size)
        right[index] = (torch.stack(probs).mean(0).argmax(-1) == torch.from_numpy(part.labels)).numpy()
        result["n_cut"] += _n_cut(models, id_lists)
        result["readers"][name] = {"n": len(index), "accuracy": round(float(right[index].mean()), 4), "what": READER_NAMES[name]}
    if len(split):
        result["accuracy"] = round(float(right.mean()), 4)
    if "short" in analyzer.readers:
        result["short_max_words"] = analyzer.short_max_words
    return result


def lm_evaluate_command(weights: str, data: str, valid_fraction: float, seed: int, bptt: int, lm_texts: str = "all",
                        max_texts: int = 0) -> str:
    """The command that recomputes an LM card's perplexity from its folder (same split, same texts)."""
    options = [f"--valid-fraction {valid_fraction}", f"--seed {seed}", f"--bptt {bptt}"]
    if lm_texts != "all":
        options.append(f"--lm-texts {lm_texts}")
    if max_texts:
        options.append(f"--max-texts {max_texts}")
    return f"python train/lm.py evaluate --weights {weights} --data {data} {' '.join(options)}"


def record_ensemble(folders: list[str], data_name: str, split: str, result: dict, command: str) -> list[Path]:
    """Keep an ensemble's score (`accuracy_on` of several folders, McNemar included) in every member's metrics.json
    under "ensemble", beside what earlier runs of the same ensemble recorded on other data sets (order_ensemble)."""
    record = {"members": list(folders), "data": data_name, "split": split, "accuracy": result["accuracy"], "n": result["n"],
              "member_accuracy": result["members"], "mcnemar": result["mcnemar"], "command": command}
    written = []
    for folder in folders:
        metrics_file = Path(folder) / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        previous = metrics.get("ensemble")
        others = {}
        if previous and previous["members"] == record["members"]:  # another pair's record is replaced
            others = {previous["data"]: _scores(previous), **previous.get("extra", {})}
            others.pop(data_name, None)
        metrics["ensemble"] = order_ensemble({**record, "extra": others}, metrics.get("facts", {}).get("data"))
        metrics_file.write_text(json.dumps(metrics, indent=1))
        written.append(metrics_file)
    return written


def _scores(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("members", "data", "extra")}


def order_ensemble(ensemble: dict, main_data: str | None) -> dict:
    """An ensemble record with one main data set, the one its members were trained on (`main_data`, e.g. IMDB's
    test reviews) when it has been scored there, and the others under "extra" by data-set name."""
    records = {ensemble["data"]: _scores(ensemble), **ensemble.get("extra", {})}
    main = main_data if main_data in records else ensemble["data"]
    return {"members": ensemble["members"], "data": main, **records.pop(main), "extra": records}


def record_single(folder: str, data_path: str, data_name: str, result: dict, command: str) -> Path:
    """Keep one folder's score in its metrics.json: as "heldout" on the data set it was trained on (e.g. after
    `python -m dl_core.hub int8` replaced its weights), else under "extra" by the data path, with the command."""
    metrics_file = Path(folder) / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    key = "heldout" if metrics.get("facts", {}).get("data") == data_name else data_path
    score = {k: result[k] for k in ("accuracy", "n", "n_cut")}
    if key == "heldout":
        metrics["heldout"] = score
    else:
        metrics.setdefault("extra", {})[key] = score
    metrics.setdefault("commands", {})[key] = command
    metrics_file.write_text(json.dumps(metrics, indent=1))
    return metrics_file


def record_app(folder: str | Path, data_name: str, split: str, result: dict, command: str) -> Path:
    """Keep the tab's score on a data set (`app_accuracy`) in a folder's metrics.json under "app", by data set."""
    metrics_file = Path(folder) / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    metrics.setdefault("app", {})[data_name] = {"split": split, **result, "command": command}
    metrics_file.write_text(json.dumps(metrics, indent=1))
    return metrics_file
