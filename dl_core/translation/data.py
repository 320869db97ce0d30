"""Parallel-text readers, a leak-free train/validation split, and length-bucketed batches.

Two on-disk formats are read:
- the Tatoeba/manythings format: `English<TAB>French[<TAB>attribution]` per line (`fra.txt`, `fra-eng.tsv`);
- the lesson's (and Multi30k's) two aligned files: `PREFIX.en` + `PREFIX.fr`, optionally gzipped.
"""
from __future__ import annotations

import gzip
import io
import random
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch.utils.data import Dataset, Sampler

from dl_core.text import Vocab

# The full corpus: ~230k pairs, CC-BY 2.0 FR (Tatoeba, packaged by manythings.org).
TATOEBA_FRA_ENG_URL = "https://www.manythings.org/anki/fra-eng.zip"


@dataclass(frozen=True)
class Pair:
    fr: str
    en: str


def _open_text(path: Path):
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def aligned_files(prefix: str | Path) -> tuple[Path, Path] | None:
    for ext in ("", ".gz"):
        en, fr = Path(f"{prefix}.en{ext}"), Path(f"{prefix}.fr{ext}")
        if en.is_file() and fr.is_file():
            return en, fr
    return None


def read_pairs(path: str | Path) -> list[Pair]:
    """Read French->English pairs from a TSV file or an aligned-file prefix (see module docstring)."""
    path = Path(path)
    aligned = aligned_files(path)
    if aligned is not None:
        en_path, fr_path = aligned
        with _open_text(en_path) as en_f, _open_text(fr_path) as fr_f:
            en_lines, fr_lines = en_f.read().splitlines(), fr_f.read().splitlines()
        if len(en_lines) != len(fr_lines):
            raise ValueError(f"{en_path} has {len(en_lines)} lines but {fr_path} has {len(fr_lines)}")
        return [Pair(fr.strip(), en.strip()) for en, fr in zip(en_lines, fr_lines) if en.strip() and fr.strip()]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: expected an 'English<TAB>French' file, or a prefix P with P.en and P.fr (optionally .gz)"
        )
    pairs = []
    with _open_text(path) as f:
        for line_no, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2:
                if line.strip():
                    raise ValueError(f"{path}:{line_no}: expected 'English<TAB>French', got {line[:80]!r}")
                continue
            en, fr = fields[0].strip(), fields[1].strip()  # a third field is Tatoeba's attribution
            if en and fr:
                pairs.append(Pair(fr, en))
    return pairs


def download_tatoeba(dest_dir: str | Path, url: str = TATOEBA_FRA_ENG_URL) -> Path:
    """Fetch the full Tatoeba French-English corpus (needs network) and return the path of `fra.txt`."""
    dest_dir = Path(dest_dir)
    target = dest_dir / "fra.txt"
    if target.exists():
        return target
    dest_dir.mkdir(parents=True, exist_ok=True)
    # manythings.org refuses urllib's default user agent.
    request = urllib.request.Request(url, headers={"User-Agent": "Mozilla/5.0 (fastai-part2-demos)"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = response.read()
    except OSError as err:
        raise RuntimeError(
            f"could not download {url} ({err}). Without network, pass a local file with --data "
            "(for example ../shared/data/translation/fra-eng.tsv)."
        ) from err
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        archive.extract("fra.txt", dest_dir)
    return target


def split_by_source(pairs: Sequence[Pair], n_valid: int, seed: int = 42) -> tuple[list[Pair], list[Pair]]:
    """Hold out whole French sentences, so that no validation source sentence is seen in training.

    Tatoeba repeats a French sentence with several English translations; splitting pairs at random would
    put the same source on both sides and inflate BLEU. We shuffle the distinct sources with `seed` and
    take sources until at least `n_valid` pairs are held out.
    """
    by_source: dict[str, list[Pair]] = {}
    for p in pairs:
        by_source.setdefault(p.fr, []).append(p)
    sources = sorted(by_source)
    random.Random(seed).shuffle(sources)
    valid: list[Pair] = []
    cut = 0
    while len(valid) < n_valid and cut < len(sources):
        valid.extend(by_source[sources[cut]])
        cut += 1
    train = [p for s in sources[cut:] for p in by_source[s]]
    return train, valid


class TranslationDataset(Dataset):
    """Numericalised pairs: item i is (source ids, target ids), truncated to `max_len` tokens each."""

    def __init__(self, src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]], max_len: int = 40):
        if len(src_ids) != len(tgt_ids):
            raise ValueError("source and target lists differ in length")
        self.src = [torch.tensor(list(s[:max_len]), dtype=torch.long) for s in src_ids]
        self.tgt = [torch.tensor(list(t[:max_len]), dtype=torch.long) for t in tgt_ids]

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.src[i], self.tgt[i]

    @classmethod
    def from_tokens(cls, src_tokens, tgt_tokens, src_vocab: Vocab, tgt_vocab: Vocab, max_len: int = 40):
        return cls([src_vocab.encode(t) for t in src_tokens], [tgt_vocab.encode(t) for t in tgt_tokens], max_len)


def collate_translation(items: Sequence[tuple[torch.Tensor, torch.Tensor]]):
    """Pad a list of (src, tgt) into model inputs and targets.

    Returns ((src, src_lengths, tgt_in), tgt_out) where tgt_in = <bos> y and tgt_out = y <eos>:
    src (B, S), src_lengths (B,), tgt_in (B, T), tgt_out (B, T); padding is Vocab.pad_id.
    """
    batch_size = len(items)
    src_lengths = torch.tensor([len(s) for s, _ in items], dtype=torch.long)
    tgt_len = max(len(t) for _, t in items) + 1  # +1 for <bos> / <eos>
    src = torch.full((batch_size, int(src_lengths.max())), Vocab.pad_id, dtype=torch.long)
    tgt_in = torch.full((batch_size, tgt_len), Vocab.pad_id, dtype=torch.long)
    tgt_out = torch.full((batch_size, tgt_len), Vocab.pad_id, dtype=torch.long)
    for b, (s, t) in enumerate(items):
        src[b, : len(s)] = s
        tgt_in[b, 0] = Vocab.bos_id
        tgt_in[b, 1 : len(t) + 1] = t
        tgt_out[b, : len(t)] = t
        tgt_out[b, len(t)] = Vocab.eos_id
    return (src, src_lengths, tgt_in), tgt_out


class SortishBatchSampler(Sampler[list[int]]):
    """Batches of similar-length items (less padding, faster RNNs), in a seeded order that varies by epoch.

    As fastai's SortishSampler: shuffle, cut into chunks of `batch_size * 50`, sort each chunk by length,
    cut into batches, shuffle the batches. Call `set_epoch(e)` for epoch e's order (resumed runs see the
    same batches as uninterrupted ones).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        if not self.shuffle:  # validation: sort by length only
            order = sorted(range(len(self.lengths)), key=lambda i: -self.lengths[i])
            yield from (order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size))
            return
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        chunk = self.batch_size * 50
        batches = []
        for start in range(0, len(order), chunk):
            block = sorted(order[start : start + chunk], key=lambda i: -self.lengths[i])
            batches.extend(block[i : i + self.batch_size] for i in range(0, len(block), self.batch_size))
        rng.shuffle(batches)
        yield from batches
