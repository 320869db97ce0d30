"""Sentiment and language-model data for lesson 10 (ULMFiT): readers, LM streams, classifier batches.

Readers (every one returns `LabelledText`s, label 0 = negative, 1 = positive, -1 = no label):
- the aclImdb layout, `aclImdb/{train,test}/{pos,neg}/<id>_<stars>.txt` (and `unsup/`, when present), read
  from the folder or straight from `aclImdb_v1.tar.gz` without unpacking it;
- CSV with a header naming `label` and `text` columns (labels 0/1, neg/pos or negative/positive), and an
  optional `is_valid` column that marks the held-out rows (fastai's imdb_sample.csv);
- rt-polarity: `rt-polarity.pos` + `rt-polarity.neg`, one snippet per line (latin-1 in the original).
`load_sentiment_data(path)` recognises the format and returns a train and a held-out part.

Batching:
- language model: all texts, each led by `<bos>`, joined into one stream and cut into `batch_size` rows;
  batch k is the next `bptt`-ish columns of every row, so row b of batch k continues row b of batch k-1 and
  the LM carries its hidden state across batches (truncated backprop through time). The length varies
  from batch to batch (AWD-LSTM's variable BPTT) so that the cut points move every epoch.
- classifier: whole texts, padded at the end, in batches of similar length (SortishBatchSampler).
"""
from __future__ import annotations

import csv
import io
import random
import re
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dl_core.translation.data import SortishBatchSampler  # noqa: F401 - re-exported: the classifier's sampler
from dl_core.text import RULES_VERSION, TokenizedCorpus, Vocab, tokenize_corpus

CLASSES = ("negative", "positive")
_LABEL_NAMES = {"0": 0, "neg": 0, "negative": 0, "1": 1, "pos": 1, "positive": 1}
_ACLIMDB_FILE = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$")
ACLIMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.xz", ".txz", ".tar.bz2")  # tarfile reads them all
WIKITEXT103_URL = "https://wikitext.smerity.com/wikitext-103-v1.zip"  # the original S3 bucket is gone


@dataclass(frozen=True)
class LabelledText:
    text: str
    label: int  # 0 negative, 1 positive, -1 unlabelled


@dataclass
class SentimentData:
    train: list[LabelledText]
    heldout: list[LabelledText]  # aclImdb: the test split; CSV: is_valid rows; rt-polarity: a seeded 10%
    name: str


# --- readers -----------------------------------------------------------------------------------------
def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # rt-polarity and some old IMDB dumps


def is_aclimdb(path: str | Path) -> bool:
    path = Path(path)
    if path.is_file():
        return path.name.endswith(ARCHIVE_SUFFIXES)
    return (path / "train" / "pos").is_dir() or (path / "aclImdb" / "train" / "pos").is_dir() or (
        path / "test" / "pos").is_dir() or (path / "aclImdb" / "test" / "pos").is_dir()


def read_aclimdb(path: str | Path) -> dict[str, list[LabelledText]]:
    """All splits of the aclImdb layout: {"train": [...], "test": [...], "unsup": [...] if present}.

    `path` is the archive (tar.gz as distributed, or recompressed .tar.xz/.tar.bz2; read member by member,
    never unpacked), the `aclImdb` folder, or its parent.
    Reviews come sorted by (split, label, review id), so the order is the same whichever form is read.
    """
    path = Path(path)
    found: list[tuple[str, str, int, str]] = []  # (split, folder, id, text)
    if path.is_file():
        with tarfile.open(path) as archive:
            for member in archive:
                m = _ACLIMDB_FILE.search(member.name)
                if m and member.isfile():
                    found.append((m[1], m[2], int(m[3]), _decode(archive.extractfile(member).read())))
    else:
        root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
        for file in root.glob("*/*/*.txt"):
            m = _ACLIMDB_FILE.search("aclImdb/" + file.relative_to(root).as_posix())
            if m:
                found.append((m[1], m[2], int(m[3]), _decode(file.read_bytes())))
    if not found:
        raise FileNotFoundError(f"{path}: no reviews in the aclImdb layout (aclImdb/{{train,test}}/{{pos,neg}}/N_S.txt)")
    splits: dict[str, list[LabelledText]] = {}
    label_of = {"neg": 0, "pos": 1}
    for split, folder, _, text in sorted(found, key=lambda f: (f[0] if f[1] != "unsup" else "unsup", f[1], f[2])):
        name = "unsup" if folder == "unsup" else split
        splits.setdefault(name, []).append(LabelledText(text, label_of.get(folder, -1)))
    return splits


