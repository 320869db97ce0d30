"""The detection tab's handlers with good and bad input, its layout and wiring, and every claim its panel makes."""

import json
import math
import shutil
import socket
import types

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, fresh_model, needs_shared, png_header
from demos import detection
from demos.common import bundled_photos


@pytest.fixture
def bundled(monkeypatch):
    fresh_model(monkeypatch, detection)


def _write(tmp_path, img: Image.Image, name: str, **save) -> str:
    path = tmp_path / name
    img.save(path, **save)
    return str(path)


def _sample(stem: str) -> str:
    (photo,) = [p for p in bundled_photos() if p.endswith(f"/{stem}.jpg")]
    return photo


def _build_tab() -> gr.Blocks:
    with gr.Blocks() as app:
        detection.build()
    return app


# --- detections ----------------------------------------------------------------------------------------
def test_detects_a_raccoon_and_shows_every_view(bundled):
    photo = needs_shared("detection", "raccoon", "images", "raccoon-146.jpg")  # a held-out test photo
    view = detection.detect(str(photo), 0.3, 0.45, True, "4×4")
    image, boxes = view.ssd
    assert any(label.startswith("raccoon") for _, label in boxes)
    assert view.largest[1][0][1].startswith("largest: raccoon")
    assert view.anchors.size == image.size
    assert view.table and view.table[0][0] == "raccoon"
    recorded = json.loads((REPO_ROOT / "weights" / "detection" / "metrics.json").read_text())["focal"]["raccoon_test"]
    assert f"mAP at IoU 0.5 **{recorded['map50']:.2f}**" in view.about  # read from the weights' metrics.json
    assert "@" not in view.about  # Markdown would turn "mAP@0.5" into an e-mail link


def test_the_request_that_compiled_the_network_says_so_once(bundled):
    detection.MODEL.get().fast_path.compile_seconds = 12.0  # as a first compiled call records it
    first, second = (detection.detect(_sample("chelsea-the-cat")).notes for _ in range(2))
    assert "also compiled the network for this CPU (12 s, once)" in first and "compiled" not in second


def test_nms_removes_overlapping_duplicates(bundled):
    photo = str(needs_shared("detection", "raccoon", "images", "raccoon-146.jpg"))
    with_nms = detection.detect(photo, 0.05, 0.3, True, "none")
    without = detection.detect(photo, 0.05, 0.3, False, "none")
    assert len(without.table) > len(with_nms.table) >= 1


def test_table_rows_name_the_grid_and_box_of_each_detection(bundled):
    view = detection.detect(_sample("astronaut"), 0.05, 0.45, True, "2×2")
    assert view.table and all(len(row) == len(detection.TABLE_HEADERS) for row in view.table)
    width, height = view.ssd[0].size
    for (cls, score, grid, box), ((x1, y1, x2, y2), label) in zip(view.table, view.ssd[1]):
        label_class, label_score = label.rsplit(" ", 1)
        assert label_class == cls and abs(float(label_score) - score) <= 0.0051 and grid in detection.GRID_CHOICES[1:]
        assert box == f"{x1}, {y1}, {x2}, {y2}" and 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height


# --- every claim of demos/detection.md, run on the bundled model ----------------------------------------
def test_panel_numbers_match_the_bundled_config():
    config = json.loads((REPO_ROOT / "weights" / "detection" / "config.json").read_text())
    from dl_core.detection.model import SSDConfig

    cfg = SSDConfig(**config)
    grids = " and ".join(", ".join(f"{g}×{g}" for g in cfg.grids).rsplit(", ", 1))
    per_cell = f"{len(cfg.zooms)} zooms × {len(cfg.ratios)} aspect ratios = {cfg.anchors_per_cell} anchors"
    for claim in (f"grids of {grids} cells", per_cell, f"**{cfg.n_anchors} in all**", f"most of\nthe {cfg.n_anchors} anchors",
                  f"IoU ≥ {cfg.match_iou:g}", f"default threshold of {detection.DEFAULT_SCORE:g}"):
        assert claim in detection.EXPLANATION, claim


