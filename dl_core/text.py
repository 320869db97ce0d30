"""Text pipeline shared by the language lessons: spaCy tokens -> Vocab ids -> tokens -> text.

Tokenisation uses `spacy.blank(lang)`: the rule-based tokenizer only, so nothing is downloaded.

Two flavours:
- `tokenize` / `tokenize_batch` (lesson 11, translation): spaCy tokens as they are, case kept ("Je" and
  "je" differ), because translation is scored with cased BLEU.
- `tokenize_with_rules` / `tokenize_corpus` (lesson 10, ULMFiT): fastai's rules around spaCy, which turn
  HTML debris, case and repetition into tokens the language model can learn from. The special tokens:

  | token | meaning | example |
  |---|---|---|
  | `<bos>` | beginning of a text (fastai: xxbos); added by the data pipeline, not the tokenizer | |
  | `<unk>` | a word outside the vocabulary (fastai: xxunk); WikiText's own `<unk>` is kept as one token | |
  | `<pad>` | padding in a batch (fastai: xxpad) | |
  | `xxmaj` | the next word was Capitalised | "The" -> `xxmaj the` |
  | `xxup` | the next word was ALL CAPS (2+ letters) | "GREAT" -> `xxup great` |
  | `xxrep n c` | the character c repeated n (3+) times | "!!!!" -> `xxrep 4 !` |
  | `xxwrep n w` | the word w repeated n (3+) times | "very very very" -> `xxwrep 3 very` |

  Every token is lower-cased after the case rules, so "The", "the" and "THE" share one embedding.
  `tokenize_corpus` runs the rules in parallel processes and caches the result on disk, keyed by a
  hash of the texts and the rules' version, so a second run loads instead of tokenising again.
"""
from __future__ import annotations

import hashlib
import html
import json
import multiprocessing
import os
import re
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

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
    def build(cls, token_lists: Iterable[Sequence[str]], max_size: int = 40_000, min_freq: int = 2,
              reserved: Sequence[str] = ()) -> "Vocab":
        """Most frequent tokens first (ties broken alphabetically, so the result is reproducible)."""
        return cls.from_counts(Counter(tok for tokens in token_lists for tok in tokens), max_size, min_freq, reserved)

    @classmethod
    def from_counts(cls, counts: Counter, max_size: int = 40_000, min_freq: int = 2,
                    reserved: Sequence[str] = ()) -> "Vocab":
        """As `build`, from token counts. `reserved` tokens (e.g. the ULMFiT rule tokens) come right after
        the specials whatever their counts, so a model always has them; they count towards `max_size`."""
        counts = Counter(counts)
        for special in (*SPECIAL_TOKENS, *reserved):
            counts.pop(special, None)
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        return cls(list(SPECIAL_TOKENS) + list(reserved) + kept[: max(0, max_size - len(reserved))])

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


# --- lesson 10: fastai's tokenisation rules around spaCy ------------------------------------------------
# Bump RULES_VERSION whenever a rule changes: it is part of the cache key and of a model's config, so a
# model is never fed tokens made by rules it was not trained with.
RULES_VERSION = 1
TK_MAJ, TK_UP, TK_REP, TK_WREP = "xxmaj", "xxup", "xxrep", "xxwrep"
RULE_TOKENS = (TK_MAJ, TK_UP, TK_REP, TK_WREP)

_BR = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
# Formatting tags seen in scraped reviews; anything else in angle brackets (e.g. "<unk>", "a <b") is text.
_FORMAT_TAG = re.compile(r"</?(?:p|i|b|u|em|strong|span|div|a|font|hr|center|blockquote)\b[^<>]{0,200}>", re.IGNORECASE)
_CHAR_REP = re.compile(r"(\S)(\1{2,})")
_WORD_REP = re.compile(r"\b(\w+)((?:\s+\1\b){2,})")
_SPACES = re.compile(r" {2,}")


