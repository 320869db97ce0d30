"""Hyper-parameter schedules as plain functions of training progress p in [0, 1] (lesson 13's phases).

Each builder returns `f(p) -> value`; the ParamSchedule callback calls it every batch. Keeping them pure
functions makes them trivial to plot (the app's LR panel) and to test.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

Schedule = Callable[[float], float]


# --- the four decay shapes of lesson 13 (start -> end as p goes 0 -> 1) --------------------------------
def linear(start: float, end: float) -> Schedule:
    return lambda p: start + (end - start) * p


def cosine(start: float, end: float) -> Schedule:
    return lambda p: end + (start - end) / 2 * (1 + math.cos(math.pi * p))


def exponential(start: float, end: float) -> Schedule:
    return lambda p: start * (end / start) ** p


def polynomial(start: float, end: float, power: float = 0.9) -> Schedule:
    return lambda p: end + (start - end) * (1 - p) ** power


def constant(value: float) -> Schedule:
    return lambda p: value


def phases(parts: Sequence[tuple[float, Schedule]]) -> Schedule:
    """Chain schedules: `parts` = [(fraction of training, schedule), ...]; fractions must sum to 1."""
    total = sum(frac for frac, _ in parts)
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"phase fractions sum to {total}, not 1")

    def schedule(p: float) -> float:
        start = 0.0
        for i, (frac, fn) in enumerate(parts):
            if p < start + frac or i == len(parts) - 1:
                return fn(min(1.0, max(0.0, (p - start) / frac)))
            start += frac
        raise AssertionError("unreachable")

    return schedule


def one_cycle(lr_max: float, div: float = 25.0, final_div: float = 1e4, pct_start: float = 0.25) -> Schedule:
    """Leslie Smith's 1cycle (fastai v2 flavour): cosine warm-up lr_max/div -> lr_max, cosine anneal to lr_max/final_div."""
    return phases([(pct_start, cosine(lr_max / div, lr_max)), (1 - pct_start, cosine(lr_max, lr_max / final_div))])


def one_cycle_momentum(high: float = 0.95, low: float = 0.85, pct_start: float = 0.25) -> Schedule:
    """Momentum (Adam's beta1) moves opposite to the LR during 1cycle."""
    return phases([(pct_start, cosine(high, low)), (1 - pct_start, cosine(low, high))])


def slanted_triangular(lr_max: float, div: float = 20.0, cut_frac: float = 0.1) -> Schedule:
    """The lesson's `use_clr=(div, cut_div)` and ULMFiT's STLR: linear up for cut_frac, linear down after."""
    return phases([(cut_frac, linear(lr_max / div, lr_max)), (1 - cut_frac, linear(lr_max, lr_max / div))])


def sgdr(lr_max: float, n_cycles: int = 3, cycle_mult: float = 2.0, lr_min: float = 0.0) -> Schedule:
    """Cosine annealing with warm restarts; each cycle is cycle_mult times longer than the previous."""
    lengths = [cycle_mult**i for i in range(n_cycles)]
    total = sum(lengths)
    return phases([(length / total, cosine(lr_max, lr_min)) for length in lengths])
