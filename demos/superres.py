"""Lesson 14 tab: super-resolution. Bicubic, a pixel-loss network and a perceptual-loss network side by side, scored
against the original when the learner asks for it, and the checkerboard a sub-pixel layer starts with (or not).

Pure handlers first (testable without a server), then the layout, then the wiring.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from demos.common import (
    ImageFile,
    InvalidSetting,
    LazyModel,
    ModelUnavailable,
    RawRadio,
    RawSlider,
    bundled_photos,
    checked_number,
    folder_metrics,
)
from dl_core.paths import data_path

ID = "superres"
TITLE = "Lesson 14 · Super-resolution"
EXPLANATION = Path(__file__).with_suffix(".md").read_text(encoding="utf-8")
MAX_OUTPUT = 2048  # the output's longer side at most: x4 of a 4000-px photo would need ~10 GB of activations
ENLARGE, TEST = "enlarge my photo", "test against the original"
MODES = (ENLARGE, TEST)
SCALE_CHOICES = ("×2", "×4")
ZOOM_SIDE = 64  # output pixels per side of the zoomed region
ZOOM_FACTOR = 4  # shown enlarged this many times (nearest neighbour: every pixel visible)
TRAIN = {  # the commands that made the bundled folders (their model cards have them too)
    "superres-x2": "python train/superres.py train --scale 2 --epochs 12 --lr 6e-4 --out weights/superres-x2 --mixed-precision bf16",
    "superres-x4": ("python train/superres.py train --scale 4 --epochs 12 --lr 6e-4 --init weights/superres-x2 "
                    "--out weights/superres-x4 --mixed-precision bf16, then python train/superres.py train --scale 4 "
                    "--epochs 12 --lr 3e-4 --sample-by area --init weights/superres-x4 --out weights/superres-x4 "
                    "--mixed-precision bf16"),
    "superres-x4-perceptual": ("python train/superres.py train --scale 4 --loss perceptual --epochs 3 --lr 2e-4 "
                               "--init weights/superres-x4 --out weights/superres-x4-perceptual --mixed-precision bf16"),
}


def _load(folder: str):
    from dl_core.superres.infer import (
        load_superres,  # torch loads with the first request, not with the app
    )

    return load_superres(folder)


def _checker(scale: int):
    def check(model) -> None:
        """One small pass: a network of the wrong scale (or a config that no longer fits its weights) fails here."""
        import torch

        with torch.no_grad():
            out = model(torch.zeros(1, 3, 8, 8))
        if out.shape != (1, 3, 8 * scale, 8 * scale):
            raise ValueError(f"expected a ×{scale} network; this one gives {tuple(out.shape)} for an 8×8 input")
    return check


NETWORKS = {name: LazyModel(name, _load, command, check=_checker(2 if name.endswith("x2") else 4))
            for name, command in TRAIN.items()}
PIXEL = {2: "superres-x2", 4: "superres-x4"}
PERCEPTUAL = {4: "superres-x4-perceptual"}


def benchmark_samples() -> list[str]:
    """A few benchmark images (Set5, Set14: never trained on) where the data root has them (never copied here)."""
    picks = [data_path("superres", "CSet5", name) for name in ("butterfly.png", "bird.png", "baby.png")]
    picks += [data_path("superres", "CSet14", name) for name in ("zebra.png", "comic.png", "barbara.png")]
    return [str(p) for p in picks if p.is_file()]


# --- pure handlers ---------------------------------------------------------------------------------------------
@dataclass
class Enlargement:
    """What one request produced, kept per session (gr.State) so a click can zoom without running anything again."""
    images: dict[str, object] = field(default_factory=dict)  # label -> PIL image, all the same size
    scale: int = 4


@dataclass
class SuperResView:
    slider: tuple | None
    bicubic: object | None
    pixel: object | None
    perceptual: object | None
    zoom: list
    table: list[list]
    notes: str
    state: Enlargement | None
    about: str = ""

    def as_tuple(self):
        return (self.slider, self.bicubic, self.pixel, self.perceptual, self.zoom, self.table, self.notes, self.state,
                self.about)


def _empty(notes: str) -> SuperResView:
    return SuperResView(None, None, None, None, [], [], notes, None)


def parse_scale(scale) -> int:
    if scale in SCALE_CHOICES:
        return int(scale[1:])
    if isinstance(scale, int) and not isinstance(scale, bool) and scale in (2, 4):
        return scale
    raise InvalidSetting(f"*scale* must be one of {', '.join(SCALE_CHOICES)}, not {str(scale)[:40]!r}.")


def zoom_crops(state: Enlargement | None, x: float, y: float) -> list[tuple]:
    """The same ZOOM_SIDE-px square around (x, y) of every image, enlarged with nearest neighbour: (image, label)."""
    from PIL import Image

    if state is None or not state.images:
        return []
    width, height = next(iter(state.images.values())).size
    side = min(ZOOM_SIDE, width, height)
    left = int(min(max(x - side / 2, 0), width - side))
    top = int(min(max(y - side / 2, 0), height - side))
    return [(image.crop((left, top, left + side, top + side)).resize((side * ZOOM_FACTOR, side * ZOOM_FACTOR),
                                                                     Image.Resampling.NEAREST), label)
            for label, image in state.images.items()]


def weights_summary(scale: int) -> str:
    """The loaded networks' scores on Set5 (their metrics.json), for the panel."""
    parts = []
    for name in (PIXEL.get(scale), PERCEPTUAL.get(scale)):
        model = NETWORKS.get(name) if name else None
        if model is None or model.source is None:
            continue
        scores = folder_metrics(model.source.location).get("scores", {}).get("CSet5")
        if scores:
            parts.append(f"`{name}`: **{scores['psnr']:.2f} dB** PSNR-Y (bicubic {scores['psnr_bicubic']:.2f})")
    return f"**These weights** on Set5 ×{scale} (never trained on): " + "; ".join(parts) + "." if parts else ""


