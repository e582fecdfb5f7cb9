"""Field checks for imported messages: one bad message is named (which field, what is wrong) and
skipped, instead of a traceback or an SQLite error halfway through a file.

Every value that reaches an SQLite column or a computation is checked here for its type and range;
values stored only inside a JSON column (`raw`, a media's `extra`) may be any JSON. `DATA_ERRORS`
are what storing a message can still raise if a check missed something: the importers then store
that batch one message at a time and skip the one that fails, named the same way.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from storage.records import parse_iso

__all__ = [
    "DATA_ERRORS", "SQLITE_MAX", "Malformed", "as_dict", "as_list", "checked", "floats", "got", "int_or_none",
    "iso_or_none", "kind", "need_int", "need_text", "one_line", "reactions_or_none", "safe", "shown",
    "text_or_none", "unicode_problem", "unix_date",
]

T = TypeVar("T")

SQLITE_MAX = 2**63 - 1
"""The largest INTEGER SQLite stores; Python ints beyond it cannot be bound."""

DATA_ERRORS: tuple[type[BaseException], ...] = (
    TypeError, ValueError, OverflowError, RecursionError, sqlite3.InterfaceError, sqlite3.ProgrammingError,
    sqlite3.DataError, sqlite3.IntegrityError,
)
"""What storing one message can raise because of the message itself (an SQLite error about the
archive, such as a full disk, is not among them: that stops the import)."""


class Malformed(Exception):
    """One message (or post) that cannot be imported: `field` is where, `problem` what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def shown(value: Any, limit: int = 30) -> str:
    """A value as a message quotes it: its repr (a number as digits), cut to `limit` characters."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        digits = int(value.bit_length() * 0.30102999566398)  # str() may refuse it: count without it
        return f"a {digits + (abs(value) >= 10**digits)}-digit number"
    number = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    text = str(value) if number else repr(value)
    return safe(text if len(text) <= limit else text[: limit - 1] + "…")


def safe(text: str) -> str:
    """`text` as it can be printed: a lone surrogate becomes its escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


_BREAKS = {"Cc", "Zl", "Zp"}  # control characters, line and paragraph separators


def one_line(text: str) -> str:
    """`text` safe to print as one line: line breaks and other control characters (a channel named
    "a\nb") become escapes like `\n`, and so do lone surrogates."""
    text = safe(text)
    if text.isprintable():
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in _BREAKS else c
                   for c in text)


_KIND = {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}


def kind(value: Any) -> str:
    """What a JSON value is, in words."""
    if isinstance(value, bool | str | dict | list) or value is None:
        return _KIND[type(value)]
    return "a number"


def got(value: Any) -> str:
    """What a message says it found: `missing`, or the value's kind and the value."""
    return "missing" if value is None else f"{kind(value)} {shown(value)}"


def need_int(value: Any, field: str, *, minimum: int = -SQLITE_MAX - 1) -> int:
    """A whole number SQLite can store, at least `minimum`."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise Malformed(field, f"{got(value)}, expected a whole number")
    if not minimum <= value <= SQLITE_MAX:
        raise Malformed(field, f"{shown(value)} is out of range ({minimum} to {SQLITE_MAX})"
                        if minimum > 0 else f"{shown(value)} is out of range")
    return value


def int_or_none(value: Any, field: str, *, minimum: int = -SQLITE_MAX - 1) -> int | None:
    return None if value is None else need_int(value, field, minimum=minimum)


def need_text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise Malformed(field, f"{got(value)}, expected text")
    return value


def text_or_none(value: Any, field: str) -> str | None:
    return None if value is None else need_text(value, field)


def as_list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise Malformed(field, f"{got(value)}, expected a list")
    return value


def as_dict(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(field, f"{got(value)}, expected an object")
    return value


def reactions_or_none(value: Any, field: str) -> dict[str, int] | None:
    """Reaction counts as stored (`{"👍": 12, "custom:5368…": 3, "paid": 1}`): text keys, counts 0 or more."""
    if value is None:
        return None
    counts = as_dict(value, field)
    for key, count in counts.items():
        need_text(key, f"{field} key")
        need_int(count, f"{field}.{safe(key)}", minimum=0)
    return counts


def checked(read: Callable[[], T], field: str, expected: str) -> T:
    """`read()`, with a Malformed naming `field` if it fails on the value (a bad date, say)."""
    try:
        return read()
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise Malformed(field, f"{expected} ({exc})") from exc


def iso_or_none(value: Any, field: str) -> datetime | None:
    """An ISO-8601 date as our JSONL writes it (None stays None)."""
    if value is None:
        return None
    text = need_text(value, field)
    return checked(lambda: parse_iso(text), field, f"{shown(text)} is not an ISO date")


def unix_date(value: Any, field: str) -> datetime:
    """A Desktop export's `*_unixtime` (a string of digits, or a number) as an aware UTC datetime."""
    if isinstance(value, str) and value.isascii() and value.strip().lstrip("-").isdigit():
        seconds = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        raise Malformed(field, f"{got(value)}, expected seconds since 1970")
    return checked(lambda: datetime.fromtimestamp(seconds, UTC), field, f"{shown(seconds)} is out of range")


def floats(value: Any) -> Any:
    """Turn the Decimals ijson reads for non-integral numbers into floats, in place, as json.load
    would give them (ijson's own `use_float` cannot be used: its C backend then fails on integers
    beyond 64 bits, and one such number would make a whole export unreadable)."""
    if type(value) is dict:
        for key, item in value.items():
            kind_ = type(item)
            if kind_ is dict or kind_ is list:
                floats(item)
            elif kind_ is Decimal:
                value[key] = float(item)
    elif type(value) is list:
        for index, item in enumerate(value):
            kind_ = type(item)
            if kind_ is dict or kind_ is list:
                floats(item)
            elif kind_ is Decimal:
                value[index] = float(item)
    return value


def unicode_problem(value: Any, field: str = "") -> Malformed | None:
    """The first text in `value` that SQLite cannot store (a lone UTF-16 surrogate such as
    `"\\ud800"`, which JSON allows), named by its path; None if there is none."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return Malformed(field or "text", "text with a lone surrogate (not valid Unicode)")
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = unicode_problem(key, field or "key") or unicode_problem(item, _join(field, str(key)))
            if problem:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problem = unicode_problem(item, f"{field}[{index}]")
            if problem:
                return problem
    return None


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key
