"""What the archive holds, counted once for `chanwatch stats` and the bot's /status.

Every count is an index-only or small read, so /status stays cheap on a million-message archive
(it runs on the thread the poller writes through): totals scan the smallest covering index;
forwards, copies, deletions and edited posts read partial indexes that hold only those rows
(migrations 0004, 0005 and 0007); messages with kept versions are counted from the index of kept
versions; posts today seek the `first_seen` index; the channel figures read the small `channels`
table.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from storage.dialect import dialect_of
from storage.outbox import counts
from storage.records import iso

__all__ = ["ArchiveStats", "archive_stats"]


@dataclass(frozen=True, slots=True)
class ArchiveStats:
    """Counts of one archive at one moment.

    `channels` are all known channels (watched or only seen as a forward origin); `sightings` are
    messages, `posts` the canonical posts they deduplicate to. Edits are counted two ways, as they
    are known two ways: `edited_posts` are the posts `is:edited` finds (`posts.edited`: Telegram
    shows the original edited, or the archive saw its text change — a Desktop export marks edited
    messages but carries no earlier text); `versions` are the earlier texts kept, and
    `edited_messages` the messages they belong to: edits the archive saw happen. `channel_errors`
    are the watched channels whose status is not ok, as (username, title, id), by name.
    """

    channels: int
    watched: int
    posts: int
    sightings: int
    forwards: int
    copies: int
    edited_posts: int
    versions: int
    edited_messages: int
    deletions: int
    fts_rows: int
    database_bytes: int
    posts_today: int
    alerts_pending: int
    last_poll: str | None
    channel_errors: tuple[tuple[str | None, str | None, int], ...]

    @property
    def duplicates_avoided(self) -> int:
        """Sightings that did not make a post of their own."""
        return self.sightings - self.posts


_PG_BYTES = ("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
             " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'")
"""The archive's size on PostgreSQL: its schema's tables with their indexes and TOAST."""


def archive_stats(conn: sqlite3.Connection, now: datetime) -> ArchiveStats:
    """Count what the archive holds; `now` sets the day of `posts_today` (UTC)."""
    d = dialect_of(conn)

    def one(sql: str, *args: object) -> int:
        return int(conn.execute(sql, args).fetchone()[0] or 0)

    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    errors = conn.execute(
        "SELECT username, title, id FROM channels WHERE watched = 1 AND status != 'ok'"
        " ORDER BY lower(coalesce(username, title, ''))").fetchall()
    return ArchiveStats(
        channels=one("SELECT count(*) FROM channels"),
        watched=one("SELECT count(*) FROM channels WHERE watched = 1"),
        posts=one("SELECT count(*) FROM posts"),
        sightings=one("SELECT count(*) FROM messages"),
        forwards=one("SELECT count(*) FROM messages WHERE relation = 'forward'"),
        copies=one("SELECT count(*) FROM messages WHERE relation = 'copy'"),
        edited_posts=one("SELECT count(*) FROM posts WHERE edited = 1"),  # the partial index posts_edited
        versions=one("SELECT count(*) FROM message_versions"),
        edited_messages=one("SELECT count(*) FROM (SELECT 1 FROM message_versions"
                            " GROUP BY channel_id, message_id) AS edited"),
        deletions=one("SELECT count(*) FROM messages WHERE deleted_at IS NOT NULL"),
        fts_rows=one("SELECT count(*) FROM posts_fts_docsize" if d.is_sqlite
                     else "SELECT count(*) FROM posts WHERE fts IS NOT NULL"),
        database_bytes=one("PRAGMA page_count") * one("PRAGMA page_size") if d.is_sqlite else one(_PG_BYTES),
        posts_today=one("SELECT count(*) FROM posts WHERE first_seen >= ?", iso(midnight)),
        alerts_pending=counts(conn)["pending"],
        last_poll=conn.execute("SELECT max(last_poll) FROM channels WHERE watched = 1").fetchone()[0],
        channel_errors=tuple((r[0], r[1], r[2]) for r in errors),
    )
