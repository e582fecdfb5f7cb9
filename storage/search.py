"""Search over canonical posts, and loading posts as search results (`Post`) or as matcher input
(`PostDoc`). Synchronous functions over `sqlite3.Connection`; async code runs them with
`Database.run(search, q, ...)`.
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from storage import text as tx
from storage.dialect import Dialect, dialect_of
from storage.origin_names import name_titles
from storage.query import (
    SPARSE_FACTS,
    Filter,
    Query,
    Text,
    channel_condition,
    name_key,
    parse,
    positive_texts,
)
from storage.records import Post, PostDoc, Sighting

SNIPPET_WIDTH = 200
_CHUNK = 500
_RUN = re.compile(r"[^\W_]+")
_HASHTAG = re.compile(r"#([^\W][\w]*)")  # as storage.text finds hashtags


def register_functions(conn: sqlite3.Connection) -> None:
    """Give the connection the SQL functions compiled queries use; idempotent.

    `chanwatch_fold(text)` is `storage.text.fold`; `chanwatch_name(text)` is `storage.query.name_key`
    (the folded words of a title), which from: compares origin titles by. PostgreSQL runs no Python in
    SQL: `from:` reads the names `storage.origin_names` keeps instead, which this names when some
    title is still unnamed and the connection may write (a writer names them after each ingest).
    """
    if not dialect_of(conn).is_sqlite:
        name_titles(conn, if_writable=True)
        return
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
                       origin_channel_id, origin_title, edited
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
            edited=bool(row[9]),
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
                       edited_at, edited
                FROM posts WHERE id IN ({marks})""",
            chunk,
        ):
            posts[r[0]] = Post(
                id=r[0], key=r[1], text=r[2], entities=tuple(json.loads(r[3] or "[]")), date=r[4],
                lang=r[5], media_kind=r[6], origin_channel_id=r[7], origin_username=r[8],
                origin_title=r[9], origin_message_id=r[10], origin_author=r[11], first_seen=r[12],
                edited_at=r[13], edited=bool(r[14]),
            )
        for r in conn.execute(
            f"""SELECT m.post_id, m.channel_id, c.username, c.title, m.message_id, m.date, m.relation,
                       m.deleted_at, m.last_seen, m.deleted_via
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


COUNT_LIMIT = 5_000
"""Totals are counted exactly up to here. Past it a page says "5,000+" (`total_exact` False) unless
the caller asks for `exact_total`: an exact count of a word in a third of a million posts reads its
whole index entry, which costs more than finding a page of it. 5,000 keeps the count of the
benchmark's slowest phrase near 25 ms; at 10,000 (Elasticsearch's default) it took 40 ms."""

WALK_THRESHOLD = 2000
"""Above this many results, newest-first pages walk the date index instead of sorting them all."""

FIRST_STEP = 256
MAX_STEP = 8192
"""Posts per step of the newest-first walk: it starts small (a frequent word fills a page at once)
and doubles (a rare combination needs long stretches of the archive)."""


def _fts_count(conn: sqlite3.Connection, expression: str, cap: int | None) -> int:
    d = dialect_of(conn)
    if cap is not None and d.fts_bucket is not None:  # GIN cannot stop early: count by buckets
        return _newest_buckets(conn, expression, cap, d.fts_bucket)[0]
    if cap is None:
        sql, args = d.fts_rows("count(*)"), [d.fts_param(expression)]
    else:
        sql, args = _capped(d), [d.fts_param(expression), cap]
    return int(conn.execute(sql, args).fetchone()[0])


def _capped(d: Dialect) -> str:
    """A count of the index's matches (its `?`) up to a limit (the second `?`)."""
    return f"SELECT count(*) FROM ({d.fts_rows('1')} LIMIT ?) AS capped"


def _newest_buckets(conn: sqlite3.Connection, expression: str, cap: int, size: int) -> tuple[int, list[int]]:
    """PostgreSQL's count up to `cap`. GIN builds the bitmap of every match before the first row, so
    counting 5,000 of a frequent word cost what all its matches cost, growing with the archive; so
    the matches of `expression` are counted up to `cap` by buckets of post ids from the newest —
    the newest, the next, then two, four, eight... at a time, each step intersected inside the index
    — and the buckets counted (all of them when `cap` was not reached). A frequent word stops in the
    newest buckets; a rare one takes a step per doubling, each reading few matches."""
    d = dialect_of(conn)
    top = conn.execute("SELECT max(id) FROM posts").fetchone()[0]
    if top is None:
        return 0, []
    found, counted, span, bucket = 0, [], 1, top // size
    while bucket >= 0:
        step = list(range(bucket, max(bucket - span, -1), -1))
        found += int(conn.execute(_capped(d), [d.fts_param_in_buckets(expression, step), cap - found]
                                  ).fetchone()[0])
        counted += step
        if found >= cap:
            break
        bucket -= span
        span = span * 2 if len(counted) > 1 else span
    return found, counted


