"""The sentiment tab's handlers (no server) on the bundled ULMFiT classifier and language model."""
import html
import math
import re

import pytest

from conftest import fresh_model
from demos import common, sentiment


@pytest.fixture
def bundled(monkeypatch):
    fresh_model(monkeypatch, sentiment, attr="CLASSIFIER")
    fresh_model(monkeypatch, sentiment, attr="BACKWARD")
    fresh_model(monkeypatch, sentiment, attr="SHORT")
    fresh_model(monkeypatch, sentiment, attr="SHORT_NBSVM")
    fresh_model(monkeypatch, sentiment, attr="LM")


def no_warnings(notes: str) -> bool:
    """Notes that only say which classifiers read the text (the ℹ️ line every classified text gets)."""
    return "⚠️" not in notes and notes.count("ℹ️") == 1


LONG_REVIEW = ("I went in expecting very little: the trailer was dull and the director's last film was a mess. I was "
               "wrong. The script is sharp and funny, the two leads have real chemistry, and the final twenty minutes had "
               "the whole audience holding its breath. The soundtrack is gorgeous too. It is not a perfect film, the "
               "middle drags a little, but it is the most fun I have had at the cinema in years.")


def test_clear_reviews_are_classified_the_right_way(bundled):
    good = sentiment.analyse("A wonderful, moving film. The acting is superb and I loved every minute of it.")
    bad = sentiment.analyse("A dull, stupid film. The acting is awful and I hated every minute of it.")
    assert good.probabilities["positive"] > 0.8 and bad.probabilities["negative"] > 0.8
    assert no_warnings(good.notes)
    # the one-liner pair's vocabulary is rt-polarity's own: "hated" is not in it (a weakness the panel states)
    assert bad.notes.count("⚠️") == 1 and "read as `<unk>`: `hated`" in bad.notes


def test_attribution_colours_the_words_that_carry_the_sentiment(bundled):
    view = sentiment.analyse("The plot is boring but the music is wonderful.")
    units = _typed_scores("The plot is boring but the music is wonderful.")
    assert units["boring"] < 0 < units["wonderful"]
    assert 'title="-' in view.attribution and 'title="+' in view.attribution
    assert ">wonderful<" in view.attribution and ">The<" in view.attribution  # words as written, not as tokens


def _typed_scores(text):
    """{piece of the text as typed: its attribution score}, as the tab computes them."""
    analyzer = sentiment._analyzer(need_lm=False)
    prepared = analyzer.prepare(text)
    pieces = sentiment.typed_pieces(text, prepared.original_tokens, analyzer.attribute(prepared))
    return {text[start:end]: score for start, end, score in pieces}


def test_token_view_marks_every_kind_of_special_token(bundled):
    view = sentiment.analyse("This movie was SO GOOD!!! really really really good, zzqxv.")
    kinds = {kind for _, kind in view.tokens if kind}
    assert kinds == {"beginning of text", "next word Capitalised", "next word ALL CAPS", "repeated character",
                     "repeated word", "unknown word"}
    assert "`zzqxv`" in view.notes


def test_typed_pieces_give_each_typed_word_the_scores_of_its_tokens():
    text = "The film was GREAT!!! Sooooo good, very very very good. SOOOOO GOOD, can't"
    from dl_core.text import tokenize_with_rules

    tokens = ["<bos>", *tokenize_with_rules(text)]
    scores = [float(i) for i in range(len(tokens))]
    pieces = sentiment.typed_pieces(text, tokens, scores)
    words = [text[start:end] for start, end, _ in pieces]
    assert words == ["The", "film", "was", "GREAT", "!!!", "Sooooo", "good", ",", "very very very", "good", ".",
                     "SOOOOO", "GOOD", ",", "can't"]
    assert sum(score for _, _, score in pieces) == pytest.approx(sum(scores))  # every token's score lands somewhere
    by_word = {text[start:end]: score for start, end, score in pieces}
    soooo = [i for i, t in enumerate(tokens) if t in ("s", "o")][-2:]  # "SOOOOO": xxmaj s xxrep 5 xxmaj o
    assert tokens[soooo[0] - 1 : soooo[1] + 1] == ["xxmaj", "s", "xxrep", "5", "xxmaj", "o"]
    assert by_word["SOOOOO"] == sum(range(soooo[0] - 1, soooo[1] + 1))


