"""The bundled detection weights on the real data (skipped where it is absent)."""
import json

import pytest

from conftest import REPO_ROOT, complete_folder_size, needs_shared

pytestmark = pytest.mark.data


def test_bundled_detection_weights_meet_the_map_bar():
    raccoon = needs_shared("detection", "raccoon")
    from dl_core.detection.data import read_split_csv, read_voc_folder
    from dl_core.hub import load_model
    from dl_core.detection.model import SSD
    from train.detect import mean_average_precision

    test_names = read_split_csv(raccoon / "test_labels.csv")
    items = [it for it in read_voc_folder(raccoon) if it.image_path.name in test_names]
    assert len(items) == 40
    model = load_model(SSD, REPO_ROOT / "weights" / "detection")
    scores = mean_average_precision(model, items)
    assert scores["map50"] >= 0.6, scores
    recorded = json.loads((REPO_ROOT / "weights" / "detection" / "metrics.json").read_text())["focal"]["raccoon_test"]
    assert scores["map50"] == pytest.approx(recorded["map50"], abs=0.01)


def test_bundled_detection_folder_is_complete_and_within_budget():
    assert complete_folder_size("detection") <= 25 * 1024**2
