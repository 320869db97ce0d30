"""The style-transfer tab's handlers with good and bad input, without a server."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT
from demos import style
from demos.common import LazyModel
from dl_core.photos import to_image
from dl_core.hub import save_model
from dl_core.style.model import StyleNet, StyleNetConfig
from dl_core.perceptual import DEFAULT_FEATURES, loss_settings, style_grams

STARRY = "Starry Night (Van Gogh)"


def _use_folder(monkeypatch, name: str, folder) -> None:
    old = style.MODELS[name]
    monkeypatch.setenv(f"HUB_REPO_{old.name.upper().replace('-', '_')}", str(folder))
    monkeypatch.setitem(style.MODELS, name, LazyModel(old.name, old.loader, old.train_command, old.check))


@pytest.fixture
def tiny_style(monkeypatch, tmp_path):
    """An untrained (but complete) style network with real Gram matrices, as the Starry Night model."""
    torch.manual_seed(0)
    painting = torch.rand(1, 3, 64, 64)
    settings = loss_settings(**DEFAULT_FEATURES)
    grams = style_grams(style.extractor_for(settings), painting, style.LAYERS)
    net = StyleNet(StyleNetConfig(channels=(4, 8, 16), residual_blocks=1, style_name="starry_night", loss=settings,
                                  gram_channels={k: int(v.shape[-1]) for k, v in grams.items()}))
    net.set_style_grams(grams)
    save_model(net, tmp_path / "style-starry_night", card="# tiny")
    _use_folder(monkeypatch, "starry_night", tmp_path / "style-starry_night")


@pytest.fixture
def bundled(monkeypatch):
    for name in style.STYLES.values():
        if not (REPO_ROOT / "weights" / f"style-{name}" / "model.safetensors").exists():
            pytest.fail(f"the bundled weights weights/style-{name} are missing: run train/style_all.sh (see the README)")
        monkeypatch.delenv(f"HUB_REPO_STYLE_{name.upper()}", raising=False)
        old = style.MODELS[name]
        monkeypatch.setitem(style.MODELS, name, LazyModel(old.name, old.loader, old.train_command, old.check))


def _file(tmp_path, image: Image.Image, name: str, **save) -> str:
    path = tmp_path / name
    image.save(path, **save)
    return str(path)


def _photo(tmp_path, size=(120, 90)) -> str:
    rng = np.random.default_rng(0)
    return _file(tmp_path, Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)), "photo.png")


def test_every_bundled_style_stylises_a_photo(bundled, tmp_path):
    photo = _photo(tmp_path, (200, 150))
    for display in style.STYLES:
        view = style.stylise_photo(photo, display, 256)
        assert view.image is not None and view.image.size == (200, 150), view.notes
        assert "one forward pass" in view.notes
        array = np.asarray(view.image, dtype=np.float32)
        assert array.std() > 5  # a picture, not a flat colour


def test_instant_output_has_the_photo_size_and_a_timing(tiny_style, tmp_path):
    view = style.stylise_photo(_photo(tmp_path), STARRY, 512)
    assert view.image.size == (120, 90) and "ms" in view.notes
    assert "held-out" not in view.notes  # this folder was never evaluated: no comparison with Live


@pytest.mark.parametrize("heldout, expected", [
    ({"style_ratio": 4.441, "gatys_steps": 300, "n": 19, "gatys_steps_matched": 58}, "4.4× that of 300 *Live* steps: the one pass is worth ≈58 steps"),
    ({"style_ratio": 0.9, "gatys_steps": 300, "n": 19, "gatys_steps_matched": None}, "lower than any of the 300 steps"),
    ({"style_ratio": 6.39, "gatys_steps": 300, "n": 19}, "6.4× that of 300 *Live* steps."),
])
def test_instant_notes_compare_the_network_with_live_from_its_metrics(tiny_style, tmp_path, heldout, expected):
    import json

    (tmp_path / "style-starry_night" / "metrics.json").write_text(json.dumps({"heldout": heldout}))
    view = style.stylise_photo(_photo(tmp_path), STARRY, 256)
    assert "On 19 held-out photos" in view.notes and expected in view.notes


def test_a_broken_metrics_file_only_drops_the_comparison(tiny_style, tmp_path):
    (tmp_path / "style-starry_night" / "metrics.json").write_text("{not json")
    view = style.stylise_photo(_photo(tmp_path), STARRY, 256)
    assert view.image is not None and "held-out" not in view.notes


def test_the_panel_reads_the_bundled_networks_numbers_from_their_metrics(monkeypatch, tmp_path):
    import json

    panel = style.explanation()
    assert style.BUNDLED_NETWORKS_MARK not in panel and "$$" in panel
    heldout = [json.loads((REPO_ROOT / "weights" / f"style-{name}" / "metrics.json").read_text())["heldout"]
               for name in style.STYLES.values()]
    ratios = sorted(h["style_ratio"] for h in heldout)
    assert f"style loss is still {ratios[0]:.1f}–{ratios[-1]:.1f}× that of 300 pixel steps" in panel
    monkeypatch.setattr(style, "WEIGHTS_DIR", tmp_path / "none")  # no weight folder evaluated: the sentence is left out
    assert style.bundled_networks_summary() == "" and "bundled networks had" not in style.explanation()
    monkeypatch.setattr(style, "WEIGHTS_DIR", tmp_path)  # (metrics.json is read once per folder: a new one)
    (tmp_path / "style-the_scream").mkdir()
    (tmp_path / "style-the_scream" / "metrics.json").write_text(json.dumps({
        "train_seconds": 600, "hardware": "CPU, 2 threads", "lineage": [{"seconds": 300}],
        "heldout": {"style_ratio": 2.04, "gatys_steps": 200, "n": 7, "gatys_steps_matched": None}}))
    summary = style.bundled_networks_summary()
    assert "had 15 CPU-minutes of training" in summary and "on 7 held-out photos" in summary
    assert "still 2.0× that of 200 pixel steps" in summary and "Gatys keeps the edge" in summary


def test_sample_photos_and_paintings_come_from_the_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path))
    assert style.sample_photos() == [] and style.painting_file("woman_with_hat_matisse") is None
    (tmp_path / "superres" / "CSet5").mkdir(parents=True)
    (tmp_path / "style").mkdir()
    for path in (tmp_path / "superres" / "CSet5" / "bird.png", tmp_path / "style" / "woman-with-hat-matisse.jpg"):
        Image.new("RGB", (8, 8)).save(path)
    assert style.sample_photos() == [str(tmp_path / "superres" / "CSet5" / "bird.png")]
    assert style.painting_file("woman_with_hat_matisse") == tmp_path / "style" / "woman-with-hat-matisse.jpg"


def test_huge_photo_is_downscaled_with_a_note(tiny_style, tmp_path):
    big = _file(tmp_path, Image.new("RGB", (3000, 2000), (90, 120, 200)), "big.jpg")
    view = style.stylise_photo(big, STARRY, 512)
    assert max(view.image.size) == 512 and "512 px" in view.notes


@pytest.mark.parametrize("content, message", [
    (b"", "empty"), (b"%PDF-1.4 not an image", "not an image"), (b"\x89PNG\r\n\x1a\n broken", "not an image"),
])
def test_bad_files_give_a_message(tiny_style, tmp_path, content, message):
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    view = style.stylise_photo(str(path), STARRY)
    assert message in view.notes and view.image is None
    live = next(style.live_style_transfer(str(path), STARRY, None, style.LiveSettings(steps=2, size=64)))
    assert message in live.status and live.image is None


def test_truncated_png_gives_a_message(tiny_style, tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (1, 2, 3)).save(buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    view = style.stylise_photo(str(path), STARRY)
    assert view.image is None and view.notes


def test_no_photo_tiny_photo_and_unknown_style(tiny_style, tmp_path):
    assert "No image" in style.stylise_photo(None, STARRY).notes
    assert "at least" in style.stylise_photo(_file(tmp_path, Image.new("RGB", (5, 5)), "t.png"), STARRY).notes
    assert "Pick one" in style.stylise_photo(_photo(tmp_path), "Mona Lisa").notes


@pytest.mark.parametrize("mode, fmt", [("L", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("P", "GIF")])
def test_unusual_modes_are_converted(tiny_style, tmp_path, mode, fmt):
    base = Image.new("RGB", (100, 80), (120, 80, 40))
    image = Image.fromarray(np.full((80, 100), 40000, dtype=np.uint16)) if mode == "I;16" else base.convert(mode)
    view = style.stylise_photo(_file(tmp_path, image, f"x.{fmt.lower()}"), STARRY, 256)
    assert view.image is not None and view.image.mode == "RGB" and view.image.size == (100, 80)


def test_animated_gif_uses_its_first_frame(tiny_style, tmp_path):
    frames = [Image.new("RGB", (64, 48), c) for c in ((255, 0, 0), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    view = style.stylise_photo(str(path), STARRY, 256)
    assert view.image is not None and "first" in view.notes


def test_missing_weights_explain_how_to_train(monkeypatch, tmp_path):
    (tmp_path / "empty").mkdir()  # a weight folder without weights (a nonexistent one falls back to the bundled)
    _use_folder(monkeypatch, "the_scream", tmp_path / "empty")
    view = style.stylise_photo(_photo(tmp_path), "The Scream (Munch)")
    assert view.image is None and "train/style.py train" in view.notes


def test_live_streams_images_losses_and_grams(tiny_style, tmp_path):
    settings = style.LiveSettings(steps=4, size=64, report_every=2, layers=("stem", "block2"))
    views = list(style.live_style_transfer(_photo(tmp_path), STARRY, None, settings))
    assert len(views) == 3  # the start, step 2, step 4
    assert all(v.image is not None for v in views) and max(views[-1].image.size) == style.LIVE_SIZES[0]  # 64 is raised to the minimum
    frame = views[-1].losses
    assert sorted(frame["step"].unique()) == [0, 2, 4] and set(frame["term"]) == {"content × weight", "style × weight", "total"}
    assert views[-1].grams is not None and len(views[-1].grams.axes) == 4  # 2 rows x 2 layers
    assert "done" in views[-1].status


def test_live_can_start_from_the_networks_output_and_refine_it(tiny_style, tmp_path):
    settings = style.LiveSettings(steps=2, size=64, report_every=1, start="network")
    photo = _photo(tmp_path)
    views = list(style.live_style_transfer(photo, STARRY, None, settings))
    with torch.no_grad():  # the same network on the same photo, at the live tab's smallest size (64 is raised to it)
        network_output = style.MODELS["starry_night"].get()(style._load_photo(photo, style.LIVE_SIZES[0], []))
    assert np.array_equal(np.asarray(views[0].image), np.asarray(to_image(network_output)))  # step 0 is its one pass
    assert "from the trained network's output" in views[-1].status and "done" in views[-1].status
    frame = views[-1].losses
    total = frame[frame["term"] == "total"].set_index("step")["loss"]
    from_photo = list(style.live_style_transfer(photo, STARRY, None, style.LiveSettings(steps=2, size=64, report_every=1)))
    assert total[0] != from_photo[-1].losses.query("term == 'total'").set_index("step")["loss"][0]  # a different start
    painting = _file(tmp_path, Image.new("RGB", (80, 60), (200, 180, 20)), "painting.png")
    upload = next(style.live_style_transfer(photo, style.YOUR_PAINTING, painting, settings))
    assert upload.image is None and "trained styles" in upload.status


def test_live_with_an_uploaded_painting_and_without_one(tmp_path):
    painting = _file(tmp_path, Image.new("RGB", (80, 60), (200, 180, 20)), "painting.png")
    settings = style.LiveSettings(steps=2, size=48, report_every=1)
    views = list(style.live_style_transfer(_photo(tmp_path), style.YOUR_PAINTING, painting, settings))
    assert views[-1].image is not None
    missing = next(style.live_style_transfer(_photo(tmp_path), style.YOUR_PAINTING, None, settings))
    assert missing.image is None and "Upload a painting" in missing.status


@pytest.fixture
def random_vgg(monkeypatch):
    """VGG16 with random weights in place of torchvision's ImageNet download (no internet here)."""
    from dl_core.perceptual import FeatureExtractor

    loaded = {}

    def extractor(backbone="efficientnet_lite0", smoothing=None, temperature=1.0):
        key = (backbone, smoothing, temperature)
        if key not in loaded:
            loaded[key] = FeatureExtractor(backbone, pretrained=backbone != "vgg16", smoothing=smoothing, temperature=temperature)
        return loaded[key]

    monkeypatch.setattr(style, "feature_extractor", extractor)


