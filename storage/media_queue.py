"""The download queue of channel media: which Telegram files to fetch, which messages carry them, and
how each fetch ended. Every statement on `tg_files`, `message_media` and `media_files`.

One row per Telegram file (`tg_files`, keyed by Photo.id / Document.id): a forward of a file already
queued or downloaded adds a link in `message_media`, never a second download. `link_media` runs inside
the ingest transaction, so a message and its queue row commit together or not at all. File
references are never stored (they expire); the worker re-reads a message that carries the file
(`carriers`) for a fresh one. A crash mid-download leaves the file `queued`: the next run fetches it
again, and only `mark_done` — called after `MediaStore` has renamed the checked file into place —
counts it as downloaded.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from datetime import datetime, timedelta

from storage.dialect import dialect_of
from storage.records import Media, MediaStatus, PostFile, QueuedFile, iso
from storage.retry import doubling

__all__ = ["RETRY_BASE_S", "RETRY_CAP_S", "carriers", "claim_due", "downloads_saved", "files_by_id",
           "files_of_post", "link_media", "mark_done", "mark_failed", "mark_skipped", "media_status",
           "record_run", "requeue", "retry_delay", "stored_file_id"]

RETRY_BASE_S = 60.0
RETRY_CAP_S = 3600.0
ERROR_MAX = 500  # characters of a failure's reason kept


def retry_delay(attempts: int) -> timedelta:
    """How long a file waits after its `attempts`-th failed download: 1, 2, 4… minutes, at most an hour
    (`storage.retry.doubling`, the rule channel polls and alert sends follow)."""
    return doubling(attempts, RETRY_BASE_S, RETRY_CAP_S)


_QUEUE = ("tg_files (file_id, kind, dc_id, size, mime_type, file_name, state, queued_at, channel_id,"
          " message_id)", "VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)")
"""INSERT OR IGNORE (`Dialect.insert_or_ignore`) of a file not queued yet."""
_LINK = """INSERT INTO message_media (channel_id, message_id, file_id, position, linked_at)
    VALUES (?, ?, ?, 0, ?)
    ON CONFLICT (channel_id, message_id, file_id) DO UPDATE SET replaced_at = NULL, position = 0"""


def stored_file_id(media_json: str | None) -> int | None:
    """The Telegram file a stored message's `media` JSON names (its current link), if any."""
    if not media_json or '"file_id"' not in media_json:
        return None
    return json.loads(media_json).get("file_id")


def link_media(conn: sqlite3.Connection, channel_id: int, message_id: int, media: Media | None, now: str,
               *, new: bool) -> bool:
    """Queue the message's file (unless it is queued or fetched already) and link the message to it.

    `new`: the message was stored just now, so it has no link yet. For a stored message, a file other
    than its current one is a media-only edit: the old link gets `replaced_at` and stays. Media with
    no file id (a Desktop export, a poll) changes nothing. Returns whether the current file changed.
    """
    if media is None or media.file_id is None:
        return False
    file_id = media.file_id
    if not new:
        current = conn.execute(
            "SELECT file_id FROM message_media WHERE channel_id = ? AND message_id = ? AND position = 0"
            " AND replaced_at IS NULL", (channel_id, message_id),
        ).fetchone()
        if current is not None:
            if current[0] == file_id:
                return False
            conn.execute(
                "UPDATE message_media SET replaced_at = ? WHERE channel_id = ? AND message_id = ?"
                " AND file_id = ?", (now, channel_id, message_id, current[0]),
            )
    webpage = media.kind == "webpage"  # its file is the preview photo
    conn.execute(dialect_of(conn).insert_or_ignore(*_QUEUE), (
        file_id, "photo" if webpage else media.kind, media.dc_id, None if webpage else media.size,
        None if webpage else media.mime_type, None if webpage else media.file_name, now,
        channel_id, message_id,
    ))
    conn.execute(_LINK, (channel_id, message_id, file_id, now))
    return not new


