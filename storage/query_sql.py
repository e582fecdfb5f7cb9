"""The query language compiled to SQL: a WHERE condition over `posts p` with FTS5 MATCH expressions
built from our own tokens, every value a bound parameter. `storage.query_ast.match` is its in-memory twin."""

from __future__ import annotations

from storage.dialect import SQLITE, Dialect
from storage.query_ast import SPARSE_FACTS, And, Filter, Node, Not, Or, Text, int_keys

# -- SQL ------------------------------------------------------------------------------------------

_IN_FTS = "p.id IN ({})"
_NOT_IN_FTS = "p.id NOT IN ({})"


def _fts_sql(template: str, expression: str, params: list[object], rowids: tuple[int, int] | None,
             dialect: Dialect) -> str:
    """Whether post `p` matches (or, `_NOT_IN_FTS`, does not match) `expression`: the post's own
    index column where it has one, else an (NOT) IN test against the index, read whole or only over
    `rowids`."""
    params.append(dialect.fts_param(expression))
    if dialect.fts_post is not None:
        return dialect.fts_post if template == _IN_FTS else f"NOT ({dialect.fts_post})"
    if rowids is None:
        return template.format(dialect.fts_rows())
    params.extend(rowids)
    return template.format(dialect.fts_rows(where=f" AND {dialect.fts_id} BETWEEN ? AND ?"))


def _fts_leaf(node: Text) -> str:
    """One column-qualified FTS5 phrase; our tokens never hold a quote, but quote them properly anyway."""
    phrase = '"' + " ".join(node.tokens).replace('"', '""') + '"'
    return f"{node.column} : {phrase}" + (" *" if node.prefix else "")


def fts(node: Node) -> str | None:
    """The FTS5 expression of a pure-text subtree; None if it holds a filter or a lone NOT."""
    if isinstance(node, Text):
        return _fts_leaf(node)
    if isinstance(node, Or):
        parts = [fts(c) for c in node.children]
        if any(p is None for p in parts):
            return None
        return " OR ".join(f"({p})" for p in parts)
    if isinstance(node, And):
        group, rest = and_text_group(node.children)
        if rest or group is None or group[0] != "in":
            return None
        return group[1]
    return None  # Filter, or Not: FTS5's NOT is binary and needs a positive side


def and_text_group(children: tuple[Node, ...]) -> tuple[tuple[str, str] | None, list[Node]]:
    """Fold the pure-text children of an AND into one FTS5 expression: `(P AND ...) NOT (N OR ...)`.

    Returns (("in", expr) | ("not in", expr) | None, the children left for SQL).
    """
    positive: list[str] = []
    negative: list[str] = []
    rest: list[Node] = []
    for child in children:
        if isinstance(child, Not) and (expr := fts(child.child)) is not None:
            negative.append(expr)
        elif not isinstance(child, Not) and (expr := fts(child)) is not None:
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


def where(node: Node, params: list[object], rowids: tuple[int, int] | None = None,
          dialect: Dialect = SQLITE) -> str:
    """A WHERE condition (never NULL) for `node`, appending its parameters in order, in `dialect`'s
    SQL (the FTS5 expressions are translated for PostgreSQL's tsvector: `storage.tsquery`).

    Only an OR ever needs parentheses around it; everything else is an atom or an AND chain.
    """
    whole = fts(node)
    if whole is not None:
        return _fts_sql(_IN_FTS, whole, params, rowids, dialect)
    if isinstance(node, Filter):
        return _filter_sql(node, params, rowids, dialect)
    if isinstance(node, Not):
        inner = fts(node.child)
        if inner is not None:
            return _fts_sql(_NOT_IN_FTS, inner, params, rowids, dialect)
        return f"NOT ({where(node.child, params, rowids, dialect)})"
    parts: list[str] = []
    if isinstance(node, And):
        group, rest = and_text_group(node.children)
        # SQLite reads posts from the first `p.id IN (list)` it meets: a short list of few posts
        # (is:copy, is:deleted) must come before the index's list of everything holding the words.
        sparse = [c for c in rest if isinstance(c, Filter) and c.name == "is" and c.value in SPARSE_FACTS]
        parts += [where(c, params, rowids, dialect) for c in sparse]
        rest = [c for c in rest if c not in sparse]
        if group is not None:
            template = _IN_FTS if group[0] == "in" else _NOT_IN_FTS
            parts.append(_fts_sql(template, group[1], params, rowids, dialect))
        # AND binds tighter than OR: only OR operands need parentheses (SQLite's parser stack is small)
        for c in rest:
            sql = where(c, params, rowids, dialect)
            parts.append(f"({sql})" if isinstance(c, Or) else sql)
        return " AND ".join(parts)
    text_parts = [e for c in node.children if (e := fts(c)) is not None]
    if text_parts:
        parts.append(_fts_sql(_IN_FTS, " OR ".join(f"({e})" for e in text_parts), params, rowids, dialect))
    parts += [where(c, params, rowids, dialect) for c in node.children if fts(c) is None]
    return " OR ".join(parts)


def _marks(values: list[object], params: list[object]) -> str:
    params.extend(values)
    return ", ".join("?" * len(values))


_PROBE_SPAN = 65_536
"""Up to this many post ids apart, a statement checks each post's sightings for a channel rather
than listing every post of the channel first."""


def channel_condition(node: Filter, params: list[object]) -> str:
    """A condition over `channels c`: the channels a `channel:` filter names (by username or id)."""
    keys: list[object] = sorted(node.keys)
    cond = f"lower(c.username) IN ({_marks(keys, params)})"
    ints: list[object] = list(int_keys(node.keys))
    if ints:
        cond += f" OR c.id IN ({_marks(ints, params)})"
    return cond


def _filter_sql(node: Filter, params: list[object], rowids: tuple[int, int] | None = None,
                dialect: Dialect = SQLITE) -> str:
    """SQL for a filter; must agree with `storage.query_ast.match_filter` and `storage.search.load_docs`."""
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
        ints = list(int_keys(node.keys))
        if ints:
            marks = _marks(ints, params)
            conds.append(f"(p.origin_channel_id IS NOT NULL AND p.origin_channel_id IN ({marks}))")
        conds.append(f"(p.origin_title IS NOT NULL AND {dialect.origin_name_in(_marks(keys, params))})")
        return "(" + " OR ".join(conds) + ")"
    if name == "since":
        params.append(node.bound)
        return "p.date >= ?"
    if name == "until":
        params.append(node.bound)
        return "p.date < ?"
    if name == "lang":
        params.append(node.value)
        return f"p.language {dialect.null_safe_equal} ?"
    if node.value == "edited":  # the partial index posts_edited holds exactly these (schema v5)
        return "p.edited = 1"
    if node.value == "deleted":  # few: listed from the partial index messages_deleted
        return "p.id IN (SELECT m.post_id FROM messages m WHERE m.deleted_at IS NOT NULL)"
    if node.value == "copy":  # few: listed from the partial index messages_copies (needs the literal)
        return "p.id IN (SELECT m.post_id FROM messages m WHERE m.relation = 'copy')"
    params.append(node.value)
    return "EXISTS (SELECT 1 FROM messages m WHERE m.post_id = p.id AND m.relation = ?)"
