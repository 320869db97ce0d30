"""NBSVM, the one-liner reader's bag-of-n-grams half: the model, its Hub folder, and its place beside a network."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from dl_core import hub
from dl_core.text import RULE_TOKENS, SPECIAL_TOKENS, TokenizedCorpus, tokenize_with_rules
from dl_core.ulmfit.data import TokenizedSplit
from dl_core.ulmfit.infer import SentimentAnalyzer, check_ensemble, load_reader_model, reader_probabilities
from dl_core.ulmfit.model import AWDLSTMConfig, LanguageModel, TextClassifier
from dl_core.ulmfit.nbsvm import NBSVM, NBSVMConfig, ngrams_of, words_of

POSITIVE = ["a great film", "great acting and a moving story", "i loved it", "moving and great", "not bad at all , great"]
NEGATIVE = ["a dull film", "dull acting and a silly story", "i hated it", "silly and dull", "not good , dull"]


def _toy() -> tuple[list[list[str]], np.ndarray]:
    texts = [t.split() for t in POSITIVE + NEGATIVE]
    return texts, np.array([1] * len(POSITIVE) + [0] * len(NEGATIVE))


def test_words_and_ngrams_leave_out_rule_tokens_and_fold_case():
    tokens = tokenize_with_rules("The film was GREAT")
    assert "xxmaj" in tokens and "xxup" in tokens
    assert words_of(["<bos>", *tokens]) == ["the", "film", "was", "great"]
    assert ngrams_of(["not", "bad", "at"]) == ["not", "bad", "at", "not bad", "bad at"]


def test_fit_folds_the_naive_bayes_ratios_into_the_logistic_regression_weights():
    """The stored weight per n-gram (w * r) gives exactly scikit-learn's probabilities on the scaled features."""
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from dl_core.ulmfit.nbsvm import nb_log_count_ratio

    texts, labels = _toy()
    model = NBSVM.fit(texts, labels, C=1.0)
    vectorizer = CountVectorizer(analyzer=lambda words: ngrams_of(words), binary=True)
    x = vectorizer.fit_transform([words_of(t) for t in texts])
    r = sparse.diags(nb_log_count_ratio(x, labels))
    reference = LogisticRegression(C=1.0, solver="liblinear").fit(x @ r, labels)
    new = [["a", "great", "story"], ["a", "silly", "film", "!"], ["unseen", "words"]]
    expected = reference.predict_proba(vectorizer.transform([words_of(t) for t in new]) @ r)
    assert np.allclose(model.predict_proba(new).numpy(), expected, atol=1e-6)
    assert model.predict_proba([["great"]])[0, 1] > 0.5 > model.predict_proba([["dull"]])[0, 1]
    assert model.predict_proba([]).shape == (0, 2)


def test_max_features_keeps_the_most_frequent_ngrams():
    texts = [["x", "good"], ["x", "good", "y"], ["x", "bad"], ["bad", "x", "y"], ["x"]]  # x: 5 texts, y, good, bad: 2
    model = NBSVM.fit(texts, [1, 1, 0, 0, 1], max_features=1)
    assert model.config.ngrams == ["x"] and len(NBSVM.fit(texts, [1, 1, 0, 0, 1]).config.ngrams) == 9


def test_token_scores_add_up_to_the_margin_and_follow_the_ngram_weights():
    texts, labels = _toy()
    model = NBSVM.fit(texts, labels)
    tokens = ["<bos>", "xxmaj", "a", "great", "film", "xxmaj", "a", "great", "film"]  # repeated n-grams count once
    scores = model.token_scores(tokens)
    assert len(scores) == len(tokens) and scores[0] == scores[1] == 0.0  # special and rule tokens score nothing
    margin = float(model.margins([tokens])[0] - model.bias.detach())
    assert sum(scores) == pytest.approx(margin, abs=1e-5)
    contributions = dict(model.contributions(tokens))
    assert set(contributions) == {"a", "great", "film", "a great", "great film", "film a"} & set(model.config.ngrams)
    assert scores[3] == pytest.approx(contributions["great"] + contributions["a great"] / 2 + contributions["great film"] / 2, abs=1e-6)
    strengths = [abs(w) for w in contributions.values()]
    assert strengths == sorted(strengths, reverse=True)


