"""Lesson 10 inference helpers: text preparation, attribution, generation, and undoing the rule tokens."""
import pytest
import torch

from dl_core.ulmfit.model import AWDLSTMConfig, LanguageModel, TextClassifier, concat_pool
from benchmarks.attribution_backward import lstm_mean_path_gradient
from dl_core.ulmfit.infer import SentimentAnalyzer, mean_path_gradient
from dl_core.text import RULE_TOKENS, SPECIAL_TOKENS, detokenize_with_rules, tokenize_with_rules, undo_rules

WORDS = ["the", "film", "was", "great", "awful", ".", "i", "it", "loved", "!", "very"]


def analyzer(max_len: int = 3000) -> SentimentAnalyzer:
    torch.manual_seed(0)
    cfg = AWDLSTMConfig(vocab=list(SPECIAL_TOKENS) + list(RULE_TOKENS) + WORDS, emb_dim=8, hidden_dim=12)
    lm = LanguageModel(cfg).eval()
    clf = TextClassifier.from_language_model(lm, head_hidden=6, max_len=max_len).eval()
    return SentimentAnalyzer(clf, lm)


def test_rule_tokens_turn_back_into_text():
    text = "The film was GREAT!!! I loved it, very very very much. Sooo good"
    assert detokenize_with_rules(tokenize_with_rules(text)) == text
    assert undo_rules(["xxmaj", "xxup", "a", "xxrep", "x", "!", "xxwrep"]) == ["A", "x", "!"]  # broken markers dropped
    assert undo_rules(["xxrep", "999", "!"]) == ["!"] * 50  # a generated huge count is capped


def test_prepare_marks_unknown_words_and_cuts_long_texts():
    a = analyzer(max_len=6)
    text = a.prepare("The film was zzyzx and great and long")
    assert text.tokens[:5] == ["<bos>", "xxmaj", "the", "film", "was"] and text.original_tokens[5] == "zzyzx"
    assert len(text.ids) == 6 and text.n_cut == 4 and text.n_unknown == 1


def test_attribution_scores_add_up_to_the_margin_change():
    a = analyzer()
    text = a.prepare("The film was great. I loved it!")
    scores = a.attribute(text, steps=16)
    assert len(scores) == len(text.ids)
    clf = a.classifier
    with torch.no_grad():
        def margin(embedded):
            x = embedded
            for layer in clf.encoder.layers:
                x, _ = layer(x)
            logits = clf.head(concat_pool(x, torch.tensor([x.size(1)])))
            return float(logits[0, 1] - logits[0, 0])

        embedded = clf.encoder.embedding(torch.tensor([text.ids]))
        change = margin(embedded) - margin(torch.zeros_like(embedded))
    # integrated gradients' completeness, up to the 16-step approximation of the path integral
    assert abs(sum(scores) - change) <= 0.05 * abs(change) + 1e-3


def test_generation_counts_words_and_is_seeded():
    a = analyzer()
    out = a.generate("The film was", n_words=7, temperature=1.0, top_k=5, seed=3)
    assert sum(t not in RULE_TOKENS for t in out.tokens) >= 7 and out.text
    assert a.generate("The film was", n_words=7, temperature=1.0, top_k=5, seed=3) == out
    top = a.next_words("The film was", k=4)
    assert len(top) == 4 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)


def test_classify_returns_a_distribution_over_the_classes():
    a = analyzer()
    probs = a.classify(a.prepare("great film"))
    assert set(probs) == {"negative", "positive"} and abs(sum(probs.values()) - 1) < 1e-6


