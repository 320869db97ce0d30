"""Lessons 12-13 tab: a DarkNet trained on CIFAR-10 to try, and a lab where schedules are designed and a small
network trains under them live (plus the LR finder).

Pure handlers first (testable without a server), then the layout, then the wiring.
"""
from __future__ import annotations

import functools
import math
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import gradio as gr

from demos.common import (
    ImageFile,
    InvalidSetting,
    LazyModel,
    ModelUnavailable,
    RawDataframe,
    RawRadio,
    RawSlider,
    StopSignal,
    checked_number,
    compile_note,
    folder_metrics,
)
from dl_core.cifar import LAB_BATCH_SIZE
from dl_core.paths import display_path
from dl_core.schedules import DECAYS, MAX_PHASES, Phase, ScheduleError

ID = "training-lab"
TITLE = "Lessons 12–13 · Training lab"
EXPLANATION = Path(__file__).with_suffix(".md").read_text(encoding="utf-8")
TRAIN_COMMAND = "python train/cifar.py train --out weights/darknet-cifar10 --mixed-precision bf16   # see its model card"

SUBSET_RANGE = (500, 5000)  # training images of a live run (its upper end keeps an epoch to seconds)
DEFAULT_SUBSET = 4000
EPOCH_RANGE = (0.25, 2.0)
KEPT_RUNS = 3  # earlier runs overlaid on the live curves
TABLE_HEADERS = ["epochs", "LR start", "LR end", "LR decay", "momentum start", "momentum end", "momentum decay", "power"]
PRESETS = ("1cycle (lesson 12)", "SGDR (cosine restarts)", "two SGD phases (lesson 13)")
PRESET_LR = (1e-4, 5.0)
DEFAULT_LR = 0.1  # the lab network's LR finder: lowest loss near 0.1 on 4,000 images

def _load_classifier(folder: str):
    from dl_core.cifar.infer import (
        load_classifier,  # torch loads with the first request, not with the app
    )

    return load_classifier(folder)


def _check_classifier(model) -> None:
    """One forward pass on a blank image: a config.json edited to no longer fit the weights fails here, explained."""
    import torch

    with torch.no_grad():
        out = model(torch.zeros(1, 3, model.config.image_size, model.config.image_size))
    if out.shape != (1, len(model.config.classes)):
        raise ValueError(f"the network gives {out.shape[-1]} scores for {len(model.config.classes)} classes")


def _fast(model):
    from dl_core.fast import speed_up_convnet

    return speed_up_convnet(model, methods=("stages",))  # bf16 + torch.compile of what forward and the tab both call


MODEL = LazyModel("darknet-cifar10", _load_classifier, TRAIN_COMMAND, check=_check_classifier, prepare=_fast)


def _notes(notes: list[str]) -> str:
    return "\n\n".join(f"⚠️ {n}" for n in notes)


# --- pure handlers: classify -------------------------------------------------------------------------------------
@dataclass
class ClassifyView:
    label: dict | None  # class -> probability, for gr.Label
    stages: object | None  # PIL picture of the stages' activations
    notes: str

    def as_tuple(self):
        return self.label, self.stages, self.notes


def classify_photo(photo, truth: str | None = None) -> ClassifyView:
    """Top-5 classes of a photo (averaged over it and its mirror image) and what every stage of the network sees."""
    from dl_core.cifar.infer import classify, stage_names, stage_picture
    from dl_core.images import BadImage, load_rgb

    try:
        model = MODEL.get()
        loaded = load_rgb(photo)
    except (ModelUnavailable, BadImage) as err:
        return ClassifyView(None, None, str(err))
    start = time.perf_counter()
    result = classify(model, loaded.image)
    elapsed = 1000 * (time.perf_counter() - start)
    top5 = dict(list(result.probabilities.items())[:5])
    picture = stage_picture(result.network_input, result.stages, stage_names(model))
    side = model.config.image_size
    notes = [f"The network sees the photo's centred square at {side}×{side} px (left of the top row): CIFAR-10's size. "
             f"Classified in {elapsed:.0f} ms (two passes: the image and its mirror), timed just now on this server. "
             f"{compile_note(model)}".rstrip()]
    if truth:
        guess = next(iter(result.probabilities))
        notes.insert(0, f"CIFAR-10 test image, labelled **{truth}**: the network says **{guess}** "
                        f"({'right' if guess == truth else 'wrong'}).")
    notes += [f"⚠️ {n}" for n in loaded.notes]
    if MODEL.note:
        notes.append(f"⚠️ {MODEL.note}")
    return ClassifyView(top5, picture, "\n\n".join(notes))


