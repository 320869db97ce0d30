"""Lesson 10 data: the aclImdb / CSV / rt-polarity readers on generated files (and on ../shared/data if present),
LM streams with variable-length BPTT, and padded classifier batches."""
import io
import sys
import tarfile

import numpy as np
import pytest
import torch

from conftest import needs_shared
from dl_core.ulmfit.data import (
    BPTTBatchSampler, ClassificationDataset, LabelledText, LMStreamDataset, collate_classification, is_aclimdb, lm_stream,
    load_sentiment_data, read_aclimdb, read_csv_texts, read_general_corpus, read_rt_polarity, read_wikitext, sample,
)
from dl_core.text import Vocab

REVIEWS = {  # (split, folder, file name) -> text
    ("train", "pos", "0_9.txt"): "A wonderful film.<br /><br />Loved it.",
    ("train", "pos", "12_10.txt"): "Best movie ever!!!",
    ("train", "neg", "3_1.txt"): "Awful. Just awful.",
    ("test", "pos", "5_8.txt"): "Quite good, really.",
    ("test", "neg", "7_2.txt"): "Boring and too long.",
    ("test", "neg", "2_4.txt"): "Caf\u00e9 scenes were dull.",
    ("train", "unsup", "1_0.txt"): "No rating for this one.",
}


def make_aclimdb_tar(path, compression: str = "gz"):
    """A tiny aclImdb_v1.tar.gz in the original layout (with the extra files the real one has)."""
    with tarfile.open(path, f"w:{compression}") as archive:
        def add(name, data: bytes):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))

        add("aclImdb/README", b"readme")
        add("aclImdb/imdb.vocab", b"the\nfilm\n")
        add("aclImdb/train/urls_pos.txt", b"http://example.com\n")
        for (split, folder, name), text in REVIEWS.items():
            add(f"aclImdb/{split}/{folder}/{name}", text.encode("utf-8"))
    return path


def make_aclimdb_folder(root):
    for (split, folder, name), text in REVIEWS.items():
        file = root / "aclImdb" / split / folder / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
    return root / "aclImdb"


@pytest.mark.parametrize("name, compression", [("aclImdb_v1.tar.gz", "gz"), ("aclImdb_v1.tar.xz", "xz")])
def test_aclimdb_reader_reads_the_tar_without_unpacking(tmp_path, name, compression):
    splits = read_aclimdb(make_aclimdb_tar(tmp_path / name, compression))
    assert {k: len(v) for k, v in splits.items()} == {"train": 3, "test": 3, "unsup": 1}
    # sorted by label then review id: neg before pos, 0 before 12
    assert splits["train"] == [LabelledText("Awful. Just awful.", 0), LabelledText(REVIEWS["train", "pos", "0_9.txt"], 1),
                               LabelledText("Best movie ever!!!", 1)]
    assert [r.label for r in splits["test"]] == [0, 0, 1] and splits["test"][0].text == "Caf\u00e9 scenes were dull."
    assert splits["unsup"] == [LabelledText("No rating for this one.", -1)]


def test_aclimdb_folder_and_tar_read_the_same(tmp_path):
    from_tar = read_aclimdb(make_aclimdb_tar(tmp_path / "a.tar.gz"))
    folder = make_aclimdb_folder(tmp_path / "unpacked")
    assert read_aclimdb(folder) == from_tar
    assert read_aclimdb(folder.parent) == from_tar  # the parent of aclImdb/ works too
    assert is_aclimdb(folder) and is_aclimdb(tmp_path / "a.tar.gz")
    data = load_sentiment_data(folder)
    assert data.name == "aclImdb" and len(data.train) == 3 and len(data.heldout) == 3  # held-out = test/


def test_csv_reader_accepts_label_names_and_is_valid(tmp_path):
    path = tmp_path / "sample.csv"
    path.write_text('label,text,is_valid\nnegative,"Bad, really bad",False\npositive,Great,True\n1,"Nice ""quote""",False\n')
    rows, valid = read_csv_texts(path)
    assert rows == [LabelledText("Bad, really bad", 0), LabelledText("Great", 1), LabelledText('Nice "quote"', 1)]
    assert valid == [False, True, False]
    data = load_sentiment_data(path)
    assert data.heldout == [LabelledText("Great", 1)] and len(data.train) == 2


