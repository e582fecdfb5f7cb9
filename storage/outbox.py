"""The alert outbox: which alerts are due, and recording that they were sent, failed or deferred.

Rows are written by the percolator (inside the ingest transaction) and read here by the dispatcher.
Plain synchronous functions on a `sqlite3.Connection`; run them with `Database.run` /
`Database.transaction`. An alert is *pending* while unsent and not given up; a failed send backs
off exponentially (30 s, 1 min, 2 min ... capped at 1 h) and after `MAX_ATTEMPTS` failures it is
given up: kept with its `last_error`, never retried again.

While no bot is configured, the daemon prints each pending alert in its log once (`unlogged`,
`mark_logged`: the `logged_at` column), and the alerts stay pending until a bot sends them.

Each row gets a `random_id` when a dispatcher first claims it for sending (`claim_random_ids`), never
changed after: every dispatcher sends the row's messages with ids derived from it, so when two send
the same row (a takeover), Telegram refuses the second copy (RANDOM_ID_DUPLICATE) and the chat gets it
once.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta

from storage.dialect import dialect_of
from storage.records import Alert, iso
from storage.retry import doubling

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "ERROR_CHARS",
    "MAX_ATTEMPTS",
    "backoff",
    "claim_random_ids",
    "counts",
    "new_random_id",
    "sent_delays",
    "defer",
    "expire_logged",
    "get_alerts",
    "mark_failed",
    "mark_logged",
    "mark_sent",
    "pending_digest",
    "pending_instant",
    "unlogged",
]

BACKOFF_BASE = 30.0  # seconds after the first failure; doubles with each further one
BACKOFF_CAP = 3600.0  # never more than an hour between attempts
MAX_ATTEMPTS = 10  # failures after which an alert is given up
ERROR_CHARS = 500  # last_error is kept this short

_COLUMNS = ("a.id, a.chat_id, a.post_id, a.rule_ids, a.created_at, a.sent_at, a.attempts, a.last_error,"
            " a.next_try_at, a.random_id")
_DUE = "a.sent_at IS NULL AND a.attempts < ? AND (a.next_try_at IS NULL OR a.next_try_at <= ?)"
_DELIVERABLE = "s.paused = 0 AND s.allowed = 1"


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after the `attempts`-th consecutive failure: 30 s doubling, cap 1 h."""
    return doubling(attempts, BACKOFF_BASE, BACKOFF_CAP)


def _rule_ids(value: str | None) -> tuple[int, ...]:
    try:
        items = json.loads(value or "[]")
    except ValueError:
        return ()
    return tuple(int(i) for i in items if isinstance(i, int) or (isinstance(i, str) and i.isdigit()))


def _alert(row: sqlite3.Row | tuple) -> Alert:
    return Alert(row[0], row[1], row[2], _rule_ids(row[3]), row[4], row[5], row[6], row[7], row[8], row[9])


def pending_instant(conn: sqlite3.Connection, now: datetime, limit: int = 100) -> list[Alert]:
    """Unsent, due alerts of chats in instant mode that are neither paused nor denied, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alerts a JOIN subscribers s ON s.chat_id = a.chat_id"
        f" WHERE {_DUE} AND s.mode = 'instant' AND {_DELIVERABLE} ORDER BY a.id LIMIT ?",
        (MAX_ATTEMPTS, iso(now), limit),
    ).fetchall()
    return [_alert(r) for r in rows]


def pending_digest(conn: sqlite3.Connection, chat_id: int, now: datetime) -> list[Alert]:
    """Unsent, due alerts of one digest-mode chat (none while it is paused or denied), oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alerts a JOIN subscribers s ON s.chat_id = a.chat_id"
        f" WHERE a.chat_id = ? AND {_DUE} AND s.mode = 'digest' AND {_DELIVERABLE} ORDER BY a.id",
        (chat_id, MAX_ATTEMPTS, iso(now)),
    ).fetchall()
    return [_alert(r) for r in rows]


def get_alerts(conn: sqlite3.Connection, chat_id: int | None = None) -> list[Alert]:
    """Every alert (of one chat), oldest first: for /status, the CLI and tests."""
    sql = f"SELECT {_COLUMNS} FROM alerts a"
    args: tuple[object, ...] = ()
    if chat_id is not None:
        sql += " WHERE a.chat_id = ?"
        args = (chat_id,)
    return [_alert(r) for r in conn.execute(sql + " ORDER BY a.id", args).fetchall()]


def new_random_id() -> int:
    """A fresh random signed 64-bit integer (TL's `long`): a row's `random_id`."""
    return secrets.randbits(64) - 2**63


def claim_random_ids(conn: sqlite3.Connection, alert_ids: Sequence[int]) -> dict[int, int]:
    """Each alert's `random_id` by id (call inside a transaction), a fresh one given to those without:
    a row's id is written once (`WHERE random_id IS NULL`), so two dispatchers claiming the same row
    at once both read the one that won. Unknown ids are left out."""
    ids = list(dict.fromkeys(alert_ids))
    found: dict[int, int | None] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        found.update((r[0], r[1]) for r in conn.execute(
            f"SELECT id, random_id FROM alerts WHERE id IN ({marks})", chunk))
    missing = [alert_id for alert_id, value in found.items() if value is None]
    for alert_id in missing:
        conn.execute("UPDATE alerts SET random_id = ? WHERE id = ? AND random_id IS NULL",
                     (new_random_id(), alert_id))
    for alert_id in missing:
        found[alert_id] = conn.execute("SELECT random_id FROM alerts WHERE id = ?", (alert_id,)).fetchone()[0]
    return {alert_id: int(value) for alert_id, value in found.items() if value is not None}


