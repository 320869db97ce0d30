"""Lesson 14 super-resolution: pixel shuffle, ICNR, growing x2 into x4, the literature's PSNR/SSIM, the data, the
tiled fast path, and a short training run that beats bicubic."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from dl_core.superres.data import (
    DIHEDRAL,
    PatchPairs,
    bicubic_upscale,
    camvid_frames,
    downscale,
    mod_crop,
    raccoon_train,
)
from dl_core.superres.evaluate import psnr, rgb_to_y, score_image, self_ensemble, shave, ssim, y_scores
from dl_core.superres.infer import checkerboard, checkerboard_strength, run_tiled
from dl_core.superres.model import (
    SrResnet,
    SuperResConfig,
    UpsampleStep,
    grow,
    icnr_,
    n_parameters,
)


def _photo(size=(64, 48), seed=0) -> Image.Image:
    """A smooth random picture (low-pass noise): something an up-sampler can learn, unlike white noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def test_pixel_shuffle_moves_channel_groups_into_two_by_two_blocks():
    x = torch.arange(4 * 2 * 3, dtype=torch.float32).reshape(1, 4, 2, 3)  # 4 channels = 1 output channel x 2 x 2
    y = torch.nn.PixelShuffle(2)(x)
    assert y.shape == (1, 1, 4, 6)
    for a in range(2):
        for b in range(2):
            assert torch.equal(y[0, 0, a::2, b::2], x[0, 2 * a + b])  # y(2i+a, 2j+b) = x_{2a+b}(i, j)


@pytest.mark.parametrize("scale", [2, 4])
def test_the_network_enlarges_by_its_scale_and_starts_near_the_input_colours(scale):
    torch.manual_seed(0)
    model = SrResnet(SuperResConfig(scale=scale, nf=16, n_blocks=2)).eval()
    out = model(torch.rand(2, 3, 10, 14))
    assert out.shape == (2, 3, 10 * scale, 14 * scale)
    full = SrResnet(SuperResConfig(scale=scale))
    assert n_parameters(full) < 1_000_000  # under 2 MB in fp16: the issue allows 8 MB


def test_icnr_makes_every_sub_kernel_of_a_channel_equal_so_a_constant_input_gives_a_constant_output():
    torch.manual_seed(0)
    step = UpsampleStep(8, icnr=True)
    w = step[0].weight
    for c in range(8):
        group = w[4 * c: 4 * c + 4]
        assert all(torch.equal(group[0], group[k]) for k in range(1, 4))
    out = step(torch.full((1, 8, 6, 6), 0.7))[:, :, 2:-2, 2:-2]  # away from the zero-padded border
    assert torch.allclose(out, out[:, :, :1, :1].expand_as(out), atol=1e-6)
    random_step = UpsampleStep(8, icnr=False)
    torch.nn.init.kaiming_normal_(random_step[0].weight)
    noisy = random_step(torch.full((1, 8, 6, 6), 0.7))[:, :, 2:-2, 2:-2]
    assert not torch.allclose(noisy, noisy[:, :, :1, :1].expand_as(noisy), atol=1e-3)  # the checkerboard


def test_an_icnr_step_is_a_conv_followed_by_nearest_neighbour_upsampling():
    torch.manual_seed(1)
    step = UpsampleStep(4, icnr=True)
    x = torch.rand(1, 4, 5, 7)
    conv = torch.nn.functional.conv2d(x, step[0].weight[::4], step[0].bias[::4], padding=1)
    assert torch.allclose(step(x), torch.nn.functional.interpolate(conv, scale_factor=2, mode="nearest"), atol=1e-6)
    with pytest.raises(ValueError, match="cannot feed"):
        icnr_(torch.empty(6, 3, 3, 3))


def test_growing_x2_into_x4_keeps_everything_but_the_new_upsampling_step():
    torch.manual_seed(0)
    x2 = SrResnet(SuperResConfig(scale=2, nf=16, n_blocks=2))
    x4 = grow(x2, 4)
    assert x4.config.scale == 4 and x4.config.nf == 16
    old, new = x2.state_dict(), x4.state_dict()
    for name, tensor in old.items():
        assert torch.equal(new[name], tensor), name
    extra = set(new) - set(old)
    assert extra == {"upsample.1.0.weight", "upsample.1.0.bias"}
    with pytest.raises(ValueError):
        grow(x4, 2)
    with pytest.raises(ValueError, match="scale"):
        SuperResConfig(scale=3)


