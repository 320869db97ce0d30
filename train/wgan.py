"""Lesson 12: a Wasserstein GAN on the DCGAN architecture, on Oxford flowers at 64 px (the lesson used LSUN bedrooms).

    python train/wgan.py train --out weights/wgan-flowers                          # the lesson's recipe: clipping
    python train/wgan.py train --gp 10 --out weights/wgan-gp-flowers               # WGAN-GP
    python train/wgan.py evaluate --weights weights/wgan-flowers --data ../shared/data/gan/flowers64.zip --n 2000
    python train/wgan.py card --weights weights/wgan-flowers
    accelerate launch --multi_gpu --num_processes 2 train/wgan.py train ...       # data-parallel, same script

The lesson's recipe (`wgan.ipynb`): RMSprop at 1e-4 for both networks, every critic weight clipped to ±0.01 after
each critic step, 100 critic steps before each of the first 25 generator steps and every 500th, else 5; the LR
divided by 10 for the second half (the lesson's second epoch). `--gp 10`: the gradient penalty instead of clipping
(Gulrajani et al.: Adam (0, 0.9), layer norm in the critic instead of batch norm, 5 critic steps per generator step).

`--data` is any zip or folder of images (the lesson's LSUN bedroom sample unzipped works as it is); 10% is held
out with a fixed seed. `evaluate` prints one JSON line, last: {"fd", "fd_real", "n"}, FD-Lite0 of `n` generated
images against the held-out ones, and of `n` training images against them (the floor).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from dl_core import cli
from dl_core.gan import card
from dl_core.gan.data import download_lsun_sample, flowers_zip, heldout_split, read_images, real_loader
from dl_core.gan.evaluate import wgan_scores
from dl_core.gan.model import DCGANConfig, DCGANCritic, DCGANGenerator
from dl_core.gan.training import (
    CRITIC,
    FixedNoiseGallery,
    GANTrainer,
    WassersteinPair,
    critic_iterations,
    gan_loss,
    gan_optimizer,
)
from dl_core.hub import load_model
from dl_core.learner import Learner
from dl_core.schedules import constant, phases

LSUN = "lsun"
SPLIT_SEED = 0  # the held-out 10% is the same whatever --seed a run uses


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", default=None, help="zip or folder of images, or 'lsun' for the lesson's LSUN bedroom "
                                                   "sample (downloaded to data/) (default: the data root's gan/flowers64.zip)")
    data.add_argument("--heldout", type=float, default=0.1, help="fraction held out for evaluation (default: %(default)s)")
    model = parser.add_argument_group("model and recipe")
    model.add_argument("--size", type=int, default=64, help="image side, a power of 2 (default: %(default)s)")
    model.add_argument("--nz", type=int, default=100, help="noise dimensions (default: %(default)s)")
    model.add_argument("--ngf", type=int, default=64, help="generator width (default: %(default)s)")
    model.add_argument("--ndf", type=int, default=64, help="critic width (default: %(default)s)")
    model.add_argument("--extra-layers", type=int, default=1, help="3x3 layers at full resolution (default: %(default)s)")
    model.add_argument("--gp", type=float, default=0.0, metavar="WEIGHT",
                       help="gradient penalty weight (WGAN-GP, e.g. 10); 0: the lesson's weight clipping (default: %(default)s)")
    model.add_argument("--clip-value", type=float, default=0.01, help="weight clipping bound without --gp (default: %(default)s)")
    model.add_argument("--critic-steps", default="lesson",
                       help="critic steps per generator step: 'lesson' (100 at first and every 500th, else 5) or a "
                            "number (default: lesson; 5 with --gp)")
    model.add_argument("--n-eval", type=int, default=2000, help="generated images scored at the end (default: %(default)s)")
    cli.add_run_flags(parser, epochs=40, bs=64, lr=1e-4, clip=0.0, wd=0.0, out="weights/wgan-flowers")


def critic_schedule(args: argparse.Namespace):
    if args.critic_steps == "lesson" and not args.gp:
        return critic_iterations
    steps = 5 if args.critic_steps == "lesson" else int(args.critic_steps)
    if steps < 1:
        raise SystemExit("wgan.py train: --critic-steps must be 'lesson' or a positive number")
    return lambda generator_steps: steps


def load_split(data: str | None, size: int, fraction: float) -> tuple[torch.Tensor, torch.Tensor, str]:
    source = download_lsun_sample("data") if data == LSUN else Path(data) if data else flowers_zip()
    images = read_images(source, size)
    train_idx, heldout_idx = heldout_split(len(images), fraction, SPLIT_SEED)
    return images[torch.from_numpy(train_idx)], images[torch.from_numpy(heldout_idx)], str(source)


def cmd_train(args: argparse.Namespace) -> None:
    """Train the generator and critic; score FD-Lite0 at the end; save the generator (the critic stays in runs/)."""
    accelerator = cli.start(args, find_unused_parameters=True)
    torch.manual_seed(args.seed + accelerator.process_index)  # each process draws its own noise
    try:
        config = DCGANConfig(size=args.size, nz=args.nz, ngf=args.ngf, ndf=args.ndf, n_extra_layers=args.extra_layers,
                             critic_norm="layer" if args.gp else "batch")
        train_images, heldout_images, source = load_split(args.data, args.size, args.heldout)
    except (OSError, ValueError) as err:
        raise SystemExit(f"wgan.py train: {err}") from None
    pair = WassersteinPair(DCGANGenerator(config), DCGANCritic(config), gp_weight=args.gp)
    gallery = FixedNoiseGallery(pair.generator, n=16, every=max(1, args.epochs // 8))
    trainer = GANTrainer(critic_schedule(args), clip=0.0 if args.gp else args.clip_value, validate_mode=CRITIC)
    # the lesson's two epochs: the LR, then a tenth of it
    schedule = phases([(0.5, constant(args.lr)), (0.5, constant(args.lr / 10))])
    opt_fn = gan_optimizer(pair, "adam", betas=(0.0, 0.9)) if args.gp else gan_optimizer(pair, "rmsprop")
    learn = Learner(pair, real_loader(train_images, args.bs, args.seed, workers=cli.workers(args, 0)),
                    real_loader(heldout_images, 256, args.seed, shuffle=False), gan_loss, lr=args.lr, opt_fn=opt_fn,
                    callbacks=cli.standard_callbacks(args, schedule, trainer, gallery, budget=cli.time_budget(args)),
                    accelerator=accelerator)
    if accelerator.is_main_process:
        print(f"{'WGAN-GP' if args.gp else 'WGAN (clipping)'}: generator {card.millions(pair.generator)}M, critic "
              f"{card.millions(pair.critic)}M parameters; {len(train_images)} training images, {len(heldout_images)} "
              f"held out; {learn.n_batches} batches of {args.bs} per epoch")
    earlier = card.resumed_runs(args.out) if args.resume else {}
    if earlier:
        gallery.frames = earlier["gallery"]  # the fixed noise's frames from before, so the story stays whole
        trainer.steps.update(earlier["steps"])  # the critic schedule goes on where it was (no second warm-up)
    started = time.perf_counter()
    history = cli.fit(learn, args)
    if history is None:
        return
    seconds = time.perf_counter() - started
    generator = learn.unwrapped_model.generator.eval().cpu().half().float()  # as saved (fp16)
    scores = wgan_scores(generator, train_images, heldout_images, n=args.n_eval)
    print(f"FD-Lite0 of {scores['n']} generated images vs the held-out ones: {scores['fd']:.2f} (floor: training "
          f"images {scores['fd_real']:.2f}, ratio {scores['fd'] / scores['fd_real']:.2f})")
    metrics = {"history": history, "scores": scores, "gallery_epochs": [epoch for epoch, _ in gallery.frames],
               "steps": dict(trainer.steps), "lineage": earlier.get("lineage", []),
               "facts": card.train_facts(args, source, len(train_images), len(heldout_images), seconds)}
    if args.out:
        card.save_gallery(gallery.frames, Path(args.out))
    cli.save(args, generator, card.wgan_card(config, metrics, f"weights/{Path(args.out or 'WEIGHTS').name}"), metrics)


def add_evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="generator weight folder (model.safetensors + config.json)")
    parser.add_argument("--data", default=None, help="the zip or folder it was trained on (default: flowers64.zip)")
    parser.add_argument("--heldout", type=float, default=0.1, help="the held-out fraction used in training (default: %(default)s)")
    parser.add_argument("--n", type=int, default=2000, help="generated images to score (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the noise and the training sample (default: %(default)s)")


def cmd_evaluate(args: argparse.Namespace) -> None:
    """FD-Lite0 of generated images vs the held-out real ones; last line: JSON {"fd", "fd_real", "n"}."""
    try:
        generator = load_model(DCGANGenerator, args.weights)
        train_images, heldout_images, _ = load_split(args.data, generator.config.size, args.heldout)
    except (OSError, ValueError) as err:
        raise SystemExit(f"wgan.py evaluate: {err}") from None
    if args.n < 2:
        raise SystemExit("wgan.py evaluate: --n must be at least 2")
    started = time.perf_counter()
    scores = wgan_scores(generator, train_images, heldout_images, n=args.n, seed=args.seed)
    print(f"scored {scores['n']} generated images against {len(heldout_images)} held-out ones in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(json.dumps(scores))


def cmd_card(args: argparse.Namespace) -> None:
    """Rewrite a weight folder's model card (README.md) from its config.json and metrics.json."""
    print(f"wrote {card.rewrite_wgan_card(args.weights)}")


COMMANDS = {"train": (add_train_flags, cmd_train), "evaluate": (add_evaluate_flags, cmd_evaluate),
            "card": (cli.add_card_flags, cmd_card)}


def main(argv: list[str] | None = None) -> None:
    cli.main(__file__, __doc__, COMMANDS, argv)


if __name__ == "__main__":
    main()
