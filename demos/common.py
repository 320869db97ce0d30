"""Pieces every tab shares: lazy, load-once models that explain their own failure, and input guards."""
from __future__ import annotations

import functools
import json
import math
import os
import re
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

import gradio as gr
from gradio.data_classes import GradioRootModel

from dl_core.hub import ModelSource, resolve_source

T = TypeVar("T")


class ModelUnavailable(Exception):
    """Raised by LazyModel.get() when the weights are missing or broken; the message is Markdown for the UI."""


class LazyModel(Generic[T]):
    """Load a model the first time a tab needs it, once, and remember a failure instead of retrying it.

    `loader(folder)` builds whatever the tab needs (model, translator...) from a Hub-format folder.
    `check(value)`, when given, runs one small forward pass on what was loaded: a config edited so that the
    tensor shapes still load but the model no longer works (e.g. detection `grids` that no longer match the
    head) fails here, once, with an explanation, instead of in every request.
    `prepare(value)`, when given, runs after the check and returns what the tab uses: the CPU fast path
    (dl_core/fast.py), applied after the check so that the check's small input is never compiled for.
    Nothing is loaded at import or at app start, so one tab's missing weights cannot take down the others.
    """

    def __init__(self, name: str, loader: Callable[[str], T], train_command: str,
                 check: Callable[[T], object] | None = None, prepare: Callable[[T], T] | None = None):
        self.name, self.loader, self.train_command, self.check = name, loader, train_command, check
        self.prepare = prepare
        self._lock = threading.Lock()
        self._value: T | None = None
        self._error: str | None = None
        self.source: ModelSource | None = None

    @property
    def loaded(self) -> bool:
        """Whether get() returns at once (loaded, or failed) rather than loading first."""
        return self._value is not None or self._error is not None

    def get(self) -> T:
        with self._lock:
            if self._value is None and self._error is None:
                self._load()
        if self._error is not None:
            raise ModelUnavailable(self._error)
        return self._value  # type: ignore[return-value]

    def _load(self) -> None:
        try:  # where the weights are is part of loading: a malformed hub_repos.json breaks this tab, explained
            self.source = resolve_source(self.name)
            value = self.loader(self.source.location)
            if self.check is not None:
                self.check(value)
            self._value = value if self.prepare is None else self.prepare(value)
        except Exception as err:  # noqa: BLE001 - any load failure becomes an explanation in the tab
            # shown inside a Markdown code span: a backtick in the message would end it early
            detail = "".join(traceback.format_exception_only(type(err), err)).strip().replace("`", "'")
            where = f"`{Path(self.source.location)}`" if self.source else "its configured source"
            self._error = (
                f"**The `{self.name}` model could not be loaded** from {where}.\n\n"
                f"Reason: `{detail[:500]}`\n\n"
                f"Train it (the weight folder is written to `weights/{self.name}/`):\n\n"
                f"```\n{self.train_command}\n```\n\n"
                f"or point the app at a Hub repo with `HUB_REPO_{self.name.upper().replace('-', '_')}=user/repo` (see the README)."
            )

    @property
    def note(self) -> str:
        """Anything the user should know about where the weights came from (e.g. a Hub fallback)."""
        return self.source.note if self.source else ""


def compile_note(model) -> str:
    """After the request whose call compiled `model` (dl_core/fast.py), a note saying the time it shows includes that."""
    path = getattr(model, "fast_path", None)
    return path.compile_note() if path is not None else ""


SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"


def bundled_photos() -> list[str]:
    """The sample photos committed in samples/ (public domain / CC0, provenance in samples/README.md): examples
    that exist wherever the app runs, a fresh Space included."""
    return sorted(str(p) for p in SAMPLES_DIR.glob("*.jpg"))


