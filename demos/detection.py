"""Lessons 8-9 tab: SSD detection with anchors, focal loss and NMS, next to the lesson-8 largest-object head.

Pure handlers first (testable without a server), then the layout, then the wiring.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from demos.common import (ImageFile, LazyModel, ModelUnavailable, RawRadio, RawSlider, bundled_photos, compile_note,
                          folder_metrics)
from dl_core.paths import data_path

ID = "detection"
TITLE = "Lessons 8–9 · Detection"
EXPLANATION = Path(__file__).with_suffix(".md").read_text(encoding="utf-8")
MAX_SIDE = 1024  # uploads are downscaled to this before anything else (the model itself sees 224 px)
GRID_CHOICES = ["none", "4×4", "2×2", "1×1"]
COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]
# The controls' ranges and defaults: the sliders show them, and the handlers refuse anything else (the API
# lets a script send any JSON value, NaN included).
SCORE_RANGE, IOU_RANGE, GAMMA_RANGE = (0.05, 0.95), (0.1, 0.9), (0.0, 5.0)
DEFAULT_SCORE, DEFAULT_IOU, DEFAULT_NMS, DEFAULT_GRID, DEFAULT_GAMMA = 0.3, 0.45, True, "4×4", 2.0
TABLE_HEADERS = ["class", "score", "grid", "box x1 y1 x2 y2"]
RESTORE_HINT = ("config.json no longer fits model.safetensors: put back the config.json these weights were trained "
                "with (in a clone: git checkout -- weights/detection/config.json), or retrain with the new settings.")


class ConfigMismatch(ValueError):
    """The weight folder's config.json and its weights disagree; the message says what and how to fix it."""


def _one_line(err: Exception, limit: int) -> str:
    """An error's text for the tab's explanation, which quotes it inside a code span: one line, no backticks."""
    return " ".join(str(err).replace("`", "'").split())[:limit]


def _load_detector(folder: str):
    from dl_core.detection.infer import load_detector  # torch and the model load with the first request, not the app

    try:
        return load_detector(folder)
    except FileNotFoundError:
        raise
    except (ValueError, TypeError, RuntimeError) as err:  # a bad key, a grid check, a shape the weights lack
        raise ConfigMismatch(f"{_one_line(err, 200)} — {RESTORE_HINT}") from err


def check_detector(model) -> None:
    """Run once on freshly loaded weights: cheap config checks, then one dummy forward pass, so a config.json
    that still loads but no longer fits the weights (an edited image_size, zooms, classes...) is explained
    once, in the tab, instead of failing every request."""
    import torch

    cfg = model.config
    problems = []
    if not cfg.classes or not all(isinstance(c, str) and c.strip() for c in cfg.classes):
        problems.append("'classes' must be a non-empty list of names")
    elif len(set(cfg.classes)) != len(cfg.classes):
        problems.append("'classes' names a class twice")
    if not isinstance(cfg.image_size, int) or not 32 <= cfg.image_size <= 1024:
        problems.append(f"'image_size' must be a whole number of pixels from 32 to 1024, not {cfg.image_size!r}")
    if not all(isinstance(z, (int, float)) and math.isfinite(z) and z > 0 for z in cfg.zooms):
        problems.append("'zooms' must be positive numbers")
    if not all(len(r) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in r)
               for r in cfg.ratios):
        problems.append("'ratios' must be pairs of positive numbers")
    if problems:
        raise ConfigMismatch("config.json: " + "; ".join(problems) + ". " + RESTORE_HINT)
    side = cfg.image_size
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, 3, side, side))
    except RuntimeError as err:
        raise ConfigMismatch(f"a test forward pass at {side} px failed ({_one_line(err, 160)}). {RESTORE_HINT}") from err
    n_classes = len(cfg.classes)
    expected = {"class_logits": (1, cfg.n_anchors, n_classes), "box_acts": (1, cfg.n_anchors, 4),
                "largest": (1, 4 + n_classes)}
    for key, shape in expected.items():
        if tuple(out[key].shape) != shape:
            raise ConfigMismatch(f"the head's '{key}' came out {tuple(out[key].shape)}, but config.json's grids, "
                                 f"zooms and ratios lay out {shape}. {RESTORE_HINT}")


def _fast(model):
    from dl_core.backbones import EfficientNetLite0Features
    from dl_core.fast import speed_up_convnet

    if isinstance(model.backbone, EfficientNetLite0Features):  # frozen at inference: its batch norms become weights
        model.backbone.net.fold_batchnorm()
    return speed_up_convnet(model)  # photos are squashed to one input size: compiled once, its weights frozen in


MODEL = LazyModel("detection", _load_detector, "python train/detect.py train --compare-bce --out weights/detection",
                  check=check_detector, prepare=_fast)


