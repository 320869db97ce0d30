"""The translation tab's handlers (no server) and the app through gradio_client."""
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
    assert len(view.hypotheses) == 4 and view.hypotheses[0][0] == 1
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


def test_beam_width_is_clamped(bundled):
    assert len(translation.translate("Merci beaucoup.", 99, "").hypotheses) <= translation.MAX_BEAM
    assert len(translation.translate("Merci beaucoup.", 0, "").hypotheses) == 1


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


def test_app_end_to_end_through_gradio_client(bundled, tmp_path, monkeypatch):
    from gradio_client import Client

    import app as app_module

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    demo = app_module.build_app()
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, server_port=None)
    try:
        client = Client(url, verbose=False)
        assert "/translate" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        greedy, beam, notes, plot, hypotheses, scores = client.predict(
            "Il fait beau aujourd'hui.", 3, "The weather is nice today.", api_name="/translate")
        assert greedy and beam and notes == ""
        assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image")
        assert len(hypotheses["data"]) == 3
        assert "sentence BLEU" in scores
        empty = client.predict("", 3, "", api_name="/translate")
        assert "Type a French sentence" in empty[2]
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