def claim_due(conn: sqlite3.Connection, now: datetime, limit: int,
              file_ids: Collection[int] | None = None,
              channel_ids: Collection[int] | None = None) -> list[QueuedFile]:
    """Files to download now, oldest queued first: queued ones, and failed ones past their retry time;
    only those of `file_ids` when given (`chanwatch media fetch`), only those queued from a message of
    `channel_ids` when given (a reader among several downloads its own channels' files).

    Claiming writes nothing: one worker downloads, and a file it did not finish is simply still due.
    """
    only, args = "", [iso(now)]
    for column, values in (("file_id", file_ids), ("channel_id", channel_ids)):
        if values is not None:
            only += f" AND {column} IN ({', '.join('?' * len(values))})" if values else " AND 1 = 0"
            args += list(values)
    rows = conn.execute(
        f"""SELECT file_id, kind, dc_id, size, mime_type, file_name, channel_id, message_id, attempts
           FROM tg_files WHERE state IN ('queued', 'failed') AND (state = 'queued' OR retry_at <= ?){only}
           ORDER BY queued_at, file_id LIMIT ?""",
        (*args, limit),
    )
    return [QueuedFile(*row) for row in rows]


def requeue(conn: sqlite3.Connection, file_ids: Collection[int]) -> int:
    """Queue skipped or failed files again, due now whatever their retry time (a fetch on demand, which
    ignores the policy); queued and done files are left as they are. Returns how many changed."""
    changed = 0
    for file_id in file_ids:
        changed += conn.execute(
            "UPDATE tg_files SET state = 'queued', retry_at = NULL WHERE file_id = ?"
            " AND state IN ('skipped', 'failed')", (file_id,),
        ).rowcount
    return changed


def carriers(conn: sqlite3.Connection, file_id: int) -> list[tuple[int, int]]:
    """(channel_id, message_id) of the messages that carry the file now, to re-read for a fresh file
    reference: the queue row's own message first, then messages not deleted, oldest first."""
    rows = conn.execute(
        """SELECT mm.channel_id, mm.message_id FROM message_media mm
           JOIN messages m ON m.channel_id = mm.channel_id AND m.message_id = mm.message_id
           JOIN tg_files f ON f.file_id = mm.file_id
           WHERE mm.file_id = ? AND mm.replaced_at IS NULL
           ORDER BY (mm.channel_id, mm.message_id) != (f.channel_id, f.message_id), m.deleted_at IS NOT NULL,
                    m.date, mm.channel_id, mm.message_id""",
        (file_id,),
    )
    return [(row[0], row[1]) for row in rows]


def mark_done(conn: sqlite3.Connection, file_id: int, sha256: str, size: int, mime: str | None, path: str,
              now: datetime) -> None:
    """The file is in the media store under `path` (relative to its root): record the content (once
    per distinct content) and end the file's queue entry."""
    stamp = iso(now)
    conn.execute(
        dialect_of(conn).insert_or_ignore("media_files (sha256, size, mime_type, path, stored_at)",
                                          "VALUES (?, ?, ?, ?, ?)"),
        (sha256, size, mime, path, stamp),
    )
    conn.execute(
        """UPDATE tg_files SET state = 'done', sha256 = ?, done_at = ?, last_error = NULL, retry_at = NULL
           WHERE file_id = ?""",
        (sha256, stamp, file_id),
    )


def mark_failed(conn: sqlite3.Connection, file_id: int, reason: str, now: datetime) -> None:
    """A download failed: count it, keep why, and wait `retry_delay(attempts)` before the next try."""
    row = conn.execute("SELECT attempts FROM tg_files WHERE file_id = ?", (file_id,)).fetchone()
    if row is None:
        return
    attempts = row[0] + 1
    conn.execute(
        "UPDATE tg_files SET state = 'failed', attempts = ?, last_error = ?, retry_at = ? WHERE file_id = ?",
        (attempts, reason[:ERROR_MAX], iso(now + retry_delay(attempts)), file_id),
    )


