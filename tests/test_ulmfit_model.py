"""Lesson 10 model: AWD-LSTM's dropouts, tying, pooling, vocabulary transfer, generation, save/load."""
import json

import pytest
import torch

from dl_core import hub
from dl_core.ulmfit.model import (
    AWDLSTMConfig, ClassifierConfig, EmbeddingDropout, LanguageModel, LockedDropout, TextClassifier, WeightDropLSTM, concat_pool,
    reverse_padded,
)
from dl_core.text import RULE_TOKENS, SPECIAL_TOKENS, Vocab

VOCAB = list(SPECIAL_TOKENS) + list(RULE_TOKENS) + [f"w{i}" for i in range(24)]


def tiny_lm_config(**overrides) -> AWDLSTMConfig:
    return AWDLSTMConfig(**{"vocab": VOCAB, "emb_dim": 8, "hidden_dim": 12, "n_layers": 3, **overrides})


def tiny_classifier() -> TextClassifier:
    torch.manual_seed(0)
    return TextClassifier(ClassifierConfig(encoder=tiny_lm_config(), head_hidden=6)).eval()


def test_locked_dropout_shares_one_mask_over_time():
    torch.manual_seed(0)
    drop = LockedDropout(0.5).train()
    out = drop(torch.ones(4, 7, 16))  # (B, T, D)
    assert torch.equal(out, out[:, :1].expand_as(out))  # every time step has the mask of step 0
    assert set(out.unique().tolist()) == {0.0, 2.0}  # kept units are scaled by 1 / (1 - p)
    assert not torch.equal(out[0, 0], out[1, 0])  # but each sequence has its own mask
    x = torch.randn(2, 3, 4)
    assert torch.equal(drop.eval()(x), x)


def test_embedding_dropout_drops_whole_words_for_the_batch():
    torch.manual_seed(0)
    emb = torch.nn.Embedding(50, 6)
    drop = EmbeddingDropout(0.5).train()
    ids = torch.arange(50).repeat(2, 1)  # every word twice
    out = drop(emb, ids)  # (2, 50, 6)
    dropped = (out[0] == 0).all(-1)
    assert 5 < int(dropped.sum()) < 45
    assert torch.equal(dropped, (out[1] == 0).all(-1))  # the same words are dropped everywhere in the batch
    assert torch.allclose(out[0][~dropped], 2 * emb.weight[~dropped])
    assert torch.equal(drop.eval()(emb, ids), emb(ids))


def test_weight_drop_changes_the_recurrent_weights_only_in_training():
    torch.manual_seed(0)
    layer = WeightDropLSTM(5, 7, weight_p=0.5)
    plain = torch.nn.LSTM(5, 7, batch_first=True)
    plain.load_state_dict(layer.lstm.state_dict())
    raw = layer.lstm.weight_hh_l0.detach().clone()
    x = torch.randn(3, 6, 5)

    layer.eval()
    assert torch.allclose(layer(x)[0], plain(x)[0])  # eval: the real weights, deterministic
    layer.train()
    out_a, out_b = layer(x)[0], layer(x)[0]
    assert not torch.allclose(out_a, plain(x)[0]) and not torch.allclose(out_a, out_b)  # a new mask per call
    assert torch.equal(layer.lstm.weight_hh_l0, raw)  # the parameter itself is never overwritten
    layer.eval()
    assert torch.allclose(layer(x)[0], plain(x)[0])  # and eval afterwards still sees the real weights

    layer.train()
    layer(x)[0].sum().backward()
    grad = layer.lstm.weight_hh_l0.grad
    assert grad is not None and 0.3 < float((grad == 0).float().mean()) < 0.7  # dropped weights get no gradient
    assert layer.lstm.weight_ih_l0.grad is not None and float((layer.lstm.weight_ih_l0.grad == 0).float().mean()) < 0.1


def test_language_model_ties_decoder_to_embedding_and_carries_state():
    torch.manual_seed(0)
    lm = LanguageModel(tiny_lm_config()).eval()
    assert lm.decoder.weight is lm.encoder.embedding.weight
    ids = torch.randint(4, len(VOCAB), (2, 10))
    whole = lm(ids)  # (B, T, V)
    assert whole.shape == (2, 10, len(VOCAB))
    lm.reset()
    halves = torch.cat([lm(ids[:, :4]), lm(ids[:, 4:])], dim=1)  # BPTT: the state carries over
    assert torch.allclose(whole, halves, atol=1e-5)
    lm.reset()
    assert not torch.allclose(lm(ids[:, 4:]), whole[:, 4:])  # after a reset it does not
    assert lm.hidden[0][0].requires_grad is False  # detached: no backprop into earlier batches