def test_psnr_and_ssim_on_known_cases():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (64, 64))
    assert psnr(image, image) == math.inf
    assert ssim(image, image) == pytest.approx(1.0)
    assert psnr(np.zeros((4, 4)), np.full((4, 4), 255.0)) == pytest.approx(0.0)  # MSE = peak^2
    noisy = image + rng.normal(0, 10, image.shape)  # sigma 10: PSNR = 20 log10(255 / 10) = 28.13 dB
    assert psnr(noisy, image) == pytest.approx(28.13, abs=0.1)
    flat = np.full((32, 32), 100.0)  # SSIM of two constants: only the luminance term, (2ab + C1) / (a^2 + b^2 + C1)
    c1 = (0.01 * 255) ** 2
    assert ssim(flat, flat + 20) == pytest.approx((2 * 100 * 120 + c1) / (100**2 + 120**2 + c1))
    assert ssim(noisy, image) < ssim(image + rng.normal(0, 2, image.shape), image) < 1


def test_luma_is_bt601_in_16_to_235_and_shaving_drops_the_borders():
    assert rgb_to_y(np.zeros((1, 1, 3)))[0, 0] == pytest.approx(16)
    assert rgb_to_y(np.full((1, 1, 3), 255))[0, 0] == pytest.approx(235)
    assert rgb_to_y(np.array([[[255, 0, 0]]]))[0, 0] == pytest.approx(16 + 65.481)
    image = np.arange(100.0).reshape(10, 10)
    assert shave(image, 2).shape == (6, 6) and shave(image, 2)[0, 0] == 22
    assert shave(image, 0) is image


def test_mod_crop_downscale_and_bicubic_keep_the_sizes_consistent():
    photo = _photo((67, 50))
    cropped = mod_crop(photo, 4)
    assert cropped.size == (64, 48)
    low = downscale(cropped, 4)
    assert low.size == (16, 12)
    assert bicubic_upscale(low, 4).size == (64, 48)
    p, s = y_scores(bicubic_upscale(low, 4), cropped, 4)
    assert 15 < p < 60 and 0 < s < 1


def test_patch_pairs_are_reproducible_aligned_and_augmented(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"p{i}.png")
        _photo((120, 100), seed=i).save(paths[-1])
    data = PatchPairs(paths, scale=2, hr_size=48, seed=7)
    low, high = data[5]
    assert low.shape == (3, 24, 24) and high.shape == (3, 48, 48)
    assert torch.equal(data[5][1], high) and not torch.equal(data[6][1], high)
    # the low-res patch is the high-res one down-sampled
    expected = np.asarray(downscale(Image.fromarray((high.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)), 2))
    assert np.abs(low.permute(1, 2, 0).numpy() * 255 - expected).max() <= 1
    assert len(DIHEDRAL) == 8
    with pytest.raises(ValueError, match="multiple"):
        PatchPairs(paths, scale=4, hr_size=50)
    with pytest.raises(ValueError, match="smaller"):
        PatchPairs(paths, scale=2, hr_size=200)
    _photo((40, 40)).save(tmp_path / "small.png")
    assert PatchPairs([*paths, tmp_path / "small.png"], scale=2, hr_size=48).skipped == 1


def test_area_sampling_cuts_patches_from_photos_in_proportion_to_their_pixels(tmp_path):
    red, blue = tmp_path / "large-red.png", tmp_path / "small-blue.png"
    Image.new("RGB", (192, 192), (255, 0, 0)).save(red)  # 4x the pixels of the blue one
    Image.new("RGB", (96, 96), (0, 0, 255)).save(blue)

    def share_from_red(sample_by: str) -> float:
        data = PatchPairs([red, blue], scale=2, hr_size=32, seed=3, sample_by=sample_by)
        return float(np.mean([data[i][1][0].mean().item() > 0.5 for i in range(400)]))

    assert abs(share_from_red("photo") - 0.5) < 0.08
    assert abs(share_from_red("area") - 0.8) < 0.06
    with pytest.raises(ValueError, match="sample_by"):
        PatchPairs([red], scale=2, hr_size=32, sample_by="size")


def test_camvid_drives_and_raccoon_splits_are_read_from_their_layouts(tmp_path):
    for split, names in (("train", ["0001TP_1.png", "0006R0_2.png"]), ("val", ["0016E5_3.png"])):
        (tmp_path / split).mkdir()
        for name in names:
            _photo().save(tmp_path / split / name)
    assert [p.name for p in camvid_frames(tmp_path)] == ["0001TP_1.png", "0016E5_3.png"]
    assert [p.name for p in camvid_frames(tmp_path, only_drive="0006R0")] == ["0006R0_2.png"]
    (tmp_path / "images").mkdir()
    for name in ("a.jpg", "b.jpg"):
        _photo().save(tmp_path / "images" / name)
    (tmp_path / "train_labels.csv").write_text("filename,width,height,class,xmin,ymin,xmax,ymax\na.jpg,1,1,raccoon,0,0,1,1\n"
                                                "a.jpg,1,1,raccoon,0,0,1,1\n")
    assert [p.name for p in raccoon_train(tmp_path)] == ["a.jpg"]


