"""The whole record of one post: finding it from any reference a person pastes, and every sighting with
its delay, versions, deletion interval, readings and files, in a handful of queries."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest

from storage.database import connect_sync
from storage.ingest import ingest_batch
from storage.post_record import PostRefError, find_post, post_record, record_json
from storage.records import Batch, Channel, Media, iso
from tests.storage.factories import EMBASSY, EMBASSY_UK, MFA, STATEMENT, T0, batch, fwd, msg

EDITED = STATEMENT.replace("new sanctions", "new illegal sanctions")
PRIVATE = Channel(4004, None, "A channel without a username", 444, watched=True)


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    """An empty archive, once on SQLite and once on PostgreSQL."""
    return archive


@pytest.fixture
def lite() -> sqlite3.Connection:
    """An SQLite archive, for what only SQLite shows (its statements as run)."""
    return connect_sync(":memory:")


def statement_story(conn: sqlite3.Connection) -> int:
    """MFA posts the statement with a photo and edits it; the embassy forwards it 5 min later and deletes
    it; the UK embassy forwards it 2 h 13 min later; a channel without username copies nothing. Two
    views readings of the original, and its reactions now. Returns the post id."""
    photo = Media(kind="photo", size=1000, mime_type="image/jpeg", file_id=555, dc_id=2)
    original = msg(MFA, 10, STATEMENT, media=photo, views=100)
    ingest_batch(conn, batch(MFA, original), T0)
    ingest_batch(conn, batch(EMBASSY, fwd(EMBASSY, 500, MFA, 10, STATEMENT)), T0 + timedelta(minutes=6))
    ingest_batch(conn, batch(EMBASSY_UK, fwd(EMBASSY_UK, 700, MFA, 10, STATEMENT, minutes=133)),
                 T0 + timedelta(minutes=140))
    edited = replace(original, text=EDITED, edit_date=T0 + timedelta(minutes=30), views=900,
                     raw={"_": "Message", "id": 10, "message": EDITED})
    ingest_batch(conn, batch(MFA, edited), T0 + timedelta(minutes=31))
    gone = T0 + timedelta(hours=5)
    ingest_batch(conn, Batch(EMBASSY, deleted_ids=(500,), seen_at=gone), gone)
    conn.execute("UPDATE messages SET last_seen = ?, deleted_via = 'sweep' WHERE message_id = 500",
                 (iso(T0 + timedelta(hours=4)),))
    conn.execute("UPDATE messages SET reactions = ? WHERE message_id = 10",
                 (json.dumps({"👍": 12, "❤": 5, "custom:99": 7, "🔥": 1, "paid": 2}),))
    conn.execute("DELETE FROM message_stats")  # the readings ingest took at first sight: these instead
    conn.executemany(
        "INSERT INTO message_stats (channel_id, message_id, at, views, forwards, replies, reactions)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(MFA.id, 10, iso(T0 + timedelta(hours=1)), 500, 3, None, None),
         (MFA.id, 10, iso(T0), 100, 0, None, json.dumps({"👍": 2}))],
    )
    return conn.execute("SELECT post_id FROM messages WHERE message_id = 10").fetchone()[0]


@pytest.mark.parametrize("ref", [
    "{post}", " {post} ", "https://t.me/MFARussia/10", "http://t.me/mfarussia/10/",
    "t.me/MFARussia/10?single", "https://t.me/s/MFARussia/10",
    "@MFARussia/10", "MFARussia/10", "@rusembc/500", "https://t.me/c/3003/700",
    "https://telegram.me/RussianEmbassyUK/700",
])
def test_every_reference_form_finds_the_post_through_any_of_its_sightings(conn, ref) -> None:
    post = statement_story(conn)
    assert find_post(conn, ref.format(post=post)) == post


@pytest.mark.parametrize(("ref", "problem"), [
    ("999", "the archive has no post 999"),
    ("@MFARussia/11", "the archive has no message 11 of @MFARussia"),
    ("https://t.me/c/9999/10", "the archive has no message 10 of channel 9999"),
    ("https://t.me/nobody/10", "the archive has no message 10 of @nobody"),
    ("lavrov sanctions", "not a post id or link: 'lavrov sanctions'"),
    ("https://example.com/MFARussia/10", "not a post id or link"),
    ("", "not a post id or link"),
])
def test_a_reference_that_finds_nothing_says_why_and_lists_the_accepted_forms(conn, ref, problem) -> None:
    statement_story(conn)
    with pytest.raises(PostRefError) as caught:
        find_post(conn, ref)
    assert isinstance(caught.value, ValueError)
    assert problem in str(caught.value)
    assert "https://t.me/c/1234567/5678" in str(caught.value) and "@MFARussia/5678" in str(caught.value)


def test_sightings_come_origin_first_with_their_delay_after_the_origin(conn) -> None:
    record = post_record(conn, statement_story(conn))
    assert record is not None
    assert [(s.username, s.message_id, s.relation, s.delay_s) for s in record.sightings] == [
        ("MFARussia", 10, "original", 0.0), ("rusembc", 500, "forward", 300.0),
        ("RussianEmbassyUK", 700, "forward", 133 * 60.0)]
    assert record.origin_url == "https://t.me/MFARussia/10"
    assert record.sightings[2].url == "https://t.me/RussianEmbassyUK/700"


def test_versions_run_oldest_first_and_end_with_the_message_as_it_stands(conn) -> None:
    record = post_record(conn, statement_story(conn))
    assert record is not None
    versions = record.sightings[0].versions
    assert [(v.text, v.edit_date, v.current) for v in versions] == [
        (STATEMENT, None, False), (EDITED, iso(T0 + timedelta(minutes=30)), True)]
    assert versions[0].replaced_at == iso(T0 + timedelta(minutes=31))
    assert versions[0].media == {"kind": "photo", "size": 1000, "mime_type": "image/jpeg", "file_id": 555,
                                 "dc_id": 2}
    assert versions[1].has_raw and versions[0].has_raw  # ingest keeps the raw message a version replaced
    diff = record_json(record)["sightings"][0]["versions"][1]["diff"]
    assert ["insert", "illegal "] in diff


def test_a_deletion_keeps_its_interval_and_how_it_was_seen(conn) -> None:
    record = post_record(conn, statement_story(conn))
    assert record is not None
    embassy = record.sightings[1]
    assert (embassy.last_seen, embassy.deleted_at, embassy.deleted_via) == (
        iso(T0 + timedelta(hours=4)), iso(T0 + timedelta(hours=5)), "sweep")
    assert record.sightings[0].deleted_at is None


def test_readings_come_in_time_order_with_their_reactions_and_files_are_listed(conn) -> None:
    record = post_record(conn, statement_story(conn))
    assert record is not None
    readings = record.sightings[0].readings
    assert [(r.at, r.views, r.reactions) for r in readings] == [
        (iso(T0), 100, {"👍": 2}), (iso(T0 + timedelta(hours=1)), 500, None)]
    assert record.sightings[0].views == 900 and record.sightings[1].readings == ()
    assert record.sightings[0].reactions == {"👍": 12, "❤": 5, "custom:99": 7, "🔥": 1, "paid": 2}
    assert [(f.file_id, f.state) for f in record.files] == [(555, "queued")]


def test_a_channel_without_username_is_found_by_its_c_link(conn) -> None:
    ingest_batch(conn, batch(PRIVATE, msg(PRIVATE, 3, "A short note")), T0)
    post = find_post(conn, "https://t.me/c/4004/3")
    record = post_record(conn, post)
    assert record is not None and record.sightings[0].url == "https://t.me/c/4004/3"


def test_a_post_record_costs_the_same_few_queries_however_many_sightings(lite) -> None:
    conn = lite
    post = statement_story(conn)
    for n in range(30):
        channel = Channel(5000 + n, f"mirror{n}", f"Mirror {n}", 1, watched=True)
        ingest_batch(conn, batch(channel, fwd(channel, 1, MFA, 10, STATEMENT)), T0 + timedelta(hours=2))
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    record = post_record(conn, post)
    conn.set_trace_callback(None)
    assert record is not None and len(record.sightings) == 33
    assert len(statements) <= 6


def test_no_post_is_none(conn) -> None:
    assert post_record(conn, 12345) is None
