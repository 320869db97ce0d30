"""Callbacks for dl_core.Learner: recording, schedules, LR finder, clipping, checkpoints, progress."""
from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from dl_core.learner import Callback, CancelEpoch, CancelFit, Learner
from dl_core.schedules import Schedule, exponential


def peak_lr(opt: torch.optim.Optimizer) -> float:
    """The highest LR of the optimizer's groups: the schedule's own value. With discriminative LRs the first
    group is often the slowest (ULMFiT's embedding, a pretrained backbone), so group 0 would understate it."""
    return max(group["lr"] for group in opt.param_groups)


class Recorder(Callback):
    """Per-batch LR (the peak over param groups) and loss, per-epoch train/valid loss and time: `history` is JSON-able."""

    order = 50

    def __init__(self):
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.history: list[dict] = []

    def before_epoch(self, learn: Learner) -> None:
        self._epoch_start, self._epoch_losses = time.perf_counter(), []

    def after_batch(self, learn: Learner) -> None:
        if learn.training:
            loss = float(learn.loss.detach())
            self.lrs.append(peak_lr(learn.opt))
            self.losses.append(loss)
            self._epoch_losses.append(loss)

    def after_epoch(self, learn: Learner) -> None:
        self.history.append({
            "epoch": learn.epoch,
            "train_loss": float(np.mean(self._epoch_losses)) if self._epoch_losses else math.nan,
            "valid_loss": learn.valid_loss,
            "seconds": round(time.perf_counter() - self._epoch_start, 1),
            **learn.epoch_logs,
        })


class ParamSchedule(Callback):
    """Set optimizer hyper-parameters every batch from schedules of the fit's progress (0 -> 1).

    `ParamSchedule(lr=one_cycle(3e-3))`; for Adam-style optimizers `beta1=...` moves betas[0] (momentum).
    """

    order = 0

    def __init__(self, **schedules: Schedule):
        self.schedules = schedules

    def before_batch(self, learn: Learner) -> None:
        if not learn.training:
            return
        for name, schedule in self.schedules.items():
            value = schedule(learn.progress)
            if name == "beta1":
                for group in learn.opt.param_groups:
                    if "betas" in group:
                        group["betas"] = (value, group["betas"][1])
                    elif "momentum" in group:
                        group["momentum"] = value
            else:
                learn.set_hyper(name, value)


class GradientClip(Callback):
    """Clip the global gradient norm (RNNs need it: one long sentence can blow the gradient up)."""

    def __init__(self, max_norm: float = 1.0):
        self.max_norm = max_norm

    def after_backward(self, learn: Learner) -> None:
        learn.accelerator.clip_grad_norm_(learn.model.parameters(), self.max_norm)


class EpochSchedule(Callback):
    """Set a model attribute at the start of each epoch: `EpochSchedule("teacher_forcing", fn)`, fn(epoch, n_epochs)."""

    order = 0

    def __init__(self, attribute: str, fn: Callable[[int, int], float]):
        self.attribute, self.fn = attribute, fn

    def before_epoch(self, learn: Learner) -> None:
        value = self.fn(learn.epoch, learn.n_epochs)
        setattr(learn.unwrapped_model, self.attribute, value)
        learn.epoch_logs[self.attribute] = value


class StopAfter(Callback):
    """Stop the fit after `n` training batches (smoke tests, quick experiments)."""

    def __init__(self, n: int):
        self.n = n

    def after_batch(self, learn: Learner) -> None:
        if learn.training and learn.iteration >= self.n:
            raise CancelFit


