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


_FOLD = _fold_table()


def fold(text: str) -> str:
    """Case-, width- and accent-fold text the same way everywhere."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return text if text.isascii() else text.translate(_FOLD)


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units: the unit of Telegram's entity offsets and limits."""
    return len(text.encode("utf-16-le")) // 2


def words(text: str) -> list[str]:
    """Folded tokens of `text`, in order."""
    return _TOKEN.findall(fold(text))


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
    return [stem(t) for t in tokens]


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


def language(text: str) -> str | None:
    """Language by script: `ru` for Cyrillic (`uk` when Ukrainian letters appear), `en` for Latin.

    A script count, not a language model: it tells Russian from English, which is what the
    archive's readers filter on; it cannot tell French from English.
    """
    folded = fold(text)
    return _language(_TOKEN.findall(folded), folded)


def _language(tokens: list[str], folded: str) -> str | None:
    """Letters in Cyrillic vs Latin tokens, counted on the tokens analyse already has."""
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
    return hashlib.sha1(" ".join(tokens).encode()).hexdigest()


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
    tokens = _TOKEN.findall(folded)
    tags: dict[str, None] = {}
    for body in _HASHTAG.findall(folded):
        token = "".join(_TOKEN.findall(body))  # = hashtag_token(body): `folded` is folded already
        if token:
            tags.setdefault(token, None)
    return Analysed(
        " ".join(tokens), " ".join(stems(tokens)), " ".join(tags),
        fingerprint(tokens), len(tokens), _language(tokens, folded),
    )
