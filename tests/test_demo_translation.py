"""The translation tab's handlers (no server) and the app through gradio_client."""
import html
import math
import re

import pytest

from conftest import REPO_ROOT, fresh_model
from demos import translation

BUNDLED = REPO_ROOT / "weights" / "translation"


@pytest.fixture
def bundled(monkeypatch):
    fresh_model(monkeypatch, translation)


def test_translates_and_shows_attention_beams_and_scores(bundled):
    view = translation.translate("Je suis très content.", 4, "I'm very happy.")
    assert "happy" in view.greedy.lower() or "glad" in view.greedy.lower()
    assert view.beam and view.notes == ""
    assert len(view.hypotheses) == 4 and view.hypotheses[0][0] == view.beam
    assert [row[2] for row in view.hypotheses] == sorted((row[2] for row in view.hypotheses), reverse=True)
    assert view.attention_figure is not None and len(view.attention_figure.axes) == 3  # 2 heat maps + colour bar
    assert "sentence BLEU" in view.scores and "chrF" in view.scores


@pytest.mark.parametrize("text", ["", "   \n\t ", None])
def test_empty_input_asks_for_a_sentence(bundled, text):
    view = translation.translate(text, 5, "")
    assert "Type a French sentence" in view.notes and view.greedy == "" and view.attention_figure is None


def test_very_long_input_is_cut_with_a_note(bundled):
    view = translation.translate("Le chat dort sur le canapé. " * 400, 3, "")  # ~11,000 characters
    assert "cut from" in view.notes and "tokens were translated" in view.notes
    assert view.greedy


def test_emoji_and_english_input_get_unknown_word_notes(bundled):
    emoji = translation.translate("J'aime la pizza 🍕🍕 !", 2, "")
    assert "🍕" in emoji.notes and emoji.greedy
    english = translation.translate("The quick brown fox jumps over the lazy dog", 2, "")
    assert "is this French?" in english.notes and english.greedy


def test_markup_is_stripped_with_a_note(bundled):
    view = translation.translate("<b>Bonjour</b> <script>alert(1)</script> le monde &amp; toi", 2, "")
    assert "tags were removed" in view.notes
    assert "<" not in view.greedy


def test_beam_width_is_clamped_with_a_note(bundled):
    wide = translation.translate("Merci beaucoup.", 99, "")
    assert len(wide.hypotheses) <= translation.MAX_BEAM and "Beam width 99" in wide.notes and "used 10" in wide.notes
    narrow = translation.translate("Merci beaucoup.", 0, "")
    assert len(narrow.hypotheses) == 1 and "used 1" in narrow.notes
    assert len(translation.translate("Merci beaucoup.", None, "").hypotheses) == translation.DEFAULT_BEAM


@pytest.mark.parametrize("width", [math.nan, math.inf, -math.inf, "cinq", [3]])
def test_a_beam_width_that_is_not_a_number_is_explained(bundled, width):
    view = translation.translate("Merci beaucoup.", width, "")
    assert "Beam width must be a whole number from 1 to 10" in view.notes
    assert view.greedy == "" and view.attention_figure is None


def test_missing_weights_explain_how_to_train(monkeypatch, tmp_path):
    fresh_model(monkeypatch, translation, tmp_path)  # an empty folder
    view = translation.translate("Bonjour.", 5, "")
    assert "could not be loaded" in view.notes and "python train/translate.py train" in view.notes
    assert view.greedy == ""


def test_corrupt_weights_explain_and_do_not_raise(monkeypatch, tmp_path):
    import shutil

    if not BUNDLED.exists():
        pytest.skip("needs the bundled weights")
    broken = tmp_path / "broken"
    shutil.copytree(BUNDLED, broken)
    (broken / "model.safetensors").write_bytes(b"this is not a safetensors file")
    fresh_model(monkeypatch, translation, broken)
    for _ in range(2):  # the failure is remembered, not retried on every call
        assert "could not be loaded" in translation.translate("Bonjour.", 5, "").notes


