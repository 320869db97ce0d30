"""The Lesson 11 DeViSE tab's handlers, called as the UI and the API call them (no server): a small random head over
a hand-made vocabulary stands in for the bundled weights (the handlers' logic is under test, not the weights)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import png_header
from PIL import Image

from demos import devise as devise_tab
from demos.common import LazyModel
from dl_core.devise.infer import ImageCollection
from dl_core.devise.model import DeviseConfig, DeviseHead
from dl_core.devise.vectors import WordVectors
from dl_core.hub import save_model

WORDS = [*devise_tab.CIFAR_CLASSES, "boat", "sail", "water", "animal", "raccoon", "engine", "tabby", "the", "of"]


def _swap_model(monkeypatch, folder) -> None:
    monkeypatch.setenv("HUB_REPO_DEVISE", str(folder))
    old = devise_tab.MODEL
    monkeypatch.setattr(devise_tab, "MODEL", LazyModel(old.name, old.loader, old.train_command, old.check, old.prepare))


def _tiny_weights(tmp_path, monkeypatch) -> None:
    """A random head onto 8-d vectors of 19 words, trained names: the CIFAR classes but cat and truck."""
    torch.manual_seed(0)
    trained = [name for name in devise_tab.CIFAR_CLASSES if name not in ("cat", "truck")]
    head = DeviseHead(DeviseConfig(hidden=16, out_features=8, image_size=64, trained_words=trained, seen_penalty=0.1))
    save_model(head, tmp_path / "devise", card="card", metrics={
        "unseen": ["cat", "truck"], "test": {"top1_unseen": 0.6, "conse_top1_unseen": 0.5, "top1_unseen_uncalibrated": 0.02,
                                             "top1_all": 0.62, "top1_all_uncalibrated": 0.69, "n": 10_000}})
    WordVectors(WORDS, torch.randn(len(WORDS), 8)).save(tmp_path / "devise")
    _swap_model(monkeypatch, tmp_path / "devise")


@pytest.fixture
def tiny_devise(tmp_path, monkeypatch):
    _tiny_weights(tmp_path, monkeypatch)
    monkeypatch.setattr(devise_tab, "builtin_collection", lambda: None)  # no CIFAR-10: the uploads alone


@pytest.fixture
def small_builtin(monkeypatch, tiny_devise):
    """Twenty images (two per class) in place of CIFAR-10's test set."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (20, 32, 32, 3), dtype=np.uint8)
    embeddings = torch.nn.functional.normalize(torch.randn(20, 8), dim=1)
    captions = [f"CIFAR-10 test #{i}: {devise_tab.CIFAR_CLASSES[i % 10]}" for i in range(20)]
    collection = ImageCollection(embeddings, images, captions)
    monkeypatch.setattr(devise_tab, "builtin_collection", lambda: collection)
    return collection


def _photo(tmp_path, size=(90, 60), name="photo.png", seed=0):
    path = tmp_path / name
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return str(path)


def test_a_photo_gets_words_classifier_classes_plots_and_a_label(tiny_devise, tmp_path):
    words, classes, class_plot, map_plot, similar, notes, summary = devise_tab.image_words_endpoint(_photo(tmp_path))
    assert len(words) == devise_tab.N_WORDS and set(words) <= set(WORDS)
    assert len(classes) == 5 and all(0 <= p <= 1 for p in classes.values())  # ImageNet class names, probabilities
    assert class_plot is not None and map_plot is not None and similar == []
    assert "As a CIFAR-10 label" in notes and devise_tab.NO_BUILTIN in notes
    assert "never saw a cat, truck" in summary and "60.0%" in summary


def test_the_imagenet_scope_keeps_to_words_in_imagenet_class_names(tiny_devise, tmp_path):
    words = devise_tab.image_to_words(_photo(tmp_path), "ImageNet class words only")[0]
    # Of the 19 words, only those that are a word of some ImageNet class name ("tabby" is; "the" is not).
    searcher = devise_tab.MODEL.get()
    allowed = {w for w, m in zip(searcher.words.words, searcher.imagenet_word_mask.tolist()) if m}
    assert words and set(words) <= allowed and "tabby" in allowed and "the" not in allowed


