from dl_core.text import SPECIAL_TOKENS, Vocab, detokenize, tokenize, tokenize_batch


def test_spacy_tokenizers_split_french_elision_and_english_clitics():
    assert tokenize("L'homme n'est pas là.", "fr") == ["L'", "homme", "n'", "est", "pas", "là", "."]
    assert tokenize("I don't know, it's fine!", "en") == ["I", "do", "n't", "know", ",", "it", "'s", "fine", "!"]


def test_tokenize_drops_whitespace_tokens_and_batches_agree():
    assert tokenize("  deux   espaces \n ici ", "fr") == ["deux", "espaces", "ici"]
    texts = ["Bonjour !", "Où est la gare ?"]
    assert tokenize_batch(texts, "fr") == [tokenize(t, "fr") for t in texts]


def test_vocab_specials_frequency_cutoff_and_order():
    vocab = Vocab.build([["b", "a", "b", "c"], ["a", "b", "d"]], min_freq=2)
    assert vocab.itos == list(SPECIAL_TOKENS) + ["b", "a"]  # most frequent first; c and d seen once
    assert vocab.encode(["a", "zzz"]) == [5, Vocab.unk_id]
    capped = Vocab.build([["a", "a", "b", "b", "c"]], max_size=1, min_freq=1)
    assert capped.itos[4:] == ["a"]  # ties broken alphabetically: a deterministic vocabulary


def test_vocab_decode_stops_at_eos_and_drops_padding():
    vocab = Vocab(list(SPECIAL_TOKENS) + ["hello", "world"])
    assert vocab.decode([Vocab.bos_id, 4, 5, Vocab.eos_id, 4]) == ["hello", "world"]
    assert vocab.decode([4, Vocab.pad_id, Vocab.unk_id]) == ["hello", "<unk>"]


def test_vocab_rejects_missing_specials():
    import pytest

    with pytest.raises(ValueError, match="special tokens"):
        Vocab(["a", "b"])


def test_detokenize_inverts_spacy_on_typical_sentences():
    for text in ["I don't know why he left.", "It's 5 o'clock, isn't it?", 'He said "no" (twice).',
                 "We're going home; they'll stay.", "Tom's car is well-known."]:
        assert detokenize(tokenize(text, "en"), "en") == text
    for text in ["Je ne sais pas pourquoi il est parti.", "L'homme qu'il a vu est là.", "Va !", "Qu'est-ce que c'est ?"]:
        assert detokenize(tokenize(text, "fr"), "fr") == text