def test_claim_the_cat_is_called_a_raccoon_by_the_1x1_grid(bundled):
    assert "Chelsea the cat**: there is no *cat* class, so SSD calls her a *raccoon*" in detection.EXPLANATION
    assert "her box comes from the 1×1 grid" in detection.EXPLANATION
    view = detection.detect(_sample("chelsea-the-cat"))
    assert "cat" not in detection.MODEL.get().config.classes
    assert [(row[0], row[2]) for row in view.table] == [("raccoon", "1×1")]


def test_claim_nms_off_or_a_high_iou_threshold_keeps_the_cats_duplicates(bundled):
    assert "**untick NMS**: several overlapping raccoon boxes appear" in detection.EXPLANATION
    assert "**raise the NMS IoU threshold** to 0.9: some of those duplicates survive" in detection.EXPLANATION
    cat = _sample("chelsea-the-cat")
    with_nms = detection.detect(cat, detection.DEFAULT_SCORE, detection.DEFAULT_IOU, True)
    without = detection.detect(cat, detection.DEFAULT_SCORE, detection.DEFAULT_IOU, False)
    loose = detection.detect(cat, detection.DEFAULT_SCORE, 0.9, True)
    assert len(with_nms.table) == 1 and with_nms.table[0] == without.table[0]  # NMS keeps the best
    assert len(without.table) > len(loose.table) > 1
    assert {row[0] for row in without.table} == {"raccoon"}


def test_claim_the_astronaut_needs_a_lower_threshold_and_the_lesson8_head_always_answers(bundled):
    assert "**The astronaut**: nothing scores above the default threshold" in detection.EXPLANATION
    assert "to 0.05:\n  many weak guesses of several classes appear, from all three grids" in detection.EXPLANATION
    assert "the lesson-8 head always draws exactly one box (on the astronaut too" in detection.EXPLANATION
    astronaut = _sample("astronaut")
    default = detection.detect(astronaut)
    assert default.table == [] and "No object scored above 0.30" in default.notes
    assert len(default.largest[1]) == 1
    low = detection.detect(astronaut, 0.05)
    assert len(low.table) > 5 and len({row[0] for row in low.table}) > 1
    assert {row[2] for row in low.table} == {"4×4", "2×2", "1×1"}
    assert min(row[1] for row in low.table) >= 0.05
    for photo in bundled_photos():  # zero, one or many SSD boxes; always one lesson-8 box
        assert len(detection.detect(photo).largest[1]) == 1


def test_claim_the_panel_lists_the_classes_it_knows(bundled):
    assert "raccoons and a few COCO classes (listed in this panel after a detection)" in detection.EXPLANATION
    classes = detection.MODEL.get().config.classes
    about = detection.detect(_sample("coffee")).about
    assert classes[0] == "raccoon" and ", ".join(classes) in about


def test_claim_the_anchor_view_draws_the_chosen_grid(bundled):
    assert "Pick a grid to draw its anchors: the bold boxes are the anchors behind each detection" in detection.EXPLANATION
    cat = _sample("chelsea-the-cat")
    drawn = {grid: np.asarray(detection.detect(cat, anchor_grid=grid).anchors) for grid in ("none", "4×4")}
    photo = np.asarray(detection.detect(cat).ssd[0])
    assert (drawn["none"] != photo).any()  # the anchor behind the detection, even with no grid
    assert (drawn["4×4"] != drawn["none"]).sum() > (drawn["none"] != photo).sum() / 4  # plus the grid's cells


def test_claim_raising_gamma_flattens_the_focal_curve():
    assert "Raise the γ slider: the red curve flattens as $p_t$ nears 1" in detection.EXPLANATION

    def red_curve(gamma):
        (line,) = [line for line in detection.focal_figure(gamma).axes[0].get_lines() if line.get_linewidth() == 3]
        return line.get_xdata(), line.get_ydata()

    p, low = red_curve(1.0)
    _, high = red_curve(4.0)
    confident = (p > 0.5) & (p < 1)  # at p_t = 1 every curve is 0
    assert (high[confident] < low[confident]).all()


