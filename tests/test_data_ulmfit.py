"""The bundled ULMFiT weights on the real data (skipped where it is absent): each number their metrics.json
records, measured again. Tokens come through the token cache (data/cache), as `train/*.py evaluate` reads them."""
import json

import pytest

from conftest import REPO_ROOT, complete_folder_size, needs_shared

pytestmark = pytest.mark.data

WEIGHTS = REPO_ROOT / "weights"
CACHE = REPO_ROOT / "data" / "cache"
TARGET = 0.91  # the lesson's bar for IMDB; the forward + backward pair must pass it
SAMPLE, TOLERANCE = 5_000, 0.0096  # IMDB test texts scored, and 2.58 standard errors of their accuracy (see the test)


def recorded(name: str) -> dict:
    return json.loads((WEIGHTS / name / "metrics.json").read_text())


APP_FOLDERS = ("sentiment", "sentiment-bwd", "sentiment-rt", "sentiment-nbsvm", "sentiment-lm")
# What the tab predicts must stay at least this good: issue 17's bars, met narrowly (91.19% and 80.02%, one rt-polarity
# snippet over; docs/experiments/ulmfit-sentiment.md). The one-liner pair (network + NBSVM) reads texts of up to 64 words.
APP_FLOORS = {"aclImdb": 0.91, "rt-polarity": 0.80}


def test_bundled_sentiment_folders_are_complete_and_within_budget():
    sizes = [complete_folder_size(name) for name in APP_FOLDERS]
    assert sum(sizes) <= 40 * 10**6  # the LM and the two readers' models (three int8 networks, one NBSVM) together


def _app_analyzer():
    from dl_core.ulmfit.infer import app_analyzer, load_reader_model

    return app_analyzer(lambda name, required: load_reader_model(WEIGHTS / name))


def test_the_tab_reproduces_its_rt_polarity_accuracy():
    """`train/sentiment.py evaluate --app --data .../rt-polarity.pos`: the 966 held-out snippets (seeded 10%), each read
    by the classifiers its length picks (all of them: the short-text ones), as recorded, over the floor."""
    rt = needs_shared("sentiment", "rt-polarity.pos")
    from dl_core.ulmfit.data import load_tokenized
    from dl_core.ulmfit.evaluate import app_accuracy

    heldout = load_tokenized(rt, cache_dir=None, workers=0, progress=False, seed=42).parts["heldout"]
    result = app_accuracy(_app_analyzer(), heldout)
    app = recorded("sentiment")["app"]["rt-polarity"]
    assert result["n"] == app["n"] == 966 and result["readers"] == app["readers"]
    assert result["accuracy"] == app["accuracy"] >= APP_FLOORS["rt-polarity"]


@pytest.mark.slow
def test_the_tab_reproduces_its_imdb_test_accuracy():
    """`train/sentiment.py evaluate --app --data .../aclImdb_v1.tar.gz` on a seeded 5,000 of the 25,000 test reviews
    (the tolerance: see the pair's test below), against the whole test set's accuracy, recorded, over the floor."""
    imdb = needs_shared("sentiment", "aclImdb_v1.tar.gz")
    from dl_core.ulmfit.data import load_tokenized
    from dl_core.ulmfit.evaluate import app_accuracy

    test = load_tokenized(imdb, cache_dir=CACHE, progress=False, seed=42).parts["heldout"]
    result = app_accuracy(_app_analyzer(), test.sample(SAMPLE, seed=0))
    app = recorded("sentiment")["app"]["aclImdb"]
    assert app["n"] == 25_000 and app["accuracy"] >= APP_FLOORS["aclImdb"]
    assert set(app["readers"]) == set(result["readers"]) == {"long", "short"}
    assert result["accuracy"] == pytest.approx(app["accuracy"], abs=TOLERANCE) and result["accuracy"] >= APP_FLOORS["aclImdb"] - TOLERANCE


@pytest.mark.slow
def test_bundled_forward_backward_pair_reproduces_its_imdb_test_accuracy():
    """A seeded 5,000 of the 25,000 IMDB test reviews, scored as `train/sentiment.py evaluate --weights
    weights/sentiment weights/sentiment-bwd` scores them: the ensemble and each member against the whole-test-set
    accuracies metrics.json records. All 25,000 took 56 minutes (50 CPU-minutes) on this 2-core machine shared with
    other jobs, and would take ~18 minutes on it alone (the 5,000 take ~3.5): over the ~10 minutes a test may.

    The tolerance: a sample of n = 5,000 drawn without replacement from N = 25,000 texts estimates an accuracy
    p ~ 0.91 with standard error sqrt(p (1 - p) / n * (N - n) / (N - 1)) = sqrt(0.0819 / 5000 * 0.8) = 0.0036
    (0.0037 at p = 0.905, the members); 2.58 standard errors (99%, two-sided) is 0.0096, under one point. The pair
    must also clear the 91% target on the whole set (as recorded) and on the sample, within that tolerance."""
    imdb = needs_shared("sentiment", "aclImdb_v1.tar.gz")
    from dl_core.hub import load_model
    from dl_core.ulmfit.data import load_tokenized
    from dl_core.ulmfit.evaluate import accuracy_on
    from dl_core.ulmfit.model import TextClassifier

    test = load_tokenized(imdb, cache_dir=CACHE, progress=False, seed=42).parts["heldout"]
    assert len(test) == 25_000
    result = accuracy_on([load_model(TextClassifier, WEIGHTS / name) for name in ("sentiment", "sentiment-bwd")],
                         test.sample(SAMPLE, seed=0))
    ensemble = recorded("sentiment-bwd")["ensemble"]
    assert result["n"] == SAMPLE and ensemble["n"] == 25_000 and ensemble["accuracy"] >= TARGET
    assert ensemble["member_accuracy"] == [recorded(name)["heldout"]["accuracy"] for name in ("sentiment", "sentiment-bwd")]
    assert result["accuracy"] == pytest.approx(ensemble["accuracy"], abs=TOLERANCE) and result["accuracy"] >= TARGET - TOLERANCE
    assert result["members"] == pytest.approx(ensemble["member_accuracy"], abs=TOLERANCE)
    for test_, recorded_test in zip(result["mcnemar"], ensemble["mcnemar"]):  # the pair beats each member on the sample too
        assert test_["b"] > test_["c"] and recorded_test["b"] > recorded_test["c"]