@functools.lru_cache(maxsize=2)
def _test_split(source: Path):
    from dl_core.cifar.data import read_split

    return read_split(source, "test", mmap=True)


def cifar_zip() -> Path:
    from dl_core.cifar.data import data_root_zip

    return data_root_zip()


def cifar_test_image(index=None) -> tuple[str | None, str | None, str]:
    """A CIFAR-10 test image (random, or number `index`) as a PNG file, its true class, and a note."""
    import random

    from PIL import Image

    if not cifar_zip().is_file():
        return None, None, (f"The CIFAR-10 test images are not on this server ({display_path(cifar_zip())} is absent): "
                            "upload a photo instead.")
    test = _test_split(cifar_zip())
    if index is None:
        index = random.randrange(len(test))
    notes: list[str] = []
    try:
        index = round(checked_number(index, "test image number", 0, len(test) - 1, notes))
    except InvalidSetting as err:
        return None, None, str(err)
    source = cifar_zip().stat()
    path = Path(tempfile.gettempdir()) / f"cifar10-test-{index}-{source.st_size}-{source.st_mtime_ns}.png"
    if not path.is_file():  # written whole under a temporary name, then renamed: a concurrent reader never sees half
        staging = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.png")
        Image.fromarray(test.images[index]).save(staging)
        os.replace(staging, path)
    return str(path), test.classes[int(test.labels[index])], _notes(notes)


def classify_test_image(index=None) -> tuple:
    """Pick a CIFAR-10 test image and classify it: (image path, label, stages, notes)."""
    path, truth, note = cifar_test_image(index)
    if path is None:
        return None, None, None, note
    view = classify_photo(path, truth)
    return path, view.label, view.stages, "\n\n".join(filter(None, [view.notes, note]))


# --- pure handlers: schedule designer ----------------------------------------------------------------------------
def preset_phases(preset: str, lr: float, epochs: float, div: float = 20, pct: float = 20, n_cycles: int = 3,
                  cycle_mult: float = 2) -> list[Phase]:
    from dl_core.schedules import one_cycle_phases, sgdr_phases, two_sgd_phases

    if preset == PRESETS[0]:
        return one_cycle_phases(epochs, lr, div=div, pct=pct)
    if preset == PRESETS[1]:
        cycle_len = epochs / sum(cycle_mult**i for i in range(n_cycles))  # the cycles fill `epochs`
        return sgdr_phases(lr, n_cycles=n_cycles, cycle_len=cycle_len, cycle_mult=cycle_mult)
    if preset == PRESETS[2]:
        return two_sgd_phases(lr, lr / 10, epochs / 3, 2 * epochs / 3)
    raise ScheduleError(f"unknown preset {preset!r}: pick one of {', '.join(PRESETS)}")


def phases_to_rows(plan: list[Phase]) -> list[list]:
    return [[round(p.epochs, 4), p.lr[0], p.lr[1], p.lr_decay, p.momentum[0], p.momentum[1], p.momentum_decay, p.power] for p in plan]


def preset_table(preset, lr=0.1, epochs=1.0, div=20, pct=20, n_cycles=3, cycle_mult=2.0):
    """The phase table of a preset, and a note (an unusable setting is refused with a message)."""
    import pandas as pd

    notes: list[str] = []
    try:
        lr = checked_number(lr, "peak LR", *PRESET_LR, notes)
        epochs = checked_number(epochs, "epochs", 0.25, 100, notes)
        div = checked_number(div, "div", 1, 1000, notes)
        pct = checked_number(pct, "annihilation %", 0, 90, notes)
        n_cycles = round(checked_number(n_cycles, "cycles", 1, 10, notes))
        cycle_mult = checked_number(cycle_mult, "cycle_mult", 1, 4, notes)
        plan = preset_phases(preset, lr, epochs, div, pct, n_cycles, cycle_mult)
    except (InvalidSetting, ScheduleError) as err:
        return gr.skip(), str(err)
    return pd.DataFrame(phases_to_rows(plan), columns=TABLE_HEADERS), _notes(notes)