def _recent_param(conn: sqlite3.Connection, expression: str, needed: int) -> object:
    """The `fts_match` parameter for the `needed` most recently archived matches of `expression`
    (with `ORDER BY id DESC LIMIT needed`): on PostgreSQL limited to the newest buckets that hold
    them, so that the planner reads a small bitmap rather than posts backwards testing each one's
    vector (87,000 of them for a frequent word at 1M posts)."""
    d = dialect_of(conn)
    if d.fts_bucket is not None:
        _, buckets = _newest_buckets(conn, expression, needed, d.fts_bucket)
        if buckets and buckets[-1] > 0:  # (down to bucket 0: the whole index)
            return d.fts_param_in_buckets(expression, buckets)
    return d.fts_param(expression)


def _where_count(conn: sqlite3.Connection, where: str, params: list[object], cap: int | None,
                 by_date: bool = False) -> int:
    posts = "posts p" + (dialect_of(conn).indexed_by("posts_date") if by_date else "")
    if cap is None:
        sql, args = f"SELECT count(*) FROM {posts} WHERE {where}", params
    else:
        sql = f"SELECT count(*) FROM (SELECT 1 FROM {posts} WHERE {where} LIMIT ?) AS capped"
        args = [*params, cap]
    return int(conn.execute(sql, args).fetchone()[0])


def count(conn: sqlite3.Connection, q: Query, exact: bool = False, limit: int = COUNT_LIMIT) -> int | None:
    """How many posts match `q`: exactly, or when not `exact` at most `limit + 1` ("more than limit").

    None (only when not `exact`) when only walking would tell: filters over more than `limit` posts
    holding the query's words, where checking each of them costs far more than a page does.
    """
    if unknown_channels(conn, q.required_filters("channel")):
        return 0  # a channel the archive does not know carried nothing: no need to look
    cap = None if exact else limit + 1
    whole = q.fts_expression()
    if whole is not None:  # the index alone answers: every post has exactly one FTS row
        return _fts_count(conn, whole, cap)
    words = q.rank_match()
    # A query requiring a sparse fact is counted from that short list, however many hold its words.
    walkable = cap is not None and not any(f.value in SPARSE_FACTS for f in q.required_filters("is"))
    dated = q.date_range() != (None, None)
    held = 0  # posts holding the words, counted as far as the two decisions below need
    if words is not None and (walkable or dated):
        held = _fts_count(conn, words, max(cap or 0, WALK_THRESHOLD + 1))
    if walkable and cap is not None and held >= cap:
        return None
    where, params = q.to_sql(dialect=dialect_of(conn))
    # Words in many posts within since:/until: read the dates' stretch of the index rather than
    # look up the date of every post holding the words (/subscribe counts the last 30 days this way).
    return _where_count(conn, where, params, cap, by_date=dated and held > WALK_THRESHOLD)


def unknown_channels(conn: sqlite3.Connection, filters: Sequence[Filter]) -> list[str]:
    """The values of these `channel:` filters that name no channel in the archive: a typo, or a
    channel never watched nor seen as an origin. Search answers hint at them."""
    unknown = []
    for node in filters:
        params: list[object] = []
        cond = channel_condition(node, params)
        if conn.execute(f"SELECT 1 FROM channels c WHERE {cond} LIMIT 1", params).fetchone() is None:
            unknown.append(node.value)
    return unknown


