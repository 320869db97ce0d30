"""The bundled super-resolution networks on the real benchmark images (skipped where the data is absent)."""
import json

import pytest
from conftest import REPO_ROOT, complete_folder_size, needs_shared

pytestmark = pytest.mark.data

FOLDERS = {name: REPO_ROOT / "weights" / name for name in ("superres-x2", "superres-x4", "superres-x4-perceptual")}


def _recorded(name: str) -> dict:
    return json.loads((FOLDERS[name] / "metrics.json").read_text())["scores"]


@pytest.mark.parametrize("name", list(FOLDERS))
def test_bundled_networks_reproduce_their_recorded_set5_scores(name):
    """`train/superres.py evaluate --data .../CSet5` gives metrics.json's numbers (within 0.02 dB for another
    machine's float rounding); bicubic's are the literature's (28.42 dB at ×4, 33.66 at ×2)."""
    from dl_core.hub import load_model
    from dl_core.photos import list_images
    from dl_core.superres.evaluate import evaluate_images
    from dl_core.superres.model import SrResnet

    folder = needs_shared("superres", "CSet5")
    model = load_model(SrResnet, FOLDERS[name])
    score = evaluate_images(model, list_images([folder]), model.config.scale)
    recorded = _recorded(name)["CSet5"]
    assert score["n"] == recorded["n"] == 5
    assert score["psnr"] == pytest.approx(recorded["psnr"], abs=0.02)
    assert score["ssim"] == pytest.approx(recorded["ssim"], abs=2e-4)
    assert score["psnr_bicubic"] == pytest.approx({2: 33.66, 4: 28.42}[model.config.scale], abs=0.05)


def test_the_x4_self_ensemble_reproduces_its_recorded_set5_score_and_reaches_the_bar():
    """Issue 20's bar, 30.5 dB on Set5 at x4 (SRCNN: 30.48), met by the bundled pixel-loss network with the x8
    geometric self-ensemble (EDSR+): `evaluate --self-ensemble` gives metrics.json's CSet5+ again."""
    from dl_core.hub import load_model
    from dl_core.photos import list_images
    from dl_core.superres.evaluate import evaluate_images
    from dl_core.superres.model import SrResnet

    folder = needs_shared("superres", "CSet5")
    model = load_model(SrResnet, FOLDERS["superres-x4"])
    score = evaluate_images(model, list_images([folder]), 4, ensemble=True)
    recorded = _recorded("superres-x4")["CSet5+"]
    assert recorded["self_ensemble"] and score["n"] == recorded["n"] == 5
    assert score["psnr"] == pytest.approx(recorded["psnr"], abs=0.02)
    assert recorded["psnr"] >= 30.5
    assert score["psnr"] > _recorded("superres-x4")["CSet5"]["psnr"]  # averaging 8 views beats one


def test_the_x4_network_alone_beats_srcnn_on_set5():
    assert _recorded("superres-x4")["CSet5"]["psnr"] >= 30.48  # SRCNN's published Set5 x4


@pytest.mark.xfail(strict=True, reason="a single pass scores 30.496 dB on Set5 after 130 minutes of x4 training on 2 "
                                       "CPU cores (two 1cycle runs): 0.004 dB short; the self-ensemble passes")
def test_the_x4_network_reaches_the_bar_on_set5_in_one_pass():
    assert _recorded("superres-x4")["CSet5"]["psnr"] >= 30.5


@pytest.mark.xfail(strict=True, reason="not reached on the stand-in set: CamVid's soft 480×360 video frames give "
                                       "+0.69 dB at ×4; the bar was set for sharp city photos outside ../shared")
def test_the_x4_network_gains_the_bar_over_bicubic_on_urban_photos():
    urban = _recorded("superres-x4")["urban"]
    assert urban["psnr"] - urban["psnr_bicubic"] >= 1.2


@pytest.mark.slow
def test_the_x4_network_beats_bicubic_on_a_sample_of_the_urban_hold_out():
    """A seeded sample of 25 of the 101 held-out street scenes: the network beats bicubic there, by close to the full
    set's recorded gain."""
    import random

    from dl_core.hub import load_model
    from dl_core.superres.data import urban_heldout
    from dl_core.superres.evaluate import evaluate_images
    from dl_core.superres.model import SrResnet

    needs_shared("segmentation", "camvid")
    frames = random.Random(0).sample(urban_heldout(), 25)
    score = evaluate_images(load_model(SrResnet, FOLDERS["superres-x4"]), frames, 4)
    gain, recorded = score["psnr"] - score["psnr_bicubic"], _recorded("superres-x4")["urban"]
    assert recorded["n"] == 101
    assert gain > 0.3 and gain == pytest.approx(recorded["psnr"] - recorded["psnr_bicubic"], abs=0.3)


def test_the_recorded_scores_tell_the_lessons_story():
    """Every network beats bicubic on every test set by PSNR; the perceptual network trades PSNR for texture (lower
    PSNR than the pixel network it started from, still above bicubic on Set5)."""
    for name in ("superres-x2", "superres-x4"):
        for test_set, s in _recorded(name).items():
            assert s["psnr"] > s["psnr_bicubic"] and s["ssim"] > s["ssim_bicubic"], (name, test_set)
    pixel, perceptual = _recorded("superres-x4"), _recorded("superres-x4-perceptual")
    assert perceptual["CSet5"]["psnr"] < pixel["CSet5"]["psnr"]
    assert {"CSet5", "CSet14", "CBSD68", "urban"} <= set(pixel)


def test_bundled_folders_are_complete_within_budget_and_their_cards_are_the_codes():
    from dl_core.superres.card import model_card
    from dl_core.superres.model import SuperResConfig

    for name, folder in FOLDERS.items():
        assert complete_folder_size(name) <= 8 * 10**6
        config = SuperResConfig(**json.loads((folder / "config.json").read_text()))
        metrics = json.loads((folder / "metrics.json").read_text())
        assert (folder / "README.md").read_text() == model_card(config, metrics, f"weights/{name}"), \
            f"run: python train/superres.py card --weights weights/{name}"
