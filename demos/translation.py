"""Lesson 11 tab: French -> English translation, its attention matrix, greedy vs beam search, BLEU/chrF.

Pure handlers first (testable without a server), then the layout, then the wiring.
"""
from __future__ import annotations

import html
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from demos.common import LazyModel, ModelUnavailable, code_span, folder_metrics
from dl_core.paths import data_path, display_path

ID = "translation"
TITLE = "Lesson 11 · Translation"
# The panel: the lesson's idea and what to try, then where the model is weak (the model card's list too).
EXPLANATION = (Path(__file__).with_suffix(".md").read_text(encoding="utf-8") + "\n### Where this model is weak\n"
               + (Path(__file__).parents[1] / "dl_core" / "translation" / "weaknesses.md").read_text(encoding="utf-8"))
MAX_CHARS = 2_000  # longer input is cut before tokenising (the model sees at most max_src_len tokens anyway)
MAX_BEAM = 10
DEFAULT_BEAM = 5
# (French, a correct English reference). The bundled model's beam search gives exactly the reference for each
# (tests/test_demo_translation.py runs them all; a failure would have to be one the panel teaches).
EXAMPLES = [
    ["Je ne comprends pas.", "I don't understand."],
    ["Elle a une voiture rouge.", "She has a red car."],
    ["Merci beaucoup.", "Thanks a lot."],
    ["Pouvez-vous m'aider, s'il vous plaît ?", "Can you help me, please?"],
    ["Il fait trop chaud pour travailler aujourd'hui.", "It's too hot to work today."],
    ["Quel est ton livre préféré ?", "What's your favorite book?"],
    ["Je pense que tu as raison.", "I think you're right."],
    ["Elle a acheté une voiture rouge hier.", "She bought a red car yesterday."],
    ["Où est la gare ?", "Where's the station?"],
    ["Deux chiens courent dans la neige.", "Two dogs run through the snow."],  # Multi30k's kind: a photo caption
]
# Attention heat maps: sizes in inches at matplotlib's 100 dpi, which gr.Plot keeps (1 in = 100 image pixels).
# Gradio shows the image at its own size, shrunk to fit a narrower screen: 12 pt labels (16.7 px) stay >= 10 px
# on a 380 px phone column up to ~630 px of figure (about 15 French tokens) and on an 800 px desktop column up
# to the model's 40-token limit, because every token gets a 0.26 in column and labels run vertically.
LABEL_PT = 12
CELL_IN = 0.26
LABEL_CHARS = 18  # longer tokens are shortened (…) on the axes only, so one odd token cannot widen the plot


def _load_translator(folder: str):
    from dl_core.hub import load_model
    from dl_core.translation.model import Seq2Seq
    from dl_core.translation.infer import Translator, inference_precision

    return Translator(load_model(Seq2Seq, folder), inference_precision())  # int8 where the CPU has an engine: faster


def _check_translator(translator) -> None:
    """One tiny translation, so a config that loads but no longer runs is explained once, in this tab."""
    translator.greedy(translator.source("Bonjour ."))


MODEL = LazyModel(
    "translation", _load_translator,
    f"python train/translate.py train --data {display_path(data_path('translation', 'fra-eng.tsv'))} --out weights/translation",
    check=_check_translator,
)


# --- pure handlers -------------------------------------------------------------------------------------
@dataclass
class TranslationView:
    greedy: str
    beam: str
    notes: str  # Markdown: warnings about the input, or why nothing could be translated
    attention_figure: object | None  # matplotlib Figure
    hypotheses: list[list]  # beam hypotheses, best first: text, log-prob, length-normalised score
    scores: str  # Markdown: how long this request took, and BLEU/chrF against the reference, if one was given

    def as_tuple(self):
        return self.greedy, self.beam, self.notes, self.attention_figure, self.hypotheses, self.scores




_SURROGATES = re.compile("[\ud800-\udfff]")


def _without_surrogates(text: str, what: str, notes: list[str]) -> str:
    """Lone UTF-16 surrogates (left by a broken copy-paste or a mangled emoji) are not text: no tokenizer or
    encoder accepts them, so they are removed, with a note."""
    cleaned, n = _SURROGATES.subn("", text)
    if n:
        notes.append(f"{n:,} invalid character{'s' if n > 1 else ''} (unpaired UTF-16 surrogate{'s' if n > 1 else ''}, "
                     f"e.g. from a broken copy-paste) removed from the {what}.")
    return cleaned


