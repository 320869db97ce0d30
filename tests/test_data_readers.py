import gzip

import pytest
import torch

from dl_core.translation.data import (
    Pair, SortishBatchSampler, TranslationDataset, collate_translation, read_pairs, split_by_source,
)
from dl_core.text import Vocab


def test_reads_tatoeba_tsv_with_and_without_attribution(tmp_path):
    path = tmp_path / "fra.txt"
    path.write_text("Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272\nHi.\tSalut !\n\n")
    assert read_pairs(path) == [Pair("Va !", "Go."), Pair("Salut !", "Hi.")]


def test_malformed_tsv_line_names_the_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("Go.\tVa !\nno tab here\n")
    with pytest.raises(ValueError, match="bad.tsv:2"):
        read_pairs(path)


@pytest.mark.parametrize("compress", [False, True])
def test_reads_aligned_files_plain_and_gzipped(tmp_path, compress):
    en, fr = "A dog runs.\nTwo cats.\n", "Un chien court.\nDeux chats.\n"
    if compress:
        (tmp_path / "test.en.gz").write_bytes(gzip.compress(en.encode()))
        (tmp_path / "test.fr.gz").write_bytes(gzip.compress(fr.encode()))
    else:
        (tmp_path / "test.en").write_text(en)
        (tmp_path / "test.fr").write_text(fr)
    assert read_pairs(tmp_path / "test") == [Pair("Un chien court.", "A dog runs."), Pair("Deux chats.", "Two cats.")]


def test_aligned_files_must_have_equal_lengths(tmp_path):
    (tmp_path / "x.en").write_text("a\nb\n")
    (tmp_path / "x.fr").write_text("a\n")
    with pytest.raises(ValueError, match="lines"):
        read_pairs(tmp_path / "x")


def test_missing_data_explains_the_formats(tmp_path):
    with pytest.raises(FileNotFoundError, match="English<TAB>French"):
        read_pairs(tmp_path / "nope.tsv")


def test_split_holds_out_whole_source_sentences():
    pairs = [Pair(f"fr{i % 30}", f"en{i}") for i in range(120)]  # each French sentence 4 times
    train, valid = split_by_source(pairs, n_valid=20, seed=1)
    assert len(valid) >= 20 and len(train) + len(valid) == 120
    assert not {p.fr for p in train} & {p.fr for p in valid}
    assert split_by_source(pairs, 20, seed=1) == (train, valid)  # seeded
    assert split_by_source(pairs, 20, seed=2)[1] != valid


def test_collate_pads_and_shifts_targets():
    (src, lengths, tgt_in), tgt_out = collate_translation([
        (torch.tensor([7, 8, 9]), torch.tensor([4, 5])),
        (torch.tensor([6]), torch.tensor([4, 5, 6])),
    ])
    assert src.tolist() == [[7, 8, 9], [6, 0, 0]] and lengths.tolist() == [3, 1]
    assert tgt_in.tolist() == [[Vocab.bos_id, 4, 5, 0], [Vocab.bos_id, 4, 5, 6]]
    assert tgt_out.tolist() == [[4, 5, Vocab.eos_id, 0], [4, 5, 6, Vocab.eos_id]]


def test_dataset_truncates_long_sentences():
    ds = TranslationDataset([list(range(100))], [[1, 2]], max_len=10)
    assert len(ds[0][0]) == 10


def test_sortish_sampler_covers_everything_groups_lengths_and_is_seeded_per_epoch():
    lengths = [i % 17 for i in range(1000)]
    sampler = SortishBatchSampler(lengths, 20, seed=3)
    epoch0 = list(sampler)
    assert sorted(i for b in epoch0 for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in epoch0) / len(epoch0)
    assert spread < 3  # batches hold similar lengths (random batches would spread ~15)
    assert list(sampler) == epoch0
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    sampler.set_epoch(0)
    assert list(sampler) == epoch0
