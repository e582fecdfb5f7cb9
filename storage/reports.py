"""Reports over the archive. The amplification report: which of an origin channel's posts other
channels carried, how, how fast.

An origin is a channel whose posts (`posts.origin_channel_id`) another channel carried in the window;
an amplifier is a channel that carried at least one of them (a sighting in `messages` by a channel
other than the origin, as a forward or as a copy without attribution). The window is on the post's
original date. Every figure is an SQL aggregate, so no Python loop runs over sightings: one pass over
the indexes `posts_origin` and `messages_post` (schema v14) fills a temporary table of (origin post,
carrying channel) pairs sorted by delay (on PostgreSQL a materialized CTE numbered alike:
`Dialect.numbered`), from which the amplifiers' figures (the median and p90 at their nearest rank,
read by rowid) and the most carried posts are grouped; the report reads a
million-message archive in about 2-4 s (bench/report.py) without reading a message row. The query
report (`query_timeline`) counts a search's matches per day per channel; the channel report
(`channel_report`) sums up one channel's activity.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta

from storage.dialect import Numbered, dialect_of
from storage.query import parse
from storage.search import register_functions

__all__ = ["DELAY_BUCKETS", "AmplifierFigures", "Amplification", "ChannelDay", "ChannelReport", "DayCount",
           "DelayDistribution", "OriginFigures", "PostFigures", "QueryTimeline", "Source", "amplification",
           "channel_report", "query_timeline"]

DELAY_BUCKETS = ("<5 min", "<1 h", "<6 h", "<1 d", ">=1 d")
"""The delay distribution's buckets, by upper bound (300, 3600, 21600 and 86400 seconds)."""


@dataclass(frozen=True, slots=True)
class OriginFigures:
    """One origin channel: its posts in the window and how many of them another channel carried."""

    channel_id: int
    name: str
    posts: int
    carried: int

    @property
    def share(self) -> float:
        """The share of its posts carried by at least one other channel (0 to 1)."""
        return self.carried / self.posts if self.posts else 0.0


@dataclass(frozen=True, slots=True)
class AmplifierFigures:
    """One channel carrying one origin's posts: how many (forward or copy), how late, what else.

    Delays are seconds from the origin's date to the amplifier's first sighting of the post; the
    median and p90 are nearest-rank (an even count reads the lower middle). `own_posts` are the
    amplifier's own posts in the window; `carried_edited` / `carried_deleted` count the posts it
    carried whose original the origin edited (`posts.edited`, what `is:edited` finds) or deleted.
    """

    origin_id: int
    channel_id: int
    name: str
    carried: int
    share: float
    forwards: int
    copies: int
    median_delay_s: int
    p90_delay_s: int
    max_delay_s: int
    own_posts: int
    carried_edited: int
    carried_deleted: int


@dataclass(frozen=True, slots=True)
class PostFigures:
    """One origin post: its sightings (the origin's own included), the other channels that carried
    it, and the views summed over sightings that report views (None when none does)."""

    post_id: int
    origin_id: int
    origin_message_id: int | None
    date: str
    text: str
    sightings: int
    channels: int
    views: int | None


@dataclass(frozen=True, slots=True)
class DayCount:
    """Messages one channel posted (originals, forwards and copies) on one UTC day."""

    channel_id: int
    name: str
    day: str
    messages: int


