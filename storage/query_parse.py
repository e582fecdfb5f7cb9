"""The query language's lexer and parser: text in, an AST (`storage.query_ast`) out, or a `QueryError`
that says where and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from storage import text as tx
from storage.query_ast import (
    DATE,
    FILTER,
    FILTER_EXAMPLE,
    FILTERS,
    IS_VALUES,
    KNOWN,
    MAX_DEPTH,
    MAX_LEAVES,
    SORT_VALUES,
    And,
    Filter,
    Node,
    Not,
    Or,
    QueryError,
    Text,
    ascii_lower,
)

# -- lexer ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tok:
    """A lexical token: kind is ( ) OR AND NOT - word phrase filter symbols.

    `symbols` is a run with no letter or digit (emoji, punctuation: 🎙, —, !!!): nothing to search
    for, so the parser passes over it; a hashtag or prefix attempt (#!!, *) stays a `word` and gets
    its own error."""

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


def lex(s: str) -> list[_Tok]:
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
            m = FILTER.match(run)
            if m:
                value, value_pos = m.group(2), i + len(m.group(1)) + 1
                if not value and j < n and s[j] == '"':
                    end = _quoted(s, j, 'close the value with " — e.g. from:"Russian MFA"')
                    value, value_pos = s[j + 1:end], j + 1
                    j = end + 1
                out.append(_Tok("filter", i, value, m.group(1).lower(), value_pos))
            elif run in ("OR", "AND", "NOT"):
                out.append(_Tok(run, i))
            elif run.startswith("#") or run.endswith("*") or tx.words(run):
                out.append(_Tok("word", i, run))
            else:
                out.append(_Tok("symbols", i, run))
            i = j
    return out


def options(tokens: list[_Tok]) -> tuple[list[_Tok], str]:
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
        value = ascii_lower(tok.text.strip())
        if value not in SORT_VALUES:
            raise QueryError("unknown sort order", tok.value_pos, "use sort:date (newest first) or sort:rank")
        sort = value
    return kept, sort


# -- parser ---------------------------------------------------------------------------------------


class Parser:
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
        """Terms in a row; symbols among them are passed over (`🎙 canada` is `canada`)."""
        items: list[Node] = []
        symbols: _Tok | None = None
        while (tok := self.peek()) is not None and tok.kind not in ("OR", ")"):
            if tok.kind == "symbols":
                self.take()
                symbols = symbols or tok
                continue
            if tok.kind == "AND":
                self.take()
                following = self.peek()
                nothing_before = not items and symbols is None  # `🎙 AND x` is `x`, as `🎙 x` is
                if nothing_before or following is None or following.kind in (")", "OR", "AND"):
                    raise QueryError(
                        "dangling AND", tok.pos, "put a term on both sides — e.g. canada AND sanctions"
                    )
                continue
            items.append(self.unary())
        if not items and symbols is not None:
            raise _nothing_to_search(symbols)
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
        example = "canada NOT visa" if tok.kind == "NOT" else "canada -visa"
        if following is None or following.kind in (")", "OR", "AND"):
            word = "NOT" if tok.kind == "NOT" else "-"
            raise QueryError(f"dangling {word}", tok.pos, f"put what to leave out after it — e.g. {example}")
        if following.kind == "symbols":
            raise QueryError(
                f"nothing to leave out in {following.text!r}", following.pos,
                f"symbols and emoji are not searched: put a word after it — e.g. {example}",
            )
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
    tokens = tx.words(raw)  # never empty: a run without letters or digits is a `symbols` token
    return Text("stems", tuple(tx.stems(tokens)), pos=tok.pos)


def _nothing_to_search(tok: _Tok) -> QueryError:
    """The error for symbols standing where a term must be: alone, or as a whole OR operand."""
    return QueryError(
        f"nothing to search for in {tok.text!r}", tok.pos,
        "symbols and emoji are not searched; a term needs letters or digits — e.g. canada;"
        " for a hashtag write #tag",
    )


def _filter(tok: _Tok) -> Filter:
    """Validate and normalise `name:value`."""
    name, value, at = tok.name, tok.text.strip(), tok.value_pos
    if name not in FILTERS:
        raise QueryError(
            f"unknown filter {name}:", tok.pos,
            f"known filters are {KNOWN}; to search for the text itself, put it in quotes",
        )
    if name in ("channel", "from") and value.startswith("@"):
        value = value[1:].strip()
    if not value:
        raise QueryError(f"{name}: needs a value", tok.pos, f"e.g. {FILTER_EXAMPLE[name]}")
    if name in ("since", "until"):
        if not DATE.match(value):
            raise QueryError("bad date", at, f"write dates as YYYY-MM-DD — e.g. {FILTER_EXAMPLE[name]}")
        try:
            date.fromisoformat(value)
        except ValueError:
            hint = f"check the month and day — e.g. {FILTER_EXAMPLE[name]}"
            raise QueryError("no such day", at, hint) from None
    elif name == "lang":
        value = ascii_lower(value)
        if value not in tx.LANGUAGES:
            known = ", ".join(f"lang:{v}" for v in tx.LANGUAGES)
            raise QueryError(
                f"unknown lang:{value}", at,
                f"use one of {known} (chanwatch tells languages apart by script) — e.g. canada lang:en",
            )
    elif name == "is":
        value = ascii_lower(value)
        if value not in IS_VALUES:
            known = ", ".join(f"is:{v}" for v in IS_VALUES)
            raise QueryError(f"unknown is:{value}", at, f"use one of {known}")
    return Filter(name, value, tok.pos)