def _rows(table) -> list[list]:
    """The rows of a phase table as sent: a pandas DataFrame (the UI), or a list of rows or {"data": rows} (the API)."""
    if table is None:
        return []
    if hasattr(table, "values") and hasattr(table, "columns"):
        return table.values.tolist()
    if isinstance(table, dict):
        table = table.get("data", [])
    if not isinstance(table, (list, tuple)):
        raise ScheduleError(f"the phase table must be rows of {len(TABLE_HEADERS)} values, not {type(table).__name__}")
    return list(table)


def _cell(value, what: str, text: bool = False):
    if text:
        if not isinstance(value, str):
            raise ScheduleError(f"{what} must be one of {', '.join(DECAYS)}, not {value!r}")
        return value.strip().lower()
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ScheduleError(f"{what} must be a number, not {value.strip()[:20]!r}") from None
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ScheduleError(f"{what} must be a finite number, not {value!r}")
    return float(value)


def phases_from_table(table) -> list[Phase]:
    """The schedule a phase table describes; ScheduleError saying which row and cell is wrong."""
    from dl_core.schedules import check_phases

    rows = [row for row in _rows(table) if isinstance(row, (list, tuple)) and any(v not in (None, "") for v in row)]
    if len(rows) > MAX_PHASES:
        raise ScheduleError(f"{len(rows)} phases is too many: at most {MAX_PHASES}")
    plan = []
    for i, row in enumerate(rows, 1):
        if len(row) < len(TABLE_HEADERS) - 1:
            raise ScheduleError(f"phase {i}: expected {len(TABLE_HEADERS)} values ({', '.join(TABLE_HEADERS)}), got {len(row)}")
        power = row[7] if len(row) > 7 and row[7] not in (None, "") else 0.9
        cells = [_cell(value, f"phase {i}: {name}", text=name.endswith("decay")) for value, name in zip([*row[:7], power], TABLE_HEADERS)]
        plan.append(Phase(cells[0], (cells[1], cells[2]), (cells[4], cells[5]), cells[3], cells[6], cells[7]))
    check_phases(plan)
    return plan


def iterations_per_epoch(n_train: int) -> int:
    return max(1, n_train // LAB_BATCH_SIZE)  # the lab drops the last partial batch


def schedule_figure(plan: list[Phase], per_epoch: int, title: str = ""):
    """LR and momentum against iterations, the values dl_core.schedules applies (`sample`), phase boundaries dashed."""
    from matplotlib.figure import Figure

    from dl_core.schedules import phase_schedules, sample, total_epochs

    lr, momentum = phase_schedules(plan)
    epochs = total_epochs(plan)
    n_iter = max(2, round(epochs * per_epoch))
    fig = Figure(figsize=(6.4, 3.0))
    ax = fig.subplots()
    ax.plot(sample(lr, n_iter), color="tab:blue", linewidth=2)
    ax.set_xlabel(f"iteration ({per_epoch} per epoch)")
    ax.set_ylabel("learning rate", color="tab:blue")
    twin = ax.twinx()
    twin.plot(sample(momentum, n_iter), color="tab:orange", linewidth=1.5)
    twin.set_ylabel("momentum", color="tab:orange")
    boundary = 0.0
    for phase in plan[:-1]:
        boundary += phase.epochs
        ax.axvline(boundary / epochs * n_iter, color="gray", linestyle="--", linewidth=0.8)
    ax.set_title(title or f"{len(plan)} phase{'s' * (len(plan) > 1)}, {epochs:g} epoch{'s' * (epochs != 1)}", fontsize=10)
    fig.tight_layout()
    return fig


def design_schedule(table, n_train=DEFAULT_SUBSET):
    """The plot of a phase table's schedule and a note; a table that cannot be trained with gets the reason."""
    notes: list[str] = []
    try:
        n_train = round(checked_number(n_train, "training images", *SUBSET_RANGE, notes))
        plan = phases_from_table(table)
    except (InvalidSetting, ScheduleError) as err:
        return None, f"⚠️ {err}"
    from dl_core.schedules import total_epochs

    if total_epochs(plan) > EPOCH_RANGE[1]:
        notes.append(f"A live run lasts at most {EPOCH_RANGE[1]:g} epochs: it plays this {total_epochs(plan):g}-epoch "
                     f"schedule's shape over the epochs you choose.")
    return schedule_figure(plan, iterations_per_epoch(n_train)), _notes(notes)


# --- pure handlers: live training and LR finder --------------------------------------------------------------------
class LabDataUnavailable(Exception):
    """CIFAR-10 is neither on this server nor downloadable; the message says so."""


def _cifar_source() -> Path:
    from dl_core.cifar.data import find_cifar10

    try:
        return find_cifar10(None, download_to="data/cifar10")
    except OSError as err:  # offline, refused, timed out, disk full
        raise LabDataUnavailable(
            f"CIFAR-10 is not on this server ({display_path(cifar_zip())} is absent) and downloading the lesson's copy "
            f"from fast.ai failed ({type(err).__name__}: {str(err)[:120]}). Live training needs it; classifying "
            f"a photo still works.") from None


def lab_data(n_train: int):
    from dl_core.cifar import lab
    from dl_core.cifar.data import read_split

    source = _cifar_source()
    return lab.lab_data(read_split(source, "train", mmap=True), read_split(source, "test", mmap=True), n_train)


def _smoothed(values: list[float], beta: float = 0.9) -> list[float]:
    """Bias-corrected exponential moving average: per-batch losses are too noisy to compare runs by eye."""
    out, avg = [], 0.0
    for i, v in enumerate(values, 1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta**i))
    return out


