"""Word expressions for searching images by meaning: `boat`, `sail + boat`, `boat - water`, `king - man + woman`.

An expression is words joined by `+` and `-`; the first word may carry a sign too (`-water` means "away from
water"). Matching is case-insensitive (GloVe 6B is lower-case) and ignores spacing. The expression's vector is the
signed sum of the words' unit vectors, renormalised: DeViSE places images and words in one space, so the images
nearest to it are those whose predicted word vector points the same way (lesson 11's "search images by word").

A word is letters and digits, with apostrophes or hyphens inside it (`don't`, `t-shirt`); a hyphen with a space
on either side, or at the start, is a minus. `boat-water` is therefore one (unknown) word, not a difference: the
error message says to put spaces around the minus.

Everything a user can get wrong raises `QueryError` (a ValueError) with a message meant to be shown as it is.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import torch

from dl_core.devise.vectors import WordVectors

MAX_TERMS = 20  # a search box, not a paragraph: also bounds the work a hostile input can ask for
MAX_CHARS = 1000  # checked after the term count, so that "a + a + ... (1,000 terms)" gets the clearer message
MIN_NORM = 1e-4  # below this the terms cancel (boat - boat): the result has no direction to search along
_SHOWN_CHARS = 30  # how much of an unknown word an error message quotes

# One token, after optional spaces: a word, an operator, or anything else (which is an error).
_TOKEN = re.compile(r"\s*(?:(?P<word>[^\W_]+(?:['-][^\W_]+)*)|(?P<op>[+-])|(?P<other>\S))")
_OPERATORS_AND_SPACE = "+- \t\n\r\f\v"
# Phones and word processors type ’ for ' and − or – for -.
_TYPOGRAPHIC = str.maketrans({"\u2019": "'", "\u2018": "'", "\u2212": "-", "\u2013": "-"})


class QueryError(ValueError):
    """A word expression that cannot be searched; str(error) is a message for the user."""


class Term(NamedTuple):
    sign: int  # +1 or -1
    word: str  # lower-case


def parse_query(text: str) -> list[Term]:
    """`"King - man + WOMAN"` -> [Term(1, 'king'), Term(-1, 'man'), Term(1, 'woman')]; raises QueryError."""
    text = text.translate(_TYPOGRAPHIC).lower()
    if not text.strip():
        raise QueryError("Type a word, or words joined by + and -, e.g. sail + boat")
    if not text.strip(_OPERATORS_AND_SPACE):
        raise QueryError("There are operators but no words: type a word, or words joined by + and -")
    terms: list[Term] = []
    pending_sign: int | None = None  # the operator read since the last word, if any
    # The scan stops at the first error or at term MAX_TERMS + 1, so a huge input costs no more than that.
    for token in _TOKEN.finditer(text):
        if token["other"] is not None:
            raise QueryError(f"{token['other']!r} cannot be used: write words (letters, digits, and apostrophes or "
                             "hyphens inside a word) joined by + and -")
        if token["op"] is not None:
            if pending_sign is not None:
                raise QueryError(f"Two operators in a row ({'+' if pending_sign > 0 else '-'} {token['op']}): "
                                 "put one word between each + and -")
            pending_sign = 1 if token["op"] == "+" else -1
            continue
        if terms and pending_sign is None:
            raise QueryError(f"Join the words with + or - (between {terms[-1].word!r} and {token['word']!r})")
        if len(terms) == MAX_TERMS:
            raise QueryError(f"Too many words: at most {MAX_TERMS}")
        terms.append(Term(1 if pending_sign is None else pending_sign, token["word"]))
        pending_sign = None
    if not terms:
        raise QueryError("There are operators but no words: type a word, or words joined by + and -")
    if pending_sign is not None:
        raise QueryError(f"The expression ends with {'+' if pending_sign > 0 else '-'}: add a word after it")
    if len(text) > MAX_CHARS:
        raise QueryError(f"The expression is too long ({len(text):,} characters; at most {MAX_CHARS:,})")
    return terms


def format_query(terms: list[Term]) -> str:
    """The canonical spelling of parsed terms: [Term(1, 'king'), Term(-1, 'man')] -> 'king - man'."""
    parts = []
    for i, (sign, word) in enumerate(terms):
        parts.append(("-" if sign < 0 else "") + word if i == 0 else f"{'+' if sign > 0 else '-'} {word}")
    return " ".join(parts)


def query_vector(terms: str | list[Term], vectors: WordVectors) -> torch.Tensor:
    """The unit vector (d,) of an expression (text or parsed terms): the signed sum of its words' unit vectors,
    renormalised. Raises QueryError listing every unknown word at once, or when the words cancel out."""
    if isinstance(terms, str):
        terms = parse_query(terms)
    unknown = list(dict.fromkeys(word for _, word in terms if word not in vectors))  # in order, each once
    if unknown:
        shown = ", ".join(word if len(word) <= _SHOWN_CHARS else word[:_SHOWN_CHARS] + "..." for word in unknown)
        hint = " (put spaces around a minus: boat - water)" if any("-" in word for word in unknown) else ""
        raise QueryError(f"Not in the vocabulary: {shown}{hint}")
    total = torch.zeros(vectors.dim)
    for sign, word in terms:
        total += sign * vectors.vector(word)
    norm = total.norm()
    if norm < MIN_NORM:
        raise QueryError(f"The words cancel out ({format_query(terms)} is the zero vector): nothing to search for")
    return total / norm
