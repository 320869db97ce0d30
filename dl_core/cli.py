"""What every training script shares: its run flags, the standard callbacks, the fit, and the save at the end.

A script in train/ adds only its model's flags and calls its topic package; this module is the rest:

    def add_train_flags(parser):                       # the model's own flags
        parser.add_argument("--size", type=int, default=224)
        cli.add_run_flags(parser, epochs=30, bs=16, lr=2e-3, clip=5.0, out="weights/detection")

    def cmd_train(args):
        accelerator = cli.start(args)                  # seed, device, mixed precision
        learn = Learner(model, train_dl, valid_dl, loss, lr=args.lr, accelerator=accelerator,
                        callbacks=cli.standard_callbacks(args, one_cycle(args.lr)))
        history = cli.fit(learn, args)                 # None on the non-main processes of a multi-GPU run
        if history is not None:
            cli.save(args, learn.unwrapped_model, card, metrics)

    def main(argv=None):
        cli.main(__file__, __doc__, {"train": (add_train_flags, cmd_train), "evaluate": (..., ...)}, argv)

The run flags below are defined here once, with one set of defaults; the recipe's own numbers (epochs, batch
size, peak LR, clipping, weight decay, output folder) are the script's, passed to `add_run_flags`.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Callable

from dl_core import hub
from dl_core.callbacks import Checkpoint, CheckpointError, GradientClip, ParamSchedule, ProgressBar, Recorder, StopAfter, WallClockBudget
from dl_core.learner import Callback, Learner, make_accelerator
from dl_core.paths import data_path
from dl_core.schedules import Schedule

NO_CHECKPOINT = "none"


def add_run_flags(parser: argparse.ArgumentParser, *, epochs: int, bs: int, lr: float, out: str,
                  clip: float = 1.0, wd: float = 0.01) -> None:
    """The flags every `train` command has; the keyword arguments are this model's recipe defaults."""
    run = parser.add_argument_group("run (shared by every train script)")
    run.add_argument("--epochs", type=int, default=epochs, help="epochs to train (default: %(default)s)")
    run.add_argument("--bs", type=int, default=bs, help="batch size (default: %(default)s)")
    run.add_argument("--lr", type=float, default=lr, help="peak learning rate of the schedule (default: %(default)s)")
    run.add_argument("--wd", type=float, default=wd, help="AdamW weight decay (default: %(default)s)")
    run.add_argument("--clip", type=float, default=clip, help="clip the gradient norm to this; 0: no clipping (default: %(default)s)")
    run.add_argument("--seed", type=int, default=42, help="seeds the model, the data order and the splits (default: %(default)s)")
    run.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="no",
                     help="autocast through Accelerate: on a GPU, or bf16 on a CPU with native bf16 (default: %(default)s)")
    run.add_argument("--workers", type=int, default=None,
                     help="data-loading (or tokenising) processes; 0: none (default: what suits the data)")
    run.add_argument("--time-budget", type=float, default=0, metavar="SECONDS",
                     help="stop the fit after this many seconds; the schedules then follow the clock (default: no cap)")
    run.add_argument("--max-steps", type=int, default=0, help="stop after this many batches: smoke tests (default: no cap)")
    run.add_argument("--out", default=out, help="weight folder to write; '' to write none (default: %(default)s)")
    run.add_argument("--checkpoint", default=None, metavar="FILE",
                     help="checkpoint written after every epoch (default: runs/<name of --out>/checkpoint.safetensors; "
                          f"'{NO_CHECKPOINT}' or '': none)")
    run.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    run.add_argument("--push-to-hub", metavar="REPO", help="upload the weight folder to this Hub repo (token: HF_TOKEN)")


def add_lr_find_flags(parser: argparse.ArgumentParser) -> None:
    """The `lr-find` command's own flags (after the script's train flags)."""
    parser.add_argument("--n-iter", type=int, default=100, help="batches of rising LR (default: %(default)s)")
    parser.add_argument("--plot", default="lr_find.png", help="loss-vs-LR plot to write; '' for none (default: %(default)s)")


def lr_find_report(learn: Learner, args: argparse.Namespace) -> None:
    """The `lr-find` command: the LR range test on the train command's learner, its suggestion, its plot."""
    from dl_core.callbacks import lr_find, plot_lr_find

    finder = lr_find(learn, n_iter=args.n_iter)
    print(f"suggested LR (steepest descent): {finder.suggestion():.2e}")
    if args.plot:
        plot_lr_find(finder).savefig(args.plot, dpi=120)
        print(f"plot written to {args.plot}")