def _raw_api_notes(url: str, data_json: str) -> str:
    """POST a hand-written JSON payload to /translate (gradio_client cannot send NaN) and return the notes."""
    import json

    import httpx

    base = url.rstrip("/") + "/gradio_api/call/translate"
    event = httpx.post(base, content=f'{{"data": {data_json}}}', headers={"Content-Type": "application/json"}).json()
    stream = httpx.get(f"{base}/{event['event_id']}", timeout=60).text
    assert "event: complete" in stream, stream
    return json.loads(stream.split("event: complete", 1)[1].split("data:", 1)[1].strip())[2]


def test_app_end_to_end_through_gradio_client(bundled, tmp_path, monkeypatch):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    import app as app_module

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    demo = app_module.build_app([translation])
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, server_port=None)
    try:
        client = Client(url, verbose=False)
        assert "/translate" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        greedy, beam, notes, plot, hypotheses, scores = client.predict(
            french_text="Il fait beau aujourd'hui.", beam_width=3, reference_translation="The weather is nice today.",
            api_name="/translate")
        assert greedy and beam and notes == ""
        assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image")
        assert len(hypotheses["data"]) == 3
        assert "sentence BLEU" in scores
        only_text = client.predict(french_text="Je ne comprends pas.", api_name="/translate")  # the rest optional
        assert only_text[1] == "I don't understand." and len(only_text[4]["data"]) == translation.DEFAULT_BEAM
        empty = client.predict("", 3, "", api_name="/translate")
        assert "Type a French sentence" in empty[2]
        assert "Beam width must be a whole number" in _raw_api_notes(url, '["Merci.", NaN, ""]')  # JSON's NaN
        with pytest.raises(AppError, match="greater than maximum value 10"):
            client.predict("Merci.", 99, "", api_name="/translate")
        dollars = client.predict("Ça coûte 5$$.", 2, "x$_$y", api_name="/translate")
        assert dollars[0] and dollars[3]["plot"].startswith("data:image")
        # a lone surrogate, as JSON carries it (gradio_client cannot encode one)
        assert "unpaired UTF-16 surrogate" in _raw_api_notes(url, r'["Je ne comprends pas.\ud800", 2, ""]')
        client.close()
    finally:
        demo.close()


def test_training_curves_come_from_the_model_cards_metrics(bundled):
    fig = translation.training_figure()
    loss_axis, forcing_axis = fig.axes
    assert [line.get_label() for line in loss_axis.get_lines()] == ["train loss", "valid loss"]
    forcing = forcing_axis.get_lines()[0].get_ydata()
    assert forcing[0] == 1.0 and forcing[-1] < forcing[0]  # the schedule lowered teacher forcing


