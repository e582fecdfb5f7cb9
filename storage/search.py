"""Search over canonical posts, and loading posts as search results (`Post`) or as matcher input
(`PostDoc`). Synchronous functions over `sqlite3.Connection`; async code runs them with
`Database.run(search, q, ...)`.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from storage import text as tx
from storage.query import Query, Text, name_key, parse, positive_texts
from storage.records import Post, PostDoc, Sighting

SNIPPET_WIDTH = 200
_CHUNK = 500
_RUN = re.compile(r"[^\W_]+")
_HASHTAG = re.compile(r"#([^\W][\w]*)")  # as storage.text finds hashtags


def register_functions(conn: sqlite3.Connection) -> None:
    """Give the connection the SQL functions compiled queries use; idempotent.

    `chanwatch_fold(text)` is `storage.text.fold`; `chanwatch_name(text)` is `storage.query.name_key`
    (the folded words of a title), which from: compares origin titles by.
    """
    conn.create_function("chanwatch_fold", 1, _fold, deterministic=True)
    conn.create_function("chanwatch_name", 1, _name, deterministic=True)


def _fold(value: str | None) -> str | None:
    return None if value is None else tx.fold(str(value))


def _name(value: str | None) -> str | None:
    return None if value is None else name_key(str(value))


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield list(ids[start:start + _CHUNK])


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


# -- loading --------------------------------------------------------------------------------------


def load_docs(conn: sqlite3.Connection, post_ids: Sequence[int]) -> list[PostDoc]:
    """The posts as the query matcher sees them, in the order of `post_ids` (unknown ids skipped).

    Exactly the facts the SQL of `storage.query` reads: the indexed token columns, SQLite's lower()
    of usernames, ids as text, origin titles as `name_key`, and every sighting, deleted or not.
    """
    ids = list(dict.fromkeys(post_ids))
    rows: dict[int, sqlite3.Row] = {}
    channels: dict[int, set[str]] = {}
    relations: dict[int, set[str]] = {}
    deleted: set[int] = set()
    for chunk in _chunks(ids):
        marks = _marks(chunk)
        for row in conn.execute(
            f"""SELECT id, words, stems, tags, date, language, lower(origin_username) AS username,
                       origin_channel_id, origin_title, edited_at
                FROM posts WHERE id IN ({marks})""",
            chunk,
        ):
            rows[row[0]] = row
        for post_id, relation, deleted_at, channel_id, username in conn.execute(
            f"""SELECT m.post_id, m.relation, m.deleted_at, c.id, lower(c.username)
                FROM messages m LEFT JOIN channels c ON c.id = m.channel_id
                WHERE m.post_id IN ({marks})""",
            chunk,
        ):
            relations.setdefault(post_id, set()).add(relation)
            seen = channels.setdefault(post_id, set())
            if channel_id is not None:
                seen.add(str(channel_id))
            if username is not None:
                seen.add(username)
            if deleted_at is not None:
                deleted.add(post_id)
    docs = []
    for post_id in ids:
        row = rows.get(post_id)
        if row is None:
            continue
        origin = set()
        if row[6] is not None:
            origin.add(row[6])
        if row[7] is not None:
            origin.add(str(row[7]))
        if row[8] is not None:
            origin.add(name_key(row[8]))
        docs.append(PostDoc(
            post_id=post_id,
            words=tuple(row[1].split()),
            stems=tuple(row[2].split()),
            tags=frozenset(row[3].split()),
            date=row[4],
            lang=row[5],
            origin=frozenset(origin),
            channels=frozenset(channels.get(post_id, ())),
            relations=frozenset(relations.get(post_id, ())),
            edited=row[9] is not None,
            deleted=post_id in deleted,
        ))
    return docs


def load_posts(conn: sqlite3.Connection, post_ids: Sequence[int]) -> list[Post]:
    """Posts with their sightings (oldest first), in the order of `post_ids` (unknown ids skipped)."""
    ids = list(dict.fromkeys(post_ids))
    posts: dict[int, Post] = {}
    sightings: dict[int, list[Sighting]] = {}
    for chunk in _chunks(ids):
        marks = _marks(chunk)
        for r in conn.execute(
            f"""SELECT id, key, text, entities, date, language, media_kind, origin_channel_id,
                       origin_username, origin_title, origin_message_id, origin_author, first_seen,
                       edited_at
                FROM posts WHERE id IN ({marks})""",
            chunk,
        ):
            posts[r[0]] = Post(
                id=r[0], key=r[1], text=r[2], entities=tuple(json.loads(r[3] or "[]")), date=r[4],
                lang=r[5], media_kind=r[6], origin_channel_id=r[7], origin_username=r[8],
                origin_title=r[9], origin_message_id=r[10], origin_author=r[11], first_seen=r[12],
                edited_at=r[13],
            )
        for r in conn.execute(
            f"""SELECT m.post_id, m.channel_id, c.username, c.title, m.message_id, m.date, m.relation,
                       m.deleted_at
                FROM messages m LEFT JOIN channels c ON c.id = m.channel_id
                WHERE m.post_id IN ({marks})
                ORDER BY m.date, m.channel_id, m.message_id""",
            chunk,
        ):
            sightings.setdefault(r[0], []).append(Sighting(*r[1:]))
    return [
        replace(posts[i], sightings=tuple(sightings.get(i, ()))) for i in ids if i in posts
    ]


# -- search ---------------------------------------------------------------------------------------


WALK_THRESHOLD = 2000
"""Above this many results, newest-first pages walk the date index instead of sorting."""


def _fts_count(conn: sqlite3.Connection, expression: str) -> int:
    return conn.execute("SELECT count(*) FROM posts_fts WHERE posts_fts MATCH ?", (expression,)).fetchone()[0]


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of results: `total` counts every matching post, `posts` holds this page's."""

    posts: list[Post]
    total: int
    query: Query