def enlarge_photo(photo, scale="×4", mode=ENLARGE, progress=None) -> SuperResView:
    """Enlarge an upload (or its down-sampled copy, in test mode) with bicubic and the networks; every problem
    becomes a note, never an exception."""
    from dl_core.images import BadImage, load_rgb
    from dl_core.superres.data import bicubic_upscale, downscale, mod_crop
    from dl_core.superres.evaluate import y_scores
    from dl_core.superres.infer import enlarge

    started = time.perf_counter()
    try:
        factor = parse_scale(scale)
        if mode not in MODES:
            raise InvalidSetting(f"*mode* must be '{ENLARGE}' or '{TEST}', not {str(mode)[:40]!r}.")
    except InvalidSetting as err:
        return _empty(f"⚠️ {err}")
    testing = mode == TEST
    try:
        loaded = load_rgb(photo, max_side=MAX_OUTPUT if testing else MAX_OUTPUT // factor)
    except BadImage as err:
        return _empty(f"⚠️ {err}")
    notes = list(loaded.notes)
    if not testing and any("Downscaled" in n for n in notes):
        notes.append(f"The output is capped at {MAX_OUTPUT} px on its longer side, so the photo was first reduced to "
                     f"{MAX_OUTPUT // factor} px.")
    if testing:
        original = mod_crop(loaded.image, factor)
        low = downscale(original, factor)
        if min(low.size) < 8:
            return _empty(f"⚠️ The photo is too small to test at ×{factor}: its down-sampled copy would be {low.width}×"
                          f"{low.height} pixels. Use a photo of at least {8 * factor} px, or *{ENLARGE}*.")
    else:
        original, low = None, loaded.image
    if progress is not None:
        progress(0.05, desc="Bicubic…")
    images, seconds = {}, {}
    if testing:
        images["original"] = original
    t = time.perf_counter()
    images["bicubic"] = bicubic_upscale(low, factor)
    seconds["bicubic"] = time.perf_counter() - t
    unavailable = []
    for kind, names in (("pixel loss", PIXEL), ("perceptual loss", PERCEPTUAL)):
        name = names.get(factor)
        if name is None:
            notes.append(f"There is no {kind} network for ×{factor}: the bundled perceptual network is ×4 (the lesson's).")
            continue
        if progress is not None:
            progress(0.2 if kind == "pixel loss" else 0.6, desc=f"The {kind} network (the first request also loads it)…")
        try:
            network = NETWORKS[name].get()
        except ModelUnavailable as err:
            unavailable.append(str(err))
            continue
        t = time.perf_counter()
        images[kind] = enlarge(network, low)
        seconds[kind] = time.perf_counter() - t
        if NETWORKS[name].note:
            notes.append(NETWORKS[name].note)
    notes += unavailable  # bicubic still shows; each missing network says why and how to train it
    table = []
    for label, image in images.items():
        if label == "original":
            continue
        row = [label]
        if testing:
            psnr_y, ssim_y = y_scores(image, original, factor)
            row += [f"{psnr_y:.2f}", f"{ssim_y:.4f}"]
        else:
            row += ["", ""]
        table.append(row + [f"{seconds[label] * 1000:.0f}"])
    state = Enlargement(images, factor)
    out = images["bicubic"]
    zoom = zoom_crops(state, out.width / 2, out.height / 2)
    size = f"{low.width}×{low.height} → {out.width}×{out.height} pixels"
    if testing:
        lead = (f"**Test**: your photo ({original.width}×{original.height}) was down-sampled ×{factor} (bicubic, "
                f"anti-aliased) to {low.width}×{low.height} and restored; PSNR and SSIM compare each result with your "
                f"original on luma, {factor} border pixels shaved (the SR literature's protocol). Higher is closer.")
    else:
        lead = (f"**Enlarged** {size}. Nothing to score against: choose *{TEST}* to see how close each method gets to "
                f"an original.")
    timing = (f"**Time**: the whole request {(time.perf_counter() - started) * 1000:.0f} ms. Click any result to zoom "
              "all of them on the same spot.")
    notes_text = "\n\n".join([*(f"ℹ️ {n}" for n in notes), lead, timing])
    pixel_image = images.get("pixel loss")
    slider = (images["bicubic"], pixel_image) if pixel_image is not None else None
    return SuperResView(slider, images["bicubic"], pixel_image, images.get("perceptual loss"), zoom, table,
                        notes_text, state, weights_summary(factor))


def enlarge_endpoint(photo, scale="×4", mode=ENLARGE, progress=gr.Progress()):
    """The /enlarge endpoint: bicubic vs the pixel-loss network (slider), the three results, a zoom of their centres,
    a table (PSNR-Y and SSIM-Y in test mode, milliseconds), notes and the weights' Set5 scores."""
    return enlarge_photo(photo, scale, mode, progress).as_tuple()


def zoom_at(state: Enlargement | None, evt: gr.SelectData):
    """A click on any result: every image's same region, enlarged."""
    index = evt.index if isinstance(evt.index, (list, tuple)) and len(evt.index) == 2 else None
    if index is None:
        return gr.skip()
    return zoom_crops(state, float(index[0]), float(index[1]))


def kernel_figure(random_kernels, icnr_kernels):
    """The four sub-kernels of one output channel: random (top) and ICNR (bottom), on one colour scale."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.3), layout="constrained")
    axes = fig.subplots(2, 4)
    limit = float(np.abs(np.concatenate([random_kernels.ravel(), icnr_kernels.ravel()])).max())
    for row, (kernels, name) in enumerate(((random_kernels, "random"), (icnr_kernels, "ICNR"))):
        for k in range(4):
            ax = axes[row, k]
            ax.imshow(kernels[k], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{name}: sub-pixel ({k // 2}, {k % 2})", fontsize=8)
    fig.suptitle("3×3 sub-kernels that make one output channel's four sub-pixels", fontsize=9)
    return fig


CHECKER_SIDE = 96  # the photo's central square the layer runs on (its 2x output is shown enlarged)


def checkerboard_demo(photo, seed=0):
    """The /checkerboard endpoint: a fresh x2 sub-pixel layer's output with random and with ICNR initialisation,
    the sub-kernels drawn, and a note with each output's checkerboard strength."""
    from PIL import Image

    from dl_core.images import BadImage, load_rgb
    from dl_core.superres.infer import checkerboard

    notes: list[str] = []
    try:
        seed = int(checked_number(seed, "seed", 0, 9999, notes))
        if photo is None:
            photo = bundled_photos()[0]
            notes.append("No photo given: using a sample.")
        image = load_rgb(photo, max_side=1024).image
    except (InvalidSetting, BadImage) as err:
        return None, None, None, f"⚠️ {err}"
    side = min(CHECKER_SIDE, *image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    demo = checkerboard(image.crop((left, top, left + side, top + side)), seed)

    def show(array):
        big = Image.fromarray((array * 255 + 0.5).astype("uint8"))
        return big.resize((big.width * 2, big.height * 2), Image.Resampling.NEAREST)

    text = (f"Checkerboard strength (how much the 4 pixels of each 2×2 cell differ, relative to the whole image): "
            f"random **{demo.random_artefact:.2f}**, ICNR **{demo.icnr_artefact:.2f}**. The central {side}×{side} px of "
            f"your photo went through one freshly initialised sub-pixel layer (3×3 conv to 12 channels, "
            f"PixelShuffle(2)); seed {seed}. Training starts from this: with ICNR it has nothing to unlearn.")
    return show(demo.random_output), show(demo.icnr_output), kernel_figure(demo.random_kernels, demo.icnr_kernels), \
        "\n\n".join([*(f"ℹ️ {n}" for n in notes), text])


# --- layout and wiring ---------------------------------------------------------------------------------------------
def build() -> None:
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                photo = ImageFile(type="filepath", label="Photo", sources=["upload", "clipboard"], elem_id="superres-input",
                                  height=280)
                with gr.Column(min_width=220):
                    scale = RawRadio(list(SCALE_CHOICES), value="×4", label="scale", elem_id="superres-scale")
                    mode = RawRadio(list(MODES), value=TEST, label="mode", elem_id="superres-mode")
                    button = gr.Button("Enlarge", variant="primary", elem_id="superres-button")
            samples = benchmark_samples()
            if samples:
                gr.Examples([[p] for p in samples], inputs=[photo], cache_examples=False, api_visibility="private",
                            label="Set5 / Set14 benchmark images (never trained on)")
            gr.Examples([[p] for p in bundled_photos()], inputs=[photo], cache_examples=False, api_visibility="private",
                        label="Sample photos (see samples/README.md)")
            notes = gr.Markdown(elem_id="superres-notes")
            slider = gr.ImageSlider(label="bicubic ⟷ pixel-loss network (drag)", type="pil", interactive=False,
                                    elem_id="superres-slider", max_height=420)
            with gr.Row():
                bicubic = gr.Image(label="bicubic", type="pil", interactive=False, elem_id="superres-bicubic", height=240)
                pixel = gr.Image(label="pixel loss (L1)", type="pil", interactive=False, elem_id="superres-pixel", height=240)
                perceptual = gr.Image(label="perceptual loss", type="pil", interactive=False, elem_id="superres-perceptual",
                                      height=240)
            zoom = gr.Gallery(label=f"the same {ZOOM_SIDE}×{ZOOM_SIDE} px, ×{ZOOM_FACTOR} (click a result to move)",
                              columns=4, height=300, object_fit="contain", elem_id="superres-zoom")
            table = gr.Dataframe(headers=["method", "PSNR-Y (dB)", "SSIM-Y", "ms"], label="scores", interactive=False,
                                 elem_id="superres-table")
            with gr.Accordion("Checkerboard: a fresh sub-pixel layer with and without ICNR", open=False):
                with gr.Row():
                    seed = RawSlider(0, 9999, value=0, step=1, label="initialisation seed")
                    checker_button = gr.Button("Run a fresh layer on the photo", elem_id="superres-checker-button")
                with gr.Row():
                    random_out = gr.Image(label="random init: checkerboard", type="pil", interactive=False, height=260)
                    icnr_out = gr.Image(label="ICNR init: none", type="pil", interactive=False, height=260)
                kernels = gr.Plot(label="sub-kernels", show_label=False)
                checker_notes = gr.Markdown(elem_id="superres-checker-notes")
        with gr.Column(scale=2, min_width=280):
            gr.Markdown(EXPLANATION, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                       {"left": "$", "right": "$", "display": False}])
            about = gr.Markdown(elem_id="superres-about")
    state = gr.State(None)

    inputs = [photo, scale, mode]
    outputs = [slider, bicubic, pixel, perceptual, zoom, table, notes, state, about]
    button.click(enlarge_endpoint, inputs, outputs, api_name="enlarge", concurrency_id="cpu")
    photo.change(enlarge_endpoint, inputs, outputs, api_visibility="private", concurrency_id="cpu",
                 trigger_mode="always_last")
    for image in (bicubic, pixel, perceptual):
        image.select(zoom_at, state, zoom, api_visibility="private")
    checker_button.click(checkerboard_demo, [photo, seed], [random_out, icnr_out, kernels, checker_notes],
                         api_name="checkerboard", concurrency_id="cpu")


if __name__ == "__main__":
    import sys

    from demos.common import launch_alone

    launch_alone(sys.modules[__name__])
