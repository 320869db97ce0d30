"""Lessons 13-14 tab: style transfer, instant (a trained network) and live (Gatys pixel optimisation, streamed).

Pure handlers first (testable without a server), then the layout, then the wiring.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import gradio as gr

from demos.common import (
    ImageFile, InvalidSetting, LazyModel, ModelUnavailable, RawSlider, StopSignal, bundled_photos, checked_number, compile_note,
    folder_metrics,
)
from dl_core.paths import WEIGHTS_DIR, data_path, display_path
from dl_core.perceptual import DEFAULT_LAYERS, GRAM_LAYERS, VGG16_TAPS
from dl_core.style import infer
from dl_core.style.evaluate import matched_text
from dl_core.style.infer import feature_extractor, painting_file  # module names here: tests swap feature_extractor

ID = "style"
TITLE = "Lessons 13–14 · Style transfer"
EXPLANATION = Path(__file__).with_suffix(".md").read_text(encoding="utf-8")

MAX_UPLOAD_SIDE = 1024  # every upload is downscaled to this first (said in the notes when it happens)
INSTANT_SIZES = (256, 1024)  # the instant network's output size range (longer side)
LIVE_SIZES = (96, 384)  # Gatys runs a forward+backward pass per step: keep it interactive on 2 CPU cores
MAX_STEPS = 500
STRENGTHS = (0.0, 4.0)  # the live tab's content and style weight multipliers
RECONSTRUCT_SIZE, RECONSTRUCT_STEPS = 160, 150
YOUR_PAINTING = "your painting (upload)"
STYLES = {  # display name -> weight folder name (weights/style-<name>, or HUB_REPO_STYLE_<NAME>)
    "Starry Night (Van Gogh)": "starry_night",
    "The Scream (Munch)": "the_scream",
    "The Shipwreck (Turner)": "shipwreck",
    "Woman with a Hat (Matisse)": "woman_with_hat_matisse",
}
LAYERS = GRAM_LAYERS  # style layers a user may pick: the bundled networks store their Gram matrices
# The live tab's feature networks: the offline default, or the lessons' VGG16 when the server can download it.
BACKBONES = {
    "EfficientNet-Lite0 (bundled, offline)": "efficientnet_lite0",
    "VGG16 (the lessons'; downloads 528 MB on first use)": "vgg16",
}
BACKBONE_LAYERS = {"efficientnet_lite0": LAYERS, "vgg16": tuple(VGG16_TAPS)}
VGG_NEEDS_PAINTING = ("VGG16 needs the painting itself: a trained style stores only EfficientNet's Gram matrices, and "
                      "this server has no copy of that painting. Upload it as *Your painting* and pick "
                      f"'{YOUR_PAINTING}', or use EfficientNet-Lite0.")
# The live tab's starting images, as (label, value): the value is LiveSettings.start (and the API's).
START_FROM = [("the photo", "content"), ("noise", "noise"), ("the trained network's output", "network")]
RECONSTRUCT_LAYERS = ("stem", "block2", "block4", "block7", "block10", "block15")
GRAM_TITLE = "Gram matrices: the painting's (top) and the image's (bottom), per style layer"
LOSS_PLOT_TITLE = "Weighted losses per step"
BUNDLED_NETWORKS_MARK = "<!-- bundled networks -->"  # style.md's place for what the bundled networks' metrics say

def _fast_network(network):
    from dl_core.fast import speed_up_convnet

    # bf16 + channels_last, and compiled for any size: photos come in every size. Only the convolutions are
    # compiled (StyleNet.transform), since the padding arithmetic in forward breaks inductor's dynamic shapes in
    # torch 2.14 (TensorReferenceAnalysis.python_mod). The networks of one architecture share the compiled code.
    import torch

    network = speed_up_convnet(network, methods=("transform",), dynamic=True)
    with torch.inference_mode():  # compile now, on a photo that is not square: a square one would specialise to H == W
        network(torch.rand(1, 3, 8 * network.scale, 12 * network.scale))
    return network


MODELS = {
    name: LazyModel(f"style-{name}", infer.load_network,
                    f"python train/style.py train --style {display_path(data_path('style', name.replace('woman_with_hat_matisse', 'woman-with-hat-matisse') + '.jpg'))} "
                    f"--out weights/style-{name}   # or train/style_all.sh for all four", prepare=_fast_network)
    for name in STYLES.values()
}


def extractor_for(settings: dict):
    return infer.fast_copy(feature_extractor(settings["backbone"], settings["smoothing"], settings["temperature"]))


def sample_photos() -> list[str]:
    """Held-out photos from the data root (DL_DATA_DIR, default ../shared/data), when present (not in the repo)."""
    picks = [data_path("superres", "CSet5", "bird.png"), data_path("superres", "CSet5", "butterfly.png"),
             data_path("detection", "raccoon", "images", "raccoon-1.jpg"), data_path("detection", "raccoon", "images", "raccoon-56.jpg")]
    return [str(p) for p in picks if p.exists()]


def example_photos() -> list[str]:
    """The tab's examples: the committed sample photos (there on a fresh clone or Space), then the held-out photos
    of the data root where it is present."""
    return bundled_photos() + sample_photos()


def painting_of(name: str):
    """A trained style's painting (PIL, within 400 px) to show beside its network, or None: the painting.jpg of
    the folder its weights come from (bundled or a Hub repo), else the data root's original."""
    model = MODELS[name]
    try:
        model.get()  # where the weights come from is settled by loading them
    except ModelUnavailable:
        pass
    folder = Path(model.source.location) if model.source else WEIGHTS_DIR / f"style-{name}"
    path = infer.folder_painting(folder) or painting_file(name)
    return _thumbnail(str(path)) if path else None