VGG = "VGG16 (the lessons'; downloads 528 MB on first use)"


def test_live_with_vgg16_streams_its_own_layers(random_vgg, tmp_path):
    painting = _file(tmp_path, Image.new("RGB", (80, 60), (200, 180, 20)), "painting.png")
    settings = style.LiveSettings(steps=2, size=48, report_every=1, backbone="vgg16", layers=("relu1_2", "relu2_2", "block4"))
    loading, *views = list(style.live_style_transfer(_photo(tmp_path), style.YOUR_PAINTING, painting, settings))
    assert "Loading VGG16" in loading.status
    assert len(views) == 3 and views[-1].image is not None and "done" in views[-1].status
    titles = [ax.get_title() for ax in views[-1].grams.axes]
    assert any("relu2_2 (128²)" in t for t in titles) and not any("block4" in t for t in titles)  # EfficientNet's name ignored
    assert style.layer_choices(VGG) == ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
    assert style.default_layers(next(iter(style.BACKBONES))) == style.LiveSettings().layers


def test_vgg16_with_a_trained_style_needs_the_painting_file(random_vgg, tmp_path, monkeypatch):
    settings = style.LiveSettings(steps=1, size=48, backbone="vgg16", layers=("relu1_2",))
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path / "absent"))
    last = list(style.live_style_transfer(_photo(tmp_path), STARRY, None, settings))[-1]
    assert last.image is None and last.status == style.VGG_NEEDS_PAINTING
    (tmp_path / "shared" / "style").mkdir(parents=True)
    Image.new("RGB", (64, 48), (30, 60, 200)).save(tmp_path / "shared" / "style" / "starry_night.jpg")
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path / "shared"))
    last = list(style.live_style_transfer(_photo(tmp_path), STARRY, None, settings))[-1]
    assert last.image is not None and "done" in last.status


