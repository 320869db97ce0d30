"""ULMFiT's training recipe as Learner callbacks and helpers (lesson 10).

    budget = WallClockBudget(120)                   # stop cleanly after 120 s, LR fully annealed
    groups = model.layer_groups()                   # embedding, LSTM 1..n, head
    opt_fn = discriminative_optimizer(groups, decay=2.6, betas=(0.8, 0.99), weight_decay=0.01)
    callbacks = [budget, GradualUnfreezing(groups, [(0, 1), (0.1, 2), (0.2, 3), (0.3, len(groups))], budget.progress),
                 ParamSchedule(lr=budget.schedule(slanted_triangular(1e-2)))]

- Discriminative learning rates: group i of n gets lr * decay ** -(n - 1 - i) through the Learner's
  `lr_mult` (the lesson: lr / 2.6 per layer going down).
- Gradual unfreezing: only the top group (the new head) trains at first; each stage unfreezes the next
  group down, so the pretrained layers are not wrecked by the random head's first gradients.
- WallClockBudget (dl_core.callbacks): a wall-clock cap whose schedules still finish at the deadline.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from dl_core.learner import Callback, Learner
from dl_core.schedules import Schedule, phases, slanted_triangular


class ResetState(Callback):
    """Forget the LM's carried-over LSTM state at each epoch start and around validation, so that neither
    sees the other's text as context."""

    def _reset(self, learn: Learner) -> None:
        learn.unwrapped_model.reset()

    before_epoch = before_validate = after_validate = _reset


def groups_trained_at(stages: Sequence[tuple[float, int]], progress: float) -> int:
    """How many top groups gradual unfreezing trains at `progress`: the last stage that has started."""
    return [n for start, n in sorted(stages) if start <= progress][-1]


class GradualUnfreezing(Callback):
    """Train only the top groups first, then more: `stages` = [(start progress, number of top groups
    trained), ...], e.g. [(0, 1), (0.1, 2), (0.2, 3), (0.3, 5)]. Progress is learn.progress unless a
    `progress` function (e.g. WallClockBudget.progress) is given. Frozen parameters get no gradient, so the
    optimizer leaves them alone (no update, no weight decay)."""

    order = -5  # after WallClockBudget has updated its fraction

    def __init__(self, groups: Sequence[Sequence[nn.Parameter]], stages: Sequence[tuple[float, int]],
                 progress: Callable[[Learner], float] | None = None):
        if not stages or stages[0][0] != 0:
            raise ValueError("the first stage must start at progress 0")
        self.groups = [list(g) for g in groups]
        self.stages = sorted(stages)
        self.progress = progress or (lambda learn: learn.progress)
        self.n_trainable = -1
        self.log: list[tuple[int, int]] = []  # (iteration, number of trainable groups) at each change

    def set_trainable(self, learn: Learner, n_top: int) -> None:
        n_top = min(n_top, len(self.groups))
        for i, group in enumerate(self.groups):
            for param in group:
                param.requires_grad_(i >= len(self.groups) - n_top)
        self.n_trainable = n_top
        self.log.append((learn.iteration, n_top))

    def before_fit(self, learn: Learner) -> None:
        self.n_trainable = -1

    def before_batch(self, learn: Learner) -> None:
        if not learn.training:
            return
        wanted = groups_trained_at(self.stages, self.progress(learn))
        if wanted != self.n_trainable:
            self.set_trainable(learn, wanted)

    def after_epoch(self, learn: Learner) -> None:
        learn.epoch_logs["trainable_groups"] = self.n_trainable


def discriminative_param_groups(groups: Sequence[Sequence[nn.Parameter]], decay: float = 2.6) -> list[dict]:
    """One optimizer param group per layer group, the top one at the full LR, each lower one `decay` x lower."""
    n = len(groups)
    return [{"params": list(g), "lr_mult": decay ** -(n - 1 - i)} for i, g in enumerate(groups)]


def discriminative_optimizer(groups: Sequence[Sequence[nn.Parameter]], decay: float = 2.6, **adamw_settings):
    """An `opt_fn` for Learner that builds AdamW over discriminative param groups (it ignores the flat
    parameter list the Learner passes: the groups already hold every parameter)."""

    def opt_fn(_params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.AdamW(discriminative_param_groups(groups, decay), lr=lr, **adamw_settings)

    return opt_fn


def stage_schedule(stage_lrs: Sequence[float], stage_fractions: Sequence[float], schedule_fn) -> Schedule:
    """The lesson's sequence of fits as one schedule: stage i runs `schedule_fn(stage_lrs[i])` (e.g. a
    slanted triangle) over its share `stage_fractions[i]` of training."""
    return phases([(frac, schedule_fn(lr)) for lr, frac in zip(stage_lrs, stage_fractions)])


@dataclass
class UnfreezingRecipe:
    """ULMFiT's classifier fine-tuning, as train/sentiment.py runs it and the sentiment tab plots it."""

    stages: list[tuple[float, int]]  # (start progress, number of top groups trained), for GradualUnfreezing
    stage_lrs: list[float]  # peak LR of each stage's slanted triangle (for the top group)
    schedule: Schedule  # the top group's LR over training progress 0..1
    decay: float  # discriminative LRs: each group down trains `decay` x slower

    def group_lrs(self, progress: float, n_groups: int) -> list[float]:
        """Each group's LR at `progress` (bottom group first), 0 while the group is frozen."""
        trained = groups_trained_at(self.stages, progress)
        lr = self.schedule(progress)
        return [lr * self.decay ** -(n_groups - 1 - i) if i >= n_groups - trained else 0.0 for i in range(n_groups)]

    def describe(self) -> str:
        f = self.stages[1][0]
        if f == 0:  # e.g. training on from a whole classifier: nothing new to protect the pretrained layers from
            return (f"No gradual unfreezing: every layer group trained from the start, one slanted triangular LR peaking at "
                    f"{self.stage_lrs[-1]:.2g}; discriminative LRs /{self.decay} per layer group down.")
        return (f"Gradual unfreezing: head only for the first {f:.0%} of training, then + the top LSTM, + the next, then "
                f"everything for the last {1 - 3 * f:.0%}; each stage a slanted triangular LR peaking at "
                f"{', '.join(f'{lr:.2g}' for lr in self.stage_lrs)}; discriminative LRs /{self.decay} per layer group down.")


def unfreezing_recipe(n_groups: int, lr: float = 1e-2, fraction: float = 0.1, decay: float = 2.6) -> UnfreezingRecipe:
    """Head alone for `fraction` of training, then + the top LSTM, + the next, then all `n_groups`; the lesson
    lowers the peak LR as more layers unfreeze, and each stage is its own slanted triangle."""
    stage_lrs = [lr, lr / 2, lr / 4, lr / 20]
    schedule = stage_schedule(stage_lrs, [fraction, fraction, fraction, 1 - 3 * fraction],
                              lambda peak: slanted_triangular(peak, div=10))
    stages = [(0.0, 1), (fraction, 2), (2 * fraction, 3), (3 * fraction, n_groups)]
    return UnfreezingRecipe(stages, stage_lrs, schedule, decay)
