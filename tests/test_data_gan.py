"""The bundled WGAN generators on the real flowers (skipped where the data is absent): `train/wgan.py evaluate`
gives the FD-Lite0 their metrics.json records, and the better of the two meets issue 21's bar."""
import json

import pytest
from conftest import REPO_ROOT, needs_shared

pytestmark = pytest.mark.data

WGANS = {name: REPO_ROOT / "weights" / name for name in ("wgan-flowers", "wgan-gp-flowers")}


def _recorded(name: str) -> dict:
    return json.loads((WGANS[name] / "metrics.json").read_text())["scores"]


@pytest.fixture(scope="module")
def flowers_split():
    import torch

    from dl_core.gan.data import heldout_split, read_images

    images = read_images(needs_shared("gan", "flowers64.zip"), 64)
    train_idx, heldout_idx = heldout_split(len(images), 0.1, 0)
    return images[torch.from_numpy(train_idx)], images[torch.from_numpy(heldout_idx)]


@pytest.mark.parametrize("name", list(WGANS))
def test_bundled_generators_reproduce_their_recorded_fd(name, flowers_split):
    """2,000 generated flowers (seed 0) and 2,000 training ones against the 819 held out, as `evaluate` scores them
    (within 1% for another machine's float rounding)."""
    from dl_core.gan.evaluate import wgan_scores
    from dl_core.gan.model import DCGANGenerator
    from dl_core.hub import load_model

    train, heldout = flowers_split
    recorded = _recorded(name)
    scores = wgan_scores(load_model(DCGANGenerator, WGANS[name]), train, heldout, n=recorded["n"], seed=0)
    assert scores["n"] == recorded["n"] == 2000 and len(heldout) == 819
    assert scores["fd"] == pytest.approx(recorded["fd"], rel=0.01)
    assert scores["fd_real"] == pytest.approx(recorded["fd_real"], rel=0.01)


def test_the_better_wgan_is_within_eight_times_the_real_floor():
    ratios = {name: _recorded(name)["fd"] / _recorded(name)["fd_real"] for name in WGANS}
    assert min(ratios.values()) <= 8, ratios  # issue 21's bar


CYCLEGAN = REPO_ROOT / "weights" / "cyclegan-dusk"


@pytest.mark.slow
def test_the_bundled_cyclegan_reproduces_its_recorded_day_to_dusk_scores():
    """`train/cyclegan.py evaluate`'s default: CamVid's held-out day drive translated to dusk, against the held-out
    dusk frames, the dusk training frames as the floor (within 1% for another machine's float rounding)."""
    from dl_core.gan.data import camvid_domains
    from dl_core.gan.evaluate import cyclegan_scores
    from dl_core.gan.model import CycleGenerators
    from dl_core.hub import load_model

    domains = camvid_domains(needs_shared("segmentation", "camvid"), heldout_dusk=16)
    recorded = json.loads((CYCLEGAN / "metrics.json").read_text())["scores"]["a_to_b"]
    scores = cyclegan_scores(load_model(CycleGenerators, CYCLEGAN), domains["test_a"], domains["test_b"],
                             reference_paths=domains["train_b"])
    assert scores["n"] == recorded["n"] == 101 * 12
    for key in ("fd_translated", "fd_untranslated", "fd_floor", "cycle_l1"):
        assert scores[key] == pytest.approx(recorded[key], rel=0.01), key


@pytest.mark.xfail(strict=True, reason="issue 21's bar (fd_translated <= 0.6 x fd_untranslated) is not met: the bundled "
                                       "CycleGAN scores 1.46x; real dusk frames of the same drive (the floor) score 0.58x")
def test_the_cyclegan_brings_day_frames_within_six_tenths_of_their_distance_to_dusk():
    scores = json.loads((CYCLEGAN / "metrics.json").read_text())["scores"]["a_to_b"]
    assert scores["fd_translated"] <= 0.6 * scores["fd_untranslated"], scores
