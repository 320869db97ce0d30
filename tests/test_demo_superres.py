"""The Lesson 14 super-resolution tab's handlers, called as the UI and the API call them (no server)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import png_header
from PIL import Image

from demos import superres as sr_tab
from demos.common import LazyModel
from dl_core.hub import save_model
from dl_core.superres.model import SrResnet, SuperResConfig


@pytest.fixture
def tiny_networks(tmp_path, monkeypatch):
    """Small random networks in place of the bundled ones (the handlers' logic, not the weights, is under test)."""
    for name in sr_tab.TRAIN:
        torch.manual_seed(0)
        net = SrResnet(SuperResConfig(scale=2 if name.endswith("x2") else 4, nf=8, n_blocks=1))
        save_model(net, tmp_path / name, card="card", metrics={"scores": {"CSet5": {"psnr": 31.0, "psnr_bicubic": 28.4}}})
        monkeypatch.setenv(f"HUB_REPO_{name.upper().replace('-', '_')}", str(tmp_path / name))
        old = sr_tab.NETWORKS[name]
        monkeypatch.setitem(sr_tab.NETWORKS, name, LazyModel(name, old.loader, old.train_command, old.check, old.prepare))


def _photo(tmp_path, size=(80, 60), name="photo.png"):
    path = tmp_path / name
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return str(path)


def test_test_mode_scores_bicubic_and_both_networks_against_the_original(tiny_networks, tmp_path):
    view = sr_tab.enlarge_photo(_photo(tmp_path, (81, 62)), "×4", sr_tab.TEST)
    assert view.bicubic.size == view.pixel.size == view.perceptual.size == (80, 60)  # cropped to a multiple of 4
    assert [row[0] for row in view.table] == ["bicubic", "pixel loss", "perceptual loss"]
    assert all(float(row[1]) > 0 and 0 < float(row[2]) <= 1 for row in view.table)
    assert view.slider == (view.bicubic, view.pixel)
    assert set(view.state.images) == {"original", "bicubic", "pixel loss", "perceptual loss"}
    assert len(view.zoom) == 4 and view.zoom[0][0].size == (60 * sr_tab.ZOOM_FACTOR,) * 2  # 64 px > the 60-px image
    assert "down-sampled ×4" in view.notes and "31.00 dB" in view.about


def test_enlarge_mode_enlarges_the_photo_itself_and_x2_has_no_perceptual_network(tiny_networks, tmp_path):
    view = sr_tab.enlarge_photo(_photo(tmp_path), "×2", sr_tab.ENLARGE)
    assert view.pixel.size == (160, 120) and view.perceptual is None
    assert [row[1] for row in view.table] == ["", ""]
    assert "no perceptual loss network for ×2" in view.notes


def test_the_output_is_capped_and_the_note_says_so(tiny_networks, tmp_path, monkeypatch):
    monkeypatch.setattr(sr_tab, "MAX_OUTPUT", 256)
    view = sr_tab.enlarge_photo(_photo(tmp_path, (200, 100)), "×4", sr_tab.ENLARGE)
    assert max(view.pixel.size) == 256 and "capped at 256 px" in view.notes


def test_a_click_zooms_every_result_on_the_same_spot(tiny_networks, tmp_path):
    view = sr_tab.enlarge_photo(_photo(tmp_path, (120, 100)), "×2", sr_tab.TEST)
    crops = sr_tab.zoom_crops(view.state, 0, 0)  # the corner: clamped inside the image
    side = sr_tab.ZOOM_SIDE * sr_tab.ZOOM_FACTOR
    assert [label for _, label in crops] == ["original", "bicubic", "pixel loss"]
    assert all(img.size == (side, side) for img, _ in crops)
    original = view.state.images["original"].crop((0, 0, 64, 64)).resize((side, side), Image.Resampling.NEAREST)
    assert np.array_equal(np.asarray(crops[0][0]), np.asarray(original))
    assert sr_tab.zoom_crops(None, 5, 5) == []


@pytest.mark.parametrize("photo, scale, mode, message", [
    (None, "×4", sr_tab.TEST, "No image"),
    ("not-a-file.png", "×4", sr_tab.TEST, "not an image"),
    ("photo", "×3", sr_tab.TEST, "*scale* must be one of"),
    ("photo", None, sr_tab.TEST, "*scale* must be one of"),
    ("photo", "×4", "zoom and enhance", "*mode* must be"),
    ("tiny", "×4", sr_tab.TEST, "too small to test at ×4"),
])
def test_bad_input_is_a_note_not_an_exception(tiny_networks, tmp_path, photo, scale, mode, message):
    if photo == "photo":
        photo = _photo(tmp_path)
    elif photo == "tiny":
        photo = _photo(tmp_path, (20, 20))
    elif photo == "not-a-file.png":
        (tmp_path / photo).write_text("hello")
        photo = str(tmp_path / photo)
    view = sr_tab.enlarge_photo(photo, scale, mode)
    assert message in view.notes and view.bicubic is None


def test_a_decompression_bomb_is_refused(tiny_networks, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(30_000, 30_000))
    assert "megapixels" in sr_tab.enlarge_photo(str(bomb)).notes


def test_missing_weights_explain_how_to_train_them_and_bicubic_still_shows(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    for name in sr_tab.TRAIN:  # an empty folder: no config.json, no weights
        monkeypatch.setenv(f"HUB_REPO_{name.upper().replace('-', '_')}", str(tmp_path / "empty"))
        old = sr_tab.NETWORKS[name]
        monkeypatch.setitem(sr_tab.NETWORKS, name, LazyModel(name, old.loader, old.train_command, old.check, old.prepare))
    view = sr_tab.enlarge_photo(_photo(tmp_path), "×4", sr_tab.TEST)
    assert view.bicubic is not None and view.pixel is None
    assert "python train/superres.py train --scale 4" in view.notes


def test_a_network_of_the_wrong_scale_is_refused_with_a_reason(tmp_path, monkeypatch):
    save_model(SrResnet(SuperResConfig(scale=2, nf=8, n_blocks=1)), tmp_path / "x2", card="card")
    monkeypatch.setenv("HUB_REPO_SUPERRES_X4", str(tmp_path / "x2"))
    old = sr_tab.NETWORKS["superres-x4"]
    monkeypatch.setitem(sr_tab.NETWORKS, "superres-x4", LazyModel(old.name, old.loader, old.train_command, old.check, old.prepare))
    view = sr_tab.enlarge_photo(_photo(tmp_path), "×4", sr_tab.ENLARGE)
    assert "expected a ×4 network" in view.notes


def test_the_checkerboard_demo_draws_both_layers_and_their_kernels(tmp_path):
    random_img, icnr_img, figure, notes = sr_tab.checkerboard_demo(_photo(tmp_path), seed=5)
    assert random_img.size == icnr_img.size == (4 * 60, 4 * 60)  # the central 60 px, x2, shown x2
    assert "ICNR **0.00**" in notes and len(figure.axes) == 8
    assert sr_tab.checkerboard_demo(_photo(tmp_path), seed=float("nan"))[3].startswith("⚠️")
    assert "using a sample" in sr_tab.checkerboard_demo(None, seed=1)[3]
    assert sr_tab.checkerboard_demo(str(tmp_path), seed=1)[3].startswith("⚠️")