def test_repeated_capitals_are_shown_as_typed_never_as_rule_tokens(bundled):
    view = sentiment.analyse("SOOOOO GOOD")
    shown = re.sub(r"<[^>]+>", "", view.attribution.split("</div>")[0])  # the attributed text, tags removed
    assert shown == "SOOOOO GOOD"
    assert ">SOOOOO<" in view.attribution and ">GOOD<" in view.attribution
    assert not re.search(r"xx(maj|up|rep|wrep)", shown)


def test_attribution_shows_apostrophes_and_symbols_as_typed(bundled):
    view = sentiment.analyse("L'histoire est belle & <3 -- it's what I'd call a \"gem\".")
    shown = html.unescape(re.sub(r"<[^>]+>", "", view.attribution.split("</div>")[0]))
    assert shown == "L'histoire est belle & <3 -- it's what I'd call a \"gem\"."
    assert "&amp;#x27;" not in view.attribution and "&amp;lt;" not in view.attribution  # escaped once, not twice


def test_attribution_html_escapes_the_text():
    text = "<script>alert(1)</script> ok"
    html_ = sentiment.attribution_html(text, [(0, 25, 0.5), (26, 28, -0.2)])
    assert "<script>" not in html_ and "&lt;script&gt;" in html_


@pytest.mark.parametrize("text", ["", "   \n\t  ", None, 42])
def test_empty_or_wrong_input_asks_for_a_review(bundled, text):
    view = sentiment.analyse(text)
    assert "Type or paste a movie review" in view.notes and view.probabilities == {} and view.tokens == []


def test_symbols_only_get_a_message(bundled):
    view = sentiment.analyse("<br /><br />")
    assert view.probabilities == {} and view.notes


def test_one_word_is_classified_with_a_warning(bundled):
    view = sentiment.analyse("masterpiece")
    assert sum(view.probabilities.values()) == pytest.approx(1.0) and "Only a word or two" in view.notes


def test_huge_text_is_cut_and_still_classified(bundled):
    view = sentiment.analyse("I loved this film, it is great. " * 3200)  # 102,400 characters
    assert "cut from 102,400 to its first 20,000 characters" in view.notes
    assert view.probabilities["positive"] > 0.5
    assert "more tokens, read by the classifier but not attributed" in view.attribution
    seconds = float(re.search(r"those took ([0-9.]+) s on this server just now", view.attribution).group(1))
    assert 0 < seconds < 600  # measured while serving, not a number written in prose


def test_long_review_is_cut_at_the_classifier_limit(bundled):
    view = sentiment.analyse("The film is good and the cast is fine. " * 400)  # ~4,400 tokens in 15,600 characters
    assert "the other" in view.notes and "were cut" in view.notes


def test_other_languages_and_emoji_get_a_note(bundled):
    french = sentiment.analyse("Ce film est magnifique, les acteurs sont formidables et l'histoire est émouvante.")
    assert "outside the model's vocabulary" in french.notes and french.probabilities
    emoji = sentiment.analyse("🎬🍿😍🔥🔥")
    assert "Most of the text is unknown" in emoji.notes and emoji.probabilities


def test_html_is_cleaned_with_a_note(bundled):
    view = sentiment.analyse('<p>Great <b>film</b>!<br /><br />Loved it.</p><script>alert("x")</script>')
    assert "HTML tags were removed" in view.notes
    assert "<b>" not in "".join(t for t, _ in view.tokens) and view.probabilities["positive"] > 0.5


def test_language_model_continues_the_text_reproducibly(bundled):
    first = sentiment.continue_text("This movie was", 12, 0.8, 40, 7)
    again = sentiment.continue_text("This movie was", 12, 0.8, 40, 7)
    assert first == again and first.notes == ""  # the LM's notes: no reader line, it is one model
    assert first.text.startswith('<div id="sentiment-continuation-text"') and ">This movie was</span>" in first.text
    assert len(first.generated.split()) >= 8 and html.escape(first.generated) in first.text
    assert len(first.next_words) == 10 and abs(sum(first.next_words.values())) <= 1.0


def test_continuation_reads_as_words_and_never_shows_rule_tokens(bundled):
    for seed in range(3):
        view = sentiment.continue_text("SOOOOO GOOD!!! The acting was", 40, 1.5, 200, seed)
        assert not re.search(r"\bxx(maj|up|rep|wrep)\b|<unk>|<bos>|<eos>|<pad>", view.generated)
        assert "word-break: break-all" not in view.text and "white-space: pre-wrap" in view.text
    next_words = sentiment.continue_text("SOOOOO GOOD", 1, 0.8, 40, 0).next_words
    assert not any(re.search(r"xx(maj|up|rep|wrep)|^<", word) for word in next_words)
    assert "(a repeated character)" in next_words  # p(xxrep) is shown for what it stands for


