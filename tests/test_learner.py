import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from conftest import REPO_ROOT
from dl_core.callbacks import (
    Checkpoint, CheckpointError, GradientClip, ParamSchedule, Recorder, StopAfter, lr_find, plot_lr_find,
)
from dl_core.translation.data import SortishBatchSampler
from dl_core.learner import EVENTS, Callback, Learner
from dl_core.schedules import linear, one_cycle


def regression_learner(callbacks=(), seed=0, n=256, lr=0.05, dropout=0.0, mixed_precision="no"):
    """y = x . w + noise, learnt by a tiny MLP (dropout makes RNG state matter for resume tests)."""
    torch.manual_seed(seed)
    x = torch.randn(n, 4)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n)
    ds = TensorDataset(x, y)
    collate = lambda items: ((torch.stack([a for a, _ in items]),), torch.stack([b for _, b in items]))  # noqa: E731
    train = DataLoader(ds, batch_sampler=SortishBatchSampler([1] * n, 32, seed=seed), collate_fn=collate)
    valid = DataLoader(ds, batch_size=64, collate_fn=collate)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 1), nn.Flatten(0))
    return Learner(model, train, valid, nn.functional.mse_loss, lr=lr, callbacks=list(callbacks),
                   mixed_precision=mixed_precision)


class EventLog(Callback):
    def __init__(self):
        self.events = []

    def __getattr__(self, name):
        if name in EVENTS:
            return lambda learn: self.events.append(name)
        raise AttributeError(name)


def test_events_fire_in_order_and_loss_falls():
    log, recorder = EventLog(), Recorder()
    learn = regression_learner([log, recorder])
    learn.fit(3)
    assert log.events[0] == "before_fit" and log.events[-1] == "after_fit"
    assert log.events[1:8] == ["before_epoch", "before_batch", "after_loss", "after_backward", "after_step",
                               "after_batch", "before_batch"]
    assert log.events.count("before_epoch") == 3 and log.events.count("after_validate") == 3
    assert log.events.count("after_step") == 3 * learn.n_batches
    assert recorder.history[-1]["valid_loss"] < recorder.history[0]["valid_loss"] / 2
    assert len(recorder.losses) == 3 * learn.n_batches


def test_param_schedule_sets_lr_every_batch():
    recorder = Recorder()
    learn = regression_learner([ParamSchedule(lr=linear(0.1, 0.0)), recorder])
    learn.fit(2)
    total = 2 * learn.n_batches
    assert recorder.lrs == pytest.approx([0.1 * (1 - i / total) for i in range(total)])


def test_gradient_clip_bounds_the_global_norm():
    norms = []

    class ReadNorm(Callback):
        order = 10

        def after_backward(self, learn):
            norms.append(math.sqrt(sum(float(p.grad.pow(2).sum()) for p in learn.model.parameters())))

    regression_learner([GradientClip(0.01), ReadNorm()], lr=1.0).fit(1)
    assert max(norms) <= 0.01 + 1e-6


def test_lr_finder_records_a_rising_lr_stops_on_divergence_and_restores_weights():
    learn = regression_learner(n=2048)
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    finder = lr_find(learn, start_lr=1e-5, end_lr=100.0, n_iter=60)
    assert finder.lrs == sorted(finder.lrs) and finder.lrs[0] == pytest.approx(1e-5)
    assert len(finder.lrs) < 60  # diverged before the end at LR 100
    assert 1e-4 < finder.suggestion() < 10
    assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    assert plot_lr_find(finder).axes[0].get_xscale() == "log"


def test_mixed_precision_bf16_trains_through_accelerate():
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)  # Accelerate's state is a process-wide singleton
    try:
        recorder = Recorder()
        learn = regression_learner([recorder], mixed_precision="bf16")
        assert learn.accelerator.mixed_precision == "bf16"
        learn.fit(3)
        assert recorder.history[-1]["valid_loss"] < recorder.history[0]["valid_loss"]
        assert learn.unwrapped_model[0].weight.dtype == torch.float32  # master weights stay fp32
    finally:
        AcceleratorState._reset_state(True)


def test_checkpoint_resume_in_process_gives_identical_weights(tmp_path):
    def run(n_epochs, path, resume=False):
        learn = regression_learner([Recorder(), ParamSchedule(lr=one_cycle(0.05)), Checkpoint(path, resume)], dropout=0.3)
        learn.fit(n_epochs)
        return learn

    straight = run(4, tmp_path / "a.safetensors")
    first = regression_learner([Recorder(), ParamSchedule(lr=one_cycle(0.05)), Checkpoint(tmp_path / "b.safetensors")], dropout=0.3)
    first.add_callbacks(StopAfter(2 * first.n_batches + 3))  # stop mid-epoch 3: epoch 2's checkpoint is the last
    first.fit(4)
    torch.manual_seed(123)  # a different RNG state: resuming must restore it
    resumed = run(4, tmp_path / "b.safetensors", resume=True)
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert [h["epoch"] for h in resumed.get(Recorder).history] == [0, 1, 2, 3]
    assert resumed.get(Recorder).history[:2] == first.get(Recorder).history[:2]


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    learn = regression_learner([Recorder(), Checkpoint(path)])
    learn.fit(1)
    good = path.read_bytes()
    import dl_core.callbacks as cbs

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cbs, "save_file", crash)
    with pytest.raises(OSError):
        learn.get(Checkpoint).save(learn)
    assert path.read_bytes() == good  # the previous checkpoint survives a failed write