def test_next_words_fold_the_case_markers_into_the_word():
    a = analyzer()
    vocab = a.lm_vocab
    ids = [vocab.bos_id] + vocab.encode(tokenize_with_rules("The film was great ."))
    plain = a.lm.next_token_log_probs(ids).exp()
    after_maj = a.lm.next_token_log_probs(ids + vocab.encode(["xxmaj"])).exp()
    after_up = a.lm.next_token_log_probs(ids + vocab.encode(["xxup"])).exp()
    the, maj, up = vocab.encode(["the", "xxmaj", "xxup"])
    words = dict(a.next_words("The film was great .", k=200))
    assert "xxmaj" not in words and "xxup" not in words
    assert abs(words["the"] - float(plain[the])) < 1e-5
    assert abs(words["The"] - float(plain[maj] * after_maj[the])) < 1e-5
    assert abs(words["THE"] - float(plain[up] * after_up[the])) < 1e-5
    raw = dict(a.next_words("The film was great .", k=200, fold_case=False))
    assert abs(sum(raw.values()) - 1) < 1e-4 and "xxmaj" in raw


def test_a_forward_and_backward_ensemble_averages_probabilities_and_attributions():
    """ULMFiT's ensemble: the backward model's attribution comes back in reading order, and the ensemble's
    is the mean of its members' (so it still adds up to the mean margin change)."""
    import copy

    single = analyzer()
    forward = single.classifier
    torch.manual_seed(1)
    backward = copy.deepcopy(forward)
    backward.config = copy.deepcopy(forward.config)
    backward.config.backwards = True
    for p in backward.parameters():
        p.data += 0.3 * torch.randn_like(p)  # a different model, as a trained backward one would be
    both = SentimentAnalyzer([forward, backward], single.lm)
    text = both.prepare("The film was great. I loved it, very much!")
    expected = (forward.predict_proba([text.ids])[0] + backward.predict_proba([text.ids])[0]) / 2
    assert list(both.classify(text).values()) == pytest.approx(expected.tolist(), abs=1e-6)
    alone = SentimentAnalyzer(backward)
    scores = alone.attribute(text, steps=16)
    # the backward model read the reversed text: its scores are a forward model's on that text, turned round
    as_forward = copy.deepcopy(backward)
    as_forward.config.backwards = False
    reversed_text = type(text)(text.tokens[::-1], text.ids[::-1], text.original_tokens[::-1], 0)
    assert scores == pytest.approx(SentimentAnalyzer(as_forward).attribute(reversed_text, steps=16)[::-1], abs=1e-5)
    mean = [(f + b) / 2 for f, b in zip(single.attribute(text, steps=16), scores)]
    assert both.attribute(text, steps=16) == pytest.approx(mean, abs=1e-5)
    other_vocab = TextClassifier.from_language_model(LanguageModel(AWDLSTMConfig(vocab=list(SPECIAL_TOKENS) + ["x"], emb_dim=8, hidden_dim=12)))
    with pytest.raises(ValueError, match="vocabulary"):
        SentimentAnalyzer([forward, other_vocab])


def test_attribution_works_on_a_thread_whose_grad_mode_was_left_off():
    """Server threads are shared: a request must not depend on the grad mode the previous one left behind."""
    a = analyzer()
    text = a.prepare("The film was great. I loved it!")
    expected = a.attribute(text, steps=8)
    torch.set_grad_enabled(False)
    try:
        assert a.attribute(text, steps=8) == pytest.approx(expected)
    finally:
        torch.set_grad_enabled(True)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_written_out_lstm_backward_gives_autograds_gradients(n_classes):
    """benchmarks/attribution_backward.py's integrated gradients skip the weight gradients and share layer 1's
    projection along the path: its timings mean something only if the numbers are autograd's."""
    torch.manual_seed(1)
    cfg = AWDLSTMConfig(vocab=list(SPECIAL_TOKENS) + WORDS, emb_dim=8, hidden_dim=12)
    clf = TextClassifier.from_language_model(LanguageModel(cfg), head_hidden=16, classes=[f"c{i}" for i in range(n_classes)])
    for p in clf.parameters():
        p.data = 0.5 * torch.randn_like(p)  # large enough weights that every gate saturates somewhere
    for norm in (m for m in clf.head if isinstance(m, torch.nn.BatchNorm1d)):
        norm.running_mean.normal_()
        norm.running_var.uniform_(0.5, 2.0)
    clf.eval()
    embedded, alphas = torch.randn(23, 8), (torch.arange(5) + 0.5) / 5

    def objective(logits):
        return torch.log_softmax(logits, -1)[:, 1]

    reference = mean_path_gradient(clf, embedded, alphas, objective)
    written_out = lstm_mean_path_gradient(clf, embedded, alphas, objective)
    assert reference.abs().max() > 1e-3  # a gradient worth comparing
    assert written_out == pytest.approx(reference, abs=1e-5 * float(reference.abs().max()))