@dataclass(frozen=True, slots=True)
class DelayDistribution:
    """How many of one origin's posts one amplifier carried within each of `DELAY_BUCKETS`."""

    origin_id: int
    channel_id: int
    counts: tuple[int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class Amplification:
    """The whole report; `since` / `until` are the window's days (inclusive), None when open."""

    since: str | None
    until: str | None
    origins: tuple[OriginFigures, ...]
    amplifiers: tuple[AmplifierFigures, ...]
    top_posts: tuple[PostFigures, ...]
    uncarried_posts: tuple[PostFigures, ...]
    timeline: tuple[DayCount, ...]
    delays: tuple[DelayDistribution, ...]


_NAME = "coalesce(c.username, c.title, CAST({id} AS TEXT))"


def _window(origin: int | None, since: date | None, until: date | None) -> tuple[str, list[object]]:
    """The WHERE clause on `p` (posts) selecting origin posts in the window, and its parameters."""
    sql, params = "p.origin_channel_id IS NOT NULL", []  # type: str, list[object]
    if origin is not None:
        sql += " AND p.origin_channel_id = ?"
        params.append(origin)
    days, day_params = _days("p.date", since, until)
    return sql + days, params + day_params


_PAIRS = "report_pairs"
"""The temporary table of one report's (origin post, carrying channel) pairs; see `_pairs`."""

_PAIRS_SQL = """
WITH op AS (  -- the origin posts in the window, from the index alone (posts_origin, schema v14)
    SELECT p.id, p.origin_channel_id AS origin, p.date, p.edited,
           CAST(EXISTS (SELECT 1 FROM messages d{by_deleted} WHERE d.post_id = p.id
                        AND d.deleted_at IS NOT NULL AND d.channel_id = p.origin_channel_id
                        AND d.relation = 'original') AS INTEGER) AS deleted
    FROM posts p{by_origin} WHERE {where}
)
SELECT op.origin, m.channel_id, op.id AS post_id, op.edited, max(op.deleted) AS deleted,
       max(CASE WHEN m.relation = 'forward' THEN 1 ELSE 0 END) AS forwarded,
       max(CASE WHEN m.relation = 'copy' THEN 1 ELSE 0 END) AS copied, count(*) AS sightings,
       CAST(round({delay}) AS INTEGER) AS delay
FROM op JOIN messages m ON m.post_id = op.id AND m.channel_id != op.origin
GROUP BY op.origin, op.date, op.edited, op.id, m.channel_id  -- the order of posts_origin: no sort
"""


def _pairs(conn: sqlite3.Connection, where: str, params: list[object]) -> Numbered:
    """`report_pairs`: one row per origin post in the window and other channel that carried it,
    with that channel's first sighting's delay, how it carried it (forward, copy), its sightings and
    the post's `edited` / `deleted` flags, in one pass over the indexes `posts_origin` and
    `messages_post` (schema v14). The rows are numbered in (origin, channel, delay) order
    (`Dialect.numbered`: on SQLite a temporary table, filled here, whose rowids are the ranks), so
    each amplifier's delays are consecutive rowids in rank order: its median and p90 are read by
    rowid, with neither a window function nor a second sort. The caller runs the returned `drop`."""
    dialect = dialect_of(conn)
    query = _PAIRS_SQL.format(where=where, by_deleted=dialect.indexed_by("messages_deleted"),
                              by_origin=dialect.indexed_by("posts_origin"),
                              delay=dialect.seconds_between("op.date", "min(m.date)"))
    pairs = dialect.numbered(_PAIRS, query, "origin, channel_id, delay")
    if pairs.drop:
        conn.execute(pairs.drop)
    if pairs.create:
        conn.execute(pairs.create, params)
    return pairs


def days_window(since: str | None, until: str | None, names: tuple[str, str] = ("since", "until")
                ) -> tuple[date | None, date | None]:
    """The UTC days a report's window gives as text (`YYYY-MM-DD`, None for open); ValueError saying
    which of `names` is wrong and how to write it. The CLI and the web view read their fields here."""
    def day(text: str | None, name: str) -> date | None:
        if text is None:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{name}: not a date: {text!r}; give a day as YYYY-MM-DD, e.g. 2025-12-01"
                             ) from None

    first, last = day(since, names[0]), day(until, names[1])
    if first and last and first > last:
        raise ValueError(f"{names[0]} {first} is after {names[1]} {last}; swap them")
    return first, last


