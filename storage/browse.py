"""What `chanwatch serve` (bot/serve/) reads that no other storage module owns: which tables are the
archive and which are not, the columns a browser should not be shown, the canned queries' SQL, and a
downloaded file looked up by its SHA-256 (only files the archive records are ever served).

The SQL lives here because every statement has its owner in `storage/` (tests/test_layers.py); the
web layer hands these names and statements to Datasette as they are.

    archive_tables(conn)                 # ['channels', 'media_files', 'message_media', ...]
    stored_file(conn, "ab12…")           # StoredFile(path='ab/12/ab12….jpg', mime_type='image/jpeg')
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

__all__ = ["ARCHIVE_TABLES", "CANNED_QUERIES", "HIDDEN_COLUMNS", "DERIVED_TABLES", "PRIVATE_TABLES",
           "WITHHELD_COLUMNS", "StoredFile", "archive_tables", "is_sha256", "stored_file", "table_names"]

ARCHIVE_TABLES = frozenset({
    "channels", "posts", "messages", "message_versions", "message_stats", "tg_files", "message_media",
    "media_files", "post_keys", "posts_fts",
})
"""The tables that are the archive: what the channels published and what was seen of it. Every other
table (subscribers, rules, alerts, the media worker's runs, anything added later) is not served."""

PRIVATE_TABLES = ("subscribers", "rules", "alerts", "media_runs", "readers", "leases", "account_channels",
                  "roles", "bot_peers")
"""The tables known not to be the archive: the bot's subscribers (chat ids), their rules, the alert
outbox, the media worker's bookkeeping, the readers' leases and each account's access hashes (schema
v15). Listed so the metadata can say `allow: false` for each."""

DERIVED_TABLES = ("post_keys", "posts_fts")
"""Search and dedup machinery derived from the posts: served, but hidden from the table lists."""

HIDDEN_COLUMNS = {"posts": ("words", "stems", "tags"), "messages": ("raw",), "message_versions": ("raw",)}
"""Shown only when asked for (`?_col=`): the folded words, stems and tags (posts_fts's external content,
derived from the text) and the raw JSON Telegram sent (kilobytes a row; the post page has the rest)."""

WITHHELD_COLUMNS = {"channels": ("access_hash",)}
"""Columns never shown, filtered, sorted or faceted on: the reading account's access hash of a
channel is a credential of that account, not something the channel published."""

CANNED_QUERIES = {
    "forwards_by_origin": {
        "title": "A channel's forwards and copies by origin",
        "description": "Where what a channel carried comes from: one row per origin, with counts and dates. "
                       "Give the channel's username (without @).",
        "sql": """SELECT coalesce(p.origin_username, p.origin_title, CAST(p.origin_channel_id AS TEXT))
                         AS origin,
                         sum(m.relation = 'forward') AS forwards, sum(m.relation = 'copy') AS copies,
                         min(m.date) AS first, max(m.date) AS last
                  FROM channels c JOIN messages m ON m.channel_id = c.id JOIN posts p ON p.id = m.post_id
                  WHERE lower(c.username) = lower(:channel) AND m.relation != 'original'
                  GROUP BY p.origin_channel_id, origin ORDER BY forwards + copies DESC, origin""",
    },
    "deleted_messages": {
        "title": "Deleted messages",
        "description": "Messages the archive saw deleted, newest deletion first, with the interval it "
                       "happened in (last seen present, first seen missing).",
        "sql": """SELECT c.username AS channel, m.message_id, m.post_id, m.date, m.last_seen, m.deleted_at,
                         m.deleted_via, substr(m.text, 1, 200) AS text
                  FROM messages m JOIN channels c ON c.id = m.channel_id
                  WHERE m.deleted_at IS NOT NULL ORDER BY m.deleted_at DESC LIMIT 500""",
    },
    "edited_messages": {
        "title": "Edited messages",
        "description": "Messages with earlier versions kept, with how many and when last replaced.",
        "sql": """SELECT c.username AS channel, v.message_id, m.post_id, count(*) AS earlier_versions,
                         max(v.replaced_at) AS last_replaced, substr(m.text, 1, 200) AS text
                  FROM message_versions v
                  JOIN messages m ON m.channel_id = v.channel_id AND m.message_id = v.message_id
                  JOIN channels c ON c.id = v.channel_id
                  GROUP BY v.channel_id, v.message_id ORDER BY last_replaced DESC LIMIT 500""",
    },
}
"""Canned queries over the archive tables alone (Datasette runs them; arbitrary SQL is off)."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A downloaded file as the archive records it: its place under the media directory, its type."""

    sha256: str
    path: str
    mime_type: str | None
    size: int


def table_names(conn: sqlite3.Connection) -> list[str]:
    """Every table and view of the database, by name."""
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name")]


def archive_tables(conn: sqlite3.Connection) -> list[str]:
    """The tables of this database that are the archive (`ARCHIVE_TABLES`, FTS shadow tables aside)."""
    return [name for name in table_names(conn) if name in ARCHIVE_TABLES]


def is_sha256(text: str) -> bool:
    """Whether `text` is a lower-case hex SHA-256, the name the media store files things by."""
    return _SHA256.fullmatch(text) is not None


def stored_file(conn: sqlite3.Connection, sha256: str) -> StoredFile | None:
    """The downloaded file with this SHA-256 if the archive records one (`media_files`), else None."""
    if not is_sha256(sha256):
        return None
    row = conn.execute("SELECT sha256, path, mime_type, size FROM media_files WHERE sha256 = ?",
                       (sha256,)).fetchone()
    return None if row is None else StoredFile(row[0], row[1], row[2], row[3])
