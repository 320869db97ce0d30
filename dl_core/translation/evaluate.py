"""Lesson 11 evaluation: cased corpus sacreBLEU (13a) and chrF of a model's translations, one reference per pair.

    evaluate_pairs(model, pairs)                                   # what training writes into metrics.json
    evaluate_folder("weights/translation", "../shared/data/translation/fra-eng.tsv", split="valid")
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Sequence

from dl_core.hub import load_model
from dl_core.metrics import corpus_scores
from dl_core.translation.data import Pair, read_pairs, split_by_source
from dl_core.translation.infer import Translator, inference_precision
from dl_core.translation.model import Seq2Seq

VALID_PAIRS = 2500  # the recipe's held-out split: at least this many pairs, whole French sentences
SEED = 42  # the run flags' default seed (dl_core.cli), for a folder that recorded no train arguments


def evaluate_pairs(model: Seq2Seq, pairs: Sequence[Pair], beam_size: int = 1, precision: str = "fp32") -> dict:
    """{"bleu", "chrf", "n"} of the model's translations of the pairs' French against their English
    (greedy decoding; beam search with `beam_size` > 1), decoding in `precision` (the model is converted to it)."""
    translator = Translator(model, precision)
    hypotheses = translator.translate_batch([p.fr for p in pairs], beam_size=beam_size)
    return corpus_scores(hypotheses, [p.en for p in pairs])


def recorded_train_args(folder: str | Path) -> dict:
    """The arguments of the train command that made a weight folder (metrics.json's facts), or {}."""
    metrics_file = Path(folder) / "metrics.json"
    if not metrics_file.is_file():
        return {}
    return json.loads(metrics_file.read_text()).get("facts", {}).get("args", {})


def heldout_pairs(pairs: Sequence[Pair], train_args: dict) -> list[Pair]:
    """The pairs a train run with these arguments held out of `pairs` (same split size and seed)."""
    _, valid = split_by_source(pairs, train_args.get("valid_pairs", VALID_PAIRS), seed=train_args.get("seed", SEED))
    return valid


def evaluate_folder(folder: str | Path, data: str | Path, split: str = "all", beam_size: int = 1, limit: int = 0,
                    precision: str = "fp32") -> dict:
    """Score a weight folder on a data file (Tatoeba TSV or aligned-files prefix), rounded as the model card
    and the README quote it. split="valid": only the pairs its training run held out of that file. `precision`:
    "fp32" (the reference), "bf16", "int8" or "auto" (what the tab decodes in on this machine: inference_precision)."""
    model = load_model(Seq2Seq, folder)
    pairs = read_pairs(data)
    if split == "valid":
        pairs = heldout_pairs(pairs, recorded_train_args(folder))
    if limit:
        pairs = pairs[:limit]
    started = time.perf_counter()
    scores = evaluate_pairs(model, pairs, beam_size=beam_size, precision=inference_precision(precision))
    print(f"{len(pairs)} pairs translated in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return {"bleu": round(scores["bleu"], 2), "chrf": round(scores["chrf"], 2), "n": scores["n"]}
