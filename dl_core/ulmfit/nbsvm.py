"""NBSVM (Wang & Manning 2012, "Baselines and bigrams"): the bag-of-words model lesson 10 measures ULMFiT against,
stored and served like the networks (safetensors + config.json) so the tab can average it with one.

A text is the set of its unigrams and bigrams (lower-cased words; the tokeniser's rule tokens such as xxmaj are
not words). Each feature f gets the naive Bayes log-count ratio

    r_f = log( (p_f / |p|_1) / (q_f / |q|_1) ),   p, q: alpha-smoothed counts of f in positive / negative texts,

and a logistic regression learns weights w on the binarised features scaled by r. Folding the two together, the
model is one number per feature, weight_f = w_f * r_f, and the log-odds of "positive" is

    margin(text) = bias + sum of weight_f over the features f present in the text.

So each n-gram's push is read straight off the model: the tab colours words by it.

    model = NBSVM.fit(token_lists, labels, max_features=100_000)
    model.predict_proba([["a", "gripping", "thriller", "."]])   # (1, 2): negative, positive
    model.token_scores(["not", "good"])                          # each word's share of the margin
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from dl_core.text import RULE_TOKENS

# Tokens that are not words of the text: the rule markers and the special tokens a corpus may carry.
NOT_WORDS = frozenset(RULE_TOKENS) | {"<bos>", "<eos>", "<pad>", "<unk>"}


def words_of(tokens: Sequence[str]) -> list[str]:
    """The lower-cased words among tokenize_with_rules' tokens (what the n-grams are made of)."""
    return [t.lower() for t in tokens if t not in NOT_WORDS]


def ngrams_of(words: Sequence[str], max_n: int = 2) -> list[str]:
    """Every 1..max_n-gram of `words`, in reading order, words joined by one space."""
    return [" ".join(words[i : i + n]) for n in range(1, max_n + 1) for i in range(len(words) - n + 1)]


def nb_log_count_ratio(x, labels: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """r = log((p / |p|_1) / (q / |q|_1)), p and q the alpha-smoothed feature counts of the positive (label 1)
    and negative (label 0) texts: how much more often each feature comes with a positive label."""
    p = alpha + np.asarray(x[labels == 1].sum(0)).ravel()
    q = alpha + np.asarray(x[labels == 0].sum(0)).ravel()
    return np.log((p / p.sum()) / (q / q.sum()))


@dataclass
class NBSVMConfig:
    """config.json: the features (their order is the weight vector's) and how they were made."""

    ngrams: list[str] = field(default_factory=list)  # "good", "not good": lower-cased words, one space between
    classes: list[str] = field(default_factory=lambda: ["negative", "positive"])
    max_n: int = 2  # longest n-gram
    C: float = 0.1  # the logistic regression's inverse L2 strength (fast.ai's NBSVM value)
    alpha: float = 1.0  # the naive Bayes counts' smoothing
    kind: str = "nbsvm"  # tells a folder of this model from a neural classifier's


class NBSVM(nn.Module, PyTorchModelHubMixin, library_name="fastai-part2-demos", tags=["text-classification", "nbsvm"]):
    """Binary sentiment from n-gram presence: margin = bias + sum of the present n-grams' weights."""

    def __init__(self, config: NBSVMConfig | dict):
        super().__init__()
        cfg = self.config = config if isinstance(config, NBSVMConfig) else NBSVMConfig(**config)
        if len(cfg.classes) != 2:
            raise ValueError(f"NBSVM is a two-class model; got classes {cfg.classes}")
        self._hub_mixin_config = asdict(cfg)
        self.weight = nn.Parameter(torch.zeros(len(cfg.ngrams)))  # (F,): w_f * r_f, log-odds per present n-gram
        self.bias = nn.Parameter(torch.zeros(()))
        self.index = {g: i for i, g in enumerate(cfg.ngrams)}

    def feature_ids(self, tokens: Sequence[str]) -> list[int]:
        """The known n-grams present in a text (each once: the features are binary)."""
        found = {self.index.get(g) for g in ngrams_of(words_of(tokens), self.config.max_n)}
        return sorted(i for i in found if i is not None)

    def margins(self, token_lists: Sequence[Sequence[str]]) -> torch.Tensor:
        """(N,) log-odds of the positive class."""
        weight = self.weight.detach()
        return torch.stack([weight[self.feature_ids(tokens)].sum() + self.bias.detach() for tokens in token_lists])

    def predict_proba(self, token_lists: Sequence[Sequence[str]]) -> torch.Tensor:
        """(N, 2) class probabilities, in config.classes order."""
        if not token_lists:
            return torch.zeros(0, 2)
        positive = torch.sigmoid(self.margins(token_lists))
        return torch.stack([1 - positive, positive], dim=-1)

    def contributions(self, tokens: Sequence[str]) -> list[tuple[str, float]]:
        """The present n-grams and their weights, strongest push first."""
        return sorted(((self.config.ngrams[i], float(self.weight.detach()[i])) for i in self.feature_ids(tokens)),
                      key=lambda item: -abs(item[1]))

    def token_scores(self, tokens: Sequence[str]) -> list[float]:
        """One score per token (0 for rule and special tokens): its unigram's weight plus an equal share of
        each present n-gram it is part of. Each n-gram is counted once, at its first occurrence, so the scores
        add up to margin - bias, as integrated gradients' add up to the network's change of margin."""
        word_positions = [i for i, t in enumerate(tokens) if t not in NOT_WORDS]
        words = [tokens[i].lower() for i in word_positions]
        scores = [0.0] * len(tokens)
        seen: set[int] = set()
        weight = self.weight.detach()
        for n in range(1, self.config.max_n + 1):
            for start in range(len(words) - n + 1):
                feature = self.index.get(" ".join(words[start : start + n]))
                if feature is None or feature in seen:
                    continue
                seen.add(feature)
                share = float(weight[feature]) / n
                for position in word_positions[start : start + n]:
                    scores[position] += share
        return scores

    @classmethod
    def fit(cls, token_lists: Sequence[Sequence[str]], labels: Sequence[int], max_features: int = 100_000,
            C: float = 0.1, alpha: float = 1.0, max_n: int = 2, classes: Sequence[str] = ("negative", "positive")) -> "NBSVM":
        """Count the n-grams (the `max_features` most frequent), compute r, fit the logistic regression
        (scikit-learn's liblinear: deterministic) and fold w * r into one weight per n-gram."""
        from scipy import sparse
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LogisticRegression

        labels = np.asarray(labels)
        if set(np.unique(labels)) != {0, 1}:
            raise ValueError("NBSVM.fit needs texts of both classes, labelled 0 and 1")
        vectorizer = CountVectorizer(analyzer=lambda words: ngrams_of(words, max_n), binary=True, max_features=max_features)
        x = vectorizer.fit_transform([words_of(t) for t in token_lists])
        r = nb_log_count_ratio(x, labels, alpha)
        regression = LogisticRegression(C=C, max_iter=1000, solver="liblinear").fit(x @ sparse.diags(r), labels)
        ngrams = vectorizer.get_feature_names_out().tolist()
        model = cls(NBSVMConfig(ngrams=ngrams, classes=list(classes), max_n=max_n, C=C, alpha=alpha))
        with torch.no_grad():
            model.weight.copy_(torch.from_numpy(regression.coef_[0] * r))
            model.bias.fill_(float(regression.intercept_[0]))
        return model.eval()
