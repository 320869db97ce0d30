"""Metrics shared by the lessons: text generation through sacreBLEU, and McNemar's test for two classifiers.

Generation scores are computed on detokenised text against the raw references with sacreBLEU's default 13a
tokenisation, cased (the WMT convention). Scoring our own tokenisation would flatter the model.
"""
from __future__ import annotations

import math
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


def mcnemar(first_correct: Sequence[bool], second_correct: Sequence[bool], exact_below: int = 10_000) -> dict:
    """McNemar's test: do two classifiers scored on the same items differ in accuracy? Only the items they
    disagree on count: b = second right where first is wrong, c = first right where second is wrong. Under
    "no difference" each disagreement goes either way with probability 1/2, so b ~ Binomial(b + c, 1/2).

    Returns b, c, z = (b - c) / sqrt(b + c) (positive: the second is better) and the two-sided p-value: exact
    (binomial) when b + c < `exact_below`, else from the normal approximation of z.
    """
    if len(first_correct) != len(second_correct):
        raise ValueError(f"{len(first_correct)} and {len(second_correct)} items: McNemar needs the same items")
    b = sum(bool(s) and not bool(f) for f, s in zip(first_correct, second_correct))
    c = sum(bool(f) and not bool(s) for f, s in zip(first_correct, second_correct))
    n = b + c
    z = (b - c) / math.sqrt(n) if n else 0.0
    if n < exact_below:
        tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))  # P(X <= min(b, c)) * 2**n, exactly
        p, test = min(1.0, 2 * tail / 2**n), "exact"
    else:
        p, test = math.erfc(abs(z) / math.sqrt(2)), "normal"
    return {"b": b, "c": c, "z": round(z, 2), "p": p, "test": test}


def format_p(p: float, floor: float = 1e-10) -> str:
    """A p-value as a report writes it: `p < 1e-10` below the floor, else two significant digits."""
    return f"p < {floor:.0e}" if p < floor else f"p = {p:.2g}"
