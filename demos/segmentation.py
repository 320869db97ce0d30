"""Lesson 14 tab: street scenes segmented by a U-Net, side by side with the same encoder under the lesson's
skip-free up-sampling head.

Pure handlers first (testable without a server), then the layout, then the wiring.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from demos.common import (ImageFile, InvalidSetting, LazyModel, ModelUnavailable, RawRadio, RawSlider, bundled_photos,
                          checked_number, folder_metrics)
from dl_core.paths import data_path
from dl_core.segmentation import CAMVID_CLASSES

ID = "segmentation"
TITLE = "Lesson 14 · Segmentation"
EXPLANATION = Path(__file__).with_suffix(".md").read_text(encoding="utf-8")
MAX_SIDE = 1024  # uploads are downscaled to this first; the mask is drawn at this size
ALL = "all classes"
DEFAULT_OPACITY = 0.55
# One bright colour per CamVid class (CamVid's own palette is dark: its grey sky would vanish over a grey sky).
COLOURS = ["#4fc3f7", "#e53935", "#fdd835", "#8e24aa", "#fb8c00", "#43a047", "#ff4081", "#a1887f", "#1e88e5", "#ffee58",
           "#00e5ff"]
TABLE_HEADERS = ["class", "U-Net: share of pixels", "U-Net: mean confidence", "no skips: share of pixels"]
UNET_COMMAND = "python train/segment.py train --out weights/segmentation --mixed-precision bf16   # see its model card"
PLAIN_COMMAND = ("python train/segment.py train --decoder upsample --out weights/segmentation-noskip "
                 "--mixed-precision bf16")


def _load(folder: str):
    from dl_core.segmentation.infer import load_segmenter  # torch loads with the first request, not with the app

    return load_segmenter(folder)


def _check(model) -> None:
    """One small forward pass: a config.json edited to no longer fit the weights fails here, once, explained."""
    import torch

    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 64))
    if out.shape != (1, len(model.config.classes), 64, 64):
        raise ValueError(f"the network gives {out.shape[1]} class maps for {len(model.config.classes)} classes")


def _fast(model):
    from dl_core.fast import speed_up_convnet

    model.encoder.fold_batchnorm()  # a loaded model is only ever run for inference here
    return speed_up_convnet(model, compile=False)  # bf16 + channels_last; compiling measured no faster here


UNET = LazyModel("segmentation", _load, UNET_COMMAND, check=_check, prepare=_fast)
PLAIN = LazyModel("segmentation-noskip", _load, PLAIN_COMMAND, check=_check, prepare=_fast)


def camvid_samples(n: int = 6) -> list[str]:
    """CamVid validation photos spread over the sequence, where the data root has them (never copied here)."""
    folder = data_path("segmentation", "camvid", "val")
    photos = sorted(folder.glob("*.jpg")) + sorted(folder.glob("*.png")) if folder.is_dir() else []
    return [str(p) for p in photos[:: max(1, len(photos) // n)][:n]]


# --- pure handlers ---------------------------------------------------------------------------------------------
@dataclass
class SegmentationView:
    unet: tuple | None  # (photo, [(mask, label), ...]) for gr.AnnotatedImage
    plain: tuple | None  # the same for the skip-free network, or None
    confidence: object | None  # PIL heat map of the U-Net's confidence
    table: list[list]
    notes: str
    about: str = ""
    colours: dict | None = None  # label -> colour, for both AnnotatedImages

    def as_tuple(self):
        return (gr.AnnotatedImage(self.unet, color_map=self.colours), gr.AnnotatedImage(self.plain, color_map=self.colours),
                self.confidence, self.table, self.notes, self.about)


def _empty(notes: str) -> SegmentationView:
    return SegmentationView(None, None, None, [], notes)


def _run(network, photo):
    """(loaded photo, its segmentation by `network`)."""
    from dl_core.images import load_rgb
    from dl_core.segmentation.infer import segment

    loaded = load_rgb(photo, max_side=MAX_SIDE)
    return loaded, segment(network, loaded.image)


@functools.lru_cache(maxsize=8)
def _run_on_file(network, path: str, stamp: tuple):
    """_run, remembered: a change of opacity, class shown or comparison redraws without running the network again.
    `stamp` (mtime, size) makes an edited file a new key."""
    return _run(network, path)


def segment_file(model: LazyModel, photo):
    """The network's segmentation of a file path (remembered), or of anything else load_rgb takes."""
    network = model.get()
    if isinstance(photo, str) and Path(photo).is_file():
        stat = Path(photo).stat()
        return _run_on_file(network, photo, (stat.st_mtime_ns, stat.st_size))
    return _run(network, photo)