def clean_input(text: str | None) -> tuple[str, list[str]]:
    """Normalise user text; returns the text to translate and notes about what was changed."""
    notes = []
    text = text if isinstance(text, str) else ""
    if len(text) > MAX_CHARS:
        notes.append(f"Input cut from {len(text):,} to {MAX_CHARS:,} characters.")
        text = text[:MAX_CHARS]
    text = _without_surrogates(text, "French text", notes)
    without_tags = re.sub(r"<[^>]{0,200}>", " ", text)
    if without_tags != text:
        notes.append("HTML/markup tags were removed.")
    text = " ".join(html.unescape(without_tags).split())
    return text, notes


def read_beam_width(value) -> tuple[int | None, str]:
    """The beam width to use and a note about it: a number outside 1..MAX_BEAM is clamped (noted); NaN, infinity
    or something that is not a number gives None and the reason."""
    if value is None:
        return DEFAULT_BEAM, ""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        return None, f"Beam width must be a whole number from 1 to {MAX_BEAM}; got {shown}."
    width = int(min(MAX_BEAM, max(1, round(number))))
    if width != number:
        return width, f"Beam width {number:g} is not a whole number from 1 to {MAX_BEAM}: used {width}."
    return width, ""


def _shortened(token: str, limit: int) -> str:
    return token if len(token) <= limit else token[: limit - 1] + "…"


def _axis_label(token: str) -> str:
    return _shortened(token, LABEL_CHARS)


def attention_figure(panels: list[tuple[str, list[str], list[str], object]]):
    """Heat maps of attention weights, one above the other, one per (title, source tokens, output tokens,
    weights). Sized to the sentence (see LABEL_PT); token labels are drawn as typed, never as mathtext."""
    from matplotlib.figure import Figure

    n_src = max(len(src) for _, src, _, _ in panels)
    char_in = LABEL_PT * 0.6 / 72  # a label character's width
    longest_src = max(len(_axis_label(t)) for _, src, _, _ in panels for t in src)
    longest_out = max(len(_axis_label(t)) for _, _, out, _ in panels for t in out)
    width = 0.9 + longest_out * char_in + n_src * CELL_IN + 1.1  # y label + labels + cells + colour bar
    heights = [len(out) * CELL_IN + longest_src * char_in + 0.9 for _, _, out, _ in panels]
    fig = Figure(figsize=(max(4.0, width), sum(heights)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, (title, src, out, weights) in zip(axes, panels):
        image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(src)), [_axis_label(t) for t in src], rotation=90, fontsize=LABEL_PT,
                      parse_math=False)
        ax.set_yticks(range(len(out)), [_axis_label(t) for t in out], fontsize=LABEL_PT, parse_math=False)
        ax.set_xlabel("French (source)", fontsize=LABEL_PT)
        ax.set_ylabel("English (output)", fontsize=LABEL_PT)
        ax.set_title(title, fontsize=LABEL_PT)
    colorbar = fig.colorbar(image, ax=list(axes), shrink=0.8)
    colorbar.set_label("attention weight", fontsize=LABEL_PT)
    colorbar.ax.tick_params(labelsize=LABEL_PT - 1)
    return fig


def _panel(title: str, source_tokens: list[str], result) -> tuple:
    return title, source_tokens, result.tokens + ["<eos>"], result.attention.numpy()


def _as_notes(notes: list[str]) -> str:
    return "\n\n".join(f"⚠️ {n}" for n in notes)


