"""Lesson 12: CycleGAN between two unpaired photo domains: CamVid's daylight drives (A) and its dusk drive (B).

    python train/cyclegan.py train --out weights/cyclegan-dusk
    python train/cyclegan.py evaluate --weights weights/cyclegan-dusk                 # held-out day -> held-out dusk
    python train/cyclegan.py evaluate --weights weights/cyclegan-dusk --source DIR_A --target DIR_B
    python train/cyclegan.py train --data horse2zebra --out weights/cyclegan-h2z      # the lesson's data (downloads)
    python train/cyclegan.py card --weights weights/cyclegan-dusk
    accelerate launch --multi_gpu --num_processes 2 train/cyclegan.py train ...       # data-parallel, same script

The recipe is the lesson's `cgan/` (Zhu et al.'s code): LSGAN losses, cycle weight 10, identity 0.5, a pool of 50
fakes, Adam (0.5, 0.999) at 2e-4 held for the first half then decayed linearly to 0, one critic step per
generator step; sizes reduced so that it trains on a CPU (see --ngf, --blocks, --size). `--data`: `camvid` (the
data root's CamVid: day = drives 0006R0 and 0016E5, dusk = drive 0001TP; drive 0006R0 and the last 16 dusk
frames are held out), a folder in the CycleGAN datasets' layout (trainA/ trainB/ testA/ testB/), or
`horse2zebra` (downloaded to data/).

`evaluate` prints one JSON line, last: {"fd_translated", "fd_untranslated", "cycle_l1", "n", "fd_floor"}: FD-Lite0
against the target photos of the source photos translated and as they are (both on 120-px tiles of the full frames),
the mean absolute cycle error on a 0-1 scale, the number of source tiles, and (given reference photos: by default
the target domain's training photos) the floor: those real photos' distance to the same target photos.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from dl_core import cli
from dl_core.gan import card
from dl_core.gan.data import camvid_domains, download_horse2zebra, folder_domains, unpaired_loader
from dl_core.gan.evaluate import cyclegan_scores
from dl_core.gan.model import CycleGANConfig, CycleGenerators, PatchDiscriminator
from dl_core.gan.training import GENERATOR, CyclePair, GANTrainer, gan_loss, gan_optimizer
from dl_core.hub import load_model
from dl_core.learner import Learner
from dl_core.photos import list_images
from dl_core.schedules import constant, linear, phases

CAMVID, HORSE2ZEBRA = "camvid", "horse2zebra"
HELDOUT_DUSK = 16


def domains_for(data: str) -> dict[str, list[Path]]:
    if data == CAMVID:
        return camvid_domains(heldout_dusk=HELDOUT_DUSK)
    if data == HORSE2ZEBRA:
        return folder_domains(download_horse2zebra("data"))
    return folder_domains(data)


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", default=CAMVID, help=f"'{CAMVID}', '{HORSE2ZEBRA}' or a folder with trainA/ trainB/ "
                                                     "(default: %(default)s)")
    data.add_argument("--size", type=int, default=128, help="training crop side (default: %(default)s)")
    data.add_argument("--scale", type=float, default=1.0, help="resize photos by this before cropping (default: %(default)s)")
    data.add_argument("--batches-per-epoch", type=int, default=200, help="batches per epoch, half of them generator "
                                                                         "steps (default: %(default)s)")
    model = parser.add_argument_group("model and recipe")
    model.add_argument("--ngf", type=int, default=16, help="generator width (paper: 64) (default: %(default)s)")
    model.add_argument("--blocks", type=int, default=6, help="generator residual blocks (paper: 9) (default: %(default)s)")
    model.add_argument("--ndf", type=int, default=32, help="PatchGAN width (paper: 64) (default: %(default)s)")
    model.add_argument("--cycle", type=float, default=10.0, help="cycle-consistency weight λ (default: %(default)s)")
    model.add_argument("--identity", type=float, default=0.5, help="identity weight, times λ (default: %(default)s)")
    model.add_argument("--pool", type=int, default=50, help="image pool size (default: %(default)s)")
    cli.add_run_flags(parser, epochs=20, bs=4, lr=2e-4, clip=0.0, wd=0.0, out="weights/cyclegan-dusk")


def cmd_train(args: argparse.Namespace) -> None:
    """Train both generators and both critics in turns; score the held-out photos; save the generators."""
    accelerator = cli.start(args, find_unused_parameters=True)
    try:
        domains = domains_for(args.data)
        loader = unpaired_loader(domains["train_a"], domains["train_b"], size=args.size, scale=args.scale, bs=args.bs,
                                 batches_per_epoch=args.batches_per_epoch, seed=args.seed, workers=cli.workers(args, 0))
    except (OSError, ValueError) as err:
        raise SystemExit(f"cyclegan.py train: {err}") from None
    config = CycleGANConfig(ngf=args.ngf, n_blocks=args.blocks, ndf=args.ndf)
    pair = CyclePair(CycleGenerators(config), PatchDiscriminator(args.ndf), PatchDiscriminator(args.ndf),
                     cycle_weight=args.cycle, identity_weight=args.identity, pool_size=args.pool, seed=args.seed)
    trainer = GANTrainer(critic_steps=lambda generator_steps: 1, validate_mode=GENERATOR)
    schedule = phases([(0.5, constant(args.lr)), (0.5, linear(args.lr, 0.0))])  # niter, then niter_decay
    learn = Learner(pair, loader, None, gan_loss, lr=args.lr, opt_fn=gan_optimizer(pair, "adam", betas=(0.5, 0.999)),
                    callbacks=cli.standard_callbacks(args, schedule, trainer, budget=cli.time_budget(args)),
                    accelerator=accelerator)
    if accelerator.is_main_process:
        print(f"CycleGAN: generators {card.millions(pair.generators)}M, critics "
              f"{card.millions(pair.critic_a)}M each; {len(domains['train_a'])} A and {len(domains['train_b'])} B "
              f"training photos; {learn.n_batches} batches of {args.bs} {args.size}-px crops per epoch")
    started = time.perf_counter()
    history = cli.fit(learn, args)
    if history is None:
        return
    seconds = time.perf_counter() - started
    generators = learn.unwrapped_model.generators.eval().cpu().half().float()  # as saved (fp16)
    scores = {}
    if domains.get("test_a") and domains.get("test_b"):
        scores["a_to_b"] = cyclegan_scores(generators, domains["test_a"], domains["test_b"], "a_to_b",
                                           reference_paths=domains.get("train_b"))
        print(f"held out, A -> B: {json.dumps(scores['a_to_b'])}")
    sources = {name: len(paths) for name, paths in domains.items()}
    metrics = {"history": history, "scores": scores, "steps": trainer.steps,
               "facts": card.cyclegan_facts(args, sources, seconds)}
    cli.save(args, generators, card.cyclegan_card(config, metrics, f"weights/{Path(args.out or 'WEIGHTS').name}"), metrics)


def add_evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="weight folder (model.safetensors + config.json)")
    parser.add_argument("--source", default=None, help="folder of photos to translate (default: CamVid's held-out day drive)")
    parser.add_argument("--target", default=None, help="folder of photos of the target domain (default: CamVid's "
                                                       "held-out dusk frames)")
    parser.add_argument("--reference", default=None, help="folder of other real photos of the target domain, scored "
                                                          "as the floor (default: CamVid's training photos of it)")
    parser.add_argument("--direction", choices=["a_to_b", "b_to_a"], default="a_to_b")
    parser.add_argument("--write", action="store_true", help="also record the scores in the folder's metrics.json "
                                                             "(under the direction's name) and rewrite its card")


def cmd_evaluate(args: argparse.Namespace) -> None:
    """FD-Lite0 of translated vs untranslated source photos against target photos; last line: JSON
    {"fd_translated", "fd_untranslated", "cycle_l1", "n", "fd_floor"}; no floor with --source/--target and no
    --reference."""
    try:
        generators = load_model(CycleGenerators, args.weights)
        held_out = camvid_domains(heldout_dusk=HELDOUT_DUSK) if not (args.source and args.target) else {}
        source = list_images([args.source]) if args.source else held_out["test_a" if args.direction == "a_to_b" else "test_b"]
        target = list_images([args.target]) if args.target else held_out["test_b" if args.direction == "a_to_b" else "test_a"]
        if args.reference:
            reference = list_images([args.reference])
        else:
            reference = held_out.get("train_b" if args.direction == "a_to_b" else "train_a")
        if not source or not target:
            raise FileNotFoundError("no source or no target photos")
        started = time.perf_counter()
        scores = cyclegan_scores(generators, source, target, args.direction, reference_paths=reference)
    except (OSError, ValueError) as err:
        raise SystemExit(f"cyclegan.py evaluate: {err}") from None
    print(f"scored {len(source)} source photos ({scores['n']} tiles) against {len(target)} target photos in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.write:
        print(f"recorded as '{args.direction}'; wrote {card.record_cyclegan_scores(args.weights, args.direction, scores)}",
              file=sys.stderr)
    print(json.dumps(scores))


def cmd_card(args: argparse.Namespace) -> None:
    """Rewrite a weight folder's model card (README.md) from its config.json and metrics.json."""
    print(f"wrote {card.rewrite_cyclegan_card(args.weights)}")


COMMANDS = {"train": (add_train_flags, cmd_train), "evaluate": (add_evaluate_flags, cmd_evaluate),
            "card": (cli.add_card_flags, cmd_card)}


def main(argv: list[str] | None = None) -> None:
    cli.main(__file__, __doc__, COMMANDS, argv)


if __name__ == "__main__":
    main()