def bundled_painting(name: str):
    """The bundled folder's painting (no model loaded: for the tab's first view), or None."""
    path = infer.folder_painting(WEIGHTS_DIR / f"style-{name}")
    return _thumbnail(str(path)) if path else None


@functools.lru_cache(maxsize=16)
def _thumbnail(path: str):
    """An image file fitted within 400 px. Returned as an image, not a path: Gradio serves files only from
    the app's own folders, and a Hub snapshot lives in the Hub cache."""
    from PIL import Image

    with Image.open(path) as opened:
        image = opened.convert("RGB")
    image.thumbnail((400, 400))
    return image


def _load_photo(source, max_side: int, notes: list[str]):
    """An upload -> (1, 3, H, W) tensor in [0, 1] fitted within max_side; BadImage for unusable files."""
    from dl_core.photos import fit_within, to_tensor
    from dl_core.images import load_rgb

    loaded = load_rgb(source, max_side=MAX_UPLOAD_SIDE)
    notes += loaded.notes
    image = loaded.image
    if max(image.size) > max_side:
        notes.append(f"Processed at {max_side} px on the longer side (the photo is {image.width}×{image.height}).")
        image = fit_within(image, max_side)
    return to_tensor(image)[None]


def _format_notes(notes: list[str]) -> str:
    return "\n\n".join(f"⚠️ {n}" for n in notes)


# --- pure handlers: instant ----------------------------------------------------------------------------
@dataclass
class InstantView:
    image: object | None  # PIL image
    painting: object | None  # the painting (PIL), if available
    notes: str

    def as_tuple(self):
        return self.image, self.painting, self.notes


