"""Lesson 11 latency on this machine: greedy and beam-5 translation of a 10-word sentence.

    python benchmarks/translation_speed.py [--weights weights/translation] [--repeats 50]

Prints a table of medians. Decoding runs in fp32 (the baseline), bf16 and int8, timed in turn round by round; the
tab decodes in what `inference_precision("auto")` picks here (int8 where PyTorch has a quantised engine for the CPU),
and the targets apply to that. The breakdown rows (tokenise, encoder only) show how much of a call is fixed cost.
Targets (issues 2 and 17, 2 CPU cores): greedy <= 30 ms, beam 5 <= 150 ms.
"""
from __future__ import annotations

import argparse

import torch

from benchmarks.timing import interleaved_median_ms, median_ms, print_latency_table
from dl_core.hub import load_model
from dl_core.paths import WEIGHTS_DIR
from dl_core.translation.model import Seq2Seq
from dl_core.translation.infer import PRECISIONS, Translator, inference_precision

SENTENCE = "Je ne sais pas pourquoi il est parti si tôt hier."  # 10 words (12 tokens with punctuation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=str(WEIGHTS_DIR / "translation"),
                        help="weight folder (default: the bundled weights/translation)")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per row; the median is shown (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    translators = {name: Translator(load_model(Seq2Seq, args.weights), name) for name in PRECISIONS}
    tab = inference_precision("auto")
    fp32 = translators["fp32"]
    source = fp32.source(SENTENCE)
    src, lengths = torch.tensor([source.ids]), torch.tensor([len(source.ids)])
    with torch.no_grad():
        encoder_ms = median_ms(lambda: fp32.model.encode(src, lengths), args.repeats)
    decoding = interleaved_median_ms({
        f"{kind} {name}": (lambda t=t, kind=kind: t.greedy(t.source(SENTENCE)) if kind == "greedy" else t.beam(t.source(SENTENCE), 5))
        for kind in ("greedy", "beam 5") for name, t in translators.items()}, args.repeats)
    rows = [("tokenise + numericalise", median_ms(lambda: fp32.source(SENTENCE), args.repeats), None),
            ("encoder only (fp32)", encoder_ms, None)]
    for kind, target in (("greedy", 30.0), ("beam 5", 150.0)):
        for name in translators:
            label = f"{kind} (end to end), {name}" + (": the tab here" if name == tab else "")
            rows.append((label, decoding[f"{kind} {name}"], target if name == tab else None))
    outputs = ", ".join(f"{name} {t.greedy(source).text!r}" for name, t in translators.items())
    print(f"sentence: {SENTENCE!r} ({len(source.tokens)} tokens) -> {outputs}")
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats} rounds; the tab decodes in {tab} here\n")
    print_latency_table(rows, decoding["greedy fp32"], "greedy fp32")


if __name__ == "__main__":
    main()