class WallClockBudget(Callback):
    """Stop the fit after `seconds` of wall-clock time (measured from before_fit), ending it cleanly.

    It plans for the deadline rather than just cutting: schedules wrapped by `schedule()` see progress =
    max(batches done / batches planned, seconds used / seconds allowed), so when time is the binding limit the
    LR still finishes its annealing at the deadline; then the epoch is cut, validated, and the fit ends.
    Give the fit more epochs than fit and it uses exactly the time allowed (a shared GPU lease, a CI run)."""

    order = -10  # before ParamSchedule (0) reads `fraction` in before_batch

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.fraction = 0.0  # share of the budget used so far
        self.cut_short = False  # whether the budget, not the epoch count, ended the fit

    def before_fit(self, learn: Learner) -> None:
        self.start, self.fraction, self.cut_short = time.perf_counter(), 0.0, False

    def _update(self) -> None:
        self.fraction = (time.perf_counter() - self.start) / max(self.seconds, 1e-9)

    def before_epoch(self, learn: Learner) -> None:
        self._update()
        if self.fraction >= 1:
            self.cut_short = True
            raise CancelFit

    def before_batch(self, learn: Learner) -> None:
        if learn.training:
            self._update()

    def after_batch(self, learn: Learner) -> None:
        if learn.training and self.fraction >= 1:
            self.cut_short = True
            raise CancelEpoch  # the Learner still validates and records this epoch; before_epoch ends the fit

    def progress(self, learn: Learner) -> float:
        return min(1.0, max(learn.progress, self.fraction))

    def schedule(self, fn: Schedule) -> Schedule:
        """`fn` driven by whichever runs out first, the planned batches or the time."""
        return lambda p: fn(min(1.0, max(p, self.fraction)))


class ProgressBar(Callback):
    """tqdm over each epoch's batches, then one summary line per epoch (main process only)."""

    order = 60

    def before_epoch(self, learn: Learner) -> None:
        self.bar = tqdm(
            total=learn.n_batches, desc=f"epoch {learn.epoch + 1}/{learn.n_epochs}", leave=False,
            disable=not learn.accelerator.is_main_process, dynamic_ncols=True,
        )

    def after_batch(self, learn: Learner) -> None:
        if learn.training:
            self.bar.update(1)
            if learn.batch_index % 10 == 0:
                self.bar.set_postfix(loss=f"{float(learn.loss.detach()):.3f}", lr=f"{learn.opt.param_groups[0]['lr']:.2e}")

    def after_fit(self, learn: Learner) -> None:
        if getattr(self, "bar", None) is not None:
            self.bar.close()  # a cancelled fit skips after_epoch

    def after_epoch(self, learn: Learner) -> None:
        self.bar.close()
        recorder = learn.get(Recorder)
        if learn.accelerator.is_main_process and recorder is not None and recorder.history:
            row = recorder.history[-1]
            extra = {k: v for k, v in row.items() if k not in ("epoch", "train_loss", "valid_loss", "seconds")}
            extra_text = "".join(f"  {k} {v:.4g}" if isinstance(v, float) else f"  {k} {v}" for k, v in extra.items())
            tqdm.write(
                f"epoch {learn.epoch + 1}/{learn.n_epochs}  train_loss {row['train_loss']:.4f}  "
                f"valid_loss {row['valid_loss']:.4f}{extra_text}  ({row['seconds']:.0f}s)"
            )