# --- samples ------------------------------------------------------------------------------------------
def test_held_out_photos_are_the_raccoon_test_photos_under_the_data_root(monkeypatch, tmp_path):
    raccoon = tmp_path / "detection" / "raccoon"
    (raccoon / "images").mkdir(parents=True)
    (raccoon / "test_labels.csv").write_text("filename,class\nb.jpg,raccoon\na.jpg,raccoon\nmissing.jpg,raccoon\n")
    for name in ("a.jpg", "b.jpg", "train.jpg"):
        Image.new("RGB", (8, 8)).save(raccoon / "images" / name)
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path))
    assert detection.held_out_raccoon_photos() == [str(raccoon / "images" / "a.jpg"), str(raccoon / "images" / "b.jpg")]
    (raccoons_label, raccoons), (others_label, others) = detection.example_sets()
    assert raccoons == detection.held_out_raccoon_photos() and "raccoon photos" in raccoons_label
    assert others == bundled_photos() and "no raccoon" in others_label


def test_a_fresh_clone_without_data_still_offers_the_bundled_photos(monkeypatch, tmp_path):
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path / "nonexistent"))
    assert detection.held_out_raccoon_photos() == []
    app = _build_tab()
    datasets = [b for b in app.blocks.values() if isinstance(b, gr.Dataset)]
    assert len(datasets) == 1 and "no raccoon" in datasets[0].label  # labelled honestly
    offered = [row[0] for row in datasets[0].raw_samples]
    assert offered == bundled_photos() and len(offered) >= 3
    assert all(Image.open(photo).size for photo in offered)


# --- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("content, message", [
    (b"", "empty"), (b"%PDF-1.4 not an image", "not an image"), (b"\x89PNG\r\n\x1a\n broken", "not an image"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not an image"), (bytes(range(256)) * 4096, "not an image"),
])
def test_bad_files_give_a_message(bundled, tmp_path, content, message):
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    view = detection.detect(str(path), 0.3, 0.45, True, "4×4")
    assert message in view.notes and view.ssd is None


def test_a_giant_image_is_refused_before_decoding(bundled, tmp_path):
    path = tmp_path / "giant.png"
    path.write_bytes(png_header(10_000, 10_000))  # 100 megapixels claimed by a tiny file
    view = detection.detect(str(path))
    assert "10000×10000" in view.notes and "megapixels" in view.notes and view.ssd is None
    path.write_bytes(png_header(30_000, 30_000))  # past Pillow's own decompression-bomb limit
    view = detection.detect(str(path))
    assert view.notes.startswith("⚠️") and "megapixels" in view.notes and view.ssd is None


def test_no_image_and_tiny_image(bundled, tmp_path):
    assert "No image" in detection.detect(None).notes
    assert "at least" in detection.detect(_write(tmp_path, Image.new("RGB", (5, 5)), "t.png")).notes


@pytest.mark.parametrize("settings, message", [
    ({"score_threshold": math.nan}, "score threshold must be a number from 0.05 to 0.95; it got NaN"),
    ({"score_threshold": None}, "score threshold must be a number from 0.05 to 0.95; it got nothing"),
    ({"score_threshold": math.inf}, "it got inf"),
    ({"score_threshold": 0.0}, "it got 0."),
    ({"score_threshold": "lots"}, "it got text"),
    ({"score_threshold": True}, "it got true"),
    ({"nms_iou_threshold": -math.inf}, "NMS IoU threshold must be a number from 0.1 to 0.9; it got -inf"),
    ({"nms_iou_threshold": 1.5}, "it got 1.5"),
    ({"nms_iou_threshold": None}, "NMS IoU threshold must be a number"),
    ({"use_nms": None}, "use_nms must be true or false; it got nothing"),
    ({"use_nms": "yes"}, "use_nms must be true or false; it got text"),
    ({"anchor_grid": "5×5"}, "anchor grid must be one of none, 4×4, 2×2, 1×1; it got text"),
    ({"anchor_grid": None}, "anchor grid must be one of"),
])
def test_bad_settings_give_a_message_not_an_error(tmp_path, settings, message):
    photo = _write(tmp_path, Image.new("RGB", (64, 64)), "a.png")
    view = detection.detect(photo, **settings)
    assert message in view.notes and view.ssd is None and view.table == []