def _run_label(plan: list[Phase], number: int) -> str:
    peak = max(max(p.lr) for p in plan)
    return f"run {number} ({len(plan)} phase{'s' * (len(plan) > 1)}, peak LR {peak:g})"


def curves(runs: list[dict]):
    """(loss, accuracy) DataFrames of the kept runs, for the overlaid line plots (None while one has no point)."""
    import pandas as pd

    loss = [{"iteration": i, "loss": v, "run": r["label"]} for r in runs for i, v in zip(r["iterations"], r["losses"])]
    accuracy = [{"iteration": i, "accuracy": v, "run": r["label"]} for r in runs for i, v in zip(r["eval_iterations"], r["accuracies"])]
    # None, not an empty frame, until there is a point: a plot first drawn without data never shows its lines
    return (pd.DataFrame(loss) if loss else None, pd.DataFrame(accuracy) if accuracy else None)


def train_live(table, n_train=DEFAULT_SUBSET, epochs=1.0, runs: list[dict] | None = None,
               stop: StopSignal | None = None) -> Iterator[tuple]:
    """Train the lab's small DarkNet under the table's schedule; yields (loss curves, accuracy curves, status, runs)
    twice a second, the earlier runs overlaid."""
    from dl_core.cifar.lab import live_train

    runs = list(runs or [])[-KEPT_RUNS:]
    unchanged = (gr.skip(), gr.skip())
    notes: list[str] = []
    try:
        n_train = round(checked_number(n_train, "training images", *SUBSET_RANGE, notes))
        epochs = checked_number(epochs, "epochs", *EPOCH_RANGE, notes)
        plan = phases_from_table(table)
    except (InvalidSetting, ScheduleError) as err:
        yield (*unchanged, f"⚠️ {err}", runs)
        return
    # The plots are cleared, then redrawn once the new run has its first points: a line plot fixes its legend (its
    # colours) when first drawn, so a run added to a drawn plot would never show.
    yield (None, None, "Reading the CIFAR-10 subset…", runs)
    try:
        data = lab_data(n_train)
    except LabDataUnavailable as err:
        yield (*curves(runs), f"⚠️ {err}", runs)
        return
    number = (runs[-1]["number"] + 1) if runs else 1
    label = _run_label(plan, number)
    started = time.monotonic()
    should_stop = (lambda: stop.pressed_since(started)) if stop is not None else (lambda: False)
    current: dict = {}
    for progress in live_train(data, plan, epochs=epochs, should_stop=should_stop):
        current = {"number": number, "label": label, "iterations": progress.iterations, "losses": _smoothed(progress.losses),
                   "eval_iterations": progress.eval_iterations, "accuracies": progress.accuracies}
        done = len(progress.iterations)
        accuracy = f" · accuracy {progress.accuracies[-1]:.1%} on {len(data.valid)} test images" if progress.accuracies else ""
        if progress.stopped:
            status = f"{label} stopped (Stop pressed) at iteration {done}/{progress.total_iterations} after {progress.seconds:.1f} s{accuracy}"
        elif progress.finished:
            status = (f"{label} done: {done} iterations ({epochs:g} epoch{'s' * (epochs != 1)} of {len(data.train)} "
                      f"images) in {progress.seconds:.1f} s{accuracy}")
        else:
            status = f"{label}: iteration {done}/{progress.total_iterations} · {progress.seconds:.1f} s{accuracy}"
        plots = curves([*runs, current]) if progress.iterations and progress.accuracies else unchanged
        yield (*plots, "\n\n".join(filter(None, [status, _notes(notes)])), runs)
    yield (*curves([*runs, current]), gr.skip(), [*runs, current][-KEPT_RUNS:])


