"""Lesson 10 latency on this machine: classify a 500-token review, attribute it, generate 20 words.

    python -m benchmarks.sentiment_speed [--classifier weights/sentiment] [--backward weights/sentiment-bwd]
        [--lm weights/sentiment-lm] [--repeats 10]

Prints a table of medians. The tab classifies with the forward + backward ensemble (both read the text), so
the end-to-end rows time both; a row gives the forward classifier alone. The baseline row is the encoder the
issue quotes: a plain fp32 AWD-LSTM with the paper's sizes (embedding 400, hidden 1150, 3 layers) reading the same 500 tokens; the shipped encoder (256 /
512) is what gets under the 250 ms target, and a row shows what int8 dynamic quantisation of its LSTMs adds.
Without weight folders the models are built with random weights of the shipped sizes (speed does not depend
on the weights). Targets (issue 5, 2 CPU cores): classify <= 250 ms, attribution <= 2 s, 20 words <= 300 ms.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch

from benchmarks.timing import median_ms, print_latency_table
from dl_core.paths import WEIGHTS_DIR
from dl_core.text import RULE_TOKENS, SPECIAL_TOKENS
from dl_core.ulmfit.infer import SentimentAnalyzer
from dl_core.ulmfit.model import AWDLSTMConfig, AWDLSTMEncoder, ClassifierConfig, LanguageModel, TextClassifier

REVIEW = (
    "I went into this film expecting very little, and I came out surprised. The first half hour is slow, and the "
    "dialogue is often clumsy, but the two leads have real chemistry and the photography is beautiful. "
)


def review_of(n_tokens: int, analyzer: SentimentAnalyzer) -> str:
    text = REVIEW
    while len(analyzer.prepare(text).ids) < n_tokens:
        text += REVIEW
    while len(analyzer.prepare(text).ids) > n_tokens:
        text = text[: text.rfind(" ")]
    return text


def load_or_build(args):
    from dl_core.hub import load_model

    vocab = list(SPECIAL_TOKENS) + list(RULE_TOKENS) + [f"w{i}" for i in range(14_000 - len(RULE_TOKENS))]
    if Path(args.classifier, "model.safetensors").is_file():
        classifier, note = load_model(TextClassifier, args.classifier), f"weights {args.classifier}"
    else:
        torch.manual_seed(0)
        classifier, note = TextClassifier(ClassifierConfig(encoder=AWDLSTMConfig(vocab=vocab))).eval(), "random weights, shipped sizes"
    classifiers = [classifier]
    if args.backward and Path(args.backward, "model.safetensors").is_file():
        classifiers.append(load_model(TextClassifier, args.backward))
        note += f" + {args.backward} (forward + backward ensemble)"
    if Path(args.lm, "model.safetensors").is_file():
        lm = load_model(LanguageModel, args.lm)
    else:
        lm = LanguageModel(AWDLSTMConfig(vocab=classifier.config.encoder.vocab)).eval()
    return SentimentAnalyzer(classifiers, lm), note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classifier", default=str(WEIGHTS_DIR / "sentiment"), help="the forward classifier's folder")
    parser.add_argument("--backward", default=str(WEIGHTS_DIR / "sentiment-bwd"), help="the ensemble's backward classifier ('' for none)")
    parser.add_argument("--lm", default=str(WEIGHTS_DIR / "sentiment-lm"), help="the language model's folder")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per row (the median is shown)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    analyzer, note = load_or_build(args)
    text = review_of(500, analyzer)
    prepared = analyzer.prepare(text)
    ids = torch.tensor([prepared.ids])
    forward_only = SentimentAnalyzer(analyzer.classifier)

    torch.manual_seed(0)
    baseline = AWDLSTMEncoder(AWDLSTMConfig(vocab=analyzer.classifier.config.encoder.vocab, emb_dim=400, hidden_dim=1150)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        quantized = torch.ao.quantization.quantize_dynamic(analyzer.classifier, {torch.nn.LSTM}, dtype=torch.qint8)

    def classify_quantized():
        with torch.no_grad():
            return quantized(ids, torch.tensor([ids.size(1)]))

    with torch.no_grad():
        rows = [
            ("baseline: fp32 AWD-LSTM 400/1150 encoder, 500 tokens", median_ms(lambda: baseline(ids), args.repeats), None),
            ("tokenise 500 tokens (rules + spaCy)", median_ms(lambda: analyzer.prepare(text), args.repeats), None),
            ("shipped encoder 256/512 fp32, 500 tokens", median_ms(lambda: analyzer.classifier.encoder(ids), args.repeats), None),
            (f"classify 500-token review (end to end, {len(analyzer.classifiers)} classifier(s))",
             median_ms(lambda: analyzer.classify(analyzer.prepare(text)), args.repeats), 250.0),
            ("  same, the forward classifier alone", median_ms(lambda: forward_only.classify(forward_only.prepare(text)), args.repeats), None),
            ("  same, LSTMs int8 (dynamic quantisation)", median_ms(classify_quantized, args.repeats), None),
            ("generate 20 words after the review (end to end)",
             median_ms(lambda: analyzer.generate(text, 20, temperature=0.8, top_k=40, seed=0), args.repeats), 300.0),
            ("generate 20 words after one sentence",
             median_ms(lambda: analyzer.generate("This movie was", 20, temperature=0.8, top_k=40, seed=0), args.repeats), 300.0),
        ]
    rows.append((f"attribution, 500 tokens (integrated gradients, 8 steps, {len(analyzer.classifiers)} classifier(s))",
                 median_ms(lambda: analyzer.attribute(analyzer.prepare(text)), max(3, args.repeats // 2), warmup=1), 2000.0))
    if Path(args.classifier).resolve() == (WEIGHTS_DIR / "sentiment").resolve():  # the tab loads the bundled weights
        from demos import sentiment as tab

        longest = (REVIEW * (tab.MAX_CHARS // len(REVIEW) + 1))[: tab.MAX_CHARS]
        slow = max(3, args.repeats // 2)
        rows += [
            ("tab: classify + attribute the 500-token review (handler)", median_ms(lambda: tab.analyse(text), slow, warmup=1), 2000.0),
            (f"tab: same, longest input ({tab.MAX_CHARS:,} chars; 3,000 tokens read, {tab.MAX_ATTRIBUTION_TOKENS:,} attributed)",
             median_ms(lambda: tab.analyse(longest), slow, warmup=1), 2000.0),
            ("tab: top-10 next words + 20 generated words (handler)",
             median_ms(lambda: tab.continue_text(text, 20, 0.8, 40, 0), args.repeats, warmup=1), None),
        ]
    print(f"{note}; review of {len(prepared.ids)} tokens")
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats} runs\n")
    print_latency_table(rows, rows[0][1], "baseline")


if __name__ == "__main__":
    main()