def mark_skipped(conn: sqlite3.Connection, file_id: int, reason: str) -> None:
    """The file will not be downloaded (the policy's kinds or size cap, say): never due again."""
    conn.execute(
        "UPDATE tg_files SET state = 'skipped', last_error = ?, retry_at = NULL WHERE file_id = ?",
        (reason[:ERROR_MAX], file_id),
    )


def media_status(conn: sqlite3.Connection) -> MediaStatus:
    """Telegram files by state, the distinct files and bytes the media store holds, and how the
    worker's last run ended (`record_run`)."""
    counts = dict(conn.execute("SELECT state, count(*) FROM tg_files GROUP BY state").fetchall())
    files, size = conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM media_files").fetchone()
    run = conn.execute("SELECT stopped, full_since FROM media_runs WHERE id = 1").fetchone()
    return MediaStatus(
        queued=counts.get("queued", 0), done=counts.get("done", 0), skipped=counts.get("skipped", 0),
        failed=counts.get("failed", 0), stored_files=files, stored_bytes=size,
        stopped=run[0] if run else None, full_since=run[1] if run else None,
    )


def record_run(conn: sqlite3.Connection, finished: datetime, stopped: str | None, disk_full: bool) -> None:
    """The media worker's run ended: `stopped` says why it ended early (None: it ran to the end),
    `disk_full` whether the media disk was full. `full_since` keeps the first full-disk run's end until
    a run runs to the end, so /status can say since when downloads are paused."""
    stamp = iso(finished)
    conn.execute(
        """INSERT INTO media_runs (id, finished_at, stopped, disk_full, full_since)
           VALUES (1, :at, :stopped, :full, CASE WHEN :full = 1 THEN :at END)
           ON CONFLICT (id) DO UPDATE SET finished_at = :at, stopped = :stopped, disk_full = :full,
               full_since = CASE WHEN :stopped IS NULL THEN NULL
                                 WHEN :full = 1 THEN coalesce(media_runs.full_since, :at)
                                 ELSE media_runs.full_since END""",
        {"at": stamp, "stopped": stopped, "full": int(disk_full)},
    )


def downloads_saved(conn: sqlite3.Connection) -> int:
    """Downloads the queue never made: messages carrying a downloaded file besides the message it was
    queued from (forwards and re-posts of the same Telegram file)."""
    return conn.execute(
        """SELECT count(*) FROM message_media mm JOIN tg_files f ON f.file_id = mm.file_id
           WHERE f.state = 'done' AND (mm.channel_id, mm.message_id) != (f.channel_id, f.message_id)"""
    ).fetchone()[0]


def files_of_post(conn: sqlite3.Connection, post_id: int) -> list[PostFile]:
    """The files a post's messages carry now (deleted messages too: the archive keeps them), each once,
    in message order; with their place in the media store once downloaded."""
    rows = conn.execute(
        """SELECT f.file_id, f.kind, f.state, f.size, f.mime_type, f.file_name, f.sha256, mf.path
           FROM messages m
           JOIN message_media mm ON mm.channel_id = m.channel_id AND mm.message_id = m.message_id
                AND mm.replaced_at IS NULL
           JOIN tg_files f ON f.file_id = mm.file_id
           LEFT JOIN media_files mf ON mf.sha256 = f.sha256
           WHERE m.post_id = ? ORDER BY m.date, m.channel_id, m.message_id, mm.position""",
        (post_id,),
    )
    seen: dict[int, PostFile] = {}
    for row in rows:
        seen.setdefault(row[0], PostFile(*row))
    return list(seen.values())


def files_by_id(conn: sqlite3.Connection, file_ids: Collection[int]) -> list[PostFile]:
    """The files `file_ids` names that the queue knows, in that order, with their place in the store."""
    found: dict[int, PostFile] = {}
    for file_id in file_ids:
        row = conn.execute(
            """SELECT f.file_id, f.kind, f.state, f.size, f.mime_type, f.file_name, f.sha256, mf.path
               FROM tg_files f LEFT JOIN media_files mf ON mf.sha256 = f.sha256 WHERE f.file_id = ?""",
            (file_id,),
        ).fetchone()
        if row is not None:
            found[row[0]] = PostFile(*row)
    return list(found.values())
