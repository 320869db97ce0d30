"""Lesson 10 tokenisation: each fastai rule, the rule tokens in the vocabulary, and the on-disk token cache."""
import numpy as np
import pytest

from dl_core import text
from dl_core.text import (
    RULE_TOKENS, SPECIAL_TOKENS, UNK, TokenizedCorpus, Vocab, add_spaces_around_slash_and_hash, collapse_spaces, fix_html,
    replace_case, replace_char_repetitions, replace_word_repetitions, tokenize_corpus, tokenize_with_rules,
)


def test_fix_html_turns_breaks_entities_and_tags_into_text():
    assert fix_html("Great.<br /><br />Really") == "Great.\n\nReally"
    assert fix_html("a<br>b<BR/>c") == "a\nb\nc"
    assert fix_html("Tom &amp; Jerry &quot;hi&quot; it#39;s") == "Tom & Jerry \"hi\" it's"  # broken entity too
    assert fix_html("an <i>odd</i> <b>film</b>") == "an  odd   film "
    assert fix_html("a <unk> word, 3 < 5 > 2") == "a <unk> word, 3 < 5 > 2"  # not tags: left alone
    assert fix_html("state @-@ of @-@ the @-@ art , 1 @,@ 000 @.@ 5") == "state-of-the-art , 1,000.5"  # WikiText


def test_character_repetitions_become_xxrep():
    assert replace_char_repetitions("sooooo good!!!").split() == ["s", "xxrep", "5", "o", "good", "xxrep", "3", "!"]
    assert replace_char_repetitions("too good") == "too good"  # two in a row is ordinary spelling


def test_word_repetitions_become_xxwrep():
    assert replace_word_repetitions("it was very very very good").split() == ["it", "was", "xxwrep", "3", "very", "good"]
    assert replace_word_repetitions("no no, yes") == "no no, yes"  # two in a row is left alone


def test_slash_hash_and_spaces():
    assert collapse_spaces(add_spaces_around_slash_and_hash("good/bad #1")) == "good / bad # 1"


def test_case_rules_mark_capitals_and_lower_everything():
    assert replace_case(["The", "BEST", "film", "I", "saw", "McQueen", "A1"]) == [
        "xxmaj", "the", "xxup", "best", "film", "xxmaj", "i", "saw", "mcqueen", "xxup", "a1"]  # str.isupper ignores digits
    assert replace_case(["xxrep", "3", "!"]) == ["xxrep", "3", "!"]  # rule tokens pass through


def test_tokenize_with_rules_end_to_end():
    tokens = tokenize_with_rules("This movie was GREAT!!!! I loved it.<br /><br />Don't miss it")
    assert tokens == ["xxmaj", "this", "movie", "was", "xxup", "great", "xxrep", "4", "!", "xxmaj", "i", "loved", "it",
                      ".", "xxmaj", "do", "n't", "miss", "it"]
    assert tokenize_with_rules("a <unk> here") == ["a", UNK, "here"]  # WikiText's unknown word stays one token
    assert tokenize_with_rules("") == [] and tokenize_with_rules(" \n\t ") == []


def test_translation_tokeniser_is_unchanged_by_the_rules():
    assert text.tokenize("a <unk> Here", "en") == ["a", "<", "unk", ">", "Here"]


def test_vocab_reserves_rule_tokens_after_the_specials():
    counts = {"the": 5, "film": 3, "xxmaj": 9, "rare": 1}
    vocab = Vocab.from_counts(counts, max_size=len(RULE_TOKENS) + 1, min_freq=2, reserved=RULE_TOKENS)
    assert vocab.itos == list(SPECIAL_TOKENS) + list(RULE_TOKENS) + ["the"]  # max_size counts the reserved ones
    assert Vocab.build([["b", "a", "b"]], min_freq=1).itos[4:] == ["b", "a"]  # the translation API still works


def test_corpus_stores_texts_flat_and_numericalises():
    corpus = tokenize_corpus(["Hello world", "", "HELLO again"], workers=0)
    assert len(corpus) == 3 and corpus[0] == ["xxmaj", "hello", "world"] and corpus[1] == []
    assert corpus.counts()["hello"] == 2 and corpus.n_tokens == 6
    vocab = Vocab(list(SPECIAL_TOKENS) + ["hello", "xxmaj"])
    ids = corpus.numericalize(vocab)
    assert [a.tolist() for a in ids] == [[5, 4, 3], [], [3, 4, 3]]  # xxup, world, again unknown
    both = TokenizedCorpus.concat([corpus.subset([2]), tokenize_corpus(["world"], workers=0)])
    assert [both[i] for i in range(len(both))] == [["xxup", "hello", "again"], ["world"]]


def test_cache_is_hit_on_the_second_run(tmp_path, monkeypatch):
    texts = ["A first review.", "Another one!!!", "Third"]
    first = tokenize_corpus(texts, cache_dir=tmp_path, workers=0)
    assert len(list(tmp_path.glob("tokens-*.safetensors"))) == 1

    def no_tokenising(job):
        raise AssertionError("tokenised again although the cache holds these texts")

    monkeypatch.setattr(text, "_tokenize_chunk", no_tokenising)
    second = tokenize_corpus(list(texts), cache_dir=tmp_path, workers=0)
    assert second.tokens == first.tokens and np.array_equal(second.ids, first.ids)
    assert np.array_equal(second.offsets, first.offsets)
    with pytest.raises(AssertionError, match="tokenised again"):  # other texts: a miss
        tokenize_corpus(texts + ["new"], cache_dir=tmp_path, workers=0)


def test_cache_key_changes_with_text_boundaries_and_rules_version(monkeypatch):
    key = text.corpus_key(["ab", "c"], "en")
    assert text.corpus_key(["a", "bc"], "en") != key
    assert text.corpus_key(["ab", "c"], "fr") != key
    monkeypatch.setattr(text, "RULES_VERSION", text.RULES_VERSION + 1)
    assert text.corpus_key(["ab", "c"], "en") != key


def test_worker_processes_give_the_same_tokens():
    texts = [f"Review {i}: it was GOOD!!! <br />Really really really good." for i in range(30)]
    in_process = tokenize_corpus(texts, workers=0)
    pooled = tokenize_corpus(texts, workers=1)  # a pool of one spawned process (the 2-core machine is shared)
    assert [pooled[i] for i in range(30)] == [in_process[i] for i in range(30)]