def fix_html(text: str) -> str:
    """Undo the HTML and corpus debris of IMDB and WikiText: `<br />` -> newline, entities (also the broken
    ones without `&`, e.g. "#39;") -> characters, formatting tags -> space, WikiText's " @-@ " -> "-"."""
    text = _BR.sub("\n", text).replace("\\n", "\n").replace('\\"', '"')
    text = (text.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
            .replace("#39;", "'").replace("#146;", "'").replace("#36;", "$").replace("nbsp;", " "))
    text = html.unescape(text).replace("\xa0", " ")
    return _FORMAT_TAG.sub(" ", text)


def replace_char_repetitions(text: str) -> str:
    """A character repeated 3+ times -> `xxrep n c`: "sooooo" -> "s xxrep 5 o", "!!!" -> "xxrep 3 !"."""
    return _CHAR_REP.sub(lambda m: f" {TK_REP} {len(m.group(0))} {m.group(1)} ", text)


def replace_word_repetitions(text: str) -> str:
    """A word repeated 3+ times in a row -> `xxwrep n w`: "no no no" -> "xxwrep 3 no"."""
    return _WORD_REP.sub(lambda m: f" {TK_WREP} {len(m.group(0).split())} {m.group(1)} ", text)


def add_spaces_around_slash_and_hash(text: str) -> str:
    """spaCy keeps "good/bad" and "#1" whole; split them so the parts are ordinary words."""
    return re.sub(r"([/#])", r" \1 ", text)


def collapse_spaces(text: str) -> str:
    return _SPACES.sub(" ", text)


def replace_case(tokens: Sequence[str]) -> list[str]:
    """Lower-case every token, marking ALL CAPS words (2+ letters) with xxup, Capitalised ones with xxmaj."""
    out: list[str] = []
    for tok in tokens:
        if tok in RULE_TOKENS:
            out.append(tok)
        elif len(tok) > 1 and tok.isupper():
            out += [TK_UP, tok.lower()]
        elif tok[:1].isupper() and tok[1:] == tok[1:].lower():
            out += [TK_MAJ, tok.lower()]
        else:
            out.append(tok.lower())
    return out


TEXT_RULES = (fix_html, replace_char_repetitions, replace_word_repetitions, add_spaces_around_slash_and_hash,
              collapse_spaces)  # applied to the text, in this order, before spaCy; replace_case after it


@lru_cache(maxsize=None)
def _rules_pipeline(lang: str):
    """Like _blank_pipeline, but "<unk>" (WikiText's unknown word) stays one token. A separate pipeline,
    so translation's tokenisation is not changed."""
    import spacy
    from spacy.symbols import ORTH

    nlp = spacy.blank(lang)
    nlp.tokenizer.add_special_case(UNK, [{ORTH: UNK}])
    return nlp


def _apply_text_rules(text: str) -> str:
    for rule in TEXT_RULES:
        text = rule(text)
    return text


def tokenize_with_rules(text: str, lang: str = "en") -> list[str]:
    """The ULMFiT tokeniser: text rules -> spaCy -> case rules. No `<bos>` (the data pipeline adds it)."""
    return replace_case([t.text for t in _rules_pipeline(lang)(_apply_text_rules(text)) if not t.is_space])


