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

`lang:` takes the languages `storage.text.language` assigns (ru, uk, en); emoji and punctuation
beside words are passed over, as the index never holds them.

Query text never reaches SQLite except as bound parameters: the SQL is built from fixed fragments,
and FTS5 expressions are built from our own tokens, each quoted as an FTS5 string.

The AST and its in-memory meaning are in `storage.query_ast`, the parser in `storage.query_parse`,
the SQL compiler in `storage.query_sql`; this module joins them as `Query` and `parse`.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.dialect import SQLITE, Dialect
from storage.query_ast import (
    FILTERS,
    IS_VALUES,
    MAX_DEPTH,
    MAX_LEAVES,
    SORT_VALUES,
    SPARSE_FACTS,
    And,
    Filter,
    Node,
    Not,
    Or,
    QueryError,
    Text,
    match,
    name_key,
    nodes,
    positive,
    positive_texts,
)
from storage.query_parse import Parser, lex, options
from storage.query_sql import and_text_group, channel_condition, fts, where
from storage.records import PostDoc

__all__ = [
    "FILTERS",
    "IS_VALUES",
    "MAX_DEPTH",
    "MAX_LEAVES",
    "SORT_VALUES",
    "SPARSE_FACTS",
    "And",
    "Filter",
    "Node",
    "Not",
    "Or",
    "Query",
    "QueryError",
    "Text",
    "channel_condition",
    "name_key",
    "parse",
    "positive_texts",
]


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: `root` AST, `sort` (`date` or `rank`) and the `text` it came from."""

    text: str
    root: Node
    sort: str = "date"

    def matches(self, doc: PostDoc) -> bool:
        """Whether the post `doc` matches: exactly when `search` would find it."""
        return match(self.root, doc)

    def to_sql(self, rowids: tuple[int, int] | None = None,
               dialect: Dialect = SQLITE) -> tuple[str, list[object]]:
        """A WHERE condition over `posts p` and its parameters, in `dialect`'s SQL (from: needs
        `search.register_functions`).

        With `rowids` = (lo, hi) the condition is only right for posts whose id lies in that range:
        its index lookups read just that slice of the index, so a page of a newest-first walk costs
        what the slice holds, not what the whole archive matches.
        """
        params: list[object] = []
        return where(self.root, params, rowids, dialect), params

    def fts_expression(self) -> str | None:
        """The whole query as one FTS5 expression when it has no filters (else None)."""
        return fts(self.root)

    def required_filters(self, name: str) -> list[Filter]:
        """The `name:` filters every result satisfies: the query itself, or conjuncts of its top AND."""
        children = self.root.children if isinstance(self.root, And) else (self.root,)
        return [c for c in children if isinstance(c, Filter) and c.name == name]

    def filters(self, name: str) -> list[Filter]:
        """Every `name:` filter anywhere in the query, in order."""
        return [n for n in nodes(self.root) if isinstance(n, Filter) and n.name == name]

    def date_range(self) -> tuple[str | None, str | None]:
        """(lowest, past-the-end) `posts.date` every result lies within, from top-level since:/until:."""
        since = [c.bound for c in self.required_filters("since")]
        until = [c.bound for c in self.required_filters("until")]
        return (max(since) if since else None), (min(until) if until else None)

    def rank_match(self) -> str | None:
        """An FTS5 expression every result satisfies, for bm25 ranking; None if the query has none."""
        root = self.root
        whole = fts(root)
        if whole is not None:
            return whole
        if isinstance(root, And):
            group = and_text_group(root.children)[0]
            if group is not None and group[0] == "in":
                return group[1]
        return None


def parse(text: str) -> Query:
    """Parse a query; raise `QueryError` (with position and hint) for anything malformed."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QueryError("invalid character", exc.start, "type the query again as plain text") from None
    tokens, sort = options(lex(text))
    if not tokens:
        raise QueryError("empty query", 0, "type words to search for — e.g. canada sanctions")
    root = Parser(tokens).parse()
    if not positive(root):
        raise QueryError(
            "the query only excludes", 0, "add something to look for — e.g. canada -visa"
        )
    return Query(text, root, sort)