@pytest.mark.slow
def test_bundled_language_model_reproduces_its_held_out_perplexity():
    """`train/lm.py evaluate --weights weights/sentiment-lm --data .../aclImdb_v1.tar.gz --valid-fraction 0.01`:
    the 500 documents training held out (seed 42), 150,272 tokens, perplexity as recorded."""
    imdb = needs_shared("sentiment", "aclImdb_v1.tar.gz")
    from dl_core.hub import load_model
    from dl_core.text import Vocab
    from dl_core.ulmfit.data import lm_corpus, split_documents
    from dl_core.ulmfit.evaluate import perplexity
    from dl_core.ulmfit.model import LanguageModel

    lm = load_model(LanguageModel, WEIGHTS / "sentiment-lm")
    corpus, _ = lm_corpus(imdb, cache_dir=CACHE, progress=False)
    _, heldout = split_documents(corpus, valid_fraction=0.01, seed=42)
    result = perplexity(lm, heldout.numericalize(Vocab(lm.config.vocab)), bptt=70)
    valid = recorded("sentiment-lm")["valid"]
    assert (result["perplexity"], result["n_tokens"]) == (valid["perplexity"], valid["n_tokens"]) == (51.47, 150_272)
    assert recorded("sentiment-lm")["storage"]["perplexity_before_int8"] == 51.46  # int8 storage cost 0.01

    # the tab's int8 copy (LSTMs and output layer) on the same texts, as its card's fast-path row records it
    from demos.sentiment import LM
    from dl_core.fast import fast_paths_enabled, inference_copy

    if fast_paths_enabled():
        shipped = perplexity(inference_copy(LM.prepare(lm)), heldout.numericalize(Vocab(lm.config.vocab)), bptt=70)
        row = recorded("sentiment-lm")["fast_path"]["rows"][0]
        assert shipped["perplexity"] == pytest.approx(row["shipped"], abs=0.05)
        assert shipped["perplexity"] <= result["perplexity"] * (1 + row["tolerance"])


def test_bundled_classifiers_reproduce_their_rt_polarity_accuracy():
    """rt-polarity's held-out 10% (the split `evaluate` scores; never trained on: zero-shot), each member alone and
    the pair, as the folders' metrics.json record them."""
    rt = needs_shared("sentiment", "rt-polarity.pos")
    from dl_core.hub import load_model
    from dl_core.ulmfit.data import load_tokenized
    from dl_core.ulmfit.evaluate import accuracy_on
    from dl_core.ulmfit.model import TextClassifier

    heldout = load_tokenized(rt, cache_dir=None, workers=0, progress=False, seed=42).parts["heldout"]
    result = accuracy_on([load_model(TextClassifier, WEIGHTS / name) for name in ("sentiment", "sentiment-bwd")], heldout)
    members = [next(m for name, m in recorded(folder)["extra"].items() if "rt" in name) for folder in ("sentiment", "sentiment-bwd")]
    assert result["n"] == members[0]["n"] == 966
    assert result["members"] == [m["accuracy"] for m in members]
    assert result["accuracy"] == recorded("sentiment-bwd")["ensemble"]["extra"]["rt-polarity"]["accuracy"]


def test_bundled_nbsvm_reproduces_its_rt_polarity_scores():
    """`train/sentiment.py evaluate --weights weights/sentiment-nbsvm --data .../rt-polarity.pos` (and `--split valid`):
    the held-out 10% and the classifiers' validation split it was fitted without, as recorded."""
    rt = needs_shared("sentiment", "rt-polarity.pos")
    from dl_core.ulmfit.data import load_tokenized
    from dl_core.ulmfit.evaluate import accuracy_on
    from dl_core.ulmfit.infer import load_reader_model
    from dl_core.ulmfit.training import classifier_split

    data = load_tokenized(rt, cache_dir=None, workers=0, progress=False, seed=42)
    nbsvm = load_reader_model(WEIGHTS / "sentiment-nbsvm")
    train = data.parts["train"]
    _, valid = classifier_split(train, 0.04, 42)
    metrics = recorded("sentiment-nbsvm")
    for name, split in (("heldout", data.parts["heldout"]), ("valid", train.select(valid))):
        result = accuracy_on(nbsvm, split)
        assert {k: result[k] for k in ("accuracy", "n", "log_loss")} == {k: metrics[name][k] for k in ("accuracy", "n", "log_loss")}
    assert metrics["ensemble"]["accuracy"] == recorded("sentiment")["app"]["rt-polarity"]["accuracy"]  # the pair is the tab's reader