# --- the fast copies the app reads with (dl_core/fast.py) --------------------------------------------------------
def test_a_bf16_copy_classifies_and_attributes_close_to_fp32_and_leaves_the_model_alone():
    from dl_core.fast import speed_up_recurrent
    from dl_core.ulmfit.infer import SentimentAnalyzer

    a = analyzer()
    clf = a.classifier
    text = a.prepare("The film was great. I loved it! Very very great.")
    expected_probs, expected_scores = a.classify(text), torch.tensor(a.attribute(text, steps=16))
    copied = speed_up_recurrent(clf, (torch.nn.LSTM,), bf16=True)
    assert copied.fast_path.describe() == "bf16"
    assert {p.dtype for p in clf.encoder.layers.parameters()} == {torch.float32}  # the model itself is untouched
    assert {p.dtype for p in copied.encoder.layers.parameters()} == {torch.bfloat16}
    assert copied.encoder.embedding.weight is clf.encoder.embedding.weight  # what is not converted is shared
    fast = SentimentAnalyzer(copied, a.lm)
    probs, scores = fast.classify(text), torch.tensor(fast.attribute(text, steps=16))
    assert probs == pytest.approx(expected_probs, abs=0.02)
    assert float((scores - expected_scores).norm() / expected_scores.norm()) < 0.1


def test_the_app_holds_the_bf16_copy_alone_where_native_else_fp32_with_an_int8_copy(monkeypatch):
    from dl_core import fast

    clf = analyzer().classifier
    assert fast.inference_copy(clf) is clf  # no copy attached: a reference run
    monkeypatch.setattr(fast, "native_bf16", lambda: False)
    held = fast.with_inference_copy(clf, (torch.nn.LSTM,), prefer_bf16=True)  # this CPU would emulate bf16
    assert held is clf and fast.inference_copy(clf).fast_path.int8  # gradients: the fp32 model itself
    monkeypatch.setattr(fast, "native_bf16", lambda: True)
    held = fast.with_inference_copy(analyzer().classifier, (torch.nn.LSTM,), prefer_bf16=True)
    assert held.fast_path.bf16 and fast.inference_copy(held) is held  # one copy serves classify and gradients
    monkeypatch.setenv("DL_FAST_PATH", "0")
    assert fast.with_inference_copy(clf, (torch.nn.LSTM,), prefer_bf16=True) is clf


def test_a_bf16_lstm_layer_takes_and_returns_float32_states():
    from dl_core.fast import speed_up_recurrent

    layer = _classifier(0).encoder.layers[0]
    fast_layer = speed_up_recurrent(layer, (torch.nn.LSTM,), bf16=True)
    x, state = torch.randn(2, 5, 8), (torch.zeros(1, 2, 12), torch.zeros(1, 2, 12))
    (expected, _), (outputs, (h, c)) = layer(x, state), fast_layer(x, state)
    assert outputs.dtype == h.dtype == c.dtype == torch.float32
    assert torch.allclose(outputs, expected, atol=0.02)


