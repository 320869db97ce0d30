"""Short, obvious reviews, as a visitor types them first: a dozen written before the bundled classifiers were
trained (and never used to tune them). The tab's prediction must get each one's polarity."""
from __future__ import annotations

import pytest

from dl_core.paths import REPO_ROOT

EVERYDAY = [
    ("This movie is good.", "positive"),
    ("I loved it.", "positive"),
    pytest.param("Not bad at all.", "positive", marks=pytest.mark.xfail(
        strict=True, reason="negation of a negative word: every bundled classifier reads 'bad' and barely the 'not' "
                            "(the panel's and the cards' 'Where these models are weak' say so); strict, so a model "
                            "that gets it right makes this test fail until the mark is removed")),
    ("A wonderful, moving film.", "positive"),
    ("The acting was superb and the story gripping.", "positive"),
    ("Best film I have seen this year.", "positive"),
    ("I hated it.", "negative"),
    ("This movie is terrible.", "negative"),
    ("Not good.", "negative"),
    ("A boring waste of time.", "negative"),
    ("The plot made no sense and the acting was awful.", "negative"),
    ("I want my two hours back.", "negative"),
]


@pytest.fixture(scope="module")
def analyse():
    if not (REPO_ROOT / "weights" / "sentiment" / "model.safetensors").is_file():
        pytest.skip("no bundled sentiment weights")
    from demos import sentiment

    return sentiment.analyse


@pytest.mark.parametrize("review,label", EVERYDAY, ids=[e.values[0] if hasattr(e, "values") else e[0] for e in EVERYDAY])
def test_the_tab_gets_the_polarity(analyse, review, label):
    probabilities = analyse(review).probabilities
    assert max(probabilities, key=probabilities.get) == label, f"{review!r}: {probabilities}"