def finder_figure(progress) -> object:
    """Smoothed loss against LR (log scale), with the finder's marks once it has finished."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.2))
    ax = fig.subplots()
    ax.plot(progress.lrs, progress.losses, color="tab:blue")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("loss (smoothed)")
    if progress.losses:
        low, high = min(progress.losses), max(progress.losses[: max(1, len(progress.losses) * 9 // 10)])
        ax.set_ylim(low - 0.05 * (high - low + 1e-3), high + 0.1 * (high - low + 1e-3))
    marks = [(progress.suggestion, "tab:green", "steepest descent"), (progress.min_loss_lr, "tab:purple", "lowest loss"),
             (progress.min_loss_lr / 10 if progress.min_loss_lr else None, "tab:red", "lowest loss ÷ 10 (the lesson's pick)"),
             (progress.diverged_at, "black", "diverged")]
    for lr, colour, what in marks:
        if lr:
            ax.axvline(lr, color=colour, linestyle="--", linewidth=1, label=f"{what}: {lr:.2g}")
    if any(lr for lr, _, _ in marks):
        ax.legend(fontsize=8, loc="upper left")
    ax.set_title("LR range test: loss while the LR grows every batch", fontsize=10)
    fig.tight_layout()
    return fig


def lr_find_live(n_train=DEFAULT_SUBSET, stop: StopSignal | None = None) -> Iterator[tuple]:
    """The LR range test on a fresh lab network; yields (figure, status) twice a second."""
    from dl_core.cifar.lab import live_lr_find

    notes: list[str] = []
    try:
        n_train = round(checked_number(n_train, "training images", *SUBSET_RANGE, notes))
    except InvalidSetting as err:
        yield None, f"⚠️ {err}"
        return
    yield gr.skip(), "Reading the CIFAR-10 subset…"
    try:
        data = lab_data(n_train)
    except LabDataUnavailable as err:
        yield None, f"⚠️ {err}"
        return
    started = time.monotonic()
    should_stop = (lambda: stop.pressed_since(started)) if stop is not None else (lambda: False)
    for progress in live_lr_find(data, should_stop=should_stop):
        if progress.finished and progress.lrs:
            how = (f"stopped where the loss diverged (LR {progress.diverged_at:.2g})" if progress.diverged_at
                   else f"reached LR {progress.lrs[-1]:.2g}")
            status = (f"done in {progress.seconds:.1f} s: {len(progress.lrs)} batches, {how}. Lowest loss at LR "
                      f"{progress.min_loss_lr:.2g}; steepest descent at {progress.suggestion:.2g}. The lesson's advice: "
                      f"pick about {progress.min_loss_lr / 10:.2g}, a tenth of the lowest-loss LR, where the loss is still "
                      f"falling fast.")
        elif progress.lrs:
            status = f"batch {len(progress.lrs)} · LR {progress.lrs[-1]:.2g} · {progress.seconds:.1f} s"
        else:
            status = "starting…"
        yield finder_figure(progress), "\n\n".join(filter(None, [status, _notes(notes)]))
    if stop is not None and stop.pressed_since(started):
        yield gr.skip(), "stopped (Stop pressed)."


def about_weights() -> str:
    """What the bundled classifier's metrics.json says: its test accuracy, size and training run."""
    from dl_core.hub import resolve_source

    try:
        metrics = folder_metrics(resolve_source("darknet-cifar10").location)
    except ValueError:
        return ""
    test, facts = metrics.get("test"), metrics.get("facts", {})
    if not test:
        return ""
    history = metrics.get("history", [])
    runs = [*metrics.get("lineage", []), {"epochs": len(history), "seconds": sum(h.get("seconds", 0) for h in history)}]
    cycles = f" in {len(runs)} 1cycle runs" if len(runs) > 1 else " with 1cycle"
    return (f"**The bundled DarkNet** scores **{test['accuracy']:.1%}** on CIFAR-10's {test['n']:,} test images "
            f"({test['accuracy_no_tta']:.1%} without the mirror-image average); trained from scratch{cycles}, "
            f"{sum(r['epochs'] for r in runs)} epochs, {sum(r['seconds'] for r in runs) / 60:.0f} minutes on "
            f"{facts.get('hardware', '?')}.")


