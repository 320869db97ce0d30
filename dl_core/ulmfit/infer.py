"""Lesson 10 inference: everything the sentiment tab shows, from a classifier and (optionally) its language model.

    analyzer = SentimentAnalyzer(load_model(TextClassifier, "weights/sentiment"), load_model(LanguageModel, "weights/sentiment-lm"))
    text = analyzer.prepare("A wonderful, moving film.")
    analyzer.classify(text)        # {"negative": 0.03, "positive": 0.97}
    analyzer.attribute(text)       # one score per token: > 0 pushed towards positive
    analyzer.next_words("A wonderful", 10)  # the LM's top-10 next words with probabilities
    analyzer.generate("A wonderful", 20, temperature=0.8, top_k=40, seed=0)

The tab's analyzer has two readers (`APP_BUNDLE`): whole reviews go to the IMDB forward + backward classifiers,
and texts of at most SHORT_TEXT_WORDS words to a one-liner pair, a classifier trained on rt-polarity's one-line
reviews and an NBSVM (bag of n-grams, `dl_core/ulmfit/nbsvm.py`). Each reader averages its models' probabilities.
`prepare` picks the reader; `classify` and `attribute` use the one it picked.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F

from dl_core.fast import inference_copy
from dl_core.ulmfit.model import LanguageModel, TextClassifier, concat_pool
from dl_core.ulmfit.nbsvm import NBSVM
from dl_core.text import RULE_TOKENS, TK_MAJ, TK_UP, Vocab, detokenize_with_rules, tokenize_with_rules


# Texts of at most this many words (rule tokens such as xxmaj not counted) go to the short-text classifiers:
# rt-polarity's longest training snippet has 63 words, and 96% of IMDB reviews are longer. Chosen from the
# training data's lengths, before any classifier was scored.
SHORT_TEXT_WORDS = 64

# The weight folders the tab uses, by reader; the first of each is required, the others join when they load.
APP_BUNDLE = {
    "long": ("sentiment", "sentiment-bwd"),
    "short": ("sentiment-rt", "sentiment-nbsvm"),
}
READER_NAMES = {
    "long": "the classifiers trained on whole IMDB reviews",
    "short": "the one-liner pair (a classifier trained on rt-polarity's one-line reviews and an NBSVM)",
}

# What a reader averages: neural classifiers and NBSVMs. The first of a reader is a TextClassifier: its
# vocabulary and max_len prepare the text for all of them.
ReaderModel = Union[TextClassifier, NBSVM]


def load_reader_model(folder: str | Path) -> ReaderModel:
    """A weight folder of one of the readers: an NBSVM (config.json "kind": "nbsvm") or a TextClassifier."""
    from dl_core.hub import load_model

    config_file = Path(folder) / "config.json"
    kind = json.loads(config_file.read_text()).get("kind") if config_file.is_file() else None
    return load_model(NBSVM if kind == "nbsvm" else TextClassifier, folder)


def count_words(tokens: Sequence[str]) -> int:
    """Words among tokenize_with_rules' tokens: the rule tokens (xxmaj, xxup, ...) are not words."""
    return sum(t not in RULE_TOKENS for t in tokens)


def reader_for(n_words: int, has_short: bool, short_max_words: int = SHORT_TEXT_WORDS) -> str:
    """Which reader a text of `n_words` words goes to: "short" or "long"."""
    return "short" if has_short and n_words <= short_max_words else "long"


@dataclass
class PreparedText:
    tokens: list[str]  # as the model sees them: <bos> first, unknown words as <unk>
    ids: list[int]
    original_tokens: list[str]  # the tokeniser's output before the vocabulary (unknown words spelled out)
    n_cut: int  # tokens beyond the classifier's max_len, not read
    reader: str = "long"  # which classifiers read it: "long" (whole reviews) or "short" (one-liners)

    @property
    def n_unknown(self) -> int:
        return sum(i == Vocab.unk_id for i in self.ids)

    def head(self, n: int) -> "PreparedText":
        """The first n tokens (e.g. to attribute only the start of a very long text)."""
        return PreparedText(self.tokens[:n], self.ids[:n], self.original_tokens[:n], self.n_cut + max(0, len(self.ids) - n),
                            self.reader)


@dataclass
class Generation:
    tokens: list[str]  # the continuation's tokens (rule tokens included)
    text: str  # the continuation as readable text


def check_ensemble(models: list[ReaderModel]) -> list[ReaderModel]:
    """Models whose probabilities can be averaged: one list of classes, a TextClassifier first, and the
    TextClassifiers sharing one vocabulary (they read the same ids)."""
    if not isinstance(models[0], TextClassifier):
        raise ValueError("an ensemble starts with a neural classifier: its vocabulary prepares the text")
    first = models[0].config
    networks = [m for m in models[1:] if isinstance(m, TextClassifier)]
    if any(m.config.encoder.vocab != first.encoder.vocab for m in networks):
        raise ValueError("an ensemble's neural classifiers must share one vocabulary")
    if any(m.config.classes != first.classes for m in models[1:]):
        raise ValueError("an ensemble's models must share one list of classes")
    return models


