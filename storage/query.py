"""The query language of `/search`, the CLI and alert rules: parse once into an AST, then compile it to
FTS5 MATCH + parameterised SQL for search, or run it in memory against a `PostDoc` for rules.

Both sides read the same tokens (`storage.text`) and the same filter facts, so a rule matches a post
exactly when searching for the rule's text finds that post (tests/storage/test_query_properties.py).

```
canada sanctions      both, by stem          canada OR arctic    either
-visa  NOT visa       without                ( )                 grouping; AND is implicit
"foreign minister"    consecutive words, not stemmed
lavr*                 word prefix            #RussiaAfrica       hashtag
channel:rusembc from:MFARussia since:2025-12-01 until:2025-12-31 lang:ru
is:forward|original|copy|edited|deleted      sort:date|rank (an option, not a filter)
```

Query text never reaches SQLite except as bound parameters: the SQL is built from fixed fragments,
and FTS5 expressions are built from our own tokens, each quoted as an FTS5 string.
"""

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

_FILTER = re.compile(r"([A-Za-z]+):(.*)\Z", re.S)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_LANG = re.compile(r"[a-z]{2,3}\Z")
_ID = re.compile(r"(?:-100)?(\d{1,18})\Z")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

_KNOWN = "channel:, from:, since:, until:, lang:, is:, sort:"
_FILTER_EXAMPLE = {
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
        object.__setattr__(self, "keys", _filter_keys(self.name, self.value))
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


def _ascii_lower(value: str) -> str:
    """Lower-case ASCII letters only, as SQLite's built-in lower() does."""
    return value.translate(_ASCII_LOWER)


def name_key(title: str) -> str:
    """How from: compares origin titles: the folded words, so punctuation and emoji do not count."""
    return " ".join(tx.words(title))


def _id_key(value: str) -> str | None:
    """The bare channel id of a numeric value (`-100` prefix form accepted), as canonical text."""
    m = _ID.match(value)
    return str(int(m.group(1))) if m else None


def _filter_keys(name: str, value: str) -> frozenset[str]:
    """What channel:/from: compare a post's facts with: lower username, bare id, title words."""
    if name == "channel":
        keys = {_ascii_lower(value), _id_key(value)}
    elif name == "from":
        keys = {_ascii_lower(value), _id_key(value), name_key(value)}
    else:
        return frozenset()
    return frozenset(k for k in keys if k)


def _int_keys(keys: frozenset[str]) -> list[int]:
    """The keys that are canonical integers (so `str(column) IN keys` is `column IN ints`)."""
    out = []
    for key in sorted(keys):
        if re.fullmatch(r"-?[1-9]\d{0,17}|0", key):
            out.append(int(key))
    return out


# -- the query ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: `root` AST, `sort` (`date` or `rank`) and the `text` it came from."""

    text: str
    root: Node
    sort: str = "date"

    def matches(self, doc: PostDoc) -> bool:
        """Whether the post `doc` matches: exactly when `search` would find it."""
        return _match(self.root, doc)

    def to_sql(self, rowids: tuple[int, int] | None = None) -> tuple[str, list[object]]:
        """A WHERE condition over `posts p` and its parameters (from: needs `search.register_functions`).

        With `rowids` = (lo, hi) the condition is only right for posts whose id lies in that range:
        its index lookups read just that slice of the index, so a page of a newest-first walk costs
        what the slice holds, not what the whole archive matches.
        """
        params: list[object] = []
        return _sql(self.root, params, rowids), params

    def fts_expression(self) -> str | None:
        """The whole query as one FTS5 expression when it has no filters (else None)."""
        return _fts(self.root)

    def required_filters(self, name: str) -> list[Filter]:
        """The `name:` filters every result satisfies: the query itself, or conjuncts of its top AND."""
        children = self.root.children if isinstance(self.root, And) else (self.root,)
        return [c for c in children if isinstance(c, Filter) and c.name == name]

    def filters(self, name: str) -> list[Filter]:
        """Every `name:` filter anywhere in the query, in order."""
        return [n for n in _nodes(self.root) if isinstance(n, Filter) and n.name == name]

    def date_range(self) -> tuple[str | None, str | None]:
        """(lowest, past-the-end) `posts.date` every result lies within, from top-level since:/until:."""
        since = [c.bound for c in self.required_filters("since")]
        until = [c.bound for c in self.required_filters("until")]
        return (max(since) if since else None), (min(until) if until else None)

    def rank_match(self) -> str | None:
        """An FTS5 expression every result satisfies, for bm25 ranking; None if the query has none."""
        root = self.root
        whole = _fts(root)
        if whole is not None:
            return whole
        if isinstance(root, And):
            group = _and_text_group(root.children)[0]
            if group is not None and group[0] == "in":
                return group[1]
        return None


def parse(text: str) -> Query:
    """Parse a query; raise `QueryError` (with position and hint) for anything malformed."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QueryError("invalid character", exc.start, "type the query again as plain text") from None
    tokens, sort = _options(_lex(text))
    if not tokens:
        raise QueryError("empty query", 0, "type words to search for — e.g. canada sanctions")
    root = _Parser(tokens).parse()
    if not _positive(root):
        raise QueryError(
            "the query only excludes", 0, "add something to look for — e.g. canada -visa"
        )
    return Query(text, root, sort)


# -- lexer ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tok:
    """A lexical token: kind is ( ) OR AND NOT - word phrase filter."""

    kind: str
    pos: int
    text: str = ""
    name: str = ""
    value_pos: int = 0


_QUOTE_HINT = 'close the phrase with " — e.g. "foreign minister"'


def _quoted(s: str, start: int, hint: str = _QUOTE_HINT) -> int:
    """The index of the quote closing the one at `start`."""
    end = s.find('"', start + 1)
    if end < 0:
        raise QueryError("unbalanced quote", start, hint)
    return end


def _lex(s: str) -> list[_Tok]:
    """Split a query into tokens, keeping each one's offset for error messages."""
    out: list[_Tok] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c.isspace():
            i += 1
        elif c in "()":
            out.append(_Tok(c, i))
            i += 1
        elif c == '"':
            end = _quoted(s, i)
            out.append(_Tok("phrase", i, s[i + 1:end]))
            i = end + 1
        elif c == "-":
            if i + 1 >= n or s[i + 1].isspace() or s[i + 1] == ")":
                raise QueryError(
                    "a lone -", i, "put - right before what to leave out, with no space — e.g. canada -visa"
                )
            out.append(_Tok("-", i))
            i += 1
        else:
            j = i
            while j < n and not s[j].isspace() and s[j] not in '()"':
                j += 1
            run = s[i:j]
            m = _FILTER.match(run)
            if m:
                value, value_pos = m.group(2), i + len(m.group(1)) + 1
                if not value and j < n and s[j] == '"':
                    end = _quoted(s, j, 'close the value with " — e.g. from:"Russian MFA"')
                    value, value_pos = s[j + 1:end], j + 1
                    j = end + 1
                out.append(_Tok("filter", i, value, m.group(1).lower(), value_pos))
            elif run in ("OR", "AND", "NOT"):
                out.append(_Tok(run, i))
            else:
                out.append(_Tok("word", i, run))
            i = j
    return out


def _options(tokens: list[_Tok]) -> tuple[list[_Tok], str]:
    """Take `sort:` out of the token list: it orders the results of the whole query."""
    sort, kept, depth = "date", [], 0
    for k, tok in enumerate(tokens):
        depth += tok.kind == "("
        depth -= tok.kind == ")"
        if tok.kind != "filter" or tok.name != "sort":
            kept.append(tok)
            continue
        before = tokens[k - 1].kind if k else ""
        after = tokens[k + 1].kind if k + 1 < len(tokens) else ""
        if depth != 0 or before in ("-", "NOT", "OR", "AND") or after in ("OR", "AND"):
            raise QueryError(
                "sort: is not a filter", tok.pos,
                "it orders the whole query: put it on its own, outside ( ), OR and NOT"
                " — e.g. canada sort:rank",
            )
        value = _ascii_lower(tok.text.strip())
        if value not in SORT_VALUES:
            raise QueryError("unknown sort order", tok.value_pos, "use sort:date (newest first) or sort:rank")
        sort = value
    return kept, sort


# -- parser ---------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the tokens: or := and (OR and)* ; and := unary+ ; unary := (NOT|-) unary."""

    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0
        self.leaves = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.or_expr()
        tok = self.peek()
        if tok is not None:  # only a ')' stops or_expr early
            raise QueryError("unbalanced parentheses", tok.pos, "this ) has no ( before it: remove it")
        return node

    def nest(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError("query nested too deeply", pos, f"use at most {MAX_DEPTH} levels of ( ) and NOT")

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.take()
            following = self.peek()
            if following is None or following.kind in (")", "OR", "AND"):
                raise QueryError("dangling OR", tok.pos, "put a term on both sides — e.g. canada OR arctic")
            parts.append(self.and_expr())
        return _join(Or, parts)

    def and_expr(self) -> Node:
        items: list[Node] = []
        while (tok := self.peek()) is not None and tok.kind not in ("OR", ")"):
            if tok.kind == "AND":
                self.take()
                following = self.peek()
                if not items or following is None or following.kind in (")", "OR", "AND"):
                    raise QueryError(
                        "dangling AND", tok.pos, "put a term on both sides — e.g. canada AND sanctions"
                    )
                continue
            items.append(self.unary())
        if not items:
            if tok is not None and tok.kind == "OR":
                raise QueryError("dangling OR", tok.pos, "put a term on both sides — e.g. canada OR arctic")
            if tok is not None:
                raise QueryError("unbalanced parentheses", tok.pos, "this ) has no ( before it: remove it")
            raise QueryError("empty query", 0, "type words to search for — e.g. canada sanctions")
        return _join(And, items)

    def unary(self) -> Node:
        tok = self.peek()
        assert tok is not None
        if tok.kind not in ("NOT", "-"):
            return self.primary()
        self.take()
        following = self.peek()
        if following is None or following.kind in (")", "OR", "AND"):
            word = "NOT" if tok.kind == "NOT" else "-"
            example = "canada NOT visa" if tok.kind == "NOT" else "canada -visa"
            raise QueryError(f"dangling {word}", tok.pos, f"put what to leave out after it — e.g. {example}")
        self.nest(tok.pos)
        child = self.unary()
        self.depth -= 1
        return Not(child, tok.pos)

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "(":
            following = self.peek()
            if following is None:
                raise QueryError("unbalanced parentheses", tok.pos, "this ( is never closed: add )")
            if following.kind == ")":
                raise QueryError("empty parentheses", tok.pos, "put terms inside — e.g. (canada OR arctic)")
            self.nest(tok.pos)
            node = self.or_expr()
            closing = self.peek()
            if closing is None or closing.kind != ")":
                raise QueryError("unbalanced parentheses", tok.pos, "this ( is never closed: add )")
            self.take()
            self.depth -= 1
            return node
        self.leaves += 1
        if self.leaves > MAX_LEAVES:
            raise QueryError("too many terms", tok.pos, f"use at most {MAX_LEAVES} terms and filters")
        if tok.kind == "phrase":
            tokens = tx.words(tok.text)
            if not tokens:
                raise QueryError(
                    "phrase without words", tok.pos, 'put words between the quotes — e.g. "foreign minister"'
                )
            return Text("words", tuple(tokens), pos=tok.pos)
        if tok.kind == "filter":
            return _filter(tok)
        return _term(tok)


def _join(kind: type[And] | type[Or], items: list[Node]) -> Node:
    """One node for a list of operands, flattening nested nodes of the same kind."""
    if len(items) == 1:
        return items[0]
    flat: list[Node] = []
    for item in items:
        flat.extend(item.children if isinstance(item, kind) else (item,))
    return kind(tuple(flat), items[0].pos)


def _term(tok: _Tok) -> Text:
    """A bare word, prefix or hashtag, as tokens of the column it is matched against."""
    raw = tok.text
    if raw.startswith("#"):
        tag = tx.hashtag_token(raw[1:])
        if not tag:
            raise QueryError("hashtag without letters", tok.pos, "write the tag after # — e.g. #RussiaAfrica")
        if not tx.is_hashtag(raw):
            raise QueryError(
                "a hashtag is letters, digits and _ only", tok.pos,
                "Telegram ends a tag at the first other character: #Russia-Africa is the tag #Russia;"
                ' search #RussiaAfrica or "Russia Africa"',
            )
        return Text("tags", (tag,), pos=tok.pos)
    if raw.endswith("*"):
        tokens = tx.words(raw.rstrip("*"))
        if len(tokens) != 1:
            raise QueryError(
                "a prefix must be one word", tok.pos, "put * after the start of one word — e.g. lavr*"
            )
        return Text("words", (tokens[0],), prefix=True, pos=tok.pos)
    tokens = tx.words(raw)
    if not tokens:
        raise QueryError(
            f"nothing to search for in {raw!r}", tok.pos,
            "a term needs letters or digits — e.g. canada; for a hashtag write #tag",
        )
    return Text("stems", tuple(tx.stems(tokens)), pos=tok.pos)


def _filter(tok: _Tok) -> Filter:
    """Validate and normalise `name:value`."""
    name, value, at = tok.name, tok.text.strip(), tok.value_pos
    if name not in FILTERS:
        raise QueryError(
            f"unknown filter {name}:", tok.pos,
            f"known filters are {_KNOWN}; to search for the text itself, put it in quotes",
        )
    if name in ("channel", "from") and value.startswith("@"):
        value = value[1:].strip()
    if not value:
        raise QueryError(f"{name}: needs a value", tok.pos, f"e.g. {_FILTER_EXAMPLE[name]}")
    if name in ("since", "until"):
        if not _DATE.match(value):
            raise QueryError("bad date", at, f"write dates as YYYY-MM-DD — e.g. {_FILTER_EXAMPLE[name]}")
        try:
            date.fromisoformat(value)
        except ValueError:
            hint = f"check the month and day — e.g. {_FILTER_EXAMPLE[name]}"
            raise QueryError("no such day", at, hint) from None
    elif name == "lang":
        value = _ascii_lower(value)
        if not _LANG.match(value):
            raise QueryError("bad language", at, "use a two-letter code — e.g. lang:ru or lang:en")
    elif name == "is":
        value = _ascii_lower(value)
        if value not in IS_VALUES:
            known = ", ".join(f"is:{v}" for v in IS_VALUES)
            raise QueryError(f"unknown is:{value}", at, f"use one of {known}")
    return Filter(name, value, tok.pos)


def _positive(node: Node) -> bool:
    """Whether the node says what to look for, not only what to leave out."""
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(_positive(c) for c in node.children)
    if isinstance(node, Or):
        return all(_positive(c) for c in node.children)
    return True


# -- in-memory matcher ----------------------------------------------------------------------------


def _contains_run(seq: tuple[str, ...], run: tuple[str, ...]) -> bool:
    """Whether `run` occurs in `seq` as consecutive items."""
    first, size = run[0], len(run)
    for i, item in enumerate(seq):
        if item == first and seq[i:i + size] == run:
            return True
    return False


def _match(node: Node, doc: PostDoc) -> bool:
    """The matcher: the same semantics as `_sql`, over a `PostDoc`."""
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
        return _match_filter(node, doc)
    if isinstance(node, Not):
        return not _match(node.child, doc)
    if isinstance(node, And):
        return all(_match(c, doc) for c in node.children)
    return any(_match(c, doc) for c in node.children)


def _match_filter(node: Filter, doc: PostDoc) -> bool:
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


# -- SQL ------------------------------------------------------------------------------------------

_IN_FTS = "p.id IN (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?{})"
_NOT_IN_FTS = "p.id NOT IN (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?{})"
_ROWIDS = " AND rowid BETWEEN ? AND ?"


def _fts_sql(template: str, expression: str, params: list[object], rowids: tuple[int, int] | None) -> str:
    """An (NOT) IN test against the index, read whole or only over `rowids`."""
    params.append(expression)
    if rowids is None:
        return template.format("")
    params.extend(rowids)
    return template.format(_ROWIDS)


def _fts_leaf(node: Text) -> str:
    """One column-qualified FTS5 phrase; our tokens never hold a quote, but quote them properly anyway."""
    phrase = '"' + " ".join(node.tokens).replace('"', '""') + '"'
    return f"{node.column} : {phrase}" + (" *" if node.prefix else "")


def _fts(node: Node) -> str | None:
    """The FTS5 expression of a pure-text subtree; None if it holds a filter or a lone NOT."""
    if isinstance(node, Text):
        return _fts_leaf(node)
    if isinstance(node, Or):
        parts = [_fts(c) for c in node.children]
        if any(p is None for p in parts):
            return None
        return " OR ".join(f"({p})" for p in parts)
    if isinstance(node, And):
        group, rest = _and_text_group(node.children)
        if rest or group is None or group[0] != "in":
            return None
        return group[1]
    return None  # Filter, or Not: FTS5's NOT is binary and needs a positive side


def _and_text_group(children: tuple[Node, ...]) -> tuple[tuple[str, str] | None, list[Node]]:
    """Fold the pure-text children of an AND into one FTS5 expression: `(P AND ...) NOT (N OR ...)`.

    Returns (("in", expr) | ("not in", expr) | None, the children left for SQL).
    """
    positive: list[str] = []
    negative: list[str] = []
    rest: list[Node] = []
    for child in children:
        if isinstance(child, Not) and (expr := _fts(child.child)) is not None:
            negative.append(expr)
        elif not isinstance(child, Not) and (expr := _fts(child)) is not None:
            positive.append(expr)
        else:
            rest.append(child)
    excluded = " OR ".join(f"({n})" for n in negative)
    if positive:
        expr = " AND ".join(f"({p})" for p in positive)
        if negative:
            expr = f"({expr}) NOT ({excluded})"
        return ("in", expr), rest
    if negative:
        return ("not in", excluded), rest
    return None, rest


def _sql(node: Node, params: list[object], rowids: tuple[int, int] | None = None) -> str:
    """A WHERE condition (never NULL) for `node`, appending its parameters in order.

    Only an OR ever needs parentheses around it; everything else is an atom or an AND chain.
    """
    whole = _fts(node)
    if whole is not None:
        return _fts_sql(_IN_FTS, whole, params, rowids)
    if isinstance(node, Filter):
        return _filter_sql(node, params, rowids)
    if isinstance(node, Not):
        inner = _fts(node.child)
        if inner is not None:
            return _fts_sql(_NOT_IN_FTS, inner, params, rowids)
        return f"NOT ({_sql(node.child, params, rowids)})"
    parts: list[str] = []
    if isinstance(node, And):
        group, rest = _and_text_group(node.children)
        # SQLite reads posts from the first `p.id IN (list)` it meets: a short list of few posts
        # (is:copy, is:deleted) must come before the index's list of everything holding the words.
        sparse = [c for c in rest if isinstance(c, Filter) and c.name == "is" and c.value in SPARSE_FACTS]
        parts += [_sql(c, params, rowids) for c in sparse]
        rest = [c for c in rest if c not in sparse]
        if group is not None:
            parts.append(_fts_sql(_IN_FTS if group[0] == "in" else _NOT_IN_FTS, group[1], params, rowids))
        # AND binds tighter than OR: only OR operands need parentheses (SQLite's parser stack is small)
        parts += [f"({_sql(c, params, rowids)})" if isinstance(c, Or) else _sql(c, params, rowids)
                  for c in rest]
        return " AND ".join(parts)
    text_parts = [e for c in node.children if (e := _fts(c)) is not None]
    if text_parts:
        parts.append(_fts_sql(_IN_FTS, " OR ".join(f"({e})" for e in text_parts), params, rowids))
    parts += [_sql(c, params, rowids) for c in node.children if _fts(c) is None]
    return " OR ".join(parts)


def _marks(values: list[object], params: list[object]) -> str:
    params.extend(values)
    return ", ".join("?" * len(values))


_PROBE_SPAN = 65_536
"""Up to this many post ids apart, a statement checks each post's sightings for a channel rather
than listing every post of the channel first."""


def _nodes(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Not):
        yield from _nodes(node.child)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from _nodes(child)


def channel_condition(node: Filter, params: list[object]) -> str:
    """A condition over `channels c`: the channels a `channel:` filter names (by username or id)."""
    keys: list[object] = sorted(node.keys)
    cond = f"lower(c.username) IN ({_marks(keys, params)})"
    ints: list[object] = list(_int_keys(node.keys))
    if ints:
        cond += f" OR c.id IN ({_marks(ints, params)})"
    return cond


def _filter_sql(node: Filter, params: list[object], rowids: tuple[int, int] | None = None) -> str:
    """SQL for a filter; must agree with `_match_filter` and `storage.search.load_docs`."""
    name = node.name
    if name == "channel":
        channels = f"m.channel_id IN (SELECT c.id FROM channels c WHERE {channel_condition(node, params)})"
        if rowids is not None and rowids[1] - rowids[0] <= _PROBE_SPAN:
            # A step of a walk: look at the few posts' own sightings.
            return f"EXISTS (SELECT 1 FROM messages m WHERE m.post_id = p.id AND {channels})"
        # The whole archive: list the channels' posts once, then each post is one lookup in that list.
        return f"p.id IN (SELECT m.post_id FROM messages m WHERE {channels})"
    if name == "from":
        keys = sorted(node.keys)
        conds = [f"(p.origin_username IS NOT NULL AND lower(p.origin_username) IN ({_marks(keys, params)}))"]
        ints = list(_int_keys(node.keys))
        if ints:
            marks = _marks(ints, params)
            conds.append(f"(p.origin_channel_id IS NOT NULL AND p.origin_channel_id IN ({marks}))")
        conds.append(
            f"(p.origin_title IS NOT NULL AND chanwatch_name(p.origin_title) IN ({_marks(keys, params)}))"
        )
        return "(" + " OR ".join(conds) + ")"
    if name == "since":
        params.append(node.bound)
        return "p.date >= ?"
    if name == "until":
        params.append(node.bound)
        return "p.date < ?"
    if name == "lang":
        params.append(node.value)
        return "p.language IS ?"
    if node.value == "edited":  # the partial index posts_edited holds exactly these (schema v5)
        return "p.edited = 1"
    if node.value == "deleted":  # few: listed from the partial index messages_deleted
        return "p.id IN (SELECT m.post_id FROM messages m WHERE m.deleted_at IS NOT NULL)"
    if node.value == "copy":  # few: listed from the partial index messages_copies (needs the literal)
        return "p.id IN (SELECT m.post_id FROM messages m WHERE m.relation = 'copy')"
    params.append(node.value)
    return "EXISTS (SELECT 1 FROM messages m WHERE m.post_id = p.id AND m.relation = ?)"


# -- helpers for rules and highlighting -----------------------------------------------------------


def required_tokens(query: Query) -> set[tuple[str, str]] | None:
    """Tokens of which every matching post holds AT LEAST ONE, as (column, token) pairs.

    Columns are `stems`, `words` (folded words) and `tags`, as in `PostDoc`. A percolator can index
    a rule under these tokens and try the rule only on posts sharing one of them. None when the query
    can match a post without any particular token (only filters, prefixes or negations): such rules
    must be tried on every post. For an AND the smallest child set is used, for a phrase its longest
    token (all are required), for an OR the union of its children's sets.
    """
    return _required(query.root)


def _required(node: Node) -> set[tuple[str, str]] | None:
    if isinstance(node, Text):
        if node.prefix:
            return None
        return {(node.column, max(node.tokens, key=lambda t: (len(t), t)))}
    if isinstance(node, And):
        options = [s for c in node.children if (s := _required(c)) is not None]
        if not options:
            return None
        return min(options, key=lambda s: (len(s), -sum(len(t) for _, t in s), sorted(s)))
    if isinstance(node, Or):
        union: set[tuple[str, str]] = set()
        for child in node.children:
            sub = _required(child)
            if sub is None:
                return None
            union |= sub
        return union
    return None


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