def translate(text: str | None, beam_size: float | None = DEFAULT_BEAM, reference: str | None = "") -> TranslationView:
    """Translate `text` greedily and with beam search; explain problems in `notes` instead of raising."""
    from dl_core.metrics import sentence_scores

    text, notes = clean_input(text)
    beam_size, beam_note = read_beam_width(beam_size)
    if beam_size is None:
        return TranslationView("", "", _as_notes(notes + [beam_note]), None, [], "")
    if beam_note:
        notes.append(beam_note)
    if not text:
        asked = "Type a French sentence to translate."
        return TranslationView("", "", "\n\n".join(filter(None, [_as_notes(notes), asked])), None, [], "")
    try:
        translator = MODEL.get()
    except ModelUnavailable as err:
        return TranslationView("", "", str(err), None, [], "")
    if MODEL.note:
        notes.append(MODEL.note)

    started = time.perf_counter()  # after loading: the timing describes every request, not just the first
    source = translator.source(text)
    if source.n_cut:
        notes.append(f"Only the first {len(source.tokens)} tokens were translated ({source.n_cut} cut): "
                     "the model was trained on sentences, so translate long text one sentence at a time.")
    if source.n_unknown:
        share = source.n_unknown / len(source.ids)
        unknown = sorted({tok for tok, i in zip(source.tokens, source.ids) if i == translator.src_vocab.unk_id})
        notes.append(f"{source.n_unknown} of {len(source.ids)} tokens ({share:.0%}) are not in the model's French "
                     f"vocabulary and are read as `<unk>`: {', '.join(code_span(_shortened(t, 40)) for t in unknown[:12])}.")
        if share > 0.5:
            notes.append("Most words are unknown: is this French? The translation below is a guess.")

    greedy = translator.greedy(source)
    beams = translator.beam(source, beam_size)
    best = beams[0]
    hypotheses = [[b.text, round(b.log_prob, 3), round(b.log_prob / (len(b.tokens) + 1), 3)] for b in beams]
    figure = attention_figure([
        _panel(f"greedy  (log p = {greedy.log_prob:.2f})", source.tokens, greedy),
        _panel(f"beam {beam_size}  (log p = {best.log_prob:.2f})", source.tokens, best),
    ])
    scores = []
    reference = " ".join(_without_surrogates(reference if isinstance(reference, str) else "", "reference",
                                             notes)[:MAX_CHARS].split())
    if reference:
        g, b = sentence_scores(greedy.text, reference), sentence_scores(best.text, reference)
        scores.append(
            "| | sentence BLEU | chrF |\n|---|---|---|\n"
            f"| greedy | {g['bleu']:.1f} | {g['chrf']:.1f} |\n| beam {beam_size} | {b['bleu']:.1f} | {b['chrf']:.1f} |\n\n"
            "cased sacreBLEU (13a tokens, exponential smoothing) against your reference"
        )
    seconds = time.perf_counter() - started
    scores.append(f"Tokenising, greedy and beam-{beam_size} decoding took {seconds:.2f} s on this server for this "
                  "request (timed live; a busy server takes longer).")
    return TranslationView(greedy.text, best.text, _as_notes(notes), figure, hypotheses, "\n\n".join(scores))


def training_record() -> dict:
    """The metrics.json of the weight folder this tab uses (the loaded model's, else the one it will load):
    read without loading the model, so the training curves can be drawn when the page opens."""
    from dl_core.hub import resolve_source

    source = MODEL.source or resolve_source(MODEL.name)
    return folder_metrics(source.location)


def teacher_forcing_text(history: list[dict]) -> str:
    """The teacher-forcing schedule the run really used, as its history recorded it, in one sentence."""
    values = [h.get("teacher_forcing") for h in history]
    if not values or any(not isinstance(v, (int, float)) for v in values):
        return ""
    lowest = min(values)
    if values[0] == lowest:
        return f"Teacher forcing p was {values[0]:.2f} in every epoch."
    reached = values.index(lowest) + 1  # 1-based epoch
    steps = {round(a - b, 4) for a, b in zip(values, values[1:reached])}
    text = f"Teacher forcing p fell from {values[0]:.2f} in epoch 1 to {lowest:.2f} in epoch {reached}"
    if len(steps) == 1:
        text += f" ({steps.pop():.2f} per epoch)"
    if reached < len(values):
        text += f" and stayed at {lowest:.2f} to epoch {len(values)}" if set(values[reached:]) == {lowest} else \
            f", then ended at {values[-1]:.2f} in epoch {len(values)}"
    return text + "."


def training_summary() -> str:
    """How the model scores and how it was trained, in a few sentences (from its metrics.json); "" when the
    folder has no such record."""
    record = training_record()
    try:
        held = record["heldout"]
        lines = [f"Held-out Tatoeba pairs ({held['n']:,}): corpus BLEU **{held['bleu']:.1f}**, chrF {held['chrf']:.1f}."]
        if "multi30k" in record:
            ood = record["multi30k"]
            trained_on = record.get("facts", {}).get("args", {}).get("extra_train")
            where = "test 2016; the model trained on its train split" if trained_on else "out of domain"
            lines.append(f"Multi30k image captions ({ood['n']:,}, {where}): BLEU **{ood['bleu']:.1f}**, chrF {ood['chrf']:.1f}.")
        before = record.get("lineage", [{}])[-1]
        if "heldout" in before and "multi30k" in before:
            lines.append(f"Before this run the model (Tatoeba only) scored BLEU {before['heldout']['bleu']:.1f} on "
                         f"Tatoeba and {before['multi30k']['bleu']:.1f} on Multi30k: the new data, not a new "
                         "architecture, made the difference.")
        history = record.get("history", [])
        if history:
            lines.append(teacher_forcing_text(history))
        if "facts" in record:
            minutes = sum(h["seconds"] for h in history) / 60
            lines.append(f"Training took {minutes:.0f} minutes of wall-clock time for {len(history)} epochs, as "
                         f"the training script timed it on {record['facts']['hardware']}; this server's speed "
                         "may differ:"
                         f"\n```\n{record['facts']['command']}\n```")
    except (KeyError, TypeError):  # a record without these entries: say nothing rather than guess
        return ""
    return "\n\n".join(line for line in lines if line)


