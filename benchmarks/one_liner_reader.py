"""How the sentiment tab's one-liner reader (texts of up to 64 words) was chosen, without its held-out texts: each
candidate scored on two validation sets it never learnt from, by log-loss (lower is better) and accuracy.

    python -m benchmarks.one_liner_reader

- rt-polarity validation: the seeded 4% of rt-polarity's training part every one-liner classifier keeps out
  (`train/sentiment.py evaluate --split valid`), 348 snippets.
- short IMDB reviews: half of IMDB's training reviews of up to 64 words (seeded), the other reviews the reader
  also gets. The NBSVMs fitted here leave that half out; the bundled one, fitted afterwards, learnt from all.
  The IMDB classifiers learnt from these reviews, so their score on them is flattering (marked).

Candidates: the one-liner network (`weights/sentiment-rt`) alone, with the backward one-liner network (the previous
bundle, read from git history when present) and with an NBSVM fitted on rt-polarity alone or on rt-polarity + IMDB.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from dl_core.paths import REPO_ROOT, data_path
from dl_core.ulmfit.data import load_labelled, seeded_split
from dl_core.ulmfit.evaluate import accuracy_on
from dl_core.ulmfit.infer import SHORT_TEXT_WORDS, count_words, load_reader_model
from dl_core.ulmfit.nbsvm import NBSVM
from dl_core.ulmfit.training import classifier_split

PREVIOUS_BACKWARD = ("7206dec", "weights/sentiment-rt-bwd")  # the one-liner reader before the NBSVM joined it


def _texts(split) -> list[list[str]]:
    return [split.corpus[i] for i in range(len(split))]


def _previous_backward(folder: Path):
    """The backward one-liner network as last committed, or None outside a git checkout that has it."""
    folder.mkdir(parents=True, exist_ok=True)
    commit, path = PREVIOUS_BACKWARD
    try:
        for name in ("config.json", "model.safetensors"):
            data = subprocess.run(["git", "show", f"{commit}:{path}/{name}"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
            (folder / name).write_bytes(data)
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    return load_reader_model(folder)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rt", default=str(data_path("sentiment", "rt-polarity.pos")))
    parser.add_argument("--imdb", default=str(data_path("sentiment", "aclImdb_v1.tar.gz")))
    parser.add_argument("--cache-dir", default="data/cache")
    args = parser.parse_args(argv)

    rt = load_labelled(args.rt, args.cache_dir, progress=False)
    rt_train = rt.parts["train"]
    fit_idx, valid_idx = classifier_split(rt_train, 0.04, 42)
    imdb_train = load_labelled(args.imdb, args.cache_dir, progress=False).parts["train"]
    short = [i for i in range(len(imdb_train)) if count_words(imdb_train.corpus[i]) <= SHORT_TEXT_WORDS]
    _, short_valid = seeded_split(short, 0.5, 42)
    imdb_fit = sorted(set(range(len(imdb_train))) - set(short_valid))
    sets = {"rt-polarity validation": rt_train.select(valid_idx), "short IMDB reviews": imdb_train.select(short_valid)}
    print(f"{len(valid_idx)} rt-polarity validation snippets; {len(short_valid)} of IMDB's {len(short)} short training reviews",
          file=sys.stderr)

    rt_fit = rt_train.select(fit_idx)
    nbsvm_rt = NBSVM.fit(_texts(rt_fit), rt_fit.labels)
    imdb_part = imdb_train.select(imdb_fit)
    nbsvm_both = NBSVM.fit(_texts(rt_fit) + _texts(imdb_part), np.concatenate([rt_fit.labels, imdb_part.labels]))
    network = load_reader_model(REPO_ROOT / "weights" / "sentiment-rt")
    candidates = {"one-liner network alone": [network], "+ NBSVM (rt-polarity)": [network, nbsvm_rt],
                  "+ NBSVM (rt-polarity + IMDB): the bundle": [network, nbsvm_both]}
    with tempfile.TemporaryDirectory() as tmp:
        backward = _previous_backward(Path(tmp) / "bwd")
        if backward is not None:
            candidates["+ backward one-liner network (before)"] = [network, backward]
        imdb_pair = [load_reader_model(REPO_ROOT / "weights" / name) for name in ("sentiment", "sentiment-bwd")]
        candidates["IMDB pair (trained on the short IMDB reviews)"] = imdb_pair
        print("| candidate | " + " | ".join(f"{name}: log-loss · accuracy" for name in sets) + " |")
        print("|---|" + "---|" * len(sets))
        for name, models in candidates.items():
            scores = [accuracy_on(models, split) for split in sets.values()]
            print(f"| {name} | " + " | ".join(f"{s['log_loss']:.4f} · {100 * s['accuracy']:.2f}%" for s in scores) + " |", flush=True)


if __name__ == "__main__":
    main()
