"""End-to-end: the real training script learns a toy language (with word reordering) to near-perfect BLEU."""
import json

from conftest import toy_pairs
from dl_core.hub import load_model
from dl_core.metrics import corpus_scores
from dl_core.translation.model import Seq2Seq
from dl_core.translation.infer import Translator
from train.translate import main


def test_training_overfits_a_toy_corpus(toy_tsv, tmp_path, capsys):
    out = tmp_path / "weights"
    main(["train", "--data", str(toy_tsv), "--valid-pairs", "10", "--epochs", "25", "--out", str(out),
          "--checkpoint", "", "--ood-data", "", "--min-freq", "1", "--emb-dim", "32", "--enc-hidden", "32",
          "--dec-hidden", "48", "--attn-dim", "32", "--bs", "10", "--lr", "1e-2", "--label-smoothing", "0",
          "--teacher-forcing-floor", "0.5"])
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 10
    assert history[-1]["valid_loss"] < 0.3

    translator = Translator(load_model(Seq2Seq, out))
    pairs = toy_pairs()
    hypotheses = translator.translate_batch([fr for fr, _ in pairs])
    assert corpus_scores(hypotheses, [en for _, en in pairs])["bleu"] > 90
    assert translator.greedy(translator.source("le chat noir dort.")).text == "the black cat sleeps."
    # the model card records the run
    card = (out / "README.md").read_text()
    assert "python train/translate.py train" in card and "BLEU" in card