def stylise_photo(photo, style: str, size: int = 512, progress=None) -> InstantView:
    """One forward pass of the painting's trained network."""
    import torch

    from dl_core.photos import to_image
    from dl_core.images import BadImage

    name = STYLES.get(style)
    if name is None:
        train = " (a network is trained per painting: `python train/style.py train --style your.jpg`)" if style == YOUR_PAINTING else ""
        return InstantView(None, None, f"Pick one of the trained styles: {', '.join(STYLES)}{train}.")
    if progress is not None and not MODELS[name].loaded:
        progress(0.1, desc="Loading the network and compiling it for this CPU (its first request only)…")
    painting = painting_of(name)
    notes: list[str] = []
    try:
        out_size = round(checked_number(size, "output size", *INSTANT_SIZES, notes))
        image = _load_photo(photo, out_size, notes)
        model = MODELS[name].get()
    except (BadImage, ModelUnavailable, InvalidSetting) as err:
        return InstantView(None, painting, str(err))
    if MODELS[name].note:
        notes.append(MODELS[name].note)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model(image)
    h, w = image.shape[-2:]
    notes.insert(0, f"{w}×{h} px in {1000 * (time.perf_counter() - start):.0f} ms: one forward pass, timed just now on this server.")
    if compiled := compile_note(model):
        notes.insert(1, compiled)
    if versus_live := heldout_comparison(MODELS[name]):
        notes.insert(1, versus_live)
    return InstantView(to_image(out), painting, "\n\n".join(notes))


def heldout_comparison(model: LazyModel) -> str:
    """How the loaded network compares with Live (Gatys) on held-out photos; "" when that was not measured."""
    return _heldout_comparison(model.source.location) if model.source else ""


def _heldout_comparison(folder: str) -> str:
    """The held-out comparisons that `train/style.py evaluate` keeps in metrics.json (CSet5 + CSet14, the city
    photos, and the network these weights replaced), as sentences."""
    try:
        metrics = folder_metrics(folder)
        heldout = metrics["heldout"]
        ratio, steps, n = heldout["style_ratio"], heldout["gatys_steps"], heldout["n"]
    except (KeyError, TypeError):  # not evaluated
        return ""
    sentence = f"On {n} held-out photos its style loss is {ratio:.1f}× that of {steps} *Live* steps"
    if "gatys_steps_matched" not in heldout:  # evaluated before the matched-steps measurement
        return sentence + "."
    matched = heldout["gatys_steps_matched"]
    if matched is None:
        sentence += f": lower than any of the {steps} steps."
    else:
        sentence += f": the one pass is worth ≈{matched} steps of pixel optimisation."
    if city := metrics.get("city"):
        sentence += (f" On {city['n']} photos of city streets and buildings, a kind none of its training photos are: "
                     f"{city['style_ratio']:.1f}×, ≈{matched_text(city)} steps.")
    if replaces := metrics.get("replaces"):
        before = [f"{name} {r['style_ratio']:.1f}×, ≈{matched_text(r)} steps" for name, r in
                  (("held-out", replaces.get("heldout")), ("city", replaces.get("city"))) if r]
        sentence += f" (The network it replaced: {'; '.join(before)}.)"
    return sentence


def bundled_networks_summary() -> str:
    """What the bundled networks' metrics.json say about their training and their held-out comparison with Gatys,
    for the panel; "" where none has been evaluated."""
    metrics = [m for m in (folder_metrics(str(WEIGHTS_DIR / f"style-{name}")) for name in STYLES.values()) if "heldout" in m]
    if not metrics:
        return ""
    heldout = [m["heldout"] for m in metrics]
    ratios = sorted(h["style_ratio"] for h in heldout)
    matched = sorted(h["gatys_steps_matched"] for h in heldout if h.get("gatys_steps_matched") is not None)
    training = sorted((m["train_seconds"] + sum(run["seconds"] for run in m.get("lineage", [])),
                       "CPU" if m["hardware"].startswith("CPU") else "GPU") for m in metrics)
    fastest, slowest = (f"{seconds / 60:.0f} {hardware}-minutes" for seconds, hardware in (training[0], training[-1]))
    worth = (f"one pass is worth ≈{_span(matched, '{}')} steps, as in Johnson et al.'s paper, where networks matched "
             "50–100 steps of L-BFGS") if matched else "Gatys keeps the edge"
    trained = fastest if fastest == slowest else f"from {fastest} to {slowest}"
    return (f"(The bundled networks had {trained} of training each; on {heldout[0]['n']} held-out photos their style "
            f"loss is still {_span(ratios, '{:.1f}')}× that of {heldout[0]['gatys_steps']} pixel steps, so the live "
            f"result is the closer match: {worth}.)")


