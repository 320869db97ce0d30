"""The Lesson 12 GAN tab's handlers, called as the UI and the API call them (no server)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import png_header
from PIL import Image

from demos import gan as gan_tab
from demos.common import LazyModel
from dl_core.gan.card import save_gallery
from dl_core.gan.model import CycleGANConfig, CycleGenerators, DCGANConfig, DCGANGenerator
from dl_core.hub import save_model

CLIP = "weight clipping (the lesson's)"


def _swap(monkeypatch, registry: dict, name: str, folder) -> None:
    monkeypatch.setenv(f"HUB_REPO_{name.upper().replace('-', '_')}", str(folder))
    old = registry[name]
    monkeypatch.setitem(registry, name, LazyModel(name, old.loader, old.train_command, old.check, old.prepare))


@pytest.fixture
def tiny_generators(tmp_path, monkeypatch):
    """Small random generators in place of the bundled ones (the handlers' logic, not the weights, is under test)."""
    for name in gan_tab.WGAN_TRAIN:
        torch.manual_seed(0)
        generator = DCGANGenerator(DCGANConfig(size=16, nz=8, ngf=8))
        frames = [(epoch, (torch.rand(8, 3, 16, 16) * 255).to(torch.uint8)) for epoch in (0, 1, 2)]
        save_gallery(frames, tmp_path / name)
        history = [{"epoch": e, "critic_wasserstein": 1.0 / (e + 1), "valid_loss": -0.9 / (e + 1), "seconds": 1.0}
                   for e in range(2)]
        save_model(generator, tmp_path / name, card="card", metrics={
            "history": history, "gallery_epochs": [0, 1, 2], "scores": {"fd": 30.0, "fd_real": 10.0, "n": 100}})
        _swap(monkeypatch, gan_tab.GENERATORS, name, tmp_path / name)
    torch.manual_seed(0)
    save_model(CycleGenerators(CycleGANConfig(ngf=4, n_blocks=1)), tmp_path / "cycle", card="card", metrics={
        "scores": {"a_to_b": {"fd_translated": 50.0, "fd_untranslated": 100.0, "cycle_l1": 0.05, "n": 12}}})
    _swap(monkeypatch, gan_tab.CYCLE, gan_tab.CYCLE_NAME, tmp_path / "cycle")


def _photo(tmp_path, size=(96, 72), name="street.png"):
    path = tmp_path / name
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return str(path)


def test_the_grid_that_compiled_the_generator_says_so_once(tiny_generators):
    gan_tab.GENERATORS[gan_tab.WGAN_LABELS[CLIP]].get().fast_path.compile_seconds = 7.0  # as a first compiled call does
    (_, first), (_, second) = gan_tab.flowers(7, CLIP), gan_tab.flowers(7, CLIP)
    assert first.endswith("compiled the network for this CPU (7 s, once).") and "compiled" not in second


def test_a_seed_gives_a_grid_of_flowers_and_the_same_seed_the_same_grid(tiny_generators):
    grid, notes = gan_tab.flowers(7, CLIP)
    assert grid.size == (gan_tab.GRID * 128, gan_tab.GRID * 128) and "Seed **7**" in notes
    again, _ = gan_tab.flowers("7", CLIP)
    other, _ = gan_tab.flowers(8, CLIP)
    assert np.array_equal(np.asarray(grid), np.asarray(again)) and not np.array_equal(np.asarray(grid), np.asarray(other))
    gp_grid, _ = gan_tab.flowers(7, "gradient penalty (WGAN-GP)")
    assert gp_grid is not None


@pytest.mark.parametrize("seed, expected", [
    (2**80 + 5, 5), (-1, 2**32 - 1), ("  42 ", 42), (3.0, 3), (None, 0), ("", 0), ("a" * 100_000, None), ("🌸", None),
])
def test_seeds_of_any_size_or_text_map_to_a_valid_seed(seed, expected):
    notes = []
    value = gan_tab.seed_from(seed, notes)
    assert 0 <= value < 2**32
    if expected is not None:
        assert value == expected
    else:
        assert "hash" in notes[0]


def test_bad_settings_are_notes_not_exceptions(tiny_generators):
    assert gan_tab.flowers(1, "adam")[1].startswith("⚠️ *network* must be")
    strip, notes = gan_tab.latent_walk(0, 1, 10_000, CLIP)
    assert strip is not None and f"used {gan_tab.MAX_WALK_FRAMES}" in notes
    assert gan_tab.latent_walk(0, 1, float("nan"), CLIP)[1].startswith("⚠️")
    assert gan_tab.latent_walk(0, 1, "many", CLIP)[1].startswith("⚠️")


def test_the_latent_walk_starts_and_ends_on_the_seeds_first_flowers(tiny_generators):
    strip, notes = gan_tab.latent_walk(3, 4, 5, CLIP)
    assert "5 frames" in notes
    side = 16 * 2
    first = np.asarray(strip)[:side, :side]
    grid, _ = gan_tab.flowers(3, CLIP)  # its first flower, shown at 128 px
    expected = np.asarray(grid.crop((0, 0, 128, 128)).resize((side, side), Image.Resampling.NEAREST))
    assert np.abs(first.astype(int) - expected.astype(int)).mean() < 40  # same flower, resampled differently


def test_slerp_keeps_the_noise_on_the_sphere_between_two_vectors():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    middle = gan_tab.slerp(a, b, 0.5)
    assert torch.allclose(middle.norm(), torch.tensor(1.0)) and torch.allclose(middle, torch.tensor([0.7071, 0.7071]), atol=1e-4)
    assert torch.allclose(gan_tab.slerp(a, a, 0.3), a)


def test_the_training_story_shows_the_fixed_noise_gallery_the_wasserstein_plot_and_the_scores(tiny_generators):
    story, figure, notes = gan_tab.training_story(CLIP)
    assert story.size == (gan_tab.STORY_LABEL_WIDTH + 8 * 16 * 2, 3 * 16 * 2)  # a row of 8 per epoch 0, 1, 2
    rows = np.asarray(story)[:, gan_tab.STORY_LABEL_WIDTH:]
    assert rows[:32].std() > 0 and not np.array_equal(rows[:32], rows[32:64])
    assert len(figure.axes[0].lines) == 2 and "FD-Lite0 **30.0**" in notes and "3.0×" in notes


def test_the_transposed_convolution_panel_draws_the_output_of_the_formulas_size():
    figure, notes = gan_tab.transposed_conv(3, 4, 2, 1)
    assert "**6**" in notes and "uneven" not in notes
    assert figure.axes[2].images[0].get_array().shape == (6, 6)
    assert "uneven" in gan_tab.transposed_conv(3, 3, 2, 0)[1]
    assert "lower the padding" in gan_tab.transposed_conv(2, 1, 1, 2)[1]
    assert gan_tab.transposed_conv(None, 3, 2, 1)[1].startswith("⚠️")
    assert "outside 1–3" in gan_tab.transposed_conv(3, 3, 9, 1)[1]


def test_translate_gives_the_translation_the_cycle_and_its_error(tiny_generators, tmp_path):
    fake, back, heat, notes, about = gan_tab.translate_endpoint(_photo(tmp_path, (99, 70)), gan_tab.DAY_TO_DUSK)
    assert fake.size == back.size == heat.size == (96, 68)  # cropped to multiples of 4
    assert "cycle error" in notes and "0.50×" in about
    assert gan_tab.translate(_photo(tmp_path), gan_tab.DUSK_TO_DAY)[0] is not None


def test_translate_bad_input(tiny_generators, tmp_path):
    assert "No image" in gan_tab.translate(None)[3]
    assert gan_tab.translate(_photo(tmp_path), "night")[3].startswith("⚠️ *direction*")
    assert "at least 16×16" in gan_tab.translate(_photo(tmp_path, (10, 10)))[3]
    (tmp_path / "text.png").write_text("hello")
    assert "not an image" in gan_tab.translate(str(tmp_path / "text.png"))[3]
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(30_000, 30_000))
    assert "megapixels" in gan_tab.translate(str(bomb))[3]


