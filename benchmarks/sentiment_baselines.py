"""Lesson 10's yardsticks without a neural network: bag-of-words sentiment classifiers on the splits the ULMFiT
classifiers are scored on (IMDB train/ -> test/; rt-polarity's seeded 10%, as `train/sentiment.py evaluate`).

    python -m benchmarks.sentiment_baselines            # prints the table the README and the cards quote
    python -m benchmarks.sentiment_baselines --write    # also records it in weights/sentiment/metrics.json ("baselines")

- TF-IDF + logistic regression: unigrams and bigrams, sublinear term frequencies.
- NBSVM (Wang & Manning 2012, "Baselines and bigrams"): binarised unigram + bigram counts scaled by the naive
  Bayes log-count ratio r = log((p / |p|_1) / (q / |q|_1)) (p, q: smoothed feature counts of the positive and
  negative texts), then a linear classifier; here logistic regression, as in fast.ai's version of it. (The tab's
  one-liner reader uses the same model on the tokeniser's words, trained by `train/sentiment.py nbsvm`.)
The texts are read as they are (IMDB's `<br />` line breaks become spaces); both models are deterministic.
Their settings were fixed beforehand, not tuned on the test texts: scikit-learn's C = 1 for TF-IDF, fast.ai's
C = 0.1 for NBSVM.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from dl_core.paths import WEIGHTS_DIR, data_path, display_path
from dl_core.ulmfit.data import load_sentiment_data
from dl_core.ulmfit.nbsvm import nb_log_count_ratio

_BREAK = re.compile(r"<br\s*/?>", re.I)


def texts_and_labels(rows) -> tuple[list[str], np.ndarray]:
    return [_BREAK.sub(" ", r.text) for r in rows], np.array([r.label for r in rows])


def tfidf_logistic(train_texts, train_labels, test_texts, C: float = 1.0) -> np.ndarray:
    """Predictions of a logistic regression on TF-IDF uni+bigram features."""
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train, x_test = vectorizer.fit_transform(train_texts), vectorizer.transform(test_texts)
    model = LogisticRegression(C=C, max_iter=1000, solver="liblinear").fit(x_train, train_labels)
    return model.predict(x_test)


def nbsvm(train_texts, train_labels, test_texts, C: float = 0.1) -> np.ndarray:
    """Predictions of NBSVM with a logistic-regression classifier: binarised uni+bigram counts times r."""
    vectorizer = CountVectorizer(ngram_range=(1, 2), binary=True)
    x_train, x_test = vectorizer.fit_transform(train_texts), vectorizer.transform(test_texts)
    r = sparse.diags(nb_log_count_ratio(x_train, train_labels))
    model = LogisticRegression(C=C, max_iter=1000, solver="liblinear").fit(x_train @ r, train_labels)
    return model.predict(x_test @ r)


MODELS = {"TF-IDF + logistic regression": tfidf_logistic, "NBSVM (uni+bigrams, logistic regression)": nbsvm}


def run(data_sets: dict[str, str], models: dict) -> list[dict]:
    results = []
    for name, path in data_sets.items():
        data = load_sentiment_data(path, heldout_fraction=0.1, seed=42)  # the split train/sentiment.py evaluate scores
        train_texts, train_labels = texts_and_labels(data.train)
        test_texts, test_labels = texts_and_labels(data.heldout)
        for model_name, fit_predict in models.items():
            t0 = time.perf_counter()
            accuracy = float((fit_predict(train_texts, train_labels, test_texts) == test_labels).mean())
            results.append({"model": model_name, "data": name, "n_train": len(train_texts), "n_test": len(test_texts),
                            "accuracy": round(accuracy, 4), "seconds": round(time.perf_counter() - t0, 1)})
            print(f"{model_name} on {name}: {accuracy:.4f} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imdb", default=str(data_path("sentiment", "aclImdb_v1.tar.gz")), help="aclImdb tar.gz or folder")
    parser.add_argument("--rt", default=str(data_path("sentiment", "rt-polarity.pos")), help="rt-polarity .pos (with its .neg)")
    parser.add_argument("--write", action="store_true", help="record the table in weights/sentiment/metrics.json (\"baselines\")")
    args = parser.parse_args(argv)
    data_sets = {"IMDB test (train/ -> test/)": args.imdb, "rt-polarity (seeded 10% held out)": args.rt}
    results = run(data_sets, MODELS)
    print("| model | data | train texts | test texts | accuracy |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['data']} | {r['n_train']:,} | {r['n_test']:,} | {r['accuracy']:.4f} |")
    if args.write:
        metrics_file = WEIGHTS_DIR / "sentiment" / "metrics.json"
        metrics = json.loads(metrics_file.read_text())
        argv_shown = [display_path(a) for a in (sys.argv[1:] if argv is None else argv)]
        metrics["baselines"] = {"command": f"python -m benchmarks.sentiment_baselines {shlex.join(argv_shown)}".strip(),
                                "results": results}
        metrics_file.write_text(json.dumps(metrics, indent=1))
        print(f"wrote {metrics_file} (rewrite its card: python train/sentiment.py card --weights weights/sentiment)", file=sys.stderr)


if __name__ == "__main__":
    main()
