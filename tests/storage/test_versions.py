"""Whole versions (#14): a version keeps the earlier raw message and any change of its media, never
counters; and deletion intervals: `last_seen` .. `deleted_at`, with how the deletion was seen."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest

from storage.ingest import ingest_batch
from storage.records import Media, iso
from tests.storage.factories import MFA, STATEMENT, T0, batch, msg

LATER = T0 + timedelta(hours=1)
POLL = Media(kind="poll", extra={"question": "Go?", "answers": ["yes", "no"], "total_voters": 3})
PAGE = Media(kind="webpage", url="https://example.org/a", title="A", extra={"site_name": "Example"})


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    """An empty archive, once on SQLite and once on PostgreSQL."""
    return archive


def versions(conn: sqlite3.Connection) -> list[tuple]:
    """(text, the poll's question, the page's title, the raw message's text) of each kept version."""
    out = []
    for text, media, raw in conn.execute("SELECT text, media, raw FROM message_versions ORDER BY id"):
        media, raw = json.loads(media or "null") or {}, json.loads(raw or "null") or {}
        out.append((text, (media.get("extra") or {}).get("question"), media.get("title"), raw.get("message")))
    return out


def row(conn: sqlite3.Connection, message_id: int) -> sqlite3.Row:
    return conn.execute("SELECT * FROM messages WHERE channel_id = ? AND message_id = ?",
                        (MFA.id, message_id)).fetchone()


def test_a_version_keeps_the_earlier_raw_message(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT)), now=T0)
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT + " Updated.", edit_date=LATER)), now=LATER)
    assert versions(conn) == [(STATEMENT, None, None, STATEMENT)]


def test_an_edited_poll_question_is_a_version_but_new_votes_are_not(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "", media=POLL)), now=T0)
    votes = Media(kind="poll", extra={**POLL.extra, "total_voters": 90})
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "", media=votes, edit_date=LATER)), now=LATER)
    assert versions(conn) == []
    asked = Media(kind="poll", extra={**POLL.extra, "question": "Go now?"})
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "", media=asked, edit_date=LATER + timedelta(minutes=1))))
    assert versions(conn) == [("", "Go?", None, "")]
    assert row(conn, 1)["media"] is not None and "Go now?" in row(conn, 1)["media"]


def test_a_replaced_link_preview_without_a_file_is_a_version(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=PAGE)), now=T0)
    other = Media(kind="webpage", url="https://example.org/b", title="B")
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=other, edit_date=LATER)), now=LATER)
    assert versions(conn) == [(STATEMENT, None, "A", STATEMENT)]


def test_views_and_reactions_are_never_a_version(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, views=10, reactions={"👍": 1})), now=T0)
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, views=99, reactions={"👍": 7},
                                      edit_date=LATER)), now=LATER)
    assert versions(conn) == []


def test_every_message_seen_present_moves_its_last_seen_and_present_ids_do_too(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT), msg(MFA, 2, "two")), now=T0)
    assert row(conn, 1)["last_seen"] == iso(T0)
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT), seen_at=LATER, present_ids=(2,)), now=LATER)
    assert (row(conn, 1)["last_seen"], row(conn, 2)["last_seen"]) == (iso(LATER), iso(LATER))
    ingest_batch(conn, batch(MFA, seen_at=T0, present_ids=(1,)), now=LATER)  # an older read never lowers it
    assert row(conn, 1)["last_seen"] == iso(LATER)


def test_a_deletion_records_when_it_was_seen_missing_and_how(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT)), now=T0)
    gone = LATER + timedelta(hours=2)
    result = ingest_batch(conn, batch(MFA, deleted_ids=(1,), seen_at=gone, deleted_via="sweep"), now=gone)
    assert result.deletions == 1
    r = row(conn, 1)
    assert (r["last_seen"], r["deleted_at"], r["deleted_via"]) == (iso(T0), iso(gone), "sweep")


def test_a_message_seen_again_after_its_deletion_clears_both(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT)), now=T0)
    ingest_batch(conn, batch(MFA, deleted_ids=(1,), seen_at=LATER), now=LATER)
    back = LATER + timedelta(hours=1)
    ingest_batch(conn, batch(MFA, seen_at=back, present_ids=(1,)), now=back)
    r = row(conn, 1)
    assert (r["deleted_at"], r["deleted_via"], r["last_seen"]) == (None, None, iso(back))


def test_a_read_older_than_a_live_deletion_does_not_undo_it(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT)), now=T0)
    ingest_batch(conn, batch(MFA, deleted_ids=(1,), seen_at=LATER, deleted_via="update"), now=LATER)
    ingest_batch(conn, batch(MFA, seen_at=LATER - timedelta(minutes=5), present_ids=(1,)), now=LATER)
    r = row(conn, 1)
    assert (r["deleted_at"], r["deleted_via"]) == (iso(LATER), "update")
