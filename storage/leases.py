"""Several readers, one archive (issue #17): which reader polls which channel, and which one process
runs the bot and the alert dispatcher — by leases kept in the archive itself.

A reader (`chanwatch run` with its Telegram account) calls `claim` once a lease period or more often:
it says it is alive, renews the leases it holds, hands back what it holds beyond its fair share
(watched channels ÷ live readers, rounded up) and takes free or lapsed leases up to that share. A
reader that dies stops renewing; its leases lapse after one period and the next claim of a survivor
takes them, so its channels are polled again within two periods. A channel is polled only by the
holder of a lease that has not lapsed (`holds`), so no channel is polled by two readers at once as
long as a claim and the poll it allows happen within one period.

A channel an account can read that others cannot (`account_channels`: a private channel it joined)
is leased only to readers with that account. Every claim is one transaction: SQLite's write lock
orders concurrent claims; on PostgreSQL the free leases are selected `FOR UPDATE SKIP LOCKED`
(`Dialect.lock_rows`), so two readers claiming at once take different channels without waiting for
each other, and the UPDATE re-checks that each is still free.

Roles (`take_role`) are the same idea for work exactly one process must do: 'dispatcher' (the bot and
the alert dispatcher). Times are the callers' clocks as ISO-8601 text, like every date in the archive;
readers on several machines need their clocks in step (NTP) to well within a period.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.dialect import dialect_of
from storage.records import iso

__all__ = ["DISPATCHER", "Claim", "LeaseRow", "ReaderRow", "can_read", "claim", "holds", "release",
           "role_holder", "status", "take_role"]

DISPATCHER = "dispatcher"
"""The role of the process that runs the bot and sends the alerts."""

FORGET_AFTER = timedelta(days=1)
"""A reader not seen this long is dropped from `readers` at the next claim (every restart under the
default name host:pid is a new reader; `status` lists the dead ones until then)."""

READABLE = """
    c.watched = 1 AND (
        c.source = 'web' OR c.username IS NOT NULL
        OR EXISTS (SELECT 1 FROM account_channels a WHERE a.channel_id = c.id AND a.account_id = :account))"""
"""The watched channels a reader with the account `:account` can read: web and public channels, and
the private ones that account can read."""

PUBLIC = "c.watched = 1 AND (c.source = 'web' OR c.username IS NOT NULL)"
"""What a reader without an account can read: by web, so channels with a public username only."""


@dataclass(frozen=True)
class Claim:
    """What one claim left this reader with: the channels it holds, and what changed."""

    held: tuple[int, ...]
    gained: tuple[int, ...]
    released: tuple[int, ...]
    share: int  # the fair share it aimed at
    readers: int  # live readers, itself included


@dataclass(frozen=True)
class ReaderRow:
    """A reader as `status` shows it."""

    name: str
    account_id: int | None
    started_at: str
    seen_at: str
    alive: bool
    channels: int
    roles: tuple[str, ...]


@dataclass(frozen=True)
class LeaseRow:
    """One channel's lease as `status` shows it: its holder (None: free) and since when."""

    channel_id: int
    name: str
    reader: str | None
    claimed_at: str | None
    expires_at: str | None
    lapsed: bool


def _readable(account_id: int | None) -> str:
    """The condition on `c` (channels) for what a reader with this account may poll."""
    return PUBLIC if account_id is None else READABLE


def can_read(conn: sqlite3.Connection, account_id: int, channel_id: int,
             access_hash: int | None = None) -> None:
    """Record that `account_id` can read `channel_id` (it resolved or joined it), with the access hash
    Telegram gave that account: a private channel is then leased to that account's readers."""
    conn.execute(
        """INSERT INTO account_channels (account_id, channel_id, access_hash) VALUES (?, ?, ?)
           ON CONFLICT (account_id, channel_id) DO UPDATE
           SET access_hash = coalesce(excluded.access_hash, account_channels.access_hash)""",
        (account_id, channel_id, access_hash))


