"""The one normaliser, tokeniser and stemmer: the index, queries and alert rules all go through here.

Folding: NFKC, case-fold, `ё` -> `е`, accents stripped from Latin letters only (so `й` stays `й`).
Tokens are runs of letters and digits. Words in Cyrillic are stemmed with Snowball Russian, words in
Latin script with Snowball English, anything else is kept as is. Hashtags are kept as their own
tokens (folded, underscores dropped) so `#RussiaAfrica` can be searched as a hashtag.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import Stemmer

_TOKEN = re.compile(r"[^\W_]+")
_HASHTAG = re.compile(r"#([^\W][\w]*)")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[a-z\u00c0-\u024f]")
_UKRAINIAN = re.compile(r"[іїєґ]")

_ru = Stemmer.Stemmer("russian")
_en = Stemmer.Stemmer("english")


def _fold_table() -> dict[int, str | None]:
    """One translate table: `ё` -> `е`, accented Latin -> its base letter, combining marks dropped."""
    table: dict[int, str | None] = {ord("ё"): "е"}
    for cp in range(0xC0, 0x250):
        base = unicodedata.normalize("NFD", chr(cp))[0]
        if base.isascii() and base != chr(cp):
            table[cp] = base.lower()
    for cp in range(0x10000):
        if unicodedata.combining(chr(cp)):
            table[cp] = None
    return table


def _char_class(codepoints: Iterable[int]) -> str:
    """A regex character class matching exactly `codepoints` (as ranges, so it stays short)."""
    ranges: list[list[int]] = []
    for cp in sorted(codepoints):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "[" + "".join(
        f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges
    ) + "]"


_FOLD = _fold_table()
_FOLDED_CHAR = re.compile(_char_class(_FOLD))  # a character `_FOLD` changes

# What `_language` counts: tokens starting with a Cyrillic letter, and with a letter up to U+024F
_LATIN_CLASS = _char_class(cp for cp in range(0x250) if chr(cp).isalpha())
_LATIN_LETTER = re.compile(_LATIN_CLASS)
_LATIN_START = re.compile(f"(?:^| ){_LATIN_CLASS}")
_CYRILLIC_START = re.compile(r"(?:^| )[\u0400-\u04ff]")


def _fold_char(match: re.Match[str]) -> str:
    return _FOLD[ord(match.group())] or ""


def fold(text: str) -> str:
    """Case-, width- and accent-fold text the same way everywhere."""
    text = unicodedata.normalize("NFKC", text).casefold()
    # = text.translate(_FOLD), which looks every character up in a 65k-entry dict; the few that
    # change are found by one regex scan instead.
    return text if text.isascii() else _FOLDED_CHAR.sub(_fold_char, text)


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units: the unit of Telegram's entity offsets and limits."""
    return len(text.encode("utf-16-le")) // 2