def test_a_long_prompt_is_cut_at_a_word_boundary(bundled):
    text = "The acting was wonderful and the story was moving. " * 60  # 3,060 characters
    view = sentiment.continue_text(text, 3, 0.8, 40, 0)
    assert "continues the last" in view.notes
    prompt = re.search(r'<span style="color: #6b7280">(.*?)</span>', view.text).group(1)
    assert prompt.startswith("…") and text.split().count(prompt[1:].split()[0]) > 0  # a whole word after the …


def test_greedy_generation_and_empty_prompt(bundled):
    greedy = sentiment.continue_text("The acting was", 5, 1.0, 1, 0)
    assert greedy == sentiment.continue_text("The acting was", 5, 1.0, 1, 123)  # top-k 1: the seed cannot matter
    scratch = sentiment.continue_text("", 10, 0.8, 40, 0)
    assert "writes a review from its beginning-of-text token" in scratch.notes and scratch.generated


@pytest.mark.parametrize("seed", [99999999999999999999, 10**40 + 7, -5, "98765432109876543210", 3.0e25])
def test_any_integer_seed_is_accepted_and_reduced_into_range(bundled, seed):
    view = sentiment.continue_text("Good film", 5, 0.8, 40, seed)
    assert "reduced modulo 2^64" in view.notes and view.generated
    reduced = int(float(seed)) % 2**64 if isinstance(seed, float) else int(seed) % 2**64
    assert view.generated == sentiment.continue_text("Good film", 5, 0.8, 40, reduced).generated


@pytest.mark.parametrize("setting, value, message", [
    ("n_words", 10_000, "**words to generate** must be between 1 and 60 (got 10000)"),
    ("n_words", float("nan"), "**words to generate** must be a finite number (got nan)"),
    ("temperature", -3, "**temperature** must be between 0.1 and 2 (got -3)"),
    ("temperature", float("inf"), "**temperature** must be a finite number (got inf)"),
    ("top_k", 0, "**top-k** must be between 1 and 200 (got 0)"),
    ("top_k", "lots", "**top-k** must be a number (got `lots`)"),
    ("seed", float("nan"), "**seed** must be a finite number (got nan)"),
    ("seed", [1], "**seed** must be a number (got a list)"),
])
def test_settings_sent_straight_to_the_api_get_a_clear_message(bundled, setting, value, message):
    settings = {"n_words": 5, "temperature": 0.8, "top_k": 40, "seed": 0, setting: value}
    view = sentiment.continue_text("Good film", **settings)
    assert view.notes == f"⚠️ {message}." and view.generated == "" and view.next_words == {}


def test_missing_settings_take_their_defaults(bundled):
    view = sentiment.continue_text("Good film", None, None, None, None)
    assert view.notes == "" and view.generated
    assert view == sentiment.continue_text("Good film", 20, 0.8, 40, 0)


def test_a_lone_surrogate_gets_a_clear_message(bundled):
    for view in (sentiment.analyse("Great film \ud800 really"), sentiment.continue_text("Great film \ud800 really")):
        assert "lone surrogate (U+D800 at character 12)" in view.notes
    assert sentiment.analyse("Great film \ud800").probabilities == {}


def test_a_megabyte_of_text_is_cut_with_a_note(bundled):
    text = "I loved this film, it is great. " * 32_768  # 1 MiB
    view = sentiment.analyse(text)
    assert "cut from 1,048,576 to its first 20,000 characters" in view.notes and view.probabilities["positive"] > 0.5
    continued = sentiment.continue_text(text + "The end", 3, 0.8, 40, 0)
    assert "cut from 1,048,583 to its last 20,000 characters" in continued.notes
    assert "The end</span>" in continued.text  # the LM continues the end of the text, not the end of its first 20,000


def test_missing_weights_explain_how_to_train_and_lm_is_separate(monkeypatch, tmp_path):
    fresh_model(monkeypatch, sentiment, tmp_path, attr="CLASSIFIER")
    fresh_model(monkeypatch, sentiment, attr="LM")
    view = sentiment.analyse("Great film.")
    assert "could not be loaded" in view.notes and "train/ulmfit_gpu.py" in view.notes and view.probabilities == {}
    fresh_model(monkeypatch, sentiment, attr="CLASSIFIER")
    fresh_model(monkeypatch, sentiment, tmp_path, attr="LM")
    assert sentiment.analyse("Great film.").probabilities  # classifying does not need the LM
    assert "could not be loaded" in sentiment.continue_text("Great film.").notes