def walk(conn: sqlite3.Connection, q: Query, first_step: int = FIRST_STEP) -> Iterator[list[int]]:
    """Ids of the posts matching `q`, newest first (date, then id), a step of the archive at a time.

    Each step takes the next stretch of the date index and tests only the posts in it, with index
    lookups bounded to the stretch's id range: the cost follows the archive read, not how many
    posts match the words in the whole archive. Steps with no match yield an empty list.
    """
    since, until = q.date_range()
    d = dialect_of(conn)
    by_date = "posts p" + d.indexed_by("posts_date")
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples: rows are compared and passed back as parameters
    upper, upper_args = ("p.date < ?", [until]) if until is not None else ("", [])
    step = first_step
    while True:
        bounds = [b for b in (upper, "p.date >= ?" if since is not None else "") if b]
        args = [*upper_args, *([since] if since is not None else [])]
        where = " AND ".join(bounds) or "1 = 1"
        stretch = f"SELECT p.date, p.id FROM {by_date} WHERE {where} ORDER BY p.date DESC, p.id DESC"
        lo, hi = cur.execute(f"SELECT min(id), max(id) FROM ({stretch} LIMIT ?) AS stretch",
                             [*args, step]).fetchone()
        if lo is None:
            return
        edge = cur.execute(f"{stretch} LIMIT 1 OFFSET ?", [*args, step - 1]).fetchone()
        cond, params = q.to_sql((lo, hi), d)
        # The stretch ends at `edge`; the last one at `since` (or the oldest post).
        if edge is not None:
            lower, lower_args = "p.date >= ? AND (p.date, p.id) >= (?, ?)", [edge[0], *edge]
        else:
            lower, lower_args = ("p.date >= ?", [since]) if since is not None else ("1 = 1", [])
        yield [r[0] for r in cur.execute(
            f"SELECT p.id FROM {by_date} WHERE {upper or '1 = 1'} AND {lower} "
            f"AND p.id BETWEEN ? AND ? AND ({cond}) ORDER BY p.date DESC, p.id DESC",
            [*upper_args, *lower_args, lo, hi, *params],
        )]
        if edge is None:
            return
        upper, upper_args = "(p.date, p.id) < (?, ?)", list(edge)
        step = min(step * 2, MAX_STEP)


_ROWID_MAX = 2**63 - 1


def _limit(dialect: Dialect, limit: int) -> int | None:
    """A LIMIT parameter: -1 (no limit) is SQLite's; PostgreSQL's is NULL."""
    return limit if limit >= 0 or dialect.is_sqlite else None


def _ranked(conn: sqlite3.Connection, q: Query, words: str, window: int | None,
            limit: int = -1, offset: int = 0) -> list[int]:
    """Ids of the posts matching `q` by bm25 of `words` (an FTS5 expression they all match), best
    first; with `window`, only among posts from that id on."""
    d = dialect_of(conn)
    bounds = None if window is None else (window, _ROWID_MAX)
    where, params = q.to_sql(bounds, d)
    in_window = "" if window is None else f" AND {d.fts_id} >= ?"
    matches = d.fts_rows(f"{d.fts_id} AS rid, {d.fts_score} AS score", in_window)
    sql = (
        f"SELECT p.id FROM posts p JOIN ({matches}) r ON r.rid = p.id "
        f"WHERE {where} ORDER BY r.score, p.date DESC, p.id DESC LIMIT ? OFFSET ?"
    )
    args = [d.fts_param(words), *([] if window is None else [window]), *params, _limit(d, limit), offset]
    return [row[0] for row in conn.execute(sql, args)]


def id_pages(conn: sqlite3.Connection, query: str | Query, size: int) -> Iterator[list[int]]:
    """Every matching post id, in search order, `size` at a time (exports stream through this)."""
    q = parse(query) if isinstance(query, str) else query
    register_functions(conn)
    if q.sort == "rank" and q.rank_match() is not None:  # ranking needs every match at once
        ranked = _by_rank(conn, q, True, 0, True, _Paging(-1, 0, COUNT_LIMIT))[0]
        for start in range(0, len(ranked), size):
            yield ranked[start:start + size]
        return
    pending: list[int] = []
    for hits in walk(conn, q):
        pending += hits
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
    if pending:
        yield pending


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of results. `total` counts every matching post when `total_exact`; otherwise it is
    a lower bound (at least this many match), shown as `total_text` "5,000+"."""

    posts: list[Post]
    total: int
    query: Query
    total_exact: bool = True
    unknown_channels: tuple[str, ...] = ()
    """For an empty page: the query's `channel:` values that name no channel in the archive."""

    @property
    def total_text(self) -> str:
        """The total for people: "1,234", or "5,000+" when it is a lower bound."""
        return f"{self.total:,}" + ("" if self.total_exact else "+")


def search(
    conn: sqlite3.Connection, query: str | Query, limit: int = 20, offset: int = 0, *,
    exact_total: bool = False, count_limit: int = COUNT_LIMIT,
) -> SearchPage:
    """Posts matching `query`, newest first (or by bm25 for `sort:rank`), each with a snippet.

    The total is exact up to `count_limit`, or always with `exact_total`; past it, `sort:rank`
    ranks the `count_limit` most recently archived matches. Raises `storage.query.QueryError` for
    a malformed query text.
    """
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")
    q = parse(query) if isinstance(query, str) else query
    register_functions(conn)
    n = count(conn, q, exact_total, count_limit)
    exact = n is not None and (exact_total or n <= count_limit)
    total = 0 if n is None else n if exact else count_limit
    paged = _Paging(limit, offset, count_limit)
    if exact and total == 0:
        ids: list[int] = []
    elif q.sort == "rank" and q.rank_match() is not None:
        ids, total, exact = _by_rank(conn, q, n is not None, total, exact, paged)
    else:
        ids, total, exact = _by_date(conn, q, total, exact, paged)
    posts = [replace(p, snippet=snippet(p.text, highlight_spans(p.text, q))) for p in load_posts(conn, ids)]
    unknown = tuple(unknown_channels(conn, q.filters("channel"))) if total == 0 else ()
    return SearchPage(posts, total, q, exact, unknown)