def claim(conn: sqlite3.Connection, reader: str, account_id: int | None, now: datetime,
          period: timedelta) -> Claim:
    """One claim round for `reader` (call it inside a transaction): alive now; its leases renewed;
    beyond its fair share handed back; free or lapsed leases it can read taken up to that share."""
    at, until, alive_since = iso(now), iso(now + period), iso(now - period)
    conn.execute("DELETE FROM readers WHERE seen_at < ?", (iso(now - FORGET_AFTER),))
    conn.execute(
        """INSERT INTO readers (name, account_id, started_at, seen_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET seen_at = excluded.seen_at, account_id = excluded.account_id""",
        (reader, account_id, at, at))
    conn.execute("INSERT INTO leases (channel_id) SELECT id FROM channels WHERE watched = 1"
                 " ON CONFLICT DO NOTHING")
    readable = _readable(account_id)
    args = {"reader": reader, "account": account_id, "at": at, "until": until}
    # what it holds and can still read (a channel unwatched, or no longer readable, is let go)
    conn.execute(
        f"""UPDATE leases SET reader = NULL, claimed_at = NULL, expires_at = NULL WHERE reader = :reader
            AND channel_id NOT IN (SELECT c.id FROM channels c WHERE {readable})""", args)
    conn.execute("UPDATE leases SET expires_at = :until WHERE reader = :reader", args)
    readers = conn.execute("SELECT count(*) FROM readers WHERE seen_at > ?", (alive_since,)).fetchone()[0]
    watched = conn.execute(f"SELECT count(*) FROM channels c WHERE {readable}", args).fetchone()[0]
    share = math.ceil(watched / max(readers, 1))
    held = [r[0] for r in conn.execute(
        "SELECT channel_id FROM leases WHERE reader = :reader ORDER BY channel_id", args)]
    released = held[share:]
    if released:
        marks = ", ".join("?" * len(released))
        conn.execute(f"UPDATE leases SET reader = NULL, claimed_at = NULL, expires_at = NULL"
                     f" WHERE channel_id IN ({marks})", released)
        held = held[:share]
    if len(held) < share:
        free = [r[0] for r in conn.execute(
            f"""SELECT l.channel_id FROM leases l JOIN channels c ON c.id = l.channel_id
                WHERE (l.reader IS NULL OR l.expires_at <= :at) AND {readable}
                ORDER BY l.channel_id LIMIT :want{dialect_of(conn).lock_rows("l")}""",
            {**args, "want": share - len(held)})]
        if free:
            # still free when written: a concurrent claim (PostgreSQL) that took one first keeps it
            marks = ", ".join("?" * len(free))
            conn.execute(f"UPDATE leases SET reader = ?, claimed_at = ?, expires_at = ?"
                         f" WHERE channel_id IN ({marks}) AND (reader IS NULL OR expires_at <= ?)",
                         (reader, at, until, *free, at))
    now_held = [r[0] for r in conn.execute(
        "SELECT channel_id FROM leases WHERE reader = :reader ORDER BY channel_id", args)]
    gained = sorted(set(now_held) - set(held))
    return Claim(tuple(now_held), tuple(gained), tuple(released), share, readers)


def holds(conn: sqlite3.Connection, reader: str, channel_id: int, now: datetime) -> bool:
    """Whether `reader` may poll `channel_id` now: it holds the channel's lease and it has not lapsed."""
    row = conn.execute("SELECT 1 FROM leases WHERE channel_id = ? AND reader = ? AND expires_at > ?",
                       (channel_id, reader, iso(now))).fetchone()
    return row is not None


def release(conn: sqlite3.Connection, reader: str) -> None:
    """A reader stopping cleanly: its leases and roles free at once, for the others' next claim."""
    conn.execute("UPDATE leases SET reader = NULL, claimed_at = NULL, expires_at = NULL WHERE reader = ?",
                 (reader,))
    conn.execute("DELETE FROM roles WHERE reader = ?", (reader,))
    conn.execute("DELETE FROM readers WHERE name = ?", (reader,))


def take_role(conn: sqlite3.Connection, role: str, reader: str, now: datetime, period: timedelta) -> bool:
    """Take or renew `role` for `reader` (inside a transaction): True when it holds it now, that is
    when it was free, lapsed, or its own already."""
    at, until = iso(now), iso(now + period)
    conn.execute(
        """INSERT INTO roles (role, reader, taken_at, expires_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (role) DO UPDATE SET
               taken_at = CASE WHEN roles.reader = excluded.reader THEN roles.taken_at
                               ELSE excluded.taken_at END,
               reader = excluded.reader, expires_at = excluded.expires_at
           WHERE roles.reader = excluded.reader OR roles.expires_at <= ?""",
        (role, reader, at, until, at))
    return role_holder(conn, role, now) == reader


def role_holder(conn: sqlite3.Connection, role: str, now: datetime) -> str | None:
    """Who holds `role` now (None: nobody, or its lease lapsed)."""
    row = conn.execute("SELECT reader FROM roles WHERE role = ? AND expires_at > ?",
                       (role, iso(now))).fetchone()
    return row[0] if row is not None else None


def status(conn: sqlite3.Connection, now: datetime, period: timedelta
           ) -> tuple[list[ReaderRow], list[LeaseRow]]:
    """The readers (alive or not: seen within one period), their channel counts and roles; every
    watched channel's lease. For `chanwatch status` and /status."""
    at, alive_since = iso(now), iso(now - period)
    roles: dict[str, list[str]] = {}
    for role, reader in conn.execute("SELECT role, reader FROM roles WHERE expires_at > ? ORDER BY role",
                                     (at,)):
        roles.setdefault(reader, []).append(role)
    readers = [
        ReaderRow(r[0], r[1], r[2], r[3], r[3] > alive_since, r[4], tuple(roles.get(r[0], ())))
        for r in conn.execute(
            """SELECT r.name, r.account_id, r.started_at, r.seen_at,
                      (SELECT count(*) FROM leases l WHERE l.reader = r.name AND l.expires_at > ?)
               FROM readers r ORDER BY r.name""", (at,))
    ]
    leases = [
        LeaseRow(r[0], r[1] or r[2] or str(r[0]), r[3], r[4], r[5], r[3] is not None and r[5] <= at)
        for r in conn.execute(
            """SELECT l.channel_id, c.username, c.title, l.reader, l.claimed_at, l.expires_at
               FROM leases l JOIN channels c ON c.id = l.channel_id WHERE c.watched = 1
               ORDER BY l.channel_id""")
    ]
    return readers, leases