def _tokenize_chunk(job: tuple[list[str], str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Worker: tokenise a chunk of texts; returns it compactly as (distinct tokens, ids, lengths), which
    crosses the process boundary much faster than a list of token lists."""
    texts, lang = job
    table: dict[str, int] = {}
    ids: list[int] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    nlp = _rules_pipeline(lang)
    for i, doc in enumerate(nlp.pipe((_apply_text_rules(t) for t in texts), batch_size=256)):
        tokens = replace_case([t.text for t in doc if not t.is_space])
        ids.extend(table.setdefault(tok, len(table)) for tok in tokens)
        lengths[i] = len(tokens)
    return list(table), np.asarray(ids, dtype=np.int32), lengths


@dataclass
class TokenizedCorpus:
    """Many tokenised texts, stored flat: text i is `[tokens[j] for j in ids[offsets[i]:offsets[i + 1]]]`.

    Flat numpy arrays make the cache file small and fast to load, the vocabulary a bincount, and
    numericalising one array lookup (15M tokens of IMDB in well under a second).
    """

    tokens: list[str]  # the distinct tokens
    ids: np.ndarray  # (n_tokens,) int32 indices into `tokens`
    offsets: np.ndarray  # (n_texts + 1,) int64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> list[str]:
        return [self.tokens[j] for j in self.ids[self.offsets[i] : self.offsets[i + 1]]]

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, indices: Sequence[int]) -> "TokenizedCorpus":
        """The texts at `indices`, in that order (same token table)."""
        pieces = [self.ids[self.offsets[i] : self.offsets[i + 1]] for i in indices]
        ids = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces], dtype=np.int64)]).astype(np.int64)
        return TokenizedCorpus(self.tokens, ids, offsets)

    @classmethod
    def concat(cls, corpora: Sequence["TokenizedCorpus"]) -> "TokenizedCorpus":
        """Texts of several corpora one after the other, with one token table."""
        return cls.merge((c.tokens, c.ids, c.lengths) for c in corpora)

    def counts(self) -> Counter:
        return Counter(dict(zip(self.tokens, np.bincount(self.ids, minlength=len(self.tokens)).tolist())))

    def numericalize(self, vocab: Vocab) -> list[np.ndarray]:
        """Vocab ids of every text (unknown tokens -> `<unk>`), one int64 array per text."""
        lookup = np.array([vocab.stoi.get(t, vocab.unk_id) for t in self.tokens] or [vocab.unk_id], dtype=np.int64)
        return np.split(lookup[self.ids], self.offsets[1:-1])

    def save(self, path: str | Path, meta: dict | None = None) -> None:
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        save_file({"ids": self.ids, "offsets": self.offsets}, str(tmp),
                  metadata={"tokens": json.dumps(self.tokens, ensure_ascii=False), **(meta or {})})
        os.replace(tmp, path)  # atomic: a killed run never leaves half a cache file behind

    @classmethod
    def load(cls, path: str | Path) -> "TokenizedCorpus":
        from safetensors import safe_open
        from safetensors.numpy import load_file

        with safe_open(str(path), framework="numpy") as f:
            tokens = json.loads(f.metadata()["tokens"])
        arrays = load_file(str(path))
        return cls(tokens, arrays["ids"], arrays["offsets"])

    @classmethod
    def merge(cls, parts: Iterable[tuple[list[str], np.ndarray, np.ndarray]]) -> "TokenizedCorpus":
        """Join per-chunk (tokens, ids, lengths) results into one corpus with one token table."""
        table: dict[str, int] = {}
        all_ids, all_lengths = [], []
        for tokens, ids, lengths in parts:
            remap = np.array([table.setdefault(t, len(table)) for t in tokens] or [0], dtype=np.int32)
            all_ids.append(remap[ids] if len(ids) else ids)
            all_lengths.append(lengths)
        lengths = np.concatenate(all_lengths) if all_lengths else np.zeros(0, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ids = np.concatenate(all_ids).astype(np.int32) if all_ids else np.zeros(0, dtype=np.int32)
        return cls(list(table), ids, offsets)


def default_workers() -> int:
    """Processes for tokenising: the CPUs this process may use (all 16 on the GPU machine)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def corpus_key(texts: Sequence[str], lang: str) -> str:
    """Cache key: a hash of the texts themselves plus everything that changes the tokens (rules version,
    spaCy version, language), so editing one review or upgrading spaCy means tokenising again."""
    import spacy

    digest = hashlib.blake2b(f"{RULES_VERSION}|{spacy.__version__}|{lang}|{len(texts)}".encode(), digest_size=16)
    for text in texts:
        encoded = text.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little"))  # length-prefixed: ["ab", "c"] != ["a", "bc"]
        digest.update(encoded)
    return digest.hexdigest()


def tokenize_corpus(texts: Sequence[str], lang: str = "en", cache_dir: str | Path | None = None,
                    workers: int | None = None, progress: bool = False) -> TokenizedCorpus:
    """Tokenise `texts` with `tokenize_with_rules`, in parallel, through an on-disk cache.

    workers: 0 tokenises in this process; k >= 1 uses a pool of k processes; None picks default_workers()
    (in-process for small inputs, where starting processes costs more than it saves).
    cache_dir: if given, the result is saved there as `tokens-<key>.safetensors` and loaded on the next call
    with the same texts (see corpus_key), instead of tokenising again.
    """
    cache_path = None
    if cache_dir is not None:
        cache_path = Path(cache_dir) / f"tokens-{corpus_key(texts, lang)}.safetensors"
        if cache_path.is_file():
            return TokenizedCorpus.load(cache_path)
    if workers is None:
        workers = default_workers() if len(texts) >= 2000 else 0
    chunk = max(1, min(1000, -(-len(texts) // max(1, 4 * workers))))  # ~4 chunks per worker: even load
    jobs = [(list(texts[i : i + chunk]), lang) for i in range(0, len(texts), chunk)]
    from tqdm.auto import tqdm

    parts = []
    with tqdm(total=len(texts), desc=f"tokenising ({max(1, workers)} process(es))", leave=False,
              disable=not progress) as bar:
        if workers <= 0:
            for job in jobs:
                parts.append(_tokenize_chunk(job))
                bar.update(len(job[0]))
        else:
            # spawn, not fork: the caller may hold CUDA or threads, which a forked child must not inherit.
            # An executor (unlike multiprocessing.Pool, which restarts dying workers forever) fails fast
            # if workers cannot start; then this process does the work itself: same tokens, just slower.
            try:
                with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                    for job, part in zip(jobs, pool.map(_tokenize_chunk, jobs)):
                        parts.append(part)
                        bar.update(len(job[0]))
            except BrokenProcessPool as err:
                warnings.warn(f"tokenising worker processes failed ({err}); tokenising in this process instead")
                parts = [_tokenize_chunk(job) for job in jobs]
    corpus = TokenizedCorpus.merge(parts)
    if cache_path is not None:
        corpus.save(cache_path, meta={"rules_version": str(RULES_VERSION), "lang": lang, "n_texts": str(len(texts))})
    return corpus


def undo_rules(tokens: Sequence[str]) -> list[str]:
    """Rule tokens back to plain tokens: `xxmaj the` -> "The", `xxup great` -> "GREAT", `xxrep 4 !` -> "!!!!",
    `xxwrep 3 very` -> "very very very". Markers without what they need are dropped."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok == TK_MAJ:
            if nxt is not None and nxt not in RULE_TOKENS:
                out.append(nxt[:1].upper() + nxt[1:])
                i += 1
        elif tok == TK_UP:
            if nxt is not None and nxt not in RULE_TOKENS:
                out.append(nxt.upper())
                i += 1
        elif tok in (TK_REP, TK_WREP):
            count = tokens[i + 1] if i + 1 < len(tokens) else ""
            what = tokens[i + 2] if i + 2 < len(tokens) else None
            if count.isdigit() and what is not None:
                n = min(int(count), 50)  # a generated "xxrep 999 !" should not become a wall of text
                if tok == TK_REP and what.isalnum() and out and out[-1][-1:].isalnum():
                    out[-1] += what * n  # "s xxrep 6 o" -> "soooooo"
                else:  # punctuation stays one token per character, so detokenize spaces it as usual
                    out.extend([what] * n if (tok == TK_WREP or not what.isalnum()) else [what * n])
                i += 2
            else:
                i += 1 if not count.isdigit() else 2
                continue
        else:
            out.append(tok)
        i += 1
    return out


def detokenize_with_rules(tokens: Sequence[str]) -> str:
    """Readable English text from ULMFiT tokens (the inverse of tokenize_with_rules, up to spacing and case
    inside words)."""
    return detokenize([t for t in undo_rules(tokens) if t not in (PAD, BOS, EOS)], "en")