def _span(values: list, form: str) -> str:
    low, high = form.format(values[0]), form.format(values[-1])
    return low if low == high else f"{low}–{high}"


def explanation() -> str:
    """The panel: style.md, with the bundled networks' numbers read from their metrics.json."""
    return EXPLANATION.replace(BUNDLED_NETWORKS_MARK, bundled_networks_summary())


# --- pure handlers: live Gatys -------------------------------------------------------------------------
@dataclass
class LiveView:
    image: object | None
    losses: object | None  # pandas DataFrame: step, loss, term
    grams: object | None  # matplotlib Figure
    status: str

    def as_tuple(self):
        return self.image, self.losses, self.grams, self.status


@dataclass
class LiveSettings:
    # multipliers of the content and style weights the trained networks used (1, 1: exactly their loss)
    content_strength: float = 1.0
    style_strength: float = 1.0
    layers: tuple[str, ...] = DEFAULT_LAYERS["efficientnet_lite0"]["style"]
    size: int = 256
    steps: int = 200
    start: str = "content"  # or "noise", or "network": the trained style network's output, refined (START_FROM)
    report_every: int = 10
    backbone: str = "efficientnet_lite0"  # or "vgg16" (BACKBONES)
    notes: list[str] = field(default_factory=list)


class FeaturesUnavailable(RuntimeError):
    """The chosen feature network could not be loaded (VGG16 offline): the message says what to do."""


def _extractor(settings: dict):
    try:
        return extractor_for(settings)
    except OSError as err:  # URLError, a full disk, a truncated download: the app stays up, the tab explains
        raise FeaturesUnavailable(
            f"Could not load {settings['backbone']}'s ImageNet weights ({type(err).__name__}: {err}). VGG16's come "
            "from torchvision's servers on first use, so this needs internet access once (then they are cached "
            "in ~/.cache/torch). EfficientNet-Lite0 works offline.") from err


def _style_target(style: str, painting, size: int, notes: list[str],
                  backbone: str = "efficientnet_lite0") -> tuple[dict, dict]:
    """(loss settings, the painting's Gram matrices).

    EfficientNet-Lite0 and a trained style: the Gram matrices stored with its network (no painting file
    needed, and exactly the loss it was trained with). An uploaded painting, or VGG16: computed from the
    painting's pixels (VGG16 with raw features, as in the lessons)."""
    from dl_core.perceptual import style_grams

    if backbone not in BACKBONE_LAYERS:
        raise ValueError(f"Unknown feature network {backbone!r}: choose one of {', '.join(BACKBONES)}.")
    if style == YOUR_PAINTING:
        if painting is None:
            raise ValueError("Upload a painting, or pick one of the trained styles.")
    elif style not in STYLES:
        raise ValueError(f"Unknown style {style!r}.")
    elif backbone == "efficientnet_lite0":
        return infer.trained_style_target(MODELS[STYLES[style]].get())
    else:  # VGG16 and a trained style: that painting's pixels, where this server has them
        painting = painting_file(STYLES[style])
        if painting is None:
            raise ValueError(VGG_NEEDS_PAINTING)
    settings = infer.painting_loss_settings(backbone)
    image = _load_photo(painting, size, notes)
    return settings, style_grams(_extractor(settings), image, BACKBONE_LAYERS[backbone])