def held_out_raccoon_photos(n: int = 6) -> list[str]:
    """The held-out raccoon test photos under the data root (DL_DATA_DIR), when it has them: they are not
    copied into the repository."""
    raccoon = data_path("detection", "raccoon")
    test_csv = raccoon / "test_labels.csv"
    if not test_csv.is_file():
        return []
    from dl_core.detection.data import read_split_csv

    photos = [raccoon / "images" / name for name in sorted(read_split_csv(test_csv))]
    return [str(photo) for photo in photos if photo.is_file()][:n]


def example_sets() -> list[tuple[str, list[str]]]:
    """(label, photos) for each row of examples: the committed photos always, the raccoons when the data is here."""
    sets = []
    raccoons = held_out_raccoon_photos()
    if raccoons:
        sets.append(("Held-out raccoon photos (test split, never seen in training)", raccoons))
    sets.append(("Photos with no raccoon in them (public domain, see samples/README.md): what does a raccoon "
                 "detector make of a cat or an astronaut?", bundled_photos()))
    return sets


# --- pure handlers -------------------------------------------------------------------------------------
class BadSetting(ValueError):
    """A control's value (sent by the UI or a script) that the tab cannot use; the message is for the user."""


def _shown(value) -> str:
    """A value as the message quotes it, without echoing arbitrary user text into Markdown."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return "NaN" if value != value else f"{value:g}"
    return "text" if isinstance(value, str) else f"a {type(value).__name__}"


def valid_number(value, name: str, bounds: tuple[float, float]) -> float:
    """`value` as a float inside `bounds`, or BadSetting saying what was wrong."""
    low, high = bounds
    problem = f"The {name} must be a number from {low:g} to {high:g}; it got {_shown(value)}."
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadSetting(problem)
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise BadSetting(problem) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise BadSetting(problem)
    return number


def valid_settings(score_threshold, nms_iou_threshold, use_nms, anchor_grid) -> tuple[float, float, bool, str]:
    score = valid_number(score_threshold, "score threshold", SCORE_RANGE)
    iou = valid_number(nms_iou_threshold, "NMS IoU threshold", IOU_RANGE)
    if not isinstance(use_nms, bool):
        raise BadSetting(f"use_nms must be true or false; it got {_shown(use_nms)}.")
    if anchor_grid not in GRID_CHOICES:
        raise BadSetting(f"The anchor grid must be one of {', '.join(GRID_CHOICES)}; it got {_shown(anchor_grid)}.")
    return score, iou, use_nms, anchor_grid


@dataclass
class DetectionView:
    ssd: tuple | None  # (image, [((x1, y1, x2, y2), label), ...]) for gr.AnnotatedImage
    largest: tuple | None  # the lesson-8 head's single box, same format
    anchors: object | None  # PIL image with the anchor grid and the anchors behind each detection
    table: list[list]  # class, score, grid, box
    notes: str
    about: str = ""  # what the loaded weights know and score on held-out data

    def as_tuple(self):
        return self.ssd, self.largest, self.anchors, self.table, self.notes, self.about


def _empty(notes: str) -> DetectionView:
    return DetectionView(None, None, None, [], notes)


@functools.cache  # read once per weight folder, like the model itself
def weights_summary(folder: str) -> str:
    """The held-out scores in the metrics.json beside the weights, as a line for the panel ('' without one)."""
    try:
        parts = [f"mAP at IoU 0.5 **{m['map50']:.2f}** (averaged over IoU 0.5–0.95: {m['map']:.2f}) on "
                 f"{name.replace('_', ' ')}, {m['n']} images"
                 for name, m in folder_metrics(folder)["focal"].items()]
    except (KeyError, TypeError, ValueError, AttributeError):
        return ""
    return "**These weights**, on images held out from their training: " + "; ".join(parts) + "."


def classes_summary(classes: list[str]) -> str:
    return (f"**The classes it knows** ({len(classes)}): {', '.join(classes)}. Anything else gets the nearest of "
            "these, or nothing.")


def grid_of(anchor: int, slices: dict[str, slice]) -> str:
    """The name of the grid an anchor index belongs to."""
    return next((name for name, part in slices.items() if part.start <= anchor < part.stop), "?")


def draw_anchors(image, anchors_cxcywh, grid_slices: dict[str, slice], grid: str, used: list[tuple[int, str]]):
    """Draw one grid's anchor cells (faint) and the anchors that produced each detection (bold, coloured)."""
    import torch
    from PIL import ImageDraw

    from dl_core.detection.model import centres_to_corners

    canvas = image.copy()
    draw = ImageDraw.Draw(canvas, "RGBA")
    w, h = canvas.size
    corners = centres_to_corners(anchors_cxcywh) * torch.tensor([w, h, w, h])
    if grid in grid_slices:
        part = grid_slices[grid]
        for i in range(part.start, part.stop):
            draw.rectangle(corners[i].tolist(), outline=(255, 255, 255, 90), width=1)
        side = int(grid.split("×")[0])
        for j in range(side):  # cell centres
            for i in range(side):
                cx, cy = (i + 0.5) * w / side, (j + 0.5) * h / side
                draw.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=(255, 255, 0, 200))
    for n, (anchor, label) in enumerate(used):
        colour = COLOURS[n % len(COLOURS)]
        draw.rectangle(corners[anchor].tolist(), outline=colour, width=3)
        x1, y1 = corners[anchor][:2].tolist()
        draw.text((x1 + 3, y1 + 2), f"anchor {anchor} → {label}", fill=colour)
    return canvas


