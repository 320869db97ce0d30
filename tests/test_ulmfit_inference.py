"""Lesson 10 inference helpers: text preparation, attribution, generation, and undoing the rule tokens."""
import pytest
import torch

from dl_core.ulmfit.model import AWDLSTMConfig, LanguageModel, TextClassifier, concat_pool
from dl_core.ulmfit.infer import SentimentAnalyzer
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