def gram_figure(target: dict, current: dict, layers):
    """Heat maps of the painting's and the current image's Gram matrices, one column per layer."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.1 * len(layers), 4.8))
    fig.suptitle(GRAM_TITLE, fontsize=10)
    axes = fig.subplots(2, len(layers), squeeze=False)
    for col, name in enumerate(layers):
        vmax = float(target[name].abs().max())
        for row, (label, grams) in enumerate((("painting", target), ("image", current))):
            ax = axes[row][col]
            ax.imshow(grams[name][0].cpu().numpy(), cmap="magma", vmin=0, vmax=vmax)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{label} · {name} ({grams[name].shape[-1]}²)", fontsize=8)
    fig.tight_layout()
    return fig


def backbone_id(backbone_name: str) -> str:
    """A feature network's id ("vgg16") from its display name in BACKBONES, or the id itself."""
    return BACKBONES.get(backbone_name, backbone_name)


def layer_choices(backbone_name: str) -> tuple[str, ...]:
    """The style layers a user may tick for a feature network."""
    return BACKBONE_LAYERS[backbone_id(backbone_name)]


def default_layers(backbone_name: str) -> tuple[str, ...]:
    return DEFAULT_LAYERS[backbone_id(backbone_name)]["style"]


def _current_grams(extractor, image, layers):
    import torch

    from dl_core.perceptual import gram_matrix

    with torch.no_grad():
        feats = extractor(image, layers)
    return {name: gram_matrix(extractor.smooth(f)) for name, f in feats.items()}


def _start_image(start: str, style: str, content):
    """What the pixels start as: "content" (the photo), "noise", or the trained network's stylisation of the
    photo, which the optimisation then refines (lesson 14's one pass as a head start for lesson 13's loop)."""
    import torch

    if start != "network":
        return start
    if style not in STYLES:
        raise ValueError("Starting from the network's output needs one of the trained styles: a network is "
                         "trained per painting. Start from the photo or noise instead.")
    with torch.no_grad():
        return MODELS[STYLES[style]].get()(content)


def _network_pass_ms(style: str, content) -> float | None:
    """The trained network's one pass on this photo, timed now (None for an uploaded painting or no network)."""
    import torch

    if style not in STYLES:
        return None
    try:
        network = MODELS[STYLES[style]].get()
    except ModelUnavailable:
        return None
    start = time.perf_counter()
    with torch.inference_mode():
        network(content)
    return 1000 * (time.perf_counter() - start)


def _finished_status(steps: int, elapsed: float, network_ms: float | None) -> str:
    """The last status line: the time per step and, for a trained style, its network's one pass on the same photo,
    both timed during this run on this server (a loaded server is slower at both)."""
    per_step = 1000 * elapsed / max(1, steps)
    status = f"done: {steps} steps in {elapsed:.1f} s, {per_step:.0f} ms per step"
    if network_ms is not None:
        status += (f"; the trained network's one pass on this photo took {network_ms:.0f} ms, "
                   f"≈{1000 * elapsed / max(network_ms, 1e-3):.0f}× less (both timed just now on this server)")
    return status