def test_training_summary_quotes_the_folders_metrics_not_constants(monkeypatch, tmp_path):
    import json
    import shutil

    folder = tmp_path / "retrained"
    shutil.copytree(BUNDLED, folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["heldout"] = {"bleu": 12.345, "chrf": 23.456, "n": 77}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    fresh_model(monkeypatch, translation, folder)
    summary = translation.training_summary()
    assert "BLEU **12.3**, chrF 23.5" in summary and "(77)" in summary
    assert metrics["facts"]["command"] in summary and "Multi30k" in summary


def test_training_summary_and_curves_are_empty_without_a_record(monkeypatch, tmp_path):
    import shutil

    folder = tmp_path / "unrecorded"
    shutil.copytree(BUNDLED, folder)
    (folder / "metrics.json").unlink()
    fresh_model(monkeypatch, translation, folder)
    assert translation.training_summary() == "" and translation.training_figure() is None


def test_the_tab_runs_alone_and_shows_a_train_command_the_script_accepts():
    import shlex

    from dl_core import cli
    from train import translate

    assert "launch_alone(sys.modules[__name__])" in (REPO_ROOT / "demos" / "translation.py").read_text()
    parser = cli.build_parser(translate.__file__, translate.__doc__, translate.COMMANDS)
    script, command = shlex.split(translation.MODEL.train_command)[1:3]
    args = parser.parse_args(shlex.split(translation.MODEL.train_command)[2:])
    assert (script, command, args.out) == ("train/translate.py", "train", "weights/translation")


# --- what the panel claims, against the bundled weights ----------------------------------------------------
def _what_to_try() -> str:
    panel = translation.EXPLANATION
    return " ".join(panel[panel.index("### What to try"):].split())


def _claims() -> tuple[dict, dict]:
    """The panel's `*French* → "English"` claims (greedy and beam give that) and `*French* greedy "…", beam k "…"`."""
    section = _what_to_try()
    both = {fr: en for fr, en in re.findall(r'\*([^*]+?)\* → "([^"]+)"', section)}
    split = {fr: (g, int(k), b) for fr, g, k, b in re.findall(r'\*([^*]+?)\* greedy "([^"]+)", beam (\d+) "([^"]+)"', section)}
    return both, split


def test_every_french_sentence_in_what_to_try_is_a_checked_claim():
    both, split = _claims()
    quoted = [s for s in re.findall(r"\*([^*]+?)\*", _what_to_try()) if s[0].isupper() and s[-1] in ".?!"]
    assert quoted and set(quoted) == set(both) | set(split)


def test_the_panels_claimed_translations_are_what_the_bundled_model_says(bundled):
    both, split = _claims()
    for french, english in both.items():
        view = translation.translate(french, 5, "")
        assert (view.greedy, view.beam) == (english, english), french
    for french, (greedy, width, beam) in split.items():
        view = translation.translate(french, width, "")
        assert (view.greedy, view.beam) == (greedy, beam), french


def test_every_example_is_translated_as_its_reference_or_is_a_failure_the_panel_teaches(bundled):
    both, split = _claims()
    section = _what_to_try()
    for french, reference in translation.EXAMPLES:
        view = translation.translate(french, translation.DEFAULT_BEAM, reference)
        if view.beam != reference:  # only the failures the panel states may differ, and it states them as they are
            assert "A failure" in section.split(f"*{french}*")[0].rsplit("- ", 1)[-1], french
            assert both[french] == view.beam, french
        assert view.notes == "", french  # every word of an example is in the model's vocabulary


def _greedy_attention(french: str) -> dict[str, list[str]]:
    """For each greedy output token, the source tokens its attention row looks at most."""
    translator = translation.MODEL.get()
    source = translator.source(french)
    result = translator.greedy(source)
    looks = {}
    for token, row in zip(result.tokens, result.attention):
        looks.setdefault(token, []).append(source.tokens[int(row.argmax())])
    return looks


def test_the_panels_attention_claims_hold_for_the_bundled_model(bundled):
    negation = _greedy_attention("Je ne comprends pas.")
    assert negation["do"] == ["pas"] and negation["n't"] == ["pas"]
    order = _greedy_attention("Elle a une voiture rouge.")
    assert order["red"] == ["rouge"] and order["car"] == ["voiture"]


def test_the_panels_beam_table_claims_hold_for_the_bundled_model(bundled):
    section = _what_to_try()
    for french, second in re.findall(r'\*([^*]+?)\* →[^*]*?second hypothesis is "([^"]+)"', section):
        assert translation.translate(french, 5, "").hypotheses[1][0] == second, french
    assert len(re.findall("second hypothesis is", section)) == 1


def test_the_weaknesses_the_panel_and_card_list_are_what_the_bundled_model_does(bundled):
    from dl_core.translation.card import WEAKNESSES_FILE

    weak = " ".join(WEAKNESSES_FILE.read_text(encoding="utf-8").split())
    assert "### Where this model is weak" in translation.EXPLANATION and weak in " ".join(translation.EXPLANATION.split())
    claims = re.findall(r"`([^`]+)` → `([^`]+)`", weak)
    assert len(claims) == 3
    for french, english in claims:
        assert translation.translate(french, translation.DEFAULT_BEAM, "").beam == english, french
    assert "(French 13,310, English 9,906)" in weak
    config = translation.MODEL.get().model.config
    assert (len(config.src_vocab), len(config.tgt_vocab)) == (13_310, 9_906)


def test_the_panels_bleu_paraphrase_claim_holds():
    from dl_core.metrics import sentence_scores

    assert '("I am happy." for "I\'m glad.") scores low' in " ".join(translation.EXPLANATION.split())
    paraphrase, exact = sentence_scores("I am happy.", "I'm glad."), sentence_scores("I'm glad.", "I'm glad.")
    assert paraphrase["bleu"] < exact["bleu"] / 4 and paraphrase["chrf"] < exact["chrf"] / 4


# --- text as typed: matplotlib labels, Markdown notes, bad characters --------------------------------------
@pytest.mark.parametrize("text", ["Ça coûte 5$$.", "x$_$y", "Il a payé $5 et $6.", r"$\frac{$"])
def test_dollar_signs_are_drawn_as_typed_not_parsed_as_maths(bundled, text):
    import gradio as gr

    view = translation.translate(text, 3, "")
    assert view.greedy
    plot = gr.Plot().postprocess(view.attention_figure)  # what Gradio does with the figure: it must draw
    assert plot.plot.startswith("data:image")
    labels = [t.get_text() for ax in view.attention_figure.axes[:2] for t in ax.get_xticklabels()]
    assert any("$" in label for label in labels)


def _code_spans(markdown: str) -> list[str]:
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark").render(markdown)
    return [html.unescape(code) for code in re.findall(r"<code>(.*?)</code>", rendered, flags=re.S)]


def test_tokens_in_notes_show_as_typed_backticks_and_html_included(bundled):
    view = translation.translate("Le a`b x``y AT&T 1<2 `z **gras** x$$y", 2, "")
    shown = _code_spans(view.notes)
    for token in ["a`b", "x``y", "AT&T", "1<2", "`", "x$$y"]:
        assert token in shown, (token, view.notes)
    translator = translation.MODEL.get()
    unknown = {t for t in translator.source("Le a`b x``y AT&T 1<2 `z **gras** x$$y").tokens
               if translator.src_vocab.encode([t]) == [translator.src_vocab.unk_id]}
    assert set(shown) == unknown | {"<unk>"}


@pytest.mark.parametrize("token", ["a`b", "``", "` x", "plain", "<b>&amp;</b>", "*bold*"])
def test_code_span_survives_any_token(token):
    assert _code_spans(translation.code_span(token)) == [token]


def test_a_lone_surrogate_is_removed_with_a_clear_note(bundled):
    alone = translation.translate("\ud800", 5, "")
    assert "unpaired UTF-16 surrogate" in alone.notes and "Type a French sentence" in alone.notes
    mixed = translation.translate("Je ne \udfff comprends pas.", 5, "I don't\ud83d understand.")
    assert mixed.greedy == "I don't understand." and mixed.notes.count("unpaired UTF-16 surrogate") == 2
    assert "sentence BLEU" in mixed.scores


def test_a_megabyte_of_text_is_cut_with_a_note(bundled):
    view = translation.translate("Je ne comprends pas. " + "x" * 1_000_000, 5, "r" * 1_000_000)
    assert "Input cut from 1,000,021 to 2,000 characters" in view.notes and view.greedy
    assert max(len(line) for line in view.notes.splitlines()) < 2_000  # one giant token is shortened in the note


# --- plots: readable sizes, training curves on load, the schedule the run really used -----------------------
def _smallest_label_px(fig, display_px: int) -> float:
    """The smallest tick-label height in screen pixels when Gradio shows the figure (its own size, shrunk to fit)."""
    scale = min(1.0, display_px / (fig.get_figwidth() * fig.dpi))
    sizes = [t.get_fontsize() for ax in fig.axes[:2] for t in ax.get_xticklabels() + ax.get_yticklabels()]
    return min(sizes) * fig.dpi / 72 * scale


def test_attention_labels_are_readable_on_a_phone_and_a_desktop(bundled):
    translator = translation.MODEL.get()
    short = translation.translate("Je ne sais pas pourquoi il est parti hier soir avec elle.", 5, "").attention_figure
    assert _smallest_label_px(short, display_px=380) >= 10  # a phone's column
    longest = " ".join(["mot"] * translator.model.config.max_src_len)
    assert _smallest_label_px(translation.translate(longest, 2, "").attention_figure, display_px=800) >= 10


def test_training_curves_are_shown_when_the_tab_opens_without_loading_the_model(bundled):
    import gradio as gr

    with gr.Blocks() as app:
        translation.build()
    curves = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "translation-training-curves")
    summary = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "translation-training-summary")
    assert curves.value and curves.value["plot"].startswith("data:image")
    assert "Teacher forcing p fell from 1.00" in summary.value
    assert translation.MODEL._value is None  # reading metrics.json did not load the weights