# --- the tab's two readers: whole reviews and one-liners ------------------------------------------------------
def _classifier(seed: int, words=WORDS, backwards: bool = False) -> TextClassifier:
    torch.manual_seed(seed)
    cfg = AWDLSTMConfig(vocab=list(SPECIAL_TOKENS) + list(RULE_TOKENS) + list(words), emb_dim=8, hidden_dim=12, backwards=backwards)
    return TextClassifier.from_language_model(LanguageModel(cfg), head_hidden=6, backwards=backwards).eval()


def test_texts_go_to_the_reader_their_length_picks():
    from dl_core.ulmfit.infer import SHORT_TEXT_WORDS, count_words, reader_for

    assert count_words(tokenize_with_rules("The film was GREAT.")) == 5  # xxmaj and xxup are not words; "." is
    assert reader_for(SHORT_TEXT_WORDS, has_short=True) == "short" and reader_for(SHORT_TEXT_WORDS + 1, has_short=True) == "long"
    assert reader_for(3, has_short=False) == "long"
    short_words = WORDS[:5]  # a different vocabulary: each reader prepares the text with its own
    a = SentimentAnalyzer([_classifier(0), _classifier(1, backwards=True)], short=_classifier(2, short_words), short_max_words=4)
    one_liner, review = a.prepare("The film was great"), a.prepare("The film was great . I loved it !")
    assert (one_liner.reader, review.reader) == ("short", "long")
    assert one_liner.ids == [1] + [a.readers["short"][0].config.encoder.vocab.index(t) for t in one_liner.tokens[1:]]
    assert "<unk>" in a.prepare("I loved it").tokens and "<unk>" not in review.tokens  # "loved": only the long vocabulary
    expected = a.readers["short"][0].predict_proba([one_liner.ids])[0]
    assert a.classify(one_liner)["positive"] == pytest.approx(float(expected[1]))
    assert len(a.attribute(one_liner, steps=4)) == len(one_liner.ids)


def test_the_app_analyzer_needs_only_the_first_imdb_classifier():
    from dl_core.ulmfit.infer import APP_BUNDLE, app_analyzer

    models = {name: _classifier(i) for i, name in enumerate(APP_BUNDLE["long"] + APP_BUNDLE["short"])}
    full = app_analyzer(lambda name, required: models[name])
    assert [len(full.readers[r]) for r in ("long", "short")] == [2, 2]
    missing = {APP_BUNDLE["short"][0], APP_BUNDLE["long"][1]}
    partial = app_analyzer(lambda name, required: None if name in missing else models[name])
    assert list(partial.readers) == ["long"] and len(partial.readers["long"]) == 1  # no short reader without its first


def test_app_accuracy_scores_each_text_with_its_reader():
    import numpy as np

    from dl_core.text import TokenizedCorpus
    from dl_core.ulmfit.data import TokenizedSplit
    from dl_core.ulmfit.evaluate import accuracy_on, app_accuracy

    docs = [["the", "film"] * (1 + i % 4) for i in range(24)]  # 2, 4, 6 or 8 words
    table = sorted({t for d in docs for t in d})
    ids = np.array([table.index(t) for d in docs for t in d], dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    split = TokenizedSplit(TokenizedCorpus(table, ids, offsets), np.array([i % 2 for i in range(24)]))
    a = SentimentAnalyzer(_classifier(0), short=_classifier(3), short_max_words=4)
    result = app_accuracy(a, split)
    short = [i for i, d in enumerate(docs) if len(d) <= 4]
    long = [i for i in range(24) if i not in short]
    assert result["readers"]["short"]["n"] == len(short) == 12 and result["readers"]["long"]["n"] == 12
    assert result["readers"]["short"]["accuracy"] == accuracy_on(a.readers["short"], split.select(short))["accuracy"]
    assert result["readers"]["long"]["accuracy"] == accuracy_on(a.readers["long"], split.select(long))["accuracy"]
    parts = result["readers"]
    assert result["accuracy"] == pytest.approx((parts["short"]["accuracy"] * 12 + parts["long"]["accuracy"] * 12) / 24, abs=1e-4)