def training_figure():
    """Loss curves and the teacher-forcing schedule of the model, from its metrics.json (None without one)."""
    from matplotlib.figure import Figure

    history = training_record().get("history")
    if not history:
        return None
    epochs = [h["epoch"] + 1 for h in history]
    fig = Figure(figsize=(4.6, 3.4), layout="constrained")  # 11 pt stays >= 10 px shrunk into a phone
    ax = fig.subplots()
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss")
    ax.plot(epochs, [h["valid_loss"] for h in history], "o-", label="valid loss")
    ax.set_xlabel("epoch", fontsize=11)
    ax.set_ylabel("cross-entropy", fontsize=11)
    ax.tick_params(labelsize=11)
    ax2 = ax.twinx()
    ax2.plot(epochs, [h.get("teacher_forcing", 1.0) for h in history], "s--", color="tab:green",
             label="teacher forcing p")
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("teacher forcing p", fontsize=11)
    ax2.tick_params(labelsize=11)
    fig.legend(loc="outside upper center", ncols=2, fontsize=11, frameon=False)
    return fig


def translate_for_api(french_text: str | None, beam_width: float | None = DEFAULT_BEAM,
                      reference_translation: str | None = ""):
    """Translate French to English greedily and with beam search (width 1-10); with an English reference
    translation, also score both with sentence BLEU and chrF."""
    return translate(french_text, beam_width, reference_translation).as_tuple()


# --- layout and wiring ---------------------------------------------------------------------------------
def build() -> None:
    """Add this tab's components to the current Blocks context."""
    with gr.Row():
        with gr.Column(scale=3, min_width=300):
            source = gr.Textbox(label="French", placeholder="Tapez une phrase en français…", lines=2,
                                max_length=MAX_CHARS * 5, elem_id="translation-input")
            with gr.Row():
                beam_size = gr.Slider(1, MAX_BEAM, value=DEFAULT_BEAM, step=1, label="beam width", min_width=200)
                reference = gr.Textbox(value="", label="English reference (optional, for BLEU/chrF)", lines=1,
                                       elem_id="translation-reference", min_width=200)
            button = gr.Button("Translate", variant="primary", elem_id="translation-button")
            # Labelled examples render as buttons that wrap on a narrow screen (a table would overflow a phone).
            gr.Examples(EXAMPLES, inputs=[source, reference], cache_examples=False,
                        example_labels=[french for french, _ in EXAMPLES], elem_id="translation-examples")
            with gr.Row():
                greedy = gr.Textbox(label="Greedy", interactive=False, elem_id="translation-greedy", min_width=200)
                beam = gr.Textbox(label="Beam search (best)", interactive=False, elem_id="translation-beam",
                                  min_width=200)
            # User tokens are shown as typed: no maths in notes (a "$" in a token is just a dollar sign).
            notes = gr.Markdown(label="Notes", latex_delimiters=[], elem_id="translation-notes")
            gr.Markdown("**Attention weights** a<sub>tj</sub>: rows are English output words, columns French tokens; "
                        "greedy above, beam search below.")
            attention = gr.Plot(label="Attention weights (greedy above, beam search below)", show_label=False,
                                elem_id="translation-attention")
            hypotheses = gr.Dataframe(headers=["beam hypothesis (best first)", "log p", "log p / length"],
                                      datatype=["str", "number", "number"], label="Beam hypotheses",
                                      interactive=False, wrap=True, column_widths=["60%", "20%", "20%"],
                                      elem_id="translation-hypotheses")
            scores = gr.Markdown(label="Scores and timing", latex_delimiters=[], elem_id="translation-scores")
        with gr.Column(scale=2, min_width=300):
            gr.Markdown(EXPLANATION, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                       {"left": "$", "right": "$", "display": False}])
            with gr.Accordion("How this model was trained", open=False):
                gr.Markdown("Loss (left axis) and teacher-forcing probability p (right axis, green) per epoch, "
                            "from the model's metrics.json.")
                # Drawn when the tab is built: it reads only metrics.json, not the model.
                gr.Plot(value=training_figure(), label="Loss and teacher forcing per epoch", show_label=False,
                        elem_id="translation-training-curves")
                gr.Markdown(training_summary(), elem_id="translation-training-summary")

    outputs = [greedy, beam, notes, attention, hypotheses, scores]
    button.click(translate_for_api, [source, beam_size, reference], outputs, api_name="translate",
                 concurrency_id="cpu")
    source.submit(translate_for_api, [source, beam_size, reference], outputs, api_visibility="private",
                  concurrency_id="cpu")


if __name__ == "__main__":
    import sys

    from demos.common import launch_alone

    launch_alone(sys.modules[__name__])
