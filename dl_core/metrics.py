"""Text-generation metrics, always through sacreBLEU so that numbers are comparable with papers.

Scores are computed on detokenised text against the raw references with sacreBLEU's default 13a
tokenisation, cased (the WMT convention). Scoring our own tokenisation would flatter the model.
"""
from __future__ import annotations

from typing import Sequence

import sacrebleu


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU and chrF (0-100) of detokenised hypotheses against one reference each."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    refs = [list(references)]
    return {
        "bleu": sacrebleu.corpus_bleu(list(hypotheses), refs).score,
        "chrf": sacrebleu.corpus_chrf(list(hypotheses), refs).score,
        "n": len(hypotheses),
    }


def sentence_scores(hypothesis: str, reference: str) -> dict[str, float]:
    """Sentence BLEU (with sacreBLEU's default exponential smoothing) and chrF for one pair."""
    return {
        "bleu": sacrebleu.sentence_bleu(hypothesis, [reference]).score,
        "chrf": sacrebleu.sentence_chrf(hypothesis, [reference]).score,
    }