def test_fit_refuses_a_single_class():
    texts, _ = _toy()
    with pytest.raises(ValueError, match="both classes"):
        NBSVM.fit(texts, np.ones(len(texts), dtype=int))


def test_the_folder_round_trips_and_is_told_apart_from_a_network(tmp_path):
    texts, labels = _toy()
    model = NBSVM.fit(texts, labels)
    hub.save_model(model, tmp_path / "nbsvm", "card", {"heldout": {}}, fp16=False)
    config = json.loads((tmp_path / "nbsvm" / "config.json").read_text())
    assert config["kind"] == "nbsvm" and config["ngrams"] == model.config.ngrams
    loaded = load_reader_model(tmp_path / "nbsvm")
    assert isinstance(loaded, NBSVM) and torch.equal(loaded.weight, model.weight) and torch.equal(loaded.bias, model.bias)
    network = _network()
    network.save_pretrained(tmp_path / "network")
    assert isinstance(load_reader_model(tmp_path / "network"), TextClassifier)
    with pytest.raises(FileNotFoundError):
        load_reader_model(tmp_path / "nothing")
    with pytest.raises(ValueError, match="two-class"):
        NBSVM(NBSVMConfig(ngrams=["a"], classes=["a", "b", "c"]))


def _network(seed: int = 0) -> TextClassifier:
    torch.manual_seed(seed)
    words = sorted({w for t in POSITIVE + NEGATIVE for w in t.split()})
    cfg = AWDLSTMConfig(vocab=list(SPECIAL_TOKENS) + list(RULE_TOKENS) + words, emb_dim=8, hidden_dim=12)
    return TextClassifier.from_language_model(LanguageModel(cfg), head_hidden=6).eval()


def test_a_reader_averages_a_network_and_an_nbsvm():
    texts, labels = _toy()
    network, nbsvm = _network(), NBSVM.fit(texts, labels)
    analyzer = SentimentAnalyzer(_network(1), short=[network, nbsvm], short_max_words=10)
    text = analyzer.prepare("I loved it, a GREAT film")
    assert text.reader == "short"
    alone = [reader_probabilities(m, text) for m in (network, nbsvm)]
    assert analyzer.classify(text)["positive"] == pytest.approx(float(alone[0][1] + alone[1][1]) / 2, abs=1e-6)
    scores = analyzer.attribute(text, steps=4)
    network_scores = SentimentAnalyzer(network).attribute(replace(text, reader="long"), steps=4)
    nbsvm_scores = nbsvm.token_scores(text.original_tokens)
    assert scores == pytest.approx([(a + b) / 2 for a, b in zip(network_scores, nbsvm_scores)], abs=1e-5)
    negative = analyzer.attribute(text, steps=4, target="negative")
    assert negative == pytest.approx([-s for s in scores], abs=1e-5)  # two classes: the margin changes sign
    with pytest.raises(ValueError, match="starts with a neural classifier"):
        check_ensemble([nbsvm, network])


def test_accuracy_on_scores_a_mixed_ensemble_with_log_loss():
    from dl_core.ulmfit.evaluate import accuracy_on

    texts, labels = _toy()
    table = sorted({t for d in texts for t in d})
    ids = np.array([table.index(t) for d in texts for t in d], dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in texts])]).astype(np.int64)
    split = TokenizedSplit(TokenizedCorpus(table, ids, offsets), labels)
    nbsvm = NBSVM.fit(texts, labels)
    alone = accuracy_on(nbsvm, split)
    assert alone["accuracy"] == 1.0 and alone["n_cut"] == 0 and 0 < alone["log_loss"] < np.log(2)
    pair = accuracy_on([_network(), nbsvm], split)
    assert pair["members"][1] == 1.0 and len(pair["mcnemar"]) == 2
