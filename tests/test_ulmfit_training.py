"""Lesson 10 training: the ULMFiT callbacks, and the real train scripts on generated tasks (an LM that
overfits a tiny generated text, a classifier that learns a generated separable task)."""
import json
import random

import pytest
import torch

from dl_core.callbacks import ParamSchedule, Recorder
from dl_core.learner import Callback, Learner
from dl_core.ulmfit.model import AWDLSTMConfig, ClassifierConfig, TextClassifier, classifier_loss
from dl_core.schedules import linear
from dl_core.text import RULE_TOKENS, SPECIAL_TOKENS
from dl_core.callbacks import WallClockBudget
from dl_core.ulmfit.finetune import GradualUnfreezing, discriminative_optimizer, unfreezing_recipe

NUMBERS = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen".split()
GOOD, BAD = ["great", "superb", "moving", "brilliant"], ["awful", "dull", "boring", "clumsy"]


def counting_csv(path, n_docs=60, seed=0):
    """Texts that count up through NUMBERS from a random start: each next word is determined by the last."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_docs):
        start = rng.randrange(len(NUMBERS))
        rows.append(f"{i % 2},{' '.join(NUMBERS[(start + k) % len(NUMBERS)] for k in range(40))}")
    path.write_text("label,text\n" + "\n".join(rows) + "\n")
    return path


def separable_csv(path, n_docs=240, seed=0):
    """Positive texts start with a 'good' word and count up through NUMBERS, negative ones start with a 'bad'
    word and count down. The sentiment word decides how the text goes on, so a language model must carry it
    (as in real reviews); were it noise the LM could learn to ignore, the LM would discard what the
    classifier needs."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_docs):
        label = i % 2
        start, step = rng.randrange(len(NUMBERS)), (1 if label else -1)
        words = [rng.choice(GOOD if label else BAD)] + [NUMBERS[(start + step * k) % len(NUMBERS)] for k in range(rng.randrange(6, 16))]
        rows.append(f"{label},{' '.join(words)}")
    path.write_text("label,text\n" + "\n".join(rows) + "\n")
    return path


def tiny_classifier():
    torch.manual_seed(0)
    vocab = list(SPECIAL_TOKENS) + list(RULE_TOKENS) + [f"w{i}" for i in range(12)]
    return TextClassifier(ClassifierConfig(encoder=AWDLSTMConfig(vocab=vocab, emb_dim=6, hidden_dim=8), head_hidden=4))


def toy_batches(n=6):
    torch.manual_seed(1)
    return [((torch.randint(8, 20, (4, 5)), torch.full((4,), 5)), torch.randint(0, 2, (4,))) for _ in range(n)]


def test_gradual_unfreezing_trains_the_head_first_then_everything():
    model = tiny_classifier()
    groups = model.layer_groups()
    before = [[p.detach().clone() for p in g] for g in groups]
    stages = [(0.0, 1), (0.5, len(groups))]
    unfreeze = GradualUnfreezing(groups, stages)

    class Snapshot(Callback):
        def after_epoch(self, learn):
            self.after_first = [[p.detach().clone() for p in g] for g in groups]
            learn.remove_callbacks(self)

    snap = Snapshot()
    learn = Learner(model, toy_batches(), None, classifier_loss, lr=1e-2, callbacks=[unfreeze, snap],
                    opt_fn=discriminative_optimizer(groups, decay=2.6))
    learn.fit(2)  # epoch 1: progress < 0.5, head only; epoch 2: all groups
    changed = lambda a, b: any(not torch.equal(x, y) for x, y in zip(a, b))  # noqa: E731
    assert not any(changed(b, a) for b, a in zip(before[:-1], snap.after_first[:-1]))  # encoder untouched
    assert changed(before[-1], snap.after_first[-1])  # the head trained
    assert all(changed(b, a) for b, a in zip(snap.after_first[:-1], [[p.detach() for p in g] for g in groups[:-1]]))
    assert [n for _, n in unfreeze.log] == [1, len(groups)]


def test_discriminative_lrs_fall_by_the_decay_per_group():
    model = tiny_classifier()
    groups = model.layer_groups()
    learn = Learner(model, toy_batches(2), None, classifier_loss, lr=1.0,
                    opt_fn=discriminative_optimizer(groups, decay=2.0), callbacks=[ParamSchedule(lr=lambda p: 0.8)])
    learn.fit(1)
    assert [g["lr"] for g in learn.opt.param_groups] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8])