@functools.cache  # read once per weight folder, like the model itself
def folder_metrics(folder: str) -> dict:
    """A weight folder's metrics.json (scores, history, the run's facts, as its train script wrote them), or {}
    where it is missing or unreadable: a panel then leaves out what it would have quoted."""
    try:
        metrics = json.loads((Path(folder) / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def _save_pil_to_cache_atomically(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """gradio.processing_utils.save_pil_to_cache, but written under a temporary name and renamed into place."""
    from gradio import processing_utils

    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    target = (folder / f"{name}.{format}").resolve()
    fd, staging = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return str(target)


def use_atomic_image_cache() -> None:
    """Work around a Gradio race that serves empty output images under concurrent load.

    Gradio caches an image output under the hash of its bytes and writes it in place (truncate, then write), so
    when two requests return the same image – two users on the same sample – one of them can be served the file
    while the other is rewriting it: 0 bytes. `python -m benchmarks.gradio_cache_race` reproduces it with Gradio
    alone. Every image component (Image, AnnotatedImage and its masks, Gallery) writes through
    `processing_utils.save_pil_to_cache`, so the app replaces that one function, once, when it is built.
    """
    from gradio import processing_utils

    processing_utils.save_pil_to_cache = _save_pil_to_cache_atomically


def launch_alone(tab) -> None:
    """`python -m demos.<topic>`: serve one tab module alone, as app.py would lay it out."""
    from app import launch

    launch([tab])


class ImageFile(gr.Image):
    """A gr.Image upload whose handler receives the file path undecoded.

    gr.Image decodes uploads itself, so a corrupt or exotic file would fail inside Gradio with a generic
    error. With this component the handler opens the file through dl_core.images.load_rgb and can say
    exactly what is wrong (and convert CMYK, 16-bit, EXIF-rotated... images sensibly).
    """

    is_template = True  # use gr.Image's front end
    # No __init__ override: Gradio builds a component's front-end props from its __init__ signature.
    # Create it with type="filepath" (what the handler receives for non-file payloads too).

    def preprocess(self, payload):
        if payload is not None and payload.path:
            return str(payload.path)
        return super().preprocess(payload)


def code_span(text: str) -> str:
    """`text` as a Markdown code span that shows it exactly as typed: a fence longer than any run of backticks
    inside it (CommonMark), so a backtick, `*`, `<` or `&` in a token cannot end the span or become markup;
    padded when it starts or ends with a backtick or a space, which CommonMark would otherwise eat."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text[:1] in "` " or text[-1:] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# Gradio's own input checks let NaN through and answer None or text from an API client with a bare "Error".
# These components hand the handler the value as sent, so the tab's handler can say what is wrong.
class RawSlider(gr.Slider):
    """A gr.Slider whose value reaches the handler unchecked (None, NaN, text, out of range included)."""

    is_template = True  # use gr.Slider's front end

    def preprocess(self, payload):
        return payload


class RawRadio(gr.Radio):
    """A gr.Radio whose value reaches the handler unchecked, so an unknown choice gets the tab's own message."""

    is_template = True  # use gr.Radio's front end

    def preprocess(self, payload):
        return payload


class _AnyJSON(GradioRootModel):
    root: Any = None


class RawDataframe(gr.Dataframe):
    """A gr.Dataframe whose value reaches the handler as sent: {"headers", "data", ...} from the UI, anything from an
    API client (a string, rows with NaN...), so the tab's handler can say what is wrong instead of Gradio's generic
    error. Create it with type="array"; its API documentation is gr.Dataframe's."""

    is_template = True  # use gr.Dataframe's front end
    data_model = _AnyJSON

    def preprocess(self, payload):
        return payload.root if isinstance(payload, _AnyJSON) else payload

    def api_info(self) -> dict:
        from gradio.components.dataframe import DataframeData

        schema = DataframeData.model_json_schema()
        schema["additional_description"] = schema.pop("description", None)
        return schema


class RawNumber(gr.Number):
    """A gr.Number whose value reaches the handler unchecked (e.g. an integer too long for a float)."""

    is_template = True  # use gr.Number's front end

    def preprocess(self, payload):
        return payload


class InvalidSetting(ValueError):
    """A number sent to the tab (through the API, say) that cannot be used: the message says which and why."""


def checked_number(value, name: str, low: float, high: float, notes: list[str]) -> float:
    """A finite number from a slider (or an API call), brought into [low, high] with a note; InvalidSetting for
    None, NaN, infinity or anything that is not a number."""
    wanted = f"*{name}* must be a number from {low:g} to {high:g}"
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):  # shown by type, not as typed:
        raise InvalidSetting(f"{wanted}, not {type(value).__name__}.")                 # it renders as Markdown
    number = float(value)
    if not math.isfinite(number):
        raise InvalidSetting(f"{wanted}, not {number}.")
    if not low <= number <= high:
        clamped = min(max(number, low), high)
        notes.append(f"*{name}* {number:g} is outside {low:g}–{high:g}: used {clamped:g}.")
        return clamped
    return number


@dataclass
class StopSignal:
    """One session's Stop button (a gr.State, so a stop reaches only that session's runs): a run that started
    before the last press stops after the step it is on."""
    pressed_at: float = -math.inf

    def press(self) -> None:
        self.pressed_at = time.monotonic()

    def pressed_since(self, started: float) -> bool:
        return self.pressed_at >= started