# --- layout and wiring ---------------------------------------------------------------------------------------------
def build() -> None:
    import pandas as pd

    initial_plan = preset_phases(PRESETS[0], DEFAULT_LR, 1.0)
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Tabs(elem_id="lab-sections"):
                with gr.Tab("Classify", id="classify", elem_id="lab-classify-tab"):
                    with gr.Row():
                        photo = ImageFile(label="Photo", type="filepath", sources=["upload", "clipboard"], height=260,
                                          elem_id="lab-photo")
                        with gr.Column():
                            classify_button = gr.Button("Classify", variant="primary", elem_id="lab-classify-button")
                            test_button = gr.Button("A random CIFAR-10 test image", elem_id="lab-test-image")
                            label = gr.Label(num_top_classes=5, label="top 5 (DarkNet, lesson 12)", elem_id="lab-label")
                    classify_notes = gr.Markdown(elem_id="lab-classify-notes")
                    gr.Markdown("**What each stage sees**: the six most active channels of the stem and of every group, "
                                "each scaled to its own range (white = strongest). The resolution halves at every stride-2 "
                                "group start while the channels double.")
                    stages = gr.Image(label="stage activations", show_label=False, type="pil", interactive=False,
                                      elem_id="lab-stages")
                with gr.Tab("Design & train", id="train", elem_id="lab-train-tab"):
                    with gr.Row():
                        preset = RawRadio(list(PRESETS), value=PRESETS[0], label="start from a preset", elem_id="lab-preset")
                        preset_lr = gr.Number(value=DEFAULT_LR, label="peak LR", minimum=PRESET_LR[0], maximum=PRESET_LR[1], elem_id="lab-preset-lr")
                        preset_epochs = gr.Number(value=1.0, label="epochs", minimum=0.25, maximum=100)
                    with gr.Accordion("preset details", open=False):
                        with gr.Row():
                            div = gr.Number(value=20, label="1cycle: div (LR starts at peak/div)")
                            pct = gr.Number(value=20, label="1cycle: annihilation % of training")
                            n_cycles = gr.Number(value=3, label="SGDR: cycles", precision=0)
                            cycle_mult = gr.Number(value=2, label="SGDR: cycle_mult")
                    table = RawDataframe(value=pd.DataFrame(phases_to_rows(initial_plan), columns=TABLE_HEADERS),
                                         headers=TABLE_HEADERS, datatype=["number"] * 3 + ["str"] + ["number"] * 2 + ["str", "number"],
                                         interactive=True, row_count=3, type="array", label=f"phases (edit any cell; decays: {', '.join(DECAYS)})",
                                         elem_id="lab-phases")
                    design_notes = gr.Markdown(elem_id="lab-design-notes")
                    schedule_plot = gr.Plot(value=schedule_figure(initial_plan, iterations_per_epoch(DEFAULT_SUBSET)), label="schedule",
                                            show_label=False, elem_id="lab-schedule-plot")
                    with gr.Row():
                        n_train = RawSlider(*SUBSET_RANGE, value=DEFAULT_SUBSET, step=500, label="training images (CIFAR-10 subset)",
                                            elem_id="lab-n-train")
                        epochs = RawSlider(*EPOCH_RANGE, value=1.0, step=0.25, label="epochs of the live run", elem_id="lab-epochs")
                    with gr.Row():
                        train_button = gr.Button("Train live", variant="primary", elem_id="lab-train-button")
                        stop_button = gr.Button("Stop", elem_id="lab-stop-button")
                        clear_button = gr.Button("Clear earlier runs", elem_id="lab-clear-button")
                    train_status = gr.Markdown(elem_id="lab-train-status")
                    with gr.Row():
                        loss_plot = gr.LinePlot(x="iteration", y="loss", color="run", title="training loss (smoothed)",
                                                color_title="run", show_label=False, height=280, elem_id="lab-loss-plot")
                        accuracy_plot = gr.LinePlot(x="iteration", y="accuracy", color="run", title="accuracy on 500 test images",
                                                    color_title="run", show_label=False, height=280, y_lim=[0, 1],
                                                    elem_id="lab-accuracy-plot")
                with gr.Tab("LR finder", id="lr-finder", elem_id="lab-finder-tab"):
                    gr.Markdown("The LR range test on a fresh small DarkNet and the chosen subset: the LR grows "
                                "exponentially every batch, from 1e-5 to 10, and the test stops once the loss blows up.")
                    with gr.Row():
                        finder_button = gr.Button("Find the LR", variant="primary", elem_id="lab-finder-button")
                        finder_stop = gr.Button("Stop", elem_id="lab-finder-stop")
                    finder_status = gr.Markdown(elem_id="lab-finder-status")
                    finder_plot = gr.Plot(label="LR finder", show_label=False, elem_id="lab-finder-plot")
        with gr.Column(scale=2, min_width=280):
            gr.Markdown(EXPLANATION, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                       {"left": "$", "right": "$", "display": False}])
            about = gr.Markdown(about_weights(), elem_id="lab-about")
    runs = gr.State([])
    stop_signal = gr.State(StopSignal())

    # Wired functions: their parameter names are the API's (gradio_client) parameter names.
    def classify_image(photo):
        return classify_photo(photo).as_tuple() + (about_weights(),)

    def test_image():
        return classify_test_image() + (about_weights(),)

    def design(phases, training_images=DEFAULT_SUBSET):
        return design_schedule(phases, training_images)

    def train(phases, training_images=DEFAULT_SUBSET, epochs=1.0, runs=None, stop=None):
        yield from train_live(phases, training_images, epochs, runs, stop)

    def find_lr(training_images=DEFAULT_SUBSET, stop=None):
        yield from lr_find_live(training_images, stop)

    def press_stop(stop: StopSignal) -> None:
        stop.press()

    def cleared():
        return [], *curves([]), ""

    classify_button.click(classify_image, photo, [label, stages, classify_notes, about], api_name="classify_image",
                          concurrency_id="cpu")
    photo.upload(classify_image, photo, [label, stages, classify_notes, about], api_visibility="private", concurrency_id="cpu")
    test_button.click(test_image, None, [photo, label, stages, classify_notes, about], api_name="cifar_test_image",
                      concurrency_id="cpu")
    preset_inputs = [preset, preset_lr, preset_epochs, div, pct, n_cycles, cycle_mult]
    for control in preset_inputs:
        control.change(preset_table, preset_inputs, [table, design_notes], api_visibility="private", trigger_mode="always_last")
    gr.on([table.change, n_train.change], design, [table, n_train], [schedule_plot, design_notes],
          api_name="design_schedule", trigger_mode="always_last")
    # Live training and the LR finder hold the CPU for seconds: one queue of one for both, apart from the "cpu"
    # pool the other tabs' models share; a second request waits its turn.
    train_button.click(train, [table, n_train, epochs, runs, stop_signal], [loss_plot, accuracy_plot, train_status, runs],
                       api_name="train_live", concurrency_id="lab", concurrency_limit=1)
    finder_button.click(find_lr, [n_train, stop_signal], [finder_plot, finder_status], api_name="lr_find",
                        concurrency_id="lab", concurrency_limit=1)
    # Stop must not wait behind the run it stops: no queue limit of its own.
    for button in (stop_button, finder_stop):
        button.click(press_stop, stop_signal, None, api_visibility="private", concurrency_limit=None)
    clear_button.click(cleared, None, [runs, loss_plot, accuracy_plot, train_status], api_visibility="private")


if __name__ == "__main__":
    import sys

    from demos.common import launch_alone

    launch_alone(sys.modules[__name__])
