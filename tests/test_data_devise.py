"""The bundled DeViSE head on CIFAR-10's real test images (skipped where the data set is absent): the zero-shot scores
its metrics.json records, and the issue's bars on them."""
import json

import pytest

from conftest import REPO_ROOT, complete_folder_size, needs_shared

pytestmark = pytest.mark.data

FOLDER = REPO_ROOT / "weights" / "devise"


@pytest.mark.slow
def test_bundled_devise_reproduces_its_recorded_zero_shot_scores_and_beats_conse():
    """`train/devise.py evaluate --weights weights/devise` on all 10,000 test images (the backbone's features cached
    under data/cache/ by the first run: about 2 minutes on 2 cores, then seconds) gives metrics.json's numbers."""
    data = needs_shared("cifar10", "cifar10-jpg.zip")
    from dl_core.devise.evaluate import zero_shot_scores
    from dl_core.devise.features import cifar_features
    from dl_core.devise.model import DeviseHead
    from dl_core.devise.vectors import WordVectors
    from dl_core.hub import load_model

    head = load_model(DeviseHead, FOLDER)
    recorded = json.loads((FOLDER / "metrics.json").read_text())
    scores = zero_shot_scores(head, cifar_features(data, "test", head.config.image_size), WordVectors.load(FOLDER),
                              recorded["unseen"])
    assert scores["n"] == recorded["test"]["n"] == 10_000
    for key in ("top1_unseen", "top1_all", "hit5_vocab", "conse_top1_unseen"):
        assert scores[key] == pytest.approx(recorded["test"][key], abs=2e-3), key  # recorded before fp16 storage
    assert scores["top1_unseen"] >= scores["conse_top1_unseen"]  # issue 22's bar: DeViSE >= ConSE on unseen classes
    assert scores["top1_unseen"] >= 0.3  # and well above chance (10%)


def test_bundled_devise_folder_is_complete_within_budget_and_its_card_is_the_codes():
    from dl_core.devise.card import model_card
    from dl_core.devise.model import DeviseConfig

    size = complete_folder_size("devise")
    assert {"vectors.safetensors", "words.txt"} <= {p.name for p in FOLDER.iterdir()}
    assert size <= 30 * 10**6  # issue 22: head + vocabulary index
    config = DeviseConfig(**json.loads((FOLDER / "config.json").read_text()))
    metrics = json.loads((FOLDER / "metrics.json").read_text())
    assert (FOLDER / "README.md").read_text() == model_card(config, metrics, "weights/devise"), \
        "run: python train/devise.py card --weights weights/devise"