def test_a_backward_language_model_is_refused_for_continuing_texts(monkeypatch, tmp_path):
    from dl_core.ulmfit.model import AWDLSTMConfig, LanguageModel
    from dl_core.text import RULE_TOKENS, SPECIAL_TOKENS

    config = AWDLSTMConfig(vocab=[*SPECIAL_TOKENS, *RULE_TOKENS, "great", "film"], emb_dim=8, hidden_dim=8, backwards=True)
    LanguageModel(config).save_pretrained(tmp_path / "lm-bwd")
    fresh_model(monkeypatch, sentiment, tmp_path / "lm-bwd", attr="LM")
    view = sentiment.continue_text("Great film.")
    assert "backward language model" in view.notes and "continues texts with a forward one" in view.notes


@pytest.mark.parametrize("text, reader, first, second", [
    (LONG_REVIEW, "long", "CLASSIFIER", "BACKWARD"),
    ("The first hour is slow and the lead is wooden, but the last act is TERRIFIC.", "short", "SHORT", "SHORT_NBSVM"),
])
def test_each_reader_is_a_pair_and_works_without_its_second_model(bundled, monkeypatch, tmp_path, text, reader, first, second):
    from dl_core.ulmfit.infer import reader_probabilities
    from dl_core.ulmfit.nbsvm import NBSVM

    analyzer = sentiment._analyzer(need_lm=False)
    pair = analyzer.readers[reader]
    if reader == "long":  # ULMFiT's forward + backward classifiers
        assert [m.config.backwards for m in pair] == [False, True]
    else:  # the one-liner network and the NBSVM
        assert not pair[0].config.backwards and isinstance(pair[1], NBSVM)
    both = sentiment.analyse(text)
    assert no_warnings(both.notes) and ("read by the one-liner pair" in both.notes) == (reader == "short")
    assert ("The NBSVM's strongest n-grams here" in both.notes) == (reader == "short")
    prepared = analyzer.prepare(text)
    assert prepared.reader == reader
    first_alone, second_alone = (reader_probabilities(m, prepared) for m in pair)
    assert both.probabilities["positive"] == pytest.approx(float(first_alone[1] + second_alone[1]) / 2, abs=1e-5)
    fresh_model(monkeypatch, sentiment, tmp_path, attr=second)  # missing: the first model alone, said so
    alone = sentiment.analyse(text)
    assert f"second model of this reader (`{getattr(sentiment, second).name}`)" in alone.notes
    assert f"`{getattr(sentiment, first).name}` alone" in alone.notes
    assert alone.probabilities["positive"] == pytest.approx(float(first_alone[1]), abs=1e-5)
    assert "could not be loaded" in sentiment.model_facts()  # the facts panel says why


def test_without_the_one_liner_classifiers_the_imdb_pair_reads_everything_and_says_so(bundled, monkeypatch, tmp_path):
    fresh_model(monkeypatch, sentiment, tmp_path, attr="SHORT")
    view = sentiment.analyse("I hated this movie.")
    assert view.probabilities and "short-text classifiers (`sentiment-rt`) are not available" in view.notes


def test_schedule_figure_shows_each_group_unfreezing():
    fig = sentiment.schedule_figure()
    lines = fig.axes[0].get_lines()
    named = [line for line in lines if not line.get_label().startswith("_")]
    assert [line.get_label() for line in named] == ["head", "LSTM 3", "LSTM 2", "LSTM 1", "embedding"]
    import numpy as np

    starts = [np.flatnonzero(~np.isnan(line.get_ydata()))[0] for line in named]
    assert starts == sorted(starts) and starts[0] == 0 and starts[1] > 0  # the head first, the embedding last


def test_model_facts_quote_the_weights_own_metrics(bundled):
    import json

    from conftest import REPO_ROOT

    facts = sentiment.model_facts()
    metrics = json.loads((REPO_ROOT / "weights" / "sentiment" / "metrics.json").read_text())
    assert f"**{metrics['heldout']['accuracy']:.1%}**" in facts and "perplexity" in facts and "TF-IDF" in facts
    for run in metrics.get("lineage", []):  # a classifier trained in several runs credits each one's time and hardware
        assert f"{run['seconds'] / 60:.1f} minutes on {run['hardware']}" in facts
    for member in ("sentiment-bwd", "sentiment-nbsvm"):  # each pair's score, once
        ensemble = json.loads((REPO_ROOT / "weights" / member / "metrics.json").read_text())["ensemble"]
        assert facts.count(f"**the two together** (their probabilities averaged): accuracy **{ensemble['accuracy']:.1%}**") == 1
    for data, app in metrics["app"].items():  # what the tab predicts, first
        assert f"**{app['accuracy']:.1%}** on {app['n']:,} held-out {data} texts" in facts.split("\n\n")[0]