def live_style_transfer(photo, style: str, painting, settings: LiveSettings,
                        stop: StopSignal | None = None) -> Iterator[LiveView]:
    """Gatys et al.: Adam on the pixels, yielding the image and the losses every `report_every` steps, and
    after the step on which `stop` is pressed."""
    import pandas as pd

    from dl_core.photos import to_image
    from dl_core.style.gatys import optimise_pixels
    from dl_core.images import BadImage
    notes = list(settings.notes)
    try:
        content_strength = checked_number(settings.content_strength, "content weight", *STRENGTHS, notes)
        style_strength = checked_number(settings.style_strength, "style weight", *STRENGTHS, notes)
        size = round(checked_number(settings.size, "image size", *LIVE_SIZES, notes))
        steps = round(checked_number(settings.steps, "steps", 1, MAX_STEPS, notes))
    except InvalidSetting as err:
        yield LiveView(None, None, None, str(err))
        return
    chosen = set(settings.layers or ())
    layers = tuple(name for name in BACKBONE_LAYERS.get(settings.backbone, ()) if name in chosen)
    if not layers and style_strength > 0:
        notes.append("No style layer selected: only the content loss is optimised.")
    if settings.backbone == "vgg16":  # the first VGG16 run downloads 528 MB: say so while it happens
        yield LiveView(gr.skip(), gr.skip(), gr.skip(), "Loading VGG16 (the first time, its ImageNet weights are downloaded: 528 MB)…")
    try:
        content = _load_photo(photo, size, notes)
        loss_config, grams = _style_target(style, painting, size, notes, settings.backbone)
        extractor = _extractor(loss_config)
        start_from = _start_image(settings.start, style, content)
    except (BadImage, ValueError, ModelUnavailable, FeaturesUnavailable) as err:
        yield LiveView(None, None, None, str(err))
        return
    loss = infer.live_loss(loss_config, grams, extractor, content_strength, style_strength, layers)
    weights = loss.weights
    rows: list[dict] = []
    started_as = " from the trained network's output" if settings.start == "network" else ""
    started = time.monotonic()
    stopped = (lambda: stop.pressed_since(started)) if stop is not None else (lambda: False)
    start = time.perf_counter()
    for step in optimise_pixels(loss, content, steps=steps, start=start_from, report_every=settings.report_every,
                                should_stop=stopped):
        rows += [{"step": step.step, "loss": step.content * weights.content_weight, "term": "content × weight"},
                 {"step": step.step, "loss": step.style * weights.style_weight, "term": "style × weight"},
                 {"step": step.step, "loss": step.total, "term": "total"}]
        elapsed = time.perf_counter() - start
        done, stopping = step.step == steps, step.step < steps and stopped()
        losses = f"content {step.content:.3f} · style {step.style:.4f}"
        if done:
            status = f"step {steps}/{steps}{started_as} · {losses} · {_finished_status(steps, elapsed, _network_pass_ms(style, content))}"
        elif stopping:
            status = f"stopped at step {step.step}/{steps}{started_as} (Stop pressed) after {elapsed:.1f} s · {losses}"
        else:
            status = f"step {step.step}/{steps}{started_as} · {elapsed:.1f} s · {losses}"
        figure = (gram_figure(grams, _current_grams(extractor, step.image, layers), layers)
                  if layers and (done or stopping or step.step == 0) else gr.skip())
        yield LiveView(to_image(step.image), pd.DataFrame(rows), figure, "\n\n".join([status, _format_notes(notes)]).strip())


def reconstruct_from_layers(photo, size: int = RECONSTRUCT_SIZE, steps: int = RECONSTRUCT_STEPS,
                            progress=gr.Progress()) -> Iterator[tuple[list, str]]:
    """Start from smooth noise and match only one layer's features of the photo, for each layer in turn,
    reporting every step to `progress` and streaming each layer's result.

    The shallowest layer gives the photo back almost pixel for pixel; the deeper the layer, the further its
    reconstruction is from the photo's pixels: that is why the content loss uses a middle layer."""
    from dl_core.images import BadImage
    from dl_core.photos import to_image

    notes: list[str] = []
    try:
        content = _load_photo(photo, size, notes)
    except BadImage as err:
        yield [], str(err)
        return
    gallery = [(to_image(content), "photo")]
    n_layers = len(RECONSTRUCT_LAYERS)
    for index, layer in enumerate(RECONSTRUCT_LAYERS):
        def report(step: int, index=index, layer=layer) -> bool:
            progress((index + step / steps) / n_layers, desc=f"layer {index + 1}/{n_layers} ({layer}): step {step}/{steps}")
            return False  # never stops early: only reports

        result = infer.reconstruct_from_layer(content, layer, steps, feature_extractor(), after_step=report)
        gallery.append((to_image(result.image), f"from {layer} (feature error {result.content:.3f})"))
        yield list(gallery), _format_notes(notes) or f"reconstructed from {len(gallery) - 1} of {n_layers} layers…"
    yield list(gallery), _format_notes(notes) or "Each image started as noise and matched one layer's features only."