def detect(photo, score_threshold=DEFAULT_SCORE, nms_iou_threshold=DEFAULT_IOU, use_nms=DEFAULT_NMS,
           anchor_grid=DEFAULT_GRID, progress=None) -> DetectionView:
    """Detect objects in an uploaded file; every problem becomes a note, never an exception."""
    from dl_core.detection.infer import detect_photo, grid_slices
    from dl_core.images import BadImage, load_rgb

    started = time.perf_counter()
    try:
        score_threshold, nms_iou_threshold, use_nms, anchor_grid = valid_settings(
            score_threshold, nms_iou_threshold, use_nms, anchor_grid)
        loaded = load_rgb(photo, max_side=MAX_SIDE)
    except (BadSetting, BadImage) as err:
        return _empty(f"⚠️ {err}")
    if progress is not None:
        progress(0.1, desc="Loading the detector (first request only)…")
    try:
        model = MODEL.get()
    except ModelUnavailable as err:
        return _empty(str(err))
    loaded_at = time.perf_counter()
    if progress is not None:
        progress(0.5, desc="Detecting…")
    image, notes = loaded.image, list(loaded.notes)
    if MODEL.note:
        notes.append(MODEL.note)
    cfg = model.config
    det = detect_photo(model, image, score_threshold, nms_iou_threshold, use_nms)
    detected_at = time.perf_counter()
    boxes = [tuple(int(round(v)) for v in b) for b in det.boxes.tolist()]
    labels = [f"{cfg.classes[c]} {s:.2f}" for c, s in zip(det.labels.tolist(), det.scores.tolist())]
    if not boxes:
        notes.append(f"No object scored above {score_threshold:.2f}: lower the score threshold to see weaker guesses.")
    best = int(det.largest_probs.argmax())
    largest = (image, [(tuple(int(round(v)) for v in det.largest_box.tolist()),
                        f"largest: {cfg.classes[best]} {float(det.largest_probs[best]):.2f}")])
    slices = grid_slices(cfg)
    anchors = det.anchor_index.tolist()
    used = [(a, cfg.classes[c]) for a, c in zip(anchors, det.labels.tolist())][:12]
    anchor_view = draw_anchors(image, model.anchors, slices, anchor_grid, used)
    table = [[cfg.classes[c], round(s, 3), grid_of(a, slices), ", ".join(map(str, b))]
             for c, s, a, b in zip(det.labels.tolist(), det.scores.tolist(), anchors, boxes)]
    timing = (f"**Time**, measured on this server for this photo: {detected_at - loaded_at:.2f} s for the detector "
              f"(resize to {cfg.image_size} px, one forward pass, {'NMS' if use_nms else 'no NMS'}), "
              f"{time.perf_counter() - started:.2f} s for the whole request")
    if loaded_at - started >= 0.5:  # this request paid for reading the photo and, the first time, loading the model
        timing += f", of which {loaded_at - started:.1f} s reading the photo and loading the model"
    parts = [*(f"ℹ️ {n}" for n in notes), timing + "."]
    if compiled := compile_note(model):
        parts.append(compiled)
    note_text = "\n\n".join(parts)
    source_summary = weights_summary(MODEL.source.location) if MODEL.source else ""
    about = "\n\n".join(part for part in (classes_summary(list(cfg.classes)), source_summary) if part)
    return DetectionView((image, list(zip(boxes, labels))), largest, anchor_view, table, note_text, about)


def detect_objects(photo, score_threshold=DEFAULT_SCORE, nms_iou_threshold=DEFAULT_IOU, use_nms=DEFAULT_NMS,
                   anchor_grid=DEFAULT_GRID, progress=gr.Progress()):
    """The /detect endpoint: SSD boxes, the lesson-8 largest-object box, the anchors behind each detection, a
    table of detections, notes (problems, measured time) and what the weights know."""
    return detect(photo, score_threshold, nms_iou_threshold, use_nms, anchor_grid, progress).as_tuple()


