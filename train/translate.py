"""Lesson 11: train the French -> English attention model, evaluate it with sacreBLEU, save/push it.

    python train/translate.py train --data ../shared/data/translation/fra-eng.tsv --out weights/translation
    # without --data: the data root's Tatoeba file plus Multi30k's train split (its val split joins the validation
    # loss); --init DIR starts from a trained folder, its vocabularies grown (how weights/translation was made)
    python train/translate.py evaluate --weights weights/translation --data ../shared/data/translation/fra-eng.tsv --split valid
    python train/translate.py lr-find --data ../shared/data/translation/fra-eng.tsv --plot lr_find.png
    python train/translate.py card --weights weights/translation      # rewrite the model card from the folder
    accelerate launch --multi_gpu --num_processes 2 train/translate.py train ...   # data-parallel, same script

Data: `English<TAB>French[<TAB>attribution]` lines (Tatoeba/manythings `fra.txt`), or a prefix P of the
aligned files P.en / P.fr (optionally .gz), e.g. multi30k/test_2016_flickr. Without --data (and no copy under
the data root) the full Tatoeba corpus is downloaded (needs network).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dl_core import cli
from dl_core.paths import data_path, display_path
from dl_core.schedules import one_cycle, one_cycle_momentum
from dl_core.translation import card, training
from dl_core.translation.data import aligned_files, read_pairs
from dl_core.translation.evaluate import VALID_PAIRS, evaluate_folder, evaluate_pairs
from dl_core.translation.infer import PRECISIONS
from dl_core.hub import load_model
from dl_core.translation.model import Seq2Seq, Seq2SeqConfig


# the model's sizes a train command chooses (Seq2SeqConfig fields), with what each one sizes
MODEL_SIZES = {
    "emb_dim": "word embedding size",
    "enc_hidden": "encoder GRU units per direction",
    "dec_hidden": "decoder GRU units",
    "n_layers": "GRU layers of the encoder and of the decoder",
    "attn_dim": "additive attention's hidden size",
}


def add_model_flags(parser: argparse.ArgumentParser):
    """The data, vocabulary, model and recipe flags that train and lr-find share, then the run flags; returns
    the data group."""
    data = parser.add_argument_group("data")
    data.add_argument("--data", default=cli.default_data("translation", "fra-eng.tsv"),
                      help="Tatoeba TSV file or aligned-files prefix (default: the data root's fra-eng.tsv if "
                           "present, else download the full corpus)")
    data.add_argument("--download-dir", default="data/tatoeba", help="where a download goes (default: %(default)s)")
    data.add_argument("--extra-train", nargs="*", default=None, metavar="PREFIX",
                      help="more training pairs: aligned-files prefixes or TSV files; none with a bare --extra-train "
                           "(default: without --data, the data root's Multi30k train split, if present; with --data, none)")
    data.add_argument("--extra-valid", nargs="*", default=None, metavar="PREFIX",
                      help="more pairs for the validation loss (default: as --extra-train, Multi30k's val split)")
    data.add_argument("--valid-pairs", type=int, default=VALID_PAIRS,
                      help="held-out pairs, whole French sentences (default: %(default)s)")
    data.add_argument("--max-train-pairs", type=int, default=0, help="cap the training pairs: quick runs, tests (default: all)")
    data.add_argument("--min-freq", type=int, default=2, help="vocabulary: words seen at least this often (default: %(default)s)")
    data.add_argument("--max-vocab", type=int, default=40_000, help="vocabulary: at most this many words per language (default: %(default)s)")
    model = parser.add_argument_group("model and recipe")
    model.add_argument("--init", metavar="DIR", help="start from this trained folder: its sizes, its weights, and its "
                                                     "vocabularies grown with the new training text's words")
    sizes = Seq2SeqConfig()  # the defaults are the config's own
    for name, what in MODEL_SIZES.items():
        model.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(sizes, name), help=f"{what} (default: %(default)s)")
    model.add_argument("--label-smoothing", type=float, default=0.1, help="label smoothing of the cross-entropy loss (default: %(default)s)")
    model.add_argument("--teacher-forcing-floor", type=float, default=0.5,
                       help="lowest teacher-forcing probability; the lesson goes down to 0 (default: %(default)s)")
    cli.add_run_flags(parser, epochs=12, bs=128, lr=2e-3, clip=1.0, wd=0.01, out="weights/translation")
    return data


def _present(prefix: Path) -> list[str]:
    return [str(prefix)] if aligned_files(prefix) else []


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    data = add_model_flags(parser)
    data.add_argument("--ood-data", default=str(data_path("translation", "multi30k", "test_2016_flickr")),
                      help="aligned-files prefix scored after training as out-of-domain data, if present "
                           "(default: the data root's translation/multi30k/test_2016_flickr)")


def add_evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="weight folder (model.safetensors + config.json)")
    parser.add_argument("--data", required=True, help="Tatoeba TSV file or aligned-files prefix")
    parser.add_argument("--split", choices=["all", "valid"], default="all",
                        help="'valid': only the pairs the folder's train run held out of this file (its recorded "
                             "--valid-pairs and --seed) (default: %(default)s)")
    parser.add_argument("--beam", type=int, default=1, help="beam width; 1 = greedy (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N pairs (default: all)")
    parser.add_argument("--precision", "--dtype", dest="precision", choices=[*PRECISIONS, "auto"], default="fp32",
                        help="precision to decode in: fp32 (the reference), bf16, int8 (dynamic quantisation), or auto: "
                             "what the tab uses on this machine (int8 where PyTorch has a quantised engine for the CPU) "
                             "(default: %(default)s)")
    parser.add_argument("--write", action="store_true",
                        help="with --precision bf16 or int8: record the score in the folder's metrics.json, for its card")


def add_lr_find_flags(parser: argparse.ArgumentParser) -> None:
    add_model_flags(parser)
    cli.add_lr_find_flags(parser)


def default_extra_data(args: argparse.Namespace) -> None:
    """Fill --extra-train / --extra-valid left unset: the bundled recipe's Multi30k splits when --data is the default
    corpus, nothing when --data names another one (a toy file stays a toy run)."""
    default_corpus = args.data == cli.default_data("translation", "fra-eng.tsv")
    for name, split in (("extra_train", "train"), ("extra_valid", "val")):
        if getattr(args, name) is None:
            setattr(args, name, _present(data_path("translation", "multi30k", split)) if default_corpus else [])


def prepare(args: argparse.Namespace, verbose: bool) -> training.Prepared:
    default_extra_data(args)
    return training.prepare(
        training.load_pairs(args.data, args.download_dir), n_valid=args.valid_pairs, seed=args.seed, bs=args.bs,
        min_freq=args.min_freq, max_vocab=args.max_vocab, max_train_pairs=args.max_train_pairs,
        workers=cli.workers(args, 0), verbose=verbose,
        extra_train=[p for prefix in args.extra_train for p in read_pairs(prefix)],
        extra_valid=[p for prefix in args.extra_valid for p in read_pairs(prefix)],
        init=load_model(Seq2Seq, args.init) if args.init else None,
        **{name: getattr(args, name) for name in MODEL_SIZES},
    )


def learner(args: argparse.Namespace, run: training.Prepared, accelerator):
    callbacks = cli.standard_callbacks(args, one_cycle(args.lr), training.teacher_forcing(args.teacher_forcing_floor),
                                       budget=cli.time_budget(args), beta1=one_cycle_momentum())
    return training.make_learner(run.model, run.train_dl, run.valid_dl, lr=args.lr, wd=args.wd,
                                 label_smoothing=args.label_smoothing, callbacks=callbacks, accelerator=accelerator)


def cmd_train(args: argparse.Namespace) -> None:
    """Train, evaluate (held-out split and --ood-data), save and push the weights."""
    accelerator = cli.start(args)
    run = prepare(args, verbose=accelerator.is_main_process)
    learn = learner(args, run, accelerator)
    if accelerator.is_main_process:
        print(f"model: {card.n_parameters(run.model.config) / 1e6:.2f}M parameters; {learn.n_batches} batches per "
              f"epoch on {accelerator.num_processes} process(es), device {accelerator.device}")
    history = cli.fit(learn, args)
    if history is None:
        return
    model = learn.unwrapped_model.eval().cpu().float()
    print(f"evaluating on {len(run.valid_pairs)} held-out pairs")
    metrics = {"heldout": evaluate_pairs(model, run.valid_pairs)}
    if args.ood_data and aligned_files(args.ood_data):
        metrics["multi30k"] = evaluate_pairs(model, read_pairs(args.ood_data))
    print(json.dumps(metrics))
    metrics.update(history=history, facts=card.train_facts(args, run.n_pairs))
    if args.init:
        metrics["lineage"] = card.lineage(args.init)
    cli.save(args, model, card.model_card(model.config, metrics, f"weights/{Path(args.out).name}"), metrics)


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Print BLEU/chrF of a weight folder on a data file as JSON (last line)."""
    if args.write and (args.precision not in card.FAST_PRECISIONS or args.beam != 1 or args.limit):
        raise SystemExit("evaluate --write records whole-set greedy scores in bf16 or int8: use it with "
                         "--precision bf16 or --precision int8 alone")
    scores = evaluate_folder(args.weights, args.data, split=args.split, beam_size=args.beam, limit=args.limit,
                             precision=args.precision)
    if args.write:
        command = f"python train/translate.py evaluate --weights {display_path(args.weights)} --data {display_path(args.data)}" \
                  + (" --split valid" if args.split == "valid" else "") + f" --precision {args.precision}"
        written = card.record_precision(args.weights, args.precision, "heldout" if args.split == "valid" else "multi30k",
                                        scores, command)
        print(f"wrote the score into {written}", file=sys.stderr)
    print(json.dumps(scores))