def test_unfreezing_recipe_without_unfreezing_trains_every_group_from_the_start():
    """--unfreeze-fraction 0 (training on from a whole classifier): one slanted triangle peaking at lr / 20."""
    recipe = unfreezing_recipe(5, lr=2e-2, fraction=0.0)
    assert recipe.group_lrs(0.0, 5)[0] > 0 and recipe.group_lrs(0.0, 5)[-1] == pytest.approx(1e-4)
    assert max(recipe.schedule(p / 100) for p in range(101)) == pytest.approx(1e-3, rel=0.05)
    assert recipe.describe().startswith("No gradual unfreezing") and "0.001" in recipe.describe()
    staged = unfreezing_recipe(5, lr=1e-2, fraction=0.1)
    assert staged.group_lrs(0.0, 5)[:4] == [0.0] * 4 and "head only for the first 10%" in staged.describe()


def test_time_budget_ends_the_fit_with_the_schedule_finished(monkeypatch):
    clock = {"now": 0.0}
    monkeypatch.setattr("dl_core.callbacks.time.perf_counter", lambda: clock["now"])

    class OneSecondPerBatch(Callback):
        def after_batch(self, learn):
            clock["now"] += 1.0

    budget = WallClockBudget(10)
    recorder = Recorder()
    learn = Learner(tiny_classifier(), toy_batches(6), toy_batches(1), classifier_loss, lr=1.0,
                    callbacks=[budget, recorder, OneSecondPerBatch(), ParamSchedule(lr=budget.schedule(linear(1.0, 0.0)))])
    learn.fit(20)  # 120 batches planned; the budget allows about 10
    assert budget.cut_short and 9 <= len(recorder.lrs) <= 11
    assert len(recorder.history) == 2 and all(h["valid_loss"] == h["valid_loss"] for h in recorder.history)  # validated
    assert recorder.lrs[-1] < 0.15  # the LR annealed on time, not on the 120 planned batches
    assert recorder.lrs == sorted(recorder.lrs, reverse=True)


