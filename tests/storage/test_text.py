"""Text analysis: the fast paths give exactly what the plain implementations they replaced gave."""

from __future__ import annotations

import re
import sys
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from storage import text
from storage.text import (
    _FOLD,
    _TOKEN,
    _UKRAINIAN,
    _char_class,
    _language,
    _tokens,
    analyse,
    excerpt_window,
    fold,
)

# Characters the fast paths treat specially, mixed into arbitrary text so every branch is reached.
TRICKY = "ёЁеіїєґІЇaAzéÉñŉʼßẞµ²½ﬁ\u0301\u0308\u0483б1_#-. \t\n\u00a0\u2028«»"
texts = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(TRICKY)), max_size=40)


def translate_fold(value: str) -> str:
    """`fold` as it was: translate every character through the table."""
    value = unicodedata.normalize("NFKC", value).casefold()
    return value if value.isascii() else value.translate(_FOLD)


def counting_language(tokens: list[str], folded: str) -> str | None:
    """`_language` as it was: count the letters of every token by its first letter."""
    cyr = lat = 0
    for token in tokens:
        first = token[0]
        if "\u0400" <= first <= "\u04ff":
            cyr += len(token)
        elif first.isalpha() and first <= "\u024f":
            lat += len(token)
    if cyr == 0 and lat == 0:
        return None
    if cyr >= lat:
        return "uk" if _UKRAINIAN.search(folded) else "ru"
    return "en"


@settings(max_examples=1000)
@given(texts)
def test_fold_equals_translating_through_the_whole_table(value: str) -> None:
    assert fold(value) == translate_fold(value)


@settings(max_examples=1000)
@given(texts)
def test_tokens_are_exactly_the_token_regex_matches(value: str) -> None:
    folded = fold(value)
    assert _tokens(folded) == _TOKEN.findall(folded)


@settings(max_examples=1000)
@given(texts)
def test_language_equals_counting_letters_token_by_token(value: str) -> None:
    folded = fold(value)
    tokens = _TOKEN.findall(folded)
    expected = counting_language(tokens, folded)
    assert _language(tokens, " ".join(tokens), folded) == expected
    assert text.language(value) == expected
    assert analyse(value).language == expected


@given(st.lists(st.sampled_from(["мир", "ёж", "їжак", "peace", "naïve", "2025", "ʼn", "1б", "µ"])))
def test_language_of_token_mixes_equals_counting(tokens: list[str]) -> None:
    value = " ".join(tokens)
    folded = fold(value)
    assert analyse(value).language == counting_language(_TOKEN.findall(folded), folded)


def test_language_is_decided_by_first_letters_only() -> None:
    assert text.language("ʼnб") is None  # neither token start is Cyrillic or Latin up to U+024F
    assert text.language("1б") is None
    assert text.language("1б peace") == "en"
    assert text.language("мирок peace") == "ru"  # a tie goes to Cyrillic
    assert text.language("їжачок peace") == "uk"


def test_every_character_folds_as_through_the_table() -> None:
    for cp in range(0x30000):
        if not 0xD800 <= cp < 0xE000:
            assert fold(chr(cp) + "б") == translate_fold(chr(cp) + "б"), hex(cp)


def test_no_character_is_both_whitespace_and_a_token_character() -> None:
    """What `_tokens` relies on to split on whitespace before looking for tokens."""
    assert not [cp for cp in range(sys.maxunicode + 1) if chr(cp).isspace() and chr(cp).isalnum()]


@given(st.sets(st.integers(0, sys.maxunicode), max_size=30))
def test_char_class_matches_exactly_its_codepoints(codepoints: set[int]) -> None:
    probe = codepoints | {cp + 1 for cp in codepoints if cp < sys.maxunicode} | {0, ord("-"), ord("]")}
    if not codepoints:
        return
    pattern = re.compile(_char_class(codepoints))
    for cp in probe:
        assert (pattern.fullmatch(chr(cp)) is not None) == (cp in codepoints), cp


@given(st.text(alphabet="ab ", max_size=400), st.integers(0, 400), st.integers(20, 200))
def test_the_excerpt_window_is_at_most_size_long_and_shows_where_the_first_match_starts(text, at, size):
    at = min(at, len(text))
    start, end = excerpt_window(text, [(at, at + 1)] if text else [], size)
    assert 0 <= start <= end <= len(text) and end - start <= size
    if len(text) <= size:
        assert (start, end) == (0, len(text))
    elif at < len(text) - size // 2:
        assert start <= at < end


def test_the_excerpt_window_cuts_at_word_boundaries():
    text = " ".join(f"word{i:03d}" for i in range(100))
    at = text.index("word050")
    start, end = excerpt_window(text, [(at, at + 7)], 60)
    assert text[start - 1] == " " and text[end] == " " and start <= at < end