def cmd_lr_find(args: argparse.Namespace) -> None:
    """LR range test on the train command's learner; prints a suggestion and plots loss vs LR."""
    accelerator = cli.start(args)
    cli.lr_find_report(learner(args, prepare(args, verbose=True), accelerator), args)


def recorded_args(command: str) -> dict:
    """The arguments of a recorded `python train/translate.py train ...` command line, as this parser reads them."""
    args = cli.parse_recorded_command(__file__, __doc__, COMMANDS, command)
    if args.command == "train":
        default_extra_data(args)  # as the run filled them (Multi30k from the data root when --data was not given)
    return card.train_args(args)


def cmd_card(args: argparse.Namespace) -> None:
    """Rewrite a weight folder's model card (README.md) from its config.json and metrics.json."""
    card.rewrite_card(args.weights, recorded_args)
    print(f"wrote {args.weights}/README.md")


COMMANDS = {
    "train": (add_train_flags, cmd_train),
    "evaluate": (add_evaluate_flags, cmd_evaluate),
    "lr-find": (add_lr_find_flags, cmd_lr_find),
    "card": (cli.add_card_flags, cmd_card),
}


def main(argv: list[str] | None = None) -> None:
    cli.main(__file__, __doc__, COMMANDS, argv)


if __name__ == "__main__":
    main()
