"""End-to-end: the real training script learns a toy language (with word reordering) to near-perfect BLEU,
and its model card can be written again from the weight folder alone."""
import json
import shutil

import pytest

from conftest import REPO_ROOT, toy_pairs
from dl_core.hub import load_model
from dl_core.metrics import corpus_scores
from dl_core.translation.card import rewrite_card
from dl_core.translation.infer import Translator
from dl_core.translation.model import Seq2Seq
from train.translate import main, recorded_args

BUNDLED = REPO_ROOT / "weights" / "translation"


def test_training_overfits_a_toy_corpus(toy_tsv, tmp_path, capsys):
    out = tmp_path / "toy"
    main(["train", "--data", str(toy_tsv), "--valid-pairs", "10", "--epochs", "25", "--out", str(out),
          "--checkpoint", "none", "--ood-data", "", "--min-freq", "1", "--emb-dim", "32", "--enc-hidden", "32",
          "--dec-hidden", "48", "--attn-dim", "32", "--bs", "10", "--lr", "1e-2", "--label-smoothing", "0",
          "--teacher-forcing-floor", "0.5"])
    metrics = json.loads((out / "metrics.json").read_text())
    history = metrics["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 10
    assert history[-1]["valid_loss"] < 0.3

    translator = Translator(load_model(Seq2Seq, out))
    pairs = toy_pairs()
    hypotheses = translator.translate_batch([fr for fr, _ in pairs])
    assert corpus_scores(hypotheses, [en for _, en in pairs])["bleu"] > 90
    assert translator.greedy(translator.source("le chat noir dort.")).text == "the black cat sleeps."

    # the run is recorded in metrics.json, and the card is rendered from the folder alone: `card` rewrites it unchanged
    facts = metrics["facts"]
    assert facts["command"].startswith("python train/translate.py train --data") and facts["args"]["enc_hidden"] == 32
    card = (out / "README.md").read_text()
    assert facts["command"] in card and "BLEU" in card and "32 units per direction" in card
    main(["card", "--weights", str(out)])
    assert (out / "README.md").read_text() == card
    assert not (REPO_ROOT / "runs" / "toy").exists()  # --checkpoint none: nothing written outside tmp_path

    # int8 and bf16 decoding (the tab's faster paths): scored and recorded beside the fp32 numbers, in the card
    for precision in ("int8", "bf16"):
        capsys.readouterr()
        main(["evaluate", "--weights", str(out), "--data", str(toy_tsv), "--split", "valid", "--precision", precision,
              "--write"])
        scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        recorded = json.loads((out / "metrics.json").read_text())[precision]["heldout"]
        assert {k: recorded[k] for k in scores} == scores
        assert recorded["command"].endswith(f"--split valid --precision {precision}")
    main(["card", "--weights", str(out)])
    assert "| fp32 BLEU / chrF | bf16 BLEU / chrF | int8 BLEU / chrF |" in (out / "README.md").read_text()
    with pytest.raises(SystemExit, match="--precision int8 alone"):
        main(["evaluate", "--weights", str(out), "--data", str(toy_tsv), "--write"])


def test_bundled_card_is_the_one_its_folder_renders(tmp_path):
    folder = tmp_path / BUNDLED.name
    shutil.copytree(BUNDLED, folder)
    assert rewrite_card(folder, recorded_args) == (BUNDLED / "README.md").read_text()


def test_card_completes_a_folder_recorded_before_metrics_had_facts(tmp_path):
    """An older folder had its train command, pair count and hardware only in the card: `card` moves them
    into metrics.json (the numbers already there stay as they were) and renders the same card."""
    from conftest import needs_shared

    needs_shared("translation", "multi30k", "train.fr.gz")  # the recorded command read it from the data root
    folder = tmp_path / BUNDLED.name
    shutil.copytree(BUNDLED, folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.pop("lineage", None)  # such folders came from one run: their card's first code block is its command
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))
    old_card = rewrite_card(folder, recorded_args)
    facts = metrics.pop("facts")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1))

    assert rewrite_card(folder, recorded_args) == old_card
    completed = json.loads((folder / "metrics.json").read_text())
    assert {k: v for k, v in completed.items() if k != "facts"} == metrics
    assert completed["facts"]["command"] == facts["command"] and completed["facts"]["n_pairs"] == facts["n_pairs"]
    assert completed["facts"]["args"]["seed"] == facts["args"]["seed"]


def test_every_flag_of_every_command_has_help():
    import argparse

    from dl_core import cli
    from train import translate

    parser = cli.build_parser(translate.__file__, translate.__doc__, translate.COMMANDS)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(commands) == {"train", "evaluate", "lr-find", "card"}
    for name, command in commands.items():
        assert command.description, name  # the cmd_* docstring's first line
        undocumented = [a.dest for a in command._actions if not a.help]
        assert not undocumented, (name, undocumented)


def test_lr_find_runs_on_the_train_commands_learner_and_plots(toy_tsv, tmp_path, capsys):
    plot = tmp_path / "lr_find.png"
    main(["lr-find", "--data", str(toy_tsv), "--valid-pairs", "10", "--min-freq", "1", "--emb-dim", "16",
          "--enc-hidden", "16", "--dec-hidden", "16", "--attn-dim", "16", "--bs", "10", "--n-iter", "30",
          "--plot", str(plot)])
    assert "suggested LR (steepest descent)" in capsys.readouterr().out
    assert plot.stat().st_size > 0