def test_settings_at_the_edges_of_their_ranges_work(bundled):
    view = detection.detect(_sample("coffee"), detection.SCORE_RANGE[1], detection.IOU_RANGE[0], True, "1×1")
    assert view.ssd is not None and "⚠️" not in view.notes


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


def test_focal_plot_refuses_a_bad_gamma_with_a_message():
    assert detection.focal_loss_plot(3.0).axes[0].get_title() == "BCE vs focal loss (γ = 3 in red)"
    for bad in (math.nan, None, -1, 7, "x"):
        with pytest.raises(gr.Error, match="focal loss γ must be a number from 0 to 5"):
            detection.focal_loss_plot(bad)


def test_focal_figure_draws_bce_and_the_chosen_gamma():
    fig = detection.focal_figure(3.0)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "BCE  (γ = 0)" in labels and "focal γ = 3" in labels


def test_weights_summary_reads_metrics_json_and_degrades_without_it(tmp_path):
    (tmp_path / "metrics.json").write_text('{"focal": {"raccoon_test": {"map50": 0.5, "map": 0.25, "n": 4}}}')
    assert detection.weights_summary(str(tmp_path)).endswith(
        "mAP at IoU 0.5 **0.50** (averaged over IoU 0.5–0.95: 0.25) on raccoon test, 4 images.")
    assert detection.weights_summary(str(tmp_path / "absent")) == ""


# --- weights that are missing or no longer fit their config ---------------------------------------------
def test_missing_weights_explain_how_to_train(monkeypatch, tmp_path):
    fresh_model(monkeypatch, detection, tmp_path)  # an empty folder
    view = detection.detect(_write(tmp_path, Image.new("RGB", (64, 64)), "a.png"))
    assert "could not be loaded" in view.notes and "python train/detect.py train" in view.notes