def _as_list(classifier: ReaderModel | Sequence[ReaderModel]) -> list[ReaderModel]:
    return check_ensemble([m.eval() for m in ([classifier] if isinstance(classifier, (TextClassifier, NBSVM)) else classifier)])


def reader_probabilities(model: ReaderModel, text: "PreparedText") -> torch.Tensor:
    """(C,) one model's probabilities for a prepared text: ids for a network, the words for an NBSVM."""
    if isinstance(model, NBSVM):
        return model.predict_proba([text.original_tokens])[0]
    return inference_copy(model).predict_proba([text.ids])[0]  # its fast copy where the app attached one


def app_analyzer(load_classifier: Callable[[str, bool], ReaderModel | None], lm: LanguageModel | None = None) -> "SentimentAnalyzer":
    """The tab's analyzer, made of the folders APP_BUNDLE names. `load_classifier(name, required)` returns a
    folder's classifier, or None where it is not available and not required (only the first "long" folder
    is required; without the first "short" folder every text goes to the "long" classifiers)."""
    long = [load_classifier(name, i == 0) for i, name in enumerate(APP_BUNDLE["long"])]
    short = [load_classifier(name, False) for name in APP_BUNDLE["short"]]
    short = [m for m in short if m is not None] if short[0] is not None else None
    return SentimentAnalyzer([m for m in long if m is not None], lm, short=short)