def annotations(labels, shares, classes: list[str], opacity: float, shown: str) -> tuple[list, dict]:
    """One mask per class present (only `shown`'s unless ALL), its value the opacity; and label -> colour. A label
    carries the class's share of the pixels, so the legend lists the shares too."""
    import numpy as np

    masks, colours = [], {}
    for c, name in enumerate(classes):
        if shares[c] == 0 or (shown != ALL and name != shown):
            continue
        label = f"{name} {shares[c]:.1%}"
        masks.append(((labels == c).astype(np.float32) * opacity, label))
        colours[label] = COLOURS[c % len(COLOURS)]
    return masks, colours


def confidence_picture(confidence):
    """The network's probability for its chosen class at every pixel, as a heat map (dark = unsure)."""
    import numpy as np
    from matplotlib import colormaps
    from PIL import Image

    rgba = colormaps["magma"](np.clip(confidence, 0, 1))
    return Image.fromarray((rgba[..., :3] * 255).astype(np.uint8))


def _class_name(label: str, classes: list[str]) -> str | None:
    """The class a legend label ("Road 34.1%") names."""
    return next((name for name in classes if label == name or label.startswith(f"{name} ")), None)


@functools.cache
def weights_summary(unet_folder: str, plain_folder: str | None) -> str:
    """The validation scores of the loaded weights (their metrics.json), for the panel."""
    scores = [(name, folder_metrics(folder).get("valid", {})) for name, folder in (("U-Net", unet_folder),
                                                                                  ("no skips", plain_folder)) if folder]
    parts = [f"{name}: mIoU **{v['miou']:.3f}**, pixel accuracy {v['pixel_acc']:.1%} ({v['n']} photos)"
             for name, v in scores if {"miou", "pixel_acc", "n"} <= set(v)]
    if not parts:
        return ""
    return "**These weights** on CamVid validation photos (never trained on): " + "; ".join(parts) + "."


def segment_photo(photo, opacity=DEFAULT_OPACITY, shown=ALL, compare=True, progress=None) -> SegmentationView:
    """Segment an uploaded file with the U-Net (and the skip-free network when `compare`); every problem becomes a
    note, never an exception."""
    import numpy as np

    from dl_core.images import BadImage

    started = time.perf_counter()
    notes: list[str] = []
    try:
        opacity = checked_number(opacity, "opacity", 0.0, 1.0, notes)
        if not isinstance(compare, bool):
            raise InvalidSetting(f"*compare* must be true or false, not {type(compare).__name__}.")
        if shown != ALL and shown not in CAMVID_CLASSES:
            raise InvalidSetting(f"*class shown* must be '{ALL}' or one of the classes: {', '.join(CAMVID_CLASSES)}.")
    except InvalidSetting as err:
        return _empty(f"⚠️ {err}")
    if progress is not None:
        progress(0.1, desc="Segmenting (the first request also loads the networks)…")
    try:
        loaded, seg = segment_file(UNET, photo)
    except BadImage as err:
        return _empty(f"⚠️ {err}")
    except ModelUnavailable as err:
        return _empty(str(err))
    model = UNET.get()
    classes = list(model.config.classes)
    if shown != ALL and shown not in classes:
        notes.append(f"These weights have no class '{shown}': showing all classes.")
        shown = ALL
    image, notes = loaded.image, [*loaded.notes, *notes]
    shares = seg.shares(len(classes))
    masks, colours = annotations(seg.labels, shares, classes, opacity, shown)
    plain_view, plain_shares, plain_seconds = None, None, None
    if compare:
        if progress is not None:
            progress(0.6, desc="Segmenting without skip connections…")
        try:
            _, plain = segment_file(PLAIN, photo)
            plain_shares, plain_seconds = plain.shares(len(classes)), plain.seconds
            plain_masks, plain_colours = annotations(plain.labels, plain_shares, classes, opacity, shown)
            plain_view = (image, plain_masks)
            colours |= plain_colours
        except ModelUnavailable as err:
            notes.append(f"The skip-free network is unavailable, so there is nothing to compare with. {err}")
    # each class's mean confidence over its pixels, in one pass (shown only for classes with pixels)
    confident = np.bincount(seg.labels.ravel(), weights=seg.confidence.ravel(), minlength=len(classes))[:len(classes)]
    confident = confident / np.maximum(shares * seg.labels.size, 1)
    table = [[name, f"{shares[c]:.1%}", "" if shares[c] == 0 else f"{confident[c]:.2f}",
              "" if plain_shares is None else f"{plain_shares[c]:.1%}"] for c, name in enumerate(classes)]
    work_h, work_w = seg.working_size
    train_h, train_w = model.config.image_size
    resolution = (f"**Resolution**: the networks work at {work_w}×{work_h} pixels (as many pixels as their {train_w}×"
                  f"{train_h} training photos, in your photo's shape); the masks are resized back to the photo's "
                  f"{image.width}×{image.height}.")
    if (work_h, work_w) != (image.height, image.width):
        scale = work_w / image.width
        resolution += (f" Detail finer than {1 / scale:.1f} photo pixels is below what the network sees."
                       if scale < 1 else " The photo was enlarged for the network: it adds no detail.")
    if UNET.note:
        notes.append(UNET.note)
    timing = f"**Time**: U-Net {seg.seconds * 1000:.0f} ms"
    if plain_seconds is not None:
        timing += f", no-skip network {plain_seconds * 1000:.0f} ms"
    timing += f"; the whole request {(time.perf_counter() - started) * 1000:.0f} ms (a repeat of the same photo reuses them)."
    note_text = "\n\n".join([*(f"ℹ️ {n}" for n in notes), resolution, timing])
    about = weights_summary(UNET.source.location, PLAIN.source.location if PLAIN.source else None) if UNET.source else ""
    return SegmentationView((image, masks), plain_view, confidence_picture(seg.confidence), table, note_text, about,
                            colours)