class LRFinder(Callback):
    """Leslie Smith's LR range test: raise the LR exponentially every batch, record the smoothed loss,
    stop once it diverges; the weights are restored afterwards. Use via `lr_find(learn)`."""

    order = 0

    def __init__(self, start_lr: float = 1e-7, end_lr: float = 10.0, n_iter: int = 100, beta: float = 0.98):
        self.schedule = exponential(start_lr, end_lr)
        self.n_iter, self.beta = n_iter, beta
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.diverged = False  # stopped because the loss blew up (rather than after n_iter batches)

    def before_fit(self, learn: Learner) -> None:
        self._saved = copy.deepcopy(learn.unwrapped_model.state_dict()), copy.deepcopy(learn.opt.state_dict())
        self._avg, self._best, self._step = 0.0, math.inf, 0

    def before_batch(self, learn: Learner) -> None:
        learn.set_hyper("lr", self.schedule(self._step / max(1, self.n_iter - 1)))

    def after_batch(self, learn: Learner) -> None:
        loss = float(learn.loss.detach())
        self._step += 1
        self._avg = self.beta * self._avg + (1 - self.beta) * loss
        smoothed = self._avg / (1 - self.beta**self._step)  # bias-corrected running mean
        self.lrs.append(peak_lr(learn.opt))
        self.losses.append(smoothed)
        self._best = min(self._best, smoothed)
        if not math.isfinite(smoothed) or smoothed > 4 * self._best:
            self.diverged = True
            raise CancelFit
        if self._step >= self.n_iter:
            raise CancelFit

    def after_fit(self, learn: Learner) -> None:
        model_state, opt_state = self._saved
        learn.unwrapped_model.load_state_dict(model_state)
        learn.opt.load_state_dict(opt_state)

    def suggestion(self) -> float:
        """The LR of steepest descent of the smoothed loss (skipping the noisy first and last points)."""
        if len(self.losses) < 5:
            return self.lrs[0] if self.lrs else math.nan
        log_lrs = np.log10(self.lrs)
        slopes = np.gradient(np.array(self.losses), log_lrs)
        lo, hi = len(slopes) // 10, max(len(slopes) // 10 + 1, len(slopes) - len(slopes) // 10)
        return float(self.lrs[lo + int(np.argmin(slopes[lo:hi]))])


def lr_find(learn: Learner, start_lr: float = 1e-7, end_lr: float = 10.0, n_iter: int = 100,
            finder: LRFinder | None = None) -> LRFinder:
    """Run the LR range test on `learn` (weights and optimizer are left as they were); pass `finder` to watch its
    lists fill from another thread."""
    finder = finder or LRFinder(start_lr, end_lr, n_iter)
    n_iter = finder.n_iter
    kept = [cb for cb in learn.callbacks if not isinstance(cb, (ParamSchedule, Checkpoint, EpochSchedule))]
    saved_callbacks, saved_valid = learn.callbacks, learn.valid_dl
    learn.callbacks = sorted([*kept, finder], key=lambda cb: cb.order)
    learn.valid_dl = None  # the range test needs training losses only
    try:
        learn.fit(max(1, math.ceil(n_iter / max(1, learn.n_batches))))
    finally:
        learn.callbacks, learn.valid_dl = saved_callbacks, saved_valid
    return finder


def plot_lr_find(finder: LRFinder):
    """Loss against learning rate (log scale), with the suggested LR marked; returns a matplotlib Figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot(finder.lrs, finder.losses)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("smoothed training loss")
    suggestion = finder.suggestion()
    if math.isfinite(suggestion):
        ax.axvline(suggestion, color="tab:red", linestyle="--", label=f"steepest descent: {suggestion:.1e}")
        ax.legend()
    fig.tight_layout()
    return fig


# --- checkpoints ------------------------------------------------------------------------------------
def _dedupe_tied(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """safetensors refuses tensors that share memory (tied weights): keep one name, remember the aliases."""
    first_name: dict[tuple, str] = {}
    unique, aliases = {}, {}
    for name, tensor in state.items():
        key = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape))
        if tensor.numel() and key in first_name:
            aliases[name] = first_name[key]
        else:
            first_name[key] = name
            unique[name] = tensor.detach().cpu().contiguous()
    return unique, aliases


def _rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    np_state = np.random.get_state()
    meta = {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    return tensors, meta


def _set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["rng/torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    version, state, gauss = meta["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from; the message says what to do instead."""


