"""The Lessons 12-13 tab's handlers, called as the UI and the API call them (no server)."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from conftest import fresh_model, png_header
from demos import training_lab as lab_tab
from demos.common import StopSignal
from dl_core.cifar.model import Darknet, DarknetConfig
from dl_core.hub import save_model
from test_cifar import make_cifar_zip


@pytest.fixture
def tiny_classifier(tmp_path, monkeypatch):
    torch.manual_seed(0)
    folder = tmp_path / "darknet"
    save_model(Darknet(DarknetConfig(num_blocks=[1, 1], nf=8, strides=[1, 2])), folder, card="card")
    fresh_model(monkeypatch, lab_tab, folder)
    return folder


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """A data root whose cifar10/cifar10-jpg.zip is a small generated one (two colours as two classes)."""
    root = tmp_path / "data"
    (root / "cifar10").mkdir(parents=True)
    make_cifar_zip(root / "cifar10" / "cifar10-jpg.zip", n_train=160, n_test=20)
    monkeypatch.setenv("DL_DATA_DIR", str(root))
    monkeypatch.chdir(tmp_path)  # the reader's cache (data/cache) goes here
    return root


def _photo(tmp_path, size=(80, 60)):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.new("RGB", size, (120, 30, 30)).save(path)
    return str(path)


# --- classify -------------------------------------------------------------------------------------------------
def test_classify_gives_top5_and_a_row_per_stage(tiny_classifier, tmp_path):
    view = lab_tab.classify_photo(_photo(tmp_path))
    assert len(view.label) == 5 and math.isclose(sum(view.label.values()), 1, rel_tol=0.5)
    assert list(view.label.values()) == sorted(view.label.values(), reverse=True)
    assert view.stages.height == 4 * (56 + 6)  # input + stem + two groups
    assert "32×32" in view.notes and "ms" in view.notes


def test_the_classification_that_compiled_the_network_says_so_once(tiny_classifier, tmp_path):
    lab_tab.MODEL.get().fast_path.compile_seconds = 9.0  # as a first compiled call records it
    first, second = (lab_tab.classify_photo(_photo(tmp_path)).notes for _ in range(2))
    assert "also compiled the network for this CPU (9 s, once)" in first and "compiled" not in second


def test_classify_explains_bad_files_and_missing_weights(tiny_classifier, tmp_path, monkeypatch):
    assert "No image" in lab_tab.classify_photo(None).notes
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert "not an image we can read" in lab_tab.classify_photo(str(bad)).notes
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(30_000, 30_000))
    assert "megapixels" in lab_tab.classify_photo(str(bomb)).notes
    (tmp_path / "no-weights").mkdir()
    fresh_model(monkeypatch, lab_tab, tmp_path / "no-weights")
    view = lab_tab.classify_photo(_photo(tmp_path))
    assert view.label is None and "python train/cifar.py train" in view.notes


def test_a_cifar_test_image_is_classified_with_its_true_label(tiny_classifier, data_root):
    path, label, stages, notes = lab_tab.classify_test_image(3)
    assert path.endswith(".png") and len(label) == 5 and stages is not None
    assert "labelled **airplane**" in notes
    assert "must be a number" in lab_tab.classify_test_image("x")[3]


def test_without_the_data_the_test_image_button_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path / "none"))
    path, _, _, notes = lab_tab.classify_test_image()
    assert path is None and "not on this server" in notes


# --- schedule designer ----------------------------------------------------------------------------------------
def test_presets_fill_the_table_with_the_lessons_phases():
    table, note = lab_tab.preset_table(lab_tab.PRESETS[0], lr=1.0, epochs=10, div=20, pct=20)
    assert table.values.tolist() == [
        [4.0, 0.05, 1.0, "linear", 0.95, 0.85, "linear", 0.9],
        [4.0, 1.0, 0.05, "linear", 0.85, 0.95, "linear", 0.9],
        [2.0, 0.05, 0.0005, "linear", 0.95, 0.95, "constant", 0.9],
    ] and note == ""
    sgdr, _ = lab_tab.preset_table(lab_tab.PRESETS[1], lr=0.1, epochs=7, n_cycles=3, cycle_mult=2)
    assert sgdr["epochs"].tolist() == pytest.approx([1, 2, 4]) and set(sgdr["LR decay"]) == {"cosine"}
    two, _ = lab_tab.preset_table(lab_tab.PRESETS[2], lr=0.01, epochs=3)
    assert two[["epochs", "LR start", "LR end"]].values.tolist() == [[1, 0.01, 0.01], [2, 0.001, 0.001]]


def test_preset_settings_out_of_range_are_clamped_or_refused():
    table, note = lab_tab.preset_table(lab_tab.PRESETS[0], lr=50, epochs=2)
    assert table["LR start"].max() == 5.0 and "outside" in note
    assert "must be a number" in lab_tab.preset_table(lab_tab.PRESETS[0], lr=float("nan"))[1]
    assert "unknown preset" in lab_tab.preset_table("warp drive")[1]


def test_design_plots_a_valid_table_and_explains_a_bad_one():
    table, _ = lab_tab.preset_table(lab_tab.PRESETS[0], lr=0.4, epochs=1)
    figure, note = lab_tab.design_schedule(table, 4000)
    assert figure is not None and note == ""
    lr_line = figure.axes[0].lines[0].get_ydata()
    assert len(lr_line) == 62 and max(lr_line) == pytest.approx(0.4, rel=0.05)  # 4000 // 64 iterations
    long_figure, long_note = lab_tab.design_schedule(lab_tab.preset_table(lab_tab.PRESETS[0], epochs=30)[0], 4000)
    assert long_figure is not None and "at most 2 epochs" in long_note
    cases = {
        "length must be more than 0": [[0, 0.1, 0.1, "linear", 0.9, 0.9, "linear", 0.9]],
        "LR end must be more than 0": [[1, 0.1, -0.1, "linear", 0.9, 0.9, "linear", 0.9]],
        "momentum start must be in [0, 1)": [[1, 0.1, 0.1, "linear", 1.2, 0.9, "linear", 0.9]],
        "is not one of": [[1, 0.1, 0.1, "sideways", 0.9, 0.9, "linear", 0.9]],
        "must be a number": [[1, "fast", 0.1, "linear", 0.9, 0.9, "linear", 0.9]],
        "finite number": [[math.inf, 0.1, 0.1, "linear", 0.9, 0.9, "linear", 0.9]],
        "too many": [[1, 0.1, 0.1, "linear", 0.9, 0.9, "linear", 0.9]] * 5000,
        "no phases": [],
        "expected 8 values": [[1, 0.1]],
        "rows of 8 values": "1cycle please",
        "power must be more than 0": [[1, 0.1, 0.01, "polynomial", 0.9, 0.9, "linear", -1]],
    }
    for message, table in cases.items():
        figure, note = lab_tab.design_schedule(table)
        assert figure is None and message in note, (message, note)


def test_the_api_may_send_the_table_as_a_dict_of_rows():
    rows = [[1, 0.1, 0.01, "cosine", 0.9, 0.9, "constant", 0.9]]
    plan = lab_tab.phases_from_table({"headers": lab_tab.TABLE_HEADERS, "data": rows})
    assert plan[0].lr == (0.1, 0.01) and plan[0].lr_decay == "cosine"
    assert lab_tab.phases_from_table(pd.DataFrame(rows, columns=lab_tab.TABLE_HEADERS)) == plan
    assert lab_tab.phases_from_table([[*rows[0][:7], None]])[0].power == 0.9  # an empty power cell: the default


# --- live training and the LR finder ---------------------------------------------------------------------------
def test_live_training_streams_and_overlays_the_earlier_run(data_root):
    table, _ = lab_tab.preset_table(lab_tab.PRESETS[0], lr=0.2, epochs=1)
    outputs = list(lab_tab.train_live(table, 500, 1.0, []))
    loss, accuracy, status, runs = outputs[-2]
    assert "run 1" in status and "done" in status and "accuracy" in status
    final = outputs[-1]
    assert len(final[3]) == 1 and final[3][0]["label"].startswith("run 1")
    second = list(lab_tab.train_live(table, 500, 1.0, final[3]))
    loss, accuracy, _, runs = second[-1]
    assert set(loss["run"]) == {runs[0]["label"], runs[1]["label"]} and runs[1]["number"] == 2
    assert len(loss[loss["run"] == runs[1]["label"]]) == 5  # 320 images // 64 per batch


def test_live_training_stops_on_the_stop_button(data_root):
    import threading

    stop = StopSignal()
    table, _ = lab_tab.preset_table(lab_tab.PRESETS[0], lr=0.2, epochs=2)
    statuses = []
    for _, _, status, _ in lab_tab.train_live(table, 5000, 2.0, [], stop):
        if isinstance(status, str):  # the last update keeps the status shown (gr.skip)
            statuses.append(status)
            if "iteration" in status:
                stop.press()
    assert "stopped (Stop pressed) at iteration" in statuses[-1]
    assert not any(t.name == "training-lab" and t.is_alive() for t in threading.enumerate())


def test_live_training_refuses_bad_settings_and_missing_data(tmp_path, monkeypatch):
    table, _ = lab_tab.preset_table(lab_tab.PRESETS[0])
    assert "must be a number" in list(lab_tab.train_live(table, "many"))[-1][2]
    assert "is not one of" in list(lab_tab.train_live([[1, 0.1, 0.1, "zigzag", 0.9, 0.9, "linear", 0.9]]))[-1][2]
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path / "none"))
    monkeypatch.setattr("dl_core.cifar.data.FASTAI_CIFAR10_URL", "http://127.0.0.1:9/cifar10.tgz")  # nothing listens: refused
    monkeypatch.chdir(tmp_path)
    last = list(lab_tab.train_live(table, 500, 0.25))[-1]
    assert "not on this server" in last[2] and "classifying a photo still works" in last[2]


def test_lr_finder_marks_the_lessons_pick(data_root):
    outputs = list(lab_tab.lr_find_live(500))
    figure, status = outputs[-1]
    assert "done" in status and "The lesson's advice" in status
    labels = [line.get_label() for line in figure.axes[0].lines]
    assert any("lowest loss ÷ 10" in label for label in labels)
    assert "must be a number" in list(lab_tab.lr_find_live(None))[-1][1]


def test_the_panel_quotes_the_bundled_folders_numbers_across_its_runs(tmp_path, monkeypatch):
    import json

    folder = tmp_path / "darknet"
    folder.mkdir()
    history = [{"epoch": i, "train_loss": 1.0, "valid_loss": 1.0, "accuracy": 0.8, "seconds": 60.0} for i in range(3)]
    (folder / "metrics.json").write_text(json.dumps({
        "test": {"accuracy": 0.9012, "accuracy_no_tta": 0.8934, "n": 10000}, "history": history,
        "facts": {"hardware": "CPU, 2 threads"}, "lineage": [{"epochs": 15, "seconds": 3300.0}]}))
    monkeypatch.setenv("HUB_REPO_DARKNET_CIFAR10", str(folder))
    text = lab_tab.about_weights()
    assert "**90.1%**" in text and "89.3%" in text and "in 2 1cycle runs, 18 epochs, 58 minutes on CPU, 2 threads" in text
