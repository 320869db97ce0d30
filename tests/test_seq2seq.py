import pytest
import torch

from conftest import tiny_config
from dl_core.translation.data import collate_translation
from dl_core.translation.model import Seq2Seq, seq2seq_loss
from dl_core.text import Vocab


def _batch(sentences):
    return collate_translation([(torch.tensor(s), torch.tensor([4, 5])) for s in sentences])


def test_forward_shapes_and_padding_ignored_by_loss(tiny_model):
    (src, lengths, tgt_in), tgt_out = _batch([[4, 5, 6], [7, 8, 9, 10, 11]])
    logits = tiny_model(src, lengths, tgt_in)
    assert logits.shape == (2, tgt_in.size(1), len(tiny_model.config.tgt_vocab))
    padded_target = tgt_out.clone()
    padded_target[:, -1] = Vocab.pad_id
    # changing logits at padded target positions must not change the loss
    loss = seq2seq_loss(logits, padded_target)
    logits2 = logits.clone()
    logits2[:, -1] += torch.randn_like(logits2[:, -1]) * 10
    assert torch.allclose(loss, seq2seq_loss(logits2, padded_target))


def test_attention_rows_sum_to_one_and_ignore_padding(tiny_model):
    (src, lengths, _), _ = _batch([[4, 5], [6, 7, 8, 9, 10, 11]])
    tokens, _, attention = tiny_model.greedy(src, lengths)
    assert attention.shape[:2] == tokens.shape and attention.shape[2] == src.size(1)
    assert torch.allclose(attention.sum(-1), torch.ones(attention.shape[:2]), atol=1e-5)
    assert torch.all(attention[0, :, 2:] == 0)  # the short sentence never attends to its padding