def test_layer_groups_cover_every_parameter_once():
    lm = LanguageModel(tiny_lm_config())
    clf = tiny_classifier()
    for model, n_groups in ((lm, 4), (clf, 5)):
        groups = model.layer_groups()
        assert len(groups) == n_groups
        ids = [id(p) for g in groups for p in g]
        assert len(ids) == len(set(ids)) == len({id(p) for p in model.parameters()})
    assert clf.layer_groups()[0] == [clf.encoder.embedding.weight]  # classifier: embedding first, head last
    assert lm.layer_groups()[-1] == [lm.encoder.embedding.weight, lm.decoder.bias]  # LM: embedding+decoder last


def test_concat_pool_reads_only_real_positions():
    outputs = torch.tensor([[[1.0], [5.0], [3.0], [-9.0]], [[2.0], [-1.0], [0.0], [0.0]]])  # (B=2, T=4, E=1)
    pooled = concat_pool(outputs, torch.tensor([3, 2]))  # (B, 3E): last, max, mean
    assert pooled.tolist() == [[3.0, 5.0, 3.0], [-1.0, 2.0, 0.5]]


def test_classifier_output_does_not_depend_on_batch_padding():
    model = tiny_classifier()
    short, long = [1, 5, 6, 7], [1, 8, 9, 10, 11, 12, 13, 14]
    alone = model.predict_proba([short])
    together = model.predict_proba([long, short])
    assert torch.allclose(alone[0], together[1], atol=1e-6)
    assert torch.allclose(together.sum(-1), torch.ones(2))


def test_classifier_cuts_texts_at_max_len():
    model = tiny_classifier()
    model.config.max_len = 5
    text = [1] + [5 + i % 20 for i in range(40)]
    assert torch.allclose(model.predict_proba([text]), model.predict_proba([text[:5]]))


def test_reverse_padded_reverses_only_the_real_positions():
    ids = torch.tensor([[1, 5, 6, 7], [1, 8, 0, 0]])  # the second text is 2 tokens, end-padded
    assert reverse_padded(ids, torch.tensor([4, 2])).tolist() == [[7, 6, 5, 1], [8, 1, 0, 0]]


def test_a_backward_classifier_reads_the_text_end_to_start():
    """Same weights, `backwards`: what the forward model says of the reversed text, cut at max_len first."""
    forward = tiny_classifier()
    backward = tiny_classifier()
    backward.config.backwards = True
    short, long = [1, 5, 6, 7], [1, 8, 9, 10, 11, 12, 13, 14]
    both = backward.predict_proba([long, short])  # one padded batch
    assert torch.allclose(both, forward.predict_proba([long[::-1], short[::-1]]), atol=1e-6)
    assert not torch.allclose(both[0], forward.predict_proba([long])[0])
    backward.config.max_len = forward.config.max_len = 5
    assert torch.allclose(backward.predict_proba([long]), forward.predict_proba([long[:5][::-1]]), atol=1e-6)


def test_with_vocab_copies_shared_rows_and_starts_new_words_at_the_mean():
    torch.manual_seed(0)
    lm = LanguageModel(tiny_lm_config())
    new_vocab = list(SPECIAL_TOKENS) + ["w3", "brand-new", "w0"]
    moved = lm.with_vocab(new_vocab)
    old_emb, new_emb = lm.encoder.embedding.weight, moved.encoder.embedding.weight
    assert torch.equal(new_emb[4], old_emb[VOCAB.index("w3")]) and torch.equal(new_emb[6], old_emb[VOCAB.index("w0")])
    assert torch.allclose(new_emb[5], old_emb.mean(0))
    assert moved.decoder.weight is moved.encoder.embedding.weight  # still tied
    assert torch.equal(moved.encoder.layers[1].lstm.weight_hh_l0, lm.encoder.layers[1].lstm.weight_hh_l0)


def test_classifier_starts_from_the_language_models_encoder():
    lm = LanguageModel(tiny_lm_config())
    clf = TextClassifier.from_language_model(lm, head_hidden=6)
    for (name, a), b in zip(lm.encoder.state_dict().items(), clf.encoder.state_dict().values()):
        assert torch.equal(a, b), name
    assert clf.config.encoder == lm.config


def test_generation_is_greedy_at_temperature_zero_and_respects_top_k():
    torch.manual_seed(0)
    lm = LanguageModel(tiny_lm_config()).eval()
    prompt = [Vocab.bos_id, 8, 9]
    greedy = lm.generate(prompt, 6, temperature=0)
    assert greedy == lm.generate(prompt, 6, temperature=0) and len(greedy) == 6
    log_probs = lm.next_token_log_probs(prompt)
    log_probs[[Vocab.pad_id, Vocab.bos_id, Vocab.unk_id]] = float("-inf")  # never generated
    assert greedy[0] == int(log_probs.argmax())
    allowed = set(lm.next_token_log_probs(prompt).topk(3).indices.tolist())
    sampled = {lm.generate(prompt, 1, temperature=1.0, top_k=3, generator=torch.Generator().manual_seed(s))[0] for s in range(30)}
    assert sampled <= allowed | {Vocab.eos_id}


