"""Lesson 10 evaluation and records: McNemar's test, the ensemble and int8 records in metrics.json, the cards
rendered from them, the bag-of-words baselines, the one direction flag of a classifier's config."""
import json

import numpy as np
import pytest
import torch

from dl_core import hub
from dl_core.metrics import format_p, mcnemar
from dl_core.text import RULE_TOKENS, SPECIAL_TOKENS
from dl_core.ulmfit.model import AWDLSTMConfig, ClassifierConfig, TextClassifier


def tiny_classifier(**encoder):
    torch.manual_seed(0)
    vocab = list(SPECIAL_TOKENS) + list(RULE_TOKENS) + [f"w{i}" for i in range(12)]
    return TextClassifier(ClassifierConfig(encoder=AWDLSTMConfig(vocab=vocab, emb_dim=6, hidden_dim=8, **encoder), head_hidden=4))


def test_mcnemar_counts_only_the_disagreements():
    first = [True] * 10 + [False] * 543 + [True] * 345 + [False] * 5
    second = [True] * 10 + [True] * 543 + [False] * 345 + [False] * 5
    test = mcnemar(first, second)
    assert (test["b"], test["c"], test["z"], test["test"]) == (543, 345, 6.64, "exact")  # the bundled pair's counts
    assert test["p"] < 1e-10 and format_p(test["p"]) == "p < 1e-10"
    # exact: b=1, c=4 is P(X <= 1) * 2 for X ~ Binomial(5, 1/2) = 2 * 6/32
    assert mcnemar([0, 1, 1, 1, 1], [1, 0, 0, 0, 0])["p"] == pytest.approx(12 / 32)
    normal = mcnemar(first, second, exact_below=10)
    assert normal["test"] == "normal" and normal["p"] == pytest.approx(test["p"], rel=0.5)
    assert mcnemar([1, 0], [1, 0]) == {"b": 0, "c": 0, "z": 0.0, "p": 1.0, "test": "exact"}
    with pytest.raises(ValueError, match="same items"):
        mcnemar([1], [1, 0])


def test_a_classifier_has_one_direction_flag_and_reads_older_config_files(tmp_path):
    """The direction is the encoder's; config.json files with a top-level `backwards` (the bundled
    weights/sentiment-bwd) still load, as backward models, and contradicting flags are refused."""
    model = tiny_classifier(backwards=True)
    assert model.config.backwards and model.config.encoder.backwards
    folder = hub.save_model(model, tmp_path / "new", card="")
    saved = json.loads((folder / "config.json").read_text())
    assert "backwards" not in saved and saved["encoder"]["backwards"] is True
    saved["backwards"] = saved["encoder"].pop("backwards")  # the older layout
    (folder / "config.json").write_text(json.dumps(saved))
    assert hub.load_model(TextClassifier, folder).config.encoder.backwards is True
    saved["encoder"]["backwards"] = False
    (folder / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="backwards"):
        hub.load_model(TextClassifier, folder)
    # a loaded model saved again writes its config as it now is (here: one flag, new dropouts)
    loaded = hub.load_model(TextClassifier, hub.save_model(model, tmp_path / "again", card=""))
    loaded.encoder.set_dropouts(loaded.config.encoder, embed_p=0.01, input_p=0.02, weight_p=0.03, hidden_p=0.04)
    resaved = json.loads((hub.save_model(loaded, tmp_path / "resaved", card="") / "config.json").read_text())
    assert resaved["encoder"]["embed_p"] == 0.01 and "backwards" not in resaved


def test_bundled_backward_classifier_config_loads_as_a_backward_model():
    from conftest import REPO_ROOT

    config = json.loads((REPO_ROOT / "weights" / "sentiment-bwd" / "config.json").read_text())
    assert ClassifierConfig.from_dict(config).encoder.backwards is True
    forward = json.loads((REPO_ROOT / "weights" / "sentiment" / "config.json").read_text())
    assert ClassifierConfig.from_dict(forward).backwards is False