def mark_sent(conn: sqlite3.Connection, alert_ids: Sequence[int], now: datetime) -> None:
    """Record that these alerts reached their chat (an alert already marked keeps its first time)."""
    _mark(conn, "sent_at = ?, next_try_at = NULL", "sent_at IS NULL", alert_ids, iso(now))


def mark_failed(conn: sqlite3.Connection, alert_id: int, error: str, now: datetime) -> None:
    """Count a failed send: attempts + 1, the error kept, next try after `backoff` (or given up)."""
    row = conn.execute("SELECT attempts FROM alerts WHERE id = ? AND sent_at IS NULL", (alert_id,)).fetchone()
    if row is None or row[0] >= MAX_ATTEMPTS:  # unknown, sent, or already given up
        return
    attempts = row[0] + 1
    next_try = None if attempts >= MAX_ATTEMPTS else iso(now + backoff(attempts))
    conn.execute(
        "UPDATE alerts SET attempts = ?, last_error = ?, next_try_at = ? WHERE id = ?",
        (attempts, error[:ERROR_CHARS], next_try, alert_id),
    )


def defer(conn: sqlite3.Connection, alert_ids: Sequence[int], until: datetime,
          reason: str | None = None) -> None:
    """Hold unsent alerts until `until` without counting a failure (Telegram asked us to wait)."""
    for alert_id in dict.fromkeys(alert_ids):
        conn.execute(
            "UPDATE alerts SET next_try_at = ?, last_error = COALESCE(?, last_error)"
            " WHERE id = ? AND sent_at IS NULL",
            (iso(until), reason[:ERROR_CHARS] if reason else None, alert_id),
        )


def unlogged(conn: sqlite3.Connection, limit: int = 100) -> list[Alert]:
    """Pending alerts (unsent, not given up) of chats neither paused nor denied that were never logged,
    oldest first: what the daemon without a bot prints, once each."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alerts a JOIN subscribers s ON s.chat_id = a.chat_id"
        f" WHERE a.logged_at IS NULL AND a.sent_at IS NULL AND a.attempts < ? AND {_DELIVERABLE}"
        " ORDER BY a.id LIMIT ?",
        (MAX_ATTEMPTS, limit),
    ).fetchall()
    return [_alert(r) for r in rows]


def mark_logged(conn: sqlite3.Connection, alert_ids: Sequence[int], now: datetime) -> None:
    """Record that these alerts were printed in the log (a logged alert keeps its first time)."""
    _mark(conn, "logged_at = ?", "logged_at IS NULL", alert_ids, iso(now))


def _mark(conn: sqlite3.Connection, assignment: str, unless: str, alert_ids: Sequence[int], value: object
          ) -> None:
    """`UPDATE alerts SET assignment` (its one `?` = `value`) for these ids where `unless` holds, 500
    ids a statement: a batch of marks is a few statements, not one per alert."""
    ids = list(dict.fromkeys(alert_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        conn.execute(f"UPDATE alerts SET {assignment} WHERE {unless} AND id IN ({marks})", (value, *chunk))


def expire_logged(conn: sqlite3.Connection, created_before: datetime, reason: str) -> int:
    """Give up the alerts that waited in the log for a bot since before `created_before` (pending,
    logged, created earlier): kept with `reason` as their error, never sent. So a bot configured
    weeks later does not flood its chats with stale alerts. Returns how many."""
    return conn.execute(
        "UPDATE alerts SET attempts = ?, last_error = ?, next_try_at = NULL"
        " WHERE sent_at IS NULL AND attempts < ? AND logged_at IS NOT NULL AND created_at < ?",
        (MAX_ATTEMPTS, reason[:ERROR_CHARS], MAX_ATTEMPTS, iso(created_before)),
    ).rowcount


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """{"pending": unsent and still tried, "sent": delivered, "failed": given up} for /status."""
    row = conn.execute(
        "SELECT coalesce(sum(CASE WHEN sent_at IS NULL AND attempts < ? THEN 1 ELSE 0 END), 0),"
        " coalesce(sum(CASE WHEN sent_at IS NOT NULL THEN 1 ELSE 0 END), 0),"
        " coalesce(sum(CASE WHEN sent_at IS NULL AND attempts >= ? THEN 1 ELSE 0 END), 0) FROM alerts",
        (MAX_ATTEMPTS, MAX_ATTEMPTS),
    ).fetchone()
    return {"pending": row[0], "sent": row[1], "failed": row[2]}


def sent_delays(conn: sqlite3.Connection, since: datetime | None = None) -> list[float]:
    """Seconds from the post to its alert, for sent alerts made when their post was first stored: the
    alert's `sent_at` less the date of the message whose ingest made it (its `first_seen` is the
    alert's `created_at`: one transaction). Alerts an edit or a new rule made are left out: their post
    is older than what made them. Oldest first; `since` keeps alerts sent from then on."""
    rows = conn.execute(
        f"""SELECT {dialect_of(conn).seconds_between("min(m.date)", "a.sent_at")} FROM alerts a
           JOIN messages m ON m.post_id = a.post_id AND m.first_seen = a.created_at
           WHERE a.sent_at IS NOT NULL AND a.sent_at >= ? GROUP BY a.id ORDER BY a.sent_at""",
        (iso(since) or "",),
    )
    return [max(0.0, round(row[0], 3)) for row in rows]
