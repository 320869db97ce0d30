"""Lesson 12 GANs: DCGAN generator/critic, weight clipping, the gradient penalty, the critic schedule, CycleGAN's
losses and image pool, the callback that alternates the two networks on the one Learner, FD-Lite0, the data."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dl_core.gan.data import (
    UnpairedCrops,
    camvid_domains,
    folder_domains,
    heldout_split,
    read_images,
    real_loader,
    to_uint8,
    to_unit,
)
from dl_core.gan.evaluate import PooledFeatures, features_of, frechet_distance, gaussian_stats
from dl_core.gan.model import (
    CycleGANConfig,
    CycleGenerators,
    DCGANConfig,
    DCGANCritic,
    DCGANGenerator,
    PatchDiscriminator,
    receptive_field,
)
from dl_core.gan.training import (
    CRITIC,
    GENERATOR,
    CyclePair,
    GANTrainer,
    ImagePool,
    WassersteinPair,
    critic_iterations,
    gan_loss,
    gan_optimizer,
    gradient_penalty,
)
from dl_core.learner import Callback, CancelFit, Learner

SMALL = DCGANConfig(size=16, nz=8, ngf=8, ndf=8, n_extra_layers=1)


def test_dcgan_shapes_at_64_px_and_the_widest_layer_follows_ngf():
    config = DCGANConfig()
    generator, critic = DCGANGenerator(config), DCGANCritic(config)
    images = generator(generator.noise(4))
    assert images.shape == (4, 3, 64, 64) and images.abs().max() <= 1
    assert critic(images).shape == (4,)
    assert generator.body[0][0].out_channels == 512  # ngf 64 * 64 px / 8, the lesson's cngf
    assert DCGANGenerator(DCGANConfig(size=32, ngf=16))(torch.randn(2, 100, 1, 1)).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="power of 2"):
        DCGANConfig(size=48)
    with pytest.raises(ValueError, match="critic_norm"):
        DCGANConfig(critic_norm="instance")


def test_cyclegan_generator_keeps_the_shape_and_patchgan_sees_70_pixels():
    generators = CycleGenerators(CycleGANConfig(ngf=8, n_blocks=2))
    x = torch.rand(1, 3, 36, 48) * 2 - 1
    assert generators(x).shape == x.shape and generators(x, "b_to_a").shape == x.shape
    assert receptive_field(3) == 70
    # one output of a 3-layer PatchGAN depends on a 70-px window of the input (instance norm, which mixes in the
    # whole image's statistics, taken out to see the convolutions' own reach)
    critic = PatchDiscriminator(ndf=8, n_layers=3).eval()
    for i, layer in enumerate(critic.body):
        if isinstance(layer, nn.InstanceNorm2d):
            critic.body[i] = nn.Identity()
    image = torch.zeros(1, 3, 128, 128, requires_grad=True)
    critic(image)[0, 0, 5, 5].backward()
    rows = image.grad.abs().sum((0, 1, 3)).nonzero().flatten()
    assert int(rows.max() - rows.min()) + 1 <= 70


def test_critic_iterations_follow_the_lessons_schedule():
    assert [critic_iterations(g) for g in (0, 24, 25, 26, 499, 500, 501, 1000)] == [100, 100, 5, 5, 5, 100, 5, 100]


def test_gradient_penalty_on_a_linear_critic_is_known_exactly():
    # critic(x) = w . x has gradient w everywhere: the penalty is (|w| - 1)^2 whatever the points
    w = torch.tensor([3.0, 4.0])

    class Linear(nn.Module):
        def forward(self, x):
            return (x.flatten(1) * w).sum(1)

    real, fake = torch.randn(6, 2, 1, 1), torch.randn(6, 2, 1, 1)
    assert gradient_penalty(Linear(), real, fake).item() == pytest.approx(16.0)


def _wgan_learner(gp_weight=0.0, clip=0.01, critic_steps=lambda g: 3, n=64, bs=8):
    torch.manual_seed(0)
    images = (torch.rand(n, 3, 16, 16) * 255).to(torch.uint8)
    pair = WassersteinPair(DCGANGenerator(SMALL), DCGANCritic(SMALL), gp_weight=gp_weight)
    trainer = GANTrainer(critic_steps=critic_steps, clip=clip)
    learn = Learner(pair, real_loader(images, bs, seed=0), real_loader(images[:16], bs, 0, shuffle=False), gan_loss,
                    lr=1e-3, opt_fn=gan_optimizer(pair, "rmsprop"), callbacks=[trainer])
    return learn, pair, trainer


def test_the_gan_callback_alternates_optimizer_steps_and_clips_after_every_critic_step():
    learn, pair, trainer = _wgan_learner()
    seen = []

    class Watch(Callback):
        order = 10

        def after_step(self, learn):
            critic_weights = [p for p in pair.critic.parameters()]
            seen.append((pair.mode, max(float(p.detach().abs().max()) for p in critic_weights)))

    learn.add_callbacks(Watch())
    generator_before = [p.detach().clone() for p in pair.generator.parameters()]
    learn.fit(2)
    modes = [mode for mode, _ in seen]
    assert len(modes) == 16  # 64 images / 8 per batch, 2 epochs
    assert modes[:8] == [CRITIC] * 3 + [GENERATOR] + [CRITIC] * 3 + [GENERATOR]
    assert trainer.steps == {CRITIC: 12, GENERATOR: 4}
    # one optimizer, two param groups: each parameter was updated exactly as often as its own network's steps
    state = learn.opt.state
    assert {int(state[p]["step"]) for p in pair.generator.parameters()} == {4}
    assert {int(state[p]["step"]) for p in pair.critic.parameters()} == {12}
    assert all(largest <= 0.01 + 1e-7 for mode, largest in seen if mode == CRITIC)
    assert any(not torch.equal(a, b) for a, b in zip(generator_before, pair.generator.parameters()))
    logs = learn.epoch_logs  # what the Recorder puts in the history, for the card and the tab
    assert {"critic_wasserstein", "generator_loss", "critic_steps", "generator_steps"} <= set(logs)
    assert np.isfinite(learn.valid_loss)
    assert all(p.requires_grad for p in pair.parameters())  # both trainable again after the fit


def test_a_critic_step_leaves_the_generator_untouched_and_a_generator_step_the_critic():
    learn, pair, _ = _wgan_learner(clip=0.0, critic_steps=lambda g: 1)

    def snapshot():
        return [p.detach().clone() for p in pair.generator.parameters()], [p.detach().clone() for p in pair.critic.parameters()]

    def changed(before, module):
        return [not torch.equal(a, b) for a, b in zip(before, module.parameters())]

    generator_0, critic_0 = snapshot()
    learn.add_callbacks(_StopAfterBatches(1))
    learn.fit(1)  # step 1: the critic's
    assert not any(changed(generator_0, pair.generator)) and any(changed(critic_0, pair.critic))
    generator_1, critic_1 = snapshot()
    learn.remove_callbacks(learn.get(_StopAfterBatches))
    learn.add_callbacks(_StopAfterBatches(1))
    learn.fit(1)  # step 2: the generator's, its critic run of 1 being done
    assert any(changed(generator_1, pair.generator)) and not any(changed(critic_1, pair.critic))


class _StopAfterBatches(Callback):
    order = 100

    def __init__(self, n):
        self.n, self.count = n, 0

    def after_batch(self, learn):
        if learn.training:
            self.count += 1
            if self.count >= self.n:
                raise CancelFit


def test_wgan_gp_adds_the_penalty_in_training_only():
    learn, pair, _ = _wgan_learner(gp_weight=10.0, clip=0.0)
    real = torch.rand(4, 3, 16, 16) * 2 - 1
    pair.mode = CRITIC
    out = pair(real)
    assert "gradient_penalty" in out and out["loss"].item() == pytest.approx(
        -out["wasserstein"].item() + 10 * out["gradient_penalty"].item(), rel=1e-4, abs=1e-5)
    with torch.no_grad():
        assert "gradient_penalty" not in pair(real)


def test_image_pool_returns_new_images_until_full_then_mixes_in_old_ones():
    pool = ImagePool(size=4, seed=0)
    first = torch.arange(4.0).view(4, 1)
    assert torch.equal(pool.query(first), first)
    later = torch.full((200, 1), 100.0)
    out = pool.query(later)
    old = int((out < 100).sum())
    assert 0 < old <= 4  # only the 4 stored images can come back, each at most once (it is replaced when returned)
    assert torch.equal(ImagePool(size=0).query(later), later)


def test_cycle_and_identity_losses():
    torch.manual_seed(0)
    generators = CycleGenerators(CycleGANConfig(ngf=4, n_blocks=1))
    pair = CyclePair(generators, PatchDiscriminator(8, 2), PatchDiscriminator(8, 2), cycle_weight=10, identity_weight=0.5)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    pair.mode = GENERATOR
    out = pair(a, b)
    g = generators
    cycle = (g.b_to_a(g.a_to_b(a)) - a).abs().mean() + (g.a_to_b(g.b_to_a(b)) - b).abs().mean()
    identity = (g.a_to_b(b) - b).abs().mean() + (g.b_to_a(a) - a).abs().mean()
    assert out["cycle"].item() == pytest.approx(cycle.item(), rel=1e-5)
    assert out["identity"].item() == pytest.approx(identity.item(), rel=1e-5)
    assert out["loss"].item() == pytest.approx(out["adversarial"].item() + 10 * cycle.item() + 5 * identity.item(), rel=1e-5)
    # identity generators: zero cycle and identity loss
    pair.generators.a_to_b = pair.generators.b_to_a = nn.Identity()
    out = pair(a, b)
    assert out["cycle"].item() == 0 and out["identity"].item() == 0
    pair.mode = CRITIC
    assert set(pair(a, b)) == {"loss", "critic_a", "critic_b"}


def test_cyclegan_trains_both_directions_in_turns_on_the_learner(tmp_path):
    paths = {}
    for side, colour in (("a", (200, 120, 40)), ("b", (20, 40, 90))):
        paths[side] = []
        for i in range(3):
            path = tmp_path / f"{side}{i}.png"
            noise = np.random.default_rng(i).integers(-20, 20, (40, 48, 3))
            Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(path)
            paths[side].append(path)
    data = UnpairedCrops(paths["a"], paths["b"], size=32, seed=0)
    (a, b), target = data[3]
    assert a.shape == b.shape == (3, 32, 32) and torch.equal(target, a) and a.mean() > b.mean()
    from torch.utils.data import DataLoader

    from dl_core.photos import EpochSampler

    torch.manual_seed(0)
    generators = CycleGenerators(CycleGANConfig(ngf=4, n_blocks=1))
    pair = CyclePair(generators, PatchDiscriminator(8, 2), PatchDiscriminator(8, 2), pool_size=4)
    trainer = GANTrainer(critic_steps=lambda g: 1)
    loader = DataLoader(data, batch_size=2, sampler=EpochSampler(16))
    learn = Learner(pair, loader, None, gan_loss, lr=2e-3, opt_fn=gan_optimizer(pair, "adam"), callbacks=[trainer])
    learn.fit(3)
    assert trainer.steps == {CRITIC: 12, GENERATOR: 12}
    assert learn.epoch_logs["generator_cycle"] < 2.0 and np.isfinite(learn.epoch_logs["critic_loss"])
    with pytest.raises(ValueError, match="both domains"):
        UnpairedCrops(paths["a"], [], size=32)


def test_frechet_distance_is_zero_for_a_set_against_itself_and_grows_with_noise():
    rng = np.random.default_rng(0)
    features = torch.from_numpy(rng.normal(size=(500, 8)))
    stats = gaussian_stats(features)
    assert frechet_distance(stats, stats) == pytest.approx(0, abs=1e-9)
    # two Gaussians with equal covariance: FD is the squared distance of the means
    shifted = gaussian_stats(features + 2.0)
    assert frechet_distance(stats, shifted) == pytest.approx(4 * 8, rel=1e-6)
    # 1-d case by hand: (mu1-mu2)^2 + (s1 - s2)^2
    one = (torch.tensor([1.0], dtype=torch.float64), torch.tensor([[4.0]], dtype=torch.float64))
    two = (torch.tensor([3.0], dtype=torch.float64), torch.tensor([[9.0]], dtype=torch.float64))
    assert frechet_distance(one, two) == pytest.approx(4 + 1)


def test_fd_lite0_grows_with_added_noise():
    extractor = PooledFeatures()
    rng = np.random.default_rng(0)
    smooth = torch.from_numpy(rng.integers(0, 255, (60, 3, 8, 8), dtype=np.uint8)).float()
    images = torch.nn.functional.interpolate(smooth, size=64, mode="bilinear").to(torch.uint8)
    base = gaussian_stats(features_of(extractor, images[:30]))
    same = frechet_distance(base, gaussian_stats(features_of(extractor, images[:30])))
    distances = []
    for sigma in (10, 40, 90):
        noisy = (images[30:].float() + torch.randn(30, 3, 64, 64) * sigma).clamp(0, 255).to(torch.uint8)
        distances.append(frechet_distance(base, gaussian_stats(features_of(extractor, noisy))))
    assert same == pytest.approx(0, abs=1e-6)
    assert distances == sorted(distances) and distances[0] > 0


def test_read_images_squares_a_zip_or_folder_and_skips_broken_files(tmp_path):
    folder = tmp_path / "imgs"
    (folder / "deep").mkdir(parents=True)
    Image.new("RGB", (100, 50), (255, 0, 0)).save(folder / "a.jpg")
    Image.new("RGB", (30, 60), (0, 255, 0)).save(folder / "deep" / "b.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    images = read_images(folder, size=16)
    assert images.shape == (2, 3, 16, 16) and images.dtype == torch.uint8
    archive = tmp_path / "imgs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in folder.rglob("*.*"):
            z.write(path, f"flowers64/{path.relative_to(folder)}")
    assert torch.equal(read_images(archive, size=16), images)
    with pytest.raises(FileNotFoundError):
        read_images(tmp_path / "missing.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no readable images"):
        read_images(tmp_path / "empty")


def test_heldout_split_is_seeded_disjoint_and_ten_percent():
    train, heldout = heldout_split(8189)
    assert len(heldout) == 819 and len(train) == 7370 and not set(train) & set(heldout)
    assert np.array_equal(heldout, heldout_split(8189)[1]) and not np.array_equal(heldout, heldout_split(8189, seed=1)[1])
    x = torch.tensor([0, 128, 255], dtype=torch.uint8)
    assert torch.equal(to_uint8(to_unit(x)), x)


def test_domains_from_camvid_names_and_the_cyclegan_folder_layout(tmp_path):
    camvid = tmp_path / "camvid"
    for split, names in (("train", ["0001TP_006690.png", "0001TP_006720.png", "0001TP_006750.png", "0006R0_f1.png",
                                    "0016E5_1.png"]), ("val", ["0016E5_2.png"])):
        (camvid / split).mkdir(parents=True)
        for name in names:
            Image.new("RGB", (8, 8)).save(camvid / split / name)
    domains = camvid_domains(camvid, heldout_dusk=1)
    assert [p.name for p in domains["train_b"]] == ["0001TP_006690.png", "0001TP_006720.png"]
    assert [p.name for p in domains["test_b"]] == ["0001TP_006750.png"]
    assert [p.name for p in domains["test_a"]] == ["0006R0_f1.png"]
    assert [p.name for p in domains["train_a"]] == ["0016E5_1.png", "0016E5_2.png"]
    h2z = tmp_path / "horse2zebra"
    for side in ("trainA", "trainB", "testA"):
        (h2z / side).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(h2z / side / "x.jpg")
    assert set(folder_domains(h2z)) == {"train_a", "train_b", "test_a"}
    with pytest.raises(FileNotFoundError, match="trainA"):
        folder_domains(tmp_path / "camvid")


def _coloured_photos(folder, n, colour, size=(64, 48), seed=0):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        noise = rng.integers(-30, 30, (size[1], size[0], 3))
        Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")


def test_wgan_train_evaluate_and_card_from_the_command_line(tmp_path, capsys):
    """The script end to end on generated images: train (clipping and GP), the JSON last line of `evaluate` equal to
    the scores the training run recorded, the fixed-noise gallery, `card`."""
    import json

    from train import wgan

    _coloured_photos(tmp_path / "imgs", 40, (200, 60, 90))
    common = ["--data", str(tmp_path / "imgs"), "--size", "16", "--ngf", "8", "--ndf", "8", "--epochs", "2", "--bs", "8",
              "--n-eval", "20", "--checkpoint", "none", "--critic-steps", "2"]
    wgan.main(["train", "--out", str(tmp_path / "clip"), *common])
    wgan.main(["train", "--gp", "10", "--out", str(tmp_path / "gp"), *common])
    metrics = json.loads((tmp_path / "clip" / "metrics.json").read_text())
    assert metrics["gallery_epochs"] == [0, 1, 2] and (tmp_path / "clip" / "progress.png").is_file()
    assert len(metrics["history"]) == 2 and metrics["steps"]["generator"] == 2  # 4 batches an epoch, 2 of 3 critic
    gp_config = json.loads((tmp_path / "gp" / "config.json").read_text())
    assert gp_config["critic_norm"] == "layer"
    capsys.readouterr()
    wgan.main(["evaluate", "--weights", str(tmp_path / "clip"), "--data", str(tmp_path / "imgs"), "--n", "20"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == metrics["scores"]
    wgan.main(["card", "--weights", str(tmp_path / "clip")])
    assert "FD-Lite0" in (tmp_path / "clip" / "README.md").read_text()
    with pytest.raises(SystemExit, match="neither a zip"):
        wgan.main(["train", "--data", str(tmp_path / "nowhere"), "--out", ""])
    with pytest.raises(SystemExit, match="cannot|no config|has no"):
        wgan.main(["evaluate", "--weights", str(tmp_path / "nowhere"), "--data", str(tmp_path / "imgs")])


def test_a_resumed_wgan_run_keeps_the_gallery_the_step_counts_and_the_earlier_run_in_its_card(tmp_path):
    import json

    from train import wgan

    _coloured_photos(tmp_path / "imgs", 40, (200, 60, 90))
    common = ["--data", str(tmp_path / "imgs"), "--size", "16", "--ngf", "8", "--ndf", "8", "--bs", "8", "--gp", "10",
              "--n-eval", "20", "--checkpoint", str(tmp_path / "run.safetensors"), "--out", str(tmp_path / "gp")]
    wgan.main(["train", "--epochs", "1", *common])
    first = json.loads((tmp_path / "gp" / "metrics.json").read_text())
    wgan.main(["train", "--epochs", "2", "--resume", *common])
    second = json.loads((tmp_path / "gp" / "metrics.json").read_text())
    assert second["gallery_epochs"] == [0, 1, 2] and len(second["history"]) == 2
    assert second["steps"]["critic"] == 2 * first["steps"]["critic"] > 0  # 5 critic steps per generator step
    assert [run["command"] for run in second["lineage"]] == [first["facts"]["command"]]
    assert "Trained in 2 runs" in (tmp_path / "gp" / "README.md").read_text()


def test_cyclegan_train_evaluate_and_card_from_the_command_line(tmp_path, capsys):
    import json

    from train import cyclegan

    for split, n in (("train", 4), ("test", 2)):
        _coloured_photos(tmp_path / "data" / f"{split}A", n, (220, 200, 120), seed=1)
        _coloured_photos(tmp_path / "data" / f"{split}B", n, (40, 40, 90), seed=2)
    # the held-out scores at the end of training use testA/testB
    cyclegan.main(["train", "--data", str(tmp_path / "data"), "--size", "32", "--ngf", "4", "--blocks", "1", "--ndf", "8",
                   "--epochs", "1", "--batches-per-epoch", "4", "--bs", "2", "--checkpoint", "none",
                   "--out", str(tmp_path / "cg")])
    metrics = json.loads((tmp_path / "cg" / "metrics.json").read_text())
    assert metrics["steps"] == {"critic": 2, "generator": 2}
    capsys.readouterr()
    cyclegan.main(["evaluate", "--weights", str(tmp_path / "cg"), "--source", str(tmp_path / "data" / "testA"),
                   "--target", str(tmp_path / "data" / "testB"), "--reference", str(tmp_path / "data" / "trainB")])
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(scores) == {"fd_translated", "fd_untranslated", "cycle_l1", "n", "fd_floor"}
    assert scores == metrics["scores"]["a_to_b"]
    cyclegan.main(["card", "--weights", str(tmp_path / "cg")])
    assert "A translated to B" in (tmp_path / "cg" / "README.md").read_text()
    cyclegan.main(["evaluate", "--weights", str(tmp_path / "cg"), "--source", str(tmp_path / "data" / "testB"),
                   "--target", str(tmp_path / "data" / "testA"), "--direction", "b_to_a", "--write"])
    recorded = json.loads((tmp_path / "cg" / "metrics.json").read_text())["scores"]
    assert set(recorded) == {"a_to_b", "b_to_a"} and "fd_floor" not in recorded["b_to_a"]
    with pytest.raises(SystemExit, match="trainA"):
        cyclegan.main(["train", "--data", str(tmp_path), "--out", ""])


def test_the_download_paths_fetch_and_read_the_lessons_layouts(tmp_path, monkeypatch):
    """horse2zebra (a zip of trainA/ trainB/ testA/ testB/, unpacked) and the LSUN sample (nested folders of JPEGs,
    read from the zip) through the real download code, with the network replaced by local files of the same layout."""
    from dl_core.gan import data as gan_data

    h2z, lsun = tmp_path / "h2z.zip", tmp_path / "lsun.zip"
    with zipfile.ZipFile(h2z, "w") as z:
        for side in ("trainA", "trainB", "testA", "testB"):
            image = tmp_path / f"{side}.jpg"
            Image.new("RGB", (32, 32), (10, 200, 30)).save(image)
            z.write(image, f"horse2zebra/{side}/n0001.jpg")
    with zipfile.ZipFile(lsun, "w") as z:
        for i in range(3):
            image = tmp_path / f"bed{i}.jpg"
            Image.new("RGB", (80, 60), (120, 90, 10 * i)).save(image)
            z.write(image, f"sample/data0/lsun/bedroom/0/0/{i}/{i:040x}.jpg")
    sources = {gan_data.HORSE2ZEBRA_URL: h2z, gan_data.LSUN_SAMPLE_URL: lsun}

    def fake_download(url, target, timeout=60):
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(sources[url].read_bytes())
        return target

    monkeypatch.setattr(gan_data, "download_file", fake_download)
    folder = gan_data.download_horse2zebra(tmp_path / "data")
    assert set(gan_data.folder_domains(folder)) == {"train_a", "train_b", "test_a", "test_b"}
    assert not (tmp_path / "data" / "horse2zebra.zip").exists()  # unpacked, then removed
    assert read_images(gan_data.download_lsun_sample(tmp_path / "data"), size=16).shape == (3, 3, 16, 16)
