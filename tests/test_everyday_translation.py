"""The sentences a visitor types first: a dozen everyday French sentences, written with their reference
translations before the bundled model was trained (and never used to tune it). The bundled model must get
each sentence's content words; where English has several right words, any of them counts. It gets 11 of the 13;
the two it misses are strict expected failures (a model that gets one right fails the test until its mark goes)."""
from __future__ import annotations

import re

import pytest

from dl_core.paths import REPO_ROOT

WEIGHTS = REPO_ROOT / "weights" / "translation"

# (French, a reference translation, the content words: each entry a word or a set of accepted alternatives)
EVERYDAY = [
    ("Elle a acheté une voiture rouge hier.", "She bought a red car yesterday.",
     ["bought", "red", "car", "yesterday"]),
    ("Je suis très fatigué ce soir.", "I am very tired this evening.", ["tired", {"evening", "tonight"}]),
    ("Où est la gare ?", "Where is the station?", ["where", "station"]),
    ("Mon frère travaille dans un hôpital.", "My brother works in a hospital.", ["brother", "works", "hospital"]),
    ("Nous allons au cinéma demain.", "We are going to the cinema tomorrow.",
     [{"going", "go"}, {"cinema", "movies", "movie", "theater"}, "tomorrow"]),
    ("Il fait beau aujourd'hui.", "The weather is nice today.", [{"nice", "beautiful", "good", "fine", "lovely"}, "today"]),
    ("Un homme en chemise bleue est assis sur un banc.", "A man in a blue shirt is sitting on a bench.",
     ["man", "blue", "shirt", {"sitting", "seated", "sits"}, "bench"]),
    ("Deux enfants jouent dans le parc.", "Two children are playing in the park.",
     ["two", {"children", "kids"}, {"playing", "play"}, "park"]),
    ("Le chat dort sur le canapé.", "The cat is sleeping on the sofa.",
     ["cat", {"sleeping", "sleeps"}, {"sofa", "couch"}]),
    pytest.param("J'aime lire des livres le soir.", "I like reading books in the evening.",
                 [{"like", "love", "enjoy"}, {"read", "reading"}, "books", {"evening", "night"}],
                 marks=pytest.mark.xfail(strict=True, reason="says 'tonight' (ce soir) for the habitual 'le soir'")),
    ("Peux-tu m'aider, s'il te plaît ?", "Can you help me, please?", ["help", "please"]),
    ("Une femme marche avec son chien dans la rue.", "A woman is walking her dog in the street.",
     ["woman", {"walking", "walks"}, "dog", "street"]),
    pytest.param("Le train part à huit heures.", "The train leaves at eight o'clock.",
                 ["train", {"leaves", "departs", "leave"}, {"eight", "8"}],
                 marks=pytest.mark.xfail(strict=True, reason="drops the verb: 'The train at eight.'")),
]


def missing_content_words(translation: str, content_words) -> list[str]:
    words = set(re.findall(r"[a-z0-9]+", translation.lower()))
    wanted = [{w} if isinstance(w, str) else w for w in content_words]
    return ["/".join(sorted(options)) for options in wanted if not options & words]


def test_the_checker_finds_missing_words():
    assert missing_content_words("She bought a red car yesterday.", EVERYDAY[0][2]) == []
    assert missing_content_words("She bought a car.", EVERYDAY[0][2]) == ["red", "yesterday"]


@pytest.fixture(scope="module")
def translator():
    if not (WEIGHTS / "model.safetensors").is_file():
        pytest.skip(f"no bundled weights in {WEIGHTS}")
    from dl_core.hub import load_model
    from dl_core.translation.infer import Translator, inference_precision
    from dl_core.translation.model import Seq2Seq

    return Translator(load_model(Seq2Seq, WEIGHTS), inference_precision())  # the precision the tab decodes in here


@pytest.mark.parametrize("french,reference,content_words", EVERYDAY,
                         ids=[s.values[0] if hasattr(s, "values") else s[0] for s in EVERYDAY])
def test_the_bundled_model_gets_the_content_words(translator, french, reference, content_words):
    translation = translator.translate_batch([french], beam_size=5)[0]
    missing = missing_content_words(translation, content_words)
    assert not missing, f"{french!r} -> {translation!r} (reference {reference!r}) misses {missing}"