def test_ensemble_accuracy_records_mcnemar_against_each_member(tmp_path):
    from dl_core.text import TokenizedCorpus
    from dl_core.ulmfit.data import TokenizedSplit
    from dl_core.ulmfit.evaluate import accuracy_on, record_ensemble, record_single

    docs = [[f"w{i % 12}", f"w{(i * 7) % 12}", "w3"] for i in range(40)]
    table = sorted({t for d in docs for t in d})
    ids = np.array([table.index(t) for d in docs for t in d], dtype=np.int32)
    corpus = TokenizedCorpus(table, ids, np.arange(0, 3 * 41, 3, dtype=np.int64))
    split = TokenizedSplit(corpus, np.array([i % 2 for i in range(40)]))
    first, second = tiny_classifier(), tiny_classifier()
    with torch.no_grad():
        for p in second.parameters():
            p.add_(0.5 * torch.randn_like(p))
    result = accuracy_on([first, second], split)
    assert result["n"] == 40 and len(result["members"]) == 2 and len(result["mcnemar"]) == 2
    for alone, test in zip(result["members"], result["mcnemar"]):
        assert result["accuracy"] == pytest.approx(alone + (test["b"] - test["c"]) / 40, abs=1e-4)
    folders = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"facts": {"data": "toy"}, "heldout": {"accuracy": 0.5}}))
        folders.append(str(tmp_path / name))
    record_ensemble(folders, "toy", "heldout", result, "python train/sentiment.py evaluate ... --write")
    record_ensemble(folders, "other", "heldout", result, "python train/sentiment.py evaluate ...")  # a second data set
    for folder in folders:
        ensemble = json.loads((tmp_path / folder / "metrics.json").read_text())["ensemble"]
        assert ensemble["data"] == "toy" and ensemble["mcnemar"] == result["mcnemar"] and "other" in ensemble["extra"]
    record_single(folders[0], "data/toy.csv", "toy", {"accuracy": 0.75, "n": 40, "n_cut": 0}, "python ... evaluate")
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["heldout"]["accuracy"] == 0.75


def test_int8_copy_records_its_storage_and_the_scores_before(tmp_path):
    model = tiny_classifier()
    metrics = {"heldout": {"accuracy": 0.9, "n": 10}, "extra": {"rt.csv": {"accuracy": 0.7, "n": 5}}}
    source = hub.save_model(model, tmp_path / "fp16", card="# card\n", metrics=metrics)
    out = hub.quantize_folder(source, tmp_path / "int8")
    storage = json.loads((out / "metrics.json").read_text())["storage"]
    assert storage["format"] == hub.INT8 and storage["accuracy_before_int8"] == {"heldout": 0.9, "rt.csv": 0.7}
    sizes = (storage["bytes_before"], storage["bytes_after"])
    assert sizes == ((source / "model.safetensors").stat().st_size, (out / "model.safetensors").stat().st_size)
    assert storage["command"] == f"python -m dl_core.hub int8 {source} {out}"
    assert "metrics.json" in {p.name for p in source.iterdir()} and "storage" not in json.loads((source / "metrics.json").read_text())


def test_nb_log_count_ratio_and_the_baselines_learn_a_toy_task():
    from scipy import sparse

    from benchmarks.sentiment_baselines import nb_log_count_ratio, nbsvm, tfidf_logistic

    x = sparse.csr_matrix(np.array([[1, 0, 1], [1, 0, 0], [0, 1, 1], [0, 1, 0]]))
    r = nb_log_count_ratio(x, np.array([1, 1, 0, 0]))
    assert r[0] == pytest.approx(np.log((3 / 6) / (1 / 6))) and r[1] == pytest.approx(-r[0]) and r[2] == pytest.approx(0)
    rng = np.random.default_rng(0)
    good, bad, filler = ["great", "superb", "moving"], ["awful", "dull", "boring"], ["film", "plot", "actor", "scene"]
    labels = np.array([i % 2 for i in range(200)])
    texts = [" ".join(rng.choice(good if y else bad, 2).tolist() + rng.choice(filler, 6).tolist()) for y in labels]
    for fit_predict in (tfidf_logistic, nbsvm):
        assert (fit_predict(texts[:150], labels[:150], texts[150:]) == labels[150:]).mean() == 1.0
