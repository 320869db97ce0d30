"""The detection tab's handlers with good and bad input, without a server."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, fresh_model, needs_shared
from demos import detection


@pytest.fixture
def bundled(monkeypatch):
    fresh_model(monkeypatch, detection)


def _write(tmp_path, img: Image.Image, name: str, **save) -> str:
    path = tmp_path / name
    img.save(path, **save)
    return str(path)


def test_detects_a_raccoon_and_shows_every_view(bundled):
    photo = needs_shared("detection", "raccoon", "images", "raccoon-146.jpg")  # a held-out test photo
    view = detection.detect(str(photo), 0.3, 0.45, True, "4×4")
    image, boxes = view.ssd
    assert any(label.startswith("raccoon") for _, label in boxes)
    assert view.largest[1][0][1].startswith("largest: raccoon")
    assert view.anchors.size == image.size
    assert view.table and view.table[0][0] == "raccoon"
    recorded = json.loads((REPO_ROOT / "weights" / "detection" / "metrics.json").read_text())["focal"]["raccoon_test"]
    assert f"mAP@0.5 **{recorded['map50']:.2f}**" in view.about  # read from the weights' metrics.json


def test_nms_removes_overlapping_duplicates(bundled):
    photo = str(needs_shared("detection", "raccoon", "images", "raccoon-146.jpg"))
    with_nms = detection.detect(photo, 0.05, 0.3, True, "none")
    without = detection.detect(photo, 0.05, 0.3, False, "none")
    assert len(without.table) > len(with_nms.table) >= 1


@pytest.mark.parametrize("content, message", [
    (b"", "empty"), (b"%PDF-1.4 not an image", "not an image"), (b"\x89PNG\r\n\x1a\n broken", "not an image"),
])
def test_bad_files_give_a_message(bundled, tmp_path, content, message):
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    view = detection.detect(str(path), 0.3, 0.45, True, "4×4")
    assert message in view.notes and view.ssd is None


def test_no_image_and_tiny_image(bundled, tmp_path):
    assert "No image" in detection.detect(None).notes
    assert "at least" in detection.detect(_write(tmp_path, Image.new("RGB", (5, 5)), "t.png")).notes


@pytest.mark.parametrize("mode, fmt", [("L", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG")])
def test_unusual_modes_are_converted(bundled, tmp_path, mode, fmt):
    base = Image.new("RGB", (200, 150), (120, 80, 40))
    img = Image.fromarray(np.full((150, 200), 40000, dtype=np.uint16)) if mode == "I;16" else base.convert(mode)
    view = detection.detect(_write(tmp_path, img, f"x.{fmt.lower()}"), 0.3, 0.45, True, "2×2")
    assert view.ssd is not None and view.ssd[0].mode == "RGB"


def test_huge_image_is_downscaled_and_exif_rotation_applied(bundled, tmp_path):
    huge = detection.detect(_write(tmp_path, Image.new("RGB", (4000, 3000)), "big.jpg"))
    assert "Downscaled" in huge.notes and max(huge.ssd[0].size) == detection.MAX_SIDE
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = detection.detect(_write(tmp_path, Image.new("RGB", (300, 200)), "r.jpg", exif=exif.tobytes()), 0.05)
    assert rotated.ssd[0].size == (200, 300) and "EXIF" in rotated.notes
    for (x1, y1, x2, y2), _ in rotated.ssd[1]:  # boxes lie on the upright image
        assert 0 <= x1 <= x2 <= 200 and 0 <= y1 <= y2 <= 300


def test_missing_weights_explain_how_to_train(monkeypatch, tmp_path):
    fresh_model(monkeypatch, detection, tmp_path)  # an empty folder
    view = detection.detect(_write(tmp_path, Image.new("RGB", (64, 64)), "a.png"))
    assert "could not be loaded" in view.notes and "python train/detect.py train" in view.notes


def test_focal_figure_draws_bce_and_the_chosen_gamma():
    fig = detection.focal_figure(3.0)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "BCE  (γ = 0)" in labels and "focal γ = 3" in labels


def test_weights_summary_reads_metrics_json_and_degrades_without_it(tmp_path):
    (tmp_path / "metrics.json").write_text('{"focal": {"raccoon_test": {"map50": 0.5, "map": 0.25, "n": 4}}}')
    assert detection.weights_summary(str(tmp_path)).endswith("mAP@0.5 **0.50** (mAP 0.25) on raccoon test, 4 images.")
    assert detection.weights_summary(str(tmp_path / "absent")) == ""


def test_samples_are_the_raccoon_test_photos_under_the_data_root(monkeypatch, tmp_path):
    raccoon = tmp_path / "detection" / "raccoon"
    (raccoon / "images").mkdir(parents=True)
    (raccoon / "test_labels.csv").write_text("filename,class\nb.jpg,raccoon\na.jpg,raccoon\nmissing.jpg,raccoon\n")
    for name in ("a.jpg", "b.jpg", "train.jpg"):
        Image.new("RGB", (8, 8)).save(raccoon / "images" / name)
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path))
    assert detection.sample_images() == [str(raccoon / "images" / "a.jpg"), str(raccoon / "images" / "b.jpg")]
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path / "nothing"))
    assert detection.sample_images() == []
