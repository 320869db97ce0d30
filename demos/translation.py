"""Lesson 11 tab: French -> English translation, its attention matrix, greedy vs beam search, BLEU/chrF.

Pure handlers first (testable without a server), then the layout, then the wiring.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from demos.common import LazyModel, ModelUnavailable, folder_metrics
from dl_core.paths import data_path, display_path

ID = "translation"
TITLE = "Lesson 11 · Translation"
EXPLANATION = (Path(__file__).with_suffix(".md")).read_text(encoding="utf-8")
MAX_CHARS = 2_000  # longer input is cut before tokenising (the model sees at most max_src_len tokens anyway)
MAX_BEAM = 10
EXAMPLES = [
    ["Je ne sais pas pourquoi il est parti.", "I don't know why he left."],
    ["Elle a acheté une voiture rouge hier.", "She bought a red car yesterday."],
    ["Pouvez-vous m'aider, s'il vous plaît ?", "Can you help me, please?"],
    ["Nous allons à la plage demain matin.", "We're going to the beach tomorrow morning."],
    ["Il fait trop chaud pour travailler aujourd'hui.", "It's too hot to work today."],
    ["Quel est ton livre préféré ?", "What's your favorite book?"],
]


def _load_translator(folder: str):
    from dl_core.hub import load_model
    from dl_core.translation.model import Seq2Seq
    from dl_core.translation.infer import Translator

    return Translator(load_model(Seq2Seq, folder))


MODEL = LazyModel(
    "translation", _load_translator,
    f"python train/translate.py train --data {display_path(data_path('translation', 'fra-eng.tsv'))} --out weights/translation",
)


# --- pure handlers -------------------------------------------------------------------------------------
@dataclass
class TranslationView:
    greedy: str
    beam: str
    notes: str  # Markdown: warnings about the input, or why nothing could be translated
    attention_figure: object | None  # matplotlib Figure
    hypotheses: list[list]  # beam hypotheses: rank, text, log-prob, length-normalised score
    scores: str  # Markdown table of BLEU/chrF against the reference, if one was given

    def as_tuple(self):
        return self.greedy, self.beam, self.notes, self.attention_figure, self.hypotheses, self.scores


def clean_input(text: str | None) -> tuple[str, list[str]]:
    """Normalise user text; returns the text to translate and notes about what was changed."""
    notes = []
    text = text or ""
    if len(text) > MAX_CHARS:
        notes.append(f"Input cut from {len(text):,} to {MAX_CHARS:,} characters.")
        text = text[:MAX_CHARS]
    without_tags = re.sub(r"<[^>]{0,200}>", " ", text)
    if without_tags != text:
        notes.append("HTML/markup tags were removed.")
    text = " ".join(html.unescape(without_tags).split())
    return text, notes


def attention_figure(panels: list[tuple[str, list[str], list[str], object]]):
    """Heat maps of attention weights, one panel per (title, source tokens, output tokens, weights)."""
    from matplotlib.figure import Figure

    n_src = max(len(src) for _, src, _, _ in panels)
    n_out = max(len(out) for _, _, out, _ in panels)
    fig = Figure(figsize=(min(14, 2.2 + 0.55 * n_src * len(panels)), min(10, 1.8 + 0.38 * n_out)))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, src, out, weights) in zip(axes, panels):
        image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(src)), src, rotation=60, ha="right", fontsize=9)
        ax.set_yticks(range(len(out)), out, fontsize=9)
        ax.set_xlabel("French (source)")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("English (output)")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="attention weight")
    return fig


def _panel(title: str, source_tokens: list[str], result) -> tuple:
    return title, source_tokens, result.tokens + ["<eos>"], result.attention.numpy()


def translate(text: str | None, beam_size: float = 5, reference: str | None = "") -> TranslationView:
    """Translate `text` greedily and with beam search; explain problems in `notes` instead of raising."""
    from dl_core.metrics import sentence_scores

    text, notes = clean_input(text)
    if not text:
        return TranslationView("", "", "Type a French sentence to translate.", None, [], "")
    try:
        translator = MODEL.get()
    except ModelUnavailable as err:
        return TranslationView("", "", str(err), None, [], "")
    if MODEL.note:
        notes.append(MODEL.note)
    beam_size = int(min(MAX_BEAM, max(1, beam_size or 1)))

    source = translator.source(text)
    if source.n_cut:
        notes.append(f"Only the first {len(source.tokens)} tokens were translated ({source.n_cut} cut): "
                     "the model was trained on sentences, so translate long text one sentence at a time.")
    if source.n_unknown:
        share = source.n_unknown / len(source.ids)
        unknown = sorted({tok for tok, i in zip(source.tokens, source.ids) if i == translator.src_vocab.unk_id})
        notes.append(f"{source.n_unknown} of {len(source.ids)} tokens ({share:.0%}) are not in the model's French "
                     f"vocabulary and are read as `<unk>`: {', '.join(f'`{t}`' for t in unknown[:12])}.")
        if share > 0.5:
            notes.append("Most words are unknown: is this French? The translation below is a guess.")

    greedy = translator.greedy(source)
    beams = translator.beam(source, beam_size)
    best = beams[0]
    hypotheses = [
        [rank, b.text, round(b.log_prob, 3), round(b.log_prob / (len(b.tokens) + 1), 3)]
        for rank, b in enumerate(beams, 1)
    ]
    figure = attention_figure([
        _panel(f"greedy  (log p = {greedy.log_prob:.2f})", source.tokens, greedy),
        _panel(f"beam {beam_size}  (log p = {best.log_prob:.2f})", source.tokens, best),
    ])
    scores = ""
    reference = " ".join((reference or "").split())[:MAX_CHARS]
    if reference:
        g, b = sentence_scores(greedy.text, reference), sentence_scores(best.text, reference)
        scores = (
            "| | sentence BLEU | chrF |\n|---|---|---|\n"
            f"| greedy | {g['bleu']:.1f} | {g['chrf']:.1f} |\n| beam {beam_size} | {b['bleu']:.1f} | {b['chrf']:.1f} |\n\n"
            "cased sacreBLEU (13a tokens, exponential smoothing) against your reference"
        )
    return TranslationView(
        f"{greedy.text}", f"{best.text}", "\n\n".join(f"⚠️ {n}" for n in notes), figure, hypotheses, scores,
    )


def _loaded_record() -> dict:
    try:
        MODEL.get()
    except ModelUnavailable:
        return {}
    return folder_metrics(MODEL.source.location)


def training_summary() -> str:
    """How the loaded model scores and how it was trained, in a sentence or two (from its metrics.json); ""
    when the folder has no such record."""
    record = _loaded_record()
    try:
        held = record["heldout"]
        lines = [f"Held-out Tatoeba pairs ({held['n']:,}): corpus BLEU **{held['bleu']:.1f}**, chrF {held['chrf']:.1f}."]
        if "multi30k" in record:
            ood = record["multi30k"]
            lines.append(f"Multi30k image captions ({ood['n']:,}, out of domain): BLEU {ood['bleu']:.1f}, chrF {ood['chrf']:.1f}.")
        if "facts" in record:
            minutes = sum(h["seconds"] for h in record.get("history", [])) / 60
            lines.append(f"{len(record.get('history', []))} epochs, {minutes:.0f} minutes on {record['facts']['hardware']}:"
                         f"\n```\n{record['facts']['command']}\n```")
    except (KeyError, TypeError):  # a record without these entries: say nothing rather than guess
        return ""
    return "\n\n".join(lines)


def training_figure():
    """Loss curves and the teacher-forcing schedule of the loaded model, from its metrics.json (if any)."""
    from matplotlib.figure import Figure

    history = _loaded_record().get("history")
    if not history:
        return None
    epochs = [h["epoch"] + 1 for h in history]
    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss")
    ax.plot(epochs, [h["valid_loss"] for h in history], "o-", label="valid loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax2 = ax.twinx()
    ax2.plot(epochs, [h.get("teacher_forcing", 1.0) for h in history], "s--", color="tab:green", label="teacher forcing p")
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("teacher forcing p")
    fig.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


# --- layout and wiring ---------------------------------------------------------------------------------
def build() -> None:
    """Add this tab's components to the current Blocks context."""
    with gr.Row():
        with gr.Column(scale=3):
            source = gr.Textbox(label="French", placeholder="Tapez une phrase en français…", lines=2,
                                max_length=MAX_CHARS * 5, elem_id="translation-input")
            with gr.Row():
                beam_size = gr.Slider(1, MAX_BEAM, value=5, step=1, label="beam width")
                reference = gr.Textbox(label="English reference (optional, for BLEU/chrF)", lines=1,
                                       elem_id="translation-reference")
            button = gr.Button("Translate", variant="primary", elem_id="translation-button")
            gr.Examples(EXAMPLES, inputs=[source, reference], cache_examples=False)
            with gr.Row():
                greedy = gr.Textbox(label="Greedy", interactive=False, elem_id="translation-greedy")
                beam = gr.Textbox(label="Beam search (best)", interactive=False, elem_id="translation-beam")
            notes = gr.Markdown(elem_id="translation-notes")
            attention = gr.Plot(label="Attention weights a_tj (rows: English words, columns: French tokens)",
                                elem_id="translation-attention")
            hypotheses = gr.Dataframe(headers=["rank", "beam hypothesis", "log p", "log p / length"],
                                      datatype=["number", "str", "number", "number"], label="Beam hypotheses",
                                      interactive=False)
            scores = gr.Markdown()
        with gr.Column(scale=2):
            gr.Markdown(EXPLANATION, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                       {"left": "$", "right": "$", "display": False}])
            with gr.Accordion("How this model was trained", open=False):
                curves = gr.Plot(label="loss and teacher forcing per epoch")
                summary = gr.Markdown(elem_id="translation-training-summary")
                show_curves = gr.Button("Show training curves and scores", size="sm")

    def run(text, k, ref):
        return translate(text, k, ref).as_tuple()

    outputs = [greedy, beam, notes, attention, hypotheses, scores]
    button.click(run, [source, beam_size, reference], outputs, api_name="translate", concurrency_id="cpu")
    source.submit(run, [source, beam_size, reference], outputs, api_visibility="private", concurrency_id="cpu")
    show_curves.click(lambda: (training_figure(), training_summary()), None, [curves, summary],
                      api_name="translation_training_curves")


if __name__ == "__main__":
    import sys

    from demos.common import launch_alone

    launch_alone(sys.modules[__name__])