def add_card_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="weight folder whose README.md to rewrite")


def workers(args: argparse.Namespace, automatic: int | None) -> int | None:
    """--workers, or the script's choice where the user left it unset."""
    return automatic if args.workers is None else args.workers


def checkpoint_path(args: argparse.Namespace) -> Path | None:
    if args.checkpoint in ("", NO_CHECKPOINT):
        return None
    if args.checkpoint:
        return Path(args.checkpoint)
    return Path("runs") / (Path(args.out).name if args.out else "last") / "checkpoint.safetensors"


def start(args: argparse.Namespace, find_unused_parameters: bool = False):
    """Seed everything and make the Accelerator (CPU, one GPU, or one process of `accelerate launch`)."""
    from accelerate.utils import set_seed

    accelerator = make_accelerator(args.mixed_precision, find_unused_parameters)
    set_seed(args.seed)
    return accelerator


def time_budget(args: argparse.Namespace) -> WallClockBudget | None:
    """The --time-budget callback, or None; pass it to standard_callbacks (and its `.progress` to anything that
    should follow the clock too, e.g. gradual unfreezing)."""
    return WallClockBudget(args.time_budget) if args.time_budget else None


def standard_callbacks(args: argparse.Namespace, lr: Schedule, *extra: Callback, budget: WallClockBudget | None = None,
                       **schedules: Schedule) -> list[Callback]:
    """Recorder, tqdm, the LR schedule (and any other, e.g. beta1=...), clipping, the time budget, the
    checkpoint and --max-steps, around the script's own `extra` callbacks. With a budget, every schedule runs on
    the clock: it ends on time rather than after the planned batches."""
    follow = budget.schedule if budget else (lambda schedule: schedule)
    callbacks: list[Callback] = [Recorder(), ProgressBar(), ParamSchedule(lr=follow(lr), **{k: follow(s) for k, s in schedules.items()})]
    if args.clip:
        callbacks.append(GradientClip(args.clip))
    callbacks.extend(extra)
    if budget:
        callbacks.append(budget)
    checkpoint = checkpoint_path(args)
    if checkpoint:
        callbacks.append(Checkpoint(checkpoint, resume=args.resume))
    if args.max_steps:
        callbacks.append(StopAfter(args.max_steps))
    return callbacks


def fit(learn: Learner, args: argparse.Namespace) -> list[dict] | None:
    """Train for --epochs, wait for every process, and return the Recorder's per-epoch history on the main
    process (None on the others, which have nothing left to do)."""
    learn.fit(args.epochs)
    learn.accelerator.wait_for_everyone()
    if not learn.accelerator.is_main_process:
        return None
    return learn.get(Recorder).history


def save(args: argparse.Namespace, model, card: str, metrics: dict, fp16: bool = True) -> Path | None:
    """The end of every train command: write the weight folder (--out) and push it (--push-to-hub)."""
    if not args.out:
        return None
    return hub.save_and_push(model, args.out, card, metrics, args.push_to_hub, fp16=fp16)


def default_data(*parts: str) -> str | None:
    """A data set's path under the data root (DL_DATA_DIR, default ../shared/data) if it is there, else None."""
    path = data_path(*parts)
    return str(path) if path.exists() else None


Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], None]]


def build_parser(script: str, doc: str, commands: dict[str, Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python train/{Path(script).name}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(commands) + "}")
    for name, (add_flags, run) in commands.items():
        summary = (run.__doc__ or "").strip().split("\n")[0]
        command = sub.add_parser(name, help=summary, description=summary)
        add_flags(command)
        command.set_defaults(run=run)
    return parser


def parse_recorded_command(script: str, doc: str, commands: dict[str, Command], command_line: str) -> argparse.Namespace:
    """A recorded `python train/<script>.py <command> ...` line (a model card's, metrics.json's) read with the
    script's parser as it is today."""
    return build_parser(script, doc, commands).parse_args(shlex.split(command_line)[2:])


def main(script: str, doc: str, commands: dict[str, Command], argv: list[str] | None = None) -> None:
    """Parse `argv` (default: the command line), record it for the model card as `args.command_line`, run the
    chosen command. `commands`: name -> (function adding its flags, function running it)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(script, doc, commands).parse_args(argv)
    args.command_line = f"python train/{Path(script).name} {shlex.join(argv)}"
    try:
        args.run(args)
    except CheckpointError as err:  # a user's file, not a bug: say what is wrong and what to do, no traceback
        sys.exit(f"{Path(script).name}: error: {err}")
