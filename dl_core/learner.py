"""The project's one training loop. Everything a training script varies is a callback.

    learn = Learner(model, train_dl, valid_dl, loss_fn, callbacks=[OneCycle(3e-3), ProgressBar()])
    learn.fit(12)

Events, in order (a callback implements any of them as a method taking the Learner):
    before_fit
      before_epoch
        before_batch -> after_loss -> after_backward -> after_step -> after_batch    (per training batch)
        before_validate -> after_loss (per validation batch; learn.training is False) -> after_validate
      after_epoch
    after_fit
Raising CancelFit / CancelEpoch / CancelBatch in a callback skips the rest of that unit (the LR finder
uses CancelFit); `after_fit` still runs.

Device placement, mixed precision and data-parallel training come from HF Accelerate: the same script
runs on a CPU, one GPU, or `accelerate launch --num_processes N` with no change.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import torch
from torch import nn

if TYPE_CHECKING:  # accelerate is imported when a Learner is made: it pulls in boto3 and more (0.5 s), which the
    from accelerate import Accelerator  # app's start-up, importing this module for a tab's schedule plot, does not need

EVENTS = (
    "before_fit", "before_epoch", "before_batch", "after_loss", "after_backward", "after_step", "after_batch",
    "before_validate", "after_validate", "after_epoch", "after_fit",
)


def make_accelerator(mixed_precision: str = "no", find_unused_parameters: bool = False) -> Accelerator:
    """An Accelerator for this machine. Without CUDA/MPS we pass cpu=True: then a `torchrun`-style launch
    (`accelerate launch --multi_gpu --num_processes N`, which on a CPU-only machine starts N local
    processes) runs data-parallel over gloo instead of silently training N independent copies.
    `find_unused_parameters`: for models whose steps leave some parameters without gradients (a GAN trains its
    critic and its generator in turns), which DistributedDataParallel must then be told about."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    has_accelerator = torch.cuda.is_available() or torch.backends.mps.is_available()
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if find_unused_parameters else []
    return Accelerator(mixed_precision=mixed_precision, cpu=not has_accelerator, kwargs_handlers=handlers)


def discriminative_adamw(model: nn.Module, pretrained: nn.Module, pretrained_lr_mult: float, wd: float):
    """A Learner opt_fn: AdamW in two groups, the pretrained part of `model` learning `pretrained_lr_mult` times as
    fast as the new layers (ImageNet features need only nudging; every schedule scales a group by its lr_mult).
    The pretrained group is the second: `learn.opt.param_groups[1]`."""

    def opt_fn(params, lr: float) -> torch.optim.Optimizer:
        old = set(map(id, pretrained.parameters()))
        groups = [{"params": [p for p in model.parameters() if id(p) not in old], "lr_mult": 1.0},
                  {"params": list(pretrained.parameters()), "lr_mult": pretrained_lr_mult}]
        return torch.optim.AdamW(groups, lr=lr, weight_decay=wd)

    return opt_fn


class CancelFit(Exception):
    """Stop training now (after_fit still runs)."""


class CancelEpoch(Exception):
    """Skip the rest of this epoch's training batches (validation still runs)."""


class CancelBatch(Exception):
    """Skip the rest of this batch (no backward/step)."""


class Callback:
    order = 0  # lower runs first; schedules (0) set the LR before anything reads it

    def __repr__(self) -> str:
        return type(self).__name__


