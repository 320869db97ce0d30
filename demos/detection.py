"""Lessons 8-9 tab: SSD detection with anchors, focal loss and NMS, next to the lesson-8 largest-object head.

Pure handlers first (testable without a server), then the layout, then the wiring.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from demos.common import ImageFile, LazyModel, ModelUnavailable, folder_metrics
from dl_core.paths import data_path

ID = "detection"
TITLE = "Lessons 8–9 · Detection"
EXPLANATION = Path(__file__).with_suffix(".md").read_text(encoding="utf-8")
MAX_SIDE = 1024  # uploads are downscaled to this before anything else (the model itself sees 224 px)
GRID_CHOICES = ["none", "4×4", "2×2", "1×1"]
COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]


def _load_detector(folder: str):
    from dl_core.detection.infer import load_detector  # torch and the model load with the first request, not the app

    return load_detector(folder)


MODEL = LazyModel("detection", _load_detector, "python train/detect.py train --compare-bce --out weights/detection")


def sample_images(n: int = 6) -> list[str]:
    """The held-out raccoon test photos under the data root (DL_DATA_DIR), when it has them: they are not
    copied into the repository."""
    raccoon = data_path("detection", "raccoon")
    test_csv = raccoon / "test_labels.csv"
    if not test_csv.is_file():
        return []
    from dl_core.detection.data import read_split_csv

    photos = [raccoon / "images" / name for name in sorted(read_split_csv(test_csv))]
    return [str(photo) for photo in photos if photo.is_file()][:n]


# --- pure handlers -------------------------------------------------------------------------------------
@dataclass
class DetectionView:
    ssd: tuple | None  # (image, [((x1, y1, x2, y2), label), ...]) for gr.AnnotatedImage
    largest: tuple | None  # the lesson-8 head's single box, same format
    anchors: object | None  # PIL image with the anchor grid and the anchors behind each detection
    table: list[list]  # class, score, box
    notes: str
    about: str = ""  # what the loaded weights score on held-out data (weights_summary)

    def as_tuple(self):
        return self.ssd, self.largest, self.anchors, self.table, self.notes, self.about


def _empty(notes: str) -> DetectionView:
    return DetectionView(None, None, None, [], notes)


@functools.cache  # read once per weight folder, like the model itself
def weights_summary(folder: str) -> str:
    """The held-out scores in the metrics.json beside the weights, as a line for the panel ('' without one)."""
    try:
        parts = [f"mAP@0.5 **{m['map50']:.2f}** (mAP {m['map']:.2f}) on {name.replace('_', ' ')}, {m['n']} images"
                 for name, m in folder_metrics(folder)["focal"].items()]
    except (KeyError, TypeError, ValueError, AttributeError):
        return ""
    return "**These weights**, on images held out from their training: " + "; ".join(parts) + "."


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


def detect(image_path, score_threshold: float = 0.3, iou_threshold: float = 0.45, use_nms: bool = True,
           grid: str = "4×4") -> DetectionView:
    """Detect objects in an uploaded file; every problem becomes a note, never an exception."""
    from dl_core.detection.infer import detect_photo, grid_slices
    from dl_core.images import BadImage, load_rgb

    try:
        loaded = load_rgb(image_path, max_side=MAX_SIDE)
    except BadImage as err:
        return _empty(f"⚠️ {err}")
    try:
        model = MODEL.get()
    except ModelUnavailable as err:
        return _empty(str(err))
    image, notes = loaded.image, list(loaded.notes)
    if MODEL.note:
        notes.append(MODEL.note)
    cfg = model.config
    det = detect_photo(model, image, score_threshold, iou_threshold, use_nms)
    boxes = [tuple(int(round(v)) for v in b) for b in det.boxes.tolist()]
    labels = [f"{cfg.classes[c]} {s:.2f}" for c, s in zip(det.labels.tolist(), det.scores.tolist())]
    if not boxes:
        notes.append(f"No object scored above {score_threshold:.2f}: lower the score threshold to see weaker guesses.")
    best = int(det.largest_probs.argmax())
    largest = (image, [(tuple(int(round(v)) for v in det.largest_box.tolist()),
                        f"largest: {cfg.classes[best]} {float(det.largest_probs[best]):.2f}")])
    used = [(a, cfg.classes[c]) for a, c in zip(det.anchor_index.tolist(), det.labels.tolist())][:12]
    anchor_view = draw_anchors(image, model.anchors, grid_slices(cfg), grid, used)
    table = [[cfg.classes[c], round(s, 3), *b] for c, s, b in zip(det.labels.tolist(), det.scores.tolist(), boxes)]
    note_text = "\n\n".join(f"ℹ️ {n}" for n in notes)
    about = weights_summary(MODEL.source.location) if MODEL.source else ""
    return DetectionView((image, list(zip(boxes, labels))), largest, anchor_view, table, note_text, about)


def focal_figure(gamma: float = 2.0, alpha: float = 0.25):
    """Loss against p_t for plain BCE and focal loss with this gamma (Lin et al., figure 1)."""
    import numpy as np
    from matplotlib.figure import Figure

    p = np.linspace(0.01, 1.0, 200)
    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    ax.plot(p, -np.log(p), label="BCE  (γ = 0)", color="gray")
    for g in sorted({0.5, 1.0, 2.0, 5.0, float(gamma)}):
        if g == 0:
            continue
        style = dict(linewidth=3, color="tab:red") if math.isclose(g, gamma) else dict(linewidth=1, alpha=0.5)
        ax.plot(p, -((1 - p) ** g) * np.log(p), label=f"focal γ = {g:g}", **style)
    ax.set_xlabel("p_t (probability of the right answer)")
    ax.set_ylabel("loss (before α)")
    ax.set_ylim(0, 5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --- layout and wiring ---------------------------------------------------------------------------------
def build() -> None:
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                image = ImageFile(type="filepath", label="Photo", sources=["upload", "clipboard"], elem_id="detection-input", height=320)
                with gr.Column():
                    score = gr.Slider(0.05, 0.95, value=0.3, step=0.05, label="score threshold")
                    iou = gr.Slider(0.1, 0.9, value=0.45, step=0.05, label="NMS IoU threshold")
                    use_nms = gr.Checkbox(value=True, label="NMS (untick to see the boxes before it)")
                    grid = gr.Radio(GRID_CHOICES, value="4×4", label="anchor grid to draw")
                    button = gr.Button("Detect", variant="primary", elem_id="detection-button")
            samples = sample_images()
            if samples:
                gr.Examples([[s] for s in samples], inputs=[image], cache_examples=False, label="held-out raccoon photos")
            notes = gr.Markdown(elem_id="detection-notes")
            with gr.Row():
                ssd = gr.AnnotatedImage(label="SSD (lesson 9): all objects", elem_id="detection-ssd")
                largest = gr.AnnotatedImage(label="Largest object (lesson 8 head)")
            anchors = gr.Image(label="Anchors: the grid, and the anchor behind each detection", type="pil", interactive=False)
            table = gr.Dataframe(headers=["class", "score", "x1", "y1", "x2", "y2"], label="Detections", interactive=False)
        with gr.Column(scale=2):
            gr.Markdown(EXPLANATION, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                       {"left": "$", "right": "$", "display": False}])
            about = gr.Markdown(elem_id="detection-about")  # the loaded weights' held-out scores, after a detection
            gamma = gr.Slider(0, 5, value=2, step=0.5, label="focal loss γ")
            focal_plot = gr.Plot(value=focal_figure(), label="BCE vs focal loss")

    def run(path, s, i, n, g):
        return detect(path, s, i, n, g).as_tuple()

    inputs, outputs = [image, score, iou, use_nms, grid], [ssd, largest, anchors, table, notes, about]
    button.click(run, inputs, outputs, api_name="detect", concurrency_id="cpu")
    for slider in (score, iou):  # re-run live as the controls move
        slider.release(run, inputs, outputs, api_visibility="private", concurrency_id="cpu")
    for toggle in (use_nms, grid):
        toggle.change(run, inputs, outputs, api_visibility="private", concurrency_id="cpu")
    image.upload(run, inputs, outputs, api_visibility="private", concurrency_id="cpu")
    gamma.change(focal_figure, gamma, focal_plot, api_name="focal_loss_plot")


if __name__ == "__main__":
    import sys

    from demos.common import launch_alone

    launch_alone(sys.modules[__name__])