@torch.enable_grad()  # explicitly: it must not depend on the grad mode a server thread was left in
def mean_path_gradient(classifier: TextClassifier, embedded: torch.Tensor, alphas: torch.Tensor,
                       objective: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Integrated gradients' average gradient: d objective / d point over the path's points alpha * embedded,
    by autograd through the encoder's layers (eval: no dropout). embedded (T, E), alphas (S,); `objective` maps
    the logits (S, C) to one number per point (S,). Returns (T, E)."""
    enc = classifier.encoder
    path = (alphas[:, None, None] * embedded).requires_grad_(True)  # (S, T, E)
    x = path
    for i, layer in enumerate(enc.layers):  # the encoder's forward from embeddings on
        x, _ = layer(x)
        if i < len(enc.hidden_dropouts):
            x = enc.hidden_dropouts[i](x)
    lengths = torch.full((path.size(0),), path.size(1))
    (grad,) = torch.autograd.grad(objective(classifier.head(concat_pool(x, lengths))).sum(), path)
    return grad.mean(0)


class SentimentAnalyzer:
    """`classifier` is one TextClassifier or several models (ULMFiT's forward + backward ensemble; an NBSVM may
    join): several average their probabilities, and the attribution is that of their mean logit margin.
    `short` (optional) is a second group for texts of at most `short_max_words` words (see SHORT_TEXT_WORDS)."""

    def __init__(self, classifier: ReaderModel | Sequence[ReaderModel], lm: LanguageModel | None = None,
                 short: ReaderModel | Sequence[ReaderModel] | None = None, short_max_words: int = SHORT_TEXT_WORDS):
        self.readers = {"long": _as_list(classifier)}
        if short:
            self.readers["short"] = _as_list(short)
            if self.readers["short"][0].config.classes != self.readers["long"][0].config.classes:
                raise ValueError("the short-text classifiers must have the same classes as the others")
        self.short_max_words = short_max_words
        self.classifiers = self.readers["long"]
        self.classifier = self.classifiers[0]
        self.lm = lm.eval() if lm is not None else None
        self.lm_vocab = Vocab(lm.config.vocab) if lm is not None else None
        self.classes = list(self.classifier.config.classes)

    def reader(self, n_words: int) -> str:
        return reader_for(n_words, "short" in self.readers, self.short_max_words)

    def prepare(self, text: str) -> PreparedText:
        """Tokenise `text` for the reader its length picks (that reader's vocabulary and max_len)."""
        tokens = tokenize_with_rules(text)
        reader = self.reader(count_words(tokens))
        first = self.readers[reader][0]  # its vocabulary and max_len prepare the text for its whole group
        vocab = Vocab(first.config.encoder.vocab)
        kept = tokens[: first.config.max_len - 1]  # <bos> takes one place
        ids = [Vocab.bos_id] + vocab.encode(kept)
        return PreparedText([vocab.itos[i] for i in ids], ids, ["<bos>"] + kept, len(tokens) - len(kept), reader)

    @torch.no_grad()
    def classify(self, text: PreparedText) -> dict[str, float]:
        probs = torch.stack([reader_probabilities(model, text) for model in self.readers[text.reader]]).mean(0)  # (C,)
        return {name: float(p) for name, p in zip(self.classes, probs)}

    def attribute(self, text: PreparedText, steps: int = 8, target: str = "positive") -> list[float]:
        """Integrated gradients (Sundararajan et al. 2017) on the word embeddings: for each token, how much
        its embedding moved the logit margin `target` minus the other class, compared with a text of
        all-zero embeddings (same length). The scores sum to about margin(text) - margin(zero text).
        The `steps` interpolations run as one batch. An NBSVM's scores are exact: each present n-gram's
        weight, shared among its words (`NBSVM.token_scores`; also in log-odds, so the two kinds average).
        For an ensemble, the mean of its models' scores (the attribution of their mean margin: integrated
        gradients are linear in the function)."""
        per_model = [self._nbsvm_scores(model, text, target) if isinstance(model, NBSVM)
                     else self._integrated_gradients(model, text.ids, steps, target) for model in self.readers[text.reader]]
        return torch.stack(per_model).mean(0).tolist()

    def _nbsvm_scores(self, model: NBSVM, text: PreparedText, target: str) -> torch.Tensor:
        scores = torch.tensor(model.token_scores(text.original_tokens))  # towards the positive class
        return scores if model.config.classes.index(target) == 1 else -scores

    def _integrated_gradients(self, model: TextClassifier, token_ids: list[int], steps: int, target: str) -> torch.Tensor:
        target_index = self.classes.index(target)
        backwards = model.config.backwards  # this model reads the text end to start: so does the path
        ids = torch.tensor([token_ids[::-1] if backwards else token_ids])  # (1, T)
        with torch.no_grad():
            embedded = model.encoder.embedding(ids)[0]  # (T, E)
        alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps  # midpoint rule on (0, 1]

        def margin(logits: torch.Tensor) -> torch.Tensor:  # (steps, C) -> (steps,)
            if len(self.classes) == 2:
                return logits[:, target_index] - logits[:, 1 - target_index]
            return F.log_softmax(logits, -1)[:, target_index]

        gradient = mean_path_gradient(model, embedded, alphas, margin)  # the model itself: fp32, or the app's bf16 copy
        scores = (embedded * gradient).sum(-1)  # (T,): embedding x average gradient
        return scores.flip(0) if backwards else scores  # back in reading order

    @torch.no_grad()
    def next_words(self, text: str, k: int = 10, fold_case: bool = True) -> list[tuple[str, float]]:
        """The LM's k most likely next tokens after `text`, with probabilities.

        With `fold_case` the case markers are folded into the word they announce, p("The") = p(xxmaj) x
        p(the | text, xxmaj), so after a full stop the list shows likely words rather than one 97% `xxmaj`.
        One forward pass: the batch [text + xxmaj, text + xxup] gives both the next-token distribution
        (second-last position) and the word after each marker (last position)."""
        lm = self._need_lm()
        ids = self._lm_ids(text)
        if not fold_case:
            probs = lm.next_token_log_probs(ids).exp()
            top = probs.topk(min(k, probs.numel()))
            return [(self.lm_vocab.itos[i], float(p)) for p, i in zip(top.values, top.indices)]
        maj, up = self.lm_vocab.encode([TK_MAJ, TK_UP])
        outputs, _ = lm.encoder(torch.tensor([ids + [maj], ids + [up]], device=lm.encoder.embedding.weight.device))  # (2, T+1, E)
        probs = F.softmax(lm.decoder(outputs[:, -2:]).float(), dim=-1)  # (2, 2, V)
        plain, after = probs[0, 0], {maj: probs[0, 1], up: probs[1, 1]}
        words: dict[str, float] = {}
        for marker_id, spell in ((None, str), (maj, lambda w: w[:1].upper() + w[1:]), (up, str.upper)):
            dist, weight = (plain, 1.0) if marker_id is None else (after[marker_id], float(plain[marker_id]))
            top = dist.topk(min(k + len(RULE_TOKENS), dist.numel()))
            for p, i in zip(top.values.tolist(), top.indices.tolist()):
                token = self.lm_vocab.itos[i]
                if token in (TK_MAJ, TK_UP) or (marker_id is not None and token in RULE_TOKENS):
                    continue
                words[spell(token)] = words.get(spell(token), 0.0) + weight * p
        return sorted(words.items(), key=lambda item: -item[1])[:k]

    @torch.no_grad()
    def generate(self, text: str, n_words: int = 20, temperature: float = 0.8, top_k: int = 40,
                 seed: int | None = None) -> Generation:
        """Continue `text` with `n_words` words (rule tokens such as xxmaj do not count as words)."""
        lm = self._need_lm()
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        words = 0

        def enough_words(token: int) -> bool:  # markers such as xxmaj are tokens, not words: count the words
            nonlocal words
            words += self.lm_vocab.itos[token] not in RULE_TOKENS
            return words >= n_words

        new = lm.generate(self._lm_ids(text), 3 * n_words, temperature=temperature, top_k=top_k, generator=generator,
                          stop=enough_words)  # the prompt is read once, however many markers come
        tokens = [self.lm_vocab.itos[i] for i in new]
        return Generation(tokens, detokenize_with_rules(tokens))

    def _lm_ids(self, text: str) -> list[int]:
        return [Vocab.bos_id] + self.lm_vocab.encode(tokenize_with_rules(text))[-(self.classifier.config.max_len - 1) :]

    def _need_lm(self) -> LanguageModel:
        if self.lm is None:
            raise RuntimeError("no language model loaded")
        return inference_copy(self.lm)  # its int8 copy where the app attached one (no gradients are taken here)