# --- the panel's examples and claims, against the bundled weights -------------------------------------------
EXPECTED_EXAMPLE_LABELS = {  # the label a reader of each example expects, which the models must give
    "One of the best films": "positive", "I really wanted to like this movie": "negative",
    "The first hour is slow": "positive", "Sooooo boring!!!": "negative", "A gorgeous, witty, seductive movie": "positive",
    "A gripping, beautifully acted thriller": "positive", "I went in expecting very little": "positive",
}
CLAIM = re.compile(r"“([^”]+)” → \*\*(positive|negative)\*\*")


def _expected_label(example: str) -> str:
    labels = [label for start, label in EXPECTED_EXAMPLE_LABELS.items() if example.startswith(start)]
    assert len(labels) == 1, f"no expected label for the example {example[:40]!r}: add it to EXPECTED_EXAMPLE_LABELS"
    return labels[0]


def test_every_example_is_classified_the_way_a_reader_expects(bundled):
    for (example,) in sentiment.EXAMPLES:
        view = sentiment.analyse(example)
        assert max(view.probabilities, key=view.probabilities.get) == _expected_label(example), example
        warnings = [n for n in view.notes.split("\n\n") if n.startswith("⚠️")]
        assert all("read as `<unk>`" in n for n in warnings), example  # at most a word outside a vocabulary
    readers = [sentiment._analyzer(need_lm=False).prepare(example).reader for (example,) in sentiment.EXAMPLES]
    assert set(readers) == {"short", "long"}  # the examples show both readers


def _what_to_try() -> list[str]:
    """The bullets of the panel's "What to try" and "Where these models are weak", one string each (continuation
    lines joined)."""
    section = sentiment.EXPLANATION.split("**What to try**", 1)[1].split("\n\n", 1)[0]
    weak = sentiment.EXPLANATION.split("### Where these models are weak\n", 1)[1]
    return [" ".join(bullet.split()) for part in (section, weak) for bullet in ("\n" + part).split("\n- ")[1:]]


def test_every_claim_in_what_to_try_holds_for_the_bundled_models(bundled):
    claims = [(bullet, CLAIM.findall(bullet)) for bullet in _what_to_try()]
    assert sum(len(found) for _, found in claims) >= 12  # the claims are still written in the form this test reads
    for bullet, found in claims:
        positive = []
        for text, label in found:
            view = sentiment.analyse(text)
            assert max(view.probabilities, key=view.probabilities.get) == label, f"{text!r} in: {bullet}"
            positive.append(view.probabilities["positive"])
        for (before, label_before), (after, label_after), p_before, p_after in zip(found, found[1:], positive, positive[1:]):
            if label_before != label_after:  # a flip: p(positive) moves the way the labels say
                assert (p_after > p_before) == (label_after == "positive"), f"{before!r} → {after!r}"


def test_the_changed_word_takes_the_colour_of_the_verdict(bundled):
    assert any("the word you changed takes the colour of the verdict" in bullet for bullet in _what_to_try())
    assert _typed_scores("The film was wonderful.")["wonderful"] > 0 > _typed_scores("The film was awful.")["awful"]


def test_a_french_rave_and_pan_get_the_same_probability_and_a_note(bundled):
    bullet = next(b for b in _what_to_try() if b.startswith("A French review"))
    assert "a rave and a pan get the same probability" in bullet
    (rave, _), (pan, _) = CLAIM.findall(bullet)
    rave_view, pan_view = sentiment.analyse(rave), sentiment.analyse(pan)
    assert rave_view.probabilities["positive"] == pytest.approx(pan_view.probabilities["positive"], abs=1e-4)
    for view in (rave_view, pan_view):
        assert "Most of the text is unknown to the model" in view.notes