def test_resuming_from_a_truncated_or_foreign_checkpoint_says_what_to_do(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    regression_learner([Recorder(), Checkpoint(path)]).fit(1)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # a copy cut short
    with pytest.raises(CheckpointError, match="truncated, corrupt or from a different model.*--checkpoint none"):
        regression_learner([Recorder(), Checkpoint(path, resume=True)]).fit(2)

    path.write_bytes(whole)
    base = regression_learner()
    other = Learner(nn.Linear(4, 1), base.train_dl, base.valid_dl, nn.functional.mse_loss,
                    callbacks=[Recorder(), Checkpoint(path, resume=True)])  # a different model
    with pytest.raises(CheckpointError, match="cannot resume from"):
        other.fit(2)


def test_a_train_script_given_a_truncated_checkpoint_exits_with_a_message_not_a_traceback(toy_tsv, tmp_path):
    ckpt = tmp_path / "c.safetensors"
    ckpt.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":")  # a header cut mid-way
    result = subprocess.run(_train_cmd(toy_tsv, tmp_path / "w", ckpt, "--resume"), capture_output=True, text=True,
                            timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 1
    assert "translate.py: error: cannot resume from" in result.stderr and "Traceback" not in result.stderr


def _train_cmd(data, out, ckpt, *extra):
    return [sys.executable, str(REPO_ROOT / "train" / "translate.py"), "train", "--data", str(data),
            "--valid-pairs", "10", "--epochs", "4", "--out", str(out), "--checkpoint", str(ckpt), "--ood-data", "",
            "--emb-dim", "16", "--enc-hidden", "16", "--dec-hidden", "24", "--attn-dim", "16", "--bs", "8",
            "--min-freq", "1", *extra]


@pytest.mark.slow
def test_train_script_resumes_after_sigkill_with_the_same_result(toy_tsv, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    straight = subprocess.run(_train_cmd(toy_tsv, tmp_path / "w1", tmp_path / "c1.safetensors"),
                              env=env, capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr[-2000:]

    ckpt = tmp_path / "c2.safetensors"
    victim = subprocess.Popen(_train_cmd(toy_tsv, tmp_path / "w2", ckpt), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not ckpt.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)  # mid-epoch 2: epoch 1's checkpoint exists, the rest is lost
    assert victim.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "w2").exists()

    resumed = subprocess.run(_train_cmd(toy_tsv, tmp_path / "w2", ckpt, "--resume"),
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout + resumed.stderr
    a, b = load_file(tmp_path / "w1" / "model.safetensors"), load_file(tmp_path / "w2" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_accelerate_launch_runs_two_data_parallel_cpu_processes(toy_tsv, tmp_path):
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           *_train_cmd(toy_tsv, "", "", "--max-steps", "3")[1:]]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": "29517"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "on 2 process(es)" in result.stdout
    assert '"heldout"' in result.stdout


def test_recorder_and_lr_finder_log_the_schedules_lr_not_the_slowest_groups():
    """With discriminative LRs (a slow first group, as ULMFiT's embedding) the recorded LR is the schedule's."""
    learn = regression_learner(callbacks=[Recorder(), ParamSchedule(lr=linear(0.01, 0.02))])
    first, last = list(learn.model.parameters())[:2], list(learn.model.parameters())[2:]
    learn.opt = torch.optim.SGD([{"params": first, "lr_mult": 0.1}, {"params": last, "lr_mult": 1.0}], lr=0.01)
    learn.fit(1)
    lrs = learn.get(Recorder).lrs
    assert lrs[0] == pytest.approx(0.01) and lrs[-1] == pytest.approx(0.01 + 0.01 * (len(lrs) - 1) / len(lrs))
    assert learn.opt.param_groups[0]["lr"] == pytest.approx(lrs[-1] * 0.1)  # the slow group really was slower


def test_validation_batches_fire_after_loss_with_their_predictions():
    class ValidationSeen(Callback):
        def __init__(self):
            self.batches = []

        def after_loss(self, learn):
            if not learn.training:
                self.batches.append((len(learn.preds), float(learn.loss)))

    seen = ValidationSeen()
    learn = regression_learner([seen])
    learn.fit(1)
    assert [n for n, _ in seen.batches] == [64, 64, 64, 64]  # every validation batch, once
    weighted = sum(n * loss for n, loss in seen.batches) / 256
    assert weighted == pytest.approx(learn.valid_loss, rel=1e-5)