@pytest.mark.parametrize("fp16", [False, True])
def test_save_load_round_trip_is_strict_and_exact(tmp_path, fp16):
    lm, clf = LanguageModel(tiny_lm_config()).eval(), tiny_classifier()
    for model, cls in ((lm, LanguageModel), (clf, TextClassifier)):
        folder = hub.save_model(model, tmp_path / cls.__name__, card="# card\n", fp16=fp16)
        loaded = hub.load_model(cls, folder)
        assert loaded.config == model.config
        for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
            assert torch.allclose(a, b, atol=1e-2 if fp16 else 0), name
    loaded_lm = hub.load_model(LanguageModel, tmp_path / "LanguageModel")
    assert loaded_lm.decoder.weight is loaded_lm.encoder.embedding.weight
    loaded_clf = hub.load_model(TextClassifier, tmp_path / "TextClassifier")
    assert isinstance(loaded_clf.config.encoder, AWDLSTMConfig) and loaded_clf.config.head_p == clf.config.head_p
    if not fp16:
        ids = [1, 5, 6, 7, 8]
        assert torch.equal(loaded_clf.predict_proba([ids]), clf.predict_proba([ids]))


def test_int8_storage_round_trip(tmp_path):
    """int8 copies: half the fp16 file, load through load_model as fp32 with nearly the same outputs; the
    LM's tied decoder stays tied; a missing weight is still an error."""
    from safetensors.torch import load_file, save_file

    clf, lm = tiny_classifier(), LanguageModel(tiny_lm_config()).eval()
    clf.config.backwards = True  # a config field that must survive the copy
    ids = [[1] + [5 + i % 20 for i in range(30)], [1, 8, 9]]
    for model, cls in ((clf, TextClassifier), (lm, LanguageModel)):
        half = hub.save_model(model, tmp_path / f"{cls.__name__}-fp16", card="# card\n")
        int8 = hub.quantize_folder(half, tmp_path / f"{cls.__name__}-int8")
        assert (int8 / "README.md").read_text() == "# card\n"
        loaded = hub.load_model(cls, int8)
        assert loaded.config == model.config and not loaded.training
        for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
            assert b.dtype == a.dtype and torch.allclose(a, b, atol=a.abs().max().item() / 200 + 1e-3), name
    stored = load_file(tmp_path / "TextClassifier-int8" / "model.safetensors")
    matrices = [name for name, t in clf.state_dict().items() if t.dim() >= 2]
    assert matrices and all(stored[name].dtype == torch.int8 for name in matrices)  # 1 byte a weight (+ a scale per row)
    assert all(stored[name].dtype == torch.float16 for name, t in clf.state_dict().items() if t.dim() == 1 and t.is_floating_point())
    loaded_clf = hub.load_model(TextClassifier, tmp_path / "TextClassifier-int8")
    assert loaded_clf.config.backwards
    assert torch.allclose(loaded_clf.predict_proba(ids), clf.predict_proba(ids), atol=2e-3)
    loaded_lm = hub.load_model(LanguageModel, tmp_path / "LanguageModel-int8")
    assert loaded_lm.decoder.weight is loaded_lm.encoder.embedding.weight
    with pytest.raises(SystemExit, match="already"):
        hub.quantize_folder(tmp_path / "TextClassifier-int8", tmp_path / "again")
    in_place = hub.quantize_folder(tmp_path / "TextClassifier-fp16", tmp_path / "TextClassifier-fp16")
    assert torch.equal(hub.load_model(TextClassifier, in_place).predict_proba(ids), loaded_clf.predict_proba(ids))
    weights = tmp_path / "TextClassifier-int8" / "model.safetensors"
    tensors = load_file(weights)
    tensors.pop("head.6.bias")
    save_file(tensors, weights, metadata={"format": "pt", "storage": hub.INT8})
    with pytest.raises(RuntimeError, match="head.6.bias"):
        hub.load_model(TextClassifier, tmp_path / "TextClassifier-int8")


def test_loading_rejects_a_mismatched_checkpoint(tmp_path):
    folder = hub.save_model(tiny_classifier(), tmp_path / "w", card="")
    config = json.loads((folder / "config.json").read_text())
    config["encoder"]["hidden_dim"] = 16  # the weights were saved for 12
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(RuntimeError, match="size mismatch"):
        hub.load_model(TextClassifier, folder)


def test_lstm_runs_in_fp32_under_bf16_autocast():
    """cuDNN would run an autocast LSTM in fp16 with no gradient scaler; the layer opts out of autocast."""
    layer = WeightDropLSTM(5, 7, weight_p=0.3).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, (h, c) = layer(torch.randn(2, 4, 5).to(torch.bfloat16))
    assert out.dtype == h.dtype == torch.float32
