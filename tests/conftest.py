"""Shared test set-up. Environment first: huggingface_hub reads HF_HUB_OFFLINE once, at import."""
from __future__ import annotations

import os
import random
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DL_COMPILE", "0")  # torch.compile costs 5-20 s per model and input shape; tests/test_fast.py compiles on purpose

import pytest
import torch

from dl_core.paths import REPO_ROOT, data_root  # noqa: E402 - after the environment above
from dl_core.text import SPECIAL_TOKENS  # noqa: E402
from dl_core.translation.model import Seq2Seq, Seq2SeqConfig  # noqa: E402

# TORCH_THREADS lets two test runs share the 2-core machine without thrashing each other.
torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))

# A toy French -> English "language" with reordering (adjectives follow nouns in French) and agreement,
# small enough to learn in seconds: the training tests overfit it.
NOUNS = {"chat": "cat", "chien": "dog", "oiseau": "bird", "cheval": "horse", "poisson": "fish"}
ADJECTIVES = {"noir": "black", "blanc": "white", "rouge": "red", "petit": "small", "grand": "big"}
VERBS = {"dort": "sleeps", "mange": "eats", "court": "runs", "chante": "sings"}


def toy_pairs(n: int | None = None, seed: int = 0) -> list[tuple[str, str]]:
    """All (French, English) toy sentences, shuffled; e.g. 'le chat noir dort.' -> 'the black cat sleeps.'"""
    pairs = [
        (f"le {n_fr} {a_fr} {v_fr}.", f"the {a_en} {n_en} {v_en}.")
        for n_fr, n_en in NOUNS.items() for a_fr, a_en in ADJECTIVES.items() for v_fr, v_en in VERBS.items()
    ]
    random.Random(seed).shuffle(pairs)
    return pairs[:n] if n else pairs


@pytest.fixture
def toy_tsv(tmp_path) -> Path:
    """The toy corpus in the Tatoeba format (English<TAB>French<TAB>attribution)."""
    path = tmp_path / "toy.tsv"
    path.write_text("".join(f"{en}\t{fr}\tCC-BY 2.0 (France) Attribution: tatoeba.org #1\n" for fr, en in toy_pairs()))
    return path


def tiny_config(**overrides) -> Seq2SeqConfig:
    src = list(SPECIAL_TOKENS) + [f"fr{i}" for i in range(20)]
    tgt = list(SPECIAL_TOKENS) + [f"en{i}" for i in range(16)]
    settings = dict(src_vocab=src, tgt_vocab=tgt, emb_dim=16, enc_hidden=12, dec_hidden=20, attn_dim=10, max_out_len=12)
    settings.update(overrides)
    return Seq2SeqConfig(**settings)


@pytest.fixture
def tiny_model() -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(tiny_config()).eval()


def needs_shared(*parts: str) -> Path:
    """Path under the data root (DL_DATA_DIR, default ../shared/data), or skip the test with the reason."""
    path = data_root().joinpath(*parts)
    if not path.exists() and not path.with_name(path.name + ".en.gz").exists():  # or an aligned-files prefix
        pytest.skip(f"needs the shared data set {path} (absent on this machine)")
    return path


def fresh_model(monkeypatch, demo, folder=None, attr="MODEL"):
    """Give a demo module a new, unloaded LazyModel (`demo.<attr>`) reading `folder` (default: its bundled weights)."""
    from demos.common import LazyModel

    old = getattr(demo, attr)
    env = f"HUB_REPO_{old.name.upper().replace('-', '_')}"
    if folder is None:
        if not (REPO_ROOT / "weights" / old.name / "model.safetensors").exists():
            pytest.fail(f"the bundled weights weights/{old.name} are missing: train them (see the README)")
        monkeypatch.delenv(env, raising=False)
    else:
        monkeypatch.setenv(env, str(folder))
    monkeypatch.setattr(demo, attr, LazyModel(old.name, old.loader, old.train_command, old.check, old.prepare))


def complete_folder_size(name: str) -> int:
    """Bytes in weights/<name>, after checking it holds what a Hub-format folder needs."""
    files = {p.name: p.stat().st_size for p in (REPO_ROOT / "weights" / name).iterdir()}
    assert {"model.safetensors", "config.json", "README.md", "metrics.json"} <= files.keys(), name
    return sum(files.values())


def png_header(width: int, height: int) -> bytes:
    """A valid PNG that claims width x height pixels in a few bytes: a decompression bomb, to test the limits."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