class Learner:
    """Holds the model, data, loss and optimizer; `fit` runs the loop and fires the events.

    State callbacks can read: epoch_logs (values a callback wants recorded for this epoch), epoch, n_epochs, iteration (global batch count), batch_index, n_batches,
    batch, preds, loss, valid_loss, training, accelerator, opt.
    A batch is `(inputs, target)`; `inputs` is a tuple of model arguments: preds = model(*inputs).
    """

    def __init__(
        self,
        model: nn.Module,
        train_dl: Iterable,
        valid_dl: Iterable | None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        lr: float = 1e-3,
        opt_fn: Callable[..., torch.optim.Optimizer] = torch.optim.AdamW,
        callbacks: Sequence[Callback] = (),
        accelerator: Accelerator | None = None,
        mixed_precision: str = "no",
    ):
        self.accelerator = accelerator or make_accelerator(mixed_precision)
        self.loss_fn = loss_fn
        self.lr = lr
        self.callbacks = sorted(callbacks, key=lambda cb: cb.order)
        self.opt = opt_fn(model.parameters(), lr=lr)
        self.model, self.opt, self.train_dl = self.accelerator.prepare(model, self.opt, train_dl)
        self.valid_dl = self.accelerator.prepare(valid_dl) if valid_dl is not None else None
        self.epoch = self.start_epoch = self.iteration = self.batch_index = 0
        self.n_epochs = 0
        self.valid_loss = math.nan
        self.training = False

    # -- plumbing ------------------------------------------------------------------------------------
    def fire(self, event: str) -> None:
        for cb in self.callbacks:
            handler = getattr(cb, event, None)
            if handler is not None:
                handler(self)

    def add_callbacks(self, *callbacks: Callback) -> None:
        self.callbacks = sorted([*self.callbacks, *callbacks], key=lambda cb: cb.order)

    def remove_callbacks(self, *callbacks: Callback) -> None:
        self.callbacks = [cb for cb in self.callbacks if cb not in callbacks]

    def get(self, kind: type) -> Callback | None:
        """The first callback of a given type, or None."""
        return next((cb for cb in self.callbacks if isinstance(cb, kind)), None)

    @property
    def unwrapped_model(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)

    @property
    def n_batches(self) -> int:
        return len(self.train_dl)

    @property
    def progress(self) -> float:
        """Fraction of the whole fit done, 0 -> 1; schedules are functions of this."""
        return self.iteration / max(1, self.n_epochs * self.n_batches)

    def set_hyper(self, name: str, value: float) -> None:
        """Set a hyper-parameter in every param group; a group's `<name>_mult` (e.g. lr_mult=0.1 for a
        pretrained backbone) scales it: discriminative learning rates, as in the lessons."""
        for group in self.opt.param_groups:
            group[name] = value * group.get(f"{name}_mult", 1.0)

    # -- the loop ------------------------------------------------------------------------------------
    def _one_batch(self) -> None:
        inputs, target = self.batch
        self.preds = self.model(*inputs)
        self.loss = self.loss_fn(self.preds, target)
        self.fire("after_loss")
        if not self.training:
            return
        self.accelerator.backward(self.loss)
        self.fire("after_backward")
        self.opt.step()
        self.fire("after_step")
        self.opt.zero_grad(set_to_none=True)

    def _train_epoch(self) -> None:
        self.training = True
        self.model.train()
        # Seeded shuffling that differs per epoch (and so resumes exactly). Accelerate's DataLoaderShard
        # forwards set_epoch to a plain sampler but not through its BatchSamplerShard to our batch sampler.
        inner = getattr(self.train_dl, "batch_sampler", None)
        for obj in {id(o): o for o in (self.train_dl, inner, getattr(inner, "batch_sampler", None))}.values():
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(self.epoch)
        try:
            for self.batch_index, self.batch in enumerate(self.train_dl):
                try:
                    self.fire("before_batch")
                    self._one_batch()
                except CancelBatch:
                    pass
                self.iteration += 1
                self.fire("after_batch")
        except CancelEpoch:
            pass

    @torch.no_grad()
    def validate(self) -> float:
        """Mean loss over the validation set (weighted by batch size, gathered over processes)."""
        if self.valid_dl is None:
            return math.nan
        self.training = False
        self.model.eval()
        self.fire("before_validate")
        total, count = 0.0, 0
        for self.batch in self.valid_dl:
            inputs, target = self.batch
            self.preds = self.model(*inputs)
            self.loss = loss = self.loss_fn(self.preds, target)
            self.fire("after_loss")  # metrics (e.g. accuracy) read preds here
            n = torch.tensor([float(len(target))], device=self.accelerator.device)
            losses = self.accelerator.gather_for_metrics(loss.detach().float().reshape(1) * n)
            total += float(losses.sum())
            count += float(self.accelerator.gather_for_metrics(n).sum())
        self.valid_loss = total / max(count, 1.0)
        self.fire("after_validate")
        return self.valid_loss

    def fit(self, n_epochs: int, start_epoch: int = 0) -> "Learner":
        """Train for `n_epochs` in all; a Checkpoint callback may move start_epoch on in before_fit (resume)."""
        self.n_epochs, self.start_epoch = n_epochs, start_epoch
        try:
            self.fire("before_fit")  # may restore a checkpoint and move start_epoch / iteration on
            self.iteration = self.start_epoch * self.n_batches
            for self.epoch in range(self.start_epoch, n_epochs):
                self.epoch_logs: dict[str, float] = {}  # extra per-epoch values for the Recorder
                self.fire("before_epoch")
                self._train_epoch()
                self.validate()
                self.fire("after_epoch")
        except CancelFit:
            pass
        finally:
            self.training = False
            self.fire("after_fit")
        return self