def test_vgg16_offline_gives_a_message_and_efficientnet_still_works(tiny_style, tmp_path, monkeypatch):
    from urllib.error import URLError

    import dl_core.perceptual

    def offline(**_):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(dl_core.perceptual, "load_vgg16_imagenet_state", offline)
    style.feature_extractor.cache_clear()
    painting = _file(tmp_path, Image.new("RGB", (80, 60), (200, 180, 20)), "painting.png")
    vgg = style.LiveSettings(steps=1, size=48, backbone="vgg16")
    last = list(style.live_style_transfer(_photo(tmp_path), style.YOUR_PAINTING, painting, vgg))[-1]
    assert last.image is None and "internet" in last.status and "EfficientNet-Lite0 works offline" in last.status
    unknown = list(style.live_style_transfer(_photo(tmp_path), STARRY, None, style.LiveSettings(steps=1, backbone="alexnet")))[-1]
    assert unknown.image is None and "Unknown feature network" in unknown.status
    fine = list(style.live_style_transfer(_photo(tmp_path), STARRY, None, style.LiveSettings(steps=1, size=48)))[-1]
    assert fine.image is not None


def test_live_caps_size_and_steps(tiny_style, tmp_path):
    big = _file(tmp_path, Image.new("RGB", (2000, 1000), (20, 40, 60)), "big.png")
    settings = style.LiveSettings(steps=10**6, size=10**6, report_every=10**6)
    first = next(style.live_style_transfer(big, STARRY, None, settings))
    assert max(first.image.size) == style.LIVE_SIZES[1] and f"/{style.MAX_STEPS}" in first.status


