"""Text in, text out around the Seq2Seq model: tokenise, numericalise, decode, detokenise.

Used by the training script's evaluation and by the app, so both see exactly the same pipeline.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from dl_core.fast import fast_paths_enabled, native_bf16, quantize_int8
from dl_core.translation.data import collate_translation
from dl_core.translation.model import Seq2Seq, Translation
from dl_core.text import Vocab, detokenize, tokenize, tokenize_batch


@dataclass
class Source:
    tokens: list[str]  # what the encoder sees (after the length cut)
    ids: list[int]
    n_unknown: int  # tokens outside the French vocabulary (mapped to <unk>)
    n_cut: int  # tokens dropped beyond max_src_len


@dataclass
class Result:
    text: str
    tokens: list[str]
    log_prob: float
    attention: torch.Tensor  # (len(tokens) + 1, len(source tokens)): rows are output tokens, <eos> last


PRECISIONS = ("fp32", "bf16", "int8")


def int8_engine_available() -> bool:
    """Whether PyTorch has a quantised engine for this CPU (fbgemm/x86 on x86, qnnpack on ARM)."""
    return bool({"x86", "fbgemm", "qnnpack"} & set(torch.backends.quantized.supported_engines))


def inference_precision(choice: str | None = None) -> str:
    """The precision to decode in: "fp32", "bf16", "int8", or "auto" (the default; the environment variable
    DL_TRANSLATION_PRECISION may set it): int8 where PyTorch has a quantised engine for this CPU (fbgemm on x86,
    qnnpack on ARM), else bf16 where the CPU multiplies bf16 natively, else fp32; fp32 with DL_FAST_PATH=0.
    Batch-1 decoding is bound by reading the weights, so int8 weights (a quarter of the bytes) decode fastest
    (`python -m benchmarks.translation_speed` times them all), for tenths of a BLEU point at most (the model card)."""
    choice = choice or os.environ.get("DL_TRANSLATION_PRECISION", "auto")
    if choice == "auto":
        if not fast_paths_enabled():
            return "fp32"
        if int8_engine_available():
            return "int8"
        return "bf16" if native_bf16() else "fp32"
    if choice not in PRECISIONS:
        raise ValueError(f"unknown precision {choice!r}: choose one of {', '.join(PRECISIONS)} or auto")
    return choice


class Translator:
    def __init__(self, model: Seq2Seq, precision: str = "fp32"):
        """`precision`: what the model decodes in ("fp32", "bf16", or "int8": dynamic quantisation of its GRUs and
        Linear layers; see inference_precision). The model is converted in place; outputs are fp32 either way."""
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
        model = model.to(torch.bfloat16 if precision == "bf16" else torch.float32).eval()
        self.model = quantize_int8(model, (nn.GRU, nn.Linear)) if precision == "int8" else model
        self.precision = precision
        self.src_vocab = Vocab(model.config.src_vocab)
        self.tgt_vocab = Vocab(model.config.tgt_vocab)

    def source(self, text: str) -> Source:
        tokens = tokenize(text, "fr")
        kept = tokens[: self.model.config.max_src_len]
        ids = self.src_vocab.encode(kept)
        return Source(kept, ids, sum(i == Vocab.unk_id for i in ids), len(tokens) - len(kept))

    def _result(self, t: Translation) -> Result:
        tokens = self.tgt_vocab.decode(t.tokens)
        return Result(detokenize(tokens, "en"), tokens, t.log_prob, t.attention)

    def greedy(self, source: Source) -> Result:
        return self._result(self.model.translate_greedy(source.ids))

    def beam(self, source: Source, beam_size: int = 5) -> list[Result]:
        return [self._result(t) for t in self.model.beam_search(source.ids, beam_size=beam_size)]

    @torch.no_grad()
    def translate_batch(self, texts: Sequence[str], batch_size: int = 256, beam_size: int = 1) -> list[str]:
        """Translate many sentences: batched greedy decoding, or one beam search per sentence."""
        token_lists = tokenize_batch(texts, "fr")
        ids = [self.src_vocab.encode(t[: self.model.config.max_src_len]) or [Vocab.unk_id] for t in token_lists]
        if beam_size > 1:
            return [self._result(self.model.beam_search(i, beam_size=beam_size)[0]).text for i in ids]
        outputs: list[str] = [""] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths batch together
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            (src, lengths, _), _ = collate_translation([(torch.tensor(ids[i]), torch.tensor([0])) for i in chunk])
            tokens, _, _ = self.model.greedy(src.to(self.model.embedding.weight.device), lengths)
            for row, i in zip(tokens.tolist(), chunk):
                outputs[i] = detokenize(self.tgt_vocab.decode(row), "en")
        return outputs