def search(conn: sqlite3.Connection, query: str | Query, limit: int = 20, offset: int = 0) -> SearchPage:
    """Posts matching `query`, newest first (or by bm25 for `sort:rank`), each with a snippet.

    Raises `storage.query.QueryError` for a malformed query text.
    """
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")
    q = parse(query) if isinstance(query, str) else query
    register_functions(conn)
    where, params = q.to_sql()
    whole = q.fts_expression()
    if whole is not None:  # the index alone answers: every post has exactly one FTS row
        total = _fts_count(conn, whole)
    else:
        total = conn.execute(f"SELECT count(*) FROM posts p WHERE {where}", params).fetchone()[0]
    rank = q.rank_match()
    if q.sort != "rank":
        # Many results: walking the date index newest-first finds a page after a few rows, where
        # sorting every result by date would read them all. Few results: sort them.
        hint = "INDEXED BY posts_date " if total > WALK_THRESHOLD else ""
        sql = f"SELECT p.id FROM posts p {hint}WHERE {where} ORDER BY p.date DESC, p.id DESC LIMIT ? OFFSET ?"
        args: list[object] = [*params, limit, offset]
    elif whole is not None:  # rank inside the index; ties (identical texts) newest-archived first
        sql = "SELECT rowid FROM posts_fts WHERE posts_fts MATCH ? ORDER BY rank, rowid DESC LIMIT ? OFFSET ?"
        args = [whole, limit, offset]
    elif rank is not None:
        sql = (
            "SELECT p.id FROM posts p JOIN (SELECT rowid AS rid, bm25(posts_fts) AS score "
            "FROM posts_fts WHERE posts_fts MATCH ?) r ON r.rid = p.id "
            f"WHERE {where} ORDER BY r.score, p.date DESC, p.id DESC LIMIT ? OFFSET ?"
        )
        args = [rank, *params, limit, offset]
    else:
        sql = f"SELECT p.id FROM posts p WHERE {where} ORDER BY p.date DESC, p.id DESC LIMIT ? OFFSET ?"
        args = [*params, limit, offset]
    ids = [row[0] for row in conn.execute(sql, args)]
    posts = [replace(p, snippet=snippet(p.text, highlight_spans(p.text, q))) for p in load_posts(conn, ids)]
    return SearchPage(posts, total, q)


# -- highlighting ---------------------------------------------------------------------------------


def _runs(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, folded word, stem) for each token of `text`, with offsets into `text` itself."""
    out = []
    for m in _RUN.finditer(text):
        for word in tx.words(m.group()):  # folding can split a run (rarely): share its span
            out.append((m.start(), m.end(), word, tx.stem(word)))
    return out


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching (start, end) spans joined, in order."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight_spans(text: str, query: Query) -> list[tuple[int, int]]:
    """Sorted, non-overlapping (start, end) offsets in `text` of what the query's positive terms match.

    Works on any text, e.g. a snippet, so formatting code can mark matches in what it shows.
    """
    leaves: list[Text] = list(positive_texts(query.root))
    if not leaves:
        return []
    runs = _runs(text)
    spans: list[tuple[int, int]] = []
    for leaf in leaves:
        if leaf.column == "tags":
            for m in _HASHTAG.finditer(text):
                if tx.hashtag_token(m.group(1)) == leaf.tokens[0]:
                    spans.append((m.start(), m.end()))
            continue
        index = 3 if leaf.column == "stems" else 2
        size = len(leaf.tokens)
        for i in range(len(runs) - size + 1):
            if leaf.prefix:
                hit = runs[i][2].startswith(leaf.tokens[0])
            else:
                hit = all(runs[i + k][index] == leaf.tokens[k] for k in range(size))
            if hit:
                spans.append((runs[i][0], runs[i + size - 1][1]))
    return merge_spans(spans)


def snippet(text: str, spans: list[tuple[int, int]], width: int = SNIPPET_WIDTH) -> str:
    """About `width` characters of `text` around the first match, with "…" where text was cut."""
    if len(text) <= width:
        return text
    start = spans[0][0] if spans else 0
    lo = max(0, min(start - width // 4, len(text) - width))
    if lo > 0:  # start at a word boundary
        space = text.find(" ", lo, start)
        lo = space + 1 if space >= 0 else lo
    hi = min(len(text), lo + width)
    if hi < len(text):
        space = text.rfind(" ", lo + width // 2, hi)
        hi = space if space >= 0 else hi
    body = text[lo:hi].strip()
    return ("…" if lo > 0 else "") + body + ("…" if hi < len(text) else "")
