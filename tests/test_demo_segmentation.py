"""The Lesson 14 segmentation tab's handlers, called as the UI and the API call them (no server)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import fresh_model, png_header
from demos import segmentation as seg_tab
from dl_core.hub import save_model
from dl_core.segmentation import CAMVID_CLASSES
from dl_core.segmentation.model import SegmentationConfig, SegmentationNet


def _save_tiny(folder, decoder: str):
    torch.manual_seed(0)
    net = SegmentationNet(SegmentationConfig(classes=CAMVID_CLASSES, decoder=decoder, width=8, image_size=[48, 64]))
    save_model(net, folder, card="card", metrics={"valid": {"miou": 0.5, "pixel_acc": 0.8, "n": 3}})
    return folder


@pytest.fixture
def tiny_networks(tmp_path, monkeypatch):
    fresh_model(monkeypatch, seg_tab, _save_tiny(tmp_path / "unet", "unet"), attr="UNET")
    fresh_model(monkeypatch, seg_tab, _save_tiny(tmp_path / "plain", "upsample"), attr="PLAIN")


def _photo(tmp_path, size=(160, 120), name="street.png"):
    path = tmp_path / name
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return str(path)


def test_a_photo_gets_both_overlays_at_its_own_size_a_confidence_map_and_class_shares(tiny_networks, tmp_path):
    view = seg_tab.segment_photo(_photo(tmp_path))
    image, masks = view.unet
    assert image.size == (160, 120) and masks and all(m.shape == (120, 160) for m, _ in masks)
    assert view.plain is not None and view.plain[0] is image
    assert view.confidence.size == (160, 120)
    assert [row[0] for row in view.table] == CAMVID_CLASSES
    shares = sum(float(row[1].rstrip("%")) for row in view.table)
    assert shares == pytest.approx(100, abs=0.1)
    assert set(view.colours) >= {label for _, label in masks}
    assert "the networks work at 64×48 pixels (as many pixels as their 64×48 training photos" in view.notes
    assert "resized back to the photo's 160×120" in view.notes
    assert "mIoU **0.500**" in view.about and "no skips" in view.about


def test_opacity_scales_the_masks_and_one_class_can_be_shown_alone(tiny_networks, tmp_path):
    photo = _photo(tmp_path)
    full = seg_tab.segment_photo(photo, opacity=1.0)
    assert max(float(m.max()) for m, _ in full.unet[1]) == 1.0
    half = seg_tab.segment_photo(photo, opacity=0.25)
    assert max(float(m.max()) for m, _ in half.unet[1]) == 0.25
    present = full.unet[1][0][1].split(" ")[0]
    alone = seg_tab.segment_photo(photo, opacity=0.5, shown=present)
    assert [label.split(" ")[0] for _, label in alone.unet[1]] == [present]


def test_without_comparison_there_is_no_second_overlay(tiny_networks, tmp_path):
    view = seg_tab.segment_photo(_photo(tmp_path), compare=False)
    assert view.plain is None and all(row[3] == "" for row in view.table)


def test_a_legend_click_shows_that_class_and_a_second_click_all_again():
    class Click:  # what gr.SelectData carries for an AnnotatedImage legend entry
        def __init__(self, value):
            self.value = value

    assert seg_tab.pick_class(seg_tab.ALL, Click("Road 34.1%")) == "Road"
    assert seg_tab.pick_class("Road", Click("Road 34.1%")) == seg_tab.ALL
    assert seg_tab.pick_class(seg_tab.ALL, Click("SignSymbol 0.5%")) == "SignSymbol"
    assert seg_tab.pick_class(seg_tab.ALL, Click(None)) == seg_tab.ALL


def test_bad_input_gets_a_message(tiny_networks, tmp_path):
    assert "No image" in seg_tab.segment_photo(None).notes
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert "not an image we can read" in seg_tab.segment_photo(str(bad)).notes
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(30_000, 30_000))
    assert "megapixels" in seg_tab.segment_photo(str(bomb)).notes
    photo = _photo(tmp_path)
    assert "*opacity* must be a number" in seg_tab.segment_photo(photo, opacity=float("nan")).notes
    assert "*opacity* must be a number" in seg_tab.segment_photo(photo, opacity="half").notes
    assert "outside 0–1: used 1" in seg_tab.segment_photo(photo, opacity=7).notes
    assert "*class shown* must be" in seg_tab.segment_photo(photo, shown="Dog").notes
    assert "*compare* must be true or false" in seg_tab.segment_photo(photo, compare="yes").notes


def test_a_big_photo_is_downscaled_with_a_note_and_the_mask_drawn_at_that_size(tiny_networks, tmp_path):
    view = seg_tab.segment_photo(_photo(tmp_path, size=(2400, 1800), name="big.png"))
    assert "Downscaled from 2400×1800 to 1024×768" in view.notes
    assert view.unet[0].size == (1024, 768) and view.unet[1][0][0].shape == (768, 1024)


def test_missing_weights_explain_how_to_train_them_and_a_missing_ablation_leaves_the_unet(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()  # a folder without weights (a path that does not exist would be read as a Hub repo)
    fresh_model(monkeypatch, seg_tab, tmp_path / "empty", attr="UNET")
    fresh_model(monkeypatch, seg_tab, tmp_path / "empty", attr="PLAIN")
    view = seg_tab.segment_photo(_photo(tmp_path))
    assert "could not be loaded" in view.notes and "python train/segment.py train" in view.notes and view.unet is None
    fresh_model(monkeypatch, seg_tab, _save_tiny(tmp_path / "unet", "unet"), attr="UNET")
    view = seg_tab.segment_photo(_photo(tmp_path))
    assert view.unet is not None and view.plain is None
    assert "nothing to compare with" in view.notes and "--decoder upsample" in view.notes


def test_a_repeat_with_new_settings_reuses_the_segmentation(tiny_networks, tmp_path, monkeypatch):
    photo = _photo(tmp_path)
    seg_tab.segment_photo(photo)
    calls = []
    monkeypatch.setattr("dl_core.segmentation.infer.predict_probabilities", lambda *a: calls.append(a))
    view = seg_tab.segment_photo(photo, opacity=0.9, shown="Road")
    assert not calls and view.notes  # served from the remembered result
    Image.new("RGB", (160, 120), (10, 200, 10)).save(photo)  # the same path, new content: run again
    with pytest.raises(AttributeError):  # the stub returns None: proof the network ran again
        seg_tab.segment_photo(photo)
    assert calls


def test_bundled_weights_segment_a_camvid_like_photo(monkeypatch):
    """The bundled pair, when present, loads strict and returns masks for every sample photo shape."""
    from conftest import REPO_ROOT

    if not (REPO_ROOT / "weights" / "segmentation" / "model.safetensors").exists():
        pytest.fail("weights/segmentation is missing: train it (python train/segment.py train)")
    fresh_model(monkeypatch, seg_tab, attr="UNET")
    fresh_model(monkeypatch, seg_tab, attr="PLAIN")
    for photo in seg_tab.bundled_photos()[:2]:
        view = seg_tab.segment_photo(photo)
        assert view.unet is not None and view.plain is not None, view.notes