def test_language_model_script_overfits_a_tiny_generated_text(tmp_path, capsys):
    from train.lm import main

    data = counting_csv(tmp_path / "counting.csv")
    out = tmp_path / "lm"
    common = ["--data", str(data), "--cache-dir", str(tmp_path / "cache"), "--workers", "0", "--bptt", "12", "--valid-fraction", "0.1"]
    main(["train", *common, "--out", str(out), "--min-freq", "1", "--emb-dim", "32", "--hidden-dim", "32", "--n-layers", "2",
          "--bs", "8", "--epochs", "15", "--lr", "3e-2", "--drop-mult", "0.1"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["valid"]["perplexity"] < 2.0  # 16 words; only a text's first word is not predictable
    assert metrics["history"][-1]["train_loss"] < metrics["history"][0]["train_loss"] / 2
    assert "python train/lm.py train" in (out / "README.md").read_text()
    capsys.readouterr()
    main(["evaluate", "--weights", str(out), *common])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["perplexity"] == pytest.approx(metrics["valid"]["perplexity"], rel=0.01)

    from dl_core.hub import load_model
    from dl_core.ulmfit.model import LanguageModel
    from dl_core.text import Vocab, tokenize_with_rules

    lm = load_model(LanguageModel, out)
    vocab = Vocab(lm.config.vocab)
    prompt = [Vocab.bos_id] + vocab.encode(tokenize_with_rules("five six seven"))
    assert vocab.decode(lm.generate(prompt, 4, temperature=0)) == ["eight", "nine", "ten", "eleven"]


def test_a_backward_language_model_reads_each_text_from_its_end(tmp_path, capsys):
    """--backwards: on texts that count up, a backward LM learns to count down (it predicts the word before),
    keeps that direction through save, evaluate and fine-tuning, and starts only a backward classifier."""
    from dl_core.hub import load_model
    from dl_core.ulmfit.model import LanguageModel
    from dl_core.text import Vocab
    from train.lm import main

    data = counting_csv(tmp_path / "counting.csv")
    common = ["--data", str(data), "--cache-dir", str(tmp_path / "cache"), "--workers", "0", "--bptt", "12", "--valid-fraction", "0.1"]
    main(["train", *common, "--backwards", "--out", str(tmp_path / "bwd"), "--min-freq", "1", "--emb-dim", "32", "--hidden-dim", "32",
          "--n-layers", "2", "--bs", "8", "--epochs", "15", "--lr", "3e-2", "--drop-mult", "0.1"])
    metrics = json.loads((tmp_path / "bwd" / "metrics.json").read_text())
    assert metrics["valid"]["perplexity"] < 2.0
    assert json.loads((tmp_path / "bwd" / "config.json").read_text())["backwards"] is True
    assert "reads **backwards**" in (tmp_path / "bwd" / "README.md").read_text()
    capsys.readouterr()
    main(["evaluate", "--weights", str(tmp_path / "bwd"), *common])  # scored reading backwards, as trained
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["perplexity"] == pytest.approx(metrics["valid"]["perplexity"], rel=0.01)

    lm = load_model(LanguageModel, tmp_path / "bwd")
    vocab = Vocab(lm.config.vocab)
    assert vocab.decode(lm.generate(vocab.encode(["seven", "six", "five"]), 4, temperature=0)) == ["four", "three", "two", "one"]
    with pytest.raises(ValueError, match="a forward classifier needs a forward language model"):
        TextClassifier.from_language_model(lm)
    assert TextClassifier.from_language_model(lm, backwards=True).config.backwards

    main(["train", *common, "--init", str(tmp_path / "bwd"), "--out", str(tmp_path / "fwd"), "--epochs", "1", "--bs", "8"])
    facts = json.loads((tmp_path / "fwd" / "metrics.json").read_text())["facts"]
    assert "a backward LM now reading the other way" in facts["init"]
    assert load_model(LanguageModel, tmp_path / "fwd").config.backwards is False


def test_classifier_script_learns_a_separable_task_with_and_without_an_lm(tmp_path, capsys):
    from train.lm import main as lm_main
    from train.sentiment import main

    data = separable_csv(tmp_path / "reviews.csv")
    cache = ["--cache-dir", str(tmp_path / "cache"), "--workers", "0"]
    lm_main(["train", "--data", str(data), *cache, "--out", str(tmp_path / "lm"), "--min-freq", "1", "--emb-dim", "32",
             "--hidden-dim", "32", "--n-layers", "2", "--bs", "8", "--bptt", "12", "--epochs", "15", "--lr", "3e-2",
             "--drop-mult", "0.1", "--valid-fraction", "0.1"])
    assert json.loads((tmp_path / "lm" / "metrics.json").read_text())["valid"]["perplexity"] < 6  # it learned the counting
    small = ["--bs", "16", "--epochs", "12", "--valid-fraction", "0.1", "--drop-mult", "0.1"]
    main(["train", "--data", str(data), *cache, "--lm", str(tmp_path / "lm"), "--out", str(tmp_path / "clf"), *small,
          "--lr", "3e-2", "--unfreeze-fraction", "0.1"])
    main(["train", "--data", str(data), *cache, "--from-scratch", "--out", str(tmp_path / "scratch"), *small,
          "--min-freq", "1", "--emb-dim", "32", "--hidden-dim", "32", "--n-layers", "2", "--lr", "1e-2"])
    for name in ("clf", "scratch"):
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        assert metrics["heldout"]["accuracy"] >= 0.9, (name, metrics["heldout"])
        assert metrics["heldout"]["n"] == 24
    card = (tmp_path / "clf" / "README.md").read_text()
    assert "Gradual unfreezing" in card and "language model" in card
    capsys.readouterr()
    main(["evaluate", "--weights", str(tmp_path / "clf"), "--data", str(data), *cache])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result) == {"accuracy", "n"} and result["n"] == 24
    assert result["accuracy"] == json.loads((tmp_path / "clf" / "metrics.json").read_text())["heldout"]["accuracy"]


def test_a_trained_classifier_transfers_to_new_data(tmp_path):
    """--init-classifier starts from a whole classifier (as rt-polarity starts from the IMDB one)."""
    from dl_core.ulmfit.card import training_lineage
    from train.sentiment import main

    cache = ["--cache-dir", str(tmp_path / "cache"), "--workers", "0"]
    main(["train", "--data", str(separable_csv(tmp_path / "a.csv", seed=0)), *cache, "--from-scratch", "--out",
          str(tmp_path / "first"), "--bs", "16", "--epochs", "12", "--valid-fraction", "0.1", "--drop-mult", "0.1",
          "--min-freq", "1", "--emb-dim", "32", "--hidden-dim", "32", "--n-layers", "2", "--lr", "1e-2"])
    other_data = str(separable_csv(tmp_path / "b.csv", seed=1))
    # a near-zero LR for one epoch: whatever it scores on the new texts, it brought with it
    main(["train", "--data", other_data, *cache, "--init-classifier", str(tmp_path / "first"), "--out", str(tmp_path / "moved"),
          "--bs", "16", "--epochs", "1", "--lr", "1e-6", "--valid-fraction", "0.1"])
    metrics = json.loads((tmp_path / "moved" / "metrics.json").read_text())
    assert metrics["heldout"]["accuracy"] >= 0.9 and "the classifier" in metrics["facts"]["init"]
    # the card lists both runs: the first one's command, epochs and score, then this run's
    first = json.loads((tmp_path / "first" / "metrics.json").read_text())
    assert [run["epochs"] for run in metrics["lineage"]] == [len(first["history"])]
    assert metrics["lineage"][0]["heldout_accuracy"] == first["heldout"]["accuracy"]
    card = (tmp_path / "moved" / "README.md").read_text()
    assert "Trained in 2 runs" in card and "--from-scratch --out" in card and "No gradual unfreezing" not in card
    # a folder from before commands were stored in metrics.json: the command is read back from its card
    del first["train_args"]
    (tmp_path / "first" / "metrics.json").write_text(json.dumps(first))
    assert "--from-scratch --out" in training_lineage(tmp_path / "first")[0]["command"]
    with pytest.raises(SystemExit, match="contradict"):
        main(["train", "--data", other_data, *cache, "--init-classifier", str(tmp_path / "first"), "--from-scratch", "--out", ""])


def test_a_backward_classifier_and_the_ensemble_evaluation(tmp_path, capsys):
    """--backwards trains a model that reads the texts end to start (from a forward one's weights, as the
    bundled one did); evaluate with two folders scores their averaged probabilities and --write records it."""
    from dl_core.hub import load_model, quantize_folder
    from train.sentiment import main

    data = str(separable_csv(tmp_path / "a.csv", seed=0))
    cache = ["--cache-dir", str(tmp_path / "cache"), "--workers", "0"]
    small = ["--bs", "16", "--valid-fraction", "0.1", "--drop-mult", "0.1"]
    main(["train", "--data", data, *cache, "--from-scratch", "--out", str(tmp_path / "fwd"), *small, "--epochs", "12",
          "--min-freq", "1", "--emb-dim", "32", "--hidden-dim", "32", "--n-layers", "2", "--lr", "1e-2"])
    main(["train", "--data", data, *cache, "--init-classifier", str(tmp_path / "fwd"), "--backwards", "--out", str(tmp_path / "bwd"),
          *small, "--epochs", "10", "--lr", "3e-2", "--unfreeze-fraction", "0"])
    metrics = json.loads((tmp_path / "bwd" / "metrics.json").read_text())
    assert "now reading each text backwards" in metrics["facts"]["init"]
    assert metrics["heldout"]["accuracy"] >= 0.9
    config = json.loads((tmp_path / "bwd" / "config.json").read_text())
    assert config["encoder"]["backwards"] is True and "backwards" not in config  # one flag: the encoder's direction
    assert load_model(TextClassifier, tmp_path / "bwd").config.backwards
    quantize_folder(tmp_path / "bwd", tmp_path / "bwd-int8")
    capsys.readouterr()
    main(["evaluate", "--weights", str(tmp_path / "fwd"), str(tmp_path / "bwd-int8"), "--data", data, *cache, "--write"])
    out = capsys.readouterr()
    result = json.loads(out.out.strip().splitlines()[-1])
    assert set(result) == {"accuracy", "n"} and result["n"] == 24 and result["accuracy"] >= 0.9
    assert "alone:" in out.err
    record = json.loads((tmp_path / "bwd-int8" / "metrics.json").read_text())["ensemble"]
    assert record["accuracy"] == result["accuracy"] and record["members"] == [str(tmp_path / "fwd"), str(tmp_path / "bwd-int8")]
    assert len(record["member_accuracy"]) == 2 and [set(test) >= {"b", "c", "z", "p"} for test in record["mcnemar"]] == [True, True]
    assert json.loads((tmp_path / "fwd" / "metrics.json").read_text())["ensemble"] == record  # every member keeps it
    main(["card", "--weights", str(tmp_path / "bwd-int8")])  # the card renders the ensemble and its McNemar tests
    card = (tmp_path / "bwd-int8" / "README.md").read_text()
    assert "## The forward + backward ensemble" in card and "McNemar z =" in card and f"**{record['accuracy']:.4f}**" in card


def test_the_nbsvm_command_trains_scores_and_joins_a_network(tmp_path, capsys):
    """`train/sentiment.py nbsvm` fits on --data's training part without the classifiers' validation split (and on
    --extra-train's), records held-out, validation and extra scores and writes a card; evaluate --split valid then
    scores it with a network on that validation split, the texts ensembles are chosen on."""
    from dl_core.ulmfit.data import load_labelled
    from dl_core.ulmfit.nbsvm import NBSVM
    from dl_core.ulmfit.training import classifier_split
    from train.sentiment import main

    data, extra = str(separable_csv(tmp_path / "a.csv", seed=0)), str(separable_csv(tmp_path / "b.csv", n_docs=60, seed=1))
    cache = ["--cache-dir", str(tmp_path / "cache"), "--workers", "0"]
    main(["nbsvm", "--data", data, "--extra-train", extra, "--extra-eval", extra, *cache, "--valid-fraction", "0.1",
          "--out", str(tmp_path / "nb")])
    metrics = json.loads((tmp_path / "nb" / "metrics.json").read_text())
    train = load_labelled(data, str(tmp_path / "cache"), 0, progress=False).parts["train"]
    fit, valid = classifier_split(train, 0.1, 42)
    assert metrics["facts"]["train_texts"] == {"a.csv": len(fit), "b.csv": 54} and metrics["valid"]["n"] == len(valid) == 22
    assert metrics["heldout"]["accuracy"] >= 0.9 and metrics["heldout"]["n"] == 24 and extra in metrics["extra"]
    assert metrics["train_args"]["command_line"].startswith("python train/sentiment.py nbsvm --data")
    card = (tmp_path / "nb" / "README.md").read_text()
    assert "# Lesson 10 · NBSVM" in card and "Towards **negative**" in card and f"**{metrics['heldout']['accuracy']:.4f}**" in card
    assert (tmp_path / "nb" / "model.safetensors").stat().st_size > 4 * len(json.loads((tmp_path / "nb" / "config.json").read_text())["ngrams"])
    main(["card", "--weights", str(tmp_path / "nb")])  # the card command rewrites it the same way
    assert (tmp_path / "nb" / "README.md").read_text() == card
    main(["train", "--data", data, *cache, "--from-scratch", "--out", str(tmp_path / "fwd"), "--bs", "16", "--valid-fraction", "0.1",
          "--drop-mult", "0.1", "--epochs", "4", "--min-freq", "1", "--emb-dim", "16", "--hidden-dim", "16", "--n-layers", "1"])
    capsys.readouterr()
    main(["evaluate", "--weights", str(tmp_path / "fwd"), str(tmp_path / "nb"), "--data", data, *cache, "--split", "valid",
          "--valid-fraction", "0.1"])
    out = capsys.readouterr()
    assert json.loads(out.out.strip().splitlines()[-1])["n"] == 22 and "valid: 22 texts" in out.err and "log-loss" in out.err
    with pytest.raises(SystemExit, match="choosing among models"):
        main(["evaluate", "--weights", str(tmp_path / "nb"), "--data", data, *cache, "--split", "valid", "--write"])
    assert isinstance(NBSVM.from_pretrained(str(tmp_path / "nb")), NBSVM)


def test_scripts_run_under_bf16_mixed_precision(tmp_path):
    """The GPU pipeline's `--mixed-precision bf16` path, here through CPU autocast: a few steps of each stage."""
    from accelerate.state import AcceleratorState

    from train.lm import main as lm_main
    from train.sentiment import main

    data = separable_csv(tmp_path / "reviews.csv", n_docs=60)
    common = ["--data", str(data), "--cache-dir", str(tmp_path / "cache"), "--workers", "0", "--mixed-precision", "bf16",
              "--max-steps", "3", "--epochs", "1"]
    AcceleratorState._reset_state(True)  # Accelerate's state is a process-wide singleton
    try:
        lm_main(["train", *common, "--out", str(tmp_path / "lm"), "--min-freq", "1", "--emb-dim", "8", "--hidden-dim", "8",
                 "--bs", "4", "--bptt", "8"])
        main(["train", *common, "--lm", str(tmp_path / "lm"), "--out", str(tmp_path / "clf"), "--bs", "8"])
    finally:
        AcceleratorState._reset_state(True)
    assert json.loads((tmp_path / "lm" / "metrics.json").read_text())["valid"]["perplexity"] > 1
    assert 0 <= json.loads((tmp_path / "clf" / "metrics.json").read_text())["heldout"]["accuracy"] <= 1


def test_scripts_train_from_a_token_archive(tmp_path, capsys):
    """The GPU machine has no spaCy: it trains from token archives made here. Same data, same results."""
    from dl_core.ulmfit.data import load_tokenized, write_token_archive
    from train.lm import main as lm_main
    from train.sentiment import main

    data = separable_csv(tmp_path / "reviews.csv", n_docs=80)
    archive = write_token_archive(load_tokenized(data, workers=0), tmp_path / "reviews.tokens.tar.xz")
    small = ["--workers", "0", "--cache-dir", "", "--max-steps", "4", "--epochs", "1"]
    lm_main(["train", "--data", str(archive), *small, "--out", str(tmp_path / "lm"), "--min-freq", "1", "--emb-dim", "8",
             "--hidden-dim", "8", "--bs", "4", "--bptt", "8"])
    main(["train", "--data", str(archive), *small, "--lm", str(tmp_path / "lm"), "--out", str(tmp_path / "clf"), "--bs", "8"])
    capsys.readouterr()
    for source in (archive, data):  # the archive and the CSV it was made from score the same texts
        main(["evaluate", "--weights", str(tmp_path / "clf"), "--data", str(source), "--workers", "0", "--cache-dir", ""])
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{"))
    assert first == second and first["n"] == 8


def test_the_gpu_pipeline_trains_backward_lms_only_when_asked(tmp_path):
    """ulmfit_gpu.py run --backward-lm: a backward general LM, a backward IMDB LM from it, then the backward
    classifier from that LM; without the flag (or if those stages did not run) the classifier starts from the
    forward classifier's weights, as before."""
    import argparse

    from train.ulmfit_gpu import stage_plans

    args = argparse.Namespace(smoke=True, cache_dir=tmp_path / "cache", seed=42, workers=0, backward_lm=False)
    paths = {"imdb": tmp_path / "imdb.tokens.tar.xz", "general": tmp_path / "general.tokens.tar.xz", "rt": None}
    assert not {"lm-general-bwd", "sentiment-lm-bwd"} & {p["name"] for p in stage_plans(args, paths, tmp_path)}
    args.backward_lm = True
    plans = {p["name"]: p for p in stage_plans(args, paths, tmp_path)}
    order = list(plans)
    assert order.index("sentiment") < order.index("lm-general-bwd") < order.index("sentiment-lm-bwd") < order.index("sentiment-bwd")
    assert "--backwards" in plans["lm-general-bwd"]["argv"](tmp_path)

    def after(*stages):  # pretend these stages wrote their weights
        for name in stages:
            (tmp_path / name).mkdir(exist_ok=True)
            (tmp_path / name / "model.safetensors").touch()

    def value(argv, flag):
        return argv[argv.index(flag) + 1] if flag in argv else None

    after("sentiment-lm", "sentiment")
    assert value(plans["sentiment-lm-bwd"]["argv"](tmp_path), "--init") == str(tmp_path / "sentiment-lm")
    assert value(plans["sentiment-bwd"]["argv"](tmp_path), "--init-classifier") == str(tmp_path / "sentiment")
    after("lm-general-bwd", "sentiment-lm-bwd")
    lm_argv, clf_argv = plans["sentiment-lm-bwd"]["argv"](tmp_path), plans["sentiment-bwd"]["argv"](tmp_path)
    assert value(lm_argv, "--init") == str(tmp_path / "lm-general-bwd") and "--backwards" in lm_argv
    assert value(clf_argv, "--lm") == str(tmp_path / "sentiment-lm-bwd") and "--backwards" in clf_argv
    assert "--init-classifier" not in clf_argv


def test_the_gpu_pipeline_runs_the_train_scripts_from_their_files(capsys):
    """Each stage calls train/lm.py or train/sentiment.py's main in this process, loaded from the file (the
    pipeline runs as a script, with no `train` package on the import path)."""
    from dl_core.ulmfit.pipeline import script_main

    for name in ("lm", "sentiment"):
        with pytest.raises(SystemExit) as exit_:
            script_main(name)(["train", "--help"])
        assert exit_.value.code == 0 and f"usage: python train/{name}.py train" in capsys.readouterr().out
