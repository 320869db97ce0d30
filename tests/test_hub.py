import json

import pytest
import torch

from conftest import tiny_config
from dl_core import hub
from dl_core.translation.model import Seq2Seq


def test_save_load_round_trip_gives_identical_outputs(tiny_model, tmp_path):
    folder = hub.save_model(tiny_model, tmp_path / "w", card="# card\n", fp16=False)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert (folder / "README.md").read_text() == "# card\n"  # our card, not the mixin's template
    loaded = hub.load_model(Seq2Seq, folder)
    assert not loaded.training
    assert loaded.config == tiny_model.config
    assert loaded.generator.weight.data_ptr() == loaded.embedding.weight.data_ptr()  # tying survives
    for a, b in zip(tiny_model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    src = [5, 6, 7, 8]
    assert loaded.translate_greedy(src).tokens == tiny_model.translate_greedy(src).tokens
    assert [h.tokens for h in loaded.beam_search(src, 3)] == [h.tokens for h in tiny_model.beam_search(src, 3)]


def test_fp16_storage_halves_the_file_and_loads_as_fp32(tiny_model, tmp_path):
    full = hub.save_model(tiny_model, tmp_path / "fp32", card="", fp16=False)
    half = hub.save_model(tiny_model, tmp_path / "fp16", card="", fp16=True)
    assert tiny_model.generator.weight.dtype == torch.float32  # saving did not change the live model
    ratio = (half / "model.safetensors").stat().st_size / (full / "model.safetensors").stat().st_size
    assert 0.45 < ratio < 0.6
    loaded = hub.load_model(Seq2Seq, half)
    assert loaded.generator.weight.dtype == torch.float32
    for a, b in zip(tiny_model.state_dict().values(), loaded.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-2, rtol=1e-3)


def test_mismatched_checkpoint_is_a_clear_error(tiny_model, tmp_path):
    folder = hub.save_model(tiny_model, tmp_path / "w", card="")
    config = json.loads((folder / "config.json").read_text())
    config["dec_hidden"] = 32  # weights were saved for 20
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(RuntimeError, match="size mismatch"):
        hub.load_model(Seq2Seq, folder)
    config["dec_hidden"], config["unknown_setting"] = 20, 1
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(TypeError, match="unknown_setting"):
        hub.load_model(Seq2Seq, folder)


def test_strict_loading_rejects_missing_and_unexpected_keys(tiny_model, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = hub.save_model(tiny_model, tmp_path / "w", card="")
    tensors = load_file(folder / "model.safetensors")
    tensors.pop("bridge.bias")
    tensors["extra.weight"] = torch.zeros(1)
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(RuntimeError, match="bridge.bias|extra.weight"):
        hub.load_model(Seq2Seq, folder)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        hub.load_model(Seq2Seq, tmp_path / "nothing")


def test_source_resolution_env_then_settings_then_bundled(tmp_path, monkeypatch):
    monkeypatch.delenv("HUB_REPO_TRANSLATION", raising=False)
    monkeypatch.setenv("HUB_REPOS_FILE", str(tmp_path / "none.json"))
    assert hub.resolve_source("translation").location == str(hub.WEIGHTS_DIR / "translation")

    settings = tmp_path / "hub_repos.json"
    settings.write_text(json.dumps({"translation": str(tmp_path)}))
    monkeypatch.setenv("HUB_REPOS_FILE", str(settings))
    assert hub.resolve_source("translation").location == str(tmp_path)  # a local folder is allowed

    monkeypatch.setenv("HUB_REPO_TRANSLATION", "someone/not-cached-anywhere")
    source = hub.resolve_source("translation")  # HF_HUB_OFFLINE=1 (conftest): no network, no hang
    assert not source.from_hub and source.location == str(hub.WEIGHTS_DIR / "translation")
    assert "someone/not-cached-anywhere" in source.note and "bundled" in source.note


def test_hub_repo_is_loaded_from_the_local_cache_when_offline(tiny_model, tmp_path, monkeypatch):
    """A repo downloaded once (here: laid out as huggingface_hub's cache does) loads with HF_HUB_OFFLINE=1."""
    cache = tmp_path / "hub"
    snapshot = cache / "models--me--translation" / "snapshots" / ("a" * 40)
    hub.save_model(tiny_model, snapshot, card="")
    (cache / "models--me--translation" / "refs").mkdir(parents=True)
    (cache / "models--me--translation" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HUB_REPO_TRANSLATION", "me/translation")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    source = hub.resolve_source("translation")
    assert source.from_hub and source.location == str(snapshot)
    assert hub.load_model(Seq2Seq, source.location).config == tiny_model.config


def test_push_without_network_fails_with_a_clear_message(tiny_model, tmp_path):
    folder = hub.save_model(tiny_model, tmp_path / "w", card="")
    with pytest.raises(RuntimeError, match="cannot reach the Hugging Face Hub.*hf upload me/repo"):
        hub.push_folder(folder, "me/repo")


def test_config_defaults_are_json_round_trippable():
    cfg = tiny_config()
    assert Seq2Seq(json.loads(json.dumps(cfg.__dict__))).config == cfg


def test_train_scripts_save_then_report_a_failed_push_clearly(tiny_model, tmp_path):
    with pytest.raises(SystemExit, match="push to the Hub failed: cannot reach"):
        hub.save_and_push(tiny_model, tmp_path / "w", "# card\n", {"bleu": 1.0}, push_to="me/repo")
    assert json.loads((tmp_path / "w" / "metrics.json").read_text()) == {"bleu": 1.0}  # saved before the push


@pytest.mark.parametrize("text", ["{not json", '["translation"]', '{"translation": 3}'])
def test_a_malformed_settings_file_is_explained_in_the_tab_it_concerns(tmp_path, monkeypatch, text):
    from demos.common import LazyModel, ModelUnavailable

    monkeypatch.delenv("HUB_REPO_TRANSLATION", raising=False)
    settings = tmp_path / "hub_repos.json"
    settings.write_text(text)
    monkeypatch.setenv("HUB_REPOS_FILE", str(settings))
    lazy = LazyModel("translation", loader=lambda folder: folder, train_command="python train/translate.py train")
    with pytest.raises(ModelUnavailable, match="hub_repos.json"):
        lazy.get()


def test_a_model_that_loads_but_fails_its_check_is_unavailable_once_with_the_reason():
    from demos.common import LazyModel, ModelUnavailable

    calls = []

    def check(model):
        calls.append(model)
        raise RuntimeError("The size of tensor a (189) must match the size of tensor b (81)")

    lazy = LazyModel("detection", loader=lambda folder: "model", train_command="python train/detect.py train", check=check)
    for _ in range(2):
        with pytest.raises(ModelUnavailable, match="189"):
            lazy.get()
    assert calls == ["model"]  # checked once, the failure remembered


FAST_PATH_RECORD = {"path": "int8 dynamic", "command": "python -m benchmarks.fast_quality --only sentiment --write",
                    "rows": [{"data": "held-out", "metric": "accuracy", "fp32": 0.9125, "shipped": 0.9105,
                              "difference": -0.002, "tolerance": 0.002, "relative": False, "ok": True},
                             {"data": "held-out", "metric": "style loss", "fp32": 0.002, "shipped": 0.00201,
                              "difference": 0.005, "tolerance": 0.02, "relative": True, "ok": True}]}


def test_a_cards_fast_path_section_is_replaced_not_repeated_and_removed_with_its_record():
    card = "# A model\n\nIts scores.\n"
    with_section = hub.with_fast_path_section(card, {"fast_path": FAST_PATH_RECORD})
    assert with_section.startswith(card) and with_section.count(hub.FAST_PATH_HEADING) == 1
    assert "| held-out | accuracy | 0.9125 | 0.9105 | -0.002 | 0.002 | yes |" in with_section
    assert "| held-out | style loss | 0.002 | 0.00201 | +0.50% | 2.00% | yes |" in with_section
    assert hub.with_fast_path_section(with_section, {"fast_path": FAST_PATH_RECORD}) == with_section
    assert hub.with_fast_path_section(with_section, {}) == card
    assert hub.with_fast_path_section(card, {}) == card  # a card without a record is left exactly as it was

    @hub.ends_with_fast_path_section
    def card_writer(config, metrics, title="A model"):
        return f"# {title}\n\nIts scores.\n"

    assert card_writer({}, {"fast_path": FAST_PATH_RECORD}, title="A model") == with_section


def test_every_bundled_card_shows_the_fast_path_record_its_metrics_hold():
    """benchmarks/fast_quality.py --write records the app's path against fp32 on held-out data: the card must end
    with exactly what metrics.json holds, and no card may show a section without a record."""
    for folder in sorted(p for p in hub.WEIGHTS_DIR.iterdir() if (p / "metrics.json").is_file()):
        metrics = json.loads((folder / "metrics.json").read_text())
        card = (folder / "README.md").read_text()
        assert hub.with_fast_path_section(card, metrics) == card, f"{folder.name}: run the command its card names"
        if "fast_path" in metrics:
            assert all(row["ok"] for row in metrics["fast_path"]["rows"]), f"{folder.name}: a fast path beyond tolerance"
