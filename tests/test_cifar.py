"""Lessons 12-13: the DarkNet, the CIFAR-10 reader, the training lab and train/cifar.py, on generated images."""
from __future__ import annotations

import io
import json
import math
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from dl_core.cifar.data import ImageSet, pad_crop_flip, read_split
from dl_core.cifar.lab import LabData, live_lr_find, live_train
from dl_core.cifar.model import Darknet, DarknetConfig
from dl_core.hub import load_model, save_model
from dl_core.schedules import Phase, one_cycle_phases

COLOURS = {"airplane": (200, 40, 40), "automobile": (40, 40, 200)}  # two classes any network tells apart


def coloured_image(colour, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    noise = rng.integers(-40, 40, (size, size, 3))
    return np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)


def make_cifar_zip(path, n_train: int = 40, n_test: int = 10, classes=COLOURS, seed: int = 0, top: str = ""):
    """A zip laid out like cifar10-jpg.zip: <split>/<class>/NNNN.jpg, one colour per class."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as archive:
        for split, n in (("train", n_train), ("test", n_test)):
            for name, colour in classes.items():
                for i in range(n):
                    buffer = io.BytesIO()
                    Image.fromarray(coloured_image(colour, rng)).save(buffer, "JPEG", quality=95)
                    archive.writestr(f"{top}{split}/{name}/{i:04d}.jpg", buffer.getvalue())
    return path


@pytest.fixture
def cifar_zip(tmp_path):
    return make_cifar_zip(tmp_path / "cifar.zip")


# --- model ----------------------------------------------------------------------------------------------------
def test_the_lessons_darknet_goes_from_32_to_2_pixels_with_1024_channels():
    model = Darknet(DarknetConfig())  # [1, 2, 4, 6, 3], nf 32, strides 2 1 2 2 2
    shapes = [tuple(s.shape[1:]) for s in model.stages(torch.rand(2, 3, 32, 32))]
    assert shapes == [(32, 32, 32), (64, 16, 16), (128, 16, 16), (256, 8, 8), (512, 4, 4), (1024, 2, 2)]
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert 31e6 < sum(p.numel() for p in model.parameters()) < 32e6
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(conv.bias is None for conv in convs)  # bias-free before BatchNorm
    assert all(m.momentum == 0.01 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert len(convs) == 1 + sum(1 + 2 * n for n in [1, 2, 4, 6, 3])


def test_the_bundled_configuration_keeps_32_pixels_in_its_first_group():
    from train.cifar import BUNDLED

    model = Darknet(BUNDLED)
    shapes = [tuple(s.shape[1:]) for s in model.stages(torch.rand(1, 3, 32, 32))]
    assert shapes == [(32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)]
    assert sum(p.numel() for p in model.parameters()) * 2 < 20e6  # fp16 weights under the 20 MB bar


def test_a_config_with_mismatched_strides_is_refused():
    with pytest.raises(ValueError, match="strides"):
        DarknetConfig(num_blocks=[1, 1], strides=[2])


def test_hub_round_trip_keeps_outputs_and_config(tmp_path):
    torch.manual_seed(0)
    model = Darknet(DarknetConfig(num_blocks=[1, 1], nf=8, strides=[1, 2], classes=["a", "b", "c"])).eval()
    save_model(model, tmp_path / "m", card="card", fp16=False)
    assert json.loads((tmp_path / "m" / "config.json").read_text())["strides"] == [1, 2]
    loaded = load_model(Darknet, tmp_path / "m")
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(model(x), loaded(x), atol=1e-6)


# --- data -----------------------------------------------------------------------------------------------------
def test_reader_reads_splits_from_a_zip_a_folder_and_the_cache(cifar_zip, tmp_path):
    train = read_split(cifar_zip, "train", cache_dir=tmp_path / "cache")
    assert train.images.shape == (80, 32, 32, 3) and train.images.dtype == np.uint8
    assert train.classes == ["airplane", "automobile"] and np.bincount(train.labels).tolist() == [40, 40]
    red = train.images[train.labels == 0].mean(axis=(0, 1, 2))
    assert red[0] > 150 and red[2] < 90  # the colours survive JPEG
    cached = read_split(cifar_zip, "train", cache_dir=tmp_path / "cache")
    assert np.array_equal(cached.images, train.images) and cached.classes == train.classes
    folder = tmp_path / "extracted"
    zipfile.ZipFile(cifar_zip).extractall(folder)
    from_folder = read_split(folder, "test", cache_dir=None)
    assert len(from_folder) == 20 and np.array_equal(from_folder.images, read_split(cifar_zip, "test", cache_dir=None).images)


def test_reader_finds_a_top_folder_and_refuses_what_is_not_cifar(tmp_path):
    archive = make_cifar_zip(tmp_path / "fastai.zip", n_train=2, n_test=1, top="cifar10/")  # the fast.ai archive's layout
    assert len(read_split(archive, "test", cache_dir=None)) == 2
    with pytest.raises(ValueError, match="split"):
        read_split(archive, "valid", cache_dir=None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        read_split(tmp_path / "empty", "train", cache_dir=None)
    with pytest.raises(FileNotFoundError):
        read_split(tmp_path / "missing.zip", "train", cache_dir=None)


def test_all_ten_cifar_folders_take_cifars_class_order(tmp_path):
    from dl_core.cifar.model import CIFAR10_CLASSES

    classes = {name: (i * 25, 100, 100) for i, name in enumerate(sorted(CIFAR10_CLASSES))}
    split = read_split(make_cifar_zip(tmp_path / "ten.zip", n_train=1, n_test=1, classes=classes), "test", cache_dir=None)
    assert split.classes == CIFAR10_CLASSES  # airplane, automobile, bird, ... as the model's head expects


def test_subset_is_seeded_and_class_balanced(cifar_zip):
    train = read_split(cifar_zip, "train", cache_dir=None)
    sample = train.subset(20, seed=3)
    assert np.bincount(sample.labels).tolist() == [10, 10]
    assert np.array_equal(sample.images, train.subset(20, seed=3).images)
    assert not np.array_equal(sample.images, train.subset(20, seed=4).images)


def test_augmentation_pads_by_reflection_crops_and_flips():
    image = torch.arange(3 * 8 * 8, dtype=torch.float32).reshape(3, 8, 8)
    outputs = [pad_crop_flip(image, torch.Generator().manual_seed(s), pad=2) for s in range(300)]
    assert all(o.shape == (3, 8, 8) for o in outputs)
    assert any(torch.equal(o, image) for o in outputs) and any(torch.equal(o, image.flip(-1)) for o in outputs)
    assert any(not torch.equal(o, image) and not torch.equal(o, image.flip(-1)) for o in outputs)  # shifted
    padded = torch.nn.functional.pad(image[None], (2, 2, 2, 2), mode="reflect")[0]
    for o in outputs:  # every output is a window of the reflection-padded image, mirrored or not
        windows = [padded[:, t:t + 8, s:s + 8] for t in range(5) for s in range(5)]
        assert any(torch.equal(o, w) or torch.equal(o, w.flip(-1)) for w in windows)


def test_image_set_gives_floats_in_0_1(cifar_zip):
    (image,), label = ImageSet(read_split(cifar_zip, "test", cache_dir=None), augment=False)[0]
    assert image.shape == (3, 32, 32) and 0 <= image.min() and image.max() <= 1 and label.item() == 0


# --- the training lab -----------------------------------------------------------------------------------------
@pytest.fixture
def lab():
    return LabData(_toy_split(640), _toy_split(20))


def test_live_training_streams_a_falling_loss_and_rising_accuracy(lab):
    updates = list(live_train(lab, one_cycle_phases(2, 0.2), epochs=2, report_every=0.05))
    last = updates[-1]
    assert last.finished and not last.stopped
    assert last.total_iterations == 2 * (640 // 64) and last.iterations == list(range(1, last.total_iterations + 1))
    losses = last.losses
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])
    assert last.accuracies[0] <= 0.75 and last.accuracies[-1] == 1.0  # two colours: learned
    assert last.eval_iterations[0] == 0 and last.eval_iterations[-1] == last.total_iterations
    # the LR and momentum applied are the schedule's, batch by batch
    from dl_core.schedules import phase_schedules, sample

    lr, momentum = phase_schedules(one_cycle_phases(2, 0.2))
    assert last.lrs == pytest.approx(sample(lr, last.total_iterations))
    assert last.momentums == pytest.approx(sample(momentum, last.total_iterations))


def test_live_training_stops_when_asked_and_says_so(lab):
    seen = []

    def should_stop():
        seen.append(1)
        return len(seen) >= 4

    last = list(live_train(lab, one_cycle_phases(2, 0.2), report_every=0.05, should_stop=should_stop))[-1]
    assert last.finished and last.stopped and len(last.iterations) == 4 < last.total_iterations


def test_closing_the_stream_stops_the_fit():
    import threading

    stream = live_train(LabData(_toy_split(640), _toy_split(20)), [Phase(2, (0.1, 0.1))], report_every=0.01)
    first = next(stream)
    stream.close()  # what Gradio does when the browser goes away
    assert not any(t.name == "training-lab" and t.is_alive() for t in threading.enumerate())
    assert first.total_iterations == 20


def _toy_split(n: int):
    from dl_core.cifar.data import Split

    rng = np.random.default_rng(n)
    labels = np.arange(n) % 2
    images = np.stack([coloured_image(list(COLOURS.values())[label], rng) for label in labels])
    return Split(images, labels.astype(np.int64), list(COLOURS))


def test_a_fractional_epoch_plays_the_whole_schedule_shape(lab):
    last = list(live_train(lab, one_cycle_phases(10, 0.2), epochs=0.5, report_every=0.05))[-1]
    assert last.total_iterations == 5 and len(last.iterations) == 5
    assert last.lrs[0] == pytest.approx(0.2 / 20) and max(last.lrs) > 0.1  # warm-up and peak inside half an epoch


def test_lr_finder_on_a_toy_problem_finds_the_divergence(lab):
    updates = list(live_lr_find(lab, start_lr=1e-3, end_lr=1e5, n_iter=60, report_every=0.05))
    last = updates[-1]
    assert last.finished and last.diverged_at is not None and len(last.lrs) < 60
    assert last.lrs == sorted(last.lrs) and last.lrs[0] == pytest.approx(1e-3)
    assert 1e-3 < last.suggestion < last.diverged_at and last.min_loss_lr < last.diverged_at
    assert min(last.losses) < last.losses[0]


# --- train/cifar.py -------------------------------------------------------------------------------------------
def test_train_then_evaluate_prints_json(cifar_zip, tmp_path, capsys):
    from train import cifar

    out = tmp_path / "weights"
    cifar.main(["train", "--data", str(cifar_zip), "--num-blocks", "1", "1", "--nf", "8", "--strides", "1", "2",
                "--epochs", "2", "--bs", "16", "--lr", "0.05", "--out", str(out), "--checkpoint", "none"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["n"] == 20 and len(metrics["history"]) == 2 and "accuracy" in metrics["history"][0]
    assert "python train/cifar.py train --data" in (out / "README.md").read_text()
    capsys.readouterr()
    cifar.main(["evaluate", "--weights", str(out), "--data", str(cifar_zip)])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(last) == {"accuracy", "n"} and last["n"] == 20 and 0 <= last["accuracy"] <= 1
    assert last["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-4)


def test_evaluate_refuses_data_with_other_classes(cifar_zip, tmp_path):
    from dl_core.cifar.evaluate import evaluate_folder

    save_model(Darknet(DarknetConfig(num_blocks=[1], nf=8, strides=[2])), tmp_path / "m", card="card")  # CIFAR's 10 classes
    with pytest.raises(ValueError, match="classes"):
        evaluate_folder(tmp_path / "m", cifar_zip)


def test_flip_tta_averages_the_mirror_image():
    from dl_core.cifar.training import predict_probs

    torch.manual_seed(0)
    model = Darknet(DarknetConfig(num_blocks=[1], nf=8, strides=[2])).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        expected = (model(x).softmax(-1) + model(x.flip(-1)).softmax(-1)) / 2
    assert torch.allclose(predict_probs(model, x, tta=True), expected, atol=1e-6)
    assert not math.isclose(float(predict_probs(model, x)[0, 0]), float(expected[0, 0]), abs_tol=1e-7)


def test_precise_bn_replaces_stale_running_statistics_with_the_final_weights_own():
    from dl_core.cifar.data import train_loader
    from dl_core.cifar.training import PreciseBN, make_learner

    torch.manual_seed(0)
    model = Darknet(DarknetConfig(num_blocks=[1], nf=8, strides=[2], bn_momentum=0.01))
    split = _toy_split(256)
    learn = make_learner(model, train_loader(split, 64, seed=0), None, lr=0.1, wd=0.0, label_smoothing=0.0,
                         callbacks=[PreciseBN(4)])
    stem_bn = model.stem[1]
    stem_bn.running_mean.fill_(100.0)  # stale: nothing like what the weights now produce
    learn.fit(0)  # no training: after_fit alone
    images = torch.from_numpy(split.images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        conv_out = model.stem[0]((images - model.mean) / model.std)
    assert torch.allclose(stem_bn.running_mean, conv_out.mean(dim=(0, 2, 3)), atol=0.05)
    assert stem_bn.momentum == 0.01 and not model.training
