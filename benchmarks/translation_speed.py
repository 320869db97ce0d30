"""Lesson 11 latency on this machine: greedy and beam-5 translation of a 10-word sentence.

    python benchmarks/translation_speed.py [--weights weights/translation] [--repeats 50]

Prints a table of medians. Decoding runs in fp32 (the baseline) and in bf16, timed in turn round by round; the tab
decodes in bf16 where the CPU multiplies it natively (`inference_dtype`: "auto"), and the targets apply to what the
tab uses here. The breakdown rows (tokenise, encoder only) show how much of a call is fixed cost.
Targets (issues 2 and 17, 2 CPU cores): greedy <= 30 ms, beam 5 <= 150 ms.
"""
from __future__ import annotations

import argparse

import torch

from benchmarks.timing import interleaved_median_ms, median_ms, print_latency_table
from dl_core.hub import load_model
from dl_core.paths import WEIGHTS_DIR
from dl_core.translation.model import Seq2Seq
from dl_core.translation.infer import Translator, inference_dtype

SENTENCE = "Je ne sais pas pourquoi il est parti si tôt hier."  # 10 words (12 tokens with punctuation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=str(WEIGHTS_DIR / "translation"),
                        help="weight folder (default: the bundled weights/translation)")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per row; the median is shown (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    translators = {name: Translator(load_model(Seq2Seq, args.weights), dtype=dtype)
                   for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    tab = "bf16" if inference_dtype("auto") == torch.bfloat16 else "fp32"
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
    print(f"sentence: {SENTENCE!r} ({len(source.tokens)} tokens) -> fp32 {fp32.greedy(source).text!r}, "
          f"bf16 {translators['bf16'].greedy(source).text!r}")
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats} rounds; the tab decodes in {tab} here\n")
    print_latency_table(rows, decoding["greedy fp32"], "greedy fp32")


if __name__ == "__main__":
    main()