def segment_street(photo, opacity=DEFAULT_OPACITY, shown=ALL, compare=True, progress=gr.Progress()):
    """The /segment endpoint: the U-Net's overlay, the skip-free network's (when compare), the confidence map, a
    table of class shares, notes (problems, resolution, time) and the weights' validation scores."""
    return segment_photo(photo, opacity, shown, compare, progress).as_tuple()


def compare_toggled(photo, opacity=DEFAULT_OPACITY, shown=ALL, compare=True, progress=gr.Progress()):
    """The comparison switched on or off: the outputs and the second overlay's visibility in one update, so that
    quick toggles cannot leave a visible column without its picture (or the reverse)."""
    return (*segment_street(photo, opacity, shown, compare, progress), gr.Column(visible=compare is True))


def pick_class(shown: str, evt: gr.SelectData):
    """A click on a legend entry shows that class alone; a second click on it shows all classes again."""
    label = evt.value if isinstance(evt.value, str) else ""
    name = _class_name(label, CAMVID_CLASSES)
    if name is None or name == shown:
        return ALL
    return name


# --- layout and wiring ---------------------------------------------------------------------------------------------
def build() -> None:
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                photo = ImageFile(type="filepath", label="Street photo", sources=["upload", "clipboard"],
                                  elem_id="segmentation-input", height=300)
                with gr.Column(min_width=220):
                    opacity = RawSlider(0, 1, value=DEFAULT_OPACITY, step=0.05, label="mask opacity")
                    shown = RawRadio([ALL, *CAMVID_CLASSES], value=ALL, label="class shown (or click the legend)",
                                     elem_id="segmentation-class")
                    compare = gr.Checkbox(value=True, label="compare with the same encoder without skip connections",
                                          elem_id="segmentation-compare")
                    button = gr.Button("Segment", variant="primary", elem_id="segmentation-button")
            samples = camvid_samples()
            if samples:
                gr.Examples([[p] for p in samples], inputs=[photo], cache_examples=False, api_visibility="private",
                            label="CamVid validation photos (never trained on)")
            gr.Examples([[p] for p in bundled_photos()], inputs=[photo], cache_examples=False, api_visibility="private",
                        label="Not street scenes (see samples/README.md): what does a street-scene model make of them?")
            notes = gr.Markdown(elem_id="segmentation-notes")
            with gr.Row():
                with gr.Column(min_width=260):
                    gr.Markdown("**U-Net** (skip connections): click a class in the legend to show it alone")
                    unet = gr.AnnotatedImage(show_label=False, label="U-Net", elem_id="segmentation-unet")
                with gr.Column(min_width=260, visible=True) as plain_column:
                    gr.Markdown("**No skip connections** (the lesson's up-sampling head, same encoder)")
                    plain = gr.AnnotatedImage(show_label=False, label="no skip connections", elem_id="segmentation-plain")
            gr.Markdown("**Confidence** of the U-Net in the class it chose (dark = unsure: edges, small and rare things)")
            confidence = gr.Image(show_label=False, label="confidence", type="pil", interactive=False, height=300)
            table = gr.Dataframe(headers=TABLE_HEADERS, label="class shares", interactive=False, elem_id="segmentation-table")
        with gr.Column(scale=2, min_width=280):
            gr.Markdown(EXPLANATION, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                       {"left": "$", "right": "$", "display": False}])
            about = gr.Markdown(elem_id="segmentation-about")

    inputs, outputs = [photo, opacity, shown, compare], [unet, plain, confidence, table, notes, about]
    button.click(segment_street, inputs, outputs, api_name="segment", concurrency_id="cpu")
    for control in (photo, opacity, shown):  # a new photo, or a redraw of the cached segmentation
        control.change(segment_street, inputs, outputs, api_visibility="private", concurrency_id="cpu",
                       trigger_mode="always_last")
    compare.change(compare_toggled, inputs, [*outputs, plain_column], api_visibility="private", concurrency_id="cpu",
                   trigger_mode="always_last")
    unet.select(pick_class, shown, shown, api_visibility="private")
    plain.select(pick_class, shown, shown, api_visibility="private")


if __name__ == "__main__":
    import sys

    from demos.common import launch_alone

    launch_alone(sys.modules[__name__])
