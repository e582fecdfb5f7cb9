"""Test helpers for the alert outbox: archive a few posts and queue alert rows with a plain INSERT.

Stands in for the percolator where a test needs outbox rows without matching rules against posts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from storage.ingest import ingest_batch
from storage.records import MessageRecord, iso
from storage.rules import ensure_subscriber
from tests.storage.factories import EMBASSY, EMBASSY_UK, MFA, STATEMENT, T0, batch, fwd, msg


def queue_alert(conn: sqlite3.Connection, chat_id: int, post_id: int, rule_ids: Sequence[int] = (),
                created_at: datetime = T0) -> int:
    """Insert one unsent alert row (the subscriber is created if needed); returns its id."""
    ensure_subscriber(conn, chat_id, created_at)
    cur = conn.execute(
        "INSERT INTO alerts (chat_id, post_id, rule_ids, created_at) VALUES (?, ?, ?, ?)",
        (chat_id, post_id, json.dumps(list(rule_ids)), iso(created_at)),
    )
    return int(cur.lastrowid or 0)


def archive(conn: sqlite3.Connection, *records: MessageRecord) -> list[int]:
    """Ingest each record as its own batch; returns the post id of each, in order."""
    ids = []
    for record in records:
        channel = {c.id: c for c in (MFA, EMBASSY, EMBASSY_UK)}[record.channel_id]
        ingest_batch(conn, batch(channel, record), T0)
        row = conn.execute("SELECT post_id FROM messages WHERE channel_id = ? AND message_id = ?",
                           (record.channel_id, record.message_id)).fetchone()
        ids.append(row[0])
    return ids


def statement_with_forwards(conn: sqlite3.Connection) -> int:
    """The MFA statement and its forwards by two embassies: one post with three sightings."""
    post_id, *_ = archive(conn, msg(MFA, 10, STATEMENT), fwd(EMBASSY, 500, MFA, 10, STATEMENT),
                          fwd(EMBASSY_UK, 700, MFA, 10, STATEMENT, minutes=9))
    return post_id