def excerpt_window(text: str, spans: Sequence[tuple[int, int]], size: int) -> tuple[int, int]:
    """The [start, end) slice of `text`, about `size` characters, that shows the first span.

    The slice starts a third of `size` before the first span (never after it) and both ends move
    to a word boundary within 40 characters: the one window of search snippets, the bot's result
    pages and alerts.
    """
    if len(text) <= size:
        return 0, len(text)
    first = spans[0][0] if spans else 0
    start = max(0, min(first - size // 3, len(text) - size))
    if start:
        space = text.find(" ", start, min(first, start + 40))
        start = space + 1 if space != -1 else start
    end = min(len(text), start + size)
    if end < len(text):
        space = text.rfind(" ", max(start, end - 40), end)
        end = space if space > start else end
    return start, end


def _tokens(folded: str) -> list[str]:
    """= `_TOKEN.findall(folded)`, faster: whitespace never joins a token, so split on it first
    and run the regex only on the pieces holding something besides letters and digits."""
    parts = folded.split()
    if all(map(str.isalnum, parts)):
        return parts
    tokens: list[str] = []
    for part in parts:
        if part.isalnum():
            tokens.append(part)
        else:
            tokens += _TOKEN.findall(part)
    return tokens


def words(text: str) -> list[str]:
    """Folded tokens of `text`, in order."""
    return _tokens(fold(text))


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Stem one folded token: Russian for Cyrillic words, English for Latin words, else unchanged."""
    if word.isdigit():
        return word
    if _CYRILLIC.search(word):
        if _LATIN.search(word):
            return word
        return _ru.stemWord(word) or word
    if word.isascii() and word.isalpha():
        return _en.stemWord(word) or word
    return word


def stems(tokens: list[str]) -> list[str]:
    """Stems aligned position for position with `tokens`."""
    return list(map(stem, tokens))


def hashtag_token(tag: str) -> str:
    """The index token of a hashtag body (without '#'): folded, underscores and separators dropped."""
    return "".join(_TOKEN.findall(fold(tag)))


def is_hashtag(raw: str) -> bool:
    """Whether `raw` ('#' included) is one whole hashtag as Telegram and the index delimit it."""
    return _HASHTAG.fullmatch(raw) is not None


def hashtags(text: str) -> list[str]:
    """Index tokens of the hashtags in `text`, in order, without duplicates."""
    seen: dict[str, None] = {}
    for body in _HASHTAG.findall(text):
        token = hashtag_token(body)
        if token:
            seen.setdefault(token, None)
    return list(seen)


LANGUAGES = ("ru", "uk", "en")
"""Every language `language` assigns (what `lang:` can find); a post in neither script has none."""


def language(text: str) -> str | None:
    """Language by script: `ru` for Cyrillic (`uk` when Ukrainian letters appear), `en` for Latin.

    A script count, not a language model: it tells Russian from English, which is what the
    archive's readers filter on; it cannot tell French from English.
    """
    folded = fold(text)
    tokens = _tokens(folded)
    return _language(tokens, " ".join(tokens), folded)


def _language(tokens: list[str], joined: str, folded: str) -> str | None:
    """Letters in Cyrillic vs Latin tokens (by their first letter), counted on the tokens analyse
    already has; `joined` is them space-joined. A text in one script is decided without counting."""
    if joined.isascii():  # no Cyrillic letters: whether a token starts with a Latin one
        return "en" if _LATIN_START.search(joined) else None
    has_latin = _LATIN_LETTER.search(joined) is not None
    has_cyrillic = _CYRILLIC.search(joined) is not None
    if not has_latin:  # no Latin letters: the answer is whether a token starts with a Cyrillic one
        if has_cyrillic and _CYRILLIC_START.search(joined):
            return "uk" if _UKRAINIAN.search(folded) else "ru"
        return None
    if not has_cyrillic:  # and no Cyrillic ones: whether a token starts with a Latin one
        return "en" if _LATIN_START.search(joined) else None
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


def fingerprint(tokens: list[str]) -> str | None:
    """A hash of a folded word sequence (from `words`); None for a text with no words."""
    if not tokens:
        return None
    return _fingerprint(" ".join(tokens))


def _fingerprint(joined: str) -> str:
    return hashlib.sha1(joined.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Analysed:
    """The index columns of one text: space-joined words, stems and hashtags, and text facts."""

    words: str
    stems: str
    tags: str
    fingerprint: str | None
    word_count: int
    language: str | None


def analyse(text: str) -> Analysed:
    """Everything the index stores about a text, folding it once."""
    folded = fold(text)
    tokens = _tokens(folded)
    joined = " ".join(tokens)
    tags: dict[str, None] = {}
    for body in _HASHTAG.findall(folded):
        token = "".join(_TOKEN.findall(body))  # = hashtag_token(body): `folded` is folded already
        if token:
            tags.setdefault(token, None)
    return Analysed(
        joined, " ".join(map(stem, tokens)), " ".join(tags),
        _fingerprint(joined) if tokens else None, len(tokens), _language(tokens, joined, folded),
    )