def amplification(conn: sqlite3.Connection, origin: int | None = None, since: date | None = None,
                  until: date | None = None, *, top: int = 10) -> Amplification:
    """The amplification report over posts dated `since`..`until` (UTC days, inclusive), of one
    origin channel id or of every origin; `top` bounds the lists of most and never carried posts.
    The connection needs nothing but reading the archive (a read-only one will do): the pairs of
    origin posts and carrying channels live in a temporary table for the call on SQLite, in a CTE of
    each statement reading them on PostgreSQL (`_pairs`).

    Example: `amplification(conn, 1001, date(2025, 12, 1))` — the MFA's posts since 1 December.
    """
    dialect = dialect_of(conn)
    by_origin = dialect.indexed_by("posts_origin")
    where, params = _window(origin, since, until)
    origin_rows = conn.execute(
        f"""WITH op AS (SELECT p.id, p.origin_channel_id AS origin FROM posts p{by_origin} WHERE {where})
        SELECT op.origin, min({_NAME.format(id='op.origin')}), count(*),
               sum(CAST(EXISTS (SELECT 1 FROM messages m
                                WHERE m.post_id = op.id AND m.channel_id != op.origin) AS INTEGER))
        FROM op LEFT JOIN channels c ON c.id = op.origin GROUP BY op.origin""", params).fetchall()
    origins = tuple(OriginFigures(r[0], r[1], r[2], r[3]) for r in origin_rows
                    if r[3] or r[0] == origin)
    posts_of = {o.channel_id: o.posts for o in origins}
    own_days, own_params = _days("q.date", since, until)
    own = (f"(SELECT count(*) FROM posts q{by_origin}"
           f" WHERE q.origin_channel_id = a.channel_id{own_days})")
    pairs = _pairs(conn, where, params)
    pairs_params = [] if pairs.is_table else params  # the CTE's parameters come first in each reader
    buckets = ", ".join(f"{_count_of(cond)} AS b{i}" for i, cond in enumerate((
        "delay < 300", "delay >= 300 AND delay < 3600", "delay >= 3600 AND delay < 21600",
        "delay >= 21600 AND delay < 86400", "delay >= 86400")))
    try:
        amp_rows = conn.execute(
            f"""WITH {pairs.with_}a AS (
                SELECT origin, channel_id, count(*) AS carried, {pairs.rank_base("delay")} AS first,
                       sum(forwarded) AS forwards, sum(copied) AS copies, max(delay) AS max_delay,
                       sum(edited) AS edited, sum(deleted) AS deleted, {buckets}
                FROM {_PAIRS} GROUP BY origin, channel_id
            )
            SELECT a.origin, a.channel_id, {_NAME.format(id='a.channel_id')}, a.carried, a.forwards, a.copies,
                   {pairs.at_rank("delay", "a.first", "(a.carried + 1) / 2")},
                   {pairs.at_rank("delay", "a.first", "(9 * a.carried + 9) / 10")},
                   a.max_delay, {own}, a.edited, a.deleted, a.b0, a.b1, a.b2, a.b3, a.b4
            FROM a LEFT JOIN channels c ON c.id = a.channel_id
            ORDER BY a.origin, a.carried DESC, a.channel_id""", [*pairs_params, *own_params]).fetchall()
        top_posts = _top_posts(conn, top, pairs.with_, pairs_params)
    finally:
        if pairs.drop:
            conn.execute(pairs.drop)
    amplifiers = tuple(
        AmplifierFigures(origin_id=r[0], channel_id=r[1], name=r[2], carried=r[3],
                         share=r[3] / posts_of[r[0]] if posts_of.get(r[0]) else 0.0, forwards=r[4],
                         copies=r[5], median_delay_s=r[6], p90_delay_s=r[7], max_delay_s=r[8],
                         own_posts=r[9], carried_edited=r[10], carried_deleted=r[11])
        for r in amp_rows)
    delays = tuple(DelayDistribution(r[0], r[1], (r[12], r[13], r[14], r[15], r[16])) for r in amp_rows)
    uncarried = _uncarried(conn, where, params, top, [o.channel_id for o in origins])
    involved = sorted({o.channel_id for o in origins} | {a.channel_id for a in amplifiers})
    return Amplification(
        since=since.isoformat() if since else None, until=until.isoformat() if until else None,
        origins=origins, amplifiers=amplifiers, top_posts=top_posts, uncarried_posts=uncarried,
        timeline=_timeline(conn, involved, since, until), delays=delays)


_POST_FIGURES = """p.id, p.origin_channel_id, p.origin_message_id, p.date, p.text,
    (SELECT count(*) FROM messages m WHERE m.post_id = p.id) AS sightings, {channels} AS channels,
    (SELECT CAST(sum(m.views) AS BIGINT) FROM messages m WHERE m.post_id = p.id) AS views"""
"""A post's figures; `views` is cast because PostgreSQL sums BIGINTs as NUMERIC."""


def _top_posts(conn: sqlite3.Connection, top: int, pairs: str, params: list[object]
               ) -> tuple[PostFigures, ...]:
    """The `top` most carried origin posts: most channels, then sightings, then views. Channels per
    post are counted from `report_pairs` (`pairs`: its WITH entry, and `params` its parameters, where
    it is no table); only the posts that can still make the list (as many channels as the `top`-th
    post, or more) have their sightings and views summed."""
    rows = conn.execute(
        f"""WITH {pairs}per AS (SELECT post_id, count(*) AS channels FROM {_PAIRS} GROUP BY post_id),
            cut AS (SELECT channels FROM per ORDER BY channels DESC LIMIT 1 OFFSET ?),
            candidates AS (SELECT post_id, channels FROM per
                           WHERE channels >= coalesce((SELECT channels FROM cut), 0))
        SELECT * FROM (SELECT {_POST_FIGURES.format(channels="candidates.channels")}
                       FROM candidates JOIN posts p ON p.id = candidates.post_id) AS figures
        ORDER BY channels DESC, sightings DESC, coalesce(views, 0) DESC, date LIMIT ?""",
        [*params, top - 1, top]).fetchall()
    return tuple(PostFigures(*r) for r in rows)