def test_csv_without_is_valid_gets_a_seeded_split(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("label,text\n" + "".join(f"{i % 2},text {i}\n" for i in range(50)))
    data = load_sentiment_data(path, heldout_fraction=0.1, seed=3)
    assert len(data.heldout) == 5 and len(data.train) == 45
    assert load_sentiment_data(path, seed=3).heldout == data.heldout  # seeded: the same split every time
    assert not {r.text for r in data.train} & {r.text for r in data.heldout}


def test_csv_errors_name_the_problem(tmp_path):
    bad_label = tmp_path / "bad.csv"
    bad_label.write_text("label,text\nmaybe,hmm\n")
    with pytest.raises(ValueError, match="bad.csv:2.*maybe"):
        read_csv_texts(bad_label)
    no_header = tmp_path / "nohead.csv"
    no_header.write_text("0,text\n")
    with pytest.raises(ValueError, match="'label' and 'text'"):
        read_csv_texts(no_header)
    with pytest.raises(FileNotFoundError, match="label,text"):
        load_sentiment_data(tmp_path / "nothing.txt")


def test_rt_polarity_reader_decodes_latin1_and_finds_the_pair(tmp_path):
    (tmp_path / "rt-polarity.pos").write_bytes("a charming , witty film . \nvery good\n".encode("latin-1"))
    (tmp_path / "rt-polarity.neg").write_bytes("a clich\xe9d mess . \n\n".encode("latin-1"))
    expected = [LabelledText("a charming , witty film .", 1), LabelledText("very good", 1), LabelledText("a clich\xe9d mess .", 0)]
    for path in (tmp_path, tmp_path / "rt-polarity.pos", tmp_path / "rt-polarity.neg", tmp_path / "rt-polarity"):
        assert read_rt_polarity(path) == expected
    assert load_sentiment_data(tmp_path / "rt-polarity.neg").name == "rt-polarity"


def test_wikitext_is_split_into_articles(tmp_path):
    wiki = tmp_path / "wikitext-2"
    wiki.mkdir()
    (wiki / "valid.txt").write_text(" \n = Lobster = \n \n A <unk> lobster . \n = = Habitat = = \n Sea . \n = Crab = \n Claws . \n")
    assert read_wikitext(wiki / "valid.txt") == ["= Lobster =\nA <unk> lobster .\n= = Habitat = =\nSea .", "= Crab =\nClaws ."]
    (tmp_path / "tiny-shakespeare.txt").write_text("First Citizen:\nSpeak.\n\nAll:\nSpeak, speak.\n")
    corpus = read_general_corpus(tmp_path)
    assert corpus["tiny-shakespeare"] == ["First Citizen:\nSpeak.", "All:\nSpeak, speak."] and len(corpus["wikitext-2/valid.txt"]) == 2


def test_sample_keeps_order_and_both_ends():
    items = list(range(100))
    picked = sample(items, 10, seed=1)
    assert picked == sorted(picked) and len(set(picked)) == 10 and sample(items, 10, seed=1) == picked
    assert sample(items, 0) == items and sample(items, 500) == items


def test_lm_stream_rows_continue_across_batches():
    docs = [np.arange(10, 10 + n) for n in (7, 5, 9, 11)]
    stream = lm_stream(docs)
    assert stream[0] == Vocab.bos_id and len(stream) == 32 + 4
    dataset = LMStreamDataset(stream, batch_size=3)
    sampler = BPTTBatchSampler(dataset.n_cols, bptt=4, variable=False)
    batches = [dataset[key] for (key,) in sampler]
    inputs = torch.cat([x for (x,), _ in batches], dim=1)  # (B, n_cols): the rows read straight through
    targets = torch.cat([y for _, y in batches], dim=1)
    assert torch.equal(inputs.flatten(), stream[: inputs.numel()])
    assert torch.equal(targets.flatten(), stream[1 : inputs.numel() + 1])  # each target is the next token


def test_a_backward_stream_is_the_forward_one_reversed_each_text_ending_in_bos():
    docs = [np.arange(10, 10 + n) for n in (3, 2)]
    forward, backward = lm_stream(docs, seed=0), lm_stream(docs, seed=0, backwards=True)
    assert torch.equal(backward, forward.flip(0))
    first = int(forward[1]) - 10  # the document the seeded order put first
    assert backward[-1] == Vocab.bos_id and backward[-len(docs[first]) - 1 : -1].tolist() == docs[first][::-1].tolist()


def test_variable_bptt_covers_every_column_once_and_changes_per_epoch():
    sampler = BPTTBatchSampler(n_cols=1000, bptt=20, variable=True, seed=0)
    windows = sampler.windows()
    assert len(windows) == len(sampler) == 50  # a fixed count: progress-based schedules stay exact
    starts = [s for s, _ in windows]
    assert starts[0] == 0 and all(s + n == nxt for (s, n), nxt in zip(windows, starts[1:] + [1000]))
    lengths = [n for _, n in windows]
    assert min(lengths) >= 4 and len(set(lengths)) > 5  # varied lengths
    sampler.set_epoch(1)
    assert sampler.windows() != windows  # different cut points next epoch
    sampler.set_epoch(0)
    assert sampler.windows() == windows  # seeded


def test_classifier_batches_pad_at_the_end():
    dataset = ClassificationDataset([np.array([5, 6, 7]), np.array([8])], [1, 0], max_len=3)
    assert dataset[0][0].tolist() == [Vocab.bos_id, 5, 6]  # <bos> added, then cut at max_len
    (ids, lengths), labels = collate_classification([dataset[0], dataset[1]])
    assert ids.tolist() == [[1, 5, 6], [1, 8, Vocab.pad_id]] and lengths.tolist() == [3, 2] and labels.tolist() == [1, 0]


# --- the real data, where ../shared/data is present -------------------------------------------------
def test_shared_aclimdb_tar_has_the_original_splits():
    splits = read_aclimdb(needs_shared("sentiment", "aclImdb_v1.tar.gz"))
    for name in ("train", "test"):
        assert len(splits[name]) == 25_000 and sum(r.label for r in splits[name]) == 12_500
    assert "<br />" in " ".join(r.text for r in splits["train"][:200])  # raw text: the tokeniser's rules fix it


def test_shared_rt_polarity_and_csv_sample_read():
    rows = read_rt_polarity(needs_shared("sentiment", "rt-polarity.pos"))
    assert len(rows) > 9_000 and 2 * sum(r.label for r in rows) == len(rows)  # as many positive as negative snippets
    data = load_sentiment_data(needs_shared("sentiment", "rt-polarity.pos"))
    assert len(data.heldout) == round(0.1 * len(rows))  # the seeded 10% the rt-polarity bar is measured on
    sample_csv = load_sentiment_data(needs_shared("sentiment", "imdb_sample.csv"))
    assert len(sample_csv.train) + len(sample_csv.heldout) == 1_000 and sample_csv.heldout


def test_shared_general_corpus_reads():
    corpus = read_general_corpus(needs_shared("text"))
    assert {"wikitext-2/valid.txt", "wikitext-2/test.txt", "tiny-shakespeare"} <= corpus.keys()
    assert all(len(texts) > 50 for texts in corpus.values())


def test_token_archive_round_trip_needs_no_spacy(tmp_path, monkeypatch):
    from dl_core.ulmfit.data import load_tokenized, write_token_archive

    data = load_tokenized(make_aclimdb_tar(tmp_path / "aclImdb_v1.tar.gz"), workers=0)
    assert list(data.parts) == ["train", "unsup", "heldout"] and data.parts["heldout"].labels.tolist() == [0, 0, 1]
    archive = write_token_archive(data, tmp_path / "imdb.tokens.tar.xz", sources=["aclImdb_v1.tar.gz"])
    monkeypatch.setitem(sys.modules, "spacy", None)  # as on the GPU machine: `import spacy` fails
    with pytest.raises(ImportError):
        import spacy  # noqa: F401
    again = load_tokenized(archive)
    assert (again.name, again.kind, list(again.parts)) == ("aclImdb", "sentiment", ["train", "unsup", "heldout"])
    for name, part in data.parts.items():
        copy = again.parts[name]
        assert [copy.corpus[i] for i in range(len(copy))] == [part.corpus[i] for i in range(len(part))]
        assert copy.labels.tolist() == part.labels.tolist()
    assert again.parts["train"].sample(2, seed=1).labels.tolist() == data.parts["train"].sample(2, seed=1).labels.tolist()
