"""The query language's AST, its limits and errors, and what it means in memory: `match` says whether
a `PostDoc` satisfies a node exactly as the SQL of `storage.query_sql` would find the post."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from storage import text as tx
from storage.records import PostDoc

FILTERS = ("channel", "from", "since", "until", "lang", "is")
IS_VALUES = ("forward", "original", "copy", "edited", "deleted")
SPARSE_FACTS = ("copy", "deleted")
"""is: values that hold for few posts, listed from partial indexes (schema v4)."""
SORT_VALUES = ("date", "rank")
MAX_DEPTH = 12
"""Deepest nesting of parentheses and negations: keeps recursion bounded and the SQL within SQLite's
parser stack (100 entries in SQLite 3.40: about 15 levels of nested OR in our SQL)."""
MAX_LEAVES = 200
"""Most terms and filters in one query: keeps the SQL well inside SQLite's expression limits."""

FILTER = re.compile(r"([A-Za-z]+):(.*)\Z", re.S)
DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_ID = re.compile(r"(?:-100)?(\d{1,18})\Z")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

KNOWN = "channel:, from:, since:, until:, lang:, is:, sort:"
FILTER_EXAMPLE = {
    "channel": "channel:rusembc",
    "from": 'from:MFARussia or from:"Russian MFA"',
    "since": "since:2025-12-01",
    "until": "until:2025-12-31",
    "lang": "lang:ru",
    "is": "is:forward",
    "sort": "sort:date",
}


class QueryError(Exception):
    """A query that cannot be parsed: `position` is the 0-based offset of the culprit, `hint` the fix."""

    def __init__(self, message: str, position: int, hint: str) -> None:
        self.message = message
        self.position = position
        self.hint = hint
        super().__init__(f"{message} at position {position}: {hint}")


# -- the AST --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    """Text to find in one FTS column, as our own tokens.

    `stems`: one stem (a bare word), or consecutive stems (a bare term of several tokens: covid-19);
    `words`: consecutive folded words (a "phrase"), or with `prefix` one word start (lavr*);
    `tags`: one hashtag token.
    """

    column: str
    tokens: tuple[str, ...]
    prefix: bool = False
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Filter:
    """A fact about the post rather than its text; `value` is normalised (see `parse`).

    `keys` (channel:, from:) is the set of strings a post's channel/origin facts are compared with;
    `bound` (since:, until:) the ISO text `posts.date` is compared with.
    """

    name: str
    value: str
    pos: int = field(default=0, compare=False)
    keys: frozenset[str] = field(init=False, compare=False)
    bound: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", filter_keys(self.name, self.value))
        bound = ""
        if self.name == "since":
            bound = self.value
        elif self.name == "until":
            day = date.fromisoformat(self.value)
            # Lexically after every timestamp of 9999-12-31, where there is no next day.
            bound = (day + timedelta(days=1)).isoformat() if day < date.max else "9999-12-32"
        object.__setattr__(self, "bound", bound)


@dataclass(frozen=True, slots=True)
class Not:
    """Posts the child does not match."""

    child: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class And:
    """Posts every child matches (two or more children, none of them an `And`)."""

    children: tuple[Node, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Or:
    """Posts some child matches (two or more children, none of them an `Or`)."""

    children: tuple[Node, ...]
    pos: int = field(default=0, compare=False)


Node = Text | Filter | Not | And | Or


def ascii_lower(value: str) -> str:
    """Lower-case ASCII letters only, as SQLite's built-in lower() does."""
    return value.translate(_ASCII_LOWER)


def name_key(title: str) -> str:
    """How from: compares origin titles: the folded words, so punctuation and emoji do not count."""
    return " ".join(tx.words(title))


def id_key(value: str) -> str | None:
    """The bare channel id of a numeric value (`-100` prefix form accepted), as canonical text."""
    m = _ID.match(value)
    return str(int(m.group(1))) if m else None


def filter_keys(name: str, value: str) -> frozenset[str]:
    """What channel:/from: compare a post's facts with: lower username, bare id, title words."""
    if name == "channel":
        keys = {ascii_lower(value), id_key(value)}
    elif name == "from":
        keys = {ascii_lower(value), id_key(value), name_key(value)}
    else:
        return frozenset()
    return frozenset(k for k in keys if k)


def int_keys(keys: frozenset[str]) -> list[int]:
    """The keys that are canonical integers (so `str(column) IN keys` is `column IN ints`)."""
    out = []
    for key in sorted(keys):
        if re.fullmatch(r"-?[1-9]\d{0,17}|0", key):
            out.append(int(key))
    return out


def nodes(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Not):
        yield from nodes(node.child)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from nodes(child)


def positive_texts(node: Node, negated: bool = False) -> Iterator[Text]:
    """The text leaves a match can be shown for: those under an even number of negations."""
    if isinstance(node, Text):
        if not negated:
            yield node
    elif isinstance(node, Not):
        yield from positive_texts(node.child, not negated)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from positive_texts(child, negated)


def positive(node: Node) -> bool:
    """Whether the node says what to look for, not only what to leave out."""
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(positive(c) for c in node.children)
    if isinstance(node, Or):
        return all(positive(c) for c in node.children)
    return True


# -- in-memory matcher ----------------------------------------------------------------------------


def _contains_run(seq: tuple[str, ...], run: tuple[str, ...]) -> bool:
    """Whether `run` occurs in `seq` as consecutive items."""
    first, size = run[0], len(run)
    for i, item in enumerate(seq):
        if item == first and seq[i:i + size] == run:
            return True
    return False


def match(node: Node, doc: PostDoc) -> bool:
    """The matcher: the same semantics as `storage.query_sql.where`, over a `PostDoc`."""
    if isinstance(node, Text):
        if node.column == "tags":
            return node.tokens[0] in doc.tags
        seq = doc.stems if node.column == "stems" else doc.words
        if node.prefix:
            start = node.tokens[0]
            return any(w.startswith(start) for w in seq)
        if len(node.tokens) == 1:
            return node.tokens[0] in seq
        return _contains_run(seq, node.tokens)
    if isinstance(node, Filter):
        return match_filter(node, doc)
    if isinstance(node, Not):
        return not match(node.child, doc)
    if isinstance(node, And):
        return all(match(c, doc) for c in node.children)
    return any(match(c, doc) for c in node.children)


def match_filter(node: Filter, doc: PostDoc) -> bool:
    name = node.name
    if name == "channel":
        return not node.keys.isdisjoint(doc.channels)
    if name == "from":
        return not node.keys.isdisjoint(doc.origin)
    if name == "since":
        return doc.date >= node.bound
    if name == "until":
        return doc.date < node.bound
    if name == "lang":
        return doc.lang == node.value
    if node.value == "edited":
        return doc.edited
    if node.value == "deleted":
        return doc.deleted
    return node.value in doc.relations