def _uncarried(conn: sqlite3.Connection, where: str, params: list[object], top: int,
               origins: list[int]) -> tuple[PostFigures, ...]:
    """The `top` latest posts of the reported origins (those carried, or the one named) that no other
    channel carried, read backwards along each origin's range of `posts_origin`."""
    if not origins:
        return ()
    by_origin = dialect_of(conn).indexed_by("posts_origin")
    rows = conn.execute(
        f"""SELECT {_POST_FIGURES.format(channels="0")} FROM posts p{by_origin}
        WHERE {where} AND p.origin_channel_id IN ({", ".join("?" * len(origins))})
              AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.post_id = p.id
                              AND m.channel_id != p.origin_channel_id)
        ORDER BY p.date DESC, p.id DESC LIMIT ?""", [*params, *origins, top]).fetchall()
    return tuple(PostFigures(*r) for r in rows)


def _timeline(conn: sqlite3.Connection, channels: list[int], since: date | None,
              until: date | None) -> tuple[DayCount, ...]:
    """Messages per channel per UTC day in the window, for the origins and amplifiers reported,
    counted along the index `messages_channel_day` (schema v14), grouped by its own expression so
    that no message is sorted."""
    if not channels:
        return ()
    day = "substr(m.date, 1, 10)"
    window, params = _days(day, since, until)
    by_day = dialect_of(conn).indexed_by("messages_channel_day")
    rows = conn.execute(
        f"""SELECT m.channel_id, min({_NAME.format(id='m.channel_id')}), {day}, count(*)
        FROM messages m{by_day} LEFT JOIN channels c ON c.id = m.channel_id
        WHERE m.channel_id IN ({", ".join("?" * len(channels))}){window}
        GROUP BY m.channel_id, {day} ORDER BY {day}, m.channel_id""", [*channels, *params]).fetchall()
    return tuple(DayCount(r[0], r[1], r[2], r[3]) for r in rows)


@dataclass(frozen=True, slots=True)
class QueryTimeline:
    """How a topic rose: per UTC day and channel, the messages carrying a post that matches `query`
    (originals, forwards and copies, by the message's own date); `posts` counts the matching posts."""

    query: str
    posts: int
    days: tuple[DayCount, ...]


def query_timeline(conn: sqlite3.Connection, query: str) -> QueryTimeline:
    """The matches of a search query over time per channel, in one grouped pass; the condition is
    `storage.query`'s own compilation (the same as `chanwatch search`), so the report and a search
    find the same posts. Raises `QueryError` for a malformed query. It registers the SQL functions
    the compiled query may call (`from:` compares titles through them), as `search()` does.

    Example: `query_timeline(conn, 'sanctions channel:rusembc')`.
    """
    where, params = parse(query).to_sql(dialect=dialect_of(conn))
    register_functions(conn)
    rows = conn.execute(
        f"""WITH hits AS (SELECT p.id FROM posts p WHERE {where})
        SELECT m.channel_id, min({_NAME.format(id='m.channel_id')}), substr(m.date, 1, 10) AS day, count(*),
               (SELECT count(*) FROM hits)
        FROM hits JOIN messages m ON m.post_id = hits.id LEFT JOIN channels c ON c.id = m.channel_id
        GROUP BY m.channel_id, day ORDER BY day, m.channel_id""", params).fetchall()
    posts = rows[0][4] if rows else 0
    return QueryTimeline(query, posts, tuple(DayCount(r[0], r[1], r[2], r[3]) for r in rows))


@dataclass(frozen=True, slots=True)
class ChannelDay:
    """One channel's messages on one UTC day, by relation."""

    day: str
    originals: int
    forwards: int
    copies: int


@dataclass(frozen=True, slots=True)
class Source:
    """A channel whose posts this channel forwarded (with attribution) or copied (without)."""

    channel_id: int | None
    name: str
    forwards: int
    copies: int


