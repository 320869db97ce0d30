"""Calibrated stacking (Chao et al., "An Empirical Study and Analysis of Generalized Zero-Shot Learning", ECCV 2016):
a penalty on the words the head was trained on, chosen without looking at the unseen classes.

A DeViSE head trained on 8 class names learns to put every image near one of those 8 points, so an unseen cat lands
on "dog" even when "cat" is the next nearest (docs/experiments/devise-zero-shot.md: 1.2% unseen top-1). Ranking by

    cos(image, word) - penalty * [word was a training label]

trades a little seen-class accuracy for a lot of unseen. The penalty must not be tuned on the real unseen classes
(that would leak their labels), so it is chosen the way the paper does: hold 2 of the seen classes out as
pseudo-unseen, train a head on the rest (on 80% of their images), and keep the penalty that maximises the harmonic
mean of seen and pseudo-unseen accuracy on what that head did not see. Which 2 are held out matters (airplane and
automobile out leaves no vehicle but ship to fall onto), so this is done for several seeded pairs and their curves
averaged. The final head, trained on every seen class, stores the penalty in its config (`DeviseConfig.seen_penalty`); evaluate reports the scores with and without it.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from itertools import combinations
from math import comb

import torch
import torch.nn.functional as F

from dl_core.devise.evaluate import embed_split
from dl_core.devise.features import FeatureSplit
from dl_core.devise.model import DeviseHead

PENALTY_GRID = tuple(round(0.01 * i, 2) for i in range(41))  # 0.00, 0.01, ..., 0.40 (cosines span 2)


def harmonic_mean(seen: float, unseen: float) -> float:
    return 0.0 if seen + unseen == 0 else 2 * seen * unseen / (seen + unseen)


def penalty_curve(embedded: torch.Tensor, labels: torch.Tensor, names: torch.Tensor, is_trained: torch.Tensor,
                  grid: tuple[float, ...] = PENALTY_GRID) -> list[dict]:
    """Accuracy on trained-class and other-class images for each penalty: embedded (N, d) unit rows, labels (N,) into
    names (C, d), is_trained (C,) bool. Each row: {"penalty", "seen", "unseen", "h"}."""
    scores = embedded @ F.normalize(names, dim=1).T  # (N, C)
    image_trained = is_trained[labels]
    rows = []
    for penalty in grid:
        correct = (scores - penalty * is_trained.float()).argmax(dim=1) == labels
        seen, unseen = float(correct[image_trained].float().mean()), float(correct[~image_trained].float().mean())
        rows.append({"penalty": penalty, "seen": round(seen, 4), "unseen": round(unseen, 4),
                     "h": round(harmonic_mean(seen, unseen), 4)})
    return rows


def sibling_similarity(names: torch.Tensor, held_out: list[int], trained: list[int]) -> float:
    """How close held-out class names sit to the trained ones: the mean, over the held-out classes, of the cosine
    between its name and the nearest trained name. names: (C, d)."""
    unit = F.normalize(names, dim=1)
    return float((unit[held_out] @ unit[trained].T).max(dim=1).values.mean())


def matched_pseudo_sets(names: torch.Tensor, present: list[int], unseen: list[int], n_pseudo: int, rounds: int) -> list[list[int]]:
    """The `rounds` pseudo-unseen sets whose sibling similarity to the rest is nearest the real unseen classes' own
    (cat's nearest trained name is "dog" at 0.92: a pseudo split of frog and ship, far from everything, would ask for
    a bigger penalty than the real one needs). Only the unseen classes' names are read, never their images."""
    target = sibling_similarity(names, unseen, present)
    candidates = [list(pair) for pair in combinations(present, n_pseudo)]
    gaps = [abs(sibling_similarity(names, pair, [c for c in present if c not in pair]) - target) for pair in candidates]
    order = sorted(range(len(candidates)), key=lambda i: (round(gaps[i], 6), i))
    return [candidates[i] for i in order[:rounds]]


def random_pseudo_sets(present: list[int], n_pseudo: int, rounds: int, seed: int) -> list[list[int]]:
    """`rounds` seeded pseudo-unseen sets, distinct where there are enough."""
    rng = random.Random(seed)
    sets: list[list[int]] = []
    while len(sets) < rounds:
        pair = sorted(rng.sample(present, n_pseudo))
        if pair not in sets or len(sets) >= comb(len(present), n_pseudo):
            sets.append(pair)
    return sets


def choose_seen_penalty(seen: FeatureSplit, names: torch.Tensor, fit_head: Callable[[FeatureSplit], DeviseHead],
                        n_pseudo: int = 2, rounds: int = 4, valid_fraction: float = 0.2, seed: int = 0,
                        unseen: list[int] | None = None) -> dict:
    """The penalty for a head trained on `seen` (the training split without the unseen classes), by the protocol
    above, over `rounds` pseudo-unseen sets: matched to the `unseen` class indices' sibling similarity where they
    are given (matched_pseudo_sets), else seeded at random. names: (C, d) word vectors of all of seen.classes;
    fit_head trains a fresh head on a split. Returns {"seen_penalty", "valid_seen", "valid_unseen", "valid_h",
    "rounds"}: the means at the chosen penalty, and each round's pseudo-unseen classes and curve."""
    present = sorted(set(seen.labels.tolist()))
    if len(present) < n_pseudo + 2:
        raise ValueError(f"choosing a penalty needs at least {n_pseudo + 2} trained classes, not {len(present)}")
    pairs = (matched_pseudo_sets(names, present, unseen, n_pseudo, rounds) if unseen
             else random_pseudo_sets(present, n_pseudo, rounds, seed))
    runs = [_pseudo_round(seen, names, fit_head, present, pair, valid_fraction, seed + i) for i, pair in enumerate(pairs)]
    mean = [{key: round(sum(run["curve"][i][key] for run in runs) / len(runs), 4) for key in ("seen", "unseen", "h")}
            | {"penalty": point["penalty"]} for i, point in enumerate(runs[0]["curve"])]
    best = max(mean, key=lambda row: (row["h"], -row["penalty"]))
    return {"seen_penalty": best["penalty"], "valid_seen": best["seen"], "valid_unseen": best["unseen"],
            "valid_h": best["h"], "rounds": runs}


def _pseudo_round(seen: FeatureSplit, names: torch.Tensor, fit_head: Callable[[FeatureSplit], DeviseHead],
                  present: list[int], pseudo: list[int], valid_fraction: float, seed: int) -> dict:
    """One pseudo-unseen set: train without it (and without a validation share of the rest), score the curve."""
    is_pseudo_unseen = torch.isin(seen.labels, torch.tensor(pseudo))
    shuffled = torch.rand(len(seen), generator=torch.Generator().manual_seed(seed)) < valid_fraction
    head = fit_head(seen.only(~is_pseudo_unseen & ~shuffled))
    valid = seen.only(is_pseudo_unseen | shuffled)
    embedded = embed_split(head, valid)
    # The pseudo world has the trained classes only: relabel into them, the pseudo-unseen ones untrained.
    to_present = torch.full((len(seen.classes),), -1, dtype=torch.long)
    to_present[present] = torch.arange(len(present))
    is_trained = torch.tensor([label not in pseudo for label in present])
    curve = penalty_curve(embedded, to_present[valid.labels], names[present], is_trained)
    return {"pseudo_unseen": [seen.classes[i] for i in pseudo], "curve": curve}