def test_large_photos_are_reduced_to_the_frame_size_the_network_knows(tiny_generators, tmp_path):
    fake = gan_tab.translate(_photo(tmp_path, (1200, 900)))[0]
    assert max(fake.size) <= gan_tab.MAX_PHOTO_SIDE


def test_missing_weights_explain_how_to_train_them(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    for name in gan_tab.WGAN_TRAIN:
        _swap(monkeypatch, gan_tab.GENERATORS, name, tmp_path / "empty")
    _swap(monkeypatch, gan_tab.CYCLE, gan_tab.CYCLE_NAME, tmp_path / "empty")
    assert "python train/wgan.py train" in gan_tab.flowers(1, CLIP)[1]
    assert "python train/cyclegan.py train" in gan_tab.translate(_photo(tmp_path))[3]
    story, figure, notes = gan_tab.training_story(CLIP)
    assert story is None and figure is None and notes.startswith("⚠️")
    assert gan_tab.cycle_summary() == ""
    assert gan_tab.transposed_conv(3, 3, 2, 1)[0] is not None  # needs no weights


def test_a_broken_config_is_refused_with_a_reason(tmp_path, monkeypatch):
    save_model(DCGANGenerator(DCGANConfig(size=16, nz=8, ngf=8)), tmp_path / "g", card="card")
    config = json.loads((tmp_path / "g" / "config.json").read_text())
    (tmp_path / "g" / "config.json").write_text(json.dumps({**config, "ngf": 16}))
    _swap(monkeypatch, gan_tab.GENERATORS, "wgan-flowers", tmp_path / "g")
    assert "could not be loaded" in gan_tab.flowers(1, CLIP)[1]
