"""The bundled CIFAR-10 DarkNet on the real test images (skipped where the data set is absent)."""
import json

import pytest

from conftest import REPO_ROOT, complete_folder_size, needs_shared

pytestmark = pytest.mark.data

FOLDER = REPO_ROOT / "weights" / "darknet-cifar10"


@pytest.mark.slow
def test_bundled_darknet_reproduces_its_recorded_test_accuracy():
    """`train/cifar.py evaluate` on all 10,000 test images gives metrics.json's number (90.33%, flip TTA)."""
    data = needs_shared("cifar10", "cifar10-jpg.zip")
    from dl_core.cifar.evaluate import evaluate_folder

    score = evaluate_folder(FOLDER, data)
    recorded = json.loads((FOLDER / "metrics.json").read_text())["test"]
    assert score["n"] == recorded["n"] == 10_000
    assert score["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-3)  # recorded on the fp32 model, before fp16 storage
    assert score["accuracy"] >= 0.90  # issue 18's bar


def test_bundled_darknet_folder_is_complete_within_budget_and_its_card_is_the_codes():
    from dl_core.cifar.card import model_card
    from dl_core.cifar.model import DarknetConfig

    assert complete_folder_size("darknet-cifar10") <= 20 * 10**6
    config = DarknetConfig(**json.loads((FOLDER / "config.json").read_text()))
    metrics = json.loads((FOLDER / "metrics.json").read_text())
    assert (FOLDER / "README.md").read_text() == model_card(config, metrics), "run: python train/cifar.py card --weights weights/darknet-cifar10"