def focal_figure(gamma: float = DEFAULT_GAMMA, alpha: float = 0.25):
    """Loss against p_t for plain BCE and focal loss with this gamma (Lin et al., figure 1)."""
    import numpy as np
    from matplotlib.figure import Figure

    p = np.linspace(0.01, 1.0, 200)
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    ax.plot(p, -np.log(p), label="BCE  (γ = 0)", color="gray")
    for g in sorted({0.5, 1.0, 2.0, 5.0, float(gamma)}):
        if g == 0:
            continue
        style = dict(linewidth=3, color="tab:red") if math.isclose(g, gamma) else dict(linewidth=1, alpha=0.5)
        ax.plot(p, -((1 - p) ** g) * np.log(p), label=f"focal γ = {g:g}", **style)
    ax.set_title(f"BCE vs focal loss (γ = {gamma:g} in red)", fontsize=10)
    ax.set_xlabel("p_t (probability of the right answer)")
    ax.set_ylabel("loss (before α)")
    ax.set_ylim(0, 5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def focal_loss_plot(gamma=DEFAULT_GAMMA):
    """The /focal_loss_plot endpoint: the curves for one γ; a bad γ is refused with a message."""
    try:
        gamma = valid_number(gamma, "focal loss γ", GAMMA_RANGE)
    except BadSetting as err:
        raise gr.Error(str(err), title="Invalid γ") from None
    return focal_figure(gamma)


# --- layout and wiring ---------------------------------------------------------------------------------
def build() -> None:
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                image = ImageFile(type="filepath", label="Photo", sources=["upload", "clipboard"], elem_id="detection-input", height=320)
                with gr.Column(min_width=200):
                    score = RawSlider(*SCORE_RANGE, value=DEFAULT_SCORE, step=0.05, label="score threshold")
                    iou = RawSlider(*IOU_RANGE, value=DEFAULT_IOU, step=0.05, label="NMS IoU threshold")
                    use_nms = gr.Checkbox(value=DEFAULT_NMS, label="NMS (untick to see the boxes before it)")
                    grid = RawRadio(GRID_CHOICES, value=DEFAULT_GRID, label="anchor grid to draw")
                    button = gr.Button("Detect", variant="primary", elem_id="detection-button")
            for label, photos in example_sets():
                gr.Examples([[p] for p in photos], inputs=[image], cache_examples=False, label=label,
                            api_visibility="private")
            notes = gr.Markdown(label="notes", elem_id="detection-notes")
            # The figures carry no label chip (it would sit on top of the picture): a caption above says what they are.
            with gr.Row():
                with gr.Column(min_width=200):
                    gr.Markdown("**SSD (lesson 9): every object over the threshold**")
                    ssd = gr.AnnotatedImage(label="SSD boxes", show_label=False, elem_id="detection-ssd")
                with gr.Column(min_width=200):
                    gr.Markdown("**Largest object (lesson-8 head): always exactly one box**")
                    largest = gr.AnnotatedImage(label="largest object box", show_label=False)
            gr.Markdown("**Anchors**: the chosen grid's cells (faint) and the anchor behind each detection (bold)")
            anchors = gr.Image(label="anchors", show_label=False, type="pil", interactive=False)
            table = gr.Dataframe(headers=TABLE_HEADERS, label="detections", interactive=False, wrap=True,
                                 column_widths=["24%", "19%", "17%", "40%"], elem_id="detection-table")
        with gr.Column(scale=2, min_width=280):
            gr.Markdown(EXPLANATION, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                       {"left": "$", "right": "$", "display": False}])
            about = gr.Markdown(label="about the weights", elem_id="detection-about")  # filled by a detection
            gamma = RawSlider(*GAMMA_RANGE, value=DEFAULT_GAMMA, step=0.5, label="focal loss γ")
            focal_plot = gr.Plot(value=focal_figure(), label="focal loss curves", show_label=False)

    inputs, outputs = [image, score, iou, use_nms, grid], [ssd, largest, anchors, table, notes, about]
    button.click(detect_objects, inputs, outputs, api_name="detect", concurrency_id="cpu")
    # Re-run when a control changes. `.change` (not `.release`) also fires for a value typed into a slider's number
    # box, and when the box clamps a typed value on leaving it; a drag re-runs on its latest value only
    # (trigger_mode="always_last"), never twice for the same value.
    for control in (score, iou, use_nms, grid, image):  # image: an upload, a paste or a picked example
        control.change(detect_objects, inputs, outputs, api_visibility="private", concurrency_id="cpu",
                       trigger_mode="always_last")
    gamma.change(focal_loss_plot, gamma, focal_plot, api_name="focal_loss_plot", trigger_mode="always_last")


if __name__ == "__main__":
    import sys

    from demos.common import launch_alone

    launch_alone(sys.modules[__name__])