def test_the_penalty_moves_the_label_from_trained_to_unseen_names(tiny_devise, tmp_path):
    photo = _photo(tmp_path)
    searcher = devise_tab.MODEL.get()
    point = searcher.embed(searcher.encode([Image.open(photo).convert("RGB")])[0])[0]
    no_penalty = searcher.class_scores(point, list(devise_tab.CIFAR_CLASSES), 0.0)
    full = searcher.class_scores(point, list(devise_tab.CIFAR_CLASSES), 2.0)
    assert max(full, key=lambda r: r["score"])["name"] in ("cat", "truck")  # every trained name pushed below
    for plain, penalised in zip(no_penalty, full):
        assert plain["cosine"] == pytest.approx(penalised["cosine"])
        assert penalised["score"] == pytest.approx(plain["cosine"] - (2.0 if plain["trained"] else 0.0))
    words, *_, notes = devise_tab.image_to_words(photo, penalty=0.6)
    assert "penalised by 0.60" in notes
    # The nearest words pay the same penalty: 8 trained names 0.6 down, the 11 other words fill the top 10 first
    # where the random head puts them within 0.6 of each other; every trained name that stays is scored 0.6 lower.
    plain = dict(searcher.nearest_words(point, 19, "all", 0.0))
    penalised = dict(searcher.nearest_words(point, 19, "all", 0.6))
    trained = set(searcher.head.config.trained_words)
    for word, score in penalised.items():
        assert score == pytest.approx(plain[word] - (0.6 if word in trained else 0.0), abs=1e-5)
    assert set(words) == set(sorted(penalised, key=penalised.get, reverse=True)[:devise_tab.N_WORDS])


def test_the_builtin_collection_gives_the_nearest_images_with_captions(small_builtin, tmp_path):
    similar = devise_tab.image_to_words(_photo(tmp_path))[4]
    assert len(similar) == devise_tab.N_IMAGES
    cosines = [float(caption.rsplit("cos ", 1)[1]) for _, caption in similar]
    assert cosines == sorted(cosines, reverse=True) and all(c.startswith("CIFAR-10 test #") for _, c in similar)


def test_words_find_the_uploaded_photos_and_the_builtin_images_ranked_together(small_builtin, tmp_path):
    uploads = [_photo(tmp_path, name=f"mine{i}.png", seed=i) for i in range(3)]
    gallery, notes = devise_tab.words_to_images("sail + boat", uploads, True)
    assert len(gallery) == devise_tab.N_IMAGES and "of 23 images" in notes
    cosines = [float(caption.rsplit("cos ", 1)[1]) for _, caption in gallery]
    assert cosines == sorted(cosines, reverse=True)
    mine, notes = devise_tab.words_to_images("boat - water", uploads, False)
    assert len(mine) == 3 and all(caption.startswith("yours: mine") for _, caption in mine) and "of 3 images" in notes


def _fastai_cifar_archive(path):
    """A .tgz laid out like fast.ai's cifar10.tgz: cifar10/{train,test}/<class>/<n>.png (2 classes, 2 images each)."""
    import tarfile

    rng = np.random.default_rng(0)
    folder = path.parent / "archive" / "cifar10"
    for split in ("train", "test"):
        for name in ("airplane", "cat"):
            (folder / split / name).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / split / name / f"{i}.png")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="cifar10")
    return path


def test_without_cifar_the_download_button_adds_the_builtin_collection(tmp_path, monkeypatch):
    """On a server without CIFAR-10 (a fresh Space) the searches say how to get it; a failed download is a message;
    the download (the real code path, from a file:// URL) makes the test images searchable, and a second press
    downloads nothing."""
    _tiny_weights(tmp_path, monkeypatch)
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.chdir(tmp_path)
    gallery, notes = devise_tab.words_to_images("boat", None, True)
    assert gallery == [] and devise_tab.NO_BUILTIN in notes and "Nothing to search" in notes
    assert devise_tab.NO_BUILTIN in devise_tab.image_to_words(_photo(tmp_path))[-1]
    monkeypatch.setattr("dl_core.cifar.data.FASTAI_CIFAR10_URL", "http://127.0.0.1:9/cifar10.tgz")  # refused
    assert "Could not download CIFAR-10" in devise_tab.fetch_builtin()
    archive = _fastai_cifar_archive(tmp_path / "cifar10.tgz")
    monkeypatch.setattr("dl_core.cifar.data.FASTAI_CIFAR10_URL", archive.as_uri())
    status = devise_tab.fetch_builtin()
    assert status.startswith("CIFAR-10 test") and "4 images embedded" in status, status
    gallery, notes = devise_tab.words_to_images("boat", None, True)
    assert len(gallery) == 4 and all("CIFAR-10 test #" in caption for _, caption in gallery) and "of 4 images" in notes
    archive.unlink()  # a second press finds the download and fetches nothing
    assert devise_tab.fetch_builtin() == status