def test_padding_does_not_change_a_translation(tiny_model):
    alone = tiny_model.translate_greedy([4, 5, 6])
    (src, lengths, _), _ = _batch([[4, 5, 6], [7, 8, 9, 10, 11, 12, 13]])
    tokens, log_probs, _ = tiny_model.greedy(src, lengths)
    batched = tokens[0].tolist()
    batched = batched[: batched.index(Vocab.eos_id)] if Vocab.eos_id in batched else batched
    assert [t for t in batched if t != Vocab.pad_id] == alone.tokens
    assert log_probs[0].item() == pytest.approx(alone.log_prob, abs=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_beam_of_one_equals_greedy(seed):
    torch.manual_seed(seed)
    model = Seq2Seq(tiny_config()).eval()
    src = torch.randint(4, 24, (int(torch.randint(1, 9, ())),)).tolist()
    greedy = model.translate_greedy(src)
    beam = model.beam_search(src, beam_size=1)[0]
    assert beam.tokens == greedy.tokens
    assert beam.log_prob == pytest.approx(greedy.log_prob, abs=1e-4)
    assert torch.allclose(beam.attention, greedy.attention, atol=1e-6)


def test_beam_search_returns_sorted_distinct_hypotheses_at_least_as_likely_as_greedy():
    torch.manual_seed(3)
    model = Seq2Seq(tiny_config(max_out_len=6)).eval()
    beams = model.beam_search([5, 6, 7], beam_size=4, length_penalty=0.0)  # 0: rank by raw log-prob
    assert len(beams) == 4
    assert len({tuple(b.tokens) for b in beams}) == 4
    assert [b.log_prob for b in beams] == sorted((b.log_prob for b in beams), reverse=True)
    assert beams[0].log_prob >= model.translate_greedy([5, 6, 7]).log_prob - 1e-5
    for b in beams:
        assert b.attention.shape == (len(b.tokens) + 1, 3) or len(b.tokens) == model.config.max_out_len


def test_output_layer_is_tied_to_decoder_embedding(tiny_model):
    assert tiny_model.generator.weight.data_ptr() == tiny_model.embedding.weight.data_ptr()


def test_teacher_forcing_zero_feeds_back_predictions():
    torch.manual_seed(0)
    model = Seq2Seq(tiny_config(emb_dropout=0.0, rnn_dropout=0.0, out_dropout=0.0)).train()
    (src, lengths, tgt_in), _ = _batch([[4, 5, 6]])
    model.teacher_forcing = 0.0
    free_running = model(src, lengths, tgt_in)
    other_targets = tgt_in.clone()
    other_targets[:, 1:] = 7  # with no forcing, the given targets after <bos> are never read
    assert torch.allclose(free_running, model(src, lengths, other_targets))
    model.teacher_forcing = 1.0
    assert not torch.allclose(model(src, lengths, tgt_in), model(src, lengths, other_targets))


def test_too_long_input_is_cut_and_empty_input_is_safe(tiny_model):
    long = list(range(4, 24)) * 10
    assert tiny_model.translate_greedy(long).attention.shape[1] == tiny_model.config.max_src_len
    assert tiny_model.translate_greedy([]).attention.shape[1] == 1


def test_a_warm_start_grows_the_vocabularies_and_keeps_what_was_learnt():
    from conftest import toy_pairs
    from dl_core.translation.data import Pair
    from dl_core.translation.training import grown_vocab, prepare

    pairs = [Pair(fr, en) for fr, en in toy_pairs()]
    first = prepare(pairs, n_valid=20, seed=0, bs=16, min_freq=1, max_vocab=1000, verbose=False,
                    emb_dim=16, enc_hidden=16, dec_hidden=32, n_layers=1, attn_dim=16)
    extra = [Pair("le chat bleu dort.", "the blue cat sleeps."), Pair("le chien bleu court.", "the blue dog runs.")]
    extra.append(first.valid_pairs[0])  # a held-out source sentence never joins the training side
    grown = prepare(pairs, n_valid=20, seed=0, bs=16, min_freq=1, max_vocab=1000, verbose=False, extra_train=extra,
                    init=first.model)
    old, new = first.model.config, grown.model.config
    assert new.src_vocab[: len(old.src_vocab)] == old.src_vocab and new.src_vocab[len(old.src_vocab):] == ["bleu"]
    assert new.tgt_vocab[len(old.tgt_vocab):] == ["blue"] and new.dec_hidden == old.dec_hidden == 32
    assert grown.valid_pairs == first.valid_pairs and len(grown.train_dl.dataset) == len(first.train_dl.dataset) + 2
    old_state, new_state = first.model.state_dict(), grown.model.state_dict()
    for name, tensor in old_state.items():
        assert torch.equal(new_state[name][: tensor.shape[0]], tensor), name
    assert new_state["generator.bias"][-1] == pytest.approx(float(old_state["generator.bias"].mean()))
    assert grown_vocab(old.src_vocab, [["bleu", "vert", "vert"]], max_size=len(old.src_vocab) + 1, min_freq=1).itos[-1] == "vert"


def test_inference_precision_picks_int8_then_bf16_where_the_cpu_has_them(monkeypatch):
    from dl_core.translation import infer

    assert [infer.inference_precision(p) for p in infer.PRECISIONS] == list(infer.PRECISIONS)
    monkeypatch.setenv("DL_TRANSLATION_PRECISION", "fp32")
    assert infer.inference_precision() == "fp32"  # the environment overrides auto
    monkeypatch.delenv("DL_TRANSLATION_PRECISION")
    monkeypatch.setattr(infer, "int8_engine_available", lambda: True)
    assert infer.inference_precision() == "int8"
    monkeypatch.setenv("DL_FAST_PATH", "0")
    assert infer.inference_precision("auto") == "fp32"  # the reference everywhere
    monkeypatch.delenv("DL_FAST_PATH")
    monkeypatch.setattr(infer, "int8_engine_available", lambda: False)
    monkeypatch.setattr(infer, "native_bf16", lambda: True)
    assert infer.inference_precision() == "bf16"
    monkeypatch.setattr(infer, "native_bf16", lambda: False)
    assert infer.inference_precision() == "fp32"  # emulated bf16 would be slower, not faster
    with pytest.raises(ValueError, match="unknown precision"):
        infer.inference_precision("fp8")
    with pytest.raises(ValueError, match="unknown precision"):
        infer.Translator(Seq2Seq(tiny_config()), "fp16")


def test_bf16_and_int8_translators_return_fp32_attention_and_the_same_shapes():
    from dl_core.translation.infer import Translator

    torch.manual_seed(0)
    state = Seq2Seq(tiny_config()).state_dict()
    translators = {}
    for precision in ("fp32", "bf16", "int8"):
        model = Seq2Seq(tiny_config())
        model.load_state_dict(state)
        translators[precision] = Translator(model, precision)
    assert translators["bf16"].model.generator.weight.dtype == torch.bfloat16
    from torch.ao.nn.quantized import dynamic

    int8 = translators["int8"].model
    assert isinstance(int8.rnn, dynamic.GRU) and isinstance(int8.encoder.rnn, dynamic.GRU)
    assert isinstance(int8.generator, dynamic.Linear) and isinstance(int8.attention.key_proj, dynamic.Linear)
    source = translators["fp32"].source("le chat noir")
    for translator in translators.values():
        greedy, beams = translator.greedy(source), translator.beam(source, 3)
        assert greedy.attention.dtype == torch.float32 and beams[0].attention.dtype == torch.float32
        rows = greedy.attention.shape[0]  # one per token, and one for <eos> unless max_out_len came first
        assert rows in (len(greedy.tokens), len(greedy.tokens) + 1) and greedy.attention.shape[1] == len(source.ids)
        assert torch.allclose(greedy.attention.sum(-1), torch.ones(rows), atol=1e-2)
