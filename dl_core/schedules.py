"""Hyper-parameter schedules as plain functions of training progress p in [0, 1] (lesson 13's phases).

Each builder returns `f(p) -> value`; the ParamSchedule callback calls it every batch with p = iteration / total
iterations. Keeping them pure functions makes them trivial to plot (`sample` gives exactly the values a fit of n
iterations applies) and to test.

Lesson 13's TrainingPhase API is `Phase`: a length in epochs and an LR and a momentum that each move start -> end
along one of the decay shapes. `phase_schedules(phases)` turns a list of them into the (lr, momentum) pair of
schedules; the presets build the lesson's phase lists (two SGD phases, SGDR, 1cycle with annihilation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
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


# --- lesson 13's training phases ---------------------------------------------------------------------------------
DECAYS = ("constant", "linear", "cosine", "exponential", "polynomial")  # fastai 0.7's DecayType: NO, LINEAR, ...
MAX_PHASES = 64
MAX_EPOCHS = 10_000


class ScheduleError(ValueError):
    """A phase list that cannot be trained with; the message says which phase and why."""


@dataclass(frozen=True)
class Phase:
    """One training phase: `epochs` long (fractions allowed), LR and momentum each moving start -> end along its decay.
    A constant decay holds the start value; polynomial uses `power` (the lesson: "p of 0.9 ... really good results")."""
    epochs: float
    lr: tuple[float, float]
    momentum: tuple[float, float] = (0.9, 0.9)
    lr_decay: str = "linear"
    momentum_decay: str = "linear"
    power: float = 0.9


def decay(kind: str, start: float, end: float, power: float = 0.9) -> Schedule:
    """The decay shape `kind` from start to end as p goes 0 -> 1."""
    if kind == "constant":
        return constant(start)
    if kind == "polynomial":
        return polynomial(start, end, power)
    shapes = {"linear": linear, "cosine": cosine, "exponential": exponential}
    if kind not in shapes:
        raise ScheduleError(f"unknown decay {kind!r}: use one of {', '.join(DECAYS)}")
    return shapes[kind](start, end)


def _finite(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ScheduleError(f"{what} must be a finite number, not {value!r}")
    return float(value)


def check_phases(plan: Sequence[Phase]) -> None:
    """Raise ScheduleError (which phase, what is wrong, what is allowed) unless every phase can be trained with."""
    if not plan:
        raise ScheduleError("the schedule has no phases: add at least one")
    if len(plan) > MAX_PHASES:
        raise ScheduleError(f"{len(plan)} phases is too many: at most {MAX_PHASES}")
    for i, phase in enumerate(plan, 1):
        where = f"phase {i}"
        if _finite(phase.epochs, f"{where}: length") <= 0:
            raise ScheduleError(f"{where}: length must be more than 0 epochs, not {phase.epochs:g}")
        for value, what in zip(phase.lr, ("LR start", "LR end")):
            if _finite(value, f"{where}: {what}") <= 0:
                raise ScheduleError(f"{where}: {what} must be more than 0, not {value:g}")
        for value, what in zip(phase.momentum, ("momentum start", "momentum end")):
            if not 0 <= _finite(value, f"{where}: {what}") < 1:
                raise ScheduleError(f"{where}: {what} must be in [0, 1), not {value:g}")
        for kind, what in ((phase.lr_decay, "LR decay"), (phase.momentum_decay, "momentum decay")):
            if kind not in DECAYS:
                raise ScheduleError(f"{where}: {what} {kind!r} is not one of {', '.join(DECAYS)}")
        if phase.momentum_decay == "exponential" and min(phase.momentum) == 0:
            raise ScheduleError(f"{where}: an exponential momentum decay needs both ends above 0")
        if "polynomial" in (phase.lr_decay, phase.momentum_decay) and _finite(phase.power, f"{where}: power") <= 0:
            raise ScheduleError(f"{where}: the polynomial power must be more than 0, not {phase.power:g}")
    if total_epochs(plan) > MAX_EPOCHS:
        raise ScheduleError(f"the phases add up to {total_epochs(plan):g} epochs: at most {MAX_EPOCHS:,}")


def total_epochs(plan: Sequence[Phase]) -> float:
    return float(sum(phase.epochs for phase in plan))


def phase_schedules(plan: Sequence[Phase]) -> tuple[Schedule, Schedule]:
    """(lr, momentum) schedules of the whole fit: each phase gets its share (epochs / total) of the progress."""
    check_phases(plan)
    total = total_epochs(plan)
    lr = [(ph.epochs / total, decay(ph.lr_decay, *ph.lr, ph.power)) for ph in plan]
    momentum = [(ph.epochs / total, decay(ph.momentum_decay, *ph.momentum, ph.power)) for ph in plan]
    return phases(lr), phases(momentum)


def sample(schedule: Schedule, n_iter: int) -> list[float]:
    """The values a fit of `n_iter` iterations applies, in order: ParamSchedule sets schedule(i / n_iter) before batch i."""
    return [schedule(i / n_iter) for i in range(n_iter)]


# presets: the lesson's phase lists
def two_sgd_phases(lr: float = 1e-2, lr_after: float = 1e-3, epochs: float = 1, epochs_after: float = 2,
                   momentum: float = 0.9) -> list[Phase]:
    """training_phase.ipynb's first example: SGD at 1e-2 for one epoch, then at 1e-3 for two."""
    return [Phase(epochs, (lr, lr), (momentum, momentum), "constant", "constant"),
            Phase(epochs_after, (lr_after, lr_after), (momentum, momentum), "constant", "constant")]


def sgdr_phases(lr: float, n_cycles: int = 3, cycle_len: float = 1, cycle_mult: float = 2, lr_min: float | None = None,
                momentum: float = 0.9) -> list[Phase]:
    """SGDR (Loshchilov & Hutter): cosine from lr down to lr_min (default lr/100), restarted n_cycles times, each
    cycle cycle_mult times longer than the one before."""
    low = lr / 100 if lr_min is None else lr_min
    return [Phase(cycle_len * cycle_mult**i, (lr, low), (momentum, momentum), "cosine", "constant") for i in range(n_cycles)]


def one_cycle_phases(epochs: float, lr: float, div: float = 20, pct: float = 20, max_mom: float = 0.95,
                     min_mom: float = 0.85) -> list[Phase]:
    """The lesson's 1cycle (`use_clr_beta=(div, pct, max_mom, min_mom)`, phases_1cycle): LR linearly lr/div -> lr
    while momentum falls max_mom -> min_mom, back down while momentum rises, then the last pct% of training
    annihilates the LR linearly lr/div -> lr/(100 div) at momentum max_mom."""
    cycle = epochs * (1 - pct / 100)
    return [Phase(cycle / 2, (lr / div, lr), (max_mom, min_mom), "linear", "linear"),
            Phase(cycle / 2, (lr, lr / div), (min_mom, max_mom), "linear", "linear"),
            Phase(epochs - cycle, (lr / div, lr / (100 * div)), (max_mom, max_mom), "linear", "constant")]