def test_the_panel_and_curves_show_the_teacher_forcing_the_run_really_used(bundled):
    from dl_core.translation.training import teacher_forcing_schedule

    record = translation.training_record()
    history, args = record["history"], record["facts"]["args"]
    schedule = teacher_forcing_schedule(args["teacher_forcing_floor"])
    recorded = [h["teacher_forcing"] for h in history]
    assert recorded == pytest.approx([schedule(h["epoch"], args["epochs"]) for h in history])  # code == record
    forcing_axis = translation.training_figure().axes[1]
    assert list(forcing_axis.get_lines()[0].get_ydata()) == recorded  # plot == record
    summary = translation.training_summary()
    floor_epoch = recorded.index(min(recorded)) + 1
    assert (f"fell from {recorded[0]:.2f} in epoch 1 to {min(recorded):.2f} in epoch {floor_epoch}" in summary)
    panel = " ".join(translation.EXPLANATION.split())
    assert "The lesson lowers $p$ every epoch down to 0 (`pr_force = (10 - epoch) / 10`)" in panel
    assert "This tab's model was trained with a gentler schedule" in panel and "floor" in panel


def test_teacher_forcing_text_describes_other_schedules():
    assert translation.teacher_forcing_text([{"teacher_forcing": 1.0}] * 3) == "Teacher forcing p was 1.00 in every epoch."
    text = translation.teacher_forcing_text([{"teacher_forcing": p} for p in (1.0, 0.5, 0.0)])
    assert text == "Teacher forcing p fell from 1.00 in epoch 1 to 0.00 in epoch 3 (0.50 per epoch)."
    assert translation.teacher_forcing_text([{"epoch": 0}]) == ""


