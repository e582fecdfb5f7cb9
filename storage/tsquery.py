"""The FTS5 expressions `storage.query_sql` builds, as PostgreSQL tsquery text over `posts.fts`.

The query compiler writes FTS5 syntax (it is SQLite's index's own language); on PostgreSQL the same
expression is translated here, so that the compiler stays one copy. Only what the compiler writes
is accepted: `column : "token token"` phrases (a trailing ` *` makes the last token a prefix),
parenthesised groups, `AND`, `OR` and binary `NOT`, with FTS5's precedence (NOT, then AND, then OR).
Each column's lexemes carry its mark in `posts.fts` (migrations/0019_fts_marked_lexemes.pg.sql): words
as they are, stems after `~`, hashtags after `#`. A query names lexemes without weights, so the GIN
index answers it without reading the vectors again (phrases excepted: their positions are checked).
The text is cast to tsquery (`CAST(? AS tsquery)`), never parsed by to_tsquery, which would drop
the marks.

>>> tsquery('(stems : "санкц") AND (words : "new sanction" *)')
"('~санкц' & ('new' <-> 'sanction':*))"
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["BUCKET_MARK", "MARKS", "in_buckets", "tsquery"]

MARKS = {"words": "", "stems": "~", "tags": "#"}
"""Each column's mark: what its lexemes start with in `posts.fts`."""
BUCKET_MARK = "$"
"""The mark of a post's bucket lexeme in `posts.fts` (`$7`: ids 700000-799999; `Dialect.fts_bucket`)."""

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"]|"")*)"|(\*)|(:)|([A-Za-z_]+))')


def _lex(expression: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    expression = expression.rstrip()
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None:
            raise ValueError(f"not an FTS5 expression chanwatch writes: {expression!r}")
        position = match.end()
        if match.group(3) is not None:
            tokens.append('"' + match.group(3).replace('""', '"'))  # a phrase, marked by its quote
        else:
            tokens.append(match.group(0).strip())
    return tokens


def _lexeme(token: str, mark: str, prefix: bool) -> str:
    quoted = "'" + (mark + token).replace("\\", "\\\\").replace("'", "''") + "'"
    return quoted + ":*" if prefix else quoted


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"expected {expected or 'more'} in an FTS5 expression, got {token!r}")
        self.at += 1
        return token

    def any_of(self) -> str:
        parts = [self.all_of()]
        while self.peek() == "OR":
            self.take()
            parts.append(self.all_of())
        return parts[0] if len(parts) == 1 else "(" + " | ".join(parts) + ")"

    def all_of(self) -> str:
        parts = [self.but_not()]
        while self.peek() not in (None, "OR", ")"):
            if self.peek() == "AND":
                self.take()
            parts.append(self.but_not())
        return parts[0] if len(parts) == 1 else "(" + " & ".join(parts) + ")"

    def but_not(self) -> str:
        result = self.primary()
        while self.peek() == "NOT":
            self.take()
            result = f"({result} & !{self.primary()})"
        return result

    def primary(self) -> str:
        token = self.take()
        if token == "(":
            inner = self.any_of()
            self.take(")")
            return inner
        if token not in MARKS:
            raise ValueError(f"an FTS5 phrase of chanwatch names its column, got {token!r}")
        self.take(":")
        phrase = self.take()
        if not phrase.startswith('"'):
            raise ValueError(f"expected a quoted phrase, got {phrase!r}")
        prefix = self.peek() == "*"
        if prefix:
            self.take()
        words = phrase[1:].split()
        if not words:
            raise ValueError("an empty phrase")
        mark = MARKS[token]
        lexemes = [_lexeme(w, mark, prefix and i == len(words) - 1) for i, w in enumerate(words)]
        return lexemes[0] if len(lexemes) == 1 else "(" + " <-> ".join(lexemes) + ")"


@lru_cache(maxsize=1024)
def tsquery(expression: str) -> str:
    """The tsquery text (for `CAST(? AS tsquery)`) matching what FTS5 matches for `expression`."""
    parser = _Parser(_lex(expression))
    result = parser.any_of()
    if parser.peek() is not None:
        raise ValueError(f"unexpected {parser.peek()!r} in an FTS5 expression")
    return result


def in_buckets(query: str, buckets: list[int]) -> str:
    """`query` (tsquery text) limited to the posts of `buckets`: GIN intersects inside the index, so
    the bitmap holds only those buckets' matches, not every match of a frequent word."""
    marks = " | ".join(f"'{BUCKET_MARK}{bucket}'" for bucket in buckets)
    return f"({query}) & ({marks})"