class Checkpoint(Callback):
    """Save everything needed to continue training after every epoch; optionally resume from it.

    One safetensors file holds the model, the optimizer's tensors and the RNG states; its metadata holds
    the epoch, the optimizer's other settings and the Recorder's history as JSON. It is written to a
    temporary file and renamed into place, so a run killed mid-write leaves the previous checkpoint intact.
    Resuming restores all of it, so (on CPU, single process) a resumed run ends with exactly the weights of
    an uninterrupted one. No pickle is involved: a checkpoint cannot run code when it is loaded.
    """

    order = 90  # after the Recorder has written the epoch's row

    def __init__(self, path: str | Path, resume: bool = False):
        self.path = Path(path)
        self.resume = resume

    def before_fit(self, learn: Learner) -> None:
        if self.resume and self.path.exists():
            learn.start_epoch = self.load(learn) + 1
            if learn.accelerator.is_main_process:
                tqdm.write(f"resumed from {self.path}: {learn.start_epoch} of {learn.n_epochs} epochs already done")

    def after_epoch(self, learn: Learner) -> None:
        learn.accelerator.wait_for_everyone()
        if learn.accelerator.is_main_process:
            self.save(learn)

    def save(self, learn: Learner) -> None:
        model_tensors, aliases = _dedupe_tied(learn.unwrapped_model.state_dict())
        tensors = {f"model/{k}": v for k, v in model_tensors.items()}
        opt_state = learn.opt.state_dict()
        opt_meta: dict[str, dict] = {}
        for param_id, param_state in opt_state["state"].items():
            for name, value in param_state.items():
                if torch.is_tensor(value):
                    tensors[f"opt/{param_id}/{name}"] = value.detach().cpu().contiguous()
                else:
                    opt_meta.setdefault(str(param_id), {})[name] = value
        rng_tensors, rng_meta = _rng_state()
        tensors.update(rng_tensors)
        recorder = learn.get(Recorder)
        meta = {
            "epoch": learn.epoch,
            "aliases": aliases,
            "param_groups": opt_state["param_groups"],
            "opt_scalars": opt_meta,
            "rng": rng_meta,
            "history": recorder.history if recorder else [],
            "recorder_lrs": recorder.lrs if recorder else [],
            "recorder_losses": recorder.losses if recorder else [],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        save_file(tensors, str(tmp), metadata={"state": json.dumps(meta)})
        os.replace(tmp, self.path)  # atomic on POSIX: readers see the old file or the new one, never half

    def load(self, learn: Learner) -> int:
        """Restore model, optimizer, RNG and history; returns the epoch the checkpoint was saved after."""
        try:
            return self._restore(learn)
        except Exception as err:  # noqa: BLE001 - whatever is wrong with the file, the user's choices are the same
            detail = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]
            raise CheckpointError(
                f"cannot resume from {self.path}: it is truncated, corrupt or from a different model ({detail}). "
                f"Delete it (or pass another --checkpoint, or --checkpoint none) to start afresh.") from err

    def _restore(self, learn: Learner) -> int:
        from safetensors import safe_open

        with safe_open(str(self.path), framework="pt") as f:
            meta = json.loads(f.metadata()["state"])
        tensors = load_file(str(self.path))
        model_state = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
        for alias, source in meta["aliases"].items():
            model_state[alias] = model_state[source]
        learn.unwrapped_model.load_state_dict(model_state, strict=True)
        opt_state: dict = {"state": {}, "param_groups": meta["param_groups"]}
        for key, value in tensors.items():
            if key.startswith("opt/"):
                _, param_id, name = key.split("/", 2)
                opt_state["state"].setdefault(int(param_id), {})[name] = value
        for param_id, scalars in meta["opt_scalars"].items():
            opt_state["state"].setdefault(int(param_id), {}).update(scalars)
        learn.opt.load_state_dict(opt_state)
        _set_rng_state({k: v for k, v in tensors.items() if k.startswith("rng/")}, meta["rng"])
        recorder = learn.get(Recorder)
        if recorder is not None:
            recorder.history = meta["history"]
            recorder.lrs, recorder.losses = meta["recorder_lrs"], meta["recorder_losses"]
        return int(meta["epoch"])
