"""Text pipeline shared by the language lessons: spaCy tokens -> Vocab ids -> tokens -> text.

Tokenisation uses `spacy.blank(lang)`: the rule-based tokenizer only, so nothing is downloaded.
Case is kept (translation is scored with cased BLEU), so "Je" and "je" are different tokens.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from typing import Iterable, Sequence

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)  # fixed ids 0..3 in every Vocab


@lru_cache(maxsize=None)
def _blank_pipeline(lang: str):
    import spacy  # imported lazily: spaCy takes ~1 s to import and most callers never need it

    return spacy.blank(lang)


def tokenize(text: str, lang: str) -> list[str]:
    """Split `text` into spaCy tokens, dropping whitespace-only tokens (spaCy keeps runs of spaces)."""
    return [t.text for t in _blank_pipeline(lang)(text) if not t.is_space]


def tokenize_batch(texts: Iterable[str], lang: str, batch_size: int = 1000) -> list[list[str]]:
    """Tokenise many texts; `nlp.pipe` batches them, which is ~2x faster than one call per text."""
    nlp = _blank_pipeline(lang)
    return [[t.text for t in doc if not t.is_space] for doc in nlp.pipe(texts, batch_size=batch_size)]


class Vocab:
    """Token <-> id mapping. Ids 0-3 are the special tokens; unknown tokens map to `<unk>`."""

    def __init__(self, itos: Sequence[str]):
        if tuple(itos[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"a Vocab must start with the special tokens {SPECIAL_TOKENS}")
        self.itos = list(itos)
        self.stoi = {tok: i for i, tok in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("a Vocab's tokens must be unique")

    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], max_size: int = 40_000, min_freq: int = 2) -> "Vocab":
        """Most frequent tokens first (ties broken alphabetically, so the result is reproducible)."""
        counts = Counter(tok for tokens in token_lists for tok in tokens)
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        return cls(list(SPECIAL_TOKENS) + kept[:max_size])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.stoi.get(tok, self.unk_id) for tok in tokens]

    def decode(self, ids: Iterable[int], strip_special: bool = True) -> list[str]:
        """Ids -> tokens, stopping at the first `<eos>`; specials other than `<unk>` are dropped."""
        tokens = []
        for i in ids:
            i = int(i)
            if i == self.eos_id and strip_special:
                break
            if strip_special and i in (self.pad_id, self.bos_id):
                continue
            tokens.append(self.itos[i])
        return tokens


# --- detokenisation ------------------------------------------------------------------------------
# The model emits bare tokens; BLEU and the UI want normal text. These rules undo spaCy's splits for
# English and French well enough that detokenize(tokenize(s)) == s for ~99% of the Tatoeba sentences
# (checked by a data test).
_NO_SPACE_BEFORE = {"en": set(".,!?;:%)]}…"), "fr": set(".,)]}…")}
_NO_SPACE_AFTER = set("([{$")
_EN_CLITIC = re.compile(r"^(n't|n’t|'s|’s|'m|’m|'re|’re|'ve|’ve|'ll|’ll|'d|’d|')$", re.IGNORECASE)
_FR_ELISION = re.compile(r"^(?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu|quoiqu)['’]$", re.IGNORECASE)


def detokenize(tokens: Sequence[str], lang: str = "en") -> str:
    out: list[str] = []
    open_quote = False
    glue_next = False
    for tok in tokens:
        if tok == UNK:
            tok = "<unk>"
        attach = glue_next or not out
        glue_next = False
        if tok in _NO_SPACE_BEFORE.get(lang, set()) or (lang == "en" and _EN_CLITIC.match(tok)):
            attach = True
        if lang == "en" and tok.lower() == "not" and out and out[-1].strip().lower() == "can":
            attach = True  # spaCy splits "cannot" into "can" + "not"
        if tok == '"':
            # Straight double quotes alternate between opening (space before) and closing (none).
            attach = attach or open_quote
            glue_next = not open_quote
            open_quote = not open_quote
        if tok in _NO_SPACE_AFTER or (lang == "fr" and _FR_ELISION.match(tok)) or tok in ("-",):
            glue_next = True
        if (tok == "-" or (lang == "fr" and tok.startswith("-"))) and out:
            attach = True  # "well - known" -> "well-known"; French "Qu'est" "-ce" -> "Qu'est-ce"
        out.append(tok if attach else " " + tok)
    return "".join(out)
