"""Engagement over time: the widening schedule of readings and the `message_stats` time series.

A message younger than the horizon (`CHANWATCH_STATS_DAYS`, default 14 days) has its views, forwards,
replies and reactions read again at widening offsets after it was posted (`SCHEDULE`); each reading
is one `message_stats` row, and the message row keeps the latest counts and when the next reading is
due (`messages.stats_due`, NULL: none). A reading is never an edit: it touches no text, no
`edit_date`, no version.

A message first archived late (5 h after posting) is read at insert and next at the first schedule
point after that: points already past are not caught up. Ingest (`storage.ingest`) writes the
first reading and schedules young messages with `DEFAULT_DAYS`; the engagement job
(`bot/engagement.py`) lists what is due (`due`), asks Telegram in batches of 100 ids per channel and
writes the answers (`write_readings`) with its own horizon.

Example::

    >>> next_due(posted, after=posted + timedelta(hours=5), days=14)  # posted + 6 h
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime, timedelta

from storage.dialect import dialect_of
from storage.ingest_rows import counts_json
from storage.records import MessageRecord, Reading, iso, parse_iso

__all__ = ["BATCH", "DEFAULT_DAYS", "ROUND_LIMIT", "SCHEDULE", "due", "end_past_horizon", "first_due",
           "most_read_post", "next_due", "offsets", "reading_of", "readings_of", "readings_taken",
           "write_readings"]

SCHEDULE: tuple[timedelta, ...] = tuple(
    timedelta(hours=h) for h in (1, 3, 6, 12, 24, 48, 96, 168, 336)
)
"""When a message is read again, after it was posted: 1 h, 3 h, 6 h, 12 h, 1 d, 2 d, 4 d, 7 d, 14 d."""

DEFAULT_DAYS = 14
"""The horizon when CHANWATCH_STATS_DAYS is not set: no reading is due after 14 days."""

BATCH = 100
"""Ids per messages.GetMessagesViews / GetMessagesReactions request (Telegram's limit)."""

ROUND_LIMIT = 10_000
"""At most this many due messages per round of the job; the rest stay due for the next round."""


def offsets(days: float) -> tuple[timedelta, ...]:
    """The schedule bounded by the horizon: its points before `days`, then `days` itself (the last
    reading), so a 3-day horizon ends with a reading at 3 d and a 30-day one with one at 30 d."""
    if days <= 0:
        return ()
    horizon = timedelta(days=days)
    return (*(o for o in SCHEDULE if o < horizon), horizon)


def next_due(posted: datetime, after: datetime, days: float) -> datetime | None:
    """The first schedule point strictly after `after` for a message posted at `posted`; None when
    none is left within the horizon (or the horizon is 0: no readings)."""
    for offset in offsets(days):
        if posted + offset > after:
            return posted + offset
    return None


def reading_of(record: MessageRecord, at: str) -> Reading:
    """The counts a message carried when read at `at` (ISO), as a reading."""
    return Reading(record.channel_id, record.message_id, at, record.views, record.forwards, record.replies,
                   record.reactions)


def known(reading: Reading) -> bool:
    """Whether a reading says anything (Telegram answers a deleted id with no counts at all)."""
    return any(v is not None for v in (reading.views, reading.forwards, reading.replies, reading.reactions))


def insert_reading(conn: sqlite3.Connection, reading: Reading) -> None:
    """One `message_stats` row (a repeat of the same read, same `at`, changes nothing)."""
    conn.execute(
        dialect_of(conn).insert_or_ignore(
            "message_stats (channel_id, message_id, at, views, forwards, replies, reactions)",
            "VALUES (?, ?, ?, ?, ?, ?, ?)"),
        (reading.channel_id, reading.message_id, reading.at, reading.views, reading.forwards,
         reading.replies, counts_json(reading.reactions)),
    )


def write_readings(conn: sqlite3.Connection, readings: Iterable[Reading], days: float) -> int:
    """Store readings made by the job, on the caller's transaction: each one known is a
    `message_stats` row and the message's latest counts; every message read gets its next
    `stats_due` (NULL past the horizon or once deleted). Returns the rows written."""
    written = 0
    for reading in readings:
        row = conn.execute(
            "SELECT date, deleted_at FROM messages WHERE channel_id = ? AND message_id = ?",
            (reading.channel_id, reading.message_id),
        ).fetchone()
        if row is None:
            continue
        at = parse_iso(reading.at)
        posted = parse_iso(row[0])
        following = None if row[1] is not None or at is None or posted is None else next_due(posted, at, days)
        if known(reading):
            insert_reading(conn, reading)
            written += 1
        conn.execute(
            """UPDATE messages SET views = coalesce(?, views), forwards = coalesce(?, forwards),
                   replies = coalesce(?, replies), reactions = coalesce(?, reactions), stats_due = ?
               WHERE channel_id = ? AND message_id = ?""",
            (reading.views, reading.forwards, reading.replies, counts_json(reading.reactions),
             iso(following), reading.channel_id, reading.message_id),
        )
    return written


def end_past_horizon(conn: sqlite3.Connection, now: datetime, days: float) -> int:
    """Unschedule what the horizon no longer covers: a reading due after it (scheduled with a larger
    CHANWATCH_STATS_DAYS), a message more than a day past it (the daemon was off: its last reading is
    not taken that late) and deleted messages. Returns how many."""
    cutoff = iso(now - timedelta(days=max(days, 0) + 1)) or ""
    apart = dialect_of(conn).seconds_between("date", "stats_due")
    return conn.execute(
        f"""UPDATE messages SET stats_due = NULL WHERE stats_due IS NOT NULL AND (
               deleted_at IS NOT NULL OR date < ? OR {apart} > ?)""",
        (cutoff, (max(days, 0) + 1e-6) * 86400.0),
    ).rowcount


def due(conn: sqlite3.Connection, now: datetime, limit: int = ROUND_LIMIT) -> dict[int, list[int]]:
    """Messages of watched channels whose reading is due by `now`, oldest due first, at most `limit`:
    {channel id: [message ids]} (channels in the order of their oldest due message). Only channels the
    reading account can ask (an access hash): a channel read by its web preview gets its readings from
    the web re-reads, and its due messages must not fill the round ahead of those the API can read."""
    rows = conn.execute(
        """SELECT m.channel_id, m.message_id FROM messages m JOIN channels c ON c.id = m.channel_id
           WHERE m.stats_due IS NOT NULL AND m.stats_due <= ? AND m.deleted_at IS NULL AND c.watched = 1
           AND c.access_hash IS NOT NULL
           ORDER BY m.stats_due, m.channel_id, m.message_id LIMIT ?""",
        (iso(now), limit),
    )
    grouped: dict[int, list[int]] = {}
    for channel_id, message_id in rows:
        grouped.setdefault(channel_id, []).append(message_id)
    return grouped


def readings_of(channel_id: int, at: datetime, ids: list[int], views: list[tuple[int | None, int | None,
                int | None]], reactions: dict[int, dict[str, int]]) -> list[Reading]:
    """Readings from one batch's answers: `views` as (views, forwards, replies) in the order of
    `ids`, `reactions` by id (an id missing there: reactions unknown)."""
    when = iso(at) or ""
    return [
        Reading(channel_id, message_id, when, v, f, r, reactions.get(message_id))
        for message_id, (v, f, r) in zip(ids, views, strict=True)
    ]


def first_due(posted: datetime, seen: datetime, days: float = DEFAULT_DAYS) -> str | None:
    """A message just archived: when its next reading is due (ISO), None when it is too old for one.
    Ingest writes it with the message (`messages.stats_due`)."""
    return iso(next_due(posted, seen, days))


def readings_taken(conn: sqlite3.Connection) -> int:
    """How many engagement readings the archive holds."""
    return int(conn.execute("SELECT count(*) FROM message_stats").fetchone()[0])


def most_read_post(conn: sqlite3.Connection) -> int | None:
    """The post that travelled furthest among those read more than once: the most sightings, then the
    most readings, then the most views — the one whose curves say most, for the demo's summary. None
    when no message was read twice."""
    row = conn.execute(
        """WITH read AS (SELECT channel_id, message_id, count(*) AS n, max(views) AS top
                         FROM message_stats GROUP BY channel_id, message_id HAVING n > 1)
           SELECT m.post_id FROM read JOIN messages m USING (channel_id, message_id)
           GROUP BY m.post_id
           ORDER BY (SELECT count(*) FROM messages o WHERE o.post_id = m.post_id) DESC,
                    sum(read.n) DESC, max(read.top) DESC, m.post_id LIMIT 1"""
    ).fetchone()
    return None if row is None else int(row[0])