def test_reconstruct_streams_one_image_per_layer(tmp_path):
    updates = list(style.reconstruct_from_layers(_photo(tmp_path), size=40, steps=2))
    gallery, _ = updates[-1]
    assert len(gallery) == 1 + len(style.RECONSTRUCT_LAYERS)
    assert [caption.split()[1] for _, caption in gallery[1:]] == list(style.RECONSTRUCT_LAYERS)
    bad = list(style.reconstruct_from_layers(None))
    assert bad == [([], "No image: upload a photo or pick a sample.")]


def test_two_live_runs_do_not_block_the_instant_network(tiny_style, tmp_path, monkeypatch):
    """Gatys runs queue on their own ("gatys", one at a time); the instant network keeps answering."""
    from gradio_client import Client, handle_file

    import app as app_module

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    photo = handle_file(_photo(tmp_path, (256, 192)))
    demo = app_module.build_app()
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, server_port=None)
    try:
        client = Client(url, verbose=False)
        assert {"/stylise", "/style_live", "/style_reconstruct"} <= set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
        live_args = (photo, STARRY, None, 1.0, 1.0, ["stem", "block2", "block4"], 256, 300, "content", next(iter(style.BACKBONES)))
        first = client.submit(*live_args, api_name="/style_live")
        second = client.submit(*live_args, api_name="/style_live")
        image, painting, notes = client.predict(photo, STARRY, 256, api_name="/stylise")
        assert image and "one forward pass" in notes
        assert not (first.done() and second.done()), "the instant call waited for both live runs"
        first.cancel(), second.cancel()
        client.close()
    finally:
        demo.close()