def test_timings_are_measured_live_or_say_what_measured_them(bundled):
    view = translation.translate("Merci beaucoup.", 3, "")
    seconds = re.search(r"decoding took (\d+\.\d\d) s on this server for this request", view.scores)
    assert seconds and 0 < float(seconds.group(1)) < 60
    assert "as the training script timed it on CPU" in translation.training_summary()


def test_layout_fits_a_phone(bundled):
    import gradio as gr

    with gr.Blocks() as app:
        translation.build()
    table = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "translation-hypotheses")
    assert len(table.headers) == 3 and table.wrap  # wrapped text, no rank column: fits 380 px
    examples = [b for b in app.blocks.values() if isinstance(b, gr.Dataset)]
    assert len(examples) == 1 and examples[0].sample_labels == [fr for fr, _ in translation.EXAMPLES]  # buttons


# --- the API for scripts ------------------------------------------------------------------------------------
def test_api_has_one_public_endpoint_with_descriptive_optional_parameters_and_labelled_outputs():
    import gradio as gr

    with gr.Blocks() as app:
        translation.build()
    endpoints = app.get_api_info()["named_endpoints"]
    assert list(endpoints) == ["/translate"]
    params = {p["parameter_name"]: (p["parameter_has_default"], p["parameter_default"])
              for p in endpoints["/translate"]["parameters"]}
    assert params == {"french_text": (False, None), "beam_width": (True, 5), "reference_translation": (True, "")}
    labels = [r["label"] for r in endpoints["/translate"]["returns"]]
    assert all(labels) and not any(label.startswith("value_") for label in labels) and len(set(labels)) == 6