def _edited_weights(tmp_path, **changes):
    folder = tmp_path / "detection"
    shutil.copytree(REPO_ROOT / "weights" / "detection", folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("changes, reason", [
    ({"grids": [3, 2, 1]}, "grids [3, 2, 1] do not match"),  # the head's maps: refused as it is built
    ({"grids": [4, 2]}, "Unexpected key"),  # one grid fewer: the weights have a head the config lacks
    ({"image_size": 240}, "a test forward pass at 240 px failed"),  # loads; only the dummy forward finds it
    ({"classes": ["raccoon"] * 7}, "'classes' names a class twice"),  # loads and runs: the config check finds it
])
def test_a_config_that_no_longer_fits_the_weights_is_explained_once(monkeypatch, tmp_path, changes, reason):
    fresh_model(monkeypatch, detection, _edited_weights(tmp_path, **changes))
    calls = []
    loader = detection.MODEL.loader
    monkeypatch.setattr(detection.MODEL, "loader", lambda folder: calls.append(folder) or loader(folder))
    photo = _sample("coffee")
    first, second = detection.detect(photo), detection.detect(photo)
    assert first.notes == second.notes and len(calls) == 1  # loaded, checked and explained once
    assert "could not be loaded" in first.notes and reason in first.notes
    assert "git checkout -- weights/detection/config.json" in first.notes and "python train/detect.py train" in first.notes
    assert first.ssd is None


def test_the_check_passes_the_bundled_weights(bundled):
    detection.check_detector(detection.MODEL.get())  # raises ConfigMismatch when the config does not fit


# --- measured time ------------------------------------------------------------------------------------
def test_the_notes_quote_this_requests_measured_time(bundled, monkeypatch):
    detection.MODEL.get()  # loaded before the clock is faked
    ticks = iter([100.0, 100.05, 100.30, 100.42])  # start, model ready, detected, answer ready
    monkeypatch.setattr(detection, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    notes = detection.detect(_sample("coffee")).notes
    assert "**Time**, measured on this server for this photo: 0.25 s for the detector" in notes
    assert "0.42 s for the whole request" in notes and "loading the model" not in notes


# --- layout and wiring --------------------------------------------------------------------------------
def test_api_has_descriptive_parameters_defaults_and_labelled_outputs():
    info = _build_tab().get_api_info()["named_endpoints"]
    assert set(info) == {"/detect", "/focal_loss_plot"}
    detect = info["/detect"]
    params = {p["parameter_name"]: (p["parameter_has_default"], p.get("parameter_default")) for p in detect["parameters"]}
    assert params == {"photo": (False, None), "score_threshold": (True, 0.3), "nms_iou_threshold": (True, 0.45),
                      "use_nms": (True, True), "anchor_grid": (True, "4×4")}
    assert [r["label"] for r in detect["returns"]] == ["SSD boxes", "largest object box", "anchors", "detections",
                                                       "notes", "about the weights"]
    assert [(p["parameter_name"], p["parameter_default"]) for p in info["/focal_loss_plot"]["parameters"]] == [("gamma", 2.0)]
    assert [r["label"] for r in info["/focal_loss_plot"]["returns"]] == ["focal loss curves"]


def test_sliders_rerun_on_typed_values_once_per_value():
    app = _build_tab()
    sliders = {b.label: b for b in app.blocks.values() if isinstance(b, gr.Slider)}
    events = {}
    for fn in app.fns.values():
        for block_id, event in fn.targets:
            events.setdefault(block_id, []).append((event, fn))
    for label in ("score threshold", "NMS IoU threshold"):
        wired = events[sliders[label]._id]
        # .change fires for drags, typed values and clamped values; .release or .input as well would run twice
        assert [event for event, _ in wired] == ["change"]
        assert wired[0][1].fn is detection.detect_objects and wired[0][1].trigger_mode == "always_last"
        assert wired[0][1].api_visibility == "private" and wired[0][1].concurrency_id == "cpu"


def test_figures_have_no_label_chip_over_them_and_the_table_fits_a_phone():
    app = _build_tab()
    figures = [b for b in app.blocks.values() if isinstance(b, (gr.Plot, gr.Image, gr.AnnotatedImage))
               and not isinstance(b, detection.ImageFile)]
    assert len(figures) == 4 and all(b.show_label is False and b.label for b in figures)
    (table,) = [b for b in app.blocks.values() if isinstance(b, gr.Dataframe)]
    assert table.wrap and len(detection.TABLE_HEADERS) <= 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_values_sent_through_the_api_get_the_tabs_message(bundled, monkeypatch, tmp_path):
    from gradio_client import Client, handle_file

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    app = _build_tab()
    app.queue()
    _, url, _ = app.launch(prevent_thread_lock=True, server_port=_free_port(), quiet=True)
    try:
        client = Client(url, verbose=False)
        photo = handle_file(_sample("chelsea-the-cat"))
        ssd, *_, notes, about = client.predict(photo, api_name="/detect")  # every other parameter has a default
        (label,) = [a["label"] for a in ssd["annotations"]]
        name, score = label.split()
        assert name == "raccoon" and abs(float(score) - 0.79) <= 0.02 and "raccoon" in about  # fp32 0.79; bf16 0.80
        for settings, message in [({"score_threshold": None}, "it got nothing"), ({"nms_iou_threshold": 7}, "it got 7"),
                                  ({"use_nms": None}, "use_nms must be"), ({"anchor_grid": "8×8"}, "anchor grid must")]:
            *_, notes, _ = client.predict(photo, **settings, api_name="/detect")
            assert message in notes
        with pytest.raises(Exception, match="focal loss γ must be a number"):
            client.predict(None, api_name="/focal_loss_plot")
        client.close()
    finally:
        app.close()