def read_csv_texts(path: str | Path) -> tuple[list[LabelledText], list[bool] | None]:
    """Rows of a CSV with `label` and `text` columns; returns them and the `is_valid` flags if the column exists."""
    path = Path(path)
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.DictReader(f)
        fields = [name.strip().lower() for name in reader.fieldnames or []]
        if "label" not in fields or "text" not in fields:
            raise ValueError(f"{path}: expected a header with 'label' and 'text' columns, got {reader.fieldnames}")
        reader.fieldnames = fields
        rows, valid = [], []
        for line_no, row in enumerate(reader, 2):
            label = _LABEL_NAMES.get(str(row["label"]).strip().lower())
            if label is None:
                raise ValueError(f"{path}:{line_no}: label {row['label']!r} is not one of {sorted(_LABEL_NAMES)}")
            rows.append(LabelledText(row["text"] or "", label))
            valid.append(str(row.get("is_valid", "")).strip().lower() in ("true", "1", "yes"))
    return rows, (valid if "is_valid" in fields else None)


def rt_polarity_files(path: str | Path) -> tuple[Path, Path] | None:
    """(pos, neg) files for a folder holding rt-polarity.pos/.neg, either file, or their common prefix."""
    path = Path(path)
    candidates = [path / "rt-polarity"] if path.is_dir() else [path.with_suffix(""), path]
    for prefix in candidates:
        pos, neg = Path(f"{prefix}.pos"), Path(f"{prefix}.neg")
        if pos.is_file() and neg.is_file():
            return pos, neg
    return None


def read_rt_polarity(path: str | Path) -> list[LabelledText]:
    """Pang & Lee's sentence polarity data: all positive snippets, then all negative ones."""
    files = rt_polarity_files(path)
    if files is None:
        raise FileNotFoundError(f"{path}: expected rt-polarity.pos and rt-polarity.neg")
    out = []
    for label, file in ((1, files[0]), (0, files[1])):
        out += [LabelledText(line.strip(), label) for line in _decode(file.read_bytes()).splitlines() if line.strip()]
    return out


def seeded_split(items: Sequence[LabelledText], heldout_fraction: float, seed: int) -> tuple[list, list]:
    """Shuffle with `seed` and hold out a fraction: the same split every time for the same file and seed."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_heldout = round(len(items) * heldout_fraction)
    return [items[i] for i in order[n_heldout:]], [items[i] for i in order[:n_heldout]]


def sample(items: Sequence, n: int, seed: int = 0) -> list:
    """A seeded random `n` of `items`, kept in their order (both classes, unlike the first n of a sorted
    aclImdb split); all of them if n is 0 or not smaller."""
    if not n or n >= len(items):
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in chosen]


def load_sentiment_data(path: str | Path, heldout_fraction: float = 0.1, seed: int = 42) -> SentimentData:
    """Any supported format -> train and held-out parts (see the module docstring for which is which)."""
    path = Path(path)
    if is_aclimdb(path):
        splits = read_aclimdb(path)
        return SentimentData(splits.get("train", []), splits.get("test", []), "aclImdb")
    if rt_polarity_files(path) is not None:
        train, heldout = seeded_split(read_rt_polarity(path), heldout_fraction, seed)
        return SentimentData(train, heldout, "rt-polarity")
    if path.suffix.lower() == ".csv":
        rows, valid = read_csv_texts(path)
        if valid is not None and any(valid):
            return SentimentData([r for r, v in zip(rows, valid) if not v], [r for r, v in zip(rows, valid) if v], path.name)
        train, heldout = seeded_split(rows, heldout_fraction, seed)
        return SentimentData(train, heldout, path.name)
    raise FileNotFoundError(
        f"{path}: not sentiment data I can read. Expected aclImdb_v1.tar.gz or an aclImdb folder, a CSV with "
        "'label,text' columns, or rt-polarity.pos/.neg."
    )


# --- general-domain text for the LM's first stage ----------------------------------------------------------
_WIKI_HEADING = re.compile(r"^ = [^=].* = $")


def read_wikitext(path: str | Path) -> list[str]:
    """WikiText's `.txt`/`.tokens` files -> one text per article (split at the ` = Title = ` lines)."""
    articles: list[list[str]] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if _WIKI_HEADING.match(line) or not articles:
            articles.append([])
        if line.strip():
            articles[-1].append(line.strip())
    return ["\n".join(lines) for lines in articles if lines]


