"""The training lab (lessons 12-13): train a small DarkNet on a CIFAR-10 subset under a designed schedule, or run the
LR range test on it, and watch either happen.

    data = lab_data(read_split(src, "train"), read_split(src, "test"), n_train=4000, seed=0)
    for progress in live_train(data, one_cycle_phases(2, 0.4), epochs=2, should_stop=lambda: False):
        plot(progress.iterations, progress.losses, progress.eval_iterations, progress.accuracies)
    for progress in live_lr_find(data, should_stop=lambda: False):
        plot(progress.lrs, progress.losses)              # progress.suggestion once done

Both run the project's one training loop (dl_core.learner) in a worker thread and report its state every
`report_every` seconds; `should_stop()` returning True ends the fit after the batch it is on.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from dl_core.callbacks import LRFinder, ParamSchedule, lr_find, peak_lr
from dl_core.cifar import LAB_BATCH_SIZE
from dl_core.cifar.data import Split, eval_loader, train_loader
from dl_core.cifar.model import Darknet, DarknetConfig
from dl_core.cifar.training import make_learner, predictions
from dl_core.learner import Callback, CancelFit, Learner
from dl_core.schedules import Phase, phase_schedules, total_epochs

# Small enough that an epoch of a few thousand 32-px images takes seconds on two CPU cores: 0.2 M parameters.
LAB_CONFIG = DarknetConfig(num_blocks=[1, 1, 1], nf=16, strides=[1, 2, 2], bn_momentum=0.1)
VALID_IMAGES = 500  # test images the lab scores accuracy on (class-balanced)
EVALS_PER_RUN = 8  # accuracy points per live run (plus one before the first batch)
MAX_EPOCHS = 2


@dataclass
class LabData:
    train: Split
    valid: Split


def lab_data(train: Split, test: Split, n_train: int, seed: int = 0) -> LabData:
    """A class-balanced sample of n_train training images, and VALID_IMAGES test images to score."""
    return LabData(train.subset(n_train, seed), test.subset(VALID_IMAGES, seed))


@dataclass
class TrainProgress:
    total_iterations: int
    iterations: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    momentums: list[float] = field(default_factory=list)
    eval_iterations: list[int] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    finished: bool = False  # the fit has ended (all iterations done, or stopped)
    stopped: bool = False  # ended early by should_stop()

    def copy(self) -> "TrainProgress":
        return TrainProgress(self.total_iterations, list(self.iterations), list(self.losses), list(self.lrs), list(self.momentums),
                             list(self.eval_iterations), list(self.accuracies), self.seconds, self.finished, self.stopped)


def _accuracy(model: torch.nn.Module, valid: Split) -> float:
    was_training = model.training
    predicted, truth = predictions(model, eval_loader(valid, bs=VALID_IMAGES))
    model.train(was_training)
    return float((predicted == truth).float().mean())


class _Watch(Callback):
    """Records each batch (loss, LR, momentum) and scores accuracy now and then."""

    order = 50  # after the schedule has set this batch's values, before _StopWhen may end the fit

    def __init__(self, progress: TrainProgress, valid: Split | None, lock: threading.Lock):
        self.progress, self.valid, self.lock = progress, valid, lock
        self.eval_every = max(1, progress.total_iterations // EVALS_PER_RUN)

    def before_fit(self, learn: Learner) -> None:
        if self.valid is not None:
            accuracy = _accuracy(learn.model, self.valid)
            with self.lock:
                self.progress.eval_iterations.append(0)
                self.progress.accuracies.append(accuracy)

    def after_batch(self, learn: Learner) -> None:
        group = learn.opt.param_groups[0]
        point = (learn.iteration, float(learn.loss.detach()), peak_lr(learn.opt), float(group.get("momentum", math.nan)))
        score = (self.valid is not None and (learn.iteration % self.eval_every == 0 or learn.iteration == self.progress.total_iterations))
        accuracy = _accuracy(learn.model, self.valid) if score else None
        with self.lock:
            for values, value in zip((self.progress.iterations, self.progress.losses, self.progress.lrs, self.progress.momentums), point):
                values.append(value)
            if accuracy is not None:
                self.progress.eval_iterations.append(learn.iteration)
                self.progress.accuracies.append(accuracy)


def _lab_learner(data: LabData, seed: int, callbacks: Sequence[Callback], lr: float = 1e-3) -> Learner:
    torch.manual_seed(seed)
    model = Darknet(LAB_CONFIG)
    return make_learner(model, train_loader(data.train, LAB_BATCH_SIZE, seed), None, lr=lr, wd=5e-4, label_smoothing=0.0,
                        callbacks=callbacks)


def _stream(work: Callable[[], None], snapshot: Callable[[], object], report_every: float, stop: threading.Event) -> Iterator:
    """Run `work` in a thread and yield `snapshot()` every `report_every` seconds and once it has ended. Closing the
    generator (a Stop press, a browser gone) sets `stop`, which the fit checks after every batch, and waits for it."""
    error: list[BaseException] = []

    def target():
        try:
            work()
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread below
            error.append(err)

    thread = threading.Thread(target=target, name="training-lab", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(report_every)
            if thread.is_alive():
                yield snapshot()
        if error:
            raise error[0]
        yield snapshot()
    finally:
        stop.set()
        thread.join()


def live_train(data: LabData, plan: Sequence[Phase], epochs: float | None = None, seed: int = 0,
               should_stop: Callable[[], bool] = lambda: False, report_every: float = 0.5) -> Iterator[TrainProgress]:
    """Train LAB_CONFIG from scratch under `plan` (its shape played over `epochs`, default its own length, at most
    MAX_EPOCHS) with SGD; yield the progress so far every `report_every` seconds, and at the end."""
    lr, momentum = phase_schedules(plan)
    epochs = min(MAX_EPOCHS, total_epochs(plan) if epochs is None else epochs)
    n_batches = len(train_loader(data.train, LAB_BATCH_SIZE, seed))
    total = max(1, int(epochs * n_batches + 0.5))  # half a batch rounds up
    progress, lock, stop = TrainProgress(total), threading.Lock(), threading.Event()
    callbacks = [ParamSchedule(lr=lr, beta1=momentum), _Watch(progress, data.valid, lock),
                 _StopWhen(lambda: stop.is_set() or should_stop()), _IterationLimit(total)]
    learn = _lab_learner(data, seed, callbacks)
    started = time.perf_counter()

    def work():
        learn.fit(math.ceil(total / n_batches))
        with lock:
            progress.finished, progress.stopped = True, progress.iterations[-1:] != [total]

    def snapshot():
        with lock:
            progress.seconds = time.perf_counter() - started
            return progress.copy()

    yield from _stream(work, snapshot, report_every, stop)


class _IterationLimit(Callback):
    """End the fit after `total` batches (a fractional number of epochs), and keep the schedule's progress in
    step: it runs over `total` batches rather than over whole epochs."""

    order = 100  # after_batch: last, once every other callback has seen the final batch

    def __init__(self, total: int):
        self.total = total

    def before_fit(self, learn: Learner) -> None:
        learn.n_epochs = self.total / learn.n_batches  # learn.progress = iteration / total

    def after_batch(self, learn: Learner) -> None:
        if learn.iteration >= self.total:
            raise CancelFit


@dataclass
class FinderProgress:
    lrs: list[float]
    losses: list[float]  # smoothed (bias-corrected exponential moving average), as the finder sees them
    seconds: float
    finished: bool = False
    diverged_at: float | None = None  # the LR at which the smoothed loss passed 4x its minimum (the finder stops there)
    suggestion: float | None = None  # steepest descent of the smoothed loss
    min_loss_lr: float | None = None  # the LR of the lowest smoothed loss


def live_lr_find(data: LabData, start_lr: float = 1e-5, end_lr: float = 10.0, n_iter: int = 100, seed: int = 0,
                 should_stop: Callable[[], bool] = lambda: False, report_every: float = 0.5) -> Iterator[FinderProgress]:
    """Leslie Smith's LR range test on a fresh LAB_CONFIG network (momentum 0.9): the LR rises exponentially from
    start_lr to end_lr over n_iter batches, and stops early where the loss diverges."""
    stop = threading.Event()
    learn = _lab_learner(data, seed, [_StopWhen(lambda: stop.is_set() or should_stop())])
    finder = LRFinder(start_lr, end_lr, n_iter)  # the worker thread fills its lists; snapshots read them
    started = time.perf_counter()
    finished = threading.Event()

    def work():
        lr_find(learn, finder=finder)
        finished.set()

    def snapshot() -> FinderProgress:
        n = min(len(finder.lrs), len(finder.losses))
        progress = FinderProgress(list(finder.lrs[:n]), list(finder.losses[:n]), time.perf_counter() - started, finished.is_set())
        if progress.finished and n:
            progress.min_loss_lr = progress.lrs[int(np.argmin(progress.losses))]
            progress.suggestion = finder.suggestion()
            if finder.diverged:
                progress.diverged_at = progress.lrs[-1]
        return progress

    yield from _stream(work, snapshot, report_every, stop)


class _StopWhen(Callback):
    """End the fit after the current batch once `should_stop()` says so (Stop pressed, or the page gone)."""

    order = 60  # after _Watch has recorded the batch

    def __init__(self, should_stop: Callable[[], bool]):
        self.should_stop = should_stop

    def after_batch(self, learn: Learner) -> None:
        if self.should_stop():
            raise CancelFit