def test_tiles_stitch_into_exactly_the_whole_pass():
    torch.manual_seed(0)
    model = SrResnet(SuperResConfig(scale=2, nf=8, n_blocks=8)).eval()
    x = torch.rand(1, 3, 70, 90)
    with torch.no_grad():
        whole = model(x)
    assert torch.allclose(run_tiled(model, x, tile=32, fast=False), whole, atol=1e-5)
    fast = run_tiled(model, x, tile=32, fast=True)  # bf16 autocast: close, not equal
    assert (fast - whole).abs().mean() < 0.01


def test_the_checkerboard_experiment_shows_a_pattern_without_icnr_and_none_with_it():
    demo = checkerboard(_photo((48, 48)), seed=3)
    assert demo.random_output.shape == demo.icnr_output.shape == (96, 96, 3)
    assert demo.icnr_artefact < 1e-6 and demo.random_artefact > 0.2
    assert all(np.array_equal(demo.icnr_kernels[0], k) for k in demo.icnr_kernels)
    assert not np.array_equal(demo.random_kernels[0], demo.random_kernels[1])
    blocks = np.kron(np.random.default_rng(0).uniform(size=(8, 8, 1)), np.ones((2, 2, 1)))
    assert checkerboard_strength(blocks) == 0


def _pixel_art(seed: int, size: int = 96, block: int = 4) -> Image.Image:
    """Random 4x4-pixel blocks: sharp edges everywhere, which bicubic blurs and a network can learn to keep."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 255, (size // block, size // block, 3), dtype=np.uint8)
    return Image.fromarray(cells).resize((size, size), Image.Resampling.NEAREST)


def test_a_short_training_run_beats_bicubic_on_generated_pictures(tmp_path):
    """Three short epochs (300 steps, ~7 s) through the project's Learner under 1cycle: the network must beat bicubic
    by 2 dB on a generated picture it never saw (it reaches ~5)."""
    from dl_core.callbacks import ParamSchedule
    from dl_core.schedules import one_cycle
    from dl_core.superres.data import patch_loader
    from dl_core.superres.training import make_learner, pixel_loss

    torch.manual_seed(0)
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"p{i}.png")
        _pixel_art(seed=i).save(paths[-1])
    model = SrResnet(SuperResConfig(scale=2, nf=16, n_blocks=2))
    train_dl = patch_loader(paths, scale=2, hr_size=32, bs=16, batches_per_epoch=100, seed=0, min_zoom=1.0)
    learn = make_learner(model, train_dl, None, pixel_loss("l1"), lr=3e-3, callbacks=[ParamSchedule(lr=one_cycle(3e-3))])
    learn.fit(3)
    scores = score_image(model.eval(), _pixel_art(seed=99), 2)
    assert scores["psnr"] > scores["psnr_bicubic"] + 2, scores


def test_the_feature_loss_is_zero_for_the_original_and_grows_with_blur():
    from dl_core.perceptual import FeatureExtractor
    from dl_core.superres.training import FEATURE_LAYERS, FeatureLoss

    torch.manual_seed(0)
    loss = FeatureLoss(FeatureExtractor("efficientnet_lite0", pretrained=False), FEATURE_LAYERS["efficientnet_lite0"])
    image = torch.from_numpy(np.asarray(_pixel_art(0, size=64), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    blurred = torch.nn.functional.avg_pool2d(image, 3, stride=1, padding=1)
    assert float(loss(image, image)) == pytest.approx(0, abs=1e-6)
    slight, strong = float(loss(0.8 * image + 0.2 * blurred, image)), float(loss(blurred, image))
    assert 0 < slight < strong
    assert set(loss.terms) == {"pixel", "stem", "block2", "block4"}
    with pytest.raises(ValueError, match="one weight per"):
        FeatureLoss(loss.extractor, ("stem",), (0.5, 0.5))


def test_the_training_monitor_computes_the_same_psnr_as_the_evaluation():
    from dl_core.superres.evaluate import batch_psnr_y

    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (2, 20, 24, 3)).astype(np.float32) / 255
    restored = np.clip(original + rng.normal(0, 0.03, original.shape), 0, 1).astype(np.float32)
    batch = batch_psnr_y(torch.from_numpy(restored).permute(0, 3, 1, 2), torch.from_numpy(original).permute(0, 3, 1, 2), 2)
    for i in range(2):
        expected = psnr(shave(rgb_to_y(np.round(restored[i] * 255)), 2), shave(rgb_to_y(original[i] * 255), 2))
        assert float(batch[i]) == pytest.approx(expected, abs=1e-3)


def test_train_grow_evaluate_and_card_from_the_command_line(tmp_path, capsys):
    """The script end to end on generated photos: a x2 folder, a x4 grown from it, `evaluate` printing its JSON last
    line (and --write recording it in the card), `card` rewriting the same card."""
    import json

    from train import superres

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        _pixel_art(i, size=200).save(photos / f"p{i}.png")
    common = ["--photos", str(photos), "--epochs", "1", "--batches-per-epoch", "2", "--bs", "2", "--blocks", "1",
              "--nf", "8", "--checkpoint", "none"]
    superres.main(["train", "--scale", "2", "--out", str(tmp_path / "x2"), *common])
    superres.main(["train", "--scale", "4", "--init", str(tmp_path / "x2"), "--out", str(tmp_path / "x4"), *common])
    assert json.loads((tmp_path / "x4" / "config.json").read_text())["scale"] == 4
    capsys.readouterr()
    superres.main(["evaluate", "--weights", str(tmp_path / "x4"), "--data", str(photos), "--write", "generated"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result) == {"psnr", "ssim", "psnr_bicubic", "ssim_bicubic", "n"} and result["n"] == 4
    card = (tmp_path / "x4" / "README.md").read_text()
    assert f"{result['psnr']:.2f}" in card and "python train/superres.py train --scale 4 --init" in card
    superres.main(["evaluate", "--weights", str(tmp_path / "x4"), "--data", str(photos), "--self-ensemble",
                   "--write", "generated+"])
    ensembled = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ensembled["self_ensemble"] and ensembled["n"] == 4
    card = (tmp_path / "x4" / "README.md").read_text()
    assert f"generated, ×8 self-ensemble | {ensembled['psnr']:.2f}" in card
    superres.main(["card", "--weights", str(tmp_path / "x4")])
    assert (tmp_path / "x4" / "README.md").read_text() == card


def test_the_self_ensemble_is_equivariant_and_averages_the_eight_views():
    """A network that ignores orientation (a 1x1 conv) comes back unchanged; a lopsided one does not, and its
    ensemble answers a flipped or rotated input with the flipped or rotated output."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 10, 14)
    pointwise = torch.nn.Conv2d(3, 3, 1)
    assert torch.allclose(self_ensemble(pointwise, x), pointwise(x), atol=1e-6)
    lopsided = torch.nn.Conv2d(3, 3, 3, padding=1)
    with torch.no_grad():
        ensembled = self_ensemble(lopsided, x)
        assert not torch.allclose(ensembled, lopsided(x), atol=1e-3)
        assert torch.allclose(self_ensemble(lopsided, x.flip(3)), ensembled.flip(3), atol=1e-6)
        assert torch.allclose(self_ensemble(lopsided, torch.rot90(x, 1, (2, 3))), torch.rot90(ensembled, 1, (2, 3)),
                              atol=1e-6)