def read_plain_paragraphs(path: str | Path) -> list[str]:
    """A plain text file (tiny Shakespeare) -> one text per blank-line-separated paragraph (a speech)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def has_general_corpus(folder: str | Path) -> bool:
    folder = Path(folder)
    return folder.is_dir() and any((folder / name).exists() for name in ("wikitext-103", "wikitext-2", "tiny-shakespeare.txt"))


def read_general_corpus(folder: str | Path) -> dict[str, list[str]]:
    """The general-domain LM texts in `folder`: WikiText (any of wikitext-2/ or wikitext-103/ with
    train/valid/test .txt or wiki.*.tokens files) and tiny-shakespeare.txt. Returns {source name: texts}."""
    folder = Path(folder)
    corpus: dict[str, list[str]] = {}
    for wiki in ("wikitext-103", "wikitext-2"):
        for file in sorted((folder / wiki).glob("*")) if (folder / wiki).is_dir() else []:
            if file.suffix in (".txt", ".tokens") and not file.name.startswith("."):
                corpus[f"{wiki}/{file.name}"] = read_wikitext(file)
    shakespeare = folder / "tiny-shakespeare.txt"
    if shakespeare.is_file():
        corpus["tiny-shakespeare"] = read_plain_paragraphs(shakespeare)
    if not corpus:
        raise FileNotFoundError(f"{folder}: no wikitext-2/, wikitext-103/ or tiny-shakespeare.txt")
    return corpus


def _download(url: str, timeout: float = 120) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "Mozilla/5.0 (fastai-part2-demos)"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except OSError as err:
        raise RuntimeError(f"could not download {url} ({err}); without network, pass local data instead") from err


def download_wikitext103(dest_dir: str | Path, url: str = WIKITEXT103_URL) -> Path:
    """Fetch WikiText-103 (~180 MB zip, 103M tokens; needs network) into dest_dir/wikitext-103/."""
    target = Path(dest_dir) / "wikitext-103"
    if any(target.glob("wiki.*.tokens")):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(_download(url, timeout=600))) as archive:
        for name in archive.namelist():
            if name.endswith(".tokens"):
                (target / Path(name).name).write_bytes(archive.read(name))
    return target


def download_aclimdb(dest_dir: str | Path, url: str = ACLIMDB_URL) -> Path:
    """Fetch the IMDB review archive (84 MB; needs network); it is read as it is, never unpacked."""
    target = Path(dest_dir) / "aclImdb_v1.tar.gz"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_download(url, timeout=600))
    return target


# --- tokenised data ---------------------------------------------------------------------------------------
# Training reads tokens, not text. `load_tokenized` turns any supported data into tokens (through the token
# cache), and a *token archive* (`NAME.tokens.tar.xz`, written by `write_token_archive`) holds them ready-made:
# it needs no spaCy to read and is smaller than the text (IMDB: ~16 MB against 20 MB of .tar.xz text), which
# is how the GPU machine, where spaCy is not installed, trains on exactly the tokens this machine makes.
TOKEN_ARCHIVE_SUFFIX = ".tokens.tar.xz"


@dataclass
class TokenizedSplit:
    corpus: TokenizedCorpus
    labels: np.ndarray  # (n_texts,) int64: 0 negative, 1 positive, -1 unlabelled

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, indices: Sequence[int]) -> "TokenizedSplit":
        return TokenizedSplit(self.corpus.subset(indices), self.labels[np.asarray(indices, dtype=np.int64)])

    def sample(self, n: int, seed: int = 0) -> "TokenizedSplit":
        """The texts `sample(rows, n, seed)` picks from the same list of rows (the token cache is shared)."""
        return self.select(sample(range(len(self)), n, seed))


@dataclass
class TokenizedData:
    name: str
    kind: str  # "sentiment": parts train, heldout (and unsup); "general": one unlabelled part per source file
    parts: dict[str, TokenizedSplit]


def tokenize_rows(rows: Sequence[LabelledText], cache_dir=None, workers: int | None = None, progress: bool = False) -> TokenizedSplit:
    corpus = tokenize_corpus([r.text for r in rows], cache_dir=cache_dir, workers=workers, progress=progress)
    return TokenizedSplit(corpus, np.array([r.label for r in rows], dtype=np.int64))


def is_token_archive(path: str | Path) -> bool:
    return Path(path).name.endswith(TOKEN_ARCHIVE_SUFFIX)


def load_tokenized(path: str | Path, cache_dir=None, workers: int | None = None, progress: bool = False,
                   heldout_fraction: float = 0.1, seed: int = 42) -> TokenizedData:
    """Tokens (and labels) of any supported data: a token archive as it is; a general-text folder, the
    aclImdb layout, CSV or rt-polarity read and tokenised through the cache (each list as the reader
    returns it, so every script that reads the same data hits the same cache entries)."""
    path = Path(path)
    if is_token_archive(path):
        return read_token_archive(path)
    tokenize = lambda rows: tokenize_rows(rows, cache_dir, workers, progress)  # noqa: E731
    if has_general_corpus(path):
        corpus = read_general_corpus(path)
        return TokenizedData(path.name, "general", {k: tokenize([LabelledText(t, -1) for t in v]) for k, v in corpus.items()})
    if is_aclimdb(path):
        splits = read_aclimdb(path)
        parts = {"train": tokenize(splits.get("train", []))}
        if "unsup" in splits:
            parts["unsup"] = tokenize(splits["unsup"])
        parts["heldout"] = tokenize(splits.get("test", []))
        return TokenizedData("aclImdb", "sentiment", parts)
    data = load_sentiment_data(path, heldout_fraction, seed)
    return TokenizedData(data.name, "sentiment", {"train": tokenize(data.train), "heldout": tokenize(data.heldout)})


def write_token_archive(data: TokenizedData, path: str | Path, sources: Sequence[str] = ()) -> Path:
    """One xz-compressed tar: manifest.json, then per part `<part>.safetensors` (ids, offsets, labels) and
    `<part>.tokens.json` (its token table). Safetensors and JSON only: reading it cannot run code."""
    import json
    import spacy
    from safetensors.numpy import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {"format": "ulmfit-tokens", "version": 1, "rules_version": RULES_VERSION, "spacy": spacy.__version__,
                "name": data.name, "kind": data.kind, "parts": list(data.parts), "sources": list(sources)}
    files = {"manifest.json": json.dumps(manifest, indent=1).encode()}
    for name, part in data.parts.items():
        files[f"{name}.safetensors"] = save({"ids": part.corpus.ids, "offsets": part.corpus.offsets, "labels": part.labels})
        files[f"{name}.tokens.json"] = json.dumps(part.corpus.tokens, ensure_ascii=False).encode()
    tmp = path.with_name(path.name + ".tmp")
    with tarfile.open(tmp, "w:xz") as archive:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    tmp.replace(path)
    return path


def read_token_archive(path: str | Path) -> TokenizedData:
    import json
    from safetensors.numpy import load

    with tarfile.open(path) as archive:
        files = {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}
    manifest = json.loads(files["manifest.json"])
    if manifest.get("format") != "ulmfit-tokens":
        raise ValueError(f"{path}: not a token archive (no ulmfit-tokens manifest)")
    if manifest["rules_version"] != RULES_VERSION:
        raise ValueError(f"{path}: tokens made with rules version {manifest['rules_version']}, this code has "
                         f"{RULES_VERSION}: make the archive again (train/ulmfit_gpu.py prepare)")
    parts = {}
    for name in manifest["parts"]:
        arrays = load(files[f"{name}.safetensors"])
        tokens = json.loads(files[f"{name}.tokens.json"])
        parts[name] = TokenizedSplit(TokenizedCorpus(tokens, arrays["ids"], arrays["offsets"]), arrays["labels"])
    return TokenizedData(manifest["name"], manifest["kind"], parts)


def load_labelled(path: str | Path, cache_dir=None, workers: int | None = None, progress: bool = True,
                  seed: int = 42) -> TokenizedData:
    """Tokens and labels of sentiment data (a token archive, or text tokenised through the cache: train/lm.py
    tokenised the same lists, so after it this is a cache hit); general text is refused."""
    data = load_tokenized(path, cache_dir=cache_dir, workers=workers, progress=progress, seed=seed)
    if data.kind != "sentiment":
        raise SystemExit(f"{path}: no labelled texts (this is general text for train/lm.py)")
    return data


def lm_corpus(path: str | Path, lm_texts: str = "all", max_texts: int = 0, seed: int = 42, cache_dir=None,
              workers: int | None = None, progress: bool = True) -> tuple[TokenizedCorpus, str]:
    """Every text at `path` as one corpus for a language model, and a description of it. For sentiment data the
    labels are ignored; lm_texts "all" also takes the held-out part's texts (IMDB: the test reviews, as the
    lesson and the ULMFiT paper do: an LM may read any unlabelled in-domain text), "train" does not.
    `max_texts`: a seeded N of each part (quick runs, tests)."""
    data = load_tokenized(path, cache_dir=cache_dir, workers=workers, progress=progress)
    names = [n for n in data.parts if n != "heldout" or lm_texts == "all"]
    corpus = TokenizedCorpus.concat([data.parts[n].sample(max_texts, seed).corpus for n in names])
    if data.kind == "general":
        return corpus, ", ".join(f"{n} ({len(data.parts[n])} texts)" for n in names)
    return corpus, f"{data.name} {'+'.join(names)} texts"


def split_documents(corpus: TokenizedCorpus, valid_fraction: float, seed: int) -> tuple[TokenizedCorpus, TokenizedCorpus]:
    """A seeded document split: (train, held-out) texts, at least one held out."""
    train_idx, valid_idx = seeded_split(list(range(len(corpus))), valid_fraction, seed)
    if not valid_idx:
        train_idx, valid_idx = train_idx[1:], train_idx[:1]
    return corpus.subset(train_idx), corpus.subset(valid_idx)


# --- language-model batches --------------------------------------------------------------------------------
def lm_stream(docs: Sequence[np.ndarray], seed: int | None = None, backwards: bool = False) -> torch.Tensor:
    """One long id stream: `<bos>` + each document, in a seeded random order (or as given, seed None).
    `backwards` reverses the whole stream, for a backward LM: each document read from its last token, then
    its `<bos>`, exactly what a backward classifier reads (`reverse_padded` of `<bos>` + the text)."""
    order = list(range(len(docs)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    parts = []
    for i in order:
        parts += [np.array([Vocab.bos_id]), np.asarray(docs[i], dtype=np.int64)]
    stream = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return torch.from_numpy(np.ascontiguousarray(stream[::-1]) if backwards else stream)


class LMStreamDataset(Dataset):
    """The stream laid out as `batch_size` rows; item (start, length) is one batch of the next columns.

    inputs[b, j] is a token and targets[b, j] the token after it in the stream, so every column of a row is
    usable and row b of one batch continues row b of the previous batch.
    """

    def __init__(self, stream: torch.Tensor, batch_size: int):
        n_cols = (len(stream) - 1) // batch_size
        if n_cols < 2:
            raise ValueError(f"{len(stream)} tokens are too few for {batch_size} rows")
        self.inputs = stream[: n_cols * batch_size].view(batch_size, n_cols)  # (B, n_cols)
        self.targets = stream[1 : n_cols * batch_size + 1].view(batch_size, n_cols)  # (B, n_cols), shifted by one
        self.n_cols = n_cols

    def __len__(self) -> int:
        return self.n_cols

    def __getitem__(self, key: tuple[int, int]):
        start, length = key
        return (self.inputs[:, start : start + length],), self.targets[:, start : start + length]


def first_item(items):
    """collate_fn for LMStreamDataset: each 'batch' of the sampler is one (start, length) key."""
    return items[0]


class BPTTBatchSampler(Sampler[list[tuple[int, int]]]):
    """Cuts the columns of an LMStreamDataset into consecutive (start, length) windows, in order.

    variable=True is AWD-LSTM's variable-length BPTT: a window is `bptt` long with probability 0.95 and
    `bptt / 2` otherwise, plus N(0, 5) noise (at least 5). The number of windows per epoch is fixed
    (n_cols // bptt), so progress-based schedules work; the lengths are rescaled to cover every column once.
    Call set_epoch(e) for epoch e's lengths (seeded: a resumed run cuts the same windows).
    """

    def __init__(self, n_cols: int, bptt: int, variable: bool = True, seed: int = 0):
        self.n_cols, self.bptt, self.variable, self.seed = n_cols, bptt, variable, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return max(1, self.n_cols // self.bptt)

    def windows(self) -> list[tuple[int, int]]:
        n = len(self)
        if not self.variable:
            starts = [i * self.bptt for i in range(n)] + [self.n_cols]
        else:
            rng = np.random.default_rng(self.seed * 1_000_003 + self.epoch)
            base = np.where(rng.random(n) < 0.95, self.bptt, self.bptt / 2)
            lengths = np.maximum(5, rng.normal(base, 5))
            starts = np.round(np.concatenate([[0], np.cumsum(lengths)]) / lengths.sum() * self.n_cols).astype(int).tolist()
        # the last window takes any remainder, so every column is used once
        starts[-1] = self.n_cols
        return [(s, e - s) for s, e in zip(starts[:-1], starts[1:]) if e > s]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for window in self.windows():
            yield [window]


def lm_loader(docs: Sequence[np.ndarray], batch_size: int, bptt: int, variable: bool, seed: int,
              backwards: bool = False) -> DataLoader:
    """The documents as one stream (seeded order; reversed for a backward LM) in BPTT windows of batch_size rows."""
    dataset = LMStreamDataset(lm_stream(docs, seed=seed, backwards=backwards), batch_size)
    sampler = BPTTBatchSampler(dataset.n_cols, bptt, variable=variable, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=first_item)


# --- classifier batches ---------------------------------------------------------------------------------
class ClassificationDataset(Dataset):
    """Item i: (ids of text i, led by `<bos>` and cut to max_len tokens, label i)."""

    def __init__(self, docs: Sequence[np.ndarray], labels: Sequence[int], max_len: int = 0):
        if len(docs) != len(labels):
            raise ValueError("docs and labels differ in length")
        self.docs = [torch.from_numpy(np.concatenate([[Vocab.bos_id], np.asarray(d, dtype=np.int64)])) for d in docs]
        if max_len:
            self.docs = [d[:max_len] for d in self.docs]
        self.labels = torch.as_tensor(list(labels), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.docs)

    def __getitem__(self, i: int):
        return self.docs[i], self.labels[i]

    @property
    def lengths(self) -> list[int]:
        return [len(d) for d in self.docs]


def collate_classification(items: Sequence[tuple[torch.Tensor, torch.Tensor]]):
    """Pad at the end: ((ids (B, T), lengths (B,)), labels (B,)). End-padding keeps a causal LSTM's
    outputs at the real positions exactly what they would be alone; the model pools only those."""
    lengths = torch.tensor([len(ids) for ids, _ in items], dtype=torch.long)
    ids = torch.full((len(items), int(lengths.max())), Vocab.pad_id, dtype=torch.long)
    for b, (doc, _) in enumerate(items):
        ids[b, : len(doc)] = doc
    return (ids, lengths), torch.stack([label for _, label in items])


def classification_loader(docs: Sequence[np.ndarray], labels: Sequence[int], batch_size: int, max_len: int,
                          shuffle: bool, seed: int) -> DataLoader:
    """Whole texts (cut at max_len) in batches of similar length, shuffled by batch when `shuffle`."""
    dataset = ClassificationDataset(docs, labels, max_len=max_len)
    sampler = SortishBatchSampler(dataset.lengths, batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_classification)
