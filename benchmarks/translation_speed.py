"""Lesson 11 latency on this machine: greedy and beam-5 translation of a 10-word sentence.

    python benchmarks/translation_speed.py [--weights weights/translation] [--repeats 50]

Prints a table of medians. The breakdown rows (tokenise, encoder only) are the baseline the decoding
numbers are compared against: they show how much of each call is fixed cost and how much is decoding.
Targets (issue 2, 2 CPU cores): greedy <= 30 ms, beam 5 <= 150 ms.
"""
from __future__ import annotations

import argparse

import torch

from benchmarks.timing import median_ms, print_latency_table
from dl_core.hub import load_model
from dl_core.paths import WEIGHTS_DIR
from dl_core.translation.model import Seq2Seq
from dl_core.translation.infer import Translator

SENTENCE = "Je ne sais pas pourquoi il est parti si tôt hier."  # 10 words (12 tokens with punctuation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=str(WEIGHTS_DIR / "translation"),
                        help="weight folder (default: the bundled weights/translation)")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per row; the median is shown (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    translator = Translator(load_model(Seq2Seq, args.weights))
    source = translator.source(SENTENCE)
    src, lengths = torch.tensor([source.ids]), torch.tensor([len(source.ids)])

    rows = [
        ("tokenise + numericalise", median_ms(lambda: translator.source(SENTENCE), args.repeats), None),
        ("encoder only", median_ms(lambda: translator.model.encode(src, lengths), args.repeats), None),
        ("greedy (end to end)", median_ms(lambda: translator.greedy(translator.source(SENTENCE)), args.repeats), 30.0),
        ("beam 5 (end to end)", median_ms(lambda: translator.beam(translator.source(SENTENCE), 5), args.repeats), 150.0),
    ]
    greedy_ms = rows[2][1]
    print(f"sentence: {SENTENCE!r} ({len(source.tokens)} tokens) -> {translator.greedy(source).text!r}")
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats} runs\n")
    print_latency_table(rows, greedy_ms, "greedy")


if __name__ == "__main__":
    main()