@dataclass(frozen=True, slots=True)
class _Paging:
    limit: int
    offset: int
    count_limit: int


def _by_rank(conn: sqlite3.Connection, q: Query, counted: bool, total: int, exact: bool,
             paged: _Paging) -> tuple[list[int], int, bool]:
    """A page by bm25; past the count limit, of the most recently archived word matches.

    `counted`: the count could tell (the words alone hold at most the count limit, or exact).
    """
    d = dialect_of(conn)
    limit, offset = paged.limit, paged.offset
    whole = q.fts_expression()
    if whole is not None:  # rank inside the index; ties newest-archived first
        matches = d.fts_rows(f"{d.fts_id} AS rid, {d.fts_score} AS score")
        args: list[object] = [d.fts_param(whole)]
        if not exact:  # rank the matches the total counted: the most recently archived ones
            matches += f" ORDER BY {d.fts_id} DESC LIMIT ?"
            args = [_recent_param(conn, whole, paged.count_limit), paged.count_limit]
        sql = f"SELECT rid FROM ({matches}) AS matches ORDER BY score, rid DESC LIMIT ? OFFSET ?"
        return [row[0] for row in conn.execute(sql, [*args, _limit(d, limit), offset])], total, exact
    words = q.rank_match() or ""
    if counted:  # the words match few enough posts to rank every match
        return _ranked(conn, q, words, None, limit, offset), total, exact
    recent = f"{d.fts_rows(f'{d.fts_id} AS rid')} ORDER BY {d.fts_id} DESC LIMIT ?"
    window = conn.execute(
        f"SELECT min(rid) FROM ({recent}) AS recent",
        [_recent_param(conn, words, paged.count_limit), paged.count_limit],
    ).fetchone()[0]
    ranked = _ranked(conn, q, words, window)
    if len(ranked) > offset + limit:
        return ranked[offset:offset + limit], len(ranked), False
    ranked = _ranked(conn, q, words, None)  # too few pass the filters there to fill this page
    return ranked[offset:offset + limit], len(ranked), True


def _by_date(conn: sqlite3.Connection, q: Query, total: int, exact: bool,
             paged: _Paging) -> tuple[list[int], int, bool]:
    """A page newest first: sorted when the matches are few and counted, else walked."""
    limit, offset = paged.limit, paged.offset
    if exact and total <= WALK_THRESHOLD:
        where, params = q.to_sql(dialect=dialect_of(conn))
        sql = f"SELECT p.id FROM posts p WHERE {where} ORDER BY p.date DESC, p.id DESC LIMIT ? OFFSET ?"
        return [row[0] for row in conn.execute(sql, [*params, limit, offset])], total, exact
    found: list[int] = []
    for hits in walk(conn, q):
        found += hits
        if len(found) > offset + limit:  # the page and one more: there is a next page
            # at least what the walk found, when the count could not tell
            return found[offset:offset + limit], total if exact else max(total, len(found)), exact
    return found[offset:offset + limit], len(found), True  # the walk saw every match


# -- highlighting ---------------------------------------------------------------------------------


def _runs(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, folded word, stem) for each token of `text`, with offsets into `text` itself."""
    folded = tx.fold(text)
    if len(folded) == len(text) and len(text.casefold()) == len(text) and _nfkc_stable(text):
        # Folding changed characters one for one (the usual case): fold once, offsets line up.
        return [(m.start(), m.end(), m.group(), tx.stem(m.group())) for m in _RUN.finditer(folded)]
    out = []
    for m in _RUN.finditer(text):
        for word in tx.words(m.group()):  # folding can split a run (rarely): share its span
            out.append((m.start(), m.end(), word, tx.stem(word)))
    return out


def _nfkc_stable(text: str) -> bool:
    return text.isascii() or unicodedata.is_normalized("NFKC", text)


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
    start, end = tx.excerpt_window(text, spans, width)
    return ("…" if start else "") + text[start:end].strip() + ("…" if end < len(text) else "")
