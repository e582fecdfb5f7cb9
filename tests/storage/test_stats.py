"""`storage.stats.archive_stats`: every count `chanwatch stats` and /status show, each a cheap read."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from storage.database import connect_sync
from storage.ingest import ingest_batch
from storage.records import Batch, iso
from storage.search import search
from storage.stats import archive_stats
from tests.storage.factories import EMBASSY, EMBASSY_UK, MFA, STATEMENT, STATEMENT_RU, T0, batch, fwd, msg
from tests.storage.outbox_helpers import queue_alert


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    """The archive `filled` makes, once on SQLite and once on PostgreSQL."""
    return filled(archive)


@pytest.fixture
def lite() -> sqlite3.Connection:
    """The same archive on SQLite only, for what only SQLite shows (its statements as run)."""
    return filled(connect_sync(":memory:"))


def filled(conn: sqlite3.Connection) -> sqlite3.Connection:
    """An archive with an original, its two forwards, a copy (first seen with an edit date), an
    edit, a deletion, a post from the day before, one pending alert and a channel in trouble."""
    day_before = T0 - timedelta(days=1)
    ingest_batch(conn, batch(MFA, msg(MFA, 9, "Arctic council meets", minutes=-24 * 60)), day_before)
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT), msg(MFA, 11, STATEMENT_RU, minutes=1)), T0)
    ingest_batch(conn, batch(EMBASSY, fwd(EMBASSY, 500, MFA, 10, STATEMENT),
                             msg(EMBASSY, 501, STATEMENT_RU, minutes=30, edit_date=T0)), T0)
    ingest_batch(conn, batch(EMBASSY_UK, fwd(EMBASSY_UK, 700, MFA, 10, STATEMENT, minutes=9)), T0)
    ingest_batch(conn, batch(MFA, msg(MFA, 11, STATEMENT_RU + " (обновлено)", minutes=1,
                                      edit_date=T0 + timedelta(hours=1))), T0 + timedelta(hours=1))
    ingest_batch(conn, Batch(EMBASSY_UK, deleted_ids=(700,), seen_at=T0 + timedelta(hours=2)),
                 T0 + timedelta(hours=2))
    [post_id] = conn.execute("SELECT post_id FROM messages WHERE message_id = 10").fetchone()
    queue_alert(conn, 42, post_id)
    conn.execute("UPDATE channels SET last_poll = ? WHERE id = ?", (iso(T0 + timedelta(hours=3)), MFA.id))
    conn.execute("UPDATE channels SET status = 'private' WHERE id = ?", (EMBASSY_UK.id,))
    return conn


def test_archive_stats_counts_what_the_archive_holds(conn):
    stats = archive_stats(conn, T0 + timedelta(hours=4))
    assert (stats.channels, stats.watched) == (3, 3)
    assert (stats.posts, stats.sightings, stats.duplicates_avoided) == (3, 6, 3)
    assert (stats.forwards, stats.copies) == (2, 1)
    assert (stats.versions, stats.edited_messages, stats.deletions) == (1, 1, 1)  # the copy's edit
    # date came with it: no edit the archive saw
    assert stats.edited_posts == 1  # the edited statement; a copy's edit does not mark the post
    assert stats.fts_rows == 3 and stats.database_bytes > 0
    assert stats.posts_today == 2  # the Arctic post was first seen the day before
    assert stats.alerts_pending == 1
    assert stats.last_poll == iso(T0 + timedelta(hours=3))
    assert stats.channel_errors == (("RussianEmbassyUK", "Russian Embassy UK", EMBASSY_UK.id),)


def test_edited_posts_are_what_is_edited_finds_even_with_no_earlier_version_kept():
    """A Desktop export marks messages edited but carries no earlier text: the posts are edited
    (is:edited finds them) while no version is kept, and the counts say both."""
    conn = connect_sync(":memory:")
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT, edit_date=T0 + timedelta(hours=1)),
                             msg(MFA, 11, STATEMENT_RU, minutes=1, edit_date=T0 + timedelta(hours=2)),
                             msg(MFA, 12, "Arctic council meets", minutes=2)), T0 + timedelta(hours=3))
    stats = archive_stats(conn, T0)
    assert (stats.edited_posts, stats.versions, stats.edited_messages) == (2, 0, 0)
    assert search(conn, "is:edited", limit=0).total == stats.edited_posts


def test_an_empty_archive_counts_zero(conn):
    empty = archive_stats(connect_sync(":memory:"), T0)
    assert (empty.posts, empty.sightings, empty.channels, empty.alerts_pending) == (0, 0, 0, 0)
    assert empty.last_poll is None and empty.channel_errors == ()


def test_no_count_reads_the_messages_or_posts_table_row_by_row(lite):
    """/status runs on the thread the poller writes through: on a million-message archive a table
    scan of messages (with Telegram's raw JSON in each row) takes seconds; an index scan does not."""
    conn = lite
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    archive_stats(conn, T0)
    conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) >= 12
    for sql in selects:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        for step in plan:
            assert step not in ("SCAN messages", "SCAN posts", "SCAN message_versions"), (sql, plan)
