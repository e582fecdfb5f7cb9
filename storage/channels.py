"""The `channels` table, owned here: every statement on it lives in this module.

A row is a channel we know of: watched (polled) or only seen as a forward origin. The poller reads
the watched rows and marks each poll's outcome (ok, idle, failed with backoff, deferred by a flood
wait); the resolver stores what Telegram answered for a name; `chanwatch channels` and /watch add
names offline as placeholders (a negative id, no access hash) that the daemon resolves later, and
the web reader files channels it knows only by username under placeholders too (`storage.identity`
adopts them into the real id); the backfill records how far back it has read. Ingest creates rows
for the channels its batches name.

Every function takes a plain `sqlite3.Connection` and runs inside the caller's transaction (see
`storage.database`), so a page of messages and the channel's new cursor or status commit together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from storage.dialect import dialect_of
from storage.ingest_rows import chunks
from storage.records import Channel, ChannelState, WatchedChannel, iso, parse_iso
from storage.retry import doubling

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "PLACEHOLDER_DETAIL",
    "absorb_placeholder",
    "add_placeholder",
    "add_watch_name",
    "backfill_done",
    "channel_by_username",
    "backoff",
    "channel_listing",
    "channel_names",
    "defer_unresolved",
    "fail_unresolved",
    "forget_placeholder",
    "load_channel",
    "load_watched",
    "mark_backfill_done",
    "mark_deferred",
    "mark_failed",
    "mark_idle",
    "mark_polled",
    "pending_names",
    "placeholder_ids",
    "raise_cursor",
    "recent_window",
    "record_backfill_page",
    "set_source",
    "set_status",
    "set_watched",
    "store_resolved",
    "unwatch_name",
    "upsert_channel",
]

BACKOFF_BASE = 60.0  # seconds after the first consecutive failure; doubles each time
BACKOFF_CAP = 3600.0  # never wait more than an hour between attempts
PLACEHOLDER_DETAIL = "added by name; resolved when the daemon starts"


def backoff(failures: int) -> timedelta:
    """How long to leave a channel alone after its `failures`-th consecutive failure.

    1, 2, 4, 8, 16, 32 minutes, then capped at one hour: a channel that went private is retried
    hourly (it may come back), without costing a request every cycle.
    """
    return doubling(failures, BACKOFF_BASE, BACKOFF_CAP)


# --- rows the batches name ------------------------------------------------------------------------


def upsert_channel(conn: sqlite3.Connection, channel: Channel, now: str) -> None:
    """Create or refresh a channel row; known fields are never overwritten with unknowns."""
    conn.execute(
        f"""INSERT INTO channels (id, username, title, access_hash, watched, added_at)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET
             username = coalesce(excluded.username, channels.username),
             title = coalesce(excluded.title, channels.title),
             access_hash = coalesce(excluded.access_hash, channels.access_hash),
             watched = {dialect_of(conn).greatest}(channels.watched, excluded.watched)""",
        (channel.id, channel.username, channel.title, channel.access_hash, int(channel.watched), now),
    )


def raise_cursor(conn: sqlite3.Connection, channel_id: int, cursor: int) -> None:
    """The highest message id stored for the channel is at least `cursor` (it never goes down)."""
    conn.execute(f"UPDATE channels SET cursor = {dialect_of(conn).greatest}(cursor, ?) WHERE id = ?",
                 (cursor, channel_id))


def channel_names(conn: sqlite3.Connection, channel_id: int) -> tuple[str | None, str | None] | None:
    """(username, title) of a stored channel, or None when the archive does not know it."""
    row = conn.execute("SELECT username, title FROM channels WHERE id = ?", (channel_id,)).fetchone()
    return (row[0], row[1]) if row else None


# --- reading rows for the poller ------------------------------------------------------------------

_ACCOUNT_HASH = """CASE WHEN CAST(:account AS BIGINT) IS NULL THEN c.access_hash ELSE coalesce(
    (SELECT a.access_hash FROM account_channels a WHERE a.channel_id = c.id AND a.account_id = :account),
    CASE WHEN NOT EXISTS (SELECT 1 FROM account_channels a WHERE a.channel_id = c.id) THEN c.access_hash END)
    END"""
"""The access hash the account `:account` reads channel `c` with: its own (`account_channels`); for a
channel no account is recorded for yet (resolved before schema v15), the one stored with the channel;
else NULL, so that account resolves the channel itself. Without an account: the stored one."""

_STATE_COLUMNS = (
    f"c.id, c.username, c.title, {_ACCOUNT_HASH}, c.cursor, c.status, c.failures, c.retry_at, c.watched, "
    "c.backfill_before, c.backfill_done, c.source"
)


def _state(row: sqlite3.Row | tuple[Any, ...]) -> ChannelState:
    return ChannelState(
        id=row[0], username=row[1], title=row[2], access_hash=row[3], cursor=row[4] or 0,
        status=row[5], failures=row[6] or 0, retry_at=parse_iso(row[7]), watched=bool(row[8]),
        backfill_before=row[9], backfill_done=bool(row[10]), source=row[11],
    )


def load_watched(conn: sqlite3.Connection, account_id: int | None = None) -> list[ChannelState]:
    """Every watched channel, placeholders included (they have no access hash yet), by id; with
    `account_id`, each with the access hash that account reads it with (`_ACCOUNT_HASH`)."""
    rows = conn.execute(f"SELECT {_STATE_COLUMNS} FROM channels c WHERE c.watched = 1 ORDER BY c.id",
                        {"account": account_id}).fetchall()
    return [_state(r) for r in rows]


def load_channel(conn: sqlite3.Connection, *, channel_id: int | None = None,
                 username: str | None = None, account_id: int | None = None) -> ChannelState | None:
    """One stored channel by id or by (case-insensitive) username, or None; with `account_id`, with
    the access hash that account reads it with.

    Of several rows with one username (a placeholder and the resolved channel, or a renamed
    channel's old row), the resolved, watched one wins.
    """
    if channel_id is not None:
        row = conn.execute(f"SELECT {_STATE_COLUMNS} FROM channels c WHERE c.id = :id",
                           {"account": account_id, "id": channel_id}).fetchone()
    else:
        row = conn.execute(
            f"""SELECT {_STATE_COLUMNS} FROM channels c WHERE lower(c.username) = lower(:username)
                ORDER BY c.access_hash IS NULL, c.watched DESC LIMIT 1""",
            {"account": account_id, "username": username},
        ).fetchone()
    return _state(row) if row else None


def recent_window(conn: sqlite3.Connection, channel_id: int, window_ids: int, since: str
                  ) -> dict[int, str | None]:
    """{message_id: stored edit_date} of a channel's last `window_ids` live messages and those dated
    since `since`: what a re-check reads again for edits and deletions."""
    rows = conn.execute(
        """SELECT message_id, edit_date FROM (
               SELECT message_id, edit_date FROM messages WHERE channel_id = :c AND deleted_at IS NULL
               ORDER BY message_id DESC LIMIT :n) AS newest
           UNION
           SELECT message_id, edit_date FROM messages
           WHERE channel_id = :c AND deleted_at IS NULL AND date >= :since""",
        {"c": channel_id, "n": window_ids, "since": since},
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def stored_contents(conn: sqlite3.Connection, channel_id: int, message_ids: Sequence[int]
                    ) -> dict[int, tuple[str, str, str | None, int | None]]:
    """{message_id: (text, entities JSON, edit_date, views)} of the given stored messages: what a reader
    without edit dates (the web preview) compares a re-read with to tell an edit, or a moved count (an
    engagement reading), from an unchanged post."""
    found: dict[int, tuple[str, str, str | None, int | None]] = {}
    for chunk in chunks(list(message_ids)):
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(
                f"SELECT message_id, text, entities, edit_date, views FROM messages WHERE channel_id = ?"
                f" AND message_id IN ({marks})", (channel_id, *chunk)):
            found[row[0]] = (row[1], row[2], row[3], row[4])
    return found


def set_subscribers(conn: sqlite3.Connection, channel_id: int, subscribers: int, now: str) -> None:
    """The channel's subscriber count as read at `now` (from the web preview: approximate)."""
    conn.execute("UPDATE channels SET subscribers = ?, subscribers_at = ? WHERE id = ?",
                 (subscribers, now, channel_id))


def message_stored(conn: sqlite3.Connection, channel_id: int, message_id: int) -> bool:
    """Whether this message of this channel is in the archive."""
    return conn.execute("SELECT 1 FROM messages WHERE channel_id = ? AND message_id = ?",
                        (channel_id, message_id)).fetchone() is not None


def is_watched(conn: sqlite3.Connection, channel_id: int) -> bool:
    """Whether the channel is watched (its own reader archives it)."""
    row = conn.execute("SELECT watched FROM channels WHERE id = ?", (channel_id,)).fetchone()
    return bool(row and row[0])


# --- poll outcomes --------------------------------------------------------------------------------


def mark_polled(conn: sqlite3.Connection, channel_id: int, now: datetime) -> None:
    """A poll read the channel to its cursor: ok, polled now, failures and backoff cleared."""
    stamp = iso(now)
    conn.execute(
        """UPDATE channels SET last_poll = ?, last_success = ?, status = 'ok', status_detail = NULL,
           failures = 0, retry_at = NULL WHERE id = ?""",
        (stamp, stamp, channel_id),
    )


def mark_idle(conn: sqlite3.Connection, channels: Sequence[Channel], now: str) -> None:
    """Channels checked and found without news: ok, polled now; names refreshed from the answer."""
    conn.executemany(
        """UPDATE channels SET username = coalesce(?, username), title = coalesce(?, title),
           last_poll = ?, last_success = ?, status = 'ok', status_detail = NULL, failures = 0,
           retry_at = NULL WHERE id = ?""",
        [(ch.username, ch.title, now, now, ch.id) for ch in channels],
    )


def mark_failed(conn: sqlite3.Connection, channel_id: int, status: str, detail: str, now: str,
                retry_at: str) -> int:
    """Record a failure: status, detail, one more consecutive failure, and the backoff; returns the
    number of consecutive failures now."""
    conn.execute(
        """UPDATE channels SET status = ?, status_detail = ?, failures = failures + 1, last_poll = ?,
           retry_at = ? WHERE id = ?""",
        (status, detail, now, retry_at, channel_id),
    )
    return conn.execute("SELECT failures FROM channels WHERE id = ?", (channel_id,)).fetchone()[0]


def mark_deferred(conn: sqlite3.Connection, channel_id: int, detail: str, now: str, retry_at: str) -> None:
    """A long flood wait: keep the status, come back when Telegram allows."""
    conn.execute(
        "UPDATE channels SET status_detail = ?, last_poll = ?, retry_at = ? WHERE id = ?",
        (detail, now, retry_at, channel_id),
    )


# --- resolving names ------------------------------------------------------------------------------


def store_resolved(conn: sqlite3.Connection, channel: Channel, status: str, detail: str | None,
                   now: str) -> None:
    """What ResolveUsername answered: the channel (id, access hash), watched, with its status."""
    upsert_channel(conn, channel, now)
    conn.execute("UPDATE channels SET watched = 1, status = ?, status_detail = ? WHERE id = ?",
                 (status, detail, channel.id))


def set_watched(conn: sqlite3.Connection, channel_id: int) -> None:
    """Poll this (stored) channel from now on."""
    conn.execute("UPDATE channels SET watched = 1 WHERE id = ?", (channel_id,))


def set_status(conn: sqlite3.Connection, channel_id: int, status: str, detail: str | None) -> None:
    """A status learnt outside a poll (e.g. joining found the channel private)."""
    conn.execute("UPDATE channels SET status = ?, status_detail = ? WHERE id = ?",
                 (status, detail, channel_id))


def forget_placeholder(conn: sqlite3.Connection, username: str) -> None:
    """A name was resolved: its placeholder rows go (the real channel's row took over), except one
    that still holds messages or is named as a forward's origin (`storage.identity.adopt` moves
    those first; a row it did not adopt keeps the archive's references whole)."""
    conn.execute(f"DELETE FROM channels WHERE id < 0 AND lower(username) = lower(?) AND {_UNUSED}",
                 (username,))


_UNUSED = """NOT EXISTS (SELECT 1 FROM messages m WHERE m.channel_id = channels.id)
    AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.fwd_from_type = 'channel'
                    AND m.fwd_from_id = channels.id)"""
"""A placeholder row nothing stored refers to (forward origins are few and found by a scan: this
runs when a name resolves or is unwatched, not per message)."""


def placeholder_ids(conn: sqlite3.Connection, username: str) -> list[int]:
    """The placeholder rows (negative ids) standing for this (case-insensitive) username."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM channels WHERE id < 0 AND lower(username) = lower(?) ORDER BY id DESC", (username,))]


def channel_by_username(conn: sqlite3.Connection, username: str) -> int | None:
    """The id the archive files this (case-insensitive) username under: a real channel before a
    placeholder, a resolved and watched one first; None when no row has it."""
    row = conn.execute(
        "SELECT id FROM channels WHERE lower(username) = lower(?)"
        " ORDER BY id < 0, access_hash IS NULL, watched DESC, id DESC LIMIT 1", (username,)).fetchone()
    return row[0] if row else None


def _next_placeholder(conn: sqlite3.Connection) -> int:
    least = dialect_of(conn).least
    return conn.execute(f"SELECT {least}(0, coalesce(min(id), 0)) - 1 FROM channels").fetchone()[0]


def add_placeholder(conn: sqlite3.Connection, username: str, now: datetime, *, watched: bool = False,
                    detail: str | None = None) -> int:
    """A new placeholder row for a name the archive knows no id of (a negative id, no access hash)."""
    placeholder = _next_placeholder(conn)
    conn.execute(
        "INSERT INTO channels (id, username, watched, status, status_detail, added_at)"
        " VALUES (?, ?, ?, 'ok', ?, ?)", (placeholder, username, int(watched), detail, iso(now)))
    return placeholder


def absorb_placeholder(conn: sqlite3.Connection, placeholder_id: int, channel_id: int) -> None:
    """The real channel's row takes over the placeholder's progress, then the placeholder row goes.

    Watched if either was, the placeholder's `source` if the real row has none, the later poll
    times, the earlier `added_at`, the lower `backfill_before` and either `backfill_done`. The
    cursor ("every id up to here is stored") is the higher of the two only when the row with the
    higher cursor holds messages reaching down to the other's cursor (no gap between them) or the
    other never polled; else the lower, so the poller reads the gap (re-reading is idempotent). The
    real row's sweep, else the placeholder's. Call with the messages not yet moved.
    """
    d = dialect_of(conn)  # scalar max/min below: of non-NULL values, or NULLs caught by coalesce
    rows = {r[0]: r for r in conn.execute(
        f"SELECT c.id, c.cursor, coalesce({d.least}(c.backfill_before, (SELECT min(message_id)"
        " FROM messages m WHERE m.channel_id = c.id)), c.backfill_before, (SELECT min(message_id)"
        " FROM messages m WHERE m.channel_id = c.id)) FROM channels c WHERE c.id IN (?, ?)",
        (placeholder_id, channel_id))}
    if placeholder_id not in rows or channel_id not in rows:
        return
    (_, low_cursor, _), (_, high_cursor, high_floor) = sorted(
        (rows[placeholder_id], rows[channel_id]), key=lambda r: r[1])
    gapless = low_cursor == 0 or high_floor is None or high_floor <= low_cursor + 1
    conn.execute(
        f"""UPDATE channels SET
             watched = {d.greatest}(channels.watched, p.watched),
             source = coalesce(channels.source, p.source),
             cursor = :cursor,
             last_poll = nullif({d.greatest}(coalesce(channels.last_poll, ''),
                                    coalesce(p.last_poll, '')), ''),
             last_success = nullif({d.greatest}(coalesce(channels.last_success, ''),
                                       coalesce(p.last_success, '')), ''),
             added_at = {d.least}(coalesce(channels.added_at, p.added_at),
                                  coalesce(p.added_at, channels.added_at)),
             backfill_before = {d.least}(coalesce(channels.backfill_before, p.backfill_before),
                                   coalesce(p.backfill_before, channels.backfill_before)),
             backfill_done = {d.greatest}(channels.backfill_done, p.backfill_done),
             sweep_before = CASE WHEN channels.sweep_started IS NULL THEN p.sweep_before
                            ELSE channels.sweep_before END,
             sweep_started = coalesce(channels.sweep_started, p.sweep_started)
           FROM (SELECT * FROM channels WHERE id = :placeholder) AS p
           WHERE channels.id = :channel""",
        {"cursor": high_cursor if gapless else low_cursor, "placeholder": placeholder_id,
         "channel": channel_id})
    conn.execute("DELETE FROM channels WHERE id = ?", (placeholder_id,))


def set_source(conn: sqlite3.Connection, channel_id: int, source: str | None) -> None:
    """Read this channel through 'api' or 'web' (None: the CHANWATCH_SOURCE default)."""
    if source not in (None, "api", "web"):
        raise ValueError(f"source must be 'api', 'web' or None, not {source!r}")
    conn.execute("UPDATE channels SET source = ? WHERE id = ?", (source, channel_id))


def defer_unresolved(conn: sqlite3.Connection, username: str, detail: str | None,
                     retry_at: datetime | None) -> None:
    """Resolving a name met a long flood wait: try again at `retry_at`, status unchanged."""
    conn.execute(
        "UPDATE channels SET retry_at = ?, status_detail = ? WHERE watched = 1"
        " AND access_hash IS NULL AND lower(username) = lower(?)",
        (iso(retry_at), detail, username))


def fail_unresolved(conn: sqlite3.Connection, username: str, status: str, detail: str,
                    now: datetime) -> None:
    """A name could not be resolved (no such channel, private, …): say so and back off."""
    rows = conn.execute(
        "SELECT id, failures FROM channels WHERE watched = 1 AND access_hash IS NULL"
        " AND lower(username) = lower(?)", (username,)).fetchall()
    for channel_id, failures in rows:
        conn.execute(
            "UPDATE channels SET status = ?, status_detail = ?, failures = ?, last_poll = ?, retry_at = ?"
            " WHERE id = ?",
            (status, detail, failures + 1, iso(now), iso(now + backoff(failures + 1)), channel_id))


# --- the watch list -------------------------------------------------------------------------------


def add_watch_name(conn: sqlite3.Connection, username: str, now: datetime) -> str:
    """Watch a channel by name without touching Telegram; returns what happened.

    A channel already stored is marked watched ("watched", or "already watched"). An unknown name
    becomes a placeholder row (a negative id, no access hash) that the daemon resolves at start or
    before its next poll, then replaces with the real channel ("added").
    """
    rows = conn.execute("SELECT id, watched FROM channels WHERE lower(username) = lower(?)"
                        " ORDER BY access_hash IS NULL, id DESC", (username,)).fetchall()
    if rows:
        if any(r[1] for r in rows):
            return "already watched"
        set_watched(conn, rows[0][0])
        return "watched"
    add_placeholder(conn, username, now, watched=True, detail=PLACEHOLDER_DETAIL)
    return "added"


def unwatch_name(conn: sqlite3.Connection, username: str) -> int:
    """Stop watching a channel (its archived posts stay); placeholders holding nothing are deleted,
    others (read by web) stay unwatched. Rows changed."""
    deleted = conn.execute(f"DELETE FROM channels WHERE id < 0 AND lower(username) = lower(?) AND {_UNUSED}",
                           (username,)).rowcount
    updated = conn.execute("UPDATE channels SET watched = 0 WHERE watched = 1 AND lower(username) = lower(?)",
                           (username,)).rowcount
    return deleted + updated


def read_by_web(conn: sqlite3.Connection, names: Sequence[str], default: str) -> set[str]:
    """Of `names`, those read by the web preview (lower-cased): a row's own `source`, else `default`
    (also for a name the archive does not know yet)."""
    own: dict[str, str | None] = {}
    for username, source in conn.execute(
            "SELECT lower(username), source FROM channels WHERE username IS NOT NULL ORDER BY id < 0"):
        own.setdefault(username, source)  # a resolved row (positive id) before its placeholder
    return {n.lower().lstrip("@") for n in names if (own.get(n.lower().lstrip("@")) or default) == "web"}


def pending_names(conn: sqlite3.Connection, due_at: str | None, default_source: str = "api", *,
                  account_id: int | None = None, channel_ids: Collection[int] | None = None) -> list[str]:
    """Watched names with no access hash yet that the reading account resolves (not those read by their
    web preview: their own `source`, else `default_source`); with `due_at`, only those not backing off.
    With `account_id`, "no access hash" is that account's (`_ACCOUNT_HASH`: a channel another reader's
    account resolved is resolved again by this one); with `channel_ids`, only those channels (a reader
    among several resolves the channels it holds)."""
    sql = (f"SELECT c.username FROM channels c WHERE c.watched = 1 AND ({_ACCOUNT_HASH}) IS NULL"
           " AND c.username IS NOT NULL AND coalesce(c.source, :source) != 'web'")
    args: dict[str, Any] = {"account": account_id, "source": default_source}
    if due_at is not None:
        sql += " AND (c.retry_at IS NULL OR c.retry_at <= :due)"
        args["due"] = due_at
    if channel_ids is not None:
        marks = [f":c{i}" for i in range(len(channel_ids))]
        sql += f" AND c.id IN ({', '.join(marks)})" if marks else " AND 1 = 0"
        args.update({m[1:]: cid for m, cid in zip(marks, channel_ids, strict=True)})
    return [r[0] for r in conn.execute(sql + " ORDER BY c.id", args).fetchall()]


def channel_listing(conn: sqlite3.Connection, *, include_unwatched: bool = False) -> list[WatchedChannel]:
    """Channels with their status, message count, last post and last poll (watched ones by default),
    watched first, then by name: what `chanwatch channels list` and /channels show."""
    where = "" if include_unwatched else "WHERE c.watched = 1"
    rows = conn.execute(
        # per-channel subqueries use the (channel_id, message_id) primary key; a join + GROUP BY
        # over all messages took seconds on a million-message archive
        f"""SELECT c.id, c.username, c.title, c.watched, c.access_hash IS NOT NULL, c.status,
                   c.status_detail,
                   (SELECT count(*) FROM messages m WHERE m.channel_id = c.id),
                   (SELECT m.date FROM messages m WHERE m.channel_id = c.id
                    ORDER BY m.message_id DESC LIMIT 1),
                   c.last_poll, c.last_success, c.cursor, c.backfill_done, c.source
            FROM channels c
            {where}
            ORDER BY c.watched DESC, lower(coalesce(c.username, c.title, '')), c.id"""
    ).fetchall()
    return [WatchedChannel(r[0], r[1], r[2], bool(r[3]), bool(r[4]), r[5], r[6], r[7], r[8], r[9], r[10],
                           r[11], bool(r[12]), r[13]) for r in rows]


# --- backfill progress ----------------------------------------------------------------------------


def record_backfill_page(conn: sqlite3.Connection, channel_id: int, low: int, top: int, done: bool) -> None:
    """A backfill page from `top` down to `low` is stored: remember how far back it reached.

    The poll cursor is raised to `top` only when the backfill has come down to the cursor (or the
    channel was never polled), so a backfill stopped early never hides messages from the poller.
    """
    d = dialect_of(conn)
    conn.execute(
        f"""UPDATE channels SET
             backfill_before = {d.least}(coalesce(backfill_before, :low), :low),
             backfill_done = {d.greatest}(backfill_done, :done),
             cursor = CASE WHEN cursor = 0 OR :low <= cursor + 1 THEN {d.greatest}(cursor, :top)
                      ELSE cursor END
           WHERE id = :id""",
        {"low": low, "top": top, "done": int(done), "id": channel_id},
    )


def mark_backfill_done(conn: sqlite3.Connection, channel_id: int) -> None:
    """The backfill reached the channel's start (or its --since)."""
    conn.execute("UPDATE channels SET backfill_done = 1 WHERE id = ?", (channel_id,))


def backfill_done(conn: sqlite3.Connection, channel_id: int) -> bool:
    """Whether a backfill has reached the channel's start."""
    row = conn.execute("SELECT backfill_done FROM channels WHERE id = ?", (channel_id,)).fetchone()
    return bool(row and row[0])