@pytest.mark.parametrize("query, message", [
    ("", "Type"), ("+ -", "word"), ("boat + zzzqx + qqqy", "Not in the vocabulary: zzzqx, qqqy"),
    (" + ".join(["boat"] * 1000), "Too many words"), ("boat!!", "'!' cannot be used"), (42, "must be text"),
    ("boat - boat", "cancel"),
])
def test_bad_expressions_are_messages_not_exceptions(tiny_devise, query, message):
    gallery, notes = devise_tab.words_to_images(query, None, True)
    assert gallery == [] and notes.startswith("⚠️") and message in notes


def test_bad_uploads_are_skipped_with_a_note_and_too_many_are_capped(tiny_devise, tmp_path, monkeypatch):
    good = _photo(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    gallery, notes = devise_tab.words_to_images("boat", [good, str(tmp_path / "broken.jpg")], True)
    assert len(gallery) == 1 and "Skipped `broken.jpg`" in notes
    monkeypatch.setattr(devise_tab, "MAX_UPLOADS", 2)
    gallery, notes = devise_tab.words_to_images("boat", [good] * 5, False)
    assert len(gallery) == 2 and "5 photos uploaded: searched the first 2" in notes
    assert "⚠️ Nothing to search" in devise_tab.words_to_images("boat", None, False)[1]
    assert devise_tab.words_to_images("boat", 42, True)[1].startswith("⚠️ *your photos* must be a list")


@pytest.mark.parametrize("photo, scope, penalty, message", [
    (None, "all 100k words", None, "⚠️"),
    ("no/such/file.png", "all 100k words", None, "⚠️"),
    ("PHOTO", "every word", None, "*words* must be one of"),
    ("PHOTO", "all 100k words", float("nan"), "penalty"),
    ("PHOTO", "all 100k words", "lots", "penalty"),
])
def test_bad_image_input_is_a_note_not_an_exception(tiny_devise, tmp_path, photo, scope, penalty, message):
    photo = _photo(tmp_path) if photo == "PHOTO" else photo
    words, classes, class_plot, map_plot, similar, notes = devise_tab.image_to_words(photo, scope, penalty)
    assert words == {} and class_plot is None and similar == [] and message in notes


def test_a_penalty_out_of_range_is_brought_into_range_with_a_note(tiny_devise, tmp_path):
    words, *_, notes = devise_tab.image_to_words(_photo(tmp_path), penalty=5)
    assert words and "outside 0–0.6: used 0.6" in notes and "penalised by 0.60" in notes
    assert "used 0" in devise_tab.image_to_words(_photo(tmp_path), penalty=-1)[5]


def test_a_decompression_bomb_and_a_text_file_are_refused(tiny_devise, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(60_000, 60_000))
    assert devise_tab.image_to_words(str(bomb))[5].startswith("⚠️")
    text = tmp_path / "notes.png"
    text.write_text("hello")
    assert devise_tab.image_to_words(str(text))[5].startswith("⚠️")


def test_missing_weights_explain_how_to_train_them(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()  # an existing folder with no config.json and no weights: no fallback to weights/
    _swap_model(monkeypatch, tmp_path / "empty")
    notes = devise_tab.image_to_words(_photo(tmp_path))[5]
    assert notes.startswith("⚠️") and devise_tab.TRAIN_COMMAND in notes
    gallery, notes = devise_tab.words_to_images("boat", None, True)
    assert gallery == [] and devise_tab.TRAIN_COMMAND in notes
    assert devise_tab.TRAIN_COMMAND in devise_tab.model_summary()


def test_a_head_for_other_word_vectors_is_refused_with_a_reason(tmp_path, monkeypatch):
    save_model(DeviseHead(DeviseConfig(hidden=8, out_features=6)), tmp_path / "mismatch", card="card")
    WordVectors(WORDS, torch.randn(len(WORDS), 8)).save(tmp_path / "mismatch")
    _swap_model(monkeypatch, tmp_path / "mismatch")
    notes = devise_tab.image_to_words(_photo(tmp_path))[5]
    assert notes.startswith("⚠️") and "8-d vectors" in notes


def test_the_default_penalty_is_the_bundled_heads_own(monkeypatch, tmp_path):
    config = tmp_path / "weights" / "devise" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text('{"seen_penalty": 0.21}')
    monkeypatch.setattr(devise_tab, "WEIGHTS_DIR", tmp_path / "weights")
    assert devise_tab.default_penalty() == 0.21
    config.write_text("not json")
    assert devise_tab.default_penalty() == 0.0