# --- layout and wiring ---------------------------------------------------------------------------------
# The style tab's sections: short names, so that at phone width (420 px) all three sit in one row of tabs
# instead of one hiding behind an overflow menu.
SECTIONS = {"instant": "Instant · L14", "live": "Live · L13", "layers": "Layers"}


def cleared_for_new_photo() -> tuple:
    """Every result, emptied when the photo changes: none of them is of the new photo.
    (Instant image and notes, live image, losses, Gram matrices and status, reconstructions and their status.)"""
    return None, "", None, None, None, "", [], ""


def cleared_for_new_style(style: str) -> tuple:
    """The results that depend on the style, emptied, and the new style's painting shown.
    (Instant image, painting, notes; live image, losses, Gram matrices and status.)"""
    painting = painting_of(STYLES[style]) if style in STYLES else None
    return None, painting, "", None, None, None, ""


def build() -> None:
    """Add this tab's components to the current Blocks context."""
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                photo = ImageFile(label="Photo", type="filepath", sources=["upload", "clipboard"], height=280,
                                  elem_id="style-photo")
                with gr.Column():
                    style = gr.Radio([*STYLES, YOUR_PAINTING], value=next(iter(STYLES)), label="Style",
                                     elem_id="style-choice")
                    painting = ImageFile(label="Your painting (for Live)", type="filepath",
                                         sources=["upload"], height=140, elem_id="style-painting")
            gr.Examples([[path] for path in example_photos()], inputs=[photo], cache_examples=False, cache_mode="lazy",
                        label="Sample photos (public domain / CC0; held-out photos too where the data set is present)")
            with gr.Tabs(elem_id="style-sections"):
                with gr.Tab(SECTIONS["instant"], id="instant", elem_id="style-instant-tab"):
                    gr.Markdown("**Lesson 14**: a network trained on the painting stylises the photo in one forward pass.")
                    with gr.Row():
                        size = RawSlider(*INSTANT_SIZES, value=512, step=32, label="output size (longer side, px)")
                        instant_button = gr.Button("Stylise", variant="primary", elem_id="style-instant-button")
                    with gr.Row():
                        instant_image = gr.Image(label="Stylised by the network", type="pil", elem_id="style-instant-output")
                        painting_view = gr.Image(value=bundled_painting(STYLES[next(iter(STYLES))]), label="The painting it learned",
                                                 type="pil", height=300, elem_id="style-painting-view")
                    instant_notes = gr.Markdown(label="notes", elem_id="style-instant-notes")
                with gr.Tab(SECTIONS["live"], id="live", elem_id="style-live-tab"):
                    gr.Markdown("**Lesson 13**: Gatys' optimisation of the pixels themselves, step by step.")
                    with gr.Row():
                        content_strength = RawSlider(*STRENGTHS, value=1, step=0.1, label="content weight (× the trained networks')")
                        style_strength = RawSlider(*STRENGTHS, value=1, step=0.1, label="style weight (× the trained networks')")
                        live_size = RawSlider(*LIVE_SIZES, value=256, step=16, label="image size (px, capped)")
                        steps = RawSlider(10, MAX_STEPS, value=200, step=10, label="steps", elem_id="style-steps")
                    with gr.Row():
                        backbone = gr.Radio(list(BACKBONES), value=next(iter(BACKBONES)), label="feature network",
                                            elem_id="style-backbone")
                        layers = gr.CheckboxGroup(list(LAYERS), value=list(LiveSettings().layers), label="style layers",
                                                  elem_id="style-layers")
                        start = gr.Radio(START_FROM, value="content", label="start from", elem_id="style-start")
                    with gr.Row():
                        live_button = gr.Button("Start", variant="primary", elem_id="style-live-button")
                        stop_button = gr.Button("Stop", elem_id="style-stop-button")
                    live_status = gr.Markdown(label="status", elem_id="style-live-status")
                    with gr.Row():
                        live_image = gr.Image(label="Optimised pixels", type="pil", elem_id="style-live-output")
                        loss_plot = gr.LinePlot(x="step", y="loss", color="term", title=LOSS_PLOT_TITLE,
                                                color_title="term", label="weighted losses", show_label=False,
                                                height=300, elem_id="style-loss-plot")
                    grams = gr.Plot(label="Gram matrices", show_label=False, elem_id="style-grams")
                with gr.Tab(SECTIONS["layers"], id="reconstruct", elem_id="style-layers-tab"):
                    gr.Markdown("**Reconstruct from one layer.** Each picture starts as noise and is optimised to match "
                                "**one** layer's features of the photo (no style). The deeper the layer, the less of the "
                                "photo's pixels come back: many images share its features.")
                    reconstruct_button = gr.Button("Reconstruct from each layer", elem_id="style-reconstruct-button")
                    reconstruct_status = gr.Markdown(label="reconstruction status", elem_id="style-reconstruct-status")
                    gallery = gr.Gallery(label="reconstructions", columns=4, height=360, elem_id="style-reconstructions")
        with gr.Column(scale=2):
            gr.Markdown(explanation(), latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                       {"left": "$", "right": "$", "display": False}])
    stop_signal = gr.State(StopSignal())

    # Wired functions: their parameter names are the API's (gradio_client) parameter names.
    def stylise(photo, style, output_size=512, progress=gr.Progress()):
        return stylise_photo(photo, style, output_size, progress).as_tuple()

    def style_live(photo, style, painting=None, content_weight=1.0, style_weight=1.0, style_layers=None, image_size=256,
                   steps=200, start_from="content", feature_network=next(iter(BACKBONES)), stop=None):
        settings = LiveSettings(content_strength=content_weight, style_strength=style_weight,
                                layers=tuple(style_layers or ()), size=image_size, steps=steps, start=start_from,
                                backbone=backbone_id(feature_network))
        for view in live_style_transfer(photo, style, painting, settings, stop):
            yield view.as_tuple()

    def press_stop(stop: StopSignal) -> None:
        stop.press()  # the run sees it after its current step and says where it stopped

    def layers_for(backbone_name):
        return gr.CheckboxGroup(choices=list(layer_choices(backbone_name)), value=list(default_layers(backbone_name)))

    instant_button.click(stylise, [photo, style, size], [instant_image, painting_view, instant_notes],
                         api_name="stylise", concurrency_id="cpu")
    backbone.change(layers_for, backbone, layers, api_visibility="private")
    photo.change(cleared_for_new_photo, None, [instant_image, instant_notes, live_image, loss_plot, grams, live_status,
                                               gallery, reconstruct_status], api_visibility="private", queue=False)
    style.change(cleared_for_new_style, style, [instant_image, painting_view, instant_notes, live_image, loss_plot, grams,
                                                live_status], api_visibility="private")
    # Gatys runs for seconds to a minute: its own queue of one, so it never holds up the instant network
    # (which shares the "cpu" pool with the other tabs); a second live run waits its turn.
    live_button.click(style_live, [photo, style, painting, content_strength, style_strength, layers, live_size, steps, start,
                                   backbone, stop_signal],
                      [live_image, loss_plot, grams, live_status], api_name="style_live",
                      concurrency_id="gatys", concurrency_limit=1)
    # Stop must not wait behind the run it stops: no queue limit of its own.
    stop_button.click(press_stop, stop_signal, None, api_visibility="private", concurrency_limit=None)
    reconstruct_button.click(reconstruct_from_layers, [photo], [gallery, reconstruct_status], api_name="style_reconstruct",
                             concurrency_id="gatys", concurrency_limit=1)


if __name__ == "__main__":
    import sys
    from demos.common import launch_alone

    launch_alone(sys.modules[__name__])