@dataclass(frozen=True, slots=True)
class ChannelReport:
    """One channel's activity in a window: messages per day, per hour of day (UTC, 0 to 23), per
    language, its top hashtags (without '#') and where what it carried comes from."""

    channel_id: int
    name: str
    since: str | None
    until: str | None
    messages: int
    days: tuple[ChannelDay, ...]
    hours: tuple[int, ...]
    languages: tuple[tuple[str, int], ...]
    hashtags: tuple[tuple[str, int], ...]
    sources: tuple[Source, ...]


def _days(column: str, since: date | None, until: date | None) -> tuple[str, list[object]]:
    """Conditions on a date `column` for the UTC days `since`..`until` (inclusive), and their parameters."""
    sql, params = "", []  # type: str, list[object]
    if since is not None:
        sql += f" AND {column} >= ?"
        params.append(since.isoformat())
    if until is not None:
        sql += f" AND {column} < ?"
        params.append((until + timedelta(days=1)).isoformat())
    return sql, params


def _count_of(condition: str) -> str:
    """SQL counting a group's rows where `condition` holds (a comparison is no number on PostgreSQL)."""
    return f"sum(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def channel_report(conn: sqlite3.Connection, channel_id: int, since: date | None = None,
                   until: date | None = None, *, top: int = 10) -> ChannelReport:
    """The activity of one channel over its messages dated `since`..`until` (UTC days, inclusive),
    each section one grouped query; hashtags are split from `posts.tags` by a recursive CTE.

    Example: `channel_report(conn, 2002, date(2025, 12, 1))` — the Canadian embassy since 1 December.
    """
    window, wparams = _days("m.date", since, until)
    params = [channel_id, *wparams]
    mine = f"FROM messages m JOIN posts p ON p.id = m.post_id WHERE m.channel_id = ?{window}"
    name = conn.execute(f"SELECT {_NAME.format(id='?')} FROM (SELECT 1) AS one"
                        " LEFT JOIN channels c ON c.id = ?", (channel_id, channel_id)).fetchone()[0]
    days = tuple(ChannelDay(*r) for r in conn.execute(
        f"""SELECT substr(m.date, 1, 10) AS day, {_count_of("m.relation = 'original'")},
               {_count_of("m.relation = 'forward'")}, {_count_of("m.relation = 'copy'")} {mine}
            GROUP BY day ORDER BY day""", params))
    per_hour = dict(conn.execute(
        f"SELECT CAST(substr(m.date, 12, 2) AS INTEGER) AS hour, count(*) {mine} GROUP BY hour", params))
    languages = tuple((r[0], r[1]) for r in conn.execute(
        f"""SELECT coalesce(p.language, '?') AS lang, count(*) {mine} GROUP BY lang
            ORDER BY count(*) DESC, lang""", params))
    instr = dialect_of(conn).instr
    hashtags = tuple((r[0], r[1]) for r in conn.execute(
        f"""WITH RECURSIVE split(rest, tag) AS (
                SELECT p.tags || ' ', CAST(NULL AS TEXT) {mine} AND p.tags != ''
                UNION ALL
                SELECT substr(rest, {instr}(rest, ' ') + 1), substr(rest, 1, {instr}(rest, ' ') - 1)
                FROM split WHERE rest != ''
            )
            SELECT tag, count(*) FROM split WHERE tag != ''
            GROUP BY tag ORDER BY count(*) DESC, tag LIMIT ?""",
        [*params, top]))
    sources = tuple(Source(*r) for r in conn.execute(
        f"""SELECT p.origin_channel_id,
                   coalesce(max(c.username), max(p.origin_username), max(c.title), max(p.origin_title),
                            CAST(p.origin_channel_id AS TEXT), '(hidden sender)'),
                   {_count_of("m.relation = 'forward'")}, {_count_of("m.relation = 'copy'")}
            FROM messages m JOIN posts p ON p.id = m.post_id
            LEFT JOIN channels c ON c.id = p.origin_channel_id
            WHERE m.channel_id = ?{window} AND m.relation != 'original'
            GROUP BY p.origin_channel_id
            ORDER BY count(*) DESC, p.origin_channel_id IS NOT NULL, p.origin_channel_id""", params))
    return ChannelReport(
        channel_id=channel_id, name=name, since=since.isoformat() if since else None,
        until=until.isoformat() if until else None, messages=sum(d.originals + d.forwards + d.copies
                                                                 for d in days),
        days=days, hours=tuple(per_hour.get(h, 0) for h in range(24)), languages=languages,
        hashtags=hashtags, sources=sources)
