"""The style-transfer tab's handlers with good and bad input, without a server."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT
from demos import style
from dl_core.style import infer
from demos.common import LazyModel
from dl_core.photos import to_image
from dl_core.hub import save_model
from dl_core.style.model import StyleNet, StyleNetConfig
from dl_core.perceptual import DEFAULT_FEATURES, loss_settings, style_grams

STARRY = "Starry Night (Van Gogh)"


def _use_folder(monkeypatch, name: str, folder) -> None:
    old = style.MODELS[name]
    monkeypatch.setenv(f"HUB_REPO_{old.name.upper().replace('-', '_')}", str(folder))
    monkeypatch.setitem(style.MODELS, name, LazyModel(old.name, old.loader, old.train_command, old.check, old.prepare))


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
        monkeypatch.setitem(style.MODELS, name, LazyModel(old.name, old.loader, old.train_command, old.check, old.prepare))


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


def test_the_first_instant_request_says_it_loads_and_compiles_the_network(tiny_style, tmp_path):
    said = []
    progress = lambda fraction, desc=None: said.append(desc)  # noqa: E731 - gr.Progress's call, recorded
    for _ in range(2):
        assert style.stylise_photo(_photo(tmp_path), STARRY, 256, progress).image is not None
    assert len(said) == 1 and "compiling it for this CPU" in said[0]  # the second request finds it loaded


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


def test_instant_notes_add_the_city_photos_and_the_replaced_network(tiny_style, tmp_path):
    import json

    heldout = {"style_ratio": 3.1, "gatys_steps": 300, "n": 19, "gatys_steps_matched": 80}
    city = {"style_ratio": 3.44, "gatys_steps": 300, "n": 9, "gatys_steps_matched": 52}
    replaces = {"commit": "abc1234", "heldout": {**heldout, "style_ratio": 4.44, "gatys_steps_matched": 58},
                "city": {**city, "style_ratio": 5.42, "gatys_steps_matched": 18}}
    (tmp_path / "style-starry_night" / "metrics.json").write_text(json.dumps({"heldout": heldout, "city": city,
                                                                                "replaces": replaces}))
    notes = style.stylise_photo(_photo(tmp_path), STARRY, 256).notes
    assert "On 9 photos of city streets and buildings, a kind none of its training photos are: 3.4×, ≈52 steps." in notes
    assert "(The network it replaced: held-out 4.4×, ≈58 steps; city 5.4×, ≈18 steps.)" in notes


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


# --- what a new user found on a fresh clone -------------------------------------------------------------
def _tab():
    """The tab alone in a Blocks, and its components by elem_id."""
    import gradio as gr

    with gr.Blocks() as app:
        style.build()
    by_id = {block.elem_id: block for block in app.blocks.values() if getattr(block, "elem_id", None)}
    return app, by_id


def _dependencies(app, component, event: str) -> list[dict]:
    return [d for d in app.config["dependencies"] if [component._id, event] in [list(t) for t in d["targets"]]]


@pytest.mark.parametrize("name", list(style.STYLES.values()))
def test_every_bundled_style_folder_carries_its_painting_and_its_card_shows_it(name):
    from dl_core.style.card import PAINTINGS

    folder = REPO_ROOT / "weights" / f"style-{name}"
    painting = folder / "painting.jpg"
    assert painting.is_file(), f"{painting} is missing: run python train/style.py card --weights {folder.relative_to(REPO_ROOT)}"
    assert painting.stat().st_size <= 300_000
    with Image.open(painting) as image:
        assert image.format == "JPEG" and image.mode == "RGB" and max(image.size) == 768
    title, painter, year = PAINTINGS[name]
    card = (folder / "README.md").read_text()
    assert f"![{title}](painting.jpg)" in card and f"*{title}*, {painter}, {year}: public domain." in card


def test_the_painting_shows_without_the_data_set(bundled, monkeypatch, tmp_path):
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path / "nonexistent"))
    for display, name in style.STYLES.items():
        view = style.stylise_photo(_photo(tmp_path), display, 256)
        assert view.painting is not None and max(view.painting.size) == 400, display
        assert style.bundled_painting(name) is not None


def test_the_painting_comes_from_the_folder_the_weights_come_from(tiny_style, monkeypatch, tmp_path):
    """A Hub repo (here a folder named by HUB_REPO_STYLE_STARRY_NIGHT) that holds painting.jpg shows that painting."""
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path / "nonexistent"))
    assert style.stylise_photo(_photo(tmp_path), STARRY, 256).painting is None  # this folder has none, nor the data root
    Image.new("RGB", (300, 200), (250, 10, 10)).save(tmp_path / "style-starry_night" / "painting.jpg")
    painting = style.stylise_photo(_photo(tmp_path), STARRY, 256).painting
    assert painting.size == (300, 200) and painting.getpixel((5, 5))[0] > 200


def test_examples_are_there_without_the_data_set(bundled, monkeypatch, tmp_path):
    from demos.common import bundled_photos

    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path / "nonexistent"))
    assert style.example_photos() == bundled_photos() and len(bundled_photos()) >= 3
    app, _ = _tab()
    datasets = [b for b in app.blocks.values() if type(b).__name__ == "Dataset"]
    assert [Path(row[0]["path"]).name for row in datasets[0].samples] == [Path(p).name for p in bundled_photos()]
    styles = list(style.STYLES) * len(bundled_photos())
    for photo, display in zip(style.example_photos(), styles):  # every example works, and so does every bundled style
        view = style.stylise_photo(photo, display, 256)
        assert view.image is not None and max(view.image.size) == 256, (photo, display, view.notes)


def test_stop_acts_after_the_current_step_and_says_so(tiny_style, tmp_path):
    stop = style.StopSignal()
    stop.press()  # a press before the run started is not for this run
    run = style.live_style_transfer(_photo(tmp_path), STARRY, None,
                                    style.LiveSettings(steps=300, size=96, report_every=100, layers=("stem",)), stop)
    first = next(run)
    assert first.status.startswith("step 0/300")
    stop.press()
    rest = list(run)
    assert len(rest) == 1 and rest[-1].status.startswith("stopped at step 1/300") and "Stop pressed" in rest[-1].status
    assert rest[-1].image is not None and rest[-1].grams is not None  # the stopped image and its Gram matrices
    assert rest[-1].losses["step"].max() == 1


def test_stop_is_wired_to_the_sessions_run_without_waiting_in_its_queue():
    app, by_id = _tab()
    stop, = _dependencies(app, by_id["style-stop-button"], "click")
    live, = _dependencies(app, by_id["style-live-button"], "click")
    stop_fn, live_fn = app.fns[stop["id"]], app.fns[live["id"]]
    assert stop_fn.concurrency_limit is None and stop_fn.concurrency_id != live_fn.concurrency_id == "gatys"
    assert stop["inputs"] == [live["inputs"][-1]] and type(app.blocks[stop["inputs"][0]]).__name__ == "State"
    assert not stop["cancels"]  # cancelling would kill the run before it could say where it stopped


def test_reconstruct_reports_every_step_of_every_layer(tmp_path):
    calls = []
    updates = list(style.reconstruct_from_layers(_photo(tmp_path), size=40, steps=3,
                                                 progress=lambda fraction, desc=None: calls.append((fraction, desc))))
    assert len(updates) == len(style.RECONSTRUCT_LAYERS) + 1
    assert len(calls) == 3 * len(style.RECONSTRUCT_LAYERS)
    fractions = [fraction for fraction, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0) and fractions[0] < 0.1
    assert calls[0][1] == "layer 1/6 (stem): step 1/3" and calls[-1][1] == "layer 6/6 (block15): step 3/3"


def test_outputs_are_cleared_when_the_photo_or_the_style_changes(bundled):
    assert style.cleared_for_new_photo() == (None, "", None, None, None, "", [], "")
    app, by_id = _tab()
    photo_change, = _dependencies(app, by_id["style-photo"], "change")
    cleared = {by_id[i]._id for i in ("style-instant-output", "style-instant-notes", "style-live-output", "style-loss-plot",
                                       "style-grams", "style-live-status", "style-reconstructions", "style-reconstruct-status")}
    assert set(photo_change["outputs"]) == cleared and len(photo_change["outputs"]) == len(style.cleared_for_new_photo())
    style_change, = _dependencies(app, by_id["style-choice"], "change")
    assert by_id["style-painting-view"]._id in style_change["outputs"] and by_id["style-live-output"]._id in style_change["outputs"]
    assert by_id["style-reconstructions"]._id not in style_change["outputs"]  # reconstructions do not depend on the style
    scream = style.cleared_for_new_style("The Scream (Munch)")
    image, painting, notes, *live = scream
    assert image is None and notes == "" and live == [None, None, None, ""]
    assert painting.size != style.cleared_for_new_style(STARRY)[1].size  # the new style's own painting
    assert style.cleared_for_new_style(style.YOUR_PAINTING)[1] is None


def test_timings_are_measured_live_not_quoted(tiny_style, tmp_path):
    import re

    view = list(style.live_style_transfer(_photo(tmp_path), STARRY, None, style.LiveSettings(steps=2, size=96, report_every=1)))[-1]
    assert re.search(r"done: 2 steps in \d+\.\d s, \d+ ms per step; the trained network's one pass on this photo took \d+ ms, "
                     r"≈\d+× less \(both timed just now on this server\)", view.status), view.status
    assert "timed just now on this server" in style.stylise_photo(_photo(tmp_path), STARRY, 256).notes
    assert not re.search(r"\d\s*(ms|s)\b", style.EXPLANATION), "the panel quotes a time that this server may not reach"


def test_the_api_names_its_parameters_and_outputs():
    app, _ = _tab()
    endpoints = app.get_api_info()["named_endpoints"]
    assert set(endpoints) == {"/stylise", "/style_live", "/style_reconstruct"}
    params = {name: [(p["parameter_name"], p["parameter_has_default"]) for p in e["parameters"]] for name, e in endpoints.items()}
    assert params["/stylise"] == [("photo", False), ("style", True), ("output_size", True)]
    assert params["/style_live"] == [("photo", False), ("style", True), ("painting", True), ("content_weight", True),
                                     ("style_weight", True), ("style_layers", True), ("image_size", True), ("steps", True),
                                     ("start_from", True), ("feature_network", True)]
    assert params["/style_reconstruct"] == [("photo", False)]
    labels = [r["label"] for e in endpoints.values() for r in e["returns"]]
    assert all(label and not label.startswith("value_") for label in labels), labels


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None, "`$1e9$`", True])
def test_unusable_numbers_give_a_message(tiny_style, tmp_path, bad):
    view = style.stylise_photo(_photo(tmp_path), STARRY, bad)
    assert view.image is None and "*output size* must be a number from 256 to 1024" in view.notes
    assert "$" not in view.notes and "`" not in view.notes  # a string sent as a number is not shown as typed (Markdown)
    for field, name in (("steps", "steps"), ("size", "image size"), ("style_strength", "style weight"),
                        ("content_strength", "content weight")):
        settings = style.LiveSettings(**{"steps": 2, "size": 96, field: bad})
        views = list(style.live_style_transfer(_photo(tmp_path), STARRY, None, settings))
        assert len(views) == 1 and views[0].image is None and f"*{name}* must be a number" in views[0].status


def test_out_of_range_numbers_are_brought_into_range_with_a_note(tiny_style, tmp_path):
    view = style.stylise_photo(_photo(tmp_path, (400, 300)), STARRY, 10**6)
    assert max(view.image.size) == 400 and "*output size* 1e+06 is outside 256–1024: used 1024." in view.notes
    last = list(style.live_style_transfer(_photo(tmp_path), STARRY, None,
                                          style.LiveSettings(steps=-3, size=96, style_strength=-1, report_every=1)))[-1]
    assert "done" in last.status and "*steps* -3 is outside 1–500: used 1." in last.status
    assert "*style weight* -1 is outside 0–4: used 0." in last.status


def test_the_style_tab_served_alone_answers_scripts(tiny_style, tmp_path, monkeypatch):
    """gradio_client against the tab: /style_live without a painting, None for a number (gradio_client sends no NaN:
    JSON has none; the handler tests cover it), named outputs."""
    import gradio as gr
    from gradio_client import Client, handle_file

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    photo = handle_file(_photo(tmp_path))
    with gr.Blocks() as app:
        style.build()
    _, url, _ = app.queue().launch(prevent_thread_lock=True, quiet=True, server_port=None)
    try:
        client = Client(url, verbose=False)
        image, painting, notes = client.predict(photo, STARRY, None, api_name="/stylise")
        assert image is None and "*output size* must be a number" in notes
        job = client.submit(photo, STARRY, image_size=96, steps=2, style_layers=["stem"], api_name="/style_live")
        image, losses, grams, status = job.result(timeout=120)
        assert image and "done: 2 steps" in status
        client.close()
    finally:
        app.close()


def test_plots_have_their_own_titles_and_no_label_chip_over_them(tiny_style, tmp_path):
    _, by_id = _tab()
    plot, grams = by_id["style-loss-plot"], by_id["style-grams"]
    assert plot.title == style.LOSS_PLOT_TITLE and plot.color == "term" and plot.colors_in_legend is None  # a legend of all terms
    assert plot.show_label is False and grams.show_label is False
    view = list(style.live_style_transfer(_photo(tmp_path), STARRY, None, style.LiveSettings(steps=1, size=96, layers=("stem",))))[-1]
    assert view.grams.get_suptitle() == style.GRAM_TITLE


def test_the_sections_fit_one_row_on_a_phone():
    """At 420 px Gradio moves the sub-tabs that do not fit into a "⋯" menu (it hid "Reconstruct from one layer"):
    these three short names fit in one row (checked in headless Chromium at 420 px)."""
    app, by_id = _tab()
    tabs = [b for b in app.blocks.values() if type(b).__name__ == "Tab"]
    assert [t.label for t in tabs] == list(style.SECTIONS.values())
    assert sum(len(t.label) for t in tabs) <= 30


# --- every "what to try" of the panel, on the bundled networks (a sample photo, the smallest size, few steps) ----
SAMPLE = str(REPO_ROOT / "samples" / "chelsea-the-cat.jpg")


def _live(**settings):
    return list(style.live_style_transfer(SAMPLE, STARRY, None, style.LiveSettings(size=96, report_every=1, **settings)))


def test_try_raising_the_style_weight_and_starting_from_noise(bundled):
    low, high = (_live(steps=8, style_strength=s)[-1].status for s in (0.25, 4))
    content = [float(s.split("content ")[1].split(" ")[0]) for s in (low, high)]
    style_loss = [float(s.split("style ")[1].split(" ")[0]) for s in (low, high)]
    assert content[1] > content[0] and style_loss[1] < style_loss[0]  # the photo fades, the style gets closer
    noise = _live(steps=8, start="noise")
    assert float(noise[0].status.split("content ")[1].split(" ")[0]) > 0.5  # no trace of the photo at the start
    totals = noise[-1].losses.query("term == 'total'")["loss"].tolist()
    assert totals[-1] < 0.5 * totals[0]


def test_try_shallow_or_deep_layers_only_and_the_gram_matrices_converge(bundled):
    from dl_core.style.gatys import run_pixels

    network = style.MODELS["starry_night"].get()
    settings, grams = infer.trained_style_target(network)
    extractor = style._extractor(settings)
    photo = style._load_photo(SAMPLE, 96, [])

    def gram_errors(layers):
        image = photo if layers is None else run_pixels(infer.live_loss(settings, grams, extractor, 1, 1, layers), photo,
                                                         steps=8).image
        current = style._current_grams(extractor, image, ("stem", "block2", "block7", "block10"))
        return {k: float(((g - grams[k]) ** 2).sum() / (grams[k] ** 2).sum()) for k, g in current.items()}

    start, every = gram_errors(None), gram_errors(style.LiveSettings().layers)
    shallow, deep = gram_errors(("stem", "block2", "block4")), gram_errors(("block7", "block10"))
    assert all(every[k] < start[k] for k in start)  # the heat maps converge
    assert shallow["block7"] > every["block7"] and shallow["block10"] > every["block10"]
    assert deep["stem"] > every["stem"] and deep["block2"] > every["block2"]


def test_try_starting_from_the_networks_output(bundled):
    from_photo, from_network = _live(steps=8), _live(steps=8, start="network")

    def style_curve(views):
        return views[-1].losses.query("term == 'style × weight'").set_index("step")["loss"]

    photo_curve, network_curve = style_curve(from_photo), style_curve(from_network)
    assert network_curve[0] < 0.5 * photo_curve[0]
    reached = next(step for step, loss in network_curve.items() if loss <= photo_curve[8])
    assert reached <= 8 / 4  # a fraction of the steps


def test_try_reconstructing_from_one_layer():
    gallery, _ = list(style.reconstruct_from_layers(SAMPLE, size=64, steps=20))[-1]
    photo = torch.from_numpy(np.asarray(gallery[0][0], dtype=np.float32) / 255)
    error = {caption.split()[1]: float((torch.from_numpy(np.asarray(image, dtype=np.float32) / 255) - photo).abs().mean())
             for image, caption in gallery[1:]}
    assert error["stem"] < error["block2"] < error["block15"]


def test_try_your_own_painting_live_but_not_instant(tmp_path):
    painting = _file(tmp_path, Image.new("RGB", (80, 60), (200, 180, 20)), "painting.png")
    assert style.stylise_photo(SAMPLE, style.YOUR_PAINTING).image is None
    assert "train/style.py" in style.stylise_photo(SAMPLE, style.YOUR_PAINTING).notes
    views = _live_with(painting)
    assert views[-1].image is not None and "done" in views[-1].status


def _live_with(painting):
    return list(style.live_style_transfer(SAMPLE, style.YOUR_PAINTING, painting, style.LiveSettings(size=96, steps=2)))