def test_low_temperature_keeps_to_likelier_words_than_high(bundled):
    import torch

    assert any("at 0.3 the language model keeps to its likeliest words, at 1.5 it picks unlikely ones" in b
               for b in _what_to_try())
    analyzer = sentiment._analyzer(need_lm=True)
    lm = analyzer.lm

    def mean_log_prob(temperature: float, seed: int) -> float:
        prompt = analyzer._lm_ids("The acting was")
        new = analyzer.lm_vocab.encode(analyzer.generate("The acting was", 12, temperature=temperature, top_k=40, seed=seed).tokens)
        with torch.no_grad():
            outputs, _ = lm.encoder(torch.tensor([prompt + new]))
            log_probs = torch.log_softmax(lm.decoder(outputs[0, len(prompt) - 1 : -1]).float(), dim=-1)
        return float(log_probs[torch.arange(len(new)), torch.tensor(new)].mean())

    for seed in range(3):
        assert mean_log_prob(0.3, seed) > mean_log_prob(1.5, seed)


# --- what the notes show ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, span", [("j'adore", "`j'adore`"), ("<3", "`<3`"), ("a`b", "``a`b``"),
                                        ("`x", "`` `x ``"), ("``", "``` `` ```"), ("$x$", "`$x$`")])
def test_code_span_shows_any_token_as_typed(text, span):
    assert sentiment.code_span(text) == span


def test_unknown_words_in_the_notes_read_as_typed(bundled):
    view = sentiment.analyse("J'adore ce film <3 c'est l'histoire d'amour la plus belle, `zzqx` et zz`qq")
    for typed in ("`j'adore`", "`<3`", "`c'est`", "`l'histoire`", "``zz`qq``"):
        assert typed in view.notes
    assert "&#x27;" not in view.notes and "&lt;" not in view.notes


# --- the API and the layout -------------------------------------------------------------------------------
def _tab_app():
    import gradio as gr

    with gr.Blocks() as app:
        sentiment.build()
    return app


def test_api_endpoints_have_descriptive_parameters_defaults_and_fixed_labels():
    endpoints = {name: ([(p["parameter_name"], p["parameter_has_default"], p.get("parameter_default")) for p in ep["parameters"]],
                        [r["label"] for r in ep["returns"]])
                 for name, ep in _tab_app().get_api_info()["named_endpoints"].items()}
    assert endpoints == {
        "/classify": ([("review", True, "")], ["The tokens as the model sees them", "Sentiment", "Which words pushed it", "Notes"]),
        "/continue_text": ([("review", True, ""), ("words_to_generate", True, 20), ("temperature", True, 0.8),
                            ("top_k", True, 40), ("seed", True, 0)], ["Continuation", "Top-10 next words", "Language model notes"]),
        "/sentiment_model_facts": ([], ["Held-out scores"]),
        "/schedule_figure": ([], ["Fine-tuning schedule"]),
    }


def test_the_wired_functions_pass_settings_through_unchecked_to_the_handler(bundled):
    app = _tab_app()
    sliders = [b for b in app.blocks.values() if isinstance(b, (common.RawSlider, common.RawNumber))]
    assert len(sliders) == 4  # NaN and None reach read_setting/read_seed, which say what is wrong
    assert all(math.isnan(b.preprocess(float("nan"))) and b.preprocess(None) is None for b in sliders)
    tokens, probabilities, attribution, notes = sentiment.classify_review("Great film \ud800")
    assert probabilities is None and "lone surrogate" in notes


def test_the_schedule_plot_has_its_own_title_and_no_label_chip():
    assert "learning rate" in sentiment.schedule_figure().axes[0].get_title()
    plot = next(b for b in _tab_app().blocks.values() if getattr(b, "elem_id", None) == "sentiment-schedule")
    assert plot.show_label is False


def test_the_numbers_in_the_weaknesses_are_the_folders_own(bundled):
    import json

    from conftest import REPO_ROOT

    weak = " ".join(sentiment.EXPLANATION.split("### Where these models are weak", 1)[1].split())
    metrics = {name: json.loads((REPO_ROOT / "weights" / name / "metrics.json").read_text()) for name in ("sentiment", "sentiment-bwd")}
    imdb_pair_on_rt = metrics["sentiment-bwd"]["ensemble"]["extra"]["rt-polarity"]["accuracy"]
    assert f"the IMDB pair scores {imdb_pair_on_rt:.1%} on one-line reviews" in weak
    assert f"the one-liner pair {metrics['sentiment']['app']['rt-polarity']['accuracy']:.1%}" in weak
    vocab = sentiment.SHORT.get().config.encoder.vocab
    assert f"the {len(vocab):,} tokens seen at least twice" in weak and "“hated” is `<unk>`" in weak and "hated" not in vocab