def test_the_command_line_explains_missing_data_and_mismatched_scales(tmp_path):
    from train import superres

    with pytest.raises(SystemExit, match="no such image folder"):
        superres.main(["train", "--photos", str(tmp_path / "nowhere"), "--out", ""])
    with pytest.raises(SystemExit, match="cannot load"):
        superres.main(["evaluate", "--weights", str(tmp_path / "nowhere"), "--data", str(tmp_path)])
    from dl_core.hub import save_model

    save_model(SrResnet(SuperResConfig(scale=2, nf=8, n_blocks=1)), tmp_path / "x2", card="card")
    with pytest.raises(SystemExit, match="is a ×2 network, not ×4"):
        superres.main(["evaluate", "--weights", str(tmp_path / "x2"), "--data", str(tmp_path), "--scale", "4"])
    with pytest.raises(SystemExit, match="no images"):
        superres.main(["evaluate", "--weights", str(tmp_path / "x2"), "--data", str(tmp_path / "x2")])


def test_a_loaded_network_saves_a_config_that_loads_again(tmp_path):
    """Fine-tuning starts from a loaded folder (--init): what it saves must load again, strictly."""
    from dl_core.hub import load_model, save_model

    save_model(SrResnet(SuperResConfig(scale=4, nf=8, n_blocks=1)), tmp_path / "a", card="card")
    again = load_model(SrResnet, tmp_path / "a")
    save_model(again, tmp_path / "b", card="card")
    assert load_model(SrResnet, tmp_path / "b").config == again.config
